//! Entitlement decisions (SPEC §3.3, §4, §5) through the engine's public API: every reason
//! (`ok`, `no_entitlement`, `not_subscribed`, `unknown_customer`, `unknown_feature`,
//! `limit_reached`), boolean / static / metered decisions with their figures, the burn order of
//! grants, rollover min/max and preserved overage across resets, month-end usage periods, and
//! idempotent `consume`. Every expected figure is computed by hand from SPEC's rules; the
//! arithmetic is written next to it.

use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::entitlements::{Decision, Reason};
use tollgate::time::{Period, Timestamp};
use tollgate::Decimal;

// ---------------------------------------------------------------- helpers

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

fn engine(snapshot: &Value) -> Engine {
    Engine::from_snapshot(snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

/// The decision as the JSON a host sees.
fn js(decision: &Decision) -> Value {
    serde_json::to_value(decision).expect("a decision serialises")
}

/// `[balance, usage, overage, limit]` of a metered decision, as the strings of its JSON.
fn figs(decision: &Decision) -> [String; 4] {
    let v = js(decision);
    ["balance", "usage", "overage", "limit"].map(|k| match &v[k] {
        Value::String(s) => s.clone(),
        other => panic!("{k} is {other}, not a string, in {v}"),
    })
}

/// The `balance` string of a `check` at `at`.
fn balance(e: &mut Engine, customer: &str, key: &str, at: &str) -> String {
    let dec = e.check(customer, key, ts(at)).expect("check");
    figs(&dec)[0].clone()
}

fn consume(e: &mut Engine, customer: &str, key: &str, n: &str, at: &str) -> Decision {
    e.consume(customer, key, d(n), None, ts(at)).expect("consume")
}

/// True when the decision carries no metered figures (absent or null).
fn no_figures(v: &Value) -> bool {
    ["balance", "usage", "overage", "limit", "resetAt"].iter().all(|k| v.get(*k).is_none_or(Value::is_null))
}

// ---------------------------------------------------------------- a catalog with every kind

/// One product with a boolean, a static, a hard-limited and a soft-limited metered feature
/// (plan `plan_basic`), and a boolean `sso` only in `plan_pro`.
fn app_catalog() -> Value {
    let free = json!({ "type": "flat", "amount": "0" });
    json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod_app", "name": "App" }],
        "features": [
            { "id": "feat_priority", "productId": "prod_app", "key": "priority-queue", "type": "boolean" },
            { "id": "feat_seats", "productId": "prod_app", "key": "seats", "type": "static" },
            { "id": "feat_tokens", "productId": "prod_app", "key": "tokens", "type": "metered" },
            { "id": "feat_credits", "productId": "prod_app", "key": "credits", "type": "metered" },
            { "id": "feat_sso", "productId": "prod_app", "key": "sso", "type": "boolean" }
        ],
        "billableMetrics": [
            { "id": "bm_tokens", "productId": "prod_app", "name": "Tokens", "eventType": "llm.completion",
              "aggregation": "SUM", "valueProperty": "$.tokens" },
            { "id": "bm_credits", "productId": "prod_app", "name": "Credits", "eventType": "credit.use",
              "aggregation": "SUM", "valueProperty": "$.credits" }
        ],
        "fees": [
            { "id": "fee_platform", "productId": "prod_app", "name": "Platform" },
            { "id": "fee_seats", "productId": "prod_app", "name": "Seats" },
            { "id": "fee_sso", "productId": "prod_app", "name": "SSO" }
        ],
        "plans": [
            { "id": "plan_basic", "productId": "prod_app", "name": "Basic", "currency": "USD",
              "billingCadence": "P1M",
              "prices": [
                { "id": "price_basic_platform", "feeId": "fee_platform", "paymentTerm": "in_advance",
                  "model": free,
                  "feature": { "featureId": "feat_priority", "entitlement": { "type": "boolean" } } },
                { "id": "price_basic_seats", "feeId": "fee_seats", "paymentTerm": "in_advance", "model": free,
                  "feature": { "featureId": "feat_seats",
                               "entitlement": { "type": "static", "config": { "limit": 25, "sla": "99.95" } } } },
                { "id": "price_basic_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "0.000002" },
                  "feature": { "featureId": "feat_tokens",
                               "entitlement": { "type": "metered",
                                                "usagePeriod": { "interval": "P1M", "anchor": "2026-11-01T00:00:00Z" },
                                                "issueAfterReset": "10000", "isSoftLimit": false } } },
                { "id": "price_basic_credits", "metricId": "bm_credits", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "0" },
                  "feature": { "featureId": "feat_credits",
                               "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                                "issueAfterReset": "100", "isSoftLimit": true } } }
              ] },
            { "id": "plan_pro", "productId": "prod_app", "name": "Pro", "currency": "USD", "billingCadence": "P1M",
              "prices": [
                { "id": "price_pro_sso", "feeId": "fee_sso", "paymentTerm": "in_advance", "model": free,
                  "feature": { "featureId": "feat_sso", "entitlement": { "type": "boolean" } } }
              ] }
        ]
    })
}

fn sub(id: &str, plan: &str, started: &str, ending: Option<&str>) -> Value {
    json!({ "id": id, "planId": plan, "startedAt": started, "endingAt": ending })
}

fn app_engine() -> Engine {
    engine(&json!({
        "snapshotVersion": 1,
        "catalog": app_catalog(),
        "customers": [
            { "id": "cus_basic", "subscriptions": [sub("s1", "plan_basic", "2026-11-01T00:00:00Z", None)] },
            { "id": "cus_pro", "subscriptions": [sub("s2", "plan_pro", "2026-11-01T00:00:00Z", None)] },
            { "id": "cus_future", "subscriptions": [sub("s3", "plan_basic", "2026-12-01T00:00:00Z", None)] },
            { "id": "cus_ended",
              "subscriptions": [sub("s4", "plan_basic", "2026-10-01T00:00:00Z", Some("2026-11-01T00:00:00Z"))] },
            { "id": "cus_none" }
        ]
    }))
}

const MID_NOV: &str = "2026-11-15T00:00:00Z";

// ---------------------------------------------------------------- reasons and decision shapes

#[test]
fn boolean_feature_in_the_plan_is_ok_without_figures() {
    let mut e = app_engine();
    let dec = e.check("cus_basic", "priority-queue", ts(MID_NOV)).unwrap();
    assert!(dec.allowed);
    assert_eq!(dec.reason, Reason::Ok);
    let v = js(&dec);
    assert_eq!(v["allowed"], json!(true));
    assert_eq!(v["reason"], json!("ok"));
    assert_eq!(v["featureKey"], json!("priority-queue"));
    assert_eq!(v["featureType"], json!("boolean"));
    assert_eq!(v["config"], Value::Null);
    assert!(no_figures(&v), "a boolean decision has no metered figures: {v}");
}

#[test]
fn static_feature_returns_its_config() {
    let mut e = app_engine();
    let dec = e.check("cus_basic", "seats", ts(MID_NOV)).unwrap();
    let v = js(&dec);
    assert_eq!(v["allowed"], json!(true));
    assert_eq!(v["reason"], json!("ok"));
    assert_eq!(v["featureType"], json!("static"));
    assert_eq!(v["config"], json!({ "limit": 25, "sla": "99.95" }));
    assert!(no_figures(&v), "a static decision has no metered figures: {v}");
}

#[test]
fn metered_decision_has_the_figures_of_spec_example() {
    // SPEC §5's example: limit 10000, 1660 used → balance 10000 − 1660 = 8340, no overage.
    let mut e = app_engine();
    let dec = consume(&mut e, "cus_basic", "tokens", "1660", "2026-11-28T10:00:00Z");
    assert_eq!(
        js(&dec),
        json!({ "allowed": true, "reason": "ok", "featureKey": "tokens", "featureType": "metered",
                "balance": "8340", "usage": "1660", "overage": "0", "limit": "10000",
                "resetAt": "2026-12-01T00:00:00Z", "config": null, "exact": true, "needsSync": false })
    );
    // A check afterwards shows the same figures and consumes nothing.
    let again = e.check("cus_basic", "tokens", ts("2026-11-28T10:00:01Z")).unwrap();
    assert_eq!(figs(&again), ["8340", "1660", "0", "10000"]);
    let again = e.check("cus_basic", "tokens", ts("2026-11-28T10:00:02Z")).unwrap();
    assert_eq!(figs(&again), ["8340", "1660", "0", "10000"]);
}

#[test]
fn feature_outside_the_plan_is_no_entitlement() {
    let mut e = app_engine();
    // `sso` exists (in plan_pro) but cus_basic's plan has no price linking it.
    let dec = e.check("cus_basic", "sso", ts(MID_NOV)).unwrap();
    assert!(!dec.allowed);
    assert_eq!(js(&dec)["reason"], json!("no_entitlement"));
    assert_eq!(js(&dec)["featureKey"], json!("sso"));
    // The other way round: plan_pro has no priority queue and no tokens.
    for key in ["priority-queue", "seats", "tokens"] {
        let dec = e.check("cus_pro", key, ts(MID_NOV)).unwrap();
        assert_eq!((dec.allowed, dec.reason), (false, Reason::NoEntitlement), "{key}");
    }
    // consume of a feature not in the plan is denied the same way and changes nothing.
    let dec = e.consume("cus_pro", "tokens", d("5"), None, ts(MID_NOV)).unwrap();
    assert_eq!((dec.allowed, dec.reason), (false, Reason::NoEntitlement));
}

#[test]
fn no_active_subscription_is_not_subscribed() {
    let mut e = app_engine();
    for (customer, at) in [
        ("cus_future", MID_NOV),                // before startedAt (Dec 1)
        ("cus_future", "2026-11-30T23:59:59Z"), // one second before startedAt
        ("cus_ended", MID_NOV),                 // after endingAt (Nov 1)
        ("cus_ended", "2026-11-01T00:00:00Z"),  // at endingAt: the end is exclusive
        ("cus_none", MID_NOV),                  // no subscription at all
    ] {
        for key in ["priority-queue", "seats", "tokens", "credits"] {
            let dec = e.check(customer, key, ts(at)).unwrap();
            assert!(!dec.allowed, "{customer} {key} at {at}");
            assert_eq!(js(&dec)["reason"], json!("not_subscribed"), "{customer} {key} at {at}");
        }
        let dec = e.consume(customer, "tokens", d("1"), None, ts(at)).unwrap();
        assert_eq!((dec.allowed, dec.reason), (false, Reason::NotSubscribed), "{customer} consume at {at}");
    }
    // Inside the subscriptions' windows the same checks are ok.
    for (customer, at) in [("cus_future", "2026-12-01T00:00:00Z"), ("cus_ended", "2026-10-31T23:59:59Z")] {
        for key in ["priority-queue", "seats", "tokens", "credits"] {
            let dec = e.check(customer, key, ts(at)).unwrap();
            assert_eq!((dec.allowed, dec.reason), (true, Reason::Ok), "{customer} {key} at {at}");
        }
    }
}

#[test]
fn unknown_customer_and_unknown_feature() {
    let mut e = app_engine();
    for key in ["priority-queue", "tokens"] {
        let dec = e.check("cus_ghost", key, ts(MID_NOV)).unwrap();
        assert!(!dec.allowed);
        assert_eq!(js(&dec)["reason"], json!("unknown_customer"));
        let dec = e.consume("cus_ghost", key, d("1"), None, ts(MID_NOV)).unwrap();
        assert_eq!((dec.allowed, dec.reason), (false, Reason::UnknownCustomer));
    }
    let dec = e.check("cus_basic", "teleport", ts(MID_NOV)).unwrap();
    let v = js(&dec);
    assert_eq!(v["allowed"], json!(false));
    assert_eq!(v["reason"], json!("unknown_feature"));
    assert_eq!(v["featureKey"], json!("teleport"));
    assert!(v.get("featureType").is_none_or(Value::is_null), "an unknown feature has no type: {v}");
    let dec = e.consume("cus_basic", "teleport", d("1"), None, ts(MID_NOV)).unwrap();
    assert_eq!((dec.allowed, dec.reason), (false, Reason::UnknownFeature));
}

#[test]
fn hard_limit_is_all_or_nothing_and_reports_limit_reached() {
    let mut e = app_engine();
    // 10001 > balance 10000: denied, nothing used.
    let dec = consume(&mut e, "cus_basic", "tokens", "10001", "2026-11-02T00:00:00Z");
    assert_eq!(js(&dec)["reason"], json!("limit_reached"));
    assert!(!dec.allowed);
    assert_eq!(figs(&dec), ["10000", "0", "0", "10000"]);
    // 9999.5 fits: balance 10000 − 9999.5 = 0.5.
    let dec = consume(&mut e, "cus_basic", "tokens", "9999.5", "2026-11-03T00:00:00Z");
    assert!(dec.allowed);
    assert_eq!(figs(&dec), ["0.5", "9999.5", "0", "10000"]);
    // 1 > 0.5: denied; the balance stays 0.5 (not partly burned).
    let dec = consume(&mut e, "cus_basic", "tokens", "1", "2026-11-04T00:00:00Z");
    assert_eq!((dec.allowed, dec.reason), (false, Reason::LimitReached));
    assert_eq!(figs(&dec), ["0.5", "9999.5", "0", "10000"]);
    // Exactly the balance fits (balance ≥ n) and is applied, leaving 0. (Its `allowed` flag
    // is checked in `consuming_exactly_the_balance_is_allowed`.)
    let dec = consume(&mut e, "cus_basic", "tokens", "0.5", "2026-11-05T00:00:00Z");
    assert_eq!(figs(&dec), ["0", "10000", "0", "10000"]);
    // At zero balance a check of a hard limit is denied.
    let dec = e.check("cus_basic", "tokens", ts("2026-11-06T00:00:00Z")).unwrap();
    assert_eq!(
        js(&dec),
        json!({ "allowed": false, "reason": "limit_reached", "featureKey": "tokens", "featureType": "metered",
                "balance": "0", "usage": "10000", "overage": "0", "limit": "10000",
                "resetAt": "2026-12-01T00:00:00Z", "config": null, "exact": true, "needsSync": false })
    );
    // Next period (anchor Nov 1, P1M → Dec 1): 10000 again.
    assert_eq!(balance(&mut e, "cus_basic", "tokens", "2026-12-01T00:00:00Z"), "10000");
}

#[test]
fn soft_limit_allows_past_zero_and_counts_overage() {
    let mut e = app_engine();
    // 130 against 100: allowed; balance 0, overage 130 − 100 = 30.
    let dec = consume(&mut e, "cus_basic", "credits", "130", "2026-11-02T00:00:00Z");
    assert_eq!((dec.allowed, dec.reason), (true, Reason::Ok));
    assert_eq!(figs(&dec), ["0", "130", "30", "100"]);
    // A soft limit at zero balance still allows.
    let dec = e.check("cus_basic", "credits", ts("2026-11-03T00:00:00Z")).unwrap();
    assert_eq!((dec.allowed, dec.reason), (true, Reason::Ok));
    assert_eq!(figs(&dec), ["0", "130", "30", "100"]);
    // 5 more: overage 35.
    let dec = consume(&mut e, "cus_basic", "credits", "5", "2026-11-04T00:00:00Z");
    assert_eq!(figs(&dec), ["0", "135", "35", "100"]);
}

#[test]
fn consume_and_events_of_the_linked_metric_are_the_same_thing() {
    // SPEC §3.3: consuming via consume() or via events the metric counts is the same thing.
    let mut e = app_engine();
    let out = e
        .ingest(
            &json!({ "id": "e1", "source": "edge", "type": "llm.completion", "subject": "cus_basic",
                     "time": "2026-11-10T00:00:00Z", "data": { "tokens": 500 } }),
            ts("2026-11-10T00:00:00Z"),
        )
        .unwrap();
    assert!(out.allowed);
    assert_eq!(out.decisions.len(), 1);
    // 10000 − 500 = 9500
    assert_eq!(figs(&out.decisions[0]), ["9500", "500", "0", "10000"]);
    let dec = consume(&mut e, "cus_basic", "tokens", "1000", "2026-11-11T00:00:00Z");
    // 9500 − 1000 = 8500; usage 500 + 1000 = 1500
    assert_eq!(figs(&dec), ["8500", "1500", "0", "10000"]);
    let nov = Period { start: ts("2026-11-01T00:00:00Z"), end: ts("2026-12-01T00:00:00Z") };
    // The metric's quantity counts both: 500 + 1000 = 1500.
    assert_eq!(e.quantity("cus_basic", "bm_tokens", nov).unwrap(), d("1500"));
}

#[test]
fn consume_with_the_same_id_is_applied_once() {
    let mut e = app_engine();
    let first = e.consume("cus_basic", "tokens", d("300"), Some("req-9"), ts("2026-11-10T00:00:00Z")).unwrap();
    assert_eq!(figs(&first), ["9700", "300", "0", "10000"]);
    let second = e.consume("cus_basic", "tokens", d("300"), Some("req-9"), ts("2026-11-10T00:00:05Z")).unwrap();
    assert_eq!(second, first, "a repeat returns the first decision");
    // Applied once: 10000 − 300 = 9700, usage 300.
    let dec = e.check("cus_basic", "tokens", ts("2026-11-10T00:00:10Z")).unwrap();
    assert_eq!(figs(&dec), ["9700", "300", "0", "10000"]);
    // Another id is another consumption: 9700 − 300 = 9400.
    let third = e.consume("cus_basic", "tokens", d("300"), Some("req-10"), ts("2026-11-10T00:00:15Z")).unwrap();
    assert_eq!(figs(&third), ["9400", "600", "0", "10000"]);
    let nov = Period { start: ts("2026-11-01T00:00:00Z"), end: ts("2026-12-01T00:00:00Z") };
    assert_eq!(e.quantity("cus_basic", "bm_tokens", nov).unwrap(), d("600"));
}

#[test]
fn negative_consume_is_an_error_not_a_decision() {
    let mut e = app_engine();
    assert!(e.consume("cus_basic", "tokens", d("-1"), None, ts(MID_NOV)).is_err());
    assert_eq!(balance(&mut e, "cus_basic", "tokens", MID_NOV), "10000");
}

#[test]
fn consuming_exactly_the_balance_is_allowed() {
    // SPEC §5: on a hard limit consume(n) is allowed when balance ≥ n; 10000 ≥ 10000.
    let mut e = app_engine();
    let dec = e.consume("cus_basic", "tokens", d("10000"), Some("all"), ts("2026-11-02T00:00:00Z")).unwrap();
    assert_eq!(figs(&dec), ["0", "10000", "0", "10000"]); // applied: 10000 − 10000 = 0
    assert_eq!((dec.allowed, dec.reason), (true, Reason::Ok), "{}", js(&dec));
    // The idempotent repeat returns that same, allowed, decision.
    let again = e.consume("cus_basic", "tokens", d("10000"), Some("all"), ts("2026-11-02T00:00:01Z")).unwrap();
    assert_eq!((again.allowed, again.reason), (true, Reason::Ok));
    // Only now is the limit reached.
    let next = e.consume("cus_basic", "tokens", d("1"), None, ts("2026-11-02T00:00:02Z")).unwrap();
    assert_eq!((next.allowed, next.reason), (false, Reason::LimitReached));

    // The same through an event of the hard-limited feature's metric: 10000 tokens of 10000.
    let mut e = app_engine();
    let out = e
        .ingest(
            &json!({ "id": "e1", "source": "edge", "type": "llm.completion", "subject": "cus_basic",
                     "time": "2026-11-10T00:00:00Z", "data": { "tokens": 10000 } }),
            ts("2026-11-10T00:00:00Z"),
        )
        .unwrap();
    assert!(out.allowed);
    assert_eq!(figs(&out.decisions[0]), ["0", "10000", "0", "10000"]);
    assert_eq!((out.decisions[0].allowed, out.decisions[0].reason), (true, Reason::Ok));
}

// ---------------------------------------------------------------- one metered feature, built per test

/// A catalog whose only feature is the metered `tokens`, consumed through `bm_tokens` (SUM of
/// `$.tokens`) and granted by `plan_m` with the given entitlement template (type added here).
fn metered_catalog(template: Value) -> Value {
    let mut entitlement = template;
    entitlement["type"] = json!("metered");
    json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod", "name": "Product" }],
        "features": [{ "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" }],
        "billableMetrics": [{ "id": "bm_tokens", "productId": "prod", "name": "Tokens",
                              "eventType": "llm.completion", "aggregation": "SUM", "valueProperty": "$.tokens" }],
        "plans": [{ "id": "plan_m", "productId": "prod", "name": "M", "currency": "USD", "billingCadence": "P1M",
                    "prices": [{ "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
                                 "model": { "type": "per_unit", "unitPrice": "0" },
                                 "feature": { "featureId": "feat_tokens", "entitlement": entitlement } }] }]
    })
}

