//! Invoices are total (SPEC §13 "§3.2 / §5 refusal at the door", issue 14 point 1): nothing an
//! engine accepts can make an invoice fail. Over random catalogs — `per_unit`, `graduated`,
//! `volume`, `package`, `percentage`, `dynamic` (an event property with bounds, a market rate),
//! `matrix` with and without a default whose cells are any of those; `in_arrears` and `instant`;
//! random `grantDiscount`, minimum and maximum quantities, subscription overrides — and random
//! streams of events and direct uses over three monthly billing periods — unknown and numeric
//! model names, missing, non-numeric and out-of-bounds unit prices, values of 0 and decimals —
//! every use is offered to the engine (refused, denied or accepted, all fine), and then
//! `invoice_preview` answers for every instant tried in the periods touched and every period
//! closes; and again after late uses of the closed periods (January included, where their
//! adjustments land).
//!
//! Values stay realistic: quantities ≤ 10^9 per event, prices ≤ 10^3. Overflow of the 28-digit
//! decimals above that is out of scope here, and so are negative values (credits). Decimals are
//! built from integers (mantissa and scale), never from floats.

use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate::billing::Invoice;
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::{Decimal, Result};

const DAY_MS: i64 = 86_400_000;
/// The subscription starts on Oct 1, 2026 (monthly): Oct, Nov and Dec are the periods.
const START: &str = "2026-10-01T00:00:00Z";
const DAYS: i64 = 92;

fn start() -> Timestamp {
    Timestamp::parse(START).expect("start")
}

fn dec(mantissa: i64, scale: u32) -> String {
    Decimal::new(mantissa, scale).to_string()
}

/// Closes the invoice of the period containing `at`, asked long after every period tried ended.
fn close(e: &mut Engine, customer: &str, at: Timestamp) -> Result<Invoice> {
    e.close_invoice(customer, at, Timestamp::from_parts(2030, 1, 1, 0))
}

// ---------------------------------------------------------------- catalogs

/// A price ≤ 10^3 with up to 3 decimals (often 0).
fn price() -> impl Strategy<Value = String> {
    let some = (0i64..=1_000_000, 0u32..=3).prop_map(|(m, s)| dec(m.min(1000 * 10i64.pow(s)), s));
    prop_oneof![1 => Just(String::from("0")), 4 => some]
}

/// A quantity bound (tier edge, package size, allowance) from 1 to 10^6.
fn bound() -> impl Strategy<Value = i64> {
    prop_oneof![1i64..=10, 1i64..=1_000_000]
}

fn tiers() -> impl Strategy<Value = Value> {
    prop::collection::vec((bound(), price(), price()), 1..=4).prop_map(|raw| {
        let mut edge = 0i64;
        let last = raw.len() - 1;
        let list: Vec<Value> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (step, unit, flat))| {
                edge += step;
                let up_to = if i == last { Value::Null } else { json!(edge.to_string()) };
                json!({ "upTo": up_to, "unitPrice": unit, "flatPrice": flat })
            })
            .collect();
        Value::Array(list)
    })
}

/// Optional bounds `lo ≤ hi` (each present or not).
fn bounds() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    (prop::option::of(0i64..=300), prop::option::of(0i64..=300)).prop_map(|(lo, span)| {
        let hi = span.map(|s| dec(lo.unwrap_or(0) + s, 2));
        (lo.map(|l| dec(l, 2)), hi)
    })
}

fn with_bounds(mut model: Value, keys: (&str, &str), (lo, hi): (Option<String>, Option<String>)) -> Value {
    if let Some(lo) = lo {
        model[keys.0] = json!(lo);
    }
    if let Some(hi) = hi {
        model[keys.1] = json!(hi);
    }
    model
}

/// A model that can be a matrix cell.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        price().prop_map(|p| json!({ "type": "per_unit", "unitPrice": p })),
        tiers().prop_map(|t| json!({ "type": "graduated", "tiers": t })),
        tiers().prop_map(|t| json!({ "type": "volume", "tiers": t })),
        (bound(), price(), 0i64..=100, any::<bool>()).prop_map(|(size, p, free, up)| json!({ "type": "package",
            "packageSize": size.to_string(), "packagePrice": p, "freeUnits": free.to_string(),
            "rounding": if up { "up" } else { "down" } })),
        (0i64..=1000, price(), bounds(), 0i64..=3, 0i64..=1000).prop_map(|(rate, fee, b, free_events, free_amount)| {
            let m = json!({ "type": "percentage", "rate": dec(rate, 3), "fixedFee": fee,
                            "freeEvents": free_events.to_string(), "freeAmount": free_amount.to_string() });
            with_bounds(m, ("minPerEvent", "maxPerEvent"), b)
        }),
        bounds().prop_map(|b| with_bounds(
            json!({ "type": "dynamic", "source": { "eventProperty": "$.unit_price" } }),
            ("minPrice", "maxPrice"),
            b
        )),
        bounds().prop_map(|b| with_bounds(
            json!({ "type": "dynamic", "source": { "rate": "spot" } }),
            ("minPrice", "maxPrice"),
            b
        )),
    ]
}

