//! Properties of the price models (SPEC §3.2) and of rounding (SPEC §2), checked with
//! `proptest`. Decimals are built from integers (mantissa and scale), never from floats.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate::money::round_half_away;
use tollgate::pricing::{Context, Model};
use tollgate::Decimal;

/// The largest mantissa of a `Decimal` (2⁹⁶ − 1).
const MAX_MANTISSA: i128 = 79_228_162_514_264_337_593_543_950_335;

static NO_RATES: BTreeMap<String, Decimal> = BTreeMap::new();

fn ctx() -> Context<'static> {
    Context::of(&NO_RATES)
}

fn model(json: Value) -> Model {
    let mut problems = Vec::new();
    let m = Model::decode(&json, "", &mut problems);
    assert!(problems.is_empty(), "problems decoding {json}: {problems:?}");
    m.expect("a model")
}

fn dec(mantissa: i128, scale: u32) -> Decimal {
    Decimal::from_i128_with_scale(mantissa, scale)
}

/// Non-negative decimals with at most `max_scale` places and a mantissa up to `max_mantissa`.
fn nonneg(max_mantissa: i128, max_scale: u32) -> impl Strategy<Value = Decimal> {
    (0..=max_mantissa, 0..=max_scale).prop_map(|(m, s)| dec(m, s))
}

/// Any representable decimal: small everyday values, and the whole range at any scale.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (-1_000_000_000i128..=1_000_000_000, 0u32..=6).prop_map(|(m, s)| dec(m, s)),
        (-MAX_MANTISSA..=MAX_MANTISSA, 0u32..=28).prop_map(|(m, s)| dec(m, s)),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
        Just(Decimal::ZERO),
        Just(dec(1, 28)),
    ]
}

/// One generated tier: width of the tier (> 0), unit price and flat price (≥ 0).
#[derive(Clone, Debug)]
struct GenTier {
    width: Decimal,
    unit_price: Decimal,
    flat_price: Decimal,
}

fn gen_tiers() -> impl Strategy<Value = Vec<GenTier>> {
    prop::collection::vec(
        (1i128..=1_000_000, 0u32..=3, nonneg(100_000, 4), nonneg(10_000, 2))
            .prop_map(|(w, s, unit_price, flat_price)| GenTier { width: dec(w, s), unit_price, flat_price }),
        1..=5,
    )
}

/// The tiers' inclusive upper bounds: cumulative widths; the last tier is open.
fn bounds(tiers: &[GenTier]) -> Vec<Option<Decimal>> {
    let mut acc = Decimal::ZERO;
    let last = tiers.len() - 1;
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            acc += t.width;
            (i < last).then_some(acc)
        })
        .collect()
}

fn tiers_json(tiers: &[GenTier]) -> Value {
    let items: Vec<Value> = tiers
        .iter()
        .zip(bounds(tiers))
        .map(|(t, b)| {
            json!({ "upTo": b.map(|b| b.to_string()), "unitPrice": t.unit_price.to_string(),
                    "flatPrice": t.flat_price.to_string() })
        })
        .collect();
    Value::Array(items)
}

fn graduated(tiers: &[GenTier]) -> Model {
    model(json!({ "type": "graduated", "tiers": tiers_json(tiers) }))
}

/// SPEC §3.2 graduated, written out independently: tier i covers (b[i-1], b[i]]; tier 1 is
/// always reached; tier i > 1 is reached when q > b[i-1].
fn graduated_by_hand(tiers: &[GenTier], q: Decimal) -> Decimal {
    let mut lower = Decimal::ZERO;
    let mut total = Decimal::ZERO;
    for (i, (t, upper)) in tiers.iter().zip(bounds(tiers)).enumerate() {
        if i > 0 && q <= lower {
            break;
        }
        let top = match upper {
            Some(u) if u < q => u,
            _ => q,
        };
        let units = if top > lower { top - lower } else { Decimal::ZERO };
        total += units * t.unit_price + t.flat_price;
        if let Some(u) = upper {
            lower = u;
        }
    }
    total
}

/// `10^n` as an integer.
fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

/// Half-away-from-zero rounding of `mantissa × 10^-scale` to `exponent` places, in integers.
/// `None` when the result does not fit in a `Decimal`.
fn round_by_hand(mantissa: i128, scale: u32, exponent: u32) -> Option<Decimal> {
    let negative = mantissa < 0;
    let magnitude = mantissa.abs();
    let rounded = if scale > exponent {
        let divisor = pow10(scale - exponent);
        let (q, r) = (magnitude / divisor, magnitude % divisor);
        if 2 * r >= divisor {
            q + 1
        } else {
            q
        }
    } else {
        magnitude.checked_mul(pow10(exponent - scale))?
    };
    if rounded > MAX_MANTISSA {
        return None;
    }
    Some(dec(if negative { -rounded } else { rounded }, exponent))
}