/// An engine with customer `cus` subscribed to `plan_m` from `started` with `grants`.
fn metered_engine(template: Value, started: &str, grants: Value) -> Engine {
    engine(&json!({
        "catalog": metered_catalog(template),
        "customers": [{ "id": "cus", "subscriptions": [sub("sub", "plan_m", started, None)], "grants": grants }]
    }))
}

fn grant(id: &str, amount: &str, priority: i64, expires: Option<&str>) -> Value {
    json!({ "id": id, "featureKey": "tokens", "amount": amount, "priority": priority, "expiresAt": expires })
}

// ---------------------------------------------------------------- burn order

#[test]
fn grants_burn_by_priority_then_earliest_expiry() {
    // Period grant: 100, priority 9 (burns last). Customer grants, in creation order:
    //   A 30, priority 1, expires Jan 10   (earliest expiry, but a worse priority)
    //   B 30, priority 0, expires Jan 25
    //   C 30, priority 0, expires Jan 20
    // SPEC order: C (prio 0, Jan 20), B (prio 0, Jan 25), A (prio 1), then the period grant.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                "issueAfterReset": "100", "issueAfterResetPriority": 9 }),
        "2026-01-01T00:00:00Z",
        json!([
            grant("A", "30", 1, Some("2026-01-10T00:00:00Z")),
            grant("B", "30", 0, Some("2026-01-25T00:00:00Z")),
            grant("C", "30", 0, Some("2026-01-20T00:00:00Z"))
        ]),
    );
    // Limit 100 + 30 + 30 + 30 = 190. Consume 40: C 30 → 0, then B 10 → 20. A 30, period 100.
    let dec = consume(&mut e, "cus", "tokens", "40", "2026-01-02T00:00:00Z");
    assert_eq!(figs(&dec), ["150", "40", "0", "190"]); // 190 − 40 = 150
                                                       // Jan 10: A expires with all its 30 → 150 − 30 = 120.
                                                       // (Had A burned first — expiry before priority — it would be 0 and the balance stay 150.)
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-09T23:59:59Z"), "150");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-10T00:00:00Z"), "120");
    // Jan 20: C expires empty → still 120.
    // (Had B burned before C — creation order before expiry — C would lose 20 here.)
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-20T00:00:00Z"), "120");
    // Jan 25: B expires with 20 → 120 − 20 = 100 (the period grant alone).
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-25T00:00:00Z"), "100");
    // Exhaust: 100 fits exactly (usage 40 + 100 = 140), then nothing is left.
    let dec = consume(&mut e, "cus", "tokens", "100", "2026-01-26T00:00:00Z");
    assert_eq!(figs(&dec)[..2], ["0".to_string(), "140".to_string()]);
    let dec = consume(&mut e, "cus", "tokens", "1", "2026-01-27T00:00:00Z");
    assert_eq!((dec.allowed, dec.reason), (false, Reason::LimitReached));
}