/// Any model: a leaf, or a matrix on `model` with some of the cells `a`, `b`, `7` and perhaps
/// a default.
fn model() -> impl Strategy<Value = Value> {
    let cells = prop::collection::btree_map(prop::sample::select(vec!["a", "b", "7"]), leaf(), 0..=3);
    let matrix = (cells, prop::option::of(leaf())).prop_map(|(cells, default)| {
        let mut m = json!({ "type": "matrix", "dimension": "model", "cells": cells });
        if let Some(d) = default {
            m["default"] = d;
        }
        m
    });
    prop_oneof![3 => leaf(), 2 => matrix]
}

/// A usage price: (on the SUM metric?, instant?, model, grantDiscount, min, max quantity).
type RawPrice = (bool, bool, Value, bool, Option<i64>, Option<i64>);

fn raw_price() -> impl Strategy<Value = RawPrice> {
    (any::<bool>(), any::<bool>(), model(), any::<bool>(), prop::option::of(0i64..=50), prop::option::of(0i64..=5000))
}

/// The catalog: `units` (metered) is linked by the first price, on `bm_sum` (SUM of `$.qty`);
/// `bm_count` counts the same events; both group by `model`.
fn catalog(prices: &[RawPrice], hard: bool, issue: i64, fee: Option<String>, spot: &str) -> Value {
    let mut list: Vec<Value> = prices
        .iter()
        .enumerate()
        .map(|(i, (on_sum, instant, model, discount, lo, span))| {
            let on_sum = *on_sum || i == 0;
            let mut p = json!({ "id": format!("price_{i}"), "metricId": if on_sum { "bm_sum" } else { "bm_count" },
                                "paymentTerm": if *instant { "instant" } else { "in_arrears" }, "model": model,
                                "grantDiscount": *discount && on_sum });
            if let Some(lo) = lo {
                p["minimumQuantity"] = json!(lo.to_string());
            }
            if let Some(span) = span {
                p["maximumQuantity"] = json!((lo.unwrap_or(0) + span).to_string());
            }
            if i == 0 {
                p["feature"] = json!({ "featureId": "feat_units", "entitlement": { "type": "metered",
                    "usagePeriod": { "interval": "P1M" }, "issueAfterReset": issue.to_string(), "isSoftLimit": !hard } });
            }
            p
        })
        .collect();
    if let Some(amount) = fee {
        list.push(json!({ "id": "price_fee", "feeId": "fee_base", "paymentTerm": "in_advance",
                          "model": { "type": "flat", "amount": amount } }));
    }
    json!({
        "schemaVersion": 1,
        "products": [{ "id": "prod", "name": "P" }],
        "features": [{ "id": "feat_units", "productId": "prod", "key": "units", "type": "metered" }],
        "billableMetrics": [
            { "id": "bm_sum", "productId": "prod", "name": "Units", "eventType": "use", "aggregation": "SUM",
              "valueProperty": "$.qty", "groupBy": { "model": "$.model" } },
            { "id": "bm_count", "productId": "prod", "name": "Uses", "eventType": "use", "aggregation": "COUNT",
              "groupBy": { "model": "$.model" } }
        ],
        "fees": [{ "id": "fee_base", "productId": "prod", "name": "Base" }],
        "rates": { "spot": spot },
        "plans": [{ "id": "plan", "productId": "prod", "name": "Plan", "currency": "USD", "billingCadence": "P1M",
                    "prices": list }]
    })
}

// ---------------------------------------------------------------- uses

/// One use: (day, ms in the day, lag of `now` in ms, what, qty kind, mantissa, scale, model,
/// unit price kind, unit price).
type RawUse = (i64, i64, i64, u8, u8, i64, u32, u8, u8, i64);

fn raw_uses() -> impl Strategy<Value = Vec<RawUse>> {
    let one = (
        0i64..DAYS,
        0i64..DAY_MS,
        0i64..3 * DAY_MS,
        0u8..10,
        0u8..12,
        0i64..=1_000_000_000,
        0u32..=4,
        0u8..7,
        0u8..8,
        0i64..=300,
    );
    prop::collection::vec(one, 0..24)
}

fn qty(kind: u8, m: i64, s: u32) -> Option<Value> {
    match kind {
        0 => None,
        1 => Some(json!("lots")),
        2 => Some(json!(0)),
        3..=6 => Some(json!(dec(m, s))),
        7..=9 => Some(serde_json::from_str(&dec(m % 1000, s)).expect("a JSON number")),
        _ => Some(json!((m % 10_000).to_string())),
    }
}

fn model_name(kind: u8) -> Option<Value> {
    match kind {
        0 => None,
        1 => Some(json!("a")),
        2 => Some(json!("b")),
        3 => Some(json!(7)),
        4 => Some(json!("zz")),
        5 => Some(json!(null)),
        _ => Some(json!("7")),
    }
}

