//! Invoices end to end (SPEC §4, §6.2, §6.3, §13 "§6.2 invoice lifecycle"; docs/decisions.md
//! 22, 23, 39–47): for every plan of both seed catalogs a scripted month of events goes through
//! `Engine::ingest`, and the period's two documents are checked line by line and in total
//! against figures computed by hand (the arithmetic is written next to each figure): the
//! advance invoice (upfront fees, issued when the period starts) and the closed arrears invoice
//! (usage, fees in arrears, real-time charges, refunds after an early end, discounts, the
//! commitment true-up counting the advance invoice, wallet credits). Every scenario also checks
//! that the rounded lines sum to the total, that closing twice (and closing a fresh engine fed
//! the same events) gives the identical documents, and that `invoice_preview` during the period
//! is the close except for `status`. Then: a subscription starting mid-period (prorated upfront
//! fee, commitment not prorated), one ending mid-period (full upfront fee, refund of the unused
//! time), real-time `instant` charges against a wallet, a one-time `P0D` fee, seat quantities,
//! compounding discounts, and the CLI's `tollgate invoice --json`.

use std::process::Command;

use rust_decimal::RoundingStrategy;
use serde_json::{json, Value};
use tollgate::billing::{Invoice, InvoiceKind, InvoiceStatus, LineType};
use tollgate::engine::{Engine, IngestOutcome, Options};
use tollgate::entitlements::Reason;
use tollgate::error::Code;
use tollgate::time::{Period, Timestamp};
use tollgate::Decimal;

// ---------------------------------------------------------------- helpers

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

/// A decimal read from a JSON string (amounts and quantities are strings in SPEC JSON).
fn dv(v: &Value) -> Decimal {
    match v {
        Value::String(s) => d(s),
        other => panic!("expected a decimal string, got {other}"),
    }
}

fn llm_catalog() -> Value {
    serde_json::from_str(include_str!("../../examples/llm-provider.catalog.json")).expect("llm catalog is JSON")
}

fn analytics_catalog() -> Value {
    serde_json::from_str(include_str!("../../examples/cloud-analytics.catalog.json"))
        .expect("analytics catalog is JSON")
}

fn snapshot(catalog: Value, customers: Vec<Value>) -> Value {
    json!({ "snapshotVersion": 1, "issuedAt": "2026-11-01T00:00:00Z", "catalog": catalog, "customers": customers })
}

fn engine(snapshot: &Value) -> Engine {
    Engine::from_snapshot(snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

/// A customer with one subscription starting on Nov 1, 2026 (extra subscription fields merged in).
fn customer(id: &str, plan: &str, extra: Value) -> Value {
    let mut sub = json!({ "id": format!("sub_{id}"), "planId": plan, "startedAt": "2026-11-01T00:00:00Z" });
    if let (Some(s), Value::Object(more)) = (sub.as_object_mut(), extra) {
        s.extend(more);
    }
    json!({ "id": id, "subscriptions": [sub] })
}

fn event(id: &str, subject: &str, kind: &str, time: &str, data: Value) -> Value {
    json!({ "id": id, "source": "edge-test", "type": kind, "subject": subject, "time": time, "data": data })
}

/// Ingests one event at its own time.
fn ingest(e: &mut Engine, ev: &Value) -> IngestOutcome {
    let now = ts(ev["time"].as_str().expect("event time"));
    e.ingest(ev, now).unwrap_or_else(|err| panic!("ingest of {ev} failed: {err}"))
}

/// Ingests events that must all be accepted, each at its own time.
fn feed(e: &mut Engine, events: &[Value]) {
    for ev in events {
        let out = ingest(e, ev);
        assert!(out.allowed && !out.duplicate && !out.unmatched, "event {ev} not applied: {out:?}");
    }
}

fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// One expected line: `key` is its price id, or its type for lines without a price (`#2` for
/// the second of a type); an empty `precise` is not checked.
struct Want<'a> {
    key: &'a str,
    quantity: Option<&'a str>,
    metered: Option<&'a str>,
    precise: &'a str,
    amount: &'a str,
}

/// A line with its billed and metered quantities.
fn line<'a>(key: &'a str, quantity: &'a str, metered: &'a str, precise: &'a str, amount: &'a str) -> Want<'a> {
    Want { key, quantity: Some(quantity), metered: Some(metered), precise, amount }
}

/// A line without quantities (discount, commitment, credit).
fn adj<'a>(key: &'a str, precise: &'a str, amount: &'a str) -> Want<'a> {
    Want { key, quantity: None, metered: None, precise, amount }
}

fn key_of(l: &Value) -> String {
    match &l["priceId"] {
        Value::String(p) => p.clone(),
        _ => l["type"].as_str().expect("line type").to_string(),
    }
}

/// The key of each line of the document; a repeated key (a second discount) gets `#2`, `#3`...
fn keys(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in doc["lines"].as_array().expect("lines") {
        let base = key_of(l);
        let n = out.iter().filter(|k| **k == base || k.starts_with(&format!("{base}#"))).count();
        out.push(if n == 0 { base } else { format!("{base}#{}", n + 1) });
    }
    out
}

/// The line of the document with this key (exactly one).
fn find<'a>(doc: &'a Value, key: &str) -> &'a Value {
    let lines = doc["lines"].as_array().expect("lines");
    let hits: Vec<&Value> = keys(doc).iter().zip(lines).filter(|(k, _)| *k == key).map(|(_, l)| l).collect();
    assert_eq!(hits.len(), 1, "expected exactly one line {key:?} in {doc}");
    hits[0]
}