#[test]
fn an_expiring_grant_burns_before_a_never_expiring_one_of_equal_priority() {
    // Same priority: a grant with an expiry burns before one that never expires (null = last).
    //   N 50, priority 0, never expires (created first)
    //   X 50, priority 0, expires Jan 15
    // Period grant 0. Consume 30 at Jan 2: X 30 → 20 left; N 50.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" }, "issueAfterReset": "0" }),
        "2026-01-01T00:00:00Z",
        json!([grant("N", "50", 0, None), grant("X", "50", 0, Some("2026-01-15T00:00:00Z"))]),
    );
    let dec = consume(&mut e, "cus", "tokens", "30", "2026-01-02T00:00:00Z");
    assert_eq!(figs(&dec)[..2], ["70".to_string(), "30".to_string()]); // 100 − 30
                                                                       // Jan 15: X expires with 20 → 70 − 20 = 50 (N untouched).
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-15T00:00:00Z"), "50");
}

#[test]
fn equal_priority_and_expiry_burn_in_creation_order() {
    // D and E: priority 0, no expiry; D created first. They differ only in what they carry
    // over at a reset: D keeps nothing (resetMaxRollover 0), E keeps everything (null = no cap).
    // Period grant 100 at priority 9 (last), resetMaxRollover default "0".
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                "issueAfterReset": "100", "issueAfterResetPriority": 9 }),
        "2026-01-01T00:00:00Z",
        json!([
            { "id": "D", "featureKey": "tokens", "amount": "30", "priority": 0, "resetMaxRollover": "0" },
            { "id": "E", "featureKey": "tokens", "amount": "30", "priority": 0, "resetMaxRollover": null }
        ]),
    );
    // Consume 40: D 30 → 0, then E 10 → 20. Balance 160 − 40 = 120.
    let dec = consume(&mut e, "cus", "tokens", "40", "2026-01-02T00:00:00Z");
    assert_eq!(figs(&dec)[0], "120");
    // Feb 1 reset: D carries min(0, max(0, 0)) = 0; E carries 20 (no cap); the period grant
    // carries min(0, 100) = 0 and is issued again: 100. Balance 0 + 20 + 100 = 120.
    // (Had E burned first, E would carry 0 and D min(0, 20) = 0: 100.)
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-01T00:00:00Z"), "120");
}

