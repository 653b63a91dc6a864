//! Metering (SPEC §3 aggregations, §4 periods, §5 events) through `Engine::ingest` and
//! `Engine::quantity`: every aggregation on hand-made event streams, filters and `groupBy`,
//! rejected and unmatched events, idempotency by `(source, id)`, hard-limit denials that apply
//! nothing, and month-end billing periods. Expected quantities are computed by hand; the
//! arithmetic is written next to them.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tollgate::engine::{Engine, IngestOutcome, Options};
use tollgate::entitlements::{Decision, Reason};
use tollgate::time::{period_containing, Duration, Period, Timestamp};
use tollgate::{Code, Decimal};

// ---------------------------------------------------------------- helpers

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

fn period(start: &str, end: &str) -> Period {
    Period { start: ts(start), end: ts(end) }
}

/// The monthly billing periods of a subscription started on Nov 1, 2026.
fn nov() -> Period {
    period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z") // 30 days
}
fn dec() -> Period {
    period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z") // 31 days
}
fn jan() -> Period {
    period("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z") // 31 days
}
fn feb() -> Period {
    period("2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z") // 28 days
}

/// A catalog with the given metrics, no features, and a monthly plan `plan` with no prices.
fn metrics_catalog(metrics: Value) -> Value {
    let mut metrics = metrics;
    for m in metrics.as_array_mut().expect("a list of metrics") {
        m["productId"] = json!("prod");
        if m.get("name").is_none() {
            m["name"] = m["id"].clone();
        }
    }
    json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod", "name": "Product" }],
        "billableMetrics": metrics,
        "plans": [{ "id": "plan", "productId": "prod", "name": "Plan", "currency": "USD",
                    "billingCadence": "P1M", "prices": [] }]
    })
}

