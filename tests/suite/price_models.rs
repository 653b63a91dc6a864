//! Every price model of SPEC §3.2 and the rounding rule of SPEC §2, against figures computed by
//! hand from SPEC's formulas (the arithmetic is written next to each expected figure).
//! Models are built from their JSON form through `Model::decode`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tollgate::money::round_half_away;
use tollgate::pricing::{Context, Model, Rating, TierAmount};
use tollgate::{Code, Decimal, Error};

// ---------------------------------------------------------------- helpers

/// An exact decimal from its text.
fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

/// Decodes a model object, failing the test on any problem.
fn model(json: Value) -> Model {
    let mut problems = Vec::new();
    let m = Model::decode(&json, "", &mut problems);
    assert!(problems.is_empty(), "problems decoding {json}: {problems:?}");
    m.expect("a model")
}

static NO_RATES: BTreeMap<String, Decimal> = BTreeMap::new();

fn ctx() -> Context<'static> {
    Context::of(&NO_RATES)
}

use tollgate::pricing::DataEvent as Ev;

fn ev(value: &str) -> Ev {
    Ev { value: d(value), data: json!({}) }
}

fn ev_with(value: &str, data: Value) -> Ev {
    Ev { value: d(value), data }
}

fn evs(values: &[&str]) -> Vec<Ev> {
    values.iter().map(|v| ev(v)).collect()
}

/// `rate_quantity` without an event count, expected to succeed.
fn rate(m: &Model, q: &str) -> Rating {
    m.rate_quantity(d(q), None, ctx()).unwrap_or_else(|e| panic!("rating {q}: {e}"))
}

fn amount(m: &Model, q: &str) -> Decimal {
    rate(m, q).amount
}

fn events_amount(m: &Model, events: &[Ev]) -> Decimal {
    m.rate_events(events, ctx()).unwrap_or_else(|e| panic!("rating events: {e}")).amount
}

fn err_code(r: tollgate::Result<Rating>) -> Code {
    r.expect_err("expected an error").code
}

fn tier(up_to: Option<&str>, quantity: &str, amount: &str) -> TierAmount {
    TierAmount { up_to: up_to.map(d), quantity: d(quantity), amount: d(amount) }
}

/// `79228162514264337593543950335`, the largest decimal.
const MAX: &str = "79228162514264337593543950335";

// ---------------------------------------------------------------- decoding sanity

#[test]
fn decode_reports_problems_instead_of_building_a_model() {
    let mut problems: Vec<Error> = Vec::new();
    let bad = json!({ "type": "graduated", "tiers": [
        { "upTo": "100", "unitPrice": "1" }, { "upTo": "50", "unitPrice": "1" }, { "upTo": null } ] });
    let _ = Model::decode(&bad, "/m", &mut problems);
    assert!(problems.iter().any(|p| p.code == Code::TiersNotAscending && p.path == "/m/tiers/1/upTo"), "{problems:?}");
}

// ---------------------------------------------------------------- flat

#[test]
fn flat_is_amount_times_quantity() {
    let m = model(json!({ "type": "flat", "amount": "49.99" }));
    // 49.99 × 1 = 49.99
    assert_eq!(amount(&m, "1"), d("49.99"));
    // 49.99 × 3 = 149.97
    assert_eq!(amount(&m, "3"), d("149.97"));
    // 49.99 × 0 = 0
    assert_eq!(amount(&m, "0"), d("0"));
    // 49.99 × −1 = −49.99 (credits are allowed for flat)
    assert_eq!(amount(&m, "-1"), d("-49.99"));
    // 49.99 × 2.5 = 124.975
    assert_eq!(amount(&m, "2.5"), d("124.975"));
}

// ---------------------------------------------------------------- per_unit

#[test]
fn per_unit_is_quantity_times_unit_price() {
    let m = model(json!({ "type": "per_unit", "unitPrice": "0.000002" }));
    // SPEC's example: $0.002 per 1K tokens; 2,000,000 × 0.000002 = 4
    assert_eq!(amount(&m, "2000000"), d("4"));
    // 1 × 0.000002 = 0.000002 (unrounded)
    assert_eq!(amount(&m, "1"), d("0.000002"));
    assert_eq!(rate(&m, "1").unit_price, Some(d("0.000002")));
}

#[test]
fn per_unit_negative_quantity_is_a_credit() {
    let m = model(json!({ "type": "per_unit", "unitPrice": "0.125" }));
    // −5 × 0.125 = −0.625
    assert_eq!(amount(&m, "-5"), d("-0.625"));
}

#[test]
fn per_unit_fractional_quantity() {
    let m = model(json!({ "type": "per_unit", "unitPrice": "0.40" }));
    // 2.5 × 0.40 = 1.00
    assert_eq!(amount(&m, "2.5"), d("1"));
    // 0.0001 × 0.40 = 0.00004
    assert_eq!(amount(&m, "0.0001"), d("0.00004"));
}

#[test]
fn per_unit_from_events_rates_the_sum() {
    let m = model(json!({ "type": "per_unit", "unitPrice": "0.5" }));
    // (1 + 2.5 + 3) × 0.5 = 6.5 × 0.5 = 3.25
    assert_eq!(events_amount(&m, &evs(&["1", "2.5", "3"])), d("3.25"));
}

// ---------------------------------------------------------------- package

fn package(rounding: Option<&str>, free_units: Option<&str>) -> Model {
    let mut j = json!({ "type": "package", "packageSize": "50", "packagePrice": "2" });
    if let Some(r) = rounding {
        j["rounding"] = json!(r);
    }
    if let Some(f) = free_units {
        j["freeUnits"] = json!(f);
    }
    model(j)
}