// ---------------------------------------------------------------- rollover

#[test]
fn rollover_min_and_max_across_two_resets() {
    // issueAfterReset 100, resetMaxRollover 30, resetMinRollover 10, hard limit.
    let template = json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                           "issueAfterReset": "100", "resetMaxRollover": "30", "resetMinRollover": "10" });
    let mut e = metered_engine(template.clone(), "2026-01-01T00:00:00Z", json!([]));
    // Jan: use 50 → ending balance 50.
    let dec = consume(&mut e, "cus", "tokens", "50", "2026-01-05T00:00:00Z");
    assert_eq!(figs(&dec), ["50", "50", "0", "100"]);
    // Feb 1: carried min(30, max(10, 50)) = 30; + 100 issued = 130. Usage restarts at 0.
    let dec = e.check("cus", "tokens", ts("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(figs(&dec)[..3], ["130".to_string(), "0".to_string(), "0".to_string()]);
    // Feb: use 125 → ending 130 − 125 = 5.
    let dec = consume(&mut e, "cus", "tokens", "125", "2026-02-10T00:00:00Z");
    assert_eq!(figs(&dec)[..2], ["5".to_string(), "125".to_string()]);
    // Mar 1: carried min(30, max(10, 5)) = 10 (the floor); + 100 = 110.
    let dec = e.check("cus", "tokens", ts("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(figs(&dec)[..3], ["110".to_string(), "0".to_string(), "0".to_string()]);
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-31T23:59:59Z"), "110");

    // Two resets crossed at once, nothing looked at in between:
    // Jan: use 95 → 5. Feb 1: min(30, max(10, 5)) = 10 + 100 = 110. Nothing used in Feb.
    // Mar 1: min(30, max(10, 110)) = 30 + 100 = 130.
    let mut e = metered_engine(template, "2026-01-01T00:00:00Z", json!([]));
    consume(&mut e, "cus", "tokens", "95", "2026-01-05T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-15T00:00:00Z"), "130");
}

#[test]
fn customer_grants_roll_over_by_their_own_min_and_max() {
    // Period grant 100 (priority 5, carries nothing: default max 0). Customer grants (priority 0):
    //   G 50, resetMaxRollover 20        H 10, resetMinRollover 15, no cap
    // Burn: G (created first) then H, then the period grant.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                "issueAfterReset": "100", "issueAfterResetPriority": 5 }),
        "2026-01-01T00:00:00Z",
        json!([
            { "id": "G", "featureKey": "tokens", "amount": "50", "resetMaxRollover": "20" },
            { "id": "H", "featureKey": "tokens", "amount": "10", "resetMinRollover": "15" }
        ]),
    );
    // Jan: use 60 → G 50 → 0, then H 10 → 0; period grant 100. Balance 160 − 60 = 100.
    let dec = consume(&mut e, "cus", "tokens", "60", "2026-01-05T00:00:00Z");
    assert_eq!(figs(&dec)[0], "100");
    // Feb 1: G carries min(20, max(0, 0)) = 0; H carries max(15, 0) = 15 (no cap);
    // period grant min(0, 100) = 0 + 100. Balance 0 + 15 + 100 = 115.
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-01T00:00:00Z"), "115");
    // Mar 1: nothing used; G 0, H max(15, 15) = 15, period 100 → 115.
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-01T00:00:00Z"), "115");

    // Unused G (50) carries only its cap: Jan nothing used → Feb: G min(20, 50) = 20,
    // H max(15, 10) = 15, period 100 → 135.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                "issueAfterReset": "100", "issueAfterResetPriority": 5 }),
        "2026-01-01T00:00:00Z",
        json!([
            { "id": "G", "featureKey": "tokens", "amount": "50", "resetMaxRollover": "20" },
            { "id": "H", "featureKey": "tokens", "amount": "10", "resetMinRollover": "15" }
        ]),
    );
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-01-05T00:00:00Z"), "160");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-05T00:00:00Z"), "135");
}