use tollgate::pricing::DataEvent as Ev;

/// A spread of models, some with prices at the edge of the representable range.
fn every_model() -> Vec<Model> {
    let max = Decimal::MAX.to_string();
    let tiny = dec(1, 28).to_string();
    vec![
        model(json!({ "type": "flat", "amount": "49.99" })),
        model(json!({ "type": "flat", "amount": max })),
        model(json!({ "type": "per_unit", "unitPrice": "0.000002" })),
        model(json!({ "type": "per_unit", "unitPrice": max })),
        model(json!({ "type": "package", "packageSize": "3", "packagePrice": "2", "freeUnits": "10" })),
        model(json!({ "type": "package", "packageSize": tiny, "packagePrice": max, "rounding": "down" })),
        model(json!({ "type": "graduated", "tiers": [
            { "upTo": "100", "unitPrice": "0.1", "flatPrice": "5" }, { "upTo": null, "unitPrice": max } ] })),
        model(json!({ "type": "volume", "tiers": [
            { "upTo": tiny, "unitPrice": max, "flatPrice": max }, { "upTo": null, "unitPrice": "0.01" } ] })),
        model(json!({ "type": "percentage", "rate": "0.029", "fixedFee": "0.30", "minPerEvent": "0.5",
            "maxPerEvent": "2", "freeEvents": "3", "freeAmount": "100" })),
        model(json!({ "type": "percentage", "rate": max, "fixedFee": max })),
        model(json!({ "type": "graduated_percentage", "tiers": [
            { "upTo": "1000", "rate": "0.03" }, { "upTo": null, "rate": "0.01", "flatPrice": max } ] })),
        model(json!({ "type": "dynamic", "source": { "eventProperty": "$.p" }, "minPrice": "0", "maxPrice": max })),
        model(json!({ "type": "dynamic", "source": { "eventProperty": "$.p" } })),
        model(json!({ "type": "dynamic", "source": { "rate": "spot" }, "minPrice": "1", "maxPrice": "3" })),
        model(json!({ "type": "matrix", "dimension": "k", "cells": {
            "a": { "type": "graduated", "tiers": [{ "upTo": "10", "flatPrice": max }, { "upTo": null, "unitPrice": "1" }] },
            "b": { "type": "percentage", "rate": "0.5", "freeAmount": "7" } },
            "default": { "type": "per_unit", "unitPrice": max } })),
        model(json!({ "type": "matrix", "dimension": "k", "cells": {
            "a": { "type": "dynamic", "source": { "eventProperty": "$.p" } } } })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// SPEC §3.2: graduated's amount is the sum of its per-tier pieces, the pieces' quantities
    /// add up to q, and both match the formula written out by hand.
    #[test]
    fn graduated_amount_is_the_sum_of_its_tiers(tiers in gen_tiers(), q in nonneg(10_000_000_000, 4)) {
        let rating = graduated(&tiers).rate_quantity(q, None, ctx()).unwrap();
        let pieces: Decimal = rating.tiers.iter().map(|t| t.amount).sum();
        prop_assert_eq!(pieces, rating.amount);
        let units: Decimal = rating.tiers.iter().map(|t| t.quantity).sum();
        prop_assert_eq!(units, q);
        prop_assert_eq!(rating.amount, graduated_by_hand(&tiers, q));
    }

    #[test]
    fn graduated_is_monotone(tiers in gen_tiers(), a in nonneg(10_000_000_000, 4), b in nonneg(10_000_000_000, 4)) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let m = graduated(&tiers);
        let at_lo = m.rate_quantity(lo, None, ctx()).unwrap().amount;
        let at_hi = m.rate_quantity(hi, None, ctx()).unwrap().amount;
        prop_assert!(at_lo <= at_hi, "A({lo}) = {at_lo} > A({hi}) = {at_hi}");
    }

    #[test]
    fn per_unit_is_monotone(price in nonneg(1_000_000_000, 9), a in any_small(), b in any_small()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let m = model(json!({ "type": "per_unit", "unitPrice": price.to_string() }));
        let at_lo = m.rate_quantity(lo, None, ctx()).unwrap().amount;
        let at_hi = m.rate_quantity(hi, None, ctx()).unwrap().amount;
        prop_assert!(at_lo <= at_hi, "A({lo}) = {at_lo} > A({hi}) = {at_hi}");
        prop_assert_eq!(at_hi, hi * price);
    }

    /// Package is monotone, and equals ceil_or_floor(max(0, q − free) / size) × price computed
    /// in integers (all inputs at 6 places).
    #[test]
    fn package_is_monotone_and_exact(
        size in 1i128..=100_000_000,
        price in nonneg(1_000_000, 2),
        free in 0i128..=1_000_000_000,
        down in any::<bool>(),
        a in 0i128..=10_000_000_000,
        b in 0i128..=10_000_000_000,
    ) {
        let m = model(json!({ "type": "package", "packageSize": dec(size, 6).to_string(),
            "packagePrice": price.to_string(), "freeUnits": dec(free, 6).to_string(),
            "rounding": if down { "down" } else { "up" } }));
        let by_hand = |q: i128| {
            let billable = (q - free).max(0);
            let packages = if down { billable / size } else { (billable + size - 1) / size };
            Decimal::from(packages) * price
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let at_lo = m.rate_quantity(dec(lo, 6), None, ctx()).unwrap().amount;
        let at_hi = m.rate_quantity(dec(hi, 6), None, ctx()).unwrap().amount;
        prop_assert!(at_lo <= at_hi, "A({lo}) = {at_lo} > A({hi}) = {at_hi}");
        prop_assert_eq!(at_lo, by_hand(lo));
        prop_assert_eq!(at_hi, by_hand(hi));
    }

    /// SPEC §2: half away from zero, exactly `exponent` places, against integer arithmetic.
    #[test]
    fn rounding_is_half_away_from_zero(
        mantissa in prop_oneof![-MAX_MANTISSA..=MAX_MANTISSA, -100_000i128..=100_000],
        scale in 0u32..=28,
        exponent in 0u32..=4,
    ) {
        let expected = round_by_hand(mantissa, scale, exponent);
        prop_assume!(expected.is_some(), "too large to carry the places");
        let expected = expected.unwrap();
        let got = round_half_away(dec(mantissa, scale), exponent).unwrap();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(got.scale(), exponent);
        prop_assert_eq!(got.to_string(), expected.to_string());
    }

    /// Exact midpoints at every exponent go away from zero.
    #[test]
    fn midpoints_go_away_from_zero(whole in -1_000_000_000i128..=1_000_000_000, exponent in 0u32..=4) {
        // whole × 10^-exponent + 5 × 10^-(exponent+1), i.e. mantissa whole × 10 ± 5 at exponent + 1
        let mantissa = if whole < 0 { whole * 10 - 5 } else { whole * 10 + 5 };
        let away = if whole < 0 { whole - 1 } else { whole + 1 };
        let got = round_half_away(dec(mantissa, exponent + 1), exponent).unwrap();
        prop_assert_eq!(got, dec(away, exponent));
        prop_assert_eq!(got.scale(), exponent);
    }

    /// No model panics on any quantity or event count; failures are typed errors.
    #[test]
    fn rating_a_quantity_never_panics(q in any_decimal(), count in prop::option::of(any_decimal())) {
        let spot = BTreeMap::from([("spot".to_string(), Decimal::TWO)]);
        for m in every_model() {
            if let Ok(r) = m.rate_quantity(q, count, Context::of(&spot)) {
                for exponent in 0..=4 {
                    let _ = round_half_away(r.amount, exponent);
                }
            }
            let groups = BTreeMap::from([("a".to_string(), q), ("z".to_string(), q)]);
            let _ = m.rate_groups(&groups, count, Context::of(&spot));
        }
    }

    /// No model panics on any events (values, event prices, dimension values).
    #[test]
    fn rating_events_never_panics(
        events in prop::collection::vec((any_decimal(), any_decimal(), prop::sample::select(vec!["a", "b", "c"])), 0..6)
    ) {
        let events: Vec<Ev> = events
            .into_iter()
            .map(|(value, price, key)| Ev { value, data: json!({ "p": price.to_string(), "k": key }) })
            .collect();
        let spot = BTreeMap::from([("spot".to_string(), Decimal::TWO)]);
        for m in every_model() {
            let _ = m.rate_events(&events, Context::of(&spot));
        }
    }
}

/// Everyday quantities, negative ones included (per_unit credits).
fn any_small() -> impl Strategy<Value = Decimal> {
    (-10_000_000_000i128..=10_000_000_000, 0u32..=6).prop_map(|(m, s)| dec(m, s))
}