#[test]
fn package_rounds_up_by_default() {
    let m = package(None, None);
    // ceil(0 / 50) × 2 = 0
    assert_eq!(amount(&m, "0"), d("0"));
    // ceil(1 / 50) = ceil(0.02) = 1 → 1 × 2 = 2
    assert_eq!(amount(&m, "1"), d("2"));
    // ceil(50 / 50) = 1 → 2 (exactly one package)
    assert_eq!(amount(&m, "50"), d("2"));
    // ceil(50.0001 / 50) = ceil(1.000002) = 2 → 4
    assert_eq!(amount(&m, "50.0001"), d("4"));
    // ceil(130 / 50) = ceil(2.6) = 3 → 6
    assert_eq!(amount(&m, "130"), d("6"));
    // ceil(100 / 50) = 2 → 4 (exact multiple)
    assert_eq!(amount(&m, "100"), d("4"));
    // explicit "up" is the same as the default: ceil(2.6) = 3 → 6
    assert_eq!(amount(&package(Some("up"), None), "130"), d("6"));
}

#[test]
fn package_rounds_down_when_asked() {
    let m = package(Some("down"), None);
    // floor(49.9 / 50) = floor(0.998) = 0 → 0
    assert_eq!(amount(&m, "49.9"), d("0"));
    // floor(130 / 50) = floor(2.6) = 2 → 4
    assert_eq!(amount(&m, "130"), d("4"));
    // floor(100 / 50) = 2 → 4 (exact multiple)
    assert_eq!(amount(&m, "100"), d("4"));
}

#[test]
fn package_with_free_units() {
    let up = package(None, Some("100"));
    let down = package(Some("down"), Some("100"));
    // q below freeUnits: max(0, 80 − 100) = 0 → 0 packages → 0
    assert_eq!(amount(&up, "80"), d("0"));
    assert_eq!(amount(&down, "80"), d("0"));
    // q = freeUnits: max(0, 0) = 0 → 0
    assert_eq!(amount(&up, "100"), d("0"));
    // ceil((100.5 − 100) / 50) = ceil(0.01) = 1 → 2; floor → 0
    assert_eq!(amount(&up, "100.5"), d("2"));
    assert_eq!(amount(&down, "100.5"), d("0"));
    // ceil((230 − 100) / 50) = ceil(2.6) = 3 → 6; floor → 2 → 4
    assert_eq!(amount(&up, "230"), d("6"));
    assert_eq!(amount(&down, "230"), d("4"));
    // (200 − 100) / 50 = 2 exactly → 4 either way
    assert_eq!(amount(&up, "200"), d("4"));
    assert_eq!(amount(&down, "200"), d("4"));
}

#[test]
fn package_fractional_size() {
    let m = model(json!({ "type": "package", "packageSize": "0.5", "packagePrice": "1.25" }));
    // ceil(1.2 / 0.5) = ceil(2.4) = 3 → 3 × 1.25 = 3.75
    assert_eq!(amount(&m, "1.2"), d("3.75"));
}

#[test]
fn package_ceil_sees_a_tiny_excess_above_a_whole_package() {
    let m = model(json!({ "type": "package", "packageSize": "3", "packagePrice": "1" }));
    // q = 3.0000000000000000000000000001 > 3, so a second package is started:
    // ceil(3.0000000000000000000000000001 / 3) = ceil(1.0000000000000000000000000000333…) = 2 → 2 × 1 = 2
    // (or, if the quotient cannot be represented, an error — never 1)
    match m.rate_quantity(d("3.0000000000000000000000000001"), None, ctx()) {
        Ok(r) => assert_eq!(r.amount, d("2")),
        Err(e) => assert_eq!(e.code, Code::Overflow),
    }
}

// ---------------------------------------------------------------- graduated

fn graduated() -> Model {
    model(json!({ "type": "graduated", "tiers": [
        { "upTo": "100", "unitPrice": "0.10", "flatPrice": "5" },
        { "upTo": "1000", "unitPrice": "0.05", "flatPrice": "10" },
        { "upTo": null, "unitPrice": "0.01", "flatPrice": "20" }
    ] }))
}

#[test]
fn graduated_zero_quantity_charges_the_first_flat_price() {
    let r = rate(&graduated(), "0");
    // tier 1 is always reached: 0 × 0.10 + 5 = 5
    assert_eq!(r.amount, d("5"));
    assert_eq!(r.tiers, vec![tier(Some("100"), "0", "5")]);
}

#[test]
fn graduated_on_a_boundary_stays_in_the_lower_tier() {
    let r = rate(&graduated(), "100");
    // 100 × 0.10 + 5 = 15; tier 2 covers (100, 1000] so it is not reached
    assert_eq!(r.amount, d("15"));
    assert_eq!(r.tiers, vec![tier(Some("100"), "100", "15")]);
}

#[test]
fn graduated_just_above_a_boundary_reaches_the_next_tier() {
    let r = rate(&graduated(), "100.0001");
    // tier 1: 100 × 0.10 + 5 = 15
    // tier 2: 0.0001 × 0.05 + 10 = 0.000005 + 10 = 10.000005
    // total 25.000005
    assert_eq!(r.amount, d("25.000005"));
    assert_eq!(r.tiers, vec![tier(Some("100"), "100", "15"), tier(Some("1000"), "0.0001", "10.000005")]);
}