#[test]
fn a_grant_effective_later_is_reset_even_when_earlier_resets_changed_nothing() {
    // Period grant 100 (carries nothing, so an unused period's reset gives 100 again).
    // Grant B: 50 units, effective Feb 15, resetMaxRollover 0 (a one-period bonus).
    let template = json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                           "issueAfterReset": "100" });
    let grants = json!([{ "id": "B", "featureKey": "tokens", "amount": "50",
                          "effectiveAt": "2026-02-15T00:00:00Z", "resetMaxRollover": "0" }]);
    // Looked at every month: Jan 100; Feb 20: 100 + 50 = 150; Mar 1 reset: B carries
    // min(0, 50) = 0 → 100; Apr: 100.
    let mut stepwise = metered_engine(template.clone(), "2026-01-01T00:00:00Z", grants.clone());
    assert_eq!(balance(&mut stepwise, "cus", "tokens", "2026-01-05T00:00:00Z"), "100");
    assert_eq!(balance(&mut stepwise, "cus", "tokens", "2026-02-20T00:00:00Z"), "150");
    assert_eq!(balance(&mut stepwise, "cus", "tokens", "2026-03-05T00:00:00Z"), "100");
    assert_eq!(balance(&mut stepwise, "cus", "tokens", "2026-04-05T00:00:00Z"), "100");
    // Looked at in Jan, then in April: the Mar 1 reset still happened, so also 100.
    let mut jump = metered_engine(template, "2026-01-01T00:00:00Z", grants);
    assert_eq!(balance(&mut jump, "cus", "tokens", "2026-01-05T00:00:00Z"), "100");
    assert_eq!(balance(&mut jump, "cus", "tokens", "2026-04-05T00:00:00Z"), "100");
}