/// An engine over `metrics` with customers `cus` (and `cus2`) subscribed from `started`.
fn engine_with(metrics: Value, started: &str) -> Engine {
    let snapshot = json!({
        "catalog": metrics_catalog(metrics),
        "customers": [
            { "id": "cus", "subscriptions": [{ "id": "s1", "planId": "plan", "startedAt": started }] },
            { "id": "cus2", "subscriptions": [{ "id": "s2", "planId": "plan", "startedAt": started }] }
        ]
    });
    Engine::from_snapshot(&snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

fn metric(id: &str, event_type: &str, aggregation: &str, value: Option<&str>) -> Value {
    let mut m = json!({ "id": id, "eventType": event_type, "aggregation": aggregation });
    if let Some(v) = value {
        m["valueProperty"] = json!(v);
    }
    m
}

fn event(id: &str, kind: &str, subject: &str, time: &str, data: Value) -> Value {
    json!({ "id": id, "source": "edge-fra", "type": kind, "subject": subject, "time": time, "data": data })
}

/// Ingests an event at its own time and expects it to be accepted.
fn ok(e: &mut Engine, id: &str, kind: &str, time: &str, data: Value) -> IngestOutcome {
    ingest_for(e, "cus", id, kind, time, data)
}

fn ingest_for(e: &mut Engine, subject: &str, id: &str, kind: &str, time: &str, data: Value) -> IngestOutcome {
    let out = e.ingest(&event(id, kind, subject, time, data), ts(time)).unwrap_or_else(|err| panic!("{id}: {err:?}"));
    assert!(out.allowed, "{id} was denied: {out:?}");
    out
}

fn q(e: &Engine, customer: &str, metric_id: &str, p: Period) -> Decimal {
    e.quantity(customer, metric_id, p).expect("quantity")
}

fn figs(decision: &Decision) -> [String; 4] {
    let v = serde_json::to_value(decision).expect("a decision serialises");
    ["balance", "usage", "overage", "limit"].map(|k| match &v[k] {
        Value::String(s) => s.clone(),
        other => panic!("{k} is {other}, not a string, in {v}"),
    })
}

// ---------------------------------------------------------------- aggregations

#[test]
fn sum_adds_values_given_as_numbers_or_strings() {
    let mut e = engine_with(json!([metric("bm", "req", "SUM", Some("$.n"))]), "2026-11-01T00:00:00Z");
    ok(&mut e, "1", "req", "2026-11-02T00:00:00Z", json!({ "n": 1200 }));
    ok(&mut e, "2", "req", "2026-11-03T00:00:00Z", json!({ "n": "300" }));
    ok(&mut e, "3", "req", "2026-11-04T00:00:00Z", json!({ "n": "1.5e1" })); // 15
    ok(&mut e, "4", "req", "2026-11-05T00:00:00Z", json!({ "n": "0.25" }));
    ok(&mut e, "5", "req", "2026-12-05T00:00:00Z", json!({ "n": 7 })); // next period
    assert_eq!(q(&e, "cus", "bm", nov()), d("1515.25")); // 1200 + 300 + 15 + 0.25
    assert_eq!(q(&e, "cus", "bm", dec()), d("7"));
    assert_eq!(q(&e, "cus2", "bm", nov()), d("0")); // another customer's ledger is empty
}

#[test]
fn count_counts_events_whatever_their_data() {
    let mut e = engine_with(json!([metric("bm", "req", "COUNT", None)]), "2026-11-01T00:00:00Z");
    ok(&mut e, "1", "req", "2026-11-02T00:00:00Z", json!({ "n": 1200 }));
    ok(&mut e, "2", "req", "2026-11-03T00:00:00Z", json!({}));
    ok(&mut e, "3", "req", "2026-11-04T00:00:00Z", json!({ "n": "not a number" }));
    ok(&mut e, "4", "req", "2026-11-30T23:59:59Z", json!({}));
    ok(&mut e, "5", "req", "2026-12-01T00:00:00Z", json!({})); // the boundary belongs to December
    assert_eq!(q(&e, "cus", "bm", nov()), d("4"));
    assert_eq!(q(&e, "cus", "bm", dec()), d("1"));
}

#[test]
fn avg_is_the_mean_of_the_values_of_the_period() {
    let mut e = engine_with(json!([metric("bm", "req", "AVG", Some("$.n"))]), "2026-11-01T00:00:00Z");
    for (id, day, n) in [("1", "02", "10"), ("2", "03", "20"), ("3", "04", "45")] {
        ok(&mut e, id, "req", &format!("2026-11-{day}T00:00:00Z"), json!({ "n": n }));
    }
    ok(&mut e, "4", "req", "2026-12-02T00:00:00Z", json!({ "n": "1.5" }));
    ok(&mut e, "5", "req", "2026-12-03T00:00:00Z", json!({ "n": "2.5" }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("25")); // (10 + 20 + 45) / 3 = 75 / 3
    assert_eq!(q(&e, "cus", "bm", dec()), d("2")); // (1.5 + 2.5) / 2
    assert_eq!(q(&e, "cus", "bm", jan()), d("0")); // no events
}

#[test]
fn min_and_max_of_the_values_of_the_period() {
    let mut e = engine_with(
        json!([metric("bm_min", "req", "MIN", Some("$.n")), metric("bm_max", "req", "MAX", Some("$.n"))]),
        "2026-11-01T00:00:00Z",
    );
    for (id, day, n) in [("1", "02", "7"), ("2", "03", "3.5"), ("3", "04", "9"), ("4", "05", "4")] {
        ok(&mut e, id, "req", &format!("2026-11-{day}T00:00:00Z"), json!({ "n": n }));
    }
    ok(&mut e, "5", "req", "2026-12-02T00:00:00Z", json!({ "n": 12 }));
    assert_eq!(q(&e, "cus", "bm_min", nov()), d("3.5")); // min(7, 3.5, 9, 4)
    assert_eq!(q(&e, "cus", "bm_max", nov()), d("9")); // max(7, 3.5, 9, 4)
                                                       // December starts afresh: its only value is both min and max.
    assert_eq!(q(&e, "cus", "bm_min", dec()), d("12"));
    assert_eq!(q(&e, "cus", "bm_max", dec()), d("12"));
}

#[test]
fn unique_count_counts_distinct_values_per_period() {
    let mut e = engine_with(json!([metric("bm", "login", "UNIQUE_COUNT", Some("$.user"))]), "2026-11-01T00:00:00Z");
    for (id, user) in [("1", "u1"), ("2", "u2"), ("3", "u1"), ("4", "u3"), ("5", "u2")] {
        ok(&mut e, id, "login", "2026-11-10T00:00:00Z", json!({ "user": user }));
    }
    ok(&mut e, "6", "login", "2026-12-10T00:00:00Z", json!({ "user": "u1" }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("3")); // {u1, u2, u3}
    assert_eq!(q(&e, "cus", "bm", dec()), d("1")); // {u1}
}

#[test]
fn latest_is_the_value_with_the_latest_time_not_the_last_ingested() {
    let mut e = engine_with(json!([metric("bm", "gauge", "LATEST", Some("$.v"))]), "2026-11-01T00:00:00Z");
    ok(&mut e, "1", "gauge", "2026-11-05T00:00:00Z", json!({ "v": 5 }));
    ok(&mut e, "2", "gauge", "2026-11-20T00:00:00Z", json!({ "v": 8 }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("8"));
    // Out of order: an earlier time ingested last does not replace the Nov 20 value.
    let late = event("3", "gauge", "cus", "2026-11-10T00:00:00Z", json!({ "v": 100 }));
    assert!(e.ingest(&late, ts("2026-11-21T00:00:00Z")).unwrap().allowed);
    assert_eq!(q(&e, "cus", "bm", nov()), d("8"));
    // A later time does.
    ok(&mut e, "4", "gauge", "2026-11-25T00:00:00Z", json!({ "v": 40 }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("40"));
}

#[test]
fn latest_tie_in_time_goes_to_the_later_ingested_event() {
    let mut e = engine_with(json!([metric("bm", "gauge", "LATEST", Some("$.v"))]), "2026-11-01T00:00:00Z");
    ok(&mut e, "1", "gauge", "2026-11-25T00:00:00Z", json!({ "v": 40 }));
    ok(&mut e, "2", "gauge", "2026-11-25T00:00:00Z", json!({ "v": 4 }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("4")); // same time: the later arrival (not the larger)
    ok(&mut e, "3", "gauge", "2026-11-25T00:00:00Z", json!({ "v": 17 }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("17"));
}

// ---------------------------------------------------------------- WEIGHTED_SUM

fn storage_engine() -> Engine {
    engine_with(json!([metric("bm_gb", "storage", "WEIGHTED_SUM", Some("$.gb"))]), "2026-11-01T00:00:00Z")
}

#[test]
fn weighted_sum_level_change_mid_period_and_carried_into_the_next_periods() {
    let mut e = storage_engine();
    // November (30 days): 10 GB from Nov 1, 40 GB from Nov 16.
    ok(&mut e, "1", "storage", "2026-11-01T00:00:00Z", json!({ "gb": 10 }));
    ok(&mut e, "2", "storage", "2026-11-16T00:00:00Z", json!({ "gb": 40 }));
    // (10 × 15 days + 40 × 15 days) / 30 days = 750 / 30 = 25
    assert_eq!(q(&e, "cus", "bm_gb", nov()), d("25"));
    // December before any December event: the 40 GB level holds all month.
    assert_eq!(q(&e, "cus", "bm_gb", dec()), d("40"));
    // December (31 days): 40 GB carried in until Dec 11, then 9 GB.
    ok(&mut e, "3", "storage", "2026-12-11T00:00:00Z", json!({ "gb": 9 }));
    // (40 × 10 days + 9 × 21 days) / 31 days = (400 + 189) / 31 = 589 / 31 = 19
    assert_eq!(q(&e, "cus", "bm_gb", dec()), d("19"));
    // January and February have no events: they inherit the last level, 9 GB.
    assert_eq!(q(&e, "cus", "bm_gb", jan()), d("9"));
    assert_eq!(q(&e, "cus", "bm_gb", feb()), d("9"));
    // Before the first event there is no level: October is 0.
    assert_eq!(q(&e, "cus", "bm_gb", period("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")), d("0"));
}

#[test]
fn weighted_sum_starts_from_zero_and_ignores_ingestion_order() {
    let mut e = storage_engine();
    // cus: first level 30 GB on Nov 16: (0 × 15 + 30 × 15) / 30 = 15
    ok(&mut e, "1", "storage", "2026-11-16T00:00:00Z", json!({ "gb": 30 }));
    assert_eq!(q(&e, "cus", "bm_gb", nov()), d("15"));
    // cus2: the two levels of the previous test, the later one ingested first.
    ingest_for(&mut e, "cus2", "2", "storage", "2026-11-16T00:00:00Z", json!({ "gb": 40 }));
    let early = event("3", "storage", "cus2", "2026-11-01T00:00:00Z", json!({ "gb": 10 }));
    assert!(e.ingest(&early, ts("2026-11-17T00:00:00Z")).unwrap().allowed);
    assert_eq!(q(&e, "cus2", "bm_gb", nov()), d("25")); // (10 × 15 + 40 × 15) / 30
                                                        // The level that carries into December is the one latest in time (40), not the last ingested.
    assert_eq!(q(&e, "cus2", "bm_gb", dec()), d("40"));
}

#[test]
fn weighted_sum_with_group_by_sums_each_group_level_series() {
    let mut m = metric("bm_gb", "storage", "WEIGHTED_SUM", Some("$.gb"));
    m["groupBy"] = json!({ "disk": "$.disk" });
    let mut e = engine_with(json!([m]), "2026-11-01T00:00:00Z");
    // Disk a: 10 GB all November. Disk b: 6 GB from Nov 16.
    ok(&mut e, "1", "storage", "2026-11-01T00:00:00Z", json!({ "gb": 10, "disk": "a" }));
    ok(&mut e, "2", "storage", "2026-11-16T00:00:00Z", json!({ "gb": 6, "disk": "b" }));
    // a: 10; b: (0 × 15 + 6 × 15) / 30 = 3; total 13 (not a single series 10 → 6: (10 × 15 + 6 × 15) / 30 = 8)
    assert_eq!(q(&e, "cus", "bm_gb", nov()), d("13"));
    // December: each disk's level carries: 10 + 6 = 16.
    assert_eq!(q(&e, "cus", "bm_gb", dec()), d("16"));
}

// ---------------------------------------------------------------- filters and groupBy

#[test]
fn filters_select_events_by_value_or_list_of_values() {
    let mut eu_us = metric("bm_eu_us", "req", "SUM", Some("$.n"));
    eu_us["filter"] = json!({ "$.region": ["eu", "us"] });
    let mut gold = metric("bm_gold", "req", "COUNT", None);
    gold["filter"] = json!({ "$.account.tier": "gold" });
    let mut e = engine_with(json!([eu_us, gold]), "2026-11-01T00:00:00Z");

    ok(&mut e, "1", "req", "2026-11-02T00:00:00Z", json!({ "region": "eu", "n": 10 }));
    ok(&mut e, "2", "req", "2026-11-02T00:00:00Z", json!({ "region": "us", "n": 20 }));
    ok(&mut e, "3", "req", "2026-11-02T00:00:00Z", json!({ "region": "eu", "n": 1, "account": { "tier": "gold" } }));
    ok(&mut e, "4", "req", "2026-11-02T00:00:00Z", json!({ "region": "ap", "n": 5, "account": { "tier": "gold" } }));
    // Matches neither metric: region ap, no gold tier → unmatched (accepted, nothing counted).
    let out = ok(&mut e, "5", "req", "2026-11-02T00:00:00Z", json!({ "region": "ap", "n": 40 }));
    assert!(out.unmatched);
    // No region at all, silver tier: unmatched as well.
    let out = ok(&mut e, "6", "req", "2026-11-02T00:00:00Z", json!({ "n": 40, "account": { "tier": "silver" } }));
    assert!(out.unmatched);
    // Filtered out, a missing value is not needed: accepted as unmatched, no error.
    let out = ok(&mut e, "7", "req", "2026-11-02T00:00:00Z", json!({ "region": "ap" }));
    assert!(out.unmatched);

    assert_eq!(q(&e, "cus", "bm_eu_us", nov()), d("31")); // 10 + 20 + 1
    assert_eq!(q(&e, "cus", "bm_gold", nov()), d("2")); // events 3 and 4
}

#[test]
fn group_by_splits_the_quantity_by_dimension() {
    let mut m = metric("bm", "llm", "SUM", Some("$.tokens"));
    m["groupBy"] = json!({ "model": "$.model" });
    let mut e = engine_with(json!([m]), "2026-11-01T00:00:00Z");
    ok(&mut e, "1", "llm", "2026-11-02T00:00:00Z", json!({ "tokens": 100, "model": "small" }));
    ok(&mut e, "2", "llm", "2026-11-03T00:00:00Z", json!({ "tokens": 20, "model": "large" }));
    ok(&mut e, "3", "llm", "2026-11-04T00:00:00Z", json!({ "tokens": 30, "model": "small" }));
    ok(&mut e, "4", "llm", "2026-11-05T00:00:00Z", json!({ "tokens": 5 }));
    assert_eq!(q(&e, "cus", "bm", nov()), d("155")); // 100 + 20 + 30 + 5

    let index = e.catalog().billable_metrics.iter().position(|m| m.id == "bm").unwrap();
    let metric = e.catalog().metric("bm").unwrap();
    let ledger = &e.customer("cus").unwrap().ledgers[index];
    let groups: BTreeMap<Vec<Option<String>>, Decimal> =
        ledger.group_quantities(metric, nov()).unwrap().into_iter().collect();
    let expected: BTreeMap<Vec<Option<String>>, Decimal> = [
        (vec![Some("small".to_string())], d("130")), // 100 + 30
        (vec![Some("large".to_string())], d("20")),
        (vec![None], d("5")), // no model
    ]
    .into_iter()
    .collect();
    assert_eq!(groups, expected);
}

// ---------------------------------------------------------------- rejected and unmatched events

#[test]
fn missing_or_non_numeric_value_is_rejected_and_nothing_is_applied() {
    let mut e = engine_with(
        json!([metric("bm_tokens", "llm", "SUM", Some("$.usage.tokens")), metric("bm_calls", "llm", "COUNT", None)]),
        "2026-11-01T00:00:00Z",
    );
    ok(&mut e, "1", "llm", "2026-11-02T00:00:00Z", json!({ "usage": { "tokens": 10 } }));
    for (i, data) in [
        json!({}),                              // missing
        json!({ "usage": {} }),                 // missing inside
        json!({ "usage": { "tokens": null } }), // null
        json!({ "usage": { "tokens": "abc" } }),
        json!({ "usage": { "tokens": true } }),
        json!({ "usage": { "tokens": [1] } }),
        json!({ "usage": { "tokens": { "n": 1 } } }),
    ]
    .into_iter()
    .enumerate()
    {
        let bad = event("2", "llm", "cus", "2026-11-03T00:00:00Z", data.clone());
        let err = e.ingest(&bad, ts("2026-11-03T00:00:00Z")).expect_err("a bad value is an error");
        assert_eq!(err.code, Code::MissingProperty, "case {i}: {data}: {err:?}");
        assert_eq!(err.code.as_str(), "missing_property");
        assert!(err.path.contains("tokens"), "case {i}: the path names the property: {err:?}");
        // Nothing applied: neither the SUM nor the COUNT that the event also matches.
        assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("10"), "case {i}");
        assert_eq!(q(&e, "cus", "bm_calls", nov()), d("1"), "case {i}");
    }
    // The rejected event was not remembered: sent again, corrected, it is a new event.
    let out = ok(&mut e, "2", "llm", "2026-11-03T00:00:00Z", json!({ "usage": { "tokens": "5" } }));
    assert!(!out.duplicate);
    assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("15")); // 10 + 5
    assert_eq!(q(&e, "cus", "bm_calls", nov()), d("2"));
}

#[test]
fn an_event_matching_no_metric_is_accepted_as_unmatched() {
    let mut e = engine_with(json!([metric("bm", "llm", "SUM", Some("$.tokens"))]), "2026-11-01T00:00:00Z");
    let out = ok(&mut e, "1", "something.else", "2026-11-02T00:00:00Z", json!({ "tokens": 99 }));
    assert!(out.unmatched);
    assert!(out.allowed);
    assert_eq!(out.reason, Reason::Ok);
    assert!(out.decisions.is_empty());
    assert!(!out.duplicate);
    assert_eq!(serde_json::to_value(&out).unwrap()["unmatched"], json!(true));
    assert_eq!(q(&e, "cus", "bm", nov()), d("0"));
    // An event a metric counts but that no price of the customer's plans charges and no
    // feature of theirs consumes is metered (it exists) and still unmatched: nothing bills it.
    let out = ok(&mut e, "2", "llm", "2026-11-02T00:00:00Z", json!({ "tokens": 3 }));
    assert!(out.unmatched && out.allowed, "{out:?}");
    assert_eq!(q(&e, "cus", "bm", nov()), d("3"));
}

#[test]
fn an_event_for_an_unknown_customer_is_denied_not_an_error() {
    let mut e = engine_with(json!([metric("bm", "llm", "SUM", Some("$.tokens"))]), "2026-11-01T00:00:00Z");
    let out = e
        .ingest(
            &event("1", "llm", "cus_ghost", "2026-11-02T00:00:00Z", json!({ "tokens": 5 })),
            ts("2026-11-02T00:00:00Z"),
        )
        .expect("a denial is a value");
    assert!(!out.allowed);
    assert_eq!(serde_json::to_value(&out).unwrap()["reason"], json!("unknown_customer"));
    assert_eq!(q(&e, "cus", "bm", nov()), d("0"));
}

// ---------------------------------------------------------------- idempotency and hard limits

/// A hard-limited `tokens` feature (100 per month) consumed through `bm_tokens`, plus a COUNT
/// of the same events (`bm_calls`) that feeds no feature.
fn limited_engine() -> Engine {
    let snapshot = json!({
        "catalog": {
            "schemaVersion": 1, "catalogVersion": 1,
            "products": [{ "id": "prod", "name": "Product" }],
            "features": [{ "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" }],
            "billableMetrics": [
                { "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm",
                  "aggregation": "SUM", "valueProperty": "$.tokens" },
                { "id": "bm_calls", "productId": "prod", "name": "Calls", "eventType": "llm", "aggregation": "COUNT" }
            ],
            "plans": [{ "id": "plan", "productId": "prod", "name": "Plan", "currency": "USD", "billingCadence": "P1M",
                        "prices": [{ "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
                                     "model": { "type": "per_unit", "unitPrice": "0.01" },
                                     "feature": { "featureId": "feat_tokens",
                                                  "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                                                   "issueAfterReset": "100" } } }] }]
        },
        "customers": [{ "id": "cus", "subscriptions": [{ "id": "s", "planId": "plan", "startedAt": "2026-11-01T00:00:00Z" }] }]
    });
    Engine::from_snapshot(&snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

fn tokens_balance(e: &mut Engine, at: &str) -> [String; 4] {
    figs(&e.check("cus", "tokens", ts(at)).unwrap())
}

#[test]
fn a_repeated_event_is_a_duplicate_with_the_first_result() {
    let mut e = limited_engine();
    let first = ok(&mut e, "e1", "llm", "2026-11-10T00:00:00Z", json!({ "tokens": 30 }));
    assert!(!first.duplicate);
    assert_eq!(first.decisions.len(), 1);
    assert_eq!(figs(&first.decisions[0]), ["70", "30", "0", "100"]); // 100 − 30
                                                                     // Same (source, id) with another payload: refused as a mismatch, nothing applied.
    let err = e
        .ingest(&event("e1", "llm", "cus", "2026-11-10T00:00:00Z", json!({ "tokens": 50 })), ts("2026-11-10T00:01:00Z"))
        .unwrap_err();
    assert_eq!((err.code, err.path.as_str()), (tollgate::Code::IdempotencyMismatch, "/id"));
    // The same request again: the first result, flagged duplicate.
    let again = e
        .ingest(&event("e1", "llm", "cus", "2026-11-10T00:00:00Z", json!({ "tokens": 30 })), ts("2026-11-10T00:01:00Z"))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.allowed, first.allowed);
    assert_eq!(again.reason, first.reason);
    assert_eq!(again.decisions, first.decisions);
    assert_eq!(again.unmatched, first.unmatched);
    // Nothing changed.
    assert_eq!(tokens_balance(&mut e, "2026-11-10T00:02:00Z"), ["70", "30", "0", "100"]);
    assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("30"));
    assert_eq!(q(&e, "cus", "bm_calls", nov()), d("1"));
    // The same id from another source is another event: 70 − 10 = 60.
    let mut other = event("e1", "llm", "cus", "2026-11-10T00:00:00Z", json!({ "tokens": 10 }));
    other["source"] = json!("edge-iad");
    let out = e.ingest(&other, ts("2026-11-10T00:03:00Z")).unwrap();
    assert!(!out.duplicate);
    assert_eq!(figs(&out.decisions[0]), ["60", "40", "0", "100"]);
    assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("40"));
    assert_eq!(q(&e, "cus", "bm_calls", nov()), d("2"));
}

#[test]
fn a_repeated_unmatched_event_is_a_duplicate_too() {
    let mut e = limited_engine();
    let first = ok(&mut e, "u1", "other", "2026-11-10T00:00:00Z", json!({}));
    assert!(first.unmatched && !first.duplicate);
    let again = e.ingest(&event("u1", "other", "cus", "2026-11-10T00:00:00Z", json!({})), ts("2026-11-10T00:00:01Z"));
    let again = again.unwrap();
    assert!(again.unmatched && again.duplicate);
}

#[test]
fn a_hard_limit_denial_through_ingest_applies_nothing() {
    let mut e = limited_engine();
    let out = ok(&mut e, "e1", "llm", "2026-11-10T00:00:00Z", json!({ "tokens": 60 }));
    assert_eq!(figs(&out.decisions[0]), ["40", "60", "0", "100"]); // 100 − 60
                                                                   // 50 > 40: denied as a whole.
    let denied = e
        .ingest(&event("e2", "llm", "cus", "2026-11-11T00:00:00Z", json!({ "tokens": 50 })), ts("2026-11-11T00:00:00Z"))
        .unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.reason, Reason::LimitReached);
    assert_eq!(serde_json::to_value(&denied).unwrap()["reason"], json!("limit_reached"));
    assert_eq!(denied.decisions.len(), 1);
    assert_eq!((denied.decisions[0].allowed, denied.decisions[0].reason), (false, Reason::LimitReached));
    assert_eq!(figs(&denied.decisions[0]), ["40", "60", "0", "100"]);
    // Nothing applied: not the SUM, not the COUNT of the same event, not the balance.
    assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("60"));
    assert_eq!(q(&e, "cus", "bm_calls", nov()), d("1"));
    assert_eq!(tokens_balance(&mut e, "2026-11-11T00:00:01Z"), ["40", "60", "0", "100"]);
    // What fits is still allowed: 40 − 15 = 25.
    let out = ok(&mut e, "e3", "llm", "2026-11-12T00:00:00Z", json!({ "tokens": 15 }));
    assert_eq!(figs(&out.decisions[0]), ["25", "75", "0", "100"]);
    assert_eq!(q(&e, "cus", "bm_tokens", nov()), d("75"));
    assert_eq!(q(&e, "cus", "bm_calls", nov()), d("2"));
}

// ---------------------------------------------------------------- month-end periods

#[test]
fn billing_periods_anchored_on_the_31st_clamp_to_month_end_and_return() {
    let mut e = engine_with(json!([metric("bm", "req", "SUM", Some("$.n"))]), "2026-01-31T00:00:00Z");
    ok(&mut e, "1", "req", "2026-02-27T23:59:59Z", json!({ "n": 5 }));
    ok(&mut e, "2", "req", "2026-02-28T00:00:00Z", json!({ "n": 7 }));
    ok(&mut e, "3", "req", "2026-03-30T23:59:59Z", json!({ "n": 1 }));
    ok(&mut e, "4", "req", "2026-03-31T00:00:00Z", json!({ "n": 2 }));
    ok(&mut e, "5", "req", "2026-04-30T00:00:00Z", json!({ "n": 3 }));
    // Jan 31 → Feb 28 → Mar 31 → Apr 30 → May 31.
    assert_eq!(q(&e, "cus", "bm", period("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z")), d("5"));
    assert_eq!(q(&e, "cus", "bm", period("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z")), d("8")); // 7 + 1
    assert_eq!(q(&e, "cus", "bm", period("2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z")), d("2"));
    assert_eq!(q(&e, "cus", "bm", period("2026-04-30T00:00:00Z", "2026-05-31T00:00:00Z")), d("3"));
}

#[test]
fn billing_periods_anchored_on_the_31st_in_a_leap_year() {
    let mut e = engine_with(json!([metric("bm", "req", "SUM", Some("$.n"))]), "2028-01-31T00:00:00Z");
    ok(&mut e, "1", "req", "2028-02-28T12:00:00Z", json!({ "n": 5 }));
    ok(&mut e, "2", "req", "2028-02-29T00:00:00Z", json!({ "n": 7 }));
    ok(&mut e, "3", "req", "2028-03-31T00:00:00Z", json!({ "n": 1 }));
    assert_eq!(q(&e, "cus", "bm", period("2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z")), d("5"));
    assert_eq!(q(&e, "cus", "bm", period("2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z")), d("7"));
    assert_eq!(q(&e, "cus", "bm", period("2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z")), d("1"));
}

#[test]
fn weighted_sum_over_a_clamped_february() {
    // Anchor Jan 31, 2026: the period Feb 28 → Mar 31 has 31 days. 62 GB from Feb 28,
    // 0 GB from Mar 16 (16 days later): 62 × 16 / 31 = 32.
    let mut e = engine_with(json!([metric("bm_gb", "storage", "WEIGHTED_SUM", Some("$.gb"))]), "2026-01-31T00:00:00Z");
    ok(&mut e, "1", "storage", "2026-02-28T00:00:00Z", json!({ "gb": 62 }));
    ok(&mut e, "2", "storage", "2026-03-16T00:00:00Z", json!({ "gb": 0 }));
    assert_eq!(q(&e, "cus", "bm_gb", period("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z")), d("32"));
}

#[test]
fn period_containing_walks_month_ends_and_leap_years() {
    let month = Duration::parse("P1M").unwrap();
    let walk = |anchor: &str, times: &[(&str, &str, &str)]| {
        for (t, start, end) in times {
            let p = period_containing(ts(anchor), month, ts(t)).expect("a period");
            assert_eq!(
                (p.start.to_rfc3339(), p.end.to_rfc3339()),
                (start.to_string(), end.to_string()),
                "{anchor} {t}"
            );
        }
    };
    walk(
        "2026-01-31T00:00:00Z",
        &[
            ("2026-02-27T23:59:59Z", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
            ("2026-02-28T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"),
            ("2026-03-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"),
            ("2026-05-15T00:00:00Z", "2026-04-30T00:00:00Z", "2026-05-31T00:00:00Z"),
            ("2027-01-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"),
        ],
    );
    // Leap years: 2028 (÷4), 2000 (÷400) have Feb 29; 2100 (÷100, not ÷400) does not.
    for (year, last) in [("2028", "29"), ("2000", "29"), ("2100", "28"), ("2024", "29")] {
        let anchor = format!("{year}-01-31T00:00:00Z");
        let feb_end = format!("{year}-02-{last}T00:00:00Z");
        let mar_end = format!("{year}-03-31T00:00:00Z");
        walk(
            &anchor,
            &[
                (&format!("{year}-02-10T00:00:00Z"), &anchor, &feb_end),
                (&format!("{year}-03-10T00:00:00Z"), &feb_end, &mar_end),
            ],
        );
    }
    // Anchored on Feb 29: Mar 29, Apr 29, …, and Feb 28 in a common year.
    walk(
        "2024-02-29T00:00:00Z",
        &[
            ("2024-03-15T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-29T00:00:00Z"),
            ("2025-02-28T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-29T00:00:00Z"),
        ],
    );
}
