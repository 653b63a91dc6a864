//! The bindings, run as WebAssembly inside Node by wasm-bindgen-test: packing of
//! decisions, the figure buffer, errors kept for `take_errors`, and that no input makes a
//! binding trap (a deterministic fuzz of every entry point).

use crate::{
    bits, decision_layout, decision_names, format_decimal, reason_code, take_errors, type_code, validate_catalog,
    RawEngine, ERROR, FEATURE_TYPES, LAYOUT_FIELDS, REASONS,
};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

const SNAPSHOT: &str = include_str!("../../examples/llm-snapshot.json");
/// 2026-11-05T10:00:00Z: in November's period, before cus_dev's welcome grant starts.
const NOW: f64 = 1_793_872_800_000.0;

fn engine() -> RawEngine {
    RawEngine::from_snapshot(SNAPSHOT, "{}").expect("the example snapshot loads")
}

fn errors() -> Vec<Value> {
    match serde_json::from_str(&take_errors()).unwrap() {
        Value::Array(list) => list,
        other => panic!("not a list: {other}"),
    }
}

fn first_error() -> (String, String) {
    let e = errors().into_iter().next().expect("an error was kept");
    (e["code"].as_str().unwrap().to_string(), e["path"].as_str().unwrap().to_string())
}

fn reason(code: u32) -> &'static str {
    REASONS[((code >> bits::REASON_SHIFT) & 15) as usize].as_str()
}

fn figure(f: &[u32; super::FIGURE_WORDS], i: usize) -> String {
    format_decimal(f[i * 4], f[i * 4 + 1], f[i * 4 + 2], f[i * 4 + 3])
}

#[wasm_bindgen_test]
fn reason_table_matches_the_codes() {
    let layout: serde_json::Value = serde_json::from_str(&decision_layout()).expect("JSON");
    assert_eq!(layout["reasons"].as_u64(), Some(REASONS.len() as u64));
    let all = decision_names();
    let names: Vec<&str> = all.split(',').take(REASONS.len()).collect();
    assert_eq!(names.len(), REASONS.len());
    for (i, r) in REASONS.iter().enumerate() {
        assert_eq!(names[i], r.as_str());
        assert_eq!(reason_code(*r) as usize, i);
    }
}

#[wasm_bindgen_test]
fn decision_layout_is_the_bits() {
    let layout: serde_json::Value = serde_json::from_str(&decision_layout()).expect("JSON");
    // Every field, and nothing else, with its value as the constants say (LAYOUT_FIELDS lists
    // them; the text is written from it at compile time).
    assert_eq!(layout.as_object().map(|o| o.len()), Some(LAYOUT_FIELDS.len()));
    assert_eq!(layout["reasons"].as_u64(), Some(REASONS.len() as u64));
    assert_eq!(layout["allowed"].as_u64(), Some(u64::from(bits::ALLOWED)));
    for (name, value) in LAYOUT_FIELDS {
        assert_eq!(layout[name].as_u64(), Some(u64::from(value)), "{name}");
    }
    let all = decision_names();
    let types: Vec<&str> = all.split(',').skip(REASONS.len()).collect();
    assert_eq!(types.len(), FEATURE_TYPES.len());
    for (i, t) in FEATURE_TYPES.iter().enumerate() {
        assert_eq!(type_code(*t) as usize, i);
        assert_eq!(types[i], t.map_or("", |t| t.as_str()));
    }
}

#[wasm_bindgen_test]
fn check_packs_a_boolean_decision() {
    let mut e = engine();
    let code = e.check("cus_acme", "priority-queue", NOW);
    assert_ne!(code, ERROR);
    assert_eq!(code & bits::ALLOWED, 1);
    assert_eq!(reason(code), "ok");
    assert_eq!((code >> bits::TYPE_SHIFT) & 3, 1, "boolean");
    assert_eq!(code & bits::FIGURES, 0);
    assert_ne!(code & bits::EXACT, 0);
}

#[wasm_bindgen_test]
fn denials_are_packed_values_not_errors() {
    let mut e = engine();
    let code = e.check("cus_nobody", "priority-queue", NOW);
    assert_eq!(code & bits::ALLOWED, 0);
    assert_eq!(reason(code), "unknown_customer");
    let code = e.check("cus_dev", "priority-queue", NOW);
    assert_eq!(reason(code), "no_entitlement");
    let code = e.check("cus_dev", "no-such-feature", NOW);
    assert_eq!(reason(code), "unknown_feature");
    assert_eq!((code >> bits::TYPE_SHIFT) & 3, 0, "no type for an unknown feature");
}

#[wasm_bindgen_test]
fn static_config_waits_for_take_config() {
    let mut e = engine();
    let code = e.check("cus_acme", "sla", NOW);
    assert_ne!(code & bits::CONFIG, 0);
    let config: Value = serde_json::from_str(&e.take_config().unwrap()).unwrap();
    assert_eq!(config["uptime"], "99.95");
    assert!(e.take_config().is_none(), "taken once");
}