// ---------------------------------------------------------------- preserved overage

fn soft_template(preserve: bool) -> Value {
    json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
            "issueAfterReset": "100", "isSoftLimit": true, "preserveOverageAtReset": preserve })
}

#[test]
fn preserved_overage_reduces_the_next_start_balance_across_two_resets() {
    let mut e = metered_engine(soft_template(true), "2026-01-01T00:00:00Z", json!([]));
    // Jan: use 130 of 100 → balance 0, overage 30.
    let dec = consume(&mut e, "cus", "tokens", "130", "2026-01-10T00:00:00Z");
    assert_eq!(figs(&dec), ["0", "130", "30", "100"]);
    // Feb 1: 100 issued, the 30 of overage burned first → 70; no overage left.
    let dec = e.check("cus", "tokens", ts("2026-02-01T00:00:00Z")).unwrap();
    let [bal, _, over, lim] = figs(&dec);
    assert_eq!([bal, over, lim], ["70", "0", "100"]);
    // Feb: use 120 of 70 → balance 0, overage 120 − 70 = 50.
    let dec = consume(&mut e, "cus", "tokens", "120", "2026-02-10T00:00:00Z");
    let [bal, _, over, _] = figs(&dec);
    assert_eq!([bal, over], ["0", "50"]);
    // Mar 1: 100 − 50 = 50.
    let dec = e.check("cus", "tokens", ts("2026-03-01T00:00:00Z")).unwrap();
    let [bal, _, over, _] = figs(&dec);
    assert_eq!([bal, over], ["50", "0"]);
}

#[test]
fn overage_is_forgotten_at_reset_without_preserve() {
    let mut e = metered_engine(soft_template(false), "2026-01-01T00:00:00Z", json!([]));
    consume(&mut e, "cus", "tokens", "130", "2026-01-10T00:00:00Z");
    // Feb 1: a fresh 100, usage and overage 0.
    let dec = e.check("cus", "tokens", ts("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(figs(&dec), ["100", "0", "0", "100"]);
}

#[test]
fn preserved_overage_larger_than_the_issue_reaches_the_period_after() {
    // Jan: use 250 of 100 → overage 150. Feb 1: 100 issued, 150 burned first → 0 left and
    // 150 − 100 = 50 still owed. Mar 1: 100 − 50 = 50. Looked at only in Jan and in March.
    let mut e = metered_engine(soft_template(true), "2026-01-01T00:00:00Z", json!([]));
    let dec = consume(&mut e, "cus", "tokens", "250", "2026-01-10T00:00:00Z");
    assert_eq!(figs(&dec), ["0", "250", "150", "100"]);
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-02T00:00:00Z"), "50");
    // The same, looked at in February too: Feb balance 0.
    let mut e = metered_engine(soft_template(true), "2026-01-01T00:00:00Z", json!([]));
    consume(&mut e, "cus", "tokens", "250", "2026-01-10T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-02T00:00:00Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-02T00:00:00Z"), "50");
}

// ---------------------------------------------------------------- month-end periods

/// Consumes the whole period grant of 10 at `at` and checks it was applied (balance 10 − 10 = 0).
fn use_all_ten(e: &mut Engine, at: &str) {
    let dec = consume(e, "cus", "tokens", "10", at);
    assert_eq!(figs(&dec)[..2], ["0".to_string(), "10".to_string()], "consume 10 at {at}");
}

fn month_end_engine(anchor: &str) -> Engine {
    metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": anchor }, "issueAfterReset": "10" }),
        anchor,
        json!([]),
    )
}

