//! The TypeScript declarations of the JSON values the npm package returns (quotes, invoices,
//! ingest outcomes, decisions, problems, sync messages), generated from the Rust types with
//! ts-rs into `pkg-template/types.d.ts`, which `index.d.ts` re-exports.
//!
//! `cargo test -p tollgate --features ts --test types` fails when the committed file differs
//! from what the types say (`make test-rust` runs it); `make types` (the same test with
//! `TOLLGATE_WRITE_TYPES=1`) rewrites it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::Path;

use ts_rs::{Config, TS};

use tollgate::billing::{Adjusts, Invoice, InvoiceKind, InvoiceStatus, Line, LineType, Quote, TierLine};
use tollgate::catalog::FeatureType;
use tollgate::engine::{Charge, IngestOutcome, WalletView};
use tollgate::entitlements::{Balance, Decision, Reason};
use tollgate::sync::{LeaseGrant, LeaseReport, Mode, SyncRequest, SyncResponse};
use tollgate::Error;

const FILE: &str = "pkg-template/types.d.ts";

/// The file's fixed head: what it is, and the scalar aliases the generated types use (ts-rs
/// writes `DecimalString`, `Timestamp` and `JsonValue` where the Rust types say so).
const HEAD: &str = r#"// Generated from the Rust types by ts-rs (tests/types.rs): do not edit. `make types` rewrites it;
// `make test-rust` fails when it is stale. The JSON values the API returns (SPEC §5–§7);
// index.d.ts re-exports them next to the hand-written API and input types.

/** A decimal number written as a string, e.g. `"0.000002"` (exact; never a float). */
export type DecimalString = string;
/** An RFC 3339 timestamp, e.g. `"2026-11-28T10:00:00Z"`. */
export type Timestamp = string;
/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
"#;

/// `T`'s declaration, exported, with its doc comment (or `docs` instead, for a type whose Rust
/// docs speak of Rust).
fn decl<T: TS>(cfg: &Config, docs: Option<&str>) -> String {
    let docs = match docs {
        Some(d) => Some(d.to_string()),
        None => T::docs().map(|d| doc_lines(&d).join("\n")),
    };
    pretty(&T::decl(cfg), docs.as_deref())
}

/// `DecisionJSON`: the decision's own fields with `Balance`'s four after `featureType`, where
/// `Decision`'s serializer writes them (always there, null without figures; ts-rs cannot
/// flatten the `Option<Balance>` they come from).
fn decision(cfg: &Config) -> String {
    let decl = Decision::decl(cfg);
    let figures = Balance::inline_flattened(cfg);
    let figures = figures.trim().strip_prefix('{').and_then(|f| f.strip_suffix('}')).expect("an object type");
    let after = "featureType: FeatureType | null, ";
    let at = decl.find(after).expect("Decision has featureType") + after.len();
    let decl = format!("{}{}{}", &decl[..at], figures.trim_start(), &decl[at..]);
    pretty(
        &decl,
        Some("A decision as JSON (`JSON.stringify(decision)`, `decision.toJSON()`, and inside `ingest`'s outcome)."),
    )
}

/// The lines of a doc comment as ts-rs writes it (`/**\n * line\n */`), rustdoc links as code.
fn doc_lines(docs: &str) -> Vec<String> {
    let inner = docs.trim().trim_start_matches("/**").trim_end_matches("*/");
    inner
        .lines()
        .map(|l| l.trim().trim_start_matches('*').trim().replace("[`", "`").replace("`]", "`"))
        .filter(|l| !l.is_empty())
        .collect()
}

/// A doc comment at `indent`: one line when it fits on one.
fn doc_comment(lines: &[String], indent: &str) -> String {
    match lines {
        [] => String::new(),
        [one] => format!("{indent}/** {one} */\n"),
        _ => {
            let mut out = format!("{indent}/**\n");
            for l in lines {
                out.push_str(&format!("{indent} * {l}\n"));
            }
            out.push_str(&format!("{indent} */\n"));
            out
        }
    }
}