#[wasm_bindgen_test]
fn metered_figures_go_to_the_buffer_exactly() {
    let mut e = engine();
    let code = e.consume_text("cus_dev", "input-tokens", "1500.25", None, NOW);
    assert_eq!(code & bits::ALLOWED, 1);
    assert_eq!((code >> bits::TYPE_SHIFT) & 3, 3, "metered");
    assert_ne!(code & bits::FIGURES, 0);
    let f = e.last_figures();
    assert_eq!(
        [figure(&f, 0), figure(&f, 1), figure(&f, 2), figure(&f, 3)],
        ["8499.75", "1500.25", "0", "10000"].map(String::from)
    );
    // Soft limit: past the balance is overage.
    let code = e.consume("cus_dev", "input-tokens", 10_000, NOW);
    assert_eq!(code & bits::ALLOWED, 1);
    let f = e.last_figures();
    assert_eq!(figure(&f, 0), "0");
    assert_eq!(figure(&f, 2), "1500.25");
}

#[wasm_bindgen_test]
fn format_decimal_reads_the_parts() {
    assert_eq!(format_decimal(0, 8340, 0, 0), "8340");
    assert_eq!(format_decimal(2, 834_000, 0, 0), "8340", "normalised");
    assert_eq!(format_decimal(6, 2, 0, 0), "0.000002");
    assert_eq!(format_decimal(1 << 31, 5, 0, 0), "-5");
    assert_eq!(format_decimal(1 << 31, 0, 0, 0), "0", "never -0");
    assert_eq!(format_decimal(0, 0, 0, 1), "18446744073709551616");
    assert_eq!(format_decimal(0xff, 1, 0, 0), "0.0000000000000000000000000001", "scale clamped to 28");
}

#[wasm_bindgen_test]
fn hard_limits_are_all_or_nothing_through_ids_and_handles() {
    let mut e = engine();
    // cus_trial has a grant only: a hard limit of 1000.
    let h = e.handle("cus_trial", "input-tokens");
    assert!(h >= 0);
    assert_eq!(e.handle("cus_trial", "input-tokens"), h, "the same handle gets the same number");
    assert_eq!(e.handle("cus_trial", "priority-queue"), -1);
    assert_eq!(e.consume_handle(h as u32, 600, NOW) & bits::ALLOWED, 1);
    let denied = e.consume_handle_text(h as u32, "400.5", NOW);
    assert_eq!(reason(denied), "limit_reached");
    assert_eq!(figure(&e.last_figures(), 0), "400");
    // The scratch buffer path: customer then key, lengths given.
    let ptr = e.scratch_ptr(64);
    assert!(ptr > 0 && e.scratch_len() >= 64);
    assert_eq!(e.consume("cus_trial", "input-tokens", 400, NOW) & bits::ALLOWED, 1);
    assert_eq!(reason(e.check_handle(h as u32, NOW)), "limit_reached");
}