#[test]
fn monthly_usage_period_anchored_on_the_31st_clamps_and_returns() {
    // Anchor Jan 31 2026: periods Jan 31 → Feb 28 → Mar 31 → Apr 30 → May 31.
    let mut e = month_end_engine("2026-01-31T00:00:00Z");
    use_all_ten(&mut e, "2026-02-01T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-27T23:59:59.999Z"), "0");
    // Reset on Feb 28 (the last day of February), not on Mar 3 or Mar 1.
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-28T00:00:00Z"), "10");
    use_all_ten(&mut e, "2026-02-28T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-01T00:00:00Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-30T23:59:59.999Z"), "0");
    // Back to the 31st in March.
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-03-31T00:00:00Z"), "10");
    use_all_ten(&mut e, "2026-03-31T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-04-29T23:59:59.999Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-04-30T00:00:00Z"), "10");
}

#[test]
fn monthly_usage_period_anchored_on_the_31st_in_a_leap_year() {
    // Anchor Jan 31 2028 (leap year): Jan 31 → Feb 29 → Mar 31.
    let mut e = month_end_engine("2028-01-31T00:00:00Z");
    use_all_ten(&mut e, "2028-02-01T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2028-02-28T00:00:00Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2028-02-28T23:59:59.999Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2028-02-29T00:00:00Z"), "10");
    use_all_ten(&mut e, "2028-02-29T12:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2028-03-30T23:59:59.999Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2028-03-31T00:00:00Z"), "10");
}

#[test]
fn usage_period_defaults_to_the_subscription_start_as_anchor() {
    // No anchor in the template: periods start at the subscription's startedAt (Jan 31, 2026).
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M" }, "issueAfterReset": "10" }),
        "2026-01-31T00:00:00Z",
        json!([]),
    );
    use_all_ten(&mut e, "2026-02-10T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-27T23:59:59.999Z"), "0");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-28T00:00:00Z"), "10");
}

#[test]
fn without_a_usage_period_the_grant_never_refills() {
    // `usagePeriod` omitted: one-time, never refills.
    let mut e = metered_engine(json!({ "issueAfterReset": "10" }), "2026-01-01T00:00:00Z", json!([]));
    use_all_ten(&mut e, "2026-01-02T00:00:00Z");
    for at in ["2026-02-02T00:00:00Z", "2026-07-01T00:00:00Z", "2027-01-02T00:00:00Z"] {
        let dec = e.check("cus", "tokens", ts(at)).unwrap();
        assert_eq!((dec.allowed, dec.reason), (false, Reason::LimitReached), "{at}");
        assert_eq!(figs(&dec)[0], "0", "{at}");
    }
}

#[test]
fn a_grant_alone_entitles_a_customer_without_a_subscription() {
    // SPEC §5: balance = Σ remaining of active grants, customer grants included.
    let mut e = engine(&json!({
        "catalog": metered_catalog(json!({ "issueAfterReset": "10" })),
        "customers": [{ "id": "cus", "grants": [
            { "id": "g", "featureKey": "tokens", "amount": "25",
              "effectiveAt": "2026-01-10T00:00:00Z", "expiresAt": "2026-02-10T00:00:00Z" }] }]
    }));
    // Before effectiveAt: nothing active, no subscription.
    let dec = e.check("cus", "tokens", ts("2026-01-09T00:00:00Z")).unwrap();
    assert_eq!((dec.allowed, dec.reason), (false, Reason::NotSubscribed));
    // Effective: 25; use 20 → 5.
    let dec = consume(&mut e, "cus", "tokens", "20", "2026-01-15T00:00:00Z");
    assert!(dec.allowed);
    assert_eq!(figs(&dec)[..2], ["5".to_string(), "20".to_string()]);
    let dec = consume(&mut e, "cus", "tokens", "6", "2026-01-16T00:00:00Z");
    assert_eq!((dec.allowed, dec.reason), (false, Reason::LimitReached));
    // After expiresAt: no active grant and no subscription.
    let dec = e.check("cus", "tokens", ts("2026-02-10T00:00:00Z")).unwrap();
    assert_eq!((dec.allowed, dec.reason), (false, Reason::NotSubscribed));
}

#[test]
fn upserting_a_customer_keeps_the_usage_of_the_period() {
    // SPEC §5: balance = Σ remaining of active grants; usage burns them. Adding a grant to a
    // customer mid-period adds its units; it does not give back what was already used.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" }, "issueAfterReset": "100" }),
        "2026-01-01T00:00:00Z",
        json!([]),
    );
    let dec = consume(&mut e, "cus", "tokens", "60", "2026-01-05T00:00:00Z");
    assert_eq!(figs(&dec), ["40", "60", "0", "100"]);
    e.upsert_customer(&json!({ "id": "cus",
                               "subscriptions": [sub("sub", "plan_m", "2026-01-01T00:00:00Z", None)],
                               "grants": [grant("extra", "10", 0, None)] }))
        .expect("a valid customer");
    let jan = Period { start: ts("2026-01-01T00:00:00Z"), end: ts("2026-02-01T00:00:00Z") };
    assert_eq!(e.quantity("cus", "bm_tokens", jan).unwrap(), d("60")); // the ledger keeps it
                                                                       // 100 + 10 issued, 60 used → 110 − 60 = 50 left.
    let dec = e.check("cus", "tokens", ts("2026-01-06T00:00:00Z")).unwrap();
    assert_eq!(figs(&dec)[..2], ["50".to_string(), "60".to_string()], "{}", js(&dec));
    // So 51 does not fit on a hard limit.
    let dec = consume(&mut e, "cus", "tokens", "51", "2026-01-07T00:00:00Z");
    assert_eq!((dec.allowed, dec.reason), (false, Reason::LimitReached));
}