/// ts-rs's one-line `type X = { /** doc */ a: A, b: B, };` as `export type X = {` with a field
/// per line, each under its doc comment; other declarations as they are, exported.
fn pretty(decl: &str, docs: Option<&str>) -> String {
    let mut out = docs.map(|d| doc_comment(&d.lines().map(String::from).collect::<Vec<_>>(), "")).unwrap_or_default();
    let (head, body) = decl.split_once(" = ").expect("a type declaration");
    let body = body.trim().strip_suffix(';').expect("a declaration ends with ;");
    let Some(fields) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) else {
        out.push_str(&format!("export {head} = {body};\n"));
        return out;
    };
    out.push_str(&format!("export {head} = {{\n"));
    let mut rest = fields.trim_start();
    while !rest.is_empty() {
        let mut doc = Vec::new();
        if let Some(after) = rest.strip_prefix("/**") {
            let end = after.find("*/").expect("a doc comment ends");
            doc = doc_lines(&after[..end]);
            rest = after[end + 2..].trim_start();
        }
        let end = field_end(rest);
        out.push_str(&doc_comment(&doc, "  "));
        out.push_str(&format!("  {};\n", rest[..end].trim()));
        rest = rest[end..].trim_start().strip_prefix(',').unwrap_or("").trim_start();
    }
    out.push_str("};\n");
    out
}

/// Where the field at the start of `s` ends: the first `,` outside brackets and strings.
fn field_end(s: &str) -> usize {
    let mut depth = 0i32;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' | '(' | '{' | '[' if !quoted => depth += 1,
            '>' | ')' | '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

fn section(out: &mut String, title: &str, decls: &[String]) {
    out.push_str(
        "\n// ---------------------------------------------------------------------------------------------\n// ",
    );
    out.push_str(title);
    out.push('\n');
    for d in decls {
        out.push('\n');
        out.push_str(d);
    }
}

/// The whole file.
fn declarations() -> String {
    // 64-bit counters (`seq`, `ackSeq`, `ttlMs`) are JSON numbers, not bigints.
    let cfg = &Config::new().with_large_int("number");
    let mut out = String::from(HEAD);
    section(
        &mut out,
        "Decisions and ingest outcomes (SPEC §5)",
        &[
            decl::<Reason>(cfg, None),
            decl::<FeatureType>(cfg, None),
            decision(cfg),
            decl::<Charge>(cfg, None),
            decl::<WalletView>(cfg, None),
            decl::<IngestOutcome>(cfg, None),
        ],
    );
    section(
        &mut out,
        "Quotes and invoices (SPEC §6)",
        &[
            decl::<LineType>(cfg, None),
            decl::<TierLine>(cfg, None),
            decl::<Adjusts>(cfg, None),
            decl::<Line>(cfg, None),
            decl::<Quote>(cfg, None),
            decl::<InvoiceKind>(cfg, None),
            decl::<InvoiceStatus>(cfg, None),
            decl::<Invoice>(cfg, None),
        ],
    );
    section(
        &mut out,
        "Sync messages (SPEC §7)",
        &[
            decl::<LeaseReport>(cfg, None),
            decl::<SyncRequest>(cfg, None),
            decl::<Mode>(cfg, None),
            decl::<LeaseGrant>(cfg, None),
            decl::<SyncResponse>(cfg, None),
        ],
    );
    section(
        &mut out,
        "Errors",
        &[decl::<Error>(
            cfg,
            Some("One problem of an input: a stable code and the JSON pointer of the offending value."),
        )],
    );
    out
}

#[test]
fn declarations_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let want = declarations();
    if std::env::var_os("TOLLGATE_WRITE_TYPES").is_some() {
        std::fs::write(&path, &want).expect("write the declarations");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{FILE} is not what the Rust types generate: run `make types` and commit it\n--- generated:\n{want}"
    );
}