#[test]
fn graduated_fractional_quantity_inside_tier_two() {
    let r = rate(&graduated(), "250.25");
    // tier 1: 100 × 0.10 + 5 = 15
    // tier 2: (250.25 − 100) × 0.05 + 10 = 150.25 × 0.05 + 10 = 7.5125 + 10 = 17.5125
    // total 32.5125
    assert_eq!(r.amount, d("32.5125"));
    assert_eq!(r.tiers, vec![tier(Some("100"), "100", "15"), tier(Some("1000"), "150.25", "17.5125")]);
}

#[test]
fn graduated_every_tier_reached_with_its_flat_price() {
    let r = rate(&graduated(), "1000");
    // 100 × 0.10 + 5 = 15; 900 × 0.05 + 10 = 55; tier 3 not reached → 70
    assert_eq!(r.amount, d("70"));
    assert_eq!(r.tiers.len(), 2);

    let r = rate(&graduated(), "1000.5");
    // 15 + 55 + (0.5 × 0.01 + 20 = 20.005) = 90.005
    assert_eq!(r.amount, d("90.005"));
    assert_eq!(
        r.tiers,
        vec![tier(Some("100"), "100", "15"), tier(Some("1000"), "900", "55"), tier(None, "0.5", "20.005")]
    );

    // 15 + 55 + (9000 × 0.01 + 20 = 110) = 180
    assert_eq!(amount(&graduated(), "10000"), d("180"));
}

#[test]
fn graduated_breakdown_sums_to_the_amount() {
    for q in ["0", "1", "99.99", "100", "100.0001", "999", "1000", "1000.0001", "123456.789"] {
        let r = rate(&graduated(), q);
        let sum: Decimal = r.tiers.iter().map(|t| t.amount).sum();
        assert_eq!(sum, r.amount, "q = {q}");
        let units: Decimal = r.tiers.iter().map(|t| t.quantity).sum();
        assert_eq!(units, d(q), "units of q = {q}");
    }
}

#[test]
fn graduated_defaults_prices_to_zero() {
    let m = model(json!({ "type": "graduated", "tiers": [
        { "upTo": "10" }, { "upTo": null, "unitPrice": "1" } ] }));
    // 10 × 0 + 0 + 5 × 1 + 0 = 5
    assert_eq!(amount(&m, "15"), d("5"));
}

#[test]
fn graduated_with_a_zero_width_first_tier() {
    // docs/decisions.md #5: a first tier for exactly zero units.
    let m = model(json!({ "type": "graduated", "tiers": [
        { "upTo": "0", "flatPrice": "1" }, { "upTo": null, "unitPrice": "2", "flatPrice": "3" } ] }));
    // q = 0 is in tier 1: 1
    assert_eq!(amount(&m, "0"), d("1"));
    // q = 0.5: 1 + (0.5 × 2 + 3) = 1 + 4 = 5
    assert_eq!(amount(&m, "0.5"), d("5"));
}

#[test]
fn graduated_from_events_rates_the_total() {
    // Σ = 60 + 60 = 120 → 15 + 20 × 0.05 + 10 = 26
    assert_eq!(events_amount(&graduated(), &evs(&["60", "60"])), d("26"));
}

// ---------------------------------------------------------------- volume

fn volume() -> Model {
    model(json!({ "type": "volume", "tiers": [
        { "upTo": "100", "unitPrice": "0.10", "flatPrice": "1" },
        { "upTo": "1000", "unitPrice": "0.05", "flatPrice": "2" },
        { "upTo": null, "unitPrice": "0.01", "flatPrice": "3" }
    ] }))
}

#[test]
fn volume_zero_is_in_tier_one() {
    // 0 × 0.10 + 1 = 1
    assert_eq!(amount(&volume(), "0"), d("1"));
}

#[test]
fn volume_cliff_at_a_boundary() {
    // at the boundary, tier 1: 100 × 0.10 + 1 = 11
    let at = rate(&volume(), "100");
    assert_eq!(at.amount, d("11"));
    assert_eq!(at.unit_price, Some(d("0.10")));
    // just above, every unit at tier 2: 100.0001 × 0.05 + 2 = 5.000005 + 2 = 7.000005
    let above = rate(&volume(), "100.0001");
    assert_eq!(above.amount, d("7.000005"));
    assert_eq!(above.unit_price, Some(d("0.05")));
    assert!(above.amount < at.amount, "the volume cliff");
    // 1000 × 0.05 + 2 = 52; 1001 × 0.01 + 3 = 10.01 + 3 = 13.01
    assert_eq!(amount(&volume(), "1000"), d("52"));
    assert_eq!(amount(&volume(), "1001"), d("13.01"));
}

#[test]
fn volume_fractional_quantity_and_breakdown() {
    let r = rate(&volume(), "50.5");
    // 50.5 × 0.10 + 1 = 5.05 + 1 = 6.05
    assert_eq!(r.amount, d("6.05"));
    assert_eq!(r.tiers.iter().map(|t| t.amount).sum::<Decimal>(), r.amount);
}

// ---------------------------------------------------------------- negative quantities

#[test]
fn negative_quantity_rejected_by_package_tiers_and_percentages() {
    let models = [
        package(None, None),
        graduated(),
        volume(),
        model(json!({ "type": "percentage", "rate": "0.029" })),
        model(json!({ "type": "graduated_percentage", "tiers": [{ "upTo": null, "rate": "0.01" }] })),
    ];
    for m in &models {
        let e = m.rate_quantity(d("-1"), Some(d("1")), ctx()).expect_err(m.type_name());
        assert_eq!(e.code, Code::NegativeQuantity, "{}", m.type_name());
        let e = m.rate_quantity(d("-0.0001"), None, ctx()).expect_err(m.type_name());
        assert_eq!(e.code, Code::NegativeQuantity, "{}", m.type_name());
    }
}