#[test]
fn template_rollover_null_carries_everything() {
    // decisions.md 16: in a template, an explicit resetMaxRollover null means no cap.
    // Jan: use 30 of 100 → 70 carried whole; Feb: 70 + 100 = 170.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                "issueAfterReset": "100", "resetMaxRollover": null }),
        "2026-01-01T00:00:00Z",
        json!([]),
    );
    consume(&mut e, "cus", "tokens", "30", "2026-01-05T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-01T00:00:00Z"), "170");
    // Default (no field): "0", nothing carried: a fresh 100.
    let mut e = metered_engine(
        json!({ "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" }, "issueAfterReset": "100" }),
        "2026-01-01T00:00:00Z",
        json!([]),
    );
    consume(&mut e, "cus", "tokens", "30", "2026-01-05T00:00:00Z");
    assert_eq!(balance(&mut e, "cus", "tokens", "2026-02-01T00:00:00Z"), "100");
}

// ---------------------------------------------------------------- entitlement-only prices

/// A plan whose API-call quota comes from a price with no model (entitlement-only) next to a
/// platform fee of 20.00: the quota works, and neither the quote nor the invoice has a line for
/// the entitlement-only price (no 0.00 line).
fn entitlement_only_snapshot() -> Value {
    json!({
        "catalog": {
            "schemaVersion": 1, "catalogVersion": 1,
            "products": [{ "id": "prod", "name": "API" }],
            "features": [{ "id": "feat_calls", "productId": "prod", "key": "api-calls", "name": "API calls", "type": "metered" }],
            "billableMetrics": [{ "id": "bm_calls", "productId": "prod", "name": "Calls", "eventType": "api.call", "aggregation": "COUNT" }],
            "fees": [{ "id": "fee_platform", "productId": "prod", "name": "Platform" }],
            "plans": [{ "id": "plan_free", "productId": "prod", "name": "Free", "currency": "USD", "billingCadence": "P1M",
                        "prices": [
                            { "id": "price_platform", "feeId": "fee_platform", "paymentTerm": "in_advance",
                              "model": { "type": "flat", "amount": "20.00" } },
                            { "id": "price_quota", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                              "feature": { "featureId": "feat_calls", "entitlement": { "type": "metered",
                                  "usagePeriod": { "interval": "P1M" }, "issueAfterReset": "3", "isSoftLimit": false } } }
                        ] }]
        },
        "customers": [{ "id": "cus", "subscriptions": [{ "id": "sub", "planId": "plan_free", "startedAt": "2026-11-01T00:00:00Z" }] }]
    })
}

#[test]
fn an_entitlement_only_price_grants_its_feature_and_prints_no_line() {
    let mut e = engine(&entitlement_only_snapshot());
    let now = ts("2026-11-10T00:00:00Z");
    // The quota of 3: three calls allowed, the fourth is limit_reached.
    for i in 0..3 {
        let event = json!({ "id": format!("c{i}"), "source": "app", "type": "api.call", "subject": "cus", "time": "2026-11-10T00:00:00Z" });
        let out = e.ingest(&event, now).unwrap();
        assert!(out.allowed && !out.unmatched && out.charges.is_empty(), "{out:?}");
    }
    let denied = e.consume("cus", "api-calls", Decimal::ONE, None, now).unwrap();
    assert_eq!((denied.allowed, denied.reason), (false, Reason::LimitReached));
    // The invoice: the platform fee only (20.00), no line for price_quota.
    let invoice = e.invoice_preview("cus", now).unwrap();
    let prices: Vec<Option<&str>> = invoice.lines.iter().map(|l| l.price_id.as_deref()).collect();
    assert!(!prices.contains(&Some("price_quota")), "{prices:?}");
    let quote = e.quote(&json!({ "planId": "plan_free", "usage": { "bm_calls": 1000 } })).unwrap();
    let quoted: Vec<Option<&str>> = quote.lines.iter().map(|l| l.price_id.as_deref()).collect();
    assert_eq!(quoted, [Some("price_platform")]);
    assert_eq!(quote.total, d("20.00"));
    // Nothing to override on it.
    let mut snapshot = entitlement_only_snapshot();
    snapshot["customers"][0]["subscriptions"][0]["priceOverrides"] =
        json!({ "price_quota": { "type": "per_unit", "unitPrice": "1" } });
    let errors = Engine::from_snapshot(&snapshot, Options::default()).unwrap_err();
    assert_eq!(errors[0].code, tollgate::Code::NotAllowedHere, "{errors:?}");
    assert_eq!(errors[0].path, "/customers/0/subscriptions/0/priceOverrides/price_quota");
    // Without a feature, a price still needs its model.
    let mut snapshot = entitlement_only_snapshot();
    snapshot["catalog"]["plans"][0]["prices"][1].as_object_mut().unwrap().remove("feature");
    let errors = Engine::from_snapshot(&snapshot, Options::default()).unwrap_err();
    assert_eq!(
        (errors[0].code, errors[0].path.as_str()),
        (tollgate::Code::MissingField, "/catalog/plans/0/prices/1/model")
    );
}