#[wasm_bindgen_test]
fn bad_input_is_kept_for_take_errors() {
    assert!(RawEngine::from_snapshot("{", "{}").is_none());
    assert_eq!(first_error().0, "invalid_json");
    let bad = SNAPSHOT.replacen("\"currency\": \"USD\"", "\"currency\": \"XXX\"", 1);
    assert!(RawEngine::from_snapshot(&bad, "{}").is_none());
    assert_eq!(first_error(), ("unknown_currency".into(), "/catalog/plans/0/currency".into()));
    assert!(RawEngine::from_snapshot(SNAPSHOT, r#"{"hubPublicKey": "k"}"#).is_none());
    assert_eq!(first_error(), ("invalid_value".into(), "/options/hubPublicKey".into()));
    assert!(RawEngine::from_snapshot(SNAPSHOT, r#"{"edgeld": "typo"}"#).is_none());
    assert_eq!(first_error(), ("unknown_field".into(), "/options/edgeld".into()));
    assert!(RawEngine::from_snapshot(SNAPSHOT, r#"{"edgeId": "fra-1", "leases": false}"#).is_some());

    let mut e = engine();
    assert_eq!(e.check("cus_dev", "input-tokens", 1.5), ERROR);
    assert_eq!(first_error(), ("invalid_value".into(), "/now".into()));
    assert_eq!(e.check("cus_dev", "input-tokens", f64::NAN), ERROR);
    assert_eq!(first_error().1, "/now");
    assert_eq!(e.consume_text("cus_dev", "input-tokens", "1,5", None, NOW), ERROR);
    assert_eq!(first_error(), ("invalid_decimal".into(), "/quantity".into()));
    assert_eq!(e.consume_text("cus_dev", "input-tokens", "-1", None, NOW), ERROR);
    assert_eq!(first_error(), ("invalid_value".into(), "/quantity".into()));
    assert_eq!(e.check_handle(9999, NOW), ERROR);
    assert_eq!(first_error().0, "stale_handle");
    assert_eq!(e.check_ids(u32::MAX, 1, NOW), ERROR, "lengths beyond the scratch buffer");
    e.scratch_ptr(u32::MAX);
    assert!(e.scratch_len() as usize <= crate::MAX_SCRATCH, "the scratch buffer is capped");
    assert!(e.quote(r#"{"planId": "plan_nope", "usage": {}}"#).is_none());
    assert!(!errors().is_empty());
    assert!(e.ingest(r#"{"id": "e1", "source": "s", "type": "llm.completion"}"#, NOW).is_none());
    assert_eq!(first_error(), ("missing_field".into(), "/subject".into()));
    assert!(!e.upsert_customer(r#"{"id": "c", "subscriptions": [{"id": "s", "planId": "nope"}]}"#));
    assert!(!errors().is_empty());
}

#[wasm_bindgen_test]
fn quote_and_validate_return_json_text() {
    let e = engine();
    let q: Value = serde_json::from_str(
        &e.quote(r#"{"planId": "plan_developer", "usage": {"bm_input": 2000000, "bm_output": 500000}}"#).unwrap(),
    )
    .unwrap();
    assert_eq!(q["total"], "6.98");
    assert!(validate_catalog("[]").contains("invalid_type"));
    let snapshot: Value = serde_json::from_str(SNAPSHOT).unwrap();
    assert_eq!(validate_catalog(&snapshot["catalog"].to_string()), "[]");
}

/// A tiny deterministic generator (no randomness source in the core or its tests).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const JUNK: &[&str] =
    &["", "0", "-1", "1e400", "null", "\"x\"", "{", "}", "[]", "1.5", "\u{0}", "é", "99999999999999999999999999999999"];

/// Mutates JSON text: replaces, deletes or inserts a few pieces.
fn mutate(text: &str, rng: &mut Lcg) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len().max(1));
        match rng.below(3) {
            0 if !s.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(s.len());
                s.drain(at..end);
            }
            1 => s.splice(at..at, JUNK[rng.below(JUNK.len())].chars()).for_each(drop),
            _ => {
                if let Some(c) = s.get_mut(at) {
                    *c = ['"', ',', ':', '0', '-', 'a', '{', ']'][rng.below(8)];
                }
            }
        }
    }
    s.into_iter().collect()
}

/// Every entry point on mutated input: it answers or reports an error, and never traps (a
/// panic in wasm would abort this test run).
#[wasm_bindgen_test]
fn no_input_makes_a_binding_trap() {
    let mut rng = Lcg(0x7011_6a7e);
    let mut loaded = 0;
    for _ in 0..1000 {
        let text = mutate(SNAPSHOT, &mut rng);
        if RawEngine::from_snapshot(&text, "{}").is_some() {
            loaded += 1;
        } else {
            assert!(!errors().is_empty(), "a failure always says why");
        }
        let _ = validate_catalog(&text);
    }
    assert!(loaded < 1000, "the mutations break most snapshots");
    let mut e = engine();
    let event = r#"{"id": "e1", "source": "s", "type": "llm.completion", "subject": "cus_dev", "time": "2026-11-05T09:00:00Z", "data": {"input_tokens": 10, "output_tokens": 5, "model": "small"}}"#;
    let quote =
        r#"{"planId": "plan_enterprise", "usage": {"bm_input": 2000000, "bm_output": 500000}, "eventCount": 3}"#;
    let customer = r#"{"id": "cus_new", "subscriptions": [{"id": "s1", "planId": "plan_business", "startedAt": "2026-11-01T00:00:00Z"}], "grants": [{"id": "g1", "featureKey": "input-tokens", "amount": "5"}]}"#;
    let ids = ["cus_dev", "cus_acme", "cus_trial", "", "é", "cus_dev\u{0}"];
    let keys = ["input-tokens", "priority-queue", "sla", "fine-tuning", "", "x"];
    let quantities = ["1", "0", "0.000001", "1e3", "-0", "1e28", "79228162514264337593543950335", "NaN", ""];
    let nows = [NOW, 0.0, -8.64e15, 8.64e15, 1.0e300, -0.5, f64::INFINITY];
    for i in 0..10_000 {
        let c = ids[rng.below(ids.len())];
        let k = keys[rng.below(keys.len())];
        let now = if i % 10 == 0 { nows[rng.below(nows.len())] } else { NOW + (rng.below(90) as f64) * 86_400_000.0 };
        match rng.below(8) {
            0 => {
                e.check(c, k, now);
            }
            1 => {
                e.consume(c, k, rng.next() as u32, now);
            }
            2 => {
                let q = quantities[rng.below(quantities.len())];
                e.consume_text(c, k, q, Some(format!("id{}", rng.below(5))), now);
            }
            3 => {
                let h = e.handle(c, k);
                if h >= 0 {
                    e.consume_handle_text(h as u32, quantities[rng.below(quantities.len())], now);
                    e.check_handle(h as u32, now);
                }
            }
            4 => {
                e.ingest(&mutate(event, &mut rng), now);
            }
            5 => {
                e.quote(&mutate(quote, &mut rng));
            }
            6 => {
                e.upsert_customer(&mutate(customer, &mut rng));
            }
            _ => {
                e.ingest(&event.replace("e1", &format!("e{i}")), now);
            }
        }
        let _ = take_errors();
    }
    // Still answering after all that.
    assert_ne!(e.check("cus_acme", "priority-queue", NOW), ERROR);
}