#[test]
fn negative_quantity_rejected_from_events_too() {
    // Σ = 5 − 10 = −5 < 0
    assert_eq!(err_code(graduated().rate_events(&evs(&["5", "-10"]), ctx())), Code::NegativeQuantity);
    // a percentage event with a negative value
    let p = model(json!({ "type": "percentage", "rate": "0.1" }));
    let e = p.rate_events(&evs(&["5", "-1"]), ctx()).unwrap_err();
    assert_eq!(e.code, Code::NegativeQuantity);
    assert_eq!(e.path, "/1");
}

// ---------------------------------------------------------------- percentage

#[test]
fn percentage_rate_only() {
    let m = model(json!({ "type": "percentage", "rate": "0.029" }));
    // 0.029 × 100 + 0.029 × 250.5 = 2.9 + 7.2645 = 10.1645
    assert_eq!(events_amount(&m, &evs(&["100", "250.5"])), d("10.1645"));
    // totals: 0.029 × 350.5 = 10.1645
    assert_eq!(m.rate_quantity(d("350.5"), Some(d("2")), ctx()).unwrap().amount, d("10.1645"));
}

#[test]
fn percentage_fixed_fee_per_event() {
    let m = model(json!({ "type": "percentage", "rate": "0.029", "fixedFee": "0.30" }));
    // (0.029 × 10 + 0.30) + (0.029 × 20 + 0.30) = 0.59 + 0.88 = 1.47
    assert_eq!(events_amount(&m, &evs(&["10", "20"])), d("1.47"));
    // totals: 0.029 × 30 + 0.30 × 2 = 0.87 + 0.60 = 1.47
    assert_eq!(m.rate_quantity(d("30"), Some(d("2")), ctx()).unwrap().amount, d("1.47"));
}

#[test]
fn percentage_min_and_max_per_event_with_fixed_fee() {
    let m = model(json!({ "type": "percentage", "rate": "0.029", "fixedFee": "0.30",
        "minPerEvent": "0.50", "maxPerEvent": "2.00" }));
    // 5:   0.029 × 5 + 0.30 = 0.445 → raised to 0.50
    // 50:  0.029 × 50 + 0.30 = 1.45 + 0.30 = 1.75 (inside)
    // 100: 0.029 × 100 + 0.30 = 3.20 → capped at 2.00
    // total 0.50 + 1.75 + 2.00 = 4.25
    assert_eq!(events_amount(&m, &evs(&["5", "50", "100"])), d("4.25"));
    // a zero-value paying event still pays the minimum: max(0 + 0.30, 0.50) = 0.50
    assert_eq!(events_amount(&m, &evs(&["0"])), d("0.50"));
}

#[test]
fn percentage_min_max_do_not_apply_to_totals() {
    let m = model(json!({ "type": "percentage", "rate": "0.029", "fixedFee": "0.30",
        "minPerEvent": "0.50", "maxPerEvent": "2.00" }));
    // totals: 0.029 × 155 + 0.30 × 3 = 4.495 + 0.90 = 5.395 (no per-event floor or cap)
    assert_eq!(m.rate_quantity(d("155"), Some(d("3")), ctx()).unwrap().amount, d("5.395"));
}

#[test]
fn percentage_free_events() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "fixedFee": "1", "freeEvents": "2" }));
    // events 1 and 2 are free (no fee, no minimum); 30 → 3 + 1 = 4; 40 → 4 + 1 = 5; total 9
    assert_eq!(events_amount(&m, &evs(&["10", "20", "30", "40"])), d("9"));
    // only free events → 0
    assert_eq!(events_amount(&m, &evs(&["10", "20"])), d("0"));
}

#[test]
fn percentage_free_events_skip_the_minimum() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "minPerEvent": "5", "freeEvents": "1" }));
    // event 1 free (0, not the minimum); event 2: max(0.1 × 1, 5) = 5
    assert_eq!(events_amount(&m, &evs(&["1", "1"])), d("5"));
}

#[test]
fn percentage_free_amount_crossing_event_pays_above_the_allowance() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "fixedFee": "0.5", "freeAmount": "100" }));
    // e1 = 60: cumulative 60 ≤ 100 → free
    // e2 = 60: crosses; 40 of it is free, pays 20 → 0.1 × 20 + 0.5 = 2.5
    // e3 = 30: allowance used up → 0.1 × 30 + 0.5 = 3.5
    // total 6
    assert_eq!(events_amount(&m, &evs(&["60", "60", "30"])), d("6"));
    // an event that exactly uses up the allowance is fully free: 40 + 60 = 100 → 0
    assert_eq!(events_amount(&m, &evs(&["40", "60"])), d("0"));
    // one event crossing from zero: 0.1 × (150 − 100) + 0.5 = 5.5
    assert_eq!(events_amount(&m, &evs(&["150"])), d("5.5"));
}

#[test]
fn percentage_crossing_event_is_clamped_like_any_paying_event() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "freeAmount": "100", "minPerEvent": "1" }));
    // e1 = 101 crosses: paid value 1 → 0.1 × 1 = 0.1 → raised to the minimum 1
    assert_eq!(events_amount(&m, &evs(&["101"])), d("1"));
}

