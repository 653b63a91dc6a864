//! The invoice lifecycle (issue 14, SPEC §13): upfront fees on the advance invoice at the
//! period's start, usage at its end, per-event models billed per event in arrears, no close
//! before the end, plan changes inside a period, late usage as adjustments. Every figure is
//! computed by hand in the comments.

use serde_json::{json, Value};
use tollgate::billing::{Invoice, InvoiceKind, InvoiceStatus, LineType};
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::Decimal;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

const END_OF_TIME: Timestamp = Timestamp(i64::MAX);

/// Payments (percentage with per-event floor and cap, first event free), API units priced by
/// each event's own `unit_price` (bounded), a platform fee upfront; a Pro plan for upgrades.
fn catalog() -> Value {
    json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod_pay", "name": "Payments" }],
        "features": [],
        "billableMetrics": [
            { "id": "bm_payments", "productId": "prod_pay", "name": "Payments", "unit": "USD",
              "eventType": "payment", "aggregation": "SUM", "valueProperty": "$.amount" },
            { "id": "bm_api", "productId": "prod_pay", "name": "API units", "unit": "unit",
              "eventType": "api.call", "aggregation": "SUM", "valueProperty": "$.units" },
            { "id": "bm_calls", "productId": "prod_pay", "name": "Calls", "unit": "call",
              "eventType": "call", "aggregation": "COUNT" }
        ],
        "fees": [{ "id": "fee_platform", "productId": "prod_pay", "name": "Platform" }],
        "rates": {},
        "plans": [
            { "id": "plan_basic", "productId": "prod_pay", "name": "Basic", "currency": "USD", "billingCadence": "P1M",
              "prices": [
                { "id": "price_platform", "feeId": "fee_platform", "paymentTerm": "in_advance",
                  "model": { "type": "flat", "amount": "30" } },
                { "id": "price_payments", "metricId": "bm_payments", "paymentTerm": "in_arrears",
                  "model": { "type": "percentage", "rate": "0.029", "fixedFee": "0.30",
                             "minPerEvent": "0.50", "maxPerEvent": "5.00", "freeEvents": "1" } },
                { "id": "price_api", "metricId": "bm_api", "paymentTerm": "in_arrears",
                  "model": { "type": "dynamic", "source": { "eventProperty": "$.unit_price" },
                             "minPrice": "0.001", "maxPrice": "1" } },
                { "id": "price_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "0.10" } }
              ] },
            { "id": "plan_pro", "productId": "prod_pay", "name": "Pro", "currency": "USD", "billingCadence": "P1M",
              "prices": [
                { "id": "price_pro_platform", "feeId": "fee_platform", "paymentTerm": "in_advance",
                  "model": { "type": "flat", "amount": "90" } },
                { "id": "price_pro_payments", "metricId": "bm_payments", "paymentTerm": "in_arrears",
                  "model": { "type": "percentage", "rate": "0.02" } },
                { "id": "price_pro_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "0.05" } }
              ] }
        ]
    })
}