/// Checks every expected line (other lines must be zero), the totals, that each line's amount
/// is its precise amount rounded half away from zero, that the rounded lines sum to the total,
/// and that adjustments come after the fee and usage lines in the order of SPEC §6.2.
fn check(inv: &Invoice, want: &[Want<'_>], subtotal: &str, discount: &str, total: &str) {
    let doc = serde_json::to_value(inv).expect("an invoice serialises");
    let lines = doc["lines"].as_array().expect("lines");
    for w in want {
        let l = find(&doc, w.key);
        assert_eq!(l["amount"], w.amount, "amount of {} in {doc}", w.key);
        if !w.precise.is_empty() {
            assert_eq!(dv(&l["preciseAmount"]), d(w.precise), "preciseAmount of {} in {doc}", w.key);
        }
        if let Some(q) = w.quantity {
            assert_eq!(dv(&l["quantity"]), d(q), "quantity of {} in {doc}", w.key);
        }
        if let Some(m) = w.metered {
            assert_eq!(dv(&l["meteredQuantity"]), d(m), "meteredQuantity of {} in {doc}", w.key);
        }
    }
    for (k, l) in keys(&doc).iter().zip(lines) {
        if !want.iter().any(|w| w.key == k) {
            assert!(dv(&l["amount"]).is_zero(), "unexpected non-zero line {l} in {doc}");
        }
    }
    assert_eq!(doc["subtotal"], subtotal, "subtotal of {doc}");
    assert_eq!(doc["discount"], discount, "discount of {doc}");
    assert_eq!(doc["total"], total, "total of {doc}");
    lines_sum_to_total(inv);
}

/// The rounded lines sum to the total; each is its precise amount rounded once; subtotal is the
/// fee and usage lines; the order of application is fee/usage → discount → commitment → credit.
fn lines_sum_to_total(inv: &Invoice) {
    let sum: Decimal = inv.lines.iter().map(|l| l.amount).sum();
    assert_eq!(sum, inv.total, "lines do not sum to the total: {inv:?}");
    // An adjustment is a difference of rounded lines: its own precise amount is informative.
    for l in inv.lines.iter().filter(|l| l.kind != LineType::Adjustment) {
        assert_eq!(l.amount, round2(l.precise_amount), "line not rounded half away from zero: {l:?}");
        assert!(l.amount.scale() == 2, "amount without the currency's 2 places: {l:?}");
    }
    let fees_and_usage: Decimal =
        inv.lines.iter().filter(|l| matches!(l.kind, LineType::Fee | LineType::Usage)).map(|l| l.amount).sum();
    assert_eq!(fees_and_usage, inv.subtotal, "subtotal is not the fee and usage lines: {inv:?}");
    let discounts: Decimal = inv.lines.iter().filter(|l| l.kind == LineType::Discount).map(|l| l.amount).sum();
    assert_eq!(-discounts, inv.discount, "discount is not the discount lines: {inv:?}");
    let rank = |k: LineType| match k {
        LineType::Fee | LineType::Usage => 0,
        LineType::Discount => 1,
        LineType::Commitment => 2,
        LineType::Credit => 3,
        LineType::Adjustment => 4,
    };
    let ranks: Vec<u8> = inv.lines.iter().map(|l| rank(l.kind)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "lines out of the order of application: {ranks:?}");
}

/// `2026-11-01T00:00:00Z` → `20261101T000000Z` (the period start in an invoice id).
fn compact(rfc3339: &str) -> String {
    rfc3339.replace(['-', ':'], "")
}

/// The invoices of the period containing `at` as known at `now`: the advance invoice (if one
/// was issued by `now`) and the arrears invoice, in that order.
fn docs_at(e: &Engine, customer: &str, at: &str, now: Timestamp) -> (Option<Invoice>, Invoice) {
    let mut docs = e.invoices_at(customer, ts(at), now).expect("invoices_at");
    let arrears = docs.pop().expect("an arrears invoice");
    assert_eq!(arrears.kind, InvoiceKind::Arrears, "the last document is the arrears invoice: {arrears:?}");
    let advance = docs.pop();
    assert!(docs.is_empty(), "more than two documents for one period");
    if let Some(a) = &advance {
        assert_eq!(a.kind, InvoiceKind::Advance, "{a:?}");
    }
    (advance, arrears)
}

/// What every advance invoice is: final once issued, the same period, subscription and
/// currency as its arrears invoice, upfront fees and their discounts only (no commitment, no
/// credit), rounded lines summing to the total.
fn check_advance_shape(a: &Invoice, arrears: &Invoice) {
    assert_eq!(a.kind, InvoiceKind::Advance);
    assert_eq!(a.status, InvoiceStatus::Final, "an advance invoice is final when issued: {a:?}");
    assert_eq!(serde_json::to_value(a).unwrap()["kind"], "advance");
    assert_eq!(a.id, format!("{}-{}-advance", a.subscription_id, compact(&a.period_start)));
    assert_eq!(
        (&a.customer_id, &a.subscription_id, &a.plan_id, a.currency, &a.period_start),
        (&arrears.customer_id, &arrears.subscription_id, &arrears.plan_id, arrears.currency, &arrears.period_start)
    );
    assert!(
        a.lines.iter().all(|l| matches!(l.kind, LineType::Fee | LineType::Discount)),
        "only fees and discounts on an advance invoice: {a:?}"
    );
    lines_sum_to_total(a);
}

/// Feeds the events, then: the preview at `preview_at` equals the close at `close_at` except
/// for `status`; what `invoices_at` lists at `preview_at` is the advance invoice (if issued by
/// then) and that preview; closing twice gives the identical document; a fresh engine fed the
/// same events closes to the identical documents too. Returns the period's advance invoice
/// (`None` when no upfront fee is due) and the closed arrears invoice.
fn month(
    snap: &Value,
    events: &[Value],
    customer: &str,
    preview_at: &str,
    close_at: &str,
) -> (Option<Invoice>, Invoice) {
    let mut e = engine(snap);
    feed(&mut e, events);
    let preview = e.invoice_preview(customer, ts(preview_at)).expect("preview");
    assert_eq!(preview.status, InvoiceStatus::Draft);
    assert_eq!(serde_json::to_value(&preview).unwrap()["status"], "draft");
    let (advance_then, arrears_then) = docs_at(&e, customer, preview_at, ts(preview_at));
    assert_eq!(arrears_then, preview, "invoices_at during the period does not list the preview");
    let closed = e.close_invoice(customer, ts(close_at), Timestamp(i64::MAX)).expect("close");
    assert_eq!(closed.status, InvoiceStatus::Final);
    assert_eq!(serde_json::to_value(&closed).unwrap()["status"], "final");
    assert_eq!(serde_json::to_value(&closed).unwrap()["kind"], "arrears");
    assert_eq!(closed.id, format!("{}-{}-arrears", closed.subscription_id, compact(&closed.period_start)));
    assert_eq!(closed.issued_at, closed.period_end, "the arrears invoice is issued when its period ends");
    let mut as_final = preview.clone();
    as_final.status = InvoiceStatus::Final;
    assert_eq!(as_final, closed, "the preview during the period differs from the close");
    let again = e.close_invoice(customer, ts(close_at), Timestamp(i64::MAX)).expect("close again");
    assert_eq!(again, closed, "closing twice gave different invoices");
    assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&closed).unwrap());
    let (advance, arrears) = docs_at(&e, customer, close_at, Timestamp(i64::MAX));
    assert_eq!(arrears, closed, "invoices_at after the close does not list the closed invoice");
    if let Some(a) = &advance {
        check_advance_shape(a, &closed);
        // Issued when the period (or the subscription) starts, and never changed afterwards.
        let issued_by_preview = ts(&a.issued_at) <= ts(preview_at);
        assert_eq!(advance_then.as_ref(), issued_by_preview.then_some(a), "the advance invoice at {preview_at}");
    } else {
        assert_eq!(advance_then, None);
    }
    let mut fresh = engine(snap);
    feed(&mut fresh, events);
    assert_eq!(fresh.close_invoice(customer, ts(close_at), Timestamp(i64::MAX)).expect("close (fresh engine)"), closed);
    assert_eq!(docs_at(&fresh, customer, close_at, Timestamp(i64::MAX)), (advance.clone(), closed.clone()));
    (advance, closed)
}

fn period(start: &str, end: &str) -> Period {
    Period { start: ts(start), end: ts(end) }
}

// ---------------------------------------------------------------- LLM provider

fn developer_snapshot() -> Value {
    snapshot(llm_catalog(), vec![customer("cus_dev", "plan_developer", json!({}))])
}

fn developer_events() -> Vec<Value> {
    let llm = |id: &str, day: &str, input: u64, output: u64, model: &str| {
        let t = format!("2026-11-{day}T09:00:00Z");
        event(
            id,
            "cus_dev",
            "llm.completion",
            &t,
            json!({ "input_tokens": input, "output_tokens": output, "model": model }),
        )
    };
    vec![
        llm("d1", "03", 4_000, 1_000, "small"),
        llm("d2", "09", 250_000, 50_000, "small"),
        llm("d3", "17", 1_000_000, 200_000, "large"),
        llm("d4", "25", 48_500, 9_125, "large"),
    ]
}