#[test]
fn percentage_both_allowances_free_only_while_both_last() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "freeEvents": "2", "freeAmount": "100" }));
    // the amount runs out first:
    // e1 = 70: free (cum 70, 1 event); e2 = 50 crosses: pays 20 → 2; e3 = 10: pays 1 → total 3
    assert_eq!(events_amount(&m, &evs(&["70", "50", "10"])), d("3"));
    // the events run out first:
    // e1 = 10, e2 = 10 free; e3 = 10 pays its whole value (80 of freeAmount unused) → 1
    assert_eq!(events_amount(&m, &evs(&["10", "10", "10"])), d("1"));

    let m = model(json!({ "type": "percentage", "rate": "0.1", "freeEvents": "3", "freeAmount": "50" }));
    // e1 = 20 free (cum 20); e2 = 40 crosses: pays 10 → 1; e3 = 5 (allowance gone) → 0.5; e4 = 5 → 0.5
    // total 2
    assert_eq!(events_amount(&m, &evs(&["20", "40", "5", "5"])), d("2"));
}

#[test]
fn percentage_from_totals_formula() {
    let m = model(json!({ "type": "percentage", "rate": "0.1", "fixedFee": "0.5",
        "freeEvents": "2", "freeAmount": "100" }));
    let totals = |q: &str, n: &str| m.rate_quantity(d(q), Some(d(n)), ctx()).unwrap().amount;
    // 0.1 × max(0, 250 − 100) + 0.5 × max(0, 5 − 2) = 15 + 1.5 = 16.5
    assert_eq!(totals("250", "5"), d("16.5"));
    // 0.1 × max(0, 50 − 100) + 0.5 × max(0, 1 − 2) = 0 + 0 = 0
    assert_eq!(totals("50", "1"), d("0"));
    // 0.1 × max(0, 100.5 − 100) + 0.5 × max(0, 2 − 2) = 0.05 + 0 = 0.05
    assert_eq!(totals("100.5", "2"), d("0.05"));
    // 0.1 × max(0, 80 − 100) + 0.5 × max(0, 4 − 2) = 0 + 1 = 1
    assert_eq!(totals("80", "4"), d("1"));
}

#[test]
fn percentage_from_totals_without_count_charges_no_fixed_fee() {
    // docs/decisions.md #7: no event count counts zero events.
    let m = model(json!({ "type": "percentage", "rate": "0.1", "fixedFee": "0.5" }));
    // 0.1 × 250 + 0.5 × 0 = 25
    assert_eq!(amount(&m, "250"), d("25"));
}

// ---------------------------------------------------------------- graduated_percentage

fn graduated_percentage() -> Model {
    model(json!({ "type": "graduated_percentage", "tiers": [
        { "upTo": "1000", "rate": "0.03" },
        { "upTo": "5000", "rate": "0.02", "flatPrice": "5" },
        { "upTo": null, "rate": "0.01" }
    ] }))
}

#[test]
fn graduated_percentage_rates_each_slice() {
    let r = rate(&graduated_percentage(), "6000");
    // 1000 × 0.03 = 30; 4000 × 0.02 + 5 = 85; 1000 × 0.01 = 10; total 125
    assert_eq!(r.amount, d("125"));
    assert_eq!(
        r.tiers,
        vec![tier(Some("1000"), "1000", "30"), tier(Some("5000"), "4000", "85"), tier(None, "1000", "10")]
    );
    // boundary: 1000 × 0.03 = 30 (tier 2 and its flat price not reached)
    assert_eq!(amount(&graduated_percentage(), "1000"), d("30"));
    // just above: 30 + 0.01 × 0.02 + 5 = 35.0002
    assert_eq!(amount(&graduated_percentage(), "1000.01"), d("35.0002"));
    // zero: 0
    assert_eq!(amount(&graduated_percentage(), "0"), d("0"));
}

#[test]
fn graduated_percentage_from_events_rates_the_total_value() {
    // Σ = 700 + 700 = 1400 → 30 + 400 × 0.02 + 5 = 43
    assert_eq!(events_amount(&graduated_percentage(), &evs(&["700", "700"])), d("43"));
}

// ---------------------------------------------------------------- dynamic

fn dynamic_event_price() -> Model {
    model(json!({ "type": "dynamic", "source": { "eventProperty": "$.unit_price" },
        "minPrice": "0.5", "maxPrice": "2" }))
}