fn engine(customers: Vec<Value>) -> Engine {
    let snap = json!({ "snapshotVersion": 1, "issuedAt": "2026-11-01T00:00:00Z", "catalog": catalog(), "customers": customers });
    Engine::from_snapshot(&snap, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

fn event(id: &str, subject: &str, kind: &str, time: &str, data: Value) -> Value {
    json!({ "id": id, "source": "test", "type": kind, "subject": subject, "time": time, "data": data })
}

fn feed(e: &mut Engine, events: &[Value]) {
    for ev in events {
        let now = ts(ev["time"].as_str().expect("time"));
        let out = e.ingest(ev, now).unwrap_or_else(|err| panic!("{ev} refused: {err}"));
        assert!(out.allowed && !out.unmatched, "{ev} not applied: {out:?}");
    }
}

fn amount(inv: &Invoice, price: &str) -> Decimal {
    inv.lines.iter().filter(|l| l.price_id.as_deref() == Some(price)).map(|l| l.amount).sum()
}

fn kind_of(docs: &[Invoice], kind: InvoiceKind) -> &Invoice {
    docs.iter().find(|d| d.kind == kind).unwrap_or_else(|| panic!("no {kind:?} invoice in {docs:?}"))
}

/// Payments: the first event is free; then clamp(2.9 % × v + 0.30, 0.50, 5.00) per event.
fn payments(subject: &str) -> Vec<Value> {
    vec![
        event("p1", subject, "payment", "2026-11-12T10:00:00Z", json!({ "amount": "100" })), // free
        event("p2", subject, "payment", "2026-11-13T10:00:00Z", json!({ "amount": "10" })),  // 0.29 + 0.30 = 0.59
        event("p3", subject, "payment", "2026-11-14T10:00:00Z", json!({ "amount": "5" })),   // 0.445 → floor 0.50
        event("p4", subject, "payment", "2026-11-15T10:00:00Z", json!({ "amount": "1000" })), // 29.30 → cap 5.00
    ]
}

#[test]
fn upfront_fee_for_a_subscription_started_on_the_10th_and_per_event_models_in_arrears() {
    let sub = json!({ "id": "sub_a", "planId": "plan_basic", "startedAt": "2026-11-10T00:00:00Z",
                      "billingAnchor": "2026-11-01T00:00:00Z" });
    let mut e = engine(vec![json!({ "id": "cus_a", "subscriptions": [sub] })]);
    let mut events = payments("cus_a");
    events.push(event(
        "a1",
        "cus_a",
        "api.call",
        "2026-11-12T11:00:00Z",
        json!({ "units": 1000, "unit_price": "0.002" }),
    ));
    events.push(event(
        "a2",
        "cus_a",
        "api.call",
        "2026-11-20T11:00:00Z",
        json!({ "units": 500, "unit_price": "0.01" }),
    ));
    feed(&mut e, &events);

    // Nov 10 (the start): the advance invoice is issued — 30 × 21 days / 30 days = 21.00.
    let docs = e.invoices_at("cus_a", ts("2026-11-10T00:00:00Z"), ts("2026-11-10T00:00:00Z")).expect("invoices");
    let advance = kind_of(&docs, InvoiceKind::Advance);
    assert_eq!(advance.status, InvoiceStatus::Final);
    assert_eq!(advance.issued_at, "2026-11-10T00:00:00Z");
    assert_eq!(advance.id, "sub_a-20261101T000000Z-advance");
    assert_eq!(amount(advance, "price_platform"), d("21.00"));
    assert_eq!(advance.total, d("21.00"));
    // Before the start nothing is issued yet.
    let before = e.invoices_at("cus_a", ts("2026-11-10T00:00:00Z"), ts("2026-11-09T00:00:00Z")).expect("invoices");
    assert!(before.iter().all(|d| d.kind == InvoiceKind::Arrears), "{before:?}");

    // Dec 1 (the end): per event — payments 0 + 0.59 + 0.50 + 5.00 = 6.09 (from totals it would
    // be 2.9 % × 1115 + 0.30 × 3 = 33.235); API 1000 × 0.002 + 500 × 0.01 = 7.00; no fee.
    let inv = e.close_invoice("cus_a", ts("2026-11-20T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("close");
    assert_eq!(inv.kind, InvoiceKind::Arrears);
    assert_eq!(inv.id, "sub_a-20261101T000000Z-arrears");
    assert_eq!(inv.issued_at, "2026-12-01T00:00:00Z");
    assert_eq!(amount(&inv, "price_payments"), d("6.09"));
    assert_eq!(amount(&inv, "price_api"), d("7.00"));
    assert_eq!(amount(&inv, "price_platform"), d("0"));
    assert_eq!(inv.total, d("13.09"));
}

#[test]
fn an_early_close_is_refused_with_period_open() {
    let mut e = engine(vec![json!({ "id": "cus_a", "subscriptions": [
        { "id": "sub_a", "planId": "plan_basic", "startedAt": "2026-11-01T00:00:00Z" }] })]);
    feed(&mut e, &payments("cus_a"));
    let err = e.close_invoice("cus_a", ts("2026-11-20T00:00:00Z"), ts("2026-11-30T23:59:59Z")).expect_err("early");
    assert_eq!(err.code.as_str(), "period_open");
    assert_eq!(err.path, "/at");
    // Usage after the refused close is still billed: 0.50 more at the floor.
    feed(&mut e, &[event("p5", "cus_a", "payment", "2026-11-30T23:59:59Z", json!({ "amount": "1" }))]);
    let inv = e.close_invoice("cus_a", ts("2026-11-20T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("at the end");
    assert_eq!(amount(&inv, "price_payments"), d("6.59"));
}

#[test]
fn an_upgrade_on_the_15th_bills_both_parts() {
    // Basic Nov 1 – Nov 15, then Pro from Nov 15 (billed on the same Nov 1 anchor).
    let subs = json!([
        { "id": "sub_basic", "planId": "plan_basic", "startedAt": "2026-11-01T00:00:00Z", "endingAt": "2026-11-15T00:00:00Z" },
        { "id": "sub_pro", "planId": "plan_pro", "startedAt": "2026-11-15T00:00:00Z", "billingAnchor": "2026-11-01T00:00:00Z" }
    ]);
    let mut e = engine(vec![json!({ "id": "cus_u", "subscriptions": subs })]);
    feed(
        &mut e,
        &[
            event("c1", "cus_u", "call", "2026-11-05T00:00:00Z", json!({})),
            event("c2", "cus_u", "call", "2026-11-06T00:00:00Z", json!({})),
            event("p1", "cus_u", "payment", "2026-11-05T00:00:00Z", json!({ "amount": "10" })), // free (first)
            event("p2", "cus_u", "payment", "2026-11-10T00:00:00Z", json!({ "amount": "100" })), // 2.90 + 0.30 = 3.20
            event("c3", "cus_u", "call", "2026-11-20T00:00:00Z", json!({})),
            event("p3", "cus_u", "payment", "2026-11-20T00:00:00Z", json!({ "amount": "100" })), // Pro: 2 % = 2.00
        ],
    );
    // Basic closes when it ends (not before): 2 calls × 0.10 = 0.20, payments 3.20, and the
    // upfront 30.00 is refunded for Nov 15 – Dec 1: −30 × 16/30 = −16.00. Total −12.60.
    let early = e.close_invoice("cus_u", ts("2026-11-10T00:00:00Z"), ts("2026-11-14T00:00:00Z"));
    assert_eq!(early.expect_err("before the end").code.as_str(), "period_open");
    let basic = e.close_invoice("cus_u", ts("2026-11-10T00:00:00Z"), ts("2026-11-15T00:00:00Z")).expect("close");
    assert_eq!(basic.subscription_id, "sub_basic");
    assert_eq!(basic.period_end, "2026-11-15T00:00:00Z");
    assert_eq!(amount(&basic, "price_calls"), d("0.20"));
    assert_eq!(amount(&basic, "price_payments"), d("3.20"));
    assert_eq!(amount(&basic, "price_platform"), d("-16.00"));
    assert_eq!(basic.total, d("-12.60"));
    let docs = e.invoices_at("cus_u", ts("2026-11-10T00:00:00Z"), END_OF_TIME).expect("basic docs");
    assert_eq!(amount(kind_of(&docs, InvoiceKind::Advance), "price_platform"), d("30.00"));

    // Pro: upfront 90 × 16/30 = 48.00 on Nov 15; at Dec 1, 1 call × 0.05 and 2 % × 100 = 2.05.
    let docs = e.invoices_at("cus_u", ts("2026-11-20T00:00:00Z"), ts("2026-11-15T00:00:00Z")).expect("pro docs");
    let advance = kind_of(&docs, InvoiceKind::Advance);
    assert_eq!(advance.subscription_id, "sub_pro");
    assert_eq!(advance.total, d("48.00"));
    let pro = e.close_invoice("cus_u", ts("2026-11-20T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("pro");
    assert_eq!(pro.subscription_id, "sub_pro");
    assert_eq!(amount(&pro, "price_pro_calls"), d("0.05"));
    assert_eq!(amount(&pro, "price_pro_payments"), d("2.00"));
    assert_eq!(pro.total, d("2.05"));
    // Over the month: 30 − 16 + 0.20 + 3.20 + 48 + 2.05 = 67.45.
    assert_eq!(d("30.00") + basic.total + advance.total + pro.total, d("67.45"));
}

#[test]
fn late_usage_of_a_closed_period_is_an_adjustment_on_the_next_invoice() {
    let mut e = engine(vec![json!({ "id": "cus_l", "subscriptions": [
        { "id": "sub_l", "planId": "plan_basic", "startedAt": "2026-11-01T00:00:00Z" }] })]);
    feed(&mut e, &[event("c1", "cus_l", "call", "2026-11-05T00:00:00Z", json!({}))]);
    let nov = e.close_invoice("cus_l", ts("2026-11-05T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("nov");
    assert_eq!(amount(&nov, "price_calls"), d("0.10"));
    // Two November calls arrive on Dec 3 (an edge was offline): recorded, never dropped.
    for id in ["c2", "c3"] {
        let ev = event(id, "cus_l", "call", "2026-11-28T00:00:00Z", json!({}));
        let out = e.ingest(&ev, ts("2026-12-03T00:00:00Z")).expect("late event");
        assert!(out.allowed, "{out:?}");
    }
    // November stays as issued.
    assert_eq!(e.close_invoice("cus_l", ts("2026-11-05T00:00:00Z"), END_OF_TIME).expect("again"), nov);
    // December's invoice: one December call (0.10) and an adjustment of 2 × 0.10 for November.
    feed(&mut e, &[event("c4", "cus_l", "call", "2026-12-10T00:00:00Z", json!({}))]);
    let dec = e.close_invoice("cus_l", ts("2026-12-10T00:00:00Z"), ts("2027-01-01T00:00:00Z")).expect("dec");
    let adjustments: Vec<_> = dec.lines.iter().filter(|l| l.kind == LineType::Adjustment).collect();
    assert_eq!(adjustments.len(), 1, "{dec:?}");
    let adj = adjustments[0];
    assert_eq!(adj.amount, d("0.20"));
    assert_eq!(adj.price_id.as_deref(), Some("price_calls"));
    let named = adj.adjusts.as_ref().expect("names the period");
    assert_eq!(
        (named.period_start.as_str(), named.period_end.as_str()),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    );
    assert_eq!(named.subscription_id, "sub_l");
    // December: 30 upfront is on its advance invoice; 0.10 + 0.20 here.
    assert_eq!(amount(&dec, "price_calls"), d("0.30"));
    assert_eq!(dec.total, d("0.30"));
    // Billed once: January carries no adjustment for November.
    let jan = e.close_invoice("cus_l", ts("2027-01-10T00:00:00Z"), END_OF_TIME).expect("jan");
    assert!(jan.lines.iter().all(|l| l.kind != LineType::Adjustment), "{jan:?}");
    // The JSON names the adjusted period.
    let json = serde_json::to_value(&dec).expect("json");
    let line = json["lines"].as_array().expect("lines").iter().find(|l| l["type"] == "adjustment").expect("adjustment");
    assert_eq!(line["adjusts"]["periodStart"], "2026-11-01T00:00:00Z");
}

#[test]
fn a_restored_engine_bills_late_usage_once() {
    // What a hub does after a restart: replay the events, then take back the stored invoices.
    let customers = vec![json!({ "id": "cus_r", "subscriptions": [
        { "id": "sub_r", "planId": "plan_basic", "startedAt": "2026-11-01T00:00:00Z" }] })];
    let mut first = engine(customers.clone());
    feed(&mut first, &[event("c1", "cus_r", "call", "2026-11-05T00:00:00Z", json!({}))]);
    let nov = first.close_invoice("cus_r", ts("2026-11-05T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("nov");
    let late = event("c2", "cus_r", "call", "2026-11-28T00:00:00Z", json!({}));
    let mut restarted = engine(customers);
    feed(&mut restarted, &[event("c1", "cus_r", "call", "2026-11-05T00:00:00Z", json!({})), late]);
    restarted.restore_closed("cus_r", &serde_json::to_value(&nov).expect("json"));
    let dec = restarted.close_invoice("cus_r", ts("2026-12-05T00:00:00Z"), ts("2027-01-01T00:00:00Z")).expect("dec");
    let adj: Decimal = dec.lines.iter().filter(|l| l.kind == LineType::Adjustment).map(|l| l.amount).sum();
    assert_eq!(adj, d("0.10"));
}

#[test]
fn a_market_rate_change_mid_month_prices_each_event_at_its_time() {
    let mut cat = catalog();
    cat["rates"] = json!({ "gpu-spot": [
        { "rate": "3.00", "effectiveAt": "2026-11-01T00:00:00Z" },
        { "rate": "4.00", "effectiveAt": "2026-11-15T00:00:00Z" }
    ] });
    cat["billableMetrics"].as_array_mut().expect("metrics").push(json!({ "id": "bm_gpu", "productId": "prod_pay",
        "name": "GPU hours", "unit": "hour", "eventType": "gpu.job", "aggregation": "SUM", "valueProperty": "$.hours" }));
    cat["plans"][0]["prices"].as_array_mut().expect("prices").push(json!({ "id": "price_gpu", "metricId": "bm_gpu",
        "paymentTerm": "in_arrears", "model": { "type": "dynamic", "source": { "rate": "gpu-spot" } } }));
    let snap = json!({ "snapshotVersion": 1, "issuedAt": "2026-11-01T00:00:00Z", "catalog": cat,
        "customers": [{ "id": "cus_g", "subscriptions": [{ "id": "sub_g", "planId": "plan_basic", "startedAt": "2026-11-01T00:00:00Z" }] }] });
    let mut e = Engine::from_snapshot(&snap, Options::default()).expect("snapshot");
    feed(
        &mut e,
        &[
            event("g1", "cus_g", "gpu.job", "2026-11-10T00:00:00Z", json!({ "hours": 10 })), // 10 × 3.00 = 30.00
            event("g2", "cus_g", "gpu.job", "2026-11-20T00:00:00Z", json!({ "hours": 5 })),  // 5 × 4.00 = 20.00
        ],
    );
    // At the rate in force at close it would have been 15 × 4.00 = 60.00.
    let inv = e.close_invoice("cus_g", ts("2026-11-20T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("close");
    assert_eq!(amount(&inv, "price_gpu"), d("50.00"));
    // A quote uses the rate in force now: 15 × 4.00.
    let quote = e.quote(&json!({ "planId": "plan_basic", "usage": { "bm_gpu": "15" } })).expect("quote");
    let line = quote.lines.iter().find(|l| l.price_id.as_deref() == Some("price_gpu")).expect("gpu line");
    assert_eq!(line.amount, d("60.00"));
}

#[test]
fn a_rate_history_out_of_order_is_refused_with_its_path() {
    let mut cat = catalog();
    cat["rates"] = json!({ "gpu-spot": [
        { "rate": "3.00", "effectiveAt": "2026-11-15T00:00:00Z" },
        { "rate": "4.00", "effectiveAt": "2026-11-01T00:00:00Z" }
    ] });
    let problems = tollgate::catalog::Catalog::from_value(&cat).expect_err("refused");
    assert_eq!(problems[0].path, "/rates/gpu-spot/1/effectiveAt", "{problems:?}");
}

/// Per-model LLM pricing (a matrix on `model`, no default) through `tollgate invoice`: the
/// event for an unknown model is listed as rejected, and the month still closes.
#[test]
fn the_cli_lists_an_unknown_model_as_rejected_and_closes_the_month() {
    let catalog = json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod_llm", "name": "LLM" }], "features": [], "fees": [],
        "billableMetrics": [{ "id": "bm_in", "productId": "prod_llm", "name": "Input tokens", "unit": "token",
            "eventType": "llm.completion", "aggregation": "SUM", "valueProperty": "$.input_tokens",
            "groupBy": { "model": "$.model" } }],
        "plans": [{ "id": "plan_llm", "productId": "prod_llm", "name": "LLM", "currency": "USD", "billingCadence": "P1M",
            "prices": [{ "id": "price_in", "metricId": "bm_in", "paymentTerm": "in_arrears",
                "model": { "type": "matrix", "dimension": "model", "cells": {
                    "small": { "type": "per_unit", "unitPrice": "0.002" },
                    "large": { "type": "per_unit", "unitPrice": "0.01" } } } }] }]
    });
    let snap = json!({ "snapshotVersion": 1, "issuedAt": "2026-11-01T00:00:00Z", "catalog": catalog,
        "customers": [{ "id": "cus_llm", "subscriptions": [{ "id": "sub_llm", "planId": "plan_llm", "startedAt": "2026-11-01T00:00:00Z" }] }] });
    let llm = |id: &str, time: &str, tokens: u64, model: &str| {
        event(id, "cus_llm", "llm.completion", time, json!({ "input_tokens": tokens, "model": model }))
    };
    let events = [
        llm("e1", "2026-11-03T00:00:00Z", 1000, "small"),
        llm("e2", "2026-11-04T00:00:00Z", 100, "large"),
        llm("e3", "2026-11-05T00:00:00Z", 50, "huge"),
    ];
    let dir = std::env::temp_dir().join(format!("tollgate-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (snap_path, events_path) = (dir.join("snapshot.json"), dir.join("events.jsonl"));
    std::fs::write(&snap_path, snap.to_string()).expect("snapshot");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&events_path, lines.join("\n")).expect("events");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(crate::support::ROOT)
        .args(["invoice", "--snapshot"])
        .arg(&snap_path)
        .arg("--events")
        .arg(&events_path)
        .args(["--customer", "cus_llm", "--at", "2026-11-15T00:00:00Z", "--json"])
        .output()
        .expect("run tollgate");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":3: rejected: no_price_for_dimension at /data/model"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    // 1000 × 0.002 + 100 × 0.01 = 3.00; the huge-model event is not billed.
    assert_eq!(doc["status"], "final");
    assert_eq!(doc["total"], "3.00", "{doc}");
    assert_eq!(
        doc["rejected"],
        json!([{ "line": 3, "id": "e3", "code": "no_price_for_dimension", "path": "/data/model",
        "message": doc["rejected"][0]["message"] }])
    );
}