/// Developer: the plan's 10,000 input tokens a month are free (grantDiscount).
#[test]
fn developer_month_with_free_input_tokens() {
    let snap = developer_snapshot();
    let events = developer_events();
    // The free units come off as the grant burns: 4,000 of the 10,000 on Nov 3 ...
    let mut e = engine(&snap);
    let first = ingest(&mut e, &events[0]);
    let dec = serde_json::to_value(&first.decisions).unwrap();
    assert_eq!(dec[0]["featureKey"], "input-tokens");
    assert_eq!(dec[0]["balance"], "6000", "10,000 − 4,000: {dec}");
    // ... the remaining 6,000 of the 250,000 on Nov 9; the other 244,000 are soft-limit overage.
    let second = ingest(&mut e, &events[1]);
    let dec = serde_json::to_value(&second.decisions).unwrap();
    assert!(second.allowed);
    assert_eq!(dec[0]["balance"], "0", "{dec}");
    assert_eq!(dec[0]["overage"], "244000", "250,000 − 6,000: {dec}");

    let (advance, inv) = month(&snap, &events, "cus_dev", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    assert_eq!(advance, None, "the Developer plan has no upfront fee: no advance invoice");
    assert_eq!(inv.id, "sub_cus_dev-20261101T000000Z-arrears");
    assert_eq!(inv.kind, InvoiceKind::Arrears);
    assert_eq!(inv.issued_at, "2026-12-01T00:00:00Z");
    assert_eq!(inv.customer_id, "cus_dev");
    assert_eq!(inv.subscription_id, "sub_cus_dev");
    assert_eq!(inv.plan_id, "plan_developer");
    assert_eq!(inv.period_start, "2026-11-01T00:00:00Z");
    assert_eq!(inv.period_end, "2026-12-01T00:00:00Z");
    assert_eq!(inv.currency, "USD");
    check(
        &inv,
        &[
            // input: 4,000 + 250,000 + 1,000,000 + 48,500 = 1,302,500 metered;
            // grants covered 4,000 + 6,000 = 10,000 → 1,292,500 billed × 0.000002 = 2.585 → 2.59
            line("price_dev_input", "1292500", "1302500", "2.585", "2.59"),
            // output: 1,000 + 50,000 + 200,000 + 9,125 = 260,125 × 0.000006 = 1.56075 → 1.56
            line("price_dev_output", "260125", "260125", "1.56075", "1.56"),
            // calls: COUNT = 4 events × 0 = 0.00
            line("price_dev_calls", "4", "4", "0", "0.00"),
        ],
        // 2.59 + 1.56 + 0.00 = 4.15
        "4.15",
        "0.00",
        "4.15",
    );
    let doc = serde_json::to_value(&inv).unwrap();
    assert_eq!(dv(&find(&doc, "price_dev_input")["unitPrice"]), d("0.000002"));
}

/// Business: per-unit tokens and fine-tuning hours.
#[test]
fn business_month_with_fine_tuning() {
    let snap = snapshot(llm_catalog(), vec![customer("cus_biz", "plan_business", json!({}))]);
    let llm = |id: &str, day: &str, input: u64, output: u64| {
        let t = format!("2026-11-{day}T14:30:00Z");
        event(
            id,
            "cus_biz",
            "llm.completion",
            &t,
            json!({ "input_tokens": input, "output_tokens": output, "model": "large" }),
        )
    };
    let tune = |id: &str, day: &str, hours: &str| {
        let t = format!("2026-11-{day}T20:00:00Z");
        event(id, "cus_biz", "finetune.job", &t, json!({ "hours": hours }))
    };
    let events = vec![
        llm("b1", "02", 3_000_000, 800_000),
        tune("b2", "08", "2.5"),
        llm("b3", "14", 1_234_567, 345_678),
        tune("b4", "21", "4.25"),
        llm("b5", "27", 888_888, 54_327),
    ];
    let mut e = engine(&snap);
    assert!(e.check("cus_biz", "fine-tuning", ts("2026-11-08T00:00:00Z")).unwrap().allowed);
    let (advance, inv) = month(&snap, &events, "cus_biz", "2026-11-28T10:00:00Z", "2026-11-30T23:59:59Z");
    assert_eq!(advance, None, "no upfront fee on Business");
    assert_eq!((inv.period_start.as_str(), inv.period_end.as_str()), ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"));
    check(
        &inv,
        &[
            // 3,000,000 + 1,234,567 + 888,888 = 5,123,455 × 0.000001 = 5.123455 → 5.12
            line("price_biz_input", "5123455", "5123455", "5.123455", "5.12"),
            // 800,000 + 345,678 + 54,327 = 1,200,005 × 0.000003 = 3.600015 → 3.60
            line("price_biz_output", "1200005", "1200005", "3.600015", "3.60"),
            // 2.5 + 4.25 = 6.75 h × 3 = 20.25
            line("price_biz_finetune", "6.75", "6.75", "20.25", "20.25"),
            // 3 calls × 0
            line("price_biz_calls", "3", "3", "0", "0.00"),
        ],
        // 5.12 + 3.60 + 20.25 = 28.97
        "28.97",
        "0.00",
        "28.97",
    );
}

/// Enterprise: a negotiated input rate, a 10 % discount and a $5,000 commitment (the
/// subscription's, replacing the plan's $10,000). The discount comes first; the true-up tops
/// the discounted subtotal up (decision 22), counting what the advance invoice billed (the
/// platform fee, in advance, at $0).
#[test]
fn enterprise_month_with_negotiated_rates_discount_and_true_up() {
    let extra = json!({
        "priceOverrides": { "price_ent_input": { "type": "per_unit", "unitPrice": "0.0000008" } },
        "percentageDiscount": "0.10",
        "minimumCommitment": "5000"
    });
    let snap = snapshot(llm_catalog(), vec![customer("cus_ent", "plan_enterprise", extra)]);
    let llm = |id: &str, day: &str, input: u64, output: u64| {
        let t = format!("2026-11-{day}T11:00:00Z");
        event(
            id,
            "cus_ent",
            "llm.completion",
            &t,
            json!({ "input_tokens": input, "output_tokens": output, "model": "large" }),
        )
    };
    let tune = |id: &str, day: &str, hours: u64| {
        let t = format!("2026-11-{day}T03:00:00Z");
        event(id, "cus_ent", "finetune.job", &t, json!({ "hours": hours }))
    };
    let events = vec![
        llm("n1", "03", 800_000_000, 250_000_000),
        tune("n2", "10", 40),
        llm("n3", "18", 1_200_187_499, 350_000_000),
        tune("n4", "24", 60),
    ];
    let (advance, inv) = month(&snap, &events, "cus_ent", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    // The advance invoice, issued on Nov 1: the platform fee in advance, flat 0 × 1, less 10 % of 0.
    let advance = advance.expect("the platform fee is billed in advance");
    assert_eq!(advance.id, "sub_cus_ent-20261101T000000Z-advance");
    assert_eq!(
        (advance.issued_at.as_str(), advance.period_end.as_str()),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    );
    check(
        &advance,
        &[line("price_ent_platform", "1", "1", "0", "0.00"), adj("discount", "0", "0.00")],
        "0.00",
        "0.00",
        "0.00",
    );
    // The arrears invoice: no fee line (the platform fee is on the advance invoice).
    assert!(!inv.lines.iter().any(|l| l.kind == LineType::Fee), "{inv:?}");
    check(
        &inv,
        &[
            // negotiated: 800,000,000 + 1,200,187,499 = 2,000,187,499 × 0.0000008 = 1600.1499992 → 1600.15
            line("price_ent_input", "2000187499", "2000187499", "1600.1499992", "1600.15"),
            // graduated: 500,000,000 × 0.0000027 = 1350 + 100,000,000 × 0.000002 = 200 → 1550
            line("price_ent_output", "600000000", "600000000", "1550", "1550.00"),
            // 40 + 60 = 100 h × 2.5 = 250
            line("price_ent_finetune", "100", "100", "250", "250.00"),
            line("price_ent_calls", "2", "2", "0", "0.00"),
            // subtotal 1600.15 + 1550 + 250 + 0 = 3400.15; 10 % = 340.015 → −340.02 (half away from zero)
            adj("discount", "-340.015", "-340.02"),
            // 5000 − (3400.15 − 340.02 = 3060.13) − 0.00 (advance total) = 1939.87. (Against the
            // undiscounted subtotal it would be 5000 − 3400.15 = 1599.85 and the total 4659.98; the
            // plan's 10,000 would give 6939.87.)
            adj("commitment", "1939.87", "1939.87"),
        ],
        "3400.15",
        "340.02",
        // 3400.15 − 340.02 + 1939.87 = 5000.00
        "5000.00",
    );
    let doc = serde_json::to_value(&inv).unwrap();
    let input = find(&doc, "price_ent_input");
    assert_eq!(dv(&input["unitPrice"]), d("0.0000008"), "the override's rate: {input}");
    let tiers = find(&doc, "price_ent_output")["tiers"].as_array().expect("tiers").clone();
    assert_eq!(tiers.len(), 2, "{tiers:?}");
    assert_eq!(dv(&tiers[0]["upTo"]), d("500000000"));
    assert_eq!(dv(&tiers[0]["quantity"]), d("500000000"));
    assert_eq!(dv(&tiers[0]["amount"]), d("1350"));
    assert!(tiers[1]["upTo"].is_null());
    assert_eq!(dv(&tiers[1]["quantity"]), d("100000000"));
    assert_eq!(dv(&tiers[1]["amount"]), d("200"));
}

/// Enterprise without a negotiated commitment: the plan's $10,000 applies, and two discounts of
/// 35 % compound to 57.75 % off, one line each (decision 23).
#[test]
fn enterprise_compounding_discounts_and_plan_commitment() {
    let extra = json!({ "percentageDiscount": ["0.35", "0.35"] });
    let snap = snapshot(llm_catalog(), vec![customer("cus_ent2", "plan_enterprise", extra)]);
    let events = vec![
        event("x1", "cus_ent2", "finetune.job", "2026-11-04T08:00:00Z", json!({ "hours": 1500 })),
        event("x2", "cus_ent2", "finetune.job", "2026-11-19T08:00:00Z", json!({ "hours": 2500 })),
    ];
    let (advance, inv) = month(&snap, &events, "cus_ent2", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    // The advance invoice: the $0 platform fee, both discounts compounding on 0.
    let advance = advance.expect("the platform fee is billed in advance");
    check(
        &advance,
        &[
            line("price_ent_platform", "1", "1", "0", "0.00"),
            adj("discount", "0", "0.00"),
            adj("discount#2", "0", "0.00"),
        ],
        "0.00",
        "0.00",
        "0.00",
    );
    check(
        &inv,
        &[
            // 4,000 h × 2.5 = 10,000.00
            line("price_ent_finetune", "4000", "4000", "10000", "10000.00"),
            // 0.35 × 10,000 = 3,500
            adj("discount", "-3500", "-3500.00"),
            // 0.35 × (10,000 − 3,500 = 6,500) = 2,275
            adj("discount#2", "-2275", "-2275.00"),
            // 10,000 − (10,000 − 5,775 = 4,225) − 0.00 (advance total) = 5,775
            adj("commitment", "5775", "5775.00"),
        ],
        "10000.00",
        // 0.35 × 10,000 = 3,500; 0.35 × 6,500 = 2,275; together 5,775 = 0.5775 × 10,000
        "5775.00",
        // 10,000 − 5,775 = 4,225 < 10,000 (plan minimum): true-up 5,775 → 10,000.00
        "10000.00",
    );
    let discounts: Vec<Decimal> = inv.lines.iter().filter(|l| l.kind == LineType::Discount).map(|l| l.amount).collect();
    assert_eq!(discounts, vec![d("-3500.00"), d("-2275.00")]);
    assert_eq!(inv.discount, d("0.5775") * inv.subtotal);
}

// ---------------------------------------------------------------- Cloud analytics

/// On-demand: compute per second, storage GB-months by WEIGHTED_SUM, graduated egress and
/// volume-priced connections.
#[test]
fn on_demand_month_with_storage_egress_and_connections() {
    let snap = snapshot(analytics_catalog(), vec![customer("cus_od", "plan_on_demand", json!({}))]);
    let c = "cus_od";
    let events = vec![
        event("o1", c, "storage.level", "2026-11-01T00:00:00Z", json!({ "gb": 100 })),
        event("o2", c, "connections.sample", "2026-11-02T08:00:00Z", json!({ "open": 40 })),
        event("o3", c, "egress.transfer", "2026-11-05T10:00:00Z", json!({ "gb": 3000 })),
        event("o4", c, "query.completed", "2026-11-07T11:00:00Z", json!({ "compute_seconds": 1_234_567 })),
        event("o5", c, "connections.sample", "2026-11-12T15:00:00Z", json!({ "open": 120 })),
        event("o6", c, "storage.level", "2026-11-16T00:00:00Z", json!({ "gb": 400 })),
        event("o7", c, "egress.transfer", "2026-11-20T10:00:00Z", json!({ "gb": 9000 })),
        event("o8", c, "query.completed", "2026-11-22T11:00:00Z", json!({ "compute_seconds": 2_365_473 })),
        event("o9", c, "connections.sample", "2026-11-25T15:00:00Z", json!({ "open": 80 })),
    ];
    let (advance, inv) = month(&snap, &events, c, "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    assert_eq!(advance, None, "no upfront fee on On-demand");
    check(
        &inv,
        &[
            // 1,234,567 + 2,365,473 = 3,600,040 s × 0.000125 = 450.005 → 450.01
            line("price_od_compute", "3600040", "3600040", "450.005", "450.01"),
            // (100 GB × 15 days + 400 GB × 15 days) / 30 days = 250 GB-months × 0.023 = 5.75
            line("price_od_storage", "250", "250", "5.75", "5.75"),
            // 3,000 + 9,000 = 12,000 GB: 100 × 0 + 10,140 × 0.09 = 912.6 + 1,760 × 0.07 = 123.2 → 1035.80
            line("price_od_egress", "12000", "12000", "1035.8", "1035.80"),
            // MAX(40, 120, 80) = 120, volume tier (50, 500]: 120 × 0.50 = 60.00
            line("price_od_connections", "120", "120", "60", "60.00"),
        ],
        // 450.01 + 5.75 + 1035.80 + 60.00 = 1551.56
        "1551.56",
        "0.00",
        "1551.56",
    );
    let doc = serde_json::to_value(&inv).unwrap();
    let tiers = find(&doc, "price_od_egress")["tiers"].as_array().expect("egress tiers").clone();
    let got: Vec<(Option<Decimal>, Decimal, Decimal)> = tiers
        .iter()
        .map(|t| ((!t["upTo"].is_null()).then(|| dv(&t["upTo"])), dv(&t["quantity"]), dv(&t["amount"])))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(d("100")), d("100"), d("0")),
            (Some(d("10240")), d("10140"), d("912.6")),
            (None, d("1760"), d("123.2")),
        ]
    );
    assert_eq!(dv(&find(&doc, "price_od_connections")["unitPrice"]), d("0.50"));
}

/// The Reserved month of `c`: 50 GB stored all month, 2,600,004 compute seconds, 150 GB out.
fn reserved_events(c: &str) -> Vec<Value> {
    vec![
        event("r1", c, "storage.level", "2026-11-01T00:00:00Z", json!({ "gb": 50 })),
        event("r2", c, "query.completed", "2026-11-03T12:00:00Z", json!({ "compute_seconds": 400_000 })),
        event("r3", c, "query.completed", "2026-11-11T12:00:00Z", json!({ "compute_seconds": 700_000 })),
        event("r4", c, "query.completed", "2026-11-19T12:00:00Z", json!({ "compute_seconds": 1_500_004 })),
        event("r5", c, "egress.transfer", "2026-11-20T12:00:00Z", json!({ "gb": 150 })),
    ]
}

/// Reserved: the $75 prepaid fee includes 1,000,000 compute seconds (grantDiscount); beyond
/// them compute is billed at the on-demand rate. The fee is on the advance invoice (Nov 1), the
/// usage on the arrears invoice (Dec 1).
#[test]
fn reserved_month_with_prepaid_compute_and_overage() {
    let snap = snapshot(analytics_catalog(), vec![customer("cus_res", "plan_reserved", json!({}))]);
    let c = "cus_res";
    let events = reserved_events(c);
    let (advance, inv) = month(&snap, &events, c, "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    let advance = advance.expect("the reserved fee is billed in advance");
    assert_eq!(advance.id, "sub_cus_res-20261101T000000Z-advance");
    assert_eq!(
        (advance.period_start.as_str(), advance.period_end.as_str(), advance.issued_at.as_str()),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z")
    );
    // in advance, the whole period: 1 × 75 = 75.00
    check(&advance, &[line("price_res_fee", "1", "1", "75", "75.00")], "75.00", "0.00", "75.00");
    assert!(
        inv.lines.iter().all(|l| l.price_id.as_deref() != Some("price_res_fee")),
        "the fee is billed once: {inv:?}"
    );
    check(
        &inv,
        &[
            // 400,000 + 700,000 + 1,500,004 = 2,600,004 s; grants covered 400,000 + 600,000 = 1,000,000
            // → 1,600,004 × 0.000125 = 200.0005 → 200.00
            line("price_res_compute", "1600004", "2600004", "200.0005", "200.00"),
            // 50 GB all month × 0.023 = 1.15
            line("price_res_storage", "50", "50", "1.15", "1.15"),
            // 150 GB: 100 × 0 + 50 × 0.09 = 4.50
            line("price_res_egress", "150", "150", "4.5", "4.50"),
        ],
        // 200.00 + 1.15 + 4.50 = 205.65
        "205.65",
        "0.00",
        "205.65",
    );
    // The month in all: 75.00 + 205.65 = 280.65 (what the single invoice billed before §13).
    assert_eq!(advance.total + inv.total, d("280.65"));
}

/// Committed (annual): a P1Y period and the $12,000 minimum.
#[test]
fn committed_annual_with_minimum() {
    let snap = snapshot(analytics_catalog(), vec![customer("cus_com", "plan_committed", json!({}))]);
    let c = "cus_com";
    let events = vec![
        event("c1", c, "storage.level", "2026-11-01T00:00:00Z", json!({ "gb": 500 })),
        event("c2", c, "query.completed", "2026-11-05T06:00:00Z", json!({ "compute_seconds": 4_000_000 })),
        event("c3", c, "egress.transfer", "2026-11-09T06:00:00Z", json!({ "gb": 2000 })),
        event("c4", c, "storage.level", "2026-11-16T00:00:00Z", json!({ "gb": 865 })),
        event("c5", c, "query.completed", "2026-11-20T06:00:00Z", json!({ "compute_seconds": 6_000_050 })),
        event("c6", c, "egress.transfer", "2026-11-25T06:00:00Z", json!({ "gb": "3000.5" })),
    ];
    let (advance, inv) = month(&snap, &events, c, "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    assert_eq!(advance, None, "no upfront fee on Committed: the commitment is trued up in arrears");
    // One year from the start: Nov 1, 2026 to Nov 1, 2027 (365 days).
    assert_eq!(inv.period_start, "2026-11-01T00:00:00Z");
    assert_eq!(inv.period_end, "2027-11-01T00:00:00Z");
    check(
        &inv,
        &[
            // 4,000,000 + 6,000,050 = 10,000,050 s × 0.0001 = 1000.005 → 1000.01
            line("price_com_compute", "10000050", "10000050", "1000.005", "1000.01"),
            // (500 GB × 15 days + 865 GB × 350 days) / 365 days = 310,250 / 365 = 850 × 0.24 = 204.00
            line("price_com_storage", "850", "850", "204", "204.00"),
            // 2,000 + 3,000.5 = 5,000.5 GB × 0.06 = 300.03
            line("price_com_egress", "5000.5", "5000.5", "300.03", "300.03"),
            // 12,000 − 1,504.04 − 0 (no advance invoice) = 10,495.96
            adj("commitment", "10495.96", "10495.96"),
        ],
        // 1000.01 + 204.00 + 300.03 = 1504.04
        "1504.04",
        "0.00",
        "12000.00",
    );
}

// ---------------------------------------------------------------- proration

/// Reserved from Nov 16 in a period anchored on Nov 1 (30 days): the $75 in-advance fee is
/// prorated to 15/30 on the advance invoice, issued on Nov 16; a negotiated $100 minimum is not
/// prorated, and the true-up on the arrears invoice counts what the advance invoice billed.
#[test]
fn subscription_starting_mid_period_prorates_fee_not_commitment() {
    let cus = json!({ "id": "cus_mid", "subscriptions": [{
        "id": "sub_mid", "planId": "plan_reserved", "startedAt": "2026-11-16T00:00:00Z",
        "billingAnchor": "2026-11-01T00:00:00Z", "minimumCommitment": "100" }] });
    let snap = snapshot(analytics_catalog(), vec![cus]);
    let events = vec![event("m1", "cus_mid", "storage.level", "2026-11-16T00:00:00Z", json!({ "gb": 40 }))];
    let (advance, inv) = month(&snap, &events, "cus_mid", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    let advance = advance.expect("the reserved fee is billed in advance");
    // The advance invoice belongs to the period anchored on Nov 1, but falls due when the
    // subscription starts (Nov 16), and bills up to the period's end.
    assert_eq!(advance.id, "sub_mid-20261101T000000Z-advance");
    assert_eq!(
        (advance.period_start.as_str(), advance.period_end.as_str(), advance.issued_at.as_str()),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11-16T00:00:00Z")
    );
    check(
        &advance,
        // Nov 16 → Dec 1 = 15 days = 1,296,000,000 ms of 30 days = 2,592,000,000 ms:
        // 75 × 1,296,000,000 / 2,592,000,000 = 37.5 exactly → 37.50
        &[line("price_res_fee", "1", "1", "37.5", "37.50")],
        "37.50",
        "0.00",
        "37.50",
    );
    assert_eq!((inv.period_start.as_str(), inv.period_end.as_str()), ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"));
    assert_eq!(inv.id, "sub_mid-20261101T000000Z-arrears");
    check(
        &inv,
        &[
            // level 0 for 15 days then 40 GB for 15 days over the 30-day period = 20 × 0.023 = 0.46
            line("price_res_storage", "20", "20", "0.46", "0.46"),
            // 100 − 0.46 − 37.50 (advance total) = 62.04 (a prorated minimum would give
            // 50 − 0.46 − 37.50 = 12.04; ignoring the advance invoice, 100 − 0.46 = 99.54)
            adj("commitment", "62.04", "62.04"),
        ],
        "0.46",
        "0.00",
        // 0.46 + 62.04 = 62.50
        "62.50",
    );
    // Both documents together meet the (unprorated) minimum: 37.50 + 62.50 = 100.00.
    assert_eq!(advance.total + inv.total, d("100.00"));

    let mut e = engine(&snap);
    feed(&mut e, &events);
    // The advance invoice is not issued before the subscription starts ...
    let (before, draft) = docs_at(&e, "cus_mid", "2026-11-28T10:00:00Z", ts("2026-11-15T23:59:59Z"));
    assert_eq!(before, None, "the advance invoice falls due on Nov 16, not before");
    assert_eq!(draft.status, InvoiceStatus::Draft);
    // ... and is the same document from the moment it is.
    let (at_start, _) = docs_at(&e, "cus_mid", "2026-11-28T10:00:00Z", ts("2026-11-16T00:00:00Z"));
    assert_eq!(at_start.as_ref(), Some(&advance));

    // December, the first full period: the advance invoice (Dec 1) bills 75.00 in full; on the
    // arrears invoice storage 40 GB carried all month × 0.023 = 0.92, and 0.92 + 75.00 = 75.92 < 100
    // → true-up 100 − 0.92 − 75.00 = 24.08.
    let (dec_advance, dec) = docs_at(&e, "cus_mid", "2026-12-10T00:00:00Z", ts("2026-12-10T00:00:00Z"));
    assert_eq!(dec, e.invoice_preview("cus_mid", ts("2026-12-10T00:00:00Z")).expect("december preview"));
    assert_eq!(dec.period_start, "2026-12-01T00:00:00Z");
    assert_eq!(dec.status, InvoiceStatus::Draft);
    let dec_advance = dec_advance.expect("December's advance invoice, issued on Dec 1");
    check_advance_shape(&dec_advance, &dec);
    assert_eq!(dec_advance.id, "sub_mid-20261201T000000Z-advance");
    assert_eq!(dec_advance.issued_at, "2026-12-01T00:00:00Z");
    check(&dec_advance, &[line("price_res_fee", "1", "1", "75", "75.00")], "75.00", "0.00", "75.00");
    check(
        &dec,
        &[line("price_res_storage", "40", "40", "0.92", "0.92"), adj("commitment", "24.08", "24.08")],
        "0.92",
        "0.00",
        // 0.92 + 24.08 = 25.00; with the advance invoice 75.00 + 25.00 = 100.00
        "25.00",
    );
}

// ---------------------------------------------------------------- real-time charges, fees

/// A plan mixing a one-time setup fee, seats in advance, an `instant` graduated price paid from
/// the wallet and an in-arrears per-unit price.
fn live_catalog() -> Value {
    json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod_live", "name": "Live API" }],
        "features": [],
        "billableMetrics": [
            { "id": "bm_units", "productId": "prod_live", "name": "Units", "unit": "unit",
              "eventType": "api.call", "aggregation": "SUM", "valueProperty": "$.units" },
            { "id": "bm_jobs", "productId": "prod_live", "name": "Batch jobs", "unit": "job",
              "eventType": "batch.job", "aggregation": "COUNT" }
        ],
        "fees": [
            { "id": "fee_setup", "productId": "prod_live", "name": "Setup" },
            { "id": "fee_seat", "productId": "prod_live", "name": "Seats" }
        ],
        "rates": {},
        "plans": [{
            "id": "plan_live", "productId": "prod_live", "name": "Live", "currency": "USD", "billingCadence": "P1M",
            "prices": [
                { "id": "price_live_setup", "feeId": "fee_setup", "paymentTerm": "in_advance",
                  "billingCadence": "P0D", "model": { "type": "flat", "amount": "50" } },
                { "id": "price_live_seats", "feeId": "fee_seat", "paymentTerm": "in_advance", "quantity": 3,
                  "model": { "type": "flat", "amount": "12.50" } },
                { "id": "price_live_units", "metricId": "bm_units", "paymentTerm": "instant",
                  "model": { "type": "graduated", "tiers": [
                      { "upTo": "100", "unitPrice": "0.10", "flatPrice": "1.00" },
                      { "upTo": "1000", "unitPrice": "0.05" },
                      { "upTo": null, "unitPrice": "0.01" } ] } },
                { "id": "price_live_jobs", "metricId": "bm_jobs", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "2.00" } }
            ]
        }]
    })
}

fn live_snapshot(wallet: &str) -> Value {
    let cus = json!({
        "id": "cus_live",
        "subscriptions": [{ "id": "sub_live", "planId": "plan_live", "startedAt": "2026-11-01T00:00:00Z",
                            "percentageDiscount": "0.20" }],
        "wallet": { "currency": "USD", "balance": wallet }
    });
    snapshot(live_catalog(), vec![cus])
}

fn units(id: &str, time: &str, n: &str) -> Value {
    event(id, "cus_live", "api.call", time, json!({ "units": n }))
}

/// Ingests an instant event that must be charged `charge`, leaving `balance` in the wallet.
fn charged(e: &mut Engine, ev: &Value, charge: &str, balance: &str) {
    let out = ingest(e, ev);
    assert!(out.allowed && !out.wallet_denied, "{ev} denied: {out:?}");
    assert_eq!(out.charges.len(), 1, "{out:?}");
    let c = &out.charges[0];
    assert_eq!((c.price_id.as_str(), c.subscription_id.as_str(), c.currency), ("price_live_units", "sub_live", "USD"));
    assert_eq!(d(&c.amount), d(charge), "charge of {ev}");
    assert_eq!(d(c.wallet_balance.as_deref().unwrap()), d(balance), "reported wallet after {ev}");
    assert_eq!(e.wallet_balance("cus_live"), Some(d(balance)), "wallet after {ev}");
}

/// Ingests an instant event the wallet cannot pay: denied, nothing applied.
fn denied(e: &mut Engine, ev: &Value, balance: &str, quantity: &str) {
    let out = ingest(e, ev);
    assert!(!out.allowed, "{ev} should be denied: {out:?}");
    assert_eq!(out.reason, Reason::LimitReached);
    assert!(out.wallet_denied && out.charges.is_empty() && !out.duplicate, "{out:?}");
    assert_eq!(serde_json::to_value(&out).unwrap()["walletDenied"], true);
    assert_eq!(e.wallet_balance("cus_live"), Some(d(balance)), "wallet moved by a denied event");
    let nov = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    assert_eq!(e.quantity("cus_live", "bm_units", nov).unwrap(), d(quantity), "a denied event was metered");
}

/// Real-time charges: event n costs A(after n) − A(before n), A(nothing) = 0, at full precision;
/// a debit that does not fit is denied with nothing applied; the arrears invoice shows the
/// instant line and one credit line of the same amount, and percentage discounts leave real-time
/// charges out. The setup fee (first period only) and the seats, in advance, are on the advance
/// invoice, discounted too.
#[test]
fn instant_charges_against_the_wallet() {
    let snap = live_snapshot("20.005");
    let mut e = engine(&snap);
    // A(q) = 1.00 + 0.10 × min(q, 100) + 0.05 × (min(q, 1000) − 100)⁺ + 0.01 × (q − 1000)⁺
    // 30: A(30) − 0 = 1.00 + 3.00 = 4.00 (tier-1 flat price with the first event); 20.005 − 4 = 16.005
    charged(&mut e, &units("u1", "2026-11-02T10:00:00Z", "30"), "4.00", "16.005");
    // +80 → 110: A(110) = 1 + 10 + 0.5 = 11.50; 11.50 − 4.00 = 7.50; 16.005 − 7.5 = 8.505
    charged(&mut e, &units("u2", "2026-11-04T10:00:00Z", "80"), "7.50", "8.505");
    // A duplicate changes nothing.
    let dup = ingest(&mut e, &units("u2", "2026-11-04T10:00:00Z", "80"));
    assert!(dup.duplicate);
    assert_eq!(e.wallet_balance("cus_live"), Some(d("8.505")));
    // +200 → 310: A(310) = 1 + 10 + 10.5 = 21.50; 21.50 − 11.50 = 10.00 > 8.505 → denied
    denied(&mut e, &units("u3", "2026-11-06T10:00:00Z", "200"), "8.505", "110");
    // +100 → 210: A(210) = 1 + 10 + 5.5 = 16.50; 16.50 − 11.50 = 5.00; 8.505 − 5 = 3.505
    charged(&mut e, &units("u4", "2026-11-08T10:00:00Z", "100"), "5.00", "3.505");
    // +3.333 → 213.333: A = 16.5 + 0.16665 = 16.66665; charge 0.16665 (full precision); 3.33835 left
    charged(&mut e, &units("u5", "2026-11-12T10:00:00Z", "3.333"), "0.16665", "3.33835");
    // A denied event is not remembered: its retry is judged again (10.00 > 3.33835) and denied again.
    denied(&mut e, &units("u3", "2026-11-14T10:00:00Z", "200"), "3.33835", "213.333");
    // +66.767 → 280.1: A = 1 + 10 + 9.005 = 20.005; 20.005 − 16.66665 = 3.33835 = the whole balance
    charged(&mut e, &units("u6", "2026-11-20T10:00:00Z", "66.767"), "3.33835", "0");
    // +0.001: 0.00005 > 0 → denied
    denied(&mut e, &units("u7", "2026-11-21T10:00:00Z", "0.001"), "0", "280.1");
    let jobs: Vec<Value> = ["03", "09", "15", "21", "27"]
        .iter()
        .enumerate()
        .map(|(i, day)| {
            event(&format!("j{i}"), "cus_live", "batch.job", &format!("2026-11-{day}T08:00:00Z"), json!({}))
        })
        .collect();
    feed(&mut e, &jobs);

    let preview = e.invoice_preview("cus_live", ts("2026-11-28T10:00:00Z")).expect("preview");
    let inv = e.close_invoice("cus_live", ts("2026-11-28T10:00:00Z"), Timestamp(i64::MAX)).expect("close");
    let mut as_final = preview;
    as_final.status = InvoiceStatus::Final;
    assert_eq!(as_final, inv);
    assert_eq!(e.close_invoice("cus_live", ts("2026-11-30T00:00:00Z"), Timestamp(i64::MAX)).unwrap(), inv);
    let (advance, arrears) = docs_at(&e, "cus_live", "2026-11-28T10:00:00Z", Timestamp(i64::MAX));
    assert_eq!(arrears, inv);
    let advance = advance.expect("setup and seats are billed in advance");
    check_advance_shape(&advance, &inv);
    assert_eq!(advance.issued_at, "2026-11-01T00:00:00Z");
    check(
        &advance,
        &[
            // one-time setup on the first advance invoice: 50.00
            line("price_live_setup", "1", "1", "50", "50.00"),
            // 3 seats × 12.50 = 37.50
            line("price_live_seats", "3", "3", "37.5", "37.50"),
            // 20 % of 87.50 = 17.50
            adj("discount", "-17.5", "-17.50"),
        ],
        // 50.00 + 37.50 = 87.50
        "87.50",
        "17.50",
        // 87.50 − 17.50 = 70.00
        "70.00",
    );
    assert!(!inv.lines.iter().any(|l| l.kind == LineType::Fee), "the fees are on the advance invoice: {inv:?}");
    check(
        &inv,
        &[
            // 30 + 80 + 100 + 3.333 + 66.767 = 280.1 units, charged 4 + 7.5 + 5 + 0.16665 + 3.33835
            // = 20.005 → 20.01 (half away from zero)
            line("price_live_units", "280.1", "280.1", "20.005", "20.01"),
            // 5 jobs × 2.00 = 10.00
            line("price_live_jobs", "5", "5", "10", "10.00"),
            // 20 % of the subtotal less real-time charges: (30.01 − 20.01) × 0.20 = 2.00
            // (on the whole subtotal it would be 6.00)
            adj("discount", "-2", "-2.00"),
            // what the wallet paid: −20.005 → −20.01
            adj("credit", "-20.005", "-20.01"),
        ],
        // 20.01 + 10.00 = 30.01
        "30.01",
        "2.00",
        // 30.01 − 2.00 − 20.01 = 8.00
        "8.00",
    );
    // The month in all: 70.00 + 8.00 = 78.00 (what the single invoice billed before §13).
    assert_eq!(advance.total + inv.total, d("78.00"));

    // December: no setup fee (one-time), 3 seats again, 20 % off: 37.50 − 7.50 = 30.00 on the
    // advance invoice; no usage, so the arrears invoice is all zero lines.
    let dec = e.close_invoice("cus_live", ts("2026-12-10T00:00:00Z"), Timestamp(i64::MAX)).expect("december");
    assert_eq!(dec.period_start, "2026-12-01T00:00:00Z");
    let (dec_advance, dec_arrears) = docs_at(&e, "cus_live", "2026-12-10T00:00:00Z", Timestamp(i64::MAX));
    assert_eq!(dec_arrears, dec);
    let dec_advance = dec_advance.expect("the seats are billed in advance in December");
    check_advance_shape(&dec_advance, &dec);
    assert_eq!(dec_advance.issued_at, "2026-12-01T00:00:00Z");
    check(
        &dec_advance,
        &[line("price_live_seats", "3", "3", "37.5", "37.50"), adj("discount", "-7.5", "-7.50")],
        "37.50",
        "7.50",
        "30.00",
    );
    assert!(dec_advance.lines.iter().all(|l| l.price_id.as_deref() != Some("price_live_setup")), "setup is one-time");
    check(&dec, &[], "0.00", "0.00", "0.00");
    assert!(!dec.lines.iter().any(|l| l.kind == LineType::Credit), "nothing was paid from the wallet in December");
}

/// The denied event leaves the invoice as if it had never been sent.
#[test]
fn a_denied_instant_event_leaves_the_invoice_unchanged() {
    let snap = live_snapshot("5");
    let with_denial = {
        let mut e = engine(&snap);
        // A(30) = 4.00 → 1.00 left
        charged(&mut e, &units("a1", "2026-11-02T10:00:00Z", "30"), "4", "1");
        // +20 → A(50) = 6.00: 2.00 > 1.00 → denied
        denied(&mut e, &units("a2", "2026-11-03T10:00:00Z", "20"), "1", "30");
        // +10 → A(40) = 5.00: 1.00 fits exactly
        charged(&mut e, &units("a3", "2026-11-04T10:00:00Z", "10"), "1", "0");
        let closed = e.close_invoice("cus_live", ts("2026-11-28T00:00:00Z"), Timestamp(i64::MAX)).unwrap();
        let (advance, arrears) = docs_at(&e, "cus_live", "2026-11-28T00:00:00Z", Timestamp(i64::MAX));
        assert_eq!(arrears, closed);
        (advance, closed)
    };
    let without = {
        let mut e = engine(&snap);
        feed(&mut e, &[units("a1", "2026-11-02T10:00:00Z", "30"), units("a3", "2026-11-04T10:00:00Z", "10")]);
        let closed = e.close_invoice("cus_live", ts("2026-11-28T00:00:00Z"), Timestamp(i64::MAX)).unwrap();
        let (advance, arrears) = docs_at(&e, "cus_live", "2026-11-28T00:00:00Z", Timestamp(i64::MAX));
        assert_eq!(arrears, closed);
        (advance, closed)
    };
    assert_eq!(with_denial, without);
    check(
        &with_denial.1,
        &[
            // 40 units, charged A(40) = 1 + 4 = 5.00
            line("price_live_units", "40", "40", "5", "5.00"),
            // (5.00 − 5.00 paid in real time) × 0.20 = 0
            adj("discount", "0", "0.00"),
            adj("credit", "-5", "-5.00"),
        ],
        "5.00",
        "0.00",
        // 5.00 − 0.00 − 5.00 = 0.00
        "0.00",
    );
    // The advance invoice does not depend on usage: 50.00 + 37.50 = 87.50, 20 % off = 70.00.
    let advance = with_denial.0.expect("setup and seats are billed in advance");
    check(
        &advance,
        &[
            line("price_live_setup", "1", "1", "50", "50.00"),
            line("price_live_seats", "3", "3", "37.5", "37.50"),
            adj("discount", "-17.5", "-17.50"),
        ],
        "87.50",
        "17.50",
        "70.00",
    );
}

/// Without a wallet, an instant charge cannot be paid: denied (decision 43).
#[test]
fn instant_price_without_a_wallet_is_denied() {
    let cus = json!({ "id": "cus_live", "subscriptions": [{ "id": "sub_live", "planId": "plan_live",
                      "startedAt": "2026-11-01T00:00:00Z" }] });
    let mut e = engine(&snapshot(live_catalog(), vec![cus]));
    let out = ingest(&mut e, &units("w1", "2026-11-02T10:00:00Z", "1"));
    assert!(!out.allowed && out.wallet_denied, "{out:?}");
    assert_eq!(out.reason, Reason::LimitReached);
    let nov = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    assert_eq!(e.quantity("cus_live", "bm_units", nov).unwrap(), Decimal::ZERO);
}

// ---------------------------------------------------------------- the CLI

/// `tollgate invoice --json` on the Developer month gives the engine's arrears invoice, with no
/// `advance` (the plan has no upfront fee) and nothing `rejected`.
#[test]
fn cli_invoice_matches_the_engine() {
    let snap = developer_snapshot();
    let events = developer_events();
    let (advance, expected) = month(&snap, &events, "cus_dev", "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    assert_eq!(advance, None);

    // Out of time order on purpose: the CLI replays them in time order.
    let mut lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    lines.reverse();
    let out = run_cli_invoice(&snap, &lines, "cus_dev", "2026-11-28T10:00:00Z", true);
    assert!(out.status.success(), "tollgate invoice failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["total"], "4.15");
    assert_eq!(doc["total"], serde_json::to_value(&expected).unwrap()["total"]);
    assert_eq!(doc["rejected"], json!([]), "every event applies: {doc}");
    let fields = doc.as_object_mut().expect("an object");
    assert!(!fields.contains_key("advance"), "no upfront fee, no advance invoice: {doc}");
    fields.remove("rejected");
    assert_eq!(doc, serde_json::to_value(&expected).unwrap());
}

/// Runs `tollgate invoice` on a snapshot and events file (one line each) written to temporary
/// files.
fn run_cli_invoice(snap: &Value, lines: &[String], customer: &str, at: &str, json: bool) -> std::process::Output {
    let dir = std::env::temp_dir();
    let tag = format!(
        "tollgate-invoices-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos()).unwrap_or(0)
    );
    let snap_path = dir.join(format!("{tag}-snapshot.json"));
    let events_path = dir.join(format!("{tag}-events.jsonl"));
    std::fs::write(&snap_path, serde_json::to_string(snap).unwrap()).unwrap();
    std::fs::write(&events_path, lines.join("\n") + "\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.current_dir(crate::support::ROOT);
    cmd.args(["invoice", "--snapshot"]).arg(&snap_path).arg("--events").arg(&events_path);
    cmd.args(["--customer", customer, "--at", at]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run tollgate");
    let _ = std::fs::remove_file(&snap_path);
    let _ = std::fs::remove_file(&events_path);
    out
}

/// `tollgate invoice` on the Reserved month: the JSON is the arrears invoice plus `advance` (the
/// advance invoice with the $75 fee) and `rejected` (events the engine refused, with their line,
/// id when they decoded, code and path); the text prints the advance invoice first.
#[test]
fn cli_invoice_prints_the_advance_invoice_and_rejected_events() {
    let snap = snapshot(analytics_catalog(), vec![customer("cus_res", "plan_reserved", json!({}))]);
    let c = "cus_res";
    let events = reserved_events(c);
    let (advance, expected) = month(&snap, &events, c, "2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z");
    let advance = advance.expect("the reserved fee is billed in advance");
    let mut lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    // Line 6: `data` is not an object: refused as it decodes (no id).
    let mut not_an_object = event("bad1", c, "query.completed", "2026-11-21T00:00:00Z", json!({}));
    not_an_object["data"] = json!(5);
    lines.push(serde_json::to_string(&not_an_object).unwrap());
    // Line 7: decodes, but bm_compute needs $.compute_seconds: refused by the engine (with its id).
    lines.push(serde_json::to_string(&event("bad2", c, "query.completed", "2026-11-22T00:00:00Z", json!({}))).unwrap());

    let out = run_cli_invoice(&snap, &lines, c, "2026-11-28T10:00:00Z", true);
    assert!(out.status.success(), "tollgate invoice failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let rejected = doc["rejected"].as_array().expect("rejected").clone();
    assert_eq!(rejected.len(), 2, "{doc}");
    assert_eq!(
        (&rejected[0]["line"], &rejected[0]["code"], &rejected[0]["path"]),
        (&json!(6), &json!("invalid_type"), &json!("/data"))
    );
    assert!(rejected[0].get("id").is_none(), "an event that did not decode has no id: {}", rejected[0]);
    assert_eq!(
        (&rejected[1]["line"], &rejected[1]["id"], &rejected[1]["code"], &rejected[1]["path"]),
        (&json!(7), &json!("bad2"), &json!("missing_property"), &json!("/data/compute_seconds"))
    );
    assert!(rejected.iter().all(|r| r["message"].as_str().is_some_and(|m| !m.is_empty())), "{rejected:?}");
    // The advance invoice: 1 × 75.00.
    assert_eq!(doc["advance"]["kind"], "advance");
    assert_eq!(doc["advance"]["id"], "sub_cus_res-20261101T000000Z-advance");
    assert_eq!(doc["advance"]["total"], "75.00");
    assert_eq!(doc["advance"], serde_json::to_value(&advance).unwrap());
    // The arrears invoice: 200.00 + 1.15 + 4.50 = 205.65 (the refused events change nothing).
    assert_eq!(doc["kind"], "arrears");
    assert_eq!(doc["total"], "205.65");
    let fields = doc.as_object_mut().expect("an object");
    fields.remove("advance");
    fields.remove("rejected");
    assert_eq!(doc, serde_json::to_value(&expected).unwrap());

    // Text: the advance invoice first, then the arrears invoice; refusals on stderr.
    let out = run_cli_invoice(&snap, &lines, c, "2026-11-28T10:00:00Z", false);
    assert!(out.status.success(), "tollgate invoice failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let heading = "for cus_res (sub_cus_res, plan plan_reserved) 2026-11-01T00:00:00Z → 2026-12-01T00:00:00Z (USD)";
    assert!(text.starts_with(&format!("Advance invoice {heading}")), "{text}");
    let second = text.find(&format!("\nInvoice {heading}")).unwrap_or_else(|| panic!("no arrears invoice in {text}"));
    assert!(text[..second].contains("75.00") && text[second..].contains("205.65"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":6: rejected: invalid_type at /data"), "{stderr}");
    assert!(stderr.contains(":7: rejected: missing_property at /data/compute_seconds"), "{stderr}");
}

// ---------------------------------------------------------------- more periods and wallets

/// A Reserved subscription from Nov 16 anchored on Nov 1: its compute allowance is a usage
/// period anchored like billing (SPEC §4), so it resets on Dec 1 with the billing period. The
/// fee is on each period's advance invoice (prorated in November).
#[test]
fn mid_period_allowance_resets_with_the_billing_period() {
    let cus = json!({ "id": "cus_mid", "subscriptions": [{
        "id": "sub_mid", "planId": "plan_reserved", "startedAt": "2026-11-16T00:00:00Z",
        "billingAnchor": "2026-11-01T00:00:00Z" }] });
    let snap = snapshot(analytics_catalog(), vec![cus]);
    let mut e = engine(&snap);
    feed(
        &mut e,
        &[
            event("k1", "cus_mid", "query.completed", "2026-11-20T00:00:00Z", json!({ "compute_seconds": 1_200_000 })),
            event("k2", "cus_mid", "query.completed", "2026-12-05T00:00:00Z", json!({ "compute_seconds": 900_000 })),
        ],
    );
    let nov = e.close_invoice("cus_mid", ts("2026-11-20T00:00:00Z"), Timestamp(i64::MAX)).unwrap();
    let (nov_advance, nov_arrears) = docs_at(&e, "cus_mid", "2026-11-20T00:00:00Z", Timestamp(i64::MAX));
    assert_eq!(nov_arrears, nov);
    let nov_advance = nov_advance.expect("November's advance invoice");
    check_advance_shape(&nov_advance, &nov);
    // 75 × 15/30 = 37.50
    check(&nov_advance, &[line("price_res_fee", "1", "1", "37.5", "37.50")], "37.50", "0.00", "37.50");
    check(
        &nov,
        // the plan's 1,000,000 s (not prorated) cover part of 1,200,000: 200,000 × 0.000125 = 25.00
        &[line("price_res_compute", "200000", "1200000", "25", "25.00")],
        "25.00",
        "0.00",
        "25.00",
    );
    let dec = e.close_invoice("cus_mid", ts("2026-12-05T00:00:00Z"), Timestamp(i64::MAX)).unwrap();
    let (dec_advance, dec_arrears) = docs_at(&e, "cus_mid", "2026-12-05T00:00:00Z", Timestamp(i64::MAX));
    assert_eq!(dec_arrears, dec);
    let dec_advance = dec_advance.expect("December's advance invoice");
    check_advance_shape(&dec_advance, &dec);
    check(&dec_advance, &[line("price_res_fee", "1", "1", "75", "75.00")], "75.00", "0.00", "75.00");
    check(
        &dec,
        // a fresh 1,000,000 s on Dec 1 cover all 900,000: 0 × 0.000125
        &[line("price_res_compute", "0", "900000", "0", "0.00")],
        "0.00",
        "0.00",
        "0.00",
    );
}

/// Reserved with a $60 minimum, ending on Nov 21 (20 of the period's 30 days). With `ending`,
/// another end date.
fn ending_mid_period_at(ending: &str) -> (Invoice, Invoice) {
    let extra = json!({ "endingAt": ending, "minimumCommitment": "60" });
    let snap = snapshot(analytics_catalog(), vec![customer("cus_end", "plan_reserved", extra)]);
    let (advance, arrears) = month(&snap, &[], "cus_end", "2026-11-10T00:00:00Z", "2026-11-10T00:00:00Z");
    (advance.expect("the reserved fee is billed in advance"), arrears)
}

fn ending_mid_period() -> (Invoice, Invoice) {
    ending_mid_period_at("2026-11-21T00:00:00Z")
}

/// A subscription ending inside a period: the advance invoice (issued Nov 1, when the end was
/// not anticipated) bills the upfront fee in full; the arrears invoice, issued at the end, refunds
/// the unused share; together they bill the fee prorated to the active share, within a cent (the
/// exactness of `preciseAmount` is the next test). The commitment is not prorated and counts the
/// advance invoice.
#[test]
fn subscription_ending_mid_period_prorates_fee() {
    let (advance, inv) = ending_mid_period();
    assert_eq!(
        (advance.period_end.as_str(), advance.issued_at.as_str()),
        ("2026-12-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        "the advance invoice bills to the period's end"
    );
    check(&advance, &[line("price_res_fee", "1", "1", "75", "75.00")], "75.00", "0.00", "75.00");
    // The arrears invoice ends, and is issued, when the subscription does.
    assert_eq!(
        (inv.period_start.as_str(), inv.period_end.as_str(), inv.issued_at.as_str()),
        ("2026-11-01T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z")
    );
    check(
        &inv,
        &[
            // Nov 21 → Dec 1 = 10 of 30 days unused: −75 × 10/30 = −25.00
            line("price_res_fee", "1", "1", "", "-25.00"),
            // the commitment is not prorated: 60 − (−25.00 − 0.00) − 75.00 (advance total) = 10.00
            adj("commitment", "10", "10.00"),
        ],
        "-25.00",
        "0.00",
        // −25.00 + 10.00 = −15.00
        "-15.00",
    );
    let refund = inv.lines.iter().find(|l| l.price_id.as_deref() == Some("price_res_fee")).expect("refund line");
    assert_eq!(refund.kind, LineType::Fee);
    assert_eq!(refund.description, "Reserved compute (1,000,000 s) (refund of unused time)");
    // Net fee 75.00 − 25.00 = 50.00 = 75 × 20/30 (the active share), and with the true-up the
    // period bills the $60 minimum: 75.00 − 15.00 = 60.00.
    let prorated = d("50.00");
    assert!((advance.lines[0].amount + refund.amount - prorated).abs() <= d("0.01"));
    assert_eq!(advance.total + inv.total, d("60.00"));

    // Ending at 01:00 on Nov 21 the shares are not whole cents: unused 9 days 23 h = 239 h of
    // 720 h, refund 75 × 239/720 = 24.8958333… → −24.90; net 75.00 − 24.90 = 50.10, and the
    // prorated fee 75 × 481/720 = 50.1041666… → 50.10: within a cent.
    let (advance, inv) = ending_mid_period_at("2026-11-21T01:00:00Z");
    check(&advance, &[line("price_res_fee", "1", "1", "75", "75.00")], "75.00", "0.00", "75.00");
    check(
        &inv,
        &[
            line("price_res_fee", "1", "1", "", "-24.90"),
            // 60 − (−24.90) − 75.00 = 9.90
            adj("commitment", "9.9", "9.90"),
        ],
        "-24.90",
        "0.00",
        // −24.90 + 9.90 = −15.00
        "-15.00",
    );
    let refund = inv.lines.iter().find(|l| l.price_id.as_deref() == Some("price_res_fee")).expect("refund line");
    assert!((advance.lines[0].amount + refund.amount - d("50.10")).abs() <= d("0.01"));
    assert_eq!(advance.total + inv.total, d("60.00"));
}

/// A period that has not ended cannot be closed (`period_open`), unless its subscription ended:
/// then the last period closes at that instant (SPEC §13, "§6.2 invoice lifecycle").
#[test]
fn closing_an_open_period_is_refused() {
    let snap = snapshot(analytics_catalog(), vec![customer("cus_res", "plan_reserved", json!({}))]);
    let mut e = engine(&snap);
    let err = e.close_invoice("cus_res", ts("2026-11-28T00:00:00Z"), ts("2026-11-30T23:59:59Z")).unwrap_err();
    assert_eq!(err.code, Code::PeriodOpen, "{err:?}");
    let closed =
        e.close_invoice("cus_res", ts("2026-11-28T00:00:00Z"), ts("2026-12-01T00:00:00Z")).expect("closes at the end");
    assert_eq!(closed.status, InvoiceStatus::Final);

    let extra = json!({ "endingAt": "2026-11-21T00:00:00Z", "minimumCommitment": "60" });
    let snap = snapshot(analytics_catalog(), vec![customer("cus_end", "plan_reserved", extra)]);
    let mut e = engine(&snap);
    let err = e.close_invoice("cus_end", ts("2026-11-10T00:00:00Z"), ts("2026-11-20T23:59:59Z")).unwrap_err();
    assert_eq!(err.code, Code::PeriodOpen, "{err:?}");
    let closed =
        e.close_invoice("cus_end", ts("2026-11-10T00:00:00Z"), ts("2026-11-21T00:00:00Z")).expect("closes at the end");
    assert_eq!(closed, ending_mid_period().1, "closing at the subscription's end gives the same document");
}

/// SPEC §4 "prorated by the exact fraction" and §2 "every line carries its unrounded
/// preciseAmount": the refund of 10/30 of 75 is exactly −25, so the net fee is exactly 50; an
/// unused share of 239 h / 720 h is 75 × 239 / 720 = 24.8958333… to the decimal's precision.
#[test]
fn prorated_fee_precise_amount_is_exact() {
    let (advance, inv) = ending_mid_period();
    let fee = inv.lines.iter().find(|l| l.price_id.as_deref() == Some("price_res_fee")).expect("refund line");
    assert_eq!(fee.precise_amount, d("-25"), "{fee:?}");
    let doc = serde_json::to_value(&inv).unwrap();
    assert_eq!(find(&doc, "price_res_fee")["preciseAmount"], "-25");
    let upfront = advance.lines.iter().find(|l| l.price_id.as_deref() == Some("price_res_fee")).expect("fee line");
    assert_eq!(upfront.precise_amount + fee.precise_amount, d("50"));

    let (_, inv) = ending_mid_period_at("2026-11-21T01:00:00Z");
    let fee = inv.lines.iter().find(|l| l.price_id.as_deref() == Some("price_res_fee")).expect("refund line");
    // 75 × 860,400,000 ms / 2,592,000,000 ms = 24.89583333333333333333333333… (3s recurring)
    let exact = d("-24.895833333333333333333333333");
    assert!((fee.precise_amount - exact).abs() <= d("0.000000000000000000000000001"), "{fee:?}");
}

/// Two instant prices and one wallet: a credit line for what the wallet paid per instant line,
/// rounded like it, so real-time charges net to zero even when each rounds up (decision 43).
#[test]
fn two_instant_prices_net_to_zero_on_the_invoice() {
    let catalog = json!({
        "schemaVersion": 1, "catalogVersion": 1,
        "products": [{ "id": "prod_rt", "name": "RT" }],
        "features": [],
        "billableMetrics": [
            { "id": "bm_a", "productId": "prod_rt", "name": "A", "eventType": "rt.use", "aggregation": "SUM", "valueProperty": "$.a" },
            { "id": "bm_b", "productId": "prod_rt", "name": "B", "eventType": "rt.use", "aggregation": "SUM", "valueProperty": "$.b" }
        ],
        "fees": [], "rates": {},
        "plans": [{ "id": "plan_rt", "productId": "prod_rt", "name": "RT", "currency": "USD", "billingCadence": "P1M",
            "prices": [
                { "id": "price_a", "metricId": "bm_a", "paymentTerm": "instant", "model": { "type": "per_unit", "unitPrice": "0.001" } },
                { "id": "price_b", "metricId": "bm_b", "paymentTerm": "instant", "model": { "type": "per_unit", "unitPrice": "0.001" } }
            ] }]
    });
    let cus = json!({ "id": "cus_rt", "subscriptions": [{ "id": "sub_rt", "planId": "plan_rt", "startedAt": "2026-11-01T00:00:00Z" }],
                      "wallet": { "currency": "USD", "balance": "1" } });
    let mut e = engine(&snapshot(catalog, vec![cus]));
    // One event, 5 units of each: 0.005 + 0.005 = 0.01 debited; 0.99 left.
    let out = ingest(&mut e, &event("t1", "cus_rt", "rt.use", "2026-11-03T00:00:00Z", json!({ "a": 5, "b": 5 })));
    assert!(out.allowed && out.charges.len() == 2, "{out:?}");
    assert_eq!(e.wallet_balance("cus_rt"), Some(d("0.99")));
    let inv = e.close_invoice("cus_rt", ts("2026-11-28T00:00:00Z"), Timestamp(i64::MAX)).unwrap();
    lines_sum_to_total(&inv);
    let instant: Decimal = inv.lines.iter().filter(|l| l.kind == LineType::Usage).map(|l| l.amount).sum();
    let credit: Decimal = inv.lines.iter().filter(|l| l.kind == LineType::Credit).map(|l| l.amount).sum();
    assert_eq!(inv.lines.iter().filter(|l| l.kind == LineType::Credit).count(), 2, "a credit per line: {inv:?}");
    // each instant line: 5 × 0.001 = 0.005 → 0.01; the credit line takes the same 0.02 off
    assert_eq!(instant, d("0.02"));
    assert_eq!(credit, -instant, "real-time charges do not net to zero: {inv:?}");
    assert_eq!(inv.total, d("0.00"));
}

/// Instant prices need a wallet in the plan's currency (decision 43): without one, or in
/// another currency, the event is denied and nothing is applied.
#[test]
fn instant_price_with_a_wallet_in_another_currency_is_denied() {
    let cus = json!({ "id": "cus_live", "subscriptions": [{ "id": "sub_live", "planId": "plan_live",
                      "startedAt": "2026-11-01T00:00:00Z" }], "wallet": { "currency": "EUR", "balance": "100" } });
    let mut e = engine(&snapshot(live_catalog(), vec![cus]));
    let out = ingest(&mut e, &units("w1", "2026-11-02T10:00:00Z", "1"));
    assert!(!out.allowed && out.wallet_denied, "{out:?}");
    assert_eq!(e.wallet_balance("cus_live"), Some(d("100")));
}

/// A zero-cost instant event (a free first tier) needs no wallet: nothing is debited, so it is
/// allowed, and its charge reports no wallet balance (decision 43).
#[test]
fn a_free_instant_event_needs_no_wallet() {
    let mut catalog = live_catalog();
    catalog["plans"][0]["prices"][2]["model"] = json!({ "type": "graduated", "tiers": [
        { "upTo": "100", "unitPrice": "0" }, { "upTo": null, "unitPrice": "0.10" } ] });
    let cus = json!({ "id": "cus_live", "subscriptions": [{ "id": "sub_live", "planId": "plan_live",
                      "startedAt": "2026-11-01T00:00:00Z" }] });
    let mut e = engine(&snapshot(catalog, vec![cus]));
    let out = ingest(&mut e, &units("f1", "2026-11-02T10:00:00Z", "10"));
    assert!(out.allowed && !out.wallet_denied, "{out:?}");
    let charge = serde_json::to_value(&out.charges[0]).unwrap();
    assert_eq!((charge["amount"].clone(), charge["walletBalance"].clone()), (json!("0.00"), Value::Null));
    // The next 100 units cross into the paid tier: 10 × 0.10 = 1.00 does not fit a missing wallet.
    let out = ingest(&mut e, &units("f2", "2026-11-03T10:00:00Z", "100"));
    assert!(!out.allowed && out.wallet_denied, "{out:?}");
    let nov = period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    assert_eq!(e.quantity("cus_live", "bm_units", nov).unwrap(), Decimal::from(10));
}