#[test]
fn dynamic_event_property_prices_each_event() {
    let events = [
        ev_with("10", json!({ "unit_price": "1.25" })),
        // a JSON number, parsed from text (no float involved)
        ev_with("4", serde_json::from_str(r#"{ "unit_price": 0.75 }"#).unwrap()),
        ev_with("3", json!({ "unit_price": "2" })),
        ev_with("2", json!({ "unit_price": "0.5" })),
    ];
    // 10 × 1.25 + 4 × 0.75 + 3 × 2 + 2 × 0.5 = 12.5 + 3 + 6 + 1 = 22.5 (bounds are inclusive)
    assert_eq!(events_amount(&dynamic_event_price(), &events), d("22.5"));
}

#[test]
fn dynamic_nested_event_property() {
    let m = model(json!({ "type": "dynamic", "source": { "eventProperty": "$.pricing.unit" } }));
    let events = [ev_with("3", json!({ "pricing": { "unit": "0.333" } }))];
    // 3 × 0.333 = 0.999 (no bounds)
    assert_eq!(events_amount(&m, &events), d("0.999"));
}

#[test]
fn dynamic_event_price_out_of_bounds_rejects_the_event() {
    let above = [ev_with("1", json!({ "unit_price": "1" })), ev_with("1", json!({ "unit_price": "2.01" }))];
    let e = dynamic_event_price().rate_events(&above, ctx()).unwrap_err();
    assert_eq!(e.code, Code::PriceOutOfBounds);
    assert_eq!(e.path, "/1/data/unit_price");

    let below = [ev_with("1", json!({ "unit_price": "0.49" }))];
    let e = dynamic_event_price().rate_events(&below, ctx()).unwrap_err();
    assert_eq!(e.code, Code::PriceOutOfBounds);
    assert_eq!(e.path, "/0/data/unit_price");
}

#[test]
fn dynamic_missing_event_property() {
    let e = dynamic_event_price().rate_events(&[ev_with("1", json!({}))], ctx()).unwrap_err();
    assert_eq!(e.code, Code::MissingProperty);
}

#[test]
fn dynamic_event_property_from_totals_needs_events() {
    assert_eq!(err_code(dynamic_event_price().rate_quantity(d("10"), None, ctx())), Code::EventsRequired);
}

fn market(min: Option<&str>, max: Option<&str>) -> Model {
    let mut j = json!({ "type": "dynamic", "source": { "rate": "gpu-spot" } });
    if let Some(lo) = min {
        j["minPrice"] = json!(lo);
    }
    if let Some(hi) = max {
        j["maxPrice"] = json!(hi);
    }
    model(j)
}

fn rates(value: &str) -> BTreeMap<String, Decimal> {
    BTreeMap::from([("gpu-spot".to_string(), d(value))])
}

#[test]
fn dynamic_market_rate_is_clamped_into_bounds() {
    let m = market(Some("1"), Some("3"));
    let high = rates("3.50");
    let inside = rates("2.5");
    let low = rates("0.2");
    let rate_with = |r: &BTreeMap<String, Decimal>, q: &str| {
        m.rate_quantity(d(q), None, Context::of(r)).unwrap_or_else(|e| panic!("{e}"))
    };
    // 3.50 clamped to 3 → 10 × 3 = 30
    let r = rate_with(&high, "10");
    assert_eq!((r.amount, r.unit_price), (d("30"), Some(d("3"))));
    // 2.5 inside → 10 × 2.5 = 25
    assert_eq!(rate_with(&inside, "10").amount, d("25"));
    // 0.2 clamped to 1 → 10 × 1 = 10
    assert_eq!(rate_with(&low, "10").amount, d("10"));
    // no bounds: 3.50 × 10 = 35
    let open = market(None, None);
    assert_eq!(open.rate_quantity(d("10"), None, Context::of(&high)).unwrap().amount, d("35"));
    // from events: (4 + 6) × 3 (clamped) = 30
    let events = evs(&["4", "6"]);
    assert_eq!(m.rate_events(&events, Context::of(&high)).unwrap().amount, d("30"));
}

#[test]
fn dynamic_unknown_market_rate() {
    let m = market(None, None);
    let other = BTreeMap::from([("cpu-spot".to_string(), d("1"))]);
    assert_eq!(err_code(m.rate_quantity(d("1"), None, Context::of(&other))), Code::UnknownRate);
    assert_eq!(err_code(m.rate_events(&evs(&["1"]), Context::of(&other))), Code::UnknownRate);
    assert_eq!(err_code(m.rate_quantity(d("1"), None, ctx())), Code::UnknownRate);
}

// ---------------------------------------------------------------- matrix

fn matrix(with_default: bool) -> Model {
    let mut j = json!({ "type": "matrix", "dimension": "model", "cells": {
        "small": { "type": "per_unit", "unitPrice": "0.001" },
        "large": { "type": "graduated", "tiers": [
            { "upTo": "100", "unitPrice": "0.1" }, { "upTo": null, "unitPrice": "0.05" } ] }
    } });
    if with_default {
        j["default"] = json!({ "type": "per_unit", "unitPrice": "0.01" });
    }
    model(j)
}

#[test]
fn matrix_prices_each_dimension_value_by_its_cell() {
    let events = [
        ev_with("100", json!({ "model": "small" })),
        ev_with("50", json!({ "model": "large" })),
        ev_with("200", json!({ "model": "small" })),
        ev_with("10", json!({ "model": "medium" })),
        ev_with("100", json!({ "model": "large" })),
    ];
    // small: (100 + 200) × 0.001 = 0.3
    // large: graduated on the group total 150: 100 × 0.1 + 50 × 0.05 = 10 + 2.5 = 12.5
    // medium (no cell) → default: 10 × 0.01 = 0.1
    // total 12.9
    assert_eq!(events_amount(&matrix(true), &events), d("12.9"));
}

#[test]
fn matrix_missing_dimension_uses_the_default() {
    let events = [ev_with("10", json!({})), ev_with("5", json!({ "model": "small" }))];
    // 10 × 0.01 + 5 × 0.001 = 0.1 + 0.005 = 0.105
    assert_eq!(events_amount(&matrix(true), &events), d("0.105"));
}

#[test]
fn matrix_value_without_cell_or_default_is_rejected() {
    let events = [ev_with("1", json!({ "model": "small" })), ev_with("1", json!({ "model": "medium" }))];
    let e = matrix(false).rate_events(&events, ctx()).unwrap_err();
    assert_eq!(e.code, Code::NoPriceForDimension);
    assert_eq!(e.path, "/1/data/model");
    let missing = [ev_with("1", json!({ "other": "x" }))];
    assert_eq!(err_code(matrix(false).rate_events(&missing, ctx())), Code::NoPriceForDimension);
}

#[test]
fn matrix_numeric_dimension_values_select_by_text() {
    let m = model(json!({ "type": "matrix", "dimension": "gpus", "cells": {
        "4": { "type": "per_unit", "unitPrice": "2" }, "8": { "type": "per_unit", "unitPrice": "3" } } }));
    let events = [ev_with("1.5", json!({ "gpus": 4 })), ev_with("2", json!({ "gpus": "8" }))];
    // 1.5 × 2 + 2 × 3 = 3 + 6 = 9
    assert_eq!(events_amount(&m, &events), d("9"));
}

#[test]
fn matrix_with_per_event_cells() {
    let m = model(json!({ "type": "matrix", "dimension": "card", "cells": {
        "visa": { "type": "percentage", "rate": "0.02", "fixedFee": "0.1" },
        "amex": { "type": "percentage", "rate": "0.03", "freeEvents": "1" } } }));
    let events = [
        ev_with("100", json!({ "card": "amex" })),
        ev_with("50", json!({ "card": "visa" })),
        ev_with("200", json!({ "card": "amex" })),
    ];
    // amex: first amex event free, 200 × 0.03 = 6; visa: 50 × 0.02 + 0.1 = 1.1 → 7.1
    assert_eq!(events_amount(&m, &events), d("7.1"));
}

#[test]
fn matrix_cell_errors_point_at_the_original_event() {
    let m = model(json!({ "type": "matrix", "dimension": "region", "cells": {
        "eu": { "type": "dynamic", "source": { "eventProperty": "$.unit_price" }, "maxPrice": "1" },
        "us": { "type": "per_unit", "unitPrice": "1" } } }));
    let ok = [
        ev_with("2", json!({ "region": "eu", "unit_price": "0.5" })),
        ev_with("3", json!({ "region": "us" })),
        ev_with("4", json!({ "region": "eu", "unit_price": "0.25" })),
    ];
    // eu: 2 × 0.5 + 4 × 0.25 = 1 + 1 = 2; us: 3 × 1 = 3; total 5
    assert_eq!(events_amount(&m, &ok), d("5"));
    let bad = [
        ev_with("2", json!({ "region": "eu", "unit_price": "0.5" })),
        ev_with("3", json!({ "region": "us" })),
        ev_with("4", json!({ "region": "eu", "unit_price": "1.5" })),
    ];
    let e = m.rate_events(&bad, ctx()).unwrap_err();
    assert_eq!(e.code, Code::PriceOutOfBounds);
    // the third event overall (the second of the "eu" group)
    assert_eq!(e.path, "/2/data/unit_price");
}

#[test]
fn matrix_rate_groups() {
    let groups = BTreeMap::from([("small".to_string(), d("1000")), ("large".to_string(), d("150"))]);
    // small: 1000 × 0.001 = 1; large: 100 × 0.1 + 50 × 0.05 = 12.5; total 13.5
    assert_eq!(matrix(false).rate_groups(&groups, None, ctx()).unwrap().amount, d("13.5"));

    let with_unknown = BTreeMap::from([("small".to_string(), d("1")), ("xl".to_string(), d("2"))]);
    let e = matrix(false).rate_groups(&with_unknown, None, ctx()).unwrap_err();
    assert_eq!(e.code, Code::NoPriceForDimension);
    // with a default: 1 × 0.001 + 2 × 0.01 = 0.021
    assert_eq!(matrix(true).rate_groups(&with_unknown, None, ctx()).unwrap().amount, d("0.021"));

    // a non-matrix model rates the sum of the groups: (1 + 2) × 0.5 = 1.5
    let per_unit = model(json!({ "type": "per_unit", "unitPrice": "0.5" }));
    assert_eq!(per_unit.rate_groups(&with_unknown, None, ctx()).unwrap().amount, d("1.5"));
}

#[test]
fn matrix_from_a_total() {
    // the default cell prices the total: 300 × 0.01 = 3
    assert_eq!(amount(&matrix(true), "300"), d("3"));
    assert_eq!(err_code(matrix(false).rate_quantity(d("300"), None, ctx())), Code::NoPriceForDimension);
}

// ---------------------------------------------------------------- overflow

#[test]
fn overflow_is_an_error_never_a_panic() {
    let huge = json!(MAX);
    let cases: Vec<(Model, &str)> = vec![
        (model(json!({ "type": "flat", "amount": huge })), "2"),
        (model(json!({ "type": "per_unit", "unitPrice": huge })), "2"),
        (model(json!({ "type": "per_unit", "unitPrice": "2" })), MAX),
        (model(json!({ "type": "package", "packageSize": "1", "packagePrice": huge })), "2"),
        (model(json!({ "type": "package", "packageSize": "0.0000000001", "packagePrice": "1" })), MAX),
        (model(json!({ "type": "graduated", "tiers": [{ "upTo": null, "unitPrice": huge }] })), "2"),
        (
            model(json!({ "type": "graduated", "tiers": [
                { "upTo": "1", "flatPrice": huge }, { "upTo": null, "flatPrice": huge } ] })),
            "2",
        ),
        (model(json!({ "type": "volume", "tiers": [{ "upTo": null, "unitPrice": huge }] })), "2"),
        (model(json!({ "type": "volume", "tiers": [{ "upTo": null, "unitPrice": "1", "flatPrice": huge }] })), "1"),
        (model(json!({ "type": "percentage", "rate": huge })), "2"),
        (model(json!({ "type": "graduated_percentage", "tiers": [{ "upTo": null, "rate": huge }] })), "2"),
        (
            model(json!({ "type": "matrix", "dimension": "x", "cells": {},
                "default": { "type": "per_unit", "unitPrice": huge } })),
            "2",
        ),
    ];
    for (m, q) in &cases {
        let e = m.rate_quantity(d(q), Some(d("1")), ctx()).expect_err(m.type_name());
        assert_eq!(e.code, Code::Overflow, "{} at q = {q}", m.type_name());
    }

    // percentage with a fixed fee × a huge event count
    let p = model(json!({ "type": "percentage", "rate": "0", "fixedFee": "2" }));
    assert_eq!(err_code(p.rate_quantity(d("0"), Some(d(MAX)), ctx())), Code::Overflow);

    // market rate × a huge total
    let r = rates(MAX);
    assert_eq!(err_code(market(None, None).rate_quantity(d("2"), None, Context::of(&r))), Code::Overflow);
}

#[test]
fn overflow_from_events_is_an_error() {
    // per_unit: Σ of two MAX values overflows
    let per_unit = model(json!({ "type": "per_unit", "unitPrice": "1" }));
    assert_eq!(err_code(per_unit.rate_events(&evs(&[MAX, MAX]), ctx())), Code::Overflow);
    // percentage: each event costs MAX × 1; their sum overflows
    let p = model(json!({ "type": "percentage", "rate": "1" }));
    assert_eq!(err_code(p.rate_events(&evs(&[MAX, MAX]), ctx())), Code::Overflow);
    // percentage: MAX × 1 + fixed fee 1 overflows on one event
    let p = model(json!({ "type": "percentage", "rate": "1", "fixedFee": "1" }));
    assert_eq!(err_code(p.rate_events(&evs(&[MAX]), ctx())), Code::Overflow);
    // dynamic: value × the event's price
    let dy = model(json!({ "type": "dynamic", "source": { "eventProperty": "$.p" } }));
    assert_eq!(err_code(dy.rate_events(&[ev_with(MAX, json!({ "p": "2" }))], ctx())), Code::Overflow);
    // matrix: two groups whose sum overflows
    let m = model(json!({ "type": "matrix", "dimension": "k", "cells": {
        "a": { "type": "per_unit", "unitPrice": "1" }, "b": { "type": "per_unit", "unitPrice": "1" } } }));
    let events = [ev_with(MAX, json!({ "k": "a" })), ev_with(MAX, json!({ "k": "b" }))];
    assert_eq!(err_code(m.rate_events(&events, ctx())), Code::Overflow);
    // matrix groups
    let groups = BTreeMap::from([("a".to_string(), d(MAX)), ("b".to_string(), d(MAX))]);
    assert_eq!(err_code(m.rate_groups(&groups, None, ctx())), Code::Overflow);
}

// ---------------------------------------------------------------- rounding (SPEC §2)

fn round(s: &str, exponent: u32) -> String {
    round_half_away(d(s), exponent).unwrap().to_string()
}

#[test]
fn rounding_half_away_from_zero_at_two_places() {
    // 10.125: the third place is exactly 5 → away from zero → 10.13
    assert_eq!(round("10.125", 2), "10.13");
    assert_eq!(round("-10.125", 2), "-10.13");
    // 10.124999 → 10.12; 10.145 → 10.15 (banker's rounding would give 10.14)
    assert_eq!(round("10.124999", 2), "10.12");
    assert_eq!(round("10.145", 2), "10.15");
    // 0.0049 → 0.00 (below half)
    assert_eq!(round("0.0049", 2), "0.00");
    // 0.005 → 0.01; −0.005 → −0.01
    assert_eq!(round("0.005", 2), "0.01");
    assert_eq!(round("-0.005", 2), "-0.01");
    // 51.2345 → 51.23
    assert_eq!(round("51.2345", 2), "51.23");
}

#[test]
fn rounding_half_away_from_zero_at_zero_places() {
    // 2.5 → 3; −2.5 → −3; 3.5 → 4 (not to even); 0.5 → 1; 1023.5 → 1024
    assert_eq!(round("2.5", 0), "3");
    assert_eq!(round("-2.5", 0), "-3");
    assert_eq!(round("3.5", 0), "4");
    assert_eq!(round("0.5", 0), "1");
    assert_eq!(round("1023.5", 0), "1024");
    // 2.4999 → 2; −2.4999 → −2
    assert_eq!(round("2.4999", 0), "2");
    assert_eq!(round("-2.4999", 0), "-2");
}

#[test]
fn rounding_at_three_places_kwd() {
    // 10.1255 → 10.126; 10.1254 → 10.125; −0.0005 → −0.001
    assert_eq!(round("10.1255", 3), "10.126");
    assert_eq!(round("10.1254", 3), "10.125");
    assert_eq!(round("-0.0005", 3), "-0.001");
    // 7 → 7.000
    assert_eq!(round("7", 3), "7.000");
}

#[test]
fn rounding_keeps_exactly_the_exponent_places() {
    assert_eq!(round("100", 2), "100.00");
    assert_eq!(round("100.0", 2), "100.00");
    assert_eq!(round("0", 2), "0.00");
    assert_eq!(round("4.000000", 2), "4.00");
    assert_eq!(round("1024.000", 0), "1024");
    assert_eq!(round("0.1", 3), "0.100");
    assert_eq!(round("12.3456", 4), "12.3456");
    // a negative amount that rounds to zero prints as zero, not "-0.00"
    assert_eq!(round("-0.004", 2), "0.00");
    for (s, e) in [("1.5", 0u32), ("1.5", 2), ("1.5", 3), ("1.23456", 4)] {
        assert_eq!(round_half_away(d(s), e).unwrap().scale(), e, "{s} at {e}");
    }
}

#[test]
fn rounding_of_a_huge_amount_is_an_overflow_error() {
    // 79228162514264337593543950335 at 2 places would need 31 digits, more than a Decimal holds.
    let err = round_half_away(d(MAX), 2).unwrap_err();
    assert_eq!(err.code, Code::Overflow);
}
