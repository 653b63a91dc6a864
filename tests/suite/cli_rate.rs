//! `tollgate rate` (SPEC §9) through the built binary: exact stdout for good input, and for bad
//! input a non-zero exit with exactly one line on stderr and nothing on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A file in the temp directory, unique to this process and call, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> TempFile {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tollgate-cli-rate-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(crate::support::ROOT)
        .args(args)
        .output()
        .expect("run tollgate")
}

/// Runs `tollgate rate --model <model> <args…> --json` and returns stdout, requiring success.
fn rate_ok(model: &str, args: &[&str]) -> String {
    let m = TempFile::new("model.json", model);
    let mut all = vec!["rate", "--model", m.path()];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}, stderr: {stderr}", out.status);
    assert!(out.stderr.is_empty(), "stderr: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn line(precise: &str, amount: &str, currency: &str) -> String {
    format!("{{\"preciseAmount\": \"{precise}\", \"amount\": \"{amount}\", \"currency\": \"{currency}\"}}\n")
}

/// Asserts a failed run: non-zero exit, nothing on stdout, exactly one line on stderr.
fn assert_bad(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).expect("utf-8 stderr");
    assert!(!out.status.success(), "expected failure, got success; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "stderr must be one line: {stderr:?}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    stderr
}

fn rate_bad(model: &str, args: &[&str]) -> String {
    let m = TempFile::new("model.json", model);
    let mut all = vec!["rate", "--model", m.path()];
    all.extend_from_slice(args);
    all.push("--json");
    assert_bad(&run(&all))
}

const GRADUATED: &str = r#"{ "type": "graduated", "tiers": [
    { "upTo": "100", "unitPrice": "0.5" },
    { "upTo": null, "unitPrice": "0.001" } ] }"#;

