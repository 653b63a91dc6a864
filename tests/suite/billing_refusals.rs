//! Refusal at the door (SPEC §13 "§3.2 / §5 refusal at the door", issue 14 point 1): an event or
//! a `consume` that a price of the customer's subscriptions cannot rate — a `matrix` value with
//! no cell and no default, a `dynamic` unit price missing, not a number or out of bounds, a
//! market rate the catalog lacks — is an error with a code and a path where it enters
//! (`Engine::ingest`, `Engine::consume`, the hub's `Engine::record`, `POST /v1/events`), and
//! nothing of it is applied: no usage, no charge, no idempotency entry. The invoice of what was
//! accepted is computed by hand.

use serde_json::{json, Value};
use tollgate::billing::Invoice;
use tollgate::engine::{Engine, Options, CONSUME_EVENT};
use tollgate::error::Error;
use tollgate::time::Timestamp;
use tollgate::Decimal;

// ---------------------------------------------------------------- helpers

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

/// Per-model LLM pricing and a GPU price read from each event:
/// - `plan_llm`: `tokens` (metered, soft) priced by a matrix on `model`: small 0.001, large 0.01
///   per token, no default;
/// - `plan_default`: the same matrix with a default of 0.5 per token;
/// - `plan_cells`: a matrix whose `gpu` cell is dynamic (the event's `$.unit_price`, 0.5…2);
/// - `plan_gpu`: `gpu.job` hours paid instantly at the event's `$.unit_price` (0.5…2), linked
///   to the metered `gpu-hours`.
fn catalog() -> Value {
    let cells = json!({ "small": { "type": "per_unit", "unitPrice": "0.001" },
                        "large": { "type": "per_unit", "unitPrice": "0.01" } });
    let dynamic = json!({ "type": "dynamic", "source": { "eventProperty": "$.unit_price" },
                          "minPrice": "0.5", "maxPrice": "2" });
    let tokens = |id: &str, model: Value| {
        json!({ "id": id, "metricId": "bm_tokens", "paymentTerm": "in_arrears", "model": model,
                "feature": { "featureId": "feat_tokens",
                             "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                              "issueAfterReset": "0", "isSoftLimit": true } } })
    };
    let plan = |id: &str, prices: Value| {
        json!({ "id": id, "productId": "prod", "name": id, "currency": "USD", "billingCadence": "P1M",
                "prices": prices })
    };
    let with_gpu_cell = {
        let mut c = cells.clone();
        c["gpu"] = dynamic.clone();
        c
    };
    json!({
        "schemaVersion": 1,
        "products": [{ "id": "prod", "name": "LLM" }],
        "features": [
            { "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" },
            { "id": "feat_gpu", "productId": "prod", "key": "gpu-hours", "type": "metered" }
        ],
        "billableMetrics": [
            { "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm.completion",
              "aggregation": "SUM", "valueProperty": "$.tokens", "groupBy": { "model": "$.model" } },
            { "id": "bm_gpu", "productId": "prod", "name": "GPU hours", "eventType": "gpu.job",
              "aggregation": "SUM", "valueProperty": "$.hours" }
        ],
        "rates": { "gpu-spot": "3.50" },
        "plans": [
            plan("plan_llm", json!([tokens("price_tokens", json!({ "type": "matrix", "dimension": "model", "cells": cells }))])),
            plan("plan_default", json!([tokens("price_tokens_d", json!({ "type": "matrix", "dimension": "model",
                "cells": cells, "default": { "type": "per_unit", "unitPrice": "0.5" } }))])),
            plan("plan_cells", json!([tokens("price_tokens_c", json!({ "type": "matrix", "dimension": "model",
                "cells": with_gpu_cell }))])),
            plan("plan_gpu", json!([{ "id": "price_gpu", "metricId": "bm_gpu", "paymentTerm": "instant",
                "model": dynamic,
                "feature": { "featureId": "feat_gpu",
                             "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                              "issueAfterReset": "0", "isSoftLimit": true } } }]))
        ]
    })
}

/// A customer of `plan` since Nov 1, 2026, with a 100 USD wallet and `extra` subscription fields.
fn customer(id: &str, plan: &str, extra: Value) -> Value {
    let mut sub = json!({ "id": format!("sub_{id}"), "planId": plan, "startedAt": "2026-11-01T00:00:00Z" });
    if let (Some(s), Value::Object(more)) = (sub.as_object_mut(), extra) {
        s.extend(more);
    }
    json!({ "id": id, "subscriptions": [sub], "wallet": { "currency": "USD", "balance": "100" } })
}

fn engine(customers: Vec<Value>) -> Engine {
    let snapshot = json!({ "snapshotVersion": 1, "catalog": catalog(), "customers": customers });
    Engine::from_snapshot(&snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

const DAY: &str = "2026-11-10T12:00:00Z";

fn completion(id: &str, subject: &str, data: Value) -> Value {
    json!({ "id": id, "source": "edge", "type": "llm.completion", "subject": subject, "time": DAY, "data": data })
}

fn gpu_job(id: &str, subject: &str, data: Value) -> Value {
    json!({ "id": id, "source": "edge", "type": "gpu.job", "subject": subject, "time": DAY, "data": data })
}

/// Ingests an event that must be accepted and applied.
fn accept(e: &mut Engine, ev: &Value) {
    let out = e.ingest(ev, ts(DAY)).unwrap_or_else(|err| panic!("{ev} refused: {err}"));
    assert!(out.allowed && !out.duplicate && !out.unmatched, "{ev} not applied: {out:?}");
}

/// Ingests an event that must be refused with `code` at `path`.
fn refuse(e: &mut Engine, ev: &Value, code: &str, path: &str) -> Error {
    let err = e.ingest(ev, ts(DAY)).expect_err("the event must be refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), (code, path), "{err}");
    err
}

fn preview(e: &Engine, customer: &str) -> Invoice {
    e.invoice_preview(customer, ts(DAY)).unwrap_or_else(|err| panic!("invoice of {customer}: {err}"))
}

/// The usage of a metered feature so far.
fn usage(e: &mut Engine, customer: &str, key: &str) -> Decimal {
    e.check(customer, key, ts(DAY)).expect("check").figures.expect("a metered feature").usage
}

/// The (quantity, amount) of the line of `price`.
fn line(inv: &Invoice, price: &str) -> (Decimal, Decimal) {
    let l = inv.lines.iter().find(|l| l.price_id.as_deref() == Some(price)).expect("a line of the price");
    (l.quantity, l.amount)
}

// ---------------------------------------------------------------- matrix

#[test]
fn an_unknown_model_is_refused_and_nothing_of_it_is_applied() {
    let mut e = engine(vec![customer("acme", "plan_llm", json!({}))]);
    accept(&mut e, &completion("e1", "acme", json!({ "tokens": 1000, "model": "small" })));
    accept(&mut e, &completion("e2", "acme", json!({ "tokens": 200, "model": "large" })));
    let before = preview(&e, "acme");
    let usage_before = usage(&mut e, "acme", "tokens");

    let err = refuse(
        &mut e,
        &completion("e3", "acme", json!({ "tokens": 5000, "model": "huge" })),
        "no_price_for_dimension",
        "/data/model",
    );
    assert!(err.message.contains("\"huge\"") && err.message.contains("price_tokens"), "{}", err.message);

    // Nothing applied: the same invoice, the same usage of the metered feature.
    assert_eq!(preview(&e, "acme"), before);
    assert_eq!(usage(&mut e, "acme", "tokens"), usage_before);
    // No idempotency entry: the same event id, corrected, is accepted (not a duplicate).
    accept(&mut e, &completion("e3", "acme", json!({ "tokens": 2500, "model": "small" })));
    // And the same id again is now a duplicate.
    let again = e.ingest(&completion("e3", "acme", json!({ "tokens": 2500, "model": "small" })), ts(DAY)).unwrap();
    assert!(again.duplicate);

    // By hand: small 1000 + 2500 = 3500 × 0.001 = 3.50; large 200 × 0.01 = 2.00; 5.50 in all.
    let inv = preview(&e, "acme");
    assert_eq!(line(&inv, "price_tokens"), (d("3700"), d("5.50")));
    assert_eq!(inv.total, d("5.50"));
    assert_eq!(e.close_invoice("acme", ts(DAY), ts("2026-12-01T00:00:00Z")).expect("close").total, d("5.50"));
}

#[test]
fn an_event_without_the_dimension_is_refused() {
    let mut e = engine(vec![customer("acme", "plan_llm", json!({}))]);
    refuse(&mut e, &completion("e1", "acme", json!({ "tokens": 10 })), "no_price_for_dimension", "/data/model");
    refuse(
        &mut e,
        &completion("e2", "acme", json!({ "tokens": 10, "model": null })),
        "no_price_for_dimension",
        "/data/model",
    );
    refuse(
        &mut e,
        &completion("e3", "acme", json!({ "tokens": 10, "model": ["small"] })),
        "no_price_for_dimension",
        "/data/model",
    );
    // Even with no tokens: an empty group of an unknown model would fail the invoice too.
    refuse(
        &mut e,
        &completion("e4", "acme", json!({ "tokens": 0, "model": "huge" })),
        "no_price_for_dimension",
        "/data/model",
    );
    assert_eq!(preview(&e, "acme").total, Decimal::ZERO);
}

#[test]
fn a_bad_value_is_reported_before_the_price() {
    // The metric's own value is checked first (SPEC §5): a missing `tokens` is missing_property.
    let mut e = engine(vec![customer("acme", "plan_llm", json!({}))]);
    refuse(&mut e, &completion("e1", "acme", json!({ "model": "huge" })), "missing_property", "/data/tokens");
}

#[test]
fn a_matrix_with_a_default_prices_unknown_models() {
    let mut e = engine(vec![customer("acme", "plan_default", json!({}))]);
    accept(&mut e, &completion("e1", "acme", json!({ "tokens": 1000, "model": "small" })));
    accept(&mut e, &completion("e2", "acme", json!({ "tokens": 3, "model": "huge" })));
    accept(&mut e, &completion("e3", "acme", json!({ "tokens": 4 })));
    // By hand: 1000 × 0.001 = 1.00; huge 3 × 0.5 = 1.50; no model 4 × 0.5 = 2.00; 4.50.
    let inv = preview(&e, "acme");
    assert_eq!(line(&inv, "price_tokens_d"), (d("1007"), d("4.50")));
    assert_eq!(inv.total, d("4.50"));
}

#[test]
fn a_dynamic_cell_is_checked_too() {
    let mut e = engine(vec![customer("acme", "plan_cells", json!({}))]);
    accept(&mut e, &completion("e1", "acme", json!({ "tokens": 10, "model": "small" })));
    refuse(
        &mut e,
        &completion("e2", "acme", json!({ "tokens": 10, "model": "gpu" })),
        "missing_property",
        "/data/unit_price",
    );
    refuse(
        &mut e,
        &completion("e3", "acme", json!({ "tokens": 10, "model": "gpu", "unit_price": "9" })),
        "price_out_of_bounds",
        "/data/unit_price",
    );
    refuse(
        &mut e,
        &completion("e4", "acme", json!({ "tokens": 10, "model": "tiny" })),
        "no_price_for_dimension",
        "/data/model",
    );
}

#[test]
fn a_numeric_dimension_value_matches_its_cell_by_its_json_text() {
    let mut cat = catalog();
    cat["plans"][0]["prices"][0]["model"]["cells"]["7"] = json!({ "type": "per_unit", "unitPrice": "1" });
    let snapshot =
        json!({ "snapshotVersion": 1, "catalog": cat, "customers": [customer("acme", "plan_llm", json!({}))] });
    let mut e = Engine::from_snapshot(&snapshot, Options::default()).expect("snapshot");
    accept(&mut e, &completion("e1", "acme", json!({ "tokens": 2, "model": 7 })));
    refuse(
        &mut e,
        &completion("e2", "acme", json!({ "tokens": 2, "model": 7.0 })),
        "no_price_for_dimension",
        "/data/model",
    );
    assert_eq!(preview(&e, "acme").total, d("2.00"));
}

#[test]
fn a_subscription_override_is_the_model_checked() {
    // acme's override removes the default; globex keeps the plan's.
    let no_default = json!({ "priceOverrides": { "price_tokens_d": { "type": "matrix", "dimension": "model",
        "cells": { "small": { "type": "per_unit", "unitPrice": "0.002" } } } } });
    let mut e =
        engine(vec![customer("acme", "plan_default", no_default), customer("globex", "plan_default", json!({}))]);
    refuse(
        &mut e,
        &completion("e1", "acme", json!({ "tokens": 1, "model": "large" })),
        "no_price_for_dimension",
        "/data/model",
    );
    accept(&mut e, &completion("e2", "globex", json!({ "tokens": 1, "model": "large" })));
    accept(&mut e, &completion("e3", "acme", json!({ "tokens": 1000, "model": "small" })));
    assert_eq!(preview(&e, "acme").total, d("2.00"));
}

#[test]
fn a_price_of_a_subscription_not_active_at_the_event_is_not_consulted() {
    // plan_llm ended on Nov 1; plan_default runs from Nov 1: its default prices the event.
    let acme = json!({ "id": "acme", "subscriptions": [
        { "id": "sub_old", "planId": "plan_llm", "startedAt": "2026-10-01T00:00:00Z", "endingAt": "2026-11-01T00:00:00Z" },
        { "id": "sub_new", "planId": "plan_default", "startedAt": "2026-11-01T00:00:00Z" }] });
    let mut e = engine(vec![acme]);
    accept(&mut e, &completion("e1", "acme", json!({ "tokens": 2, "model": "huge" })));
    assert_eq!(preview(&e, "acme").total, d("1.00"));
}

// ---------------------------------------------------------------- dynamic

#[test]
fn a_dynamic_price_missing_from_the_event_is_refused() {
    let mut e = engine(vec![customer("acme", "plan_gpu", json!({}))]);
    let err = refuse(&mut e, &gpu_job("g1", "acme", json!({ "hours": 2 })), "missing_property", "/data/unit_price");
    assert!(err.message.contains("price_gpu"), "{}", err.message);
    refuse(
        &mut e,
        &gpu_job("g2", "acme", json!({ "hours": 2, "unit_price": "cheap" })),
        "missing_property",
        "/data/unit_price",
    );
    refuse(
        &mut e,
        &gpu_job("g3", "acme", json!({ "hours": 2, "unit_price": true })),
        "missing_property",
        "/data/unit_price",
    );
    // Nothing charged, nothing remembered.
    assert_eq!(e.wallet_balance("acme"), Some(d("100")));
    let out = e.ingest(&gpu_job("g1", "acme", json!({ "hours": 2, "unit_price": "1.25" })), ts(DAY)).unwrap();
    assert!(out.allowed && !out.duplicate);
    // 2 h × 1.25 = 2.50 debited.
    assert_eq!(e.wallet_balance("acme"), Some(d("97.50")));
}

#[test]
fn a_dynamic_price_out_of_bounds_is_refused() {
    let mut e = engine(vec![customer("acme", "plan_gpu", json!({}))]);
    refuse(
        &mut e,
        &gpu_job("g1", "acme", json!({ "hours": 1, "unit_price": "2.01" })),
        "price_out_of_bounds",
        "/data/unit_price",
    );
    refuse(
        &mut e,
        &gpu_job("g2", "acme", json!({ "hours": 1, "unit_price": 0.49 })),
        "price_out_of_bounds",
        "/data/unit_price",
    );
    // The bounds themselves are in; a numeric string or a JSON number both read exactly.
    accept(&mut e, &gpu_job("g3", "acme", json!({ "hours": 1, "unit_price": "2" })));
    accept(&mut e, &gpu_job("g4", "acme", json!({ "hours": 1, "unit_price": 0.5 })));
    assert_eq!(e.wallet_balance("acme"), Some(d("97.5")));
    // The instant line carries what was debited: 1 × 2 + 1 × 0.5 = 2.50.
    assert_eq!(line(&preview(&e, "acme"), "price_gpu").1, d("2.50"));
}

#[test]
fn an_unknown_market_rate_is_refused() {
    // A subscription's override may name a rate the catalog does not carry.
    let over =
        json!({ "priceOverrides": { "price_gpu": { "type": "dynamic", "source": { "rate": "gpu-reserved" } } } });
    let mut e = engine(vec![
        customer("acme", "plan_gpu", over),
        customer(
            "globex",
            "plan_gpu",
            json!({
        "priceOverrides": { "price_gpu": { "type": "dynamic", "source": { "rate": "gpu-spot" }, "maxPrice": "3" } } }),
        ),
    ]);
    let err = refuse(&mut e, &gpu_job("g1", "acme", json!({ "hours": 1 })), "unknown_rate", "");
    assert!(err.message.contains("gpu-reserved"), "{}", err.message);
    let err = e.consume("acme", "gpu-hours", d("1"), None, ts(DAY)).expect_err("refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), ("unknown_rate", "/featureKey"));
    // A known rate is clamped to maxPrice: 1 h × 3 = 3.
    accept(&mut e, &gpu_job("g2", "globex", json!({ "hours": 1 })));
    assert_eq!(e.wallet_balance("globex"), Some(d("97")));
}

// ---------------------------------------------------------------- consume

#[test]
fn consume_of_a_feature_priced_by_a_matrix_without_default_is_refused() {
    let mut e = engine(vec![customer("acme", "plan_llm", json!({}))]);
    let before = preview(&e, "acme");
    let err = e.consume("acme", "tokens", d("5"), Some("c1"), ts(DAY)).expect_err("refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), ("no_price_for_dimension", "/featureKey"));
    assert_eq!(preview(&e, "acme"), before);
    assert_eq!(usage(&mut e, "acme", "tokens"), Decimal::ZERO);
    // A feature or customer that does not resolve is still a denial, not an error.
    assert!(!e.consume("acme", "nope", d("1"), None, ts(DAY)).unwrap().allowed);
    assert!(!e.consume("nobody", "tokens", d("1"), None, ts(DAY)).unwrap().allowed);
}

#[test]
fn consume_of_a_feature_priced_by_a_matrix_with_default_is_billed_at_the_default() {
    let mut e = engine(vec![customer("acme", "plan_default", json!({}))]);
    assert!(e.consume("acme", "tokens", d("5"), Some("c1"), ts(DAY)).unwrap().allowed);
    // 5 × 0.5 = 2.50.
    assert_eq!(line(&preview(&e, "acme"), "price_tokens_d"), (d("5"), d("2.50")));
}

#[test]
fn consume_of_a_feature_priced_from_event_data_is_refused() {
    let mut e = engine(vec![customer("acme", "plan_gpu", json!({}))]);
    let err = e.consume("acme", "gpu-hours", d("1"), None, ts(DAY)).expect_err("refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), ("missing_property", "/featureKey"));
    assert_eq!(e.wallet_balance("acme"), Some(d("100")));
}

// ---------------------------------------------------------------- the hub's record

#[test]
fn the_hubs_record_refuses_what_it_could_not_price() {
    let mut hub = engine(vec![customer("acme", "plan_llm", json!({}))]);
    let now = ts(DAY);
    let err = hub.record(&completion("e1", "acme", json!({ "tokens": 9, "model": "huge" })), now).expect_err("refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), ("no_price_for_dimension", "/data/model"));
    let consume = json!({ "id": "c1", "source": "edge", "type": CONSUME_EVENT, "subject": "acme", "time": DAY,
                          "data": { "featureKey": "tokens", "quantity": "3" } });
    let err = hub.record(&consume, now).expect_err("refused");
    assert_eq!((err.code.as_str(), err.path.as_str()), ("no_price_for_dimension", "/data/featureKey"));
    // Nothing remembered: the corrected event under the same id is recorded.
    let out = hub.record(&completion("e1", "acme", json!({ "tokens": 9, "model": "large" })), now).expect("recorded");
    assert!(out.allowed && !out.duplicate);
    // 9 × 0.01 = 0.09.
    assert_eq!(preview(&hub, "acme").total, d("0.09"));
}

// ---------------------------------------------------------------- the hub binary

/// `POST /v1/events` with three events, the middle one of an unknown model: that one alone is
/// refused (its outcome carries the error with the item's path), the others are recorded and
/// billed.
#[test]
fn the_hub_refuses_the_unpriced_event_of_a_batch_alone() {
    use crate::support::hub_harness::{Hub, TempDir, ADMIN};

    let dir = TempDir::new("refusals");
    let hub = Hub::start(&dir.db(), &[]);
    let r = hub.put("/v1/catalog", Some(ADMIN), &catalog().to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let acme = json!({ "id": "acme", "subscriptions": [{ "id": "sub_acme", "planId": "plan_llm",
                                                          "startedAt": "2026-01-01T00:00:00Z" }] });
    let r = hub.put("/v1/customers/acme", Some(ADMIN), &acme.to_string());
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let ev = |id: &str, tokens: u64, model: &str| {
        json!({ "id": id, "source": "api", "type": "llm.completion", "subject": "acme",
                "data": { "tokens": tokens, "model": model } })
    };
    let body = json!({ "events": [ev("b0", 1000, "small"), ev("b1", 50, "huge"), ev("b2", 300, "large")] });
    let r = hub.post("/v1/events", Some(ADMIN), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let outcomes = r.body["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 3, "{}", r.body);
    assert_eq!(outcomes[0]["allowed"], true, "{}", r.body);
    assert_eq!(outcomes[1]["error"]["code"], "no_price_for_dimension", "{}", r.body);
    assert_eq!(outcomes[1]["error"]["path"], "/events/1/data/model", "{}", r.body);
    assert_eq!(outcomes[2]["allowed"], true, "{}", r.body);
    assert_eq!(hub.stored_ids("api"), ["b0", "b2"]);
    // By hand: 1000 × 0.001 + 300 × 0.01 = 1.00 + 3.00 = 4.00.
    let invoice = hub.get("/v1/customers/acme/invoice", Some(ADMIN));
    assert_eq!(invoice.status, 200, "{}", invoice.body);
    assert_eq!(invoice.body["total"], "4.00", "{}", invoice.body);
    let line = invoice.body["lines"].as_array().unwrap().iter().find(|l| l["priceId"] == "price_tokens").cloned();
    assert_eq!(line.expect("a tokens line")["quantity"], "1300", "{}", invoice.body);
}