fn unit_price(kind: u8, p: i64) -> Option<Value> {
    match kind {
        0 => None,
        1 => Some(json!("free")),
        2 => Some(serde_json::from_str(&dec(p, 2)).expect("a JSON number")),
        3 => Some(json!(dec(p * 10, 2))),
        _ => Some(json!(dec(p, 2))),
    }
}

/// Offers one use to the engine; refusals, denials and acceptances are all fine.
fn offer(e: &mut Engine, i: usize, u: &RawUse) -> Timestamp {
    let &(day, ms, lag, what, qk, m, s, mk, pk, p) = u;
    let at = Timestamp(start().0 + day * DAY_MS + ms);
    let now = Timestamp(at.0 + lag);
    if what == 0 {
        let _ = e.consume("cus", "units", Decimal::new(m % 100_000, s), Some(&format!("c{i}")), now);
        return now;
    }
    let mut data = serde_json::Map::new();
    for (key, value) in [("qty", qty(qk, m, s)), ("model", model_name(mk)), ("unit_price", unit_price(pk, p))] {
        if let Some(v) = value {
            data.insert(key.into(), v);
        }
    }
    let kind = if what == 1 { "other" } else { "use" };
    let ev = json!({ "id": format!("e{i}"), "source": "prop", "type": kind, "subject": "cus",
                     "time": at.to_rfc3339(), "data": data });
    let _ = e.ingest(&ev, now);
    now
}

// ---------------------------------------------------------------- the property

/// A customer of `plan` since [`START`], with a wallet and perhaps an override of `price_0`.
fn customer(wallet: i64, discount: Option<i64>, override_model: Option<Value>) -> Value {
    let mut sub = json!({ "id": "sub", "planId": "plan", "startedAt": START });
    if let Some(d) = discount {
        sub["percentageDiscount"] = json!(dec(d, 2));
    }
    if let Some(m) = override_model {
        sub["priceOverrides"] = json!({ "price_0": m });
    }
    json!({ "id": "cus", "subscriptions": [sub], "wallet": { "currency": "USD", "balance": wallet.to_string() } })
}

/// The instants tried in period `period` (0 = October 2026): its first and last millisecond and
/// its middle.
fn instants(period: i64) -> [Timestamp; 3] {
    let month = |k: i64| {
        let (y, m) = (2026 + (9 + k) / 12, (9 + k) % 12 + 1);
        Timestamp::from_parts(y, m as u32, 1, 0)
    };
    let (from, until) = (month(period), month(period + 1));
    [from, Timestamp((from.0 + until.0) / 2), Timestamp(until.0 - 1)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever was offered, every preview and every close of the periods touched answers.
    #[test]
    fn nothing_accepted_makes_an_invoice_fail(
        prices in prop::collection::vec(raw_price(), 1..=3),
        (hard, issue) in (prop::bool::weighted(0.25), 0i64..=2000),
        fee in prop::option::of(price()),
        spot in price(),
        wallet in prop_oneof![1 => Just(0i64), 1 => Just(10i64), 4 => Just(1_000_000_000_000i64)],
        discount in prop::option::of(0i64..=100),
        override_model in prop::option::of(model()),
        uses in raw_uses(),
    ) {
        let cat = catalog(&prices, hard, issue, fee, &spot);
        let snapshot = json!({ "snapshotVersion": 1, "catalog": cat,
                               "customers": [customer(wallet, discount, override_model)] });
        let options = Options { dedupe_window_ms: 200 * DAY_MS, ..Options::default() };
        let mut e = Engine::from_snapshot(&snapshot, options).unwrap_or_else(|err| panic!("snapshot rejected: {err:?}"));
        let mut sorted = uses.clone();
        sorted.sort_by_key(|u| (u.0, u.1));
        for (i, u) in sorted.iter().enumerate() {
            let now = offer(&mut e, i, u);
            if let Err(err) = e.invoice_preview("cus", now) {
                prop_assert!(false, "preview at {} after use {i} {u:?}: {err}", now.to_rfc3339());
            }
        }
        every_period_answers(&mut e, 3)?;
        // Late uses of periods already closed (billed on a later invoice, never nothing), then
        // every period again, January included.
        for (i, u) in sorted.iter().enumerate().take(6) {
            offer(&mut e, 1000 + i, u);
        }
        every_period_answers(&mut e, 4)?;
    }
}

/// Previews at every instant of the first `periods` periods, and closes each.
fn every_period_answers(e: &mut Engine, periods: i64) -> Result<(), TestCaseError> {
    for period in 0..periods {
        for t in instants(period) {
            if let Err(err) = e.invoice_preview("cus", t) {
                prop_assert!(false, "preview at {}: {err}", t.to_rfc3339());
            }
        }
        let at = instants(period)[1];
        if let Err(err) = close(e, "cus", at) {
            prop_assert!(false, "close at {}: {err}", at.to_rfc3339());
        }
    }
    Ok(())
}