#[test]
fn per_unit_prints_precise_and_rounded_amounts() {
    // 1000 × 0.0512345 = 51.2345 → USD 51.23
    let out = rate_ok(r#"{ "type": "per_unit", "unitPrice": "0.0512345" }"#, &["--quantity", "1000"]);
    assert_eq!(out, line("51.2345", "51.23", "USD"));
}

#[test]
fn graduated_prints_precise_and_rounded_amounts() {
    // 100 × 0.5 = 50; (1334.5 − 100) × 0.001 = 1234.5 × 0.001 = 1.2345; total 51.2345 → 51.23
    assert_eq!(rate_ok(GRADUATED, &["--quantity", "1334.5"]), line("51.2345", "51.23", "USD"));
    // explicit USD is the same
    assert_eq!(rate_ok(GRADUATED, &["--quantity", "1334.5", "--currency", "USD"]), line("51.2345", "51.23", "USD"));
}

#[test]
fn amount_keeps_the_currency_places() {
    let m = r#"{ "type": "per_unit", "unitPrice": "0.5" }"#;
    // 200 × 0.5 = 100 → "100.00"; precise in plain notation without trailing zeros: "100"
    assert_eq!(rate_ok(m, &["--quantity", "200"]), line("100", "100.00", "USD"));
    // 0 × 0.5 = 0 → "0.00"
    assert_eq!(rate_ok(m, &["--quantity", "0"]), line("0", "0.00", "USD"));
    // half away from zero: 0.025 × 0.5 = 0.0125 → 0.01; 0.05 × 0.5 = 0.025 → 0.03
    assert_eq!(rate_ok(m, &["--quantity", "0.025"]), line("0.0125", "0.01", "USD"));
    assert_eq!(rate_ok(m, &["--quantity", "0.05"]), line("0.025", "0.03", "USD"));
}

#[test]
fn jpy_has_no_decimals() {
    let m = r#"{ "type": "per_unit", "unitPrice": "0.5" }"#;
    // 2047 × 0.5 = 1023.5 → half away from zero → 1024
    assert_eq!(rate_ok(m, &["--quantity", "2047", "--currency", "JPY"]), line("1023.5", "1024", "JPY"));
    // 2048 × 0.5 = 1024 exactly → "1024"
    assert_eq!(rate_ok(m, &["--quantity", "2048", "--currency", "JPY"]), line("1024", "1024", "JPY"));
}

#[test]
fn kwd_has_three_decimals() {
    let m = r#"{ "type": "per_unit", "unitPrice": "10.1255" }"#;
    // 1 × 10.1255 → 10.126 (half away from zero at 3 places)
    assert_eq!(rate_ok(m, &["--quantity", "1", "--currency", "KWD"]), line("10.1255", "10.126", "KWD"));
    // 2 × 10.1255 = 20.251 → "20.251"
    assert_eq!(rate_ok(m, &["--quantity", "2", "--currency", "KWD"]), line("20.251", "20.251", "KWD"));
    // flat 7 → "7.000"
    assert_eq!(
        rate_ok(r#"{ "type": "flat", "amount": "7" }"#, &["--quantity", "1", "--currency", "KWD"]),
        line("7", "7.000", "KWD")
    );
}

#[test]
fn negative_per_unit_is_a_credit() {
    // −5 × 0.125 = −0.625 → −0.63 (away from zero)
    let out = rate_ok(r#"{ "type": "per_unit", "unitPrice": "0.125" }"#, &["--quantity", "-5"]);
    assert_eq!(out, line("-0.625", "-0.63", "USD"));
}

#[test]
fn graduated_zero_charges_tier_one_flat_price() {
    let m = r#"{ "type": "graduated", "tiers": [
        { "upTo": "10", "unitPrice": "1", "flatPrice": "2.5" }, { "upTo": null, "unitPrice": "0.5" } ] }"#;
    // tier 1 always reached: 0 × 1 + 2.5 = 2.5
    assert_eq!(rate_ok(m, &["--quantity", "0"]), line("2.5", "2.50", "USD"));
}

#[test]
fn events_as_bare_values() {
    let events = TempFile::new("events.json", r#"[1, "2.5", 3]"#);
    // (1 + 2.5 + 3) × 0.5 = 3.25
    let out = rate_ok(r#"{ "type": "per_unit", "unitPrice": "0.5" }"#, &["--events", events.path()]);
    assert_eq!(out, line("3.25", "3.25", "USD"));
}

#[test]
fn events_with_percentage_allowance() {
    let events = TempFile::new("events.json", r#"[60, { "value": "60" }, 30]"#);
    let m = r#"{ "type": "percentage", "rate": "0.1", "fixedFee": "0.5", "freeAmount": "100" }"#;
    // 60 free; 60 crosses: 0.1 × 20 + 0.5 = 2.5; 30: 0.1 × 30 + 0.5 = 3.5; total 6
    assert_eq!(rate_ok(m, &["--events", events.path()]), line("6", "6.00", "USD"));
}

#[test]
fn events_with_data_for_dynamic_event_property() {
    let events = TempFile::new(
        "events.json",
        r#"[{ "value": 10, "data": { "unit_price": "1.25" } },
            { "value": "4", "data": { "unit_price": 0.755 } }]"#,
    );
    let m =
        r#"{ "type": "dynamic", "source": { "eventProperty": "$.unit_price" }, "minPrice": "0.5", "maxPrice": "2" }"#;
    // 10 × 1.25 + 4 × 0.755 = 12.5 + 3.02 = 15.52
    assert_eq!(rate_ok(m, &["--events", events.path()]), line("15.52", "15.52", "USD"));
}

#[test]
fn events_with_data_for_matrix_dimension() {
    let events = TempFile::new(
        "events.json",
        r#"[{ "value": 100, "data": { "model": "small" } },
            { "value": 150, "data": { "model": "large" } },
            { "value": 200, "data": { "model": "small" } },
            { "value": 10, "data": { "model": "medium" } }]"#,
    );
    let m = r#"{ "type": "matrix", "dimension": "model", "cells": {
        "small": { "type": "per_unit", "unitPrice": "0.001" },
        "large": { "type": "graduated", "tiers": [
            { "upTo": "100", "unitPrice": "0.1" }, { "upTo": null, "unitPrice": "0.05" } ] } },
        "default": { "type": "per_unit", "unitPrice": "0.01" } }"#;
    // small: 300 × 0.001 = 0.3; large: 100 × 0.1 + 50 × 0.05 = 12.5; medium: 10 × 0.01 = 0.1 → 12.9
    assert_eq!(rate_ok(m, &["--events", events.path()]), line("12.9", "12.90", "USD"));
}

#[test]
fn event_count_feeds_the_percentage_fixed_fee() {
    let m = r#"{ "type": "percentage", "rate": "0.029", "fixedFee": "0.30", "freeEvents": "1" }"#;
    // 0.029 × 1000 + 0.30 × max(0, 5 − 1) = 29 + 1.2 = 30.2
    assert_eq!(rate_ok(m, &["--quantity", "1000", "--event-count", "5"]), line("30.2", "30.20", "USD"));
    // without an event count: 0.029 × 1000 = 29
    assert_eq!(rate_ok(m, &["--quantity", "1000"]), line("29", "29.00", "USD"));
}

#[test]
fn rates_file_feeds_a_market_price() {
    let m = r#"{ "type": "dynamic", "source": { "rate": "gpu-spot" }, "minPrice": "1", "maxPrice": "3" }"#;
    let inside = TempFile::new("rates.json", r#"{ "gpu-spot": "2.75" }"#);
    // 10 × 2.75 = 27.5
    assert_eq!(rate_ok(m, &["--quantity", "10", "--rates", inside.path()]), line("27.5", "27.50", "USD"));
    let high = TempFile::new("rates.json", r#"{ "rates": { "gpu-spot": "3.50" } }"#);
    // 3.50 clamped to 3 → 10 × 3 = 30
    assert_eq!(rate_ok(m, &["--quantity", "10", "--rates", high.path()]), line("30", "30.00", "USD"));
}

// ---------------------------------------------------------------- bad input

#[test]
fn missing_model_file() {
    let missing = std::env::temp_dir().join(format!("tollgate-cli-rate-{}-does-not-exist.json", std::process::id()));
    assert!(!Path::new(&missing).exists());
    let out = run(&["rate", "--model", missing.to_str().unwrap(), "--quantity", "1", "--json"]);
    assert_bad(&out);
}

#[test]
fn missing_events_file() {
    let m = TempFile::new("model.json", r#"{ "type": "per_unit", "unitPrice": "1" }"#);
    let missing = std::env::temp_dir().join(format!("tollgate-cli-rate-{}-no-events.json", std::process::id()));
    assert_bad(&run(&["rate", "--model", m.path(), "--events", missing.to_str().unwrap(), "--json"]));
}

#[test]
fn invalid_model() {
    // tiers not ascending
    let err = rate_bad(
        r#"{ "type": "graduated", "tiers": [{ "upTo": "100" }, { "upTo": "50" }, { "upTo": null }] }"#,
        &["--quantity", "1"],
    );
    assert!(err.contains("tiers_not_ascending"), "{err}");
    // unknown type
    rate_bad(r#"{ "type": "per_token", "unitPrice": "1" }"#, &["--quantity", "1"]);
    // not JSON
    rate_bad("{ type: per_unit", &["--quantity", "1"]);
    // negative price
    rate_bad(r#"{ "type": "per_unit", "unitPrice": "-1" }"#, &["--quantity", "1"]);
}

#[test]
fn unknown_currency() {
    rate_bad(r#"{ "type": "per_unit", "unitPrice": "1" }"#, &["--quantity", "1", "--currency", "XYZ"]);
    rate_bad(r#"{ "type": "per_unit", "unitPrice": "1" }"#, &["--quantity", "1", "--currency", "usd"]);
}

#[test]
fn negative_quantity_on_graduated() {
    let err = rate_bad(GRADUATED, &["--quantity", "-1"]);
    assert!(err.contains("negative_quantity"), "{err}");
}

#[test]
fn bad_quantity_and_missing_arguments() {
    let m = r#"{ "type": "per_unit", "unitPrice": "1" }"#;
    rate_bad(m, &["--quantity", "ten"]);
    // neither --quantity nor --events
    rate_bad(m, &[]);
    // a dynamic eventProperty model from a total needs events
    let err = rate_bad(r#"{ "type": "dynamic", "source": { "eventProperty": "$.p" } }"#, &["--quantity", "1"]);
    assert!(err.contains("events_required"), "{err}");
}

#[test]
fn rejected_events() {
    let m = r#"{ "type": "dynamic", "source": { "eventProperty": "$.unit_price" }, "maxPrice": "2" }"#;
    let events = TempFile::new("events.json", r#"[{ "value": 1, "data": { "unit_price": "2.5" } }]"#);
    let err = rate_bad(m, &["--events", events.path()]);
    assert!(err.contains("price_out_of_bounds"), "{err}");

    let matrix = r#"{ "type": "matrix", "dimension": "model", "cells": {
        "small": { "type": "per_unit", "unitPrice": "1" } } }"#;
    let events = TempFile::new("events.json", r#"[{ "value": 1, "data": { "model": "huge" } }]"#);
    let err = rate_bad(matrix, &["--events", events.path()]);
    assert!(err.contains("no_price_for_dimension"), "{err}");

    let not_array = TempFile::new("events.json", r#"{ "value": 1 }"#);
    rate_bad(r#"{ "type": "per_unit", "unitPrice": "1" }"#, &["--events", not_array.path()]);
}

#[test]
fn unknown_market_rate() {
    let m = r#"{ "type": "dynamic", "source": { "rate": "gpu-spot" } }"#;
    let rates = TempFile::new("rates.json", r#"{ "cpu-spot": "1" }"#);
    let err = rate_bad(m, &["--quantity", "1", "--rates", rates.path()]);
    assert!(err.contains("unknown_rate"), "{err}");
}

#[test]
fn overflow_is_an_error() {
    let err = rate_bad(r#"{ "type": "per_unit", "unitPrice": "79228162514264337593543950335" }"#, &["--quantity", "2"]);
    assert!(err.contains("overflow"), "{err}");
}

#[test]
fn huge_amount_that_cannot_carry_the_currency_places_is_an_error() {
    // 79228162514264337593543950335 × 1 is representable, but not with two decimal places.
    rate_bad(r#"{ "type": "per_unit", "unitPrice": "1" }"#, &["--quantity", "79228162514264337593543950335"]);
}

// ---------------------------------------------------------------- the command line itself

#[test]
fn negative_quantity_as_opt_equals_value_and_as_separate_value() {
    let m = TempFile::new("model.json", r#"{ "type": "per_unit", "unitPrice": "0.002" }"#);
    // −2500 × 0.002 = −5 (a credit) → "-5.00"
    for args in [["--quantity=-2500"].as_slice(), ["--quantity", "-2500"].as_slice()] {
        let mut all = vec!["rate", "--model", m.path()];
        all.extend_from_slice(args);
        all.push("--json");
        let out = run(&all);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), line("-5", "-5.00", "USD"));
    }
    // --model=FILE too
    let model_arg = format!("--model={}", m.path());
    let out = run(&["rate", &model_arg, "--quantity=-2500", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), line("-5", "-5.00", "USD"));
}

#[test]
fn rate_help_describes_the_subcommand() {
    for flag in ["--help", "-h"] {
        let out = run(&["rate", flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Usage: tollgate rate"), "{stdout}");
        assert!(stdout.contains("--quantity <Q>") && stdout.contains("--events <EVENTS.json>"), "{stdout}");
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("tollgate {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_name_the_option_and_exit_2() {
    let m = TempFile::new("model.json", r#"{ "type": "per_unit", "unitPrice": "1" }"#);
    let out = run(&["rate", "--model", m.path(), "--quantity", "1", "--curency", "EUR"]);
    assert_eq!(out.status.code(), Some(2));
    let err = assert_bad(&out);
    assert!(err.starts_with("tollgate: ") && err.contains("'--curency'"), "{err}");
    assert!(err.contains("--currency"), "the suggestion: {err}");
    // a missing value, both inputs, an event count with events, neither input
    for (args, named) in [
        (vec!["--quantity"], "'--quantity <Q>'"),
        (vec!["--quantity", "1", "--events", m.path()], "'--quantity <Q>'"),
        (vec!["--event-count", "1", "--events", m.path()], "'--event-count <N>'"),
        (vec![], "--quantity <Q>|--events <EVENTS.json>"),
    ] {
        let out = run(&[["rate", "--model", m.path()].as_slice(), &args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = assert_bad(&out);
        assert!(err.contains(named) && err.ends_with("try `tollgate rate --help`\n"), "{err}");
    }
    // a bad value is bad input (exit 1), named by its option
    let out = run(&["rate", "--model", m.path(), "--quantity", "ten"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(assert_bad(&out).starts_with("tollgate: --quantity: invalid_decimal"));
}
