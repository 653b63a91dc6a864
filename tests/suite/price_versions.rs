//! Price versions (issue 14 point 6): a subscription's `pinnedPrices` keep the price versions it
//! started with; `pin_prices` writes them when the catalog changes, `migrate` removes them, and
//! `Subscription::prices` is what the subscription is billed by. Every figure is hand-computed.

use serde_json::{json, Value};
use tollgate::catalog::{Catalog, Price, PriceTarget};
use tollgate::customer::{migrate, pin_prices, Customer, PriceChanges, Subscription};
use tollgate::engine::{Engine, Options};
use tollgate::pricing::Model;
use tollgate::time::Timestamp;
use tollgate::{Code, Decimal, Error};

// ---------------------------------------------------------------- helpers

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or_else(|| panic!("bad timestamp {s:?}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

/// Now, for `pin_prices`: mid-December 2026.
const NOW: &str = "2026-12-15T00:00:00Z";

fn base_price() -> Value {
    json!({ "id": "price_base", "feeId": "fee_base", "paymentTerm": "in_advance",
            "model": { "type": "flat", "amount": "10" } })
}

fn calls_price(unit_price: &str) -> Value {
    json!({ "id": "price_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
            "model": { "type": "per_unit", "unitPrice": unit_price } })
}

fn gb_price() -> Value {
    json!({ "id": "price_gb", "metricId": "bm_gb", "paymentTerm": "in_arrears",
            "model": { "type": "per_unit", "unitPrice": "0.02" } })
}

/// A catalog with `plan_dev` priced by `dev` and `plan_pro` priced by `pro`.
fn catalog(dev: Vec<Value>, pro: Vec<Value>) -> Value {
    json!({
        "schemaVersion": 1,
        "products": [{ "id": "prod", "name": "API" }],
        "billableMetrics": [
            { "id": "bm_calls", "productId": "prod", "name": "API calls", "eventType": "api.call",
              "aggregation": "COUNT" },
            { "id": "bm_gb", "productId": "prod", "name": "Storage", "eventType": "storage",
              "aggregation": "SUM", "valueProperty": "$.gb" }
        ],
        "fees": [{ "id": "fee_base", "productId": "prod", "name": "Base" }],
        "plans": [
            { "id": "plan_dev", "productId": "prod", "name": "Dev", "currency": "USD",
              "billingCadence": "P1M", "prices": dev },
            { "id": "plan_pro", "productId": "prod", "name": "Pro", "currency": "USD",
              "billingCadence": "P1M", "prices": pro }
        ]
    })
}

fn pro_prices(unit_price: &str) -> Vec<Value> {
    vec![json!({ "id": "price_pro_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                 "model": { "type": "per_unit", "unitPrice": unit_price } })]
}

/// v1: calls at 0.10.
fn v1() -> Value {
    catalog(vec![base_price(), calls_price("0.10")], pro_prices("0.05"))
}

/// v2: calls edited to 0.20.
fn v2() -> Value {
    catalog(vec![base_price(), calls_price("0.20")], pro_prices("0.05"))
}

fn load(catalog: &Value) -> Catalog {
    Catalog::from_value(catalog).unwrap_or_else(|e| panic!("catalog rejected: {e:?}"))
}

/// A customer with one subscription from Nov 1, 2026 (extra subscription fields merged in).
fn customer(id: &str, plan: &str, extra: Value) -> Value {
    let mut sub = json!({ "id": format!("sub_{id}"), "planId": plan, "startedAt": "2026-11-01T00:00:00Z" });
    if let (Some(s), Value::Object(more)) = (sub.as_object_mut(), extra) {
        s.extend(more);
    }
    json!({ "id": id, "subscriptions": [sub] })
}

fn decode(customer: &Value, catalog: &Catalog) -> Result<Customer, Vec<Error>> {
    let mut problems = Vec::new();
    Customer::decode(customer, "", catalog, &mut problems).ok_or(problems)
}

fn decoded(customer: &Value, catalog: &Catalog) -> Customer {
    decode(customer, catalog).unwrap_or_else(|e| panic!("customer rejected: {e:?}"))
}

fn problems(customer: &Value, catalog: &Catalog) -> Vec<(Code, String)> {
    match decode(customer, catalog) {
        Ok(_) => panic!("customer {customer} accepted"),
        Err(errors) => errors.into_iter().map(|e| (e.code, e.path)).collect(),
    }
}

fn ids<'a>(sub: &'a Subscription, catalog: &'a Catalog) -> Vec<&'a str> {
    let plan = catalog.plan(&sub.plan_id).expect("plan");
    sub.prices(plan).map(|p| p.id.as_str()).collect()
}

fn unit_price(price: &Price) -> Decimal {
    match &price.model {
        Model::PerUnit { unit_price } => *unit_price,
        other => panic!("not per_unit: {other:?}"),
    }
}

/// The unit price `sub` is billed for `price_id`.
fn billed_unit_price(sub: &Subscription, catalog: &Catalog, price_id: &str) -> Decimal {
    let plan = catalog.plan(&sub.plan_id).expect("plan");
    unit_price(sub.price(plan, price_id).unwrap_or_else(|| panic!("no price {price_id}")))
}

fn pins(customer: &Value) -> &Value {
    &customer["subscriptions"][0]["pinnedPrices"]
}

// ---------------------------------------------------------------- decoding

#[test]
fn pinned_prices_decode_to_prices_and_nulls() {
    let cat = load(&v2());
    let c = customer(
        "cus_a",
        "plan_dev",
        json!({ "pinnedPrices": { "price_calls": calls_price("0.10"), "price_gb": null } }),
    );
    let sub = &decoded(&c, &cat).subscriptions[0];
    assert_eq!(sub.pinned_prices.len(), 2);
    let pinned = sub.pinned_prices["price_calls"].as_ref().expect("a pinned price");
    assert_eq!(pinned.target, PriceTarget::Metric("bm_calls".into()));
    assert_eq!(unit_price(pinned), d("0.10"));
    assert_eq!(sub.pinned_prices["price_gb"], None);
    // Without pins: the map is empty.
    let plain = decoded(&customer("cus_b", "plan_dev", json!({})), &cat);
    assert!(plain.subscriptions[0].pinned_prices.is_empty());
}

#[test]
fn an_invalid_pinned_price_is_reported_with_its_path() {
    let cat = load(&v2());
    let mut bad = calls_price("ten cents");
    bad["metricId"] = json!("bm_nope");
    let mut renamed = base_price();
    renamed["id"] = json!("price_other");
    let c = customer(
        "cus_a",
        "plan_dev",
        json!({ "pinnedPrices": { "price_calls": bad, "price_base": renamed, "price_x": 3 } }),
    );
    let at = "/subscriptions/0/pinnedPrices";
    assert_eq!(
        problems(&c, &cat),
        vec![
            (Code::InvalidValue, format!("{at}/price_base/id")),
            (Code::InvalidDecimal, format!("{at}/price_calls/model/unitPrice")),
            (Code::InvalidType, format!("{at}/price_x")),
        ]
    );
    // A well-formed pinned price naming a metric the catalog lacks.
    let mut dangling = calls_price("0.10");
    dangling["metricId"] = json!("bm_nope");
    let c = customer("cus_a", "plan_dev", json!({ "pinnedPrices": { "price_calls": dangling } }));
    assert_eq!(problems(&c, &cat), vec![(Code::UnknownReference, format!("{at}/price_calls/metricId"))]);
}

#[test]
fn ended_at_is_an_alias_of_ending_at() {
    let cat = load(&v2());
    let end = "2026-11-20T00:00:00Z";
    let sub = &decoded(&customer("cus_a", "plan_dev", json!({ "endedAt": end })), &cat).subscriptions[0];
    assert_eq!(sub.ending_at, Some(ts(end)));
    let both = json!({ "endedAt": end, "endingAt": end });
    assert_eq!(decoded(&customer("cus_a", "plan_dev", both), &cat).subscriptions[0].ending_at, Some(ts(end)));
    let differ = json!({ "endedAt": end, "endingAt": "2026-11-21T00:00:00Z" });
    assert_eq!(
        problems(&customer("cus_a", "plan_dev", differ), &cat),
        vec![(Code::InvalidValue, "/subscriptions/0/endedAt".into())]
    );
    let before_start = json!({ "endedAt": "2026-10-01T00:00:00Z" });
    assert_eq!(
        problems(&customer("cus_a", "plan_dev", before_start), &cat),
        vec![(Code::InvalidValue, "/subscriptions/0/endedAt".into())]
    );
}

// ---------------------------------------------------------------- Subscription::prices

#[test]
fn prices_replace_drop_and_keep_removed_ones_in_order() {
    // The plan now has base, calls at 0.20 and gb; two prices were removed from the plan
    // (old_a, old_b) but this subscription keeps them.
    let cat = load(&catalog(vec![base_price(), calls_price("0.20"), gb_price()], pro_prices("0.05")));
    let mut old_a = calls_price("0.05");
    old_a["id"] = json!("price_old_a");
    let mut old_b = base_price();
    old_b["id"] = json!("price_old_b");
    let pinned =
        json!({ "price_calls": calls_price("0.10"), "price_gb": null, "price_old_b": old_b, "price_old_a": old_a });
    let c = decoded(&customer("cus_a", "plan_dev", json!({ "pinnedPrices": pinned })), &cat);
    let sub = &c.subscriptions[0];
    // Plan order (base, calls pinned, gb dropped), then removed ones by id (old_a < old_b).
    assert_eq!(ids(sub, &cat), ["price_base", "price_calls", "price_old_a", "price_old_b"]);
    assert_eq!(billed_unit_price(sub, &cat, "price_calls"), d("0.10"));
    assert_eq!(billed_unit_price(sub, &cat, "price_old_a"), d("0.05"));
    let plan = cat.plan("plan_dev").expect("plan");
    assert!(sub.price(plan, "price_gb").is_none());
    assert!(sub.price(plan, "price_nope").is_none());
    // A subscription without pins is billed by the plan as it is.
    let plain = decoded(&customer("cus_b", "plan_dev", json!({})), &cat);
    assert_eq!(ids(&plain.subscriptions[0], &cat), ["price_base", "price_calls", "price_gb"]);
    assert_eq!(billed_unit_price(&plain.subscriptions[0], &cat, "price_calls"), d("0.20"));
}

#[test]
fn price_overrides_name_the_subscriptions_prices() {
    let cat = load(&catalog(vec![base_price(), gb_price()], pro_prices("0.05")));
    let model = json!({ "type": "per_unit", "unitPrice": "0.01" });
    // price_calls was removed from the plan but is pinned: it may be overridden.
    let kept =
        json!({ "pinnedPrices": { "price_calls": calls_price("0.10") }, "priceOverrides": { "price_calls": model } });
    let sub = &decoded(&customer("cus_a", "plan_dev", kept), &cat).subscriptions[0];
    assert!(sub.price_overrides.contains_key("price_calls"));
    // price_gb is pinned to null: it does not exist for this subscription.
    let gone = json!({ "pinnedPrices": { "price_gb": null }, "priceOverrides": { "price_gb": model } });
    assert_eq!(
        problems(&customer("cus_a", "plan_dev", gone), &cat),
        vec![(Code::UnknownReference, "/subscriptions/0/priceOverrides/price_gb".into())]
    );
}

// ---------------------------------------------------------------- pin_prices

#[test]
fn an_edited_price_is_pinned_for_existing_subscribers() {
    let now = ts(NOW);
    let c = customer("cus_a", "plan_dev", json!({}));
    let pinned = pin_prices(&v1(), &v2(), &c, now).expect("calls changed: a pin");
    // Only the edited price is pinned, with its v1 JSON.
    assert_eq!(pins(&pinned), &json!({ "price_calls": calls_price("0.10") }));
    let cat = load(&v2());
    let sub = &decoded(&pinned, &cat).subscriptions[0];
    assert_eq!(ids(sub, &cat), ["price_base", "price_calls"]);
    assert_eq!(billed_unit_price(sub, &cat, "price_calls"), d("0.10"));
    // A subscriber of another plan is untouched.
    assert_eq!(pin_prices(&v1(), &v2(), &customer("cus_p", "plan_pro", json!({})), now), None);
}

#[test]
fn a_customer_created_after_the_change_gets_the_new_version() {
    let now = ts(NOW);
    let cat = load(&v2());
    let c = customer("cus_new", "plan_dev", json!({ "startedAt": NOW }));
    assert_eq!(billed_unit_price(&decoded(&c, &cat).subscriptions[0], &cat, "price_calls"), d("0.20"));
    // The next change, to another plan only, leaves it alone.
    let v3 = catalog(vec![base_price(), calls_price("0.20")], pro_prices("0.06"));
    assert_eq!(pin_prices(&v2(), &v3, &c, now), None);
    // No change, and a change of spelling only ("0.20" → "0.2"), are no change.
    assert_eq!(pin_prices(&v2(), &v2(), &c, now), None);
    let respelled = catalog(vec![base_price(), calls_price("0.2")], pro_prices("0.05"));
    assert!(PriceChanges::between(&v2(), &respelled).is_empty());
}

#[test]
fn an_added_price_is_pinned_null_and_a_removed_one_kept() {
    let now = ts(NOW);
    let v2 = catalog(vec![calls_price("0.10"), gb_price()], pro_prices("0.05"));
    let changes = PriceChanges::between(&v1(), &v2);
    assert_eq!(changes.plan("plan_dev"), json!({ "price_base": base_price(), "price_gb": null }).as_object());
    assert_eq!(changes.plan("plan_pro"), None);
    let pinned = changes.apply(&customer("cus_a", "plan_dev", json!({})), now).expect("a pin");
    let cat = load(&v2);
    let sub = &decoded(&pinned, &cat).subscriptions[0];
    // gb is not billed; base, gone from the plan, still is (after the plan's prices).
    assert_eq!(ids(sub, &cat), ["price_calls", "price_base"]);
}

#[test]
fn a_second_edit_does_not_overwrite_a_pin() {
    let now = ts(NOW);
    let at_v2 = pin_prices(&v1(), &v2(), &customer("cus_a", "plan_dev", json!({})), now).expect("pinned");
    // v3: calls to 0.30 — the subscription stays on v1.
    let v3 = catalog(vec![base_price(), calls_price("0.30")], pro_prices("0.05"));
    assert_eq!(pin_prices(&v2(), &v3, &at_v2, now), None);
    // v4: calls to 0.40 and gb added — gb is pinned null, calls still 0.10.
    let v4 = catalog(vec![base_price(), calls_price("0.40"), gb_price()], pro_prices("0.05"));
    let at_v4 = pin_prices(&v3, &v4, &at_v2, now).expect("gb added");
    assert_eq!(pins(&at_v4), &json!({ "price_calls": calls_price("0.10"), "price_gb": null }));
    let cat = load(&v4);
    let sub = &decoded(&at_v4, &cat).subscriptions[0];
    assert_eq!(ids(sub, &cat), ["price_base", "price_calls"]);
    assert_eq!(billed_unit_price(sub, &cat, "price_calls"), d("0.10"));
}

#[test]
fn an_ended_subscription_is_not_pinned() {
    let now = ts(NOW);
    for key in ["endingAt", "endedAt"] {
        let ended = customer("cus_a", "plan_dev", json!({ key: "2026-12-01T00:00:00Z" }));
        assert_eq!(pin_prices(&v1(), &v2(), &ended, now), None, "{key}");
        // Ending exactly now: ended (the end is exclusive).
        let ending_now = customer("cus_a", "plan_dev", json!({ key: NOW }));
        assert_eq!(pin_prices(&v1(), &v2(), &ending_now, now), None, "{key}");
        // Ending later: still running, pinned.
        let ending_later = customer("cus_a", "plan_dev", json!({ key: "2027-01-01T00:00:00Z" }));
        let pinned = pin_prices(&v1(), &v2(), &ending_later, now).expect("running: pinned");
        assert_eq!(pins(&pinned), &json!({ "price_calls": calls_price("0.10") }), "{key}");
    }
}

#[test]
fn only_running_subscriptions_of_the_changed_plan_are_pinned() {
    let now = ts(NOW);
    let c = json!({ "id": "cus_a", "subscriptions": [
        { "id": "sub_old", "planId": "plan_dev", "startedAt": "2026-01-01T00:00:00Z", "endingAt": "2026-11-01T00:00:00Z" },
        { "id": "sub_pro", "planId": "plan_pro", "startedAt": "2026-11-01T00:00:00Z" },
        { "id": "sub_dev", "planId": "plan_dev", "startedAt": "2026-11-01T00:00:00Z" }
    ]});
    let pinned = pin_prices(&v1(), &v2(), &c, now).expect("sub_dev pinned");
    let subs = pinned["subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subs[0].get("pinnedPrices"), None);
    assert_eq!(subs[1].get("pinnedPrices"), None);
    assert_eq!(subs[2]["pinnedPrices"], json!({ "price_calls": calls_price("0.10") }));
}

// ---------------------------------------------------------------- migrate

#[test]
fn migrate_moves_a_subscription_to_the_current_prices() {
    let pinned = pin_prices(&v1(), &v2(), &customer("cus_a", "plan_dev", json!({})), ts(NOW)).expect("pinned");
    let migrated = migrate(&pinned, "sub_cus_a").expect("migrated");
    assert_eq!(migrated, customer("cus_a", "plan_dev", json!({})));
    let cat = load(&v2());
    assert_eq!(billed_unit_price(&decoded(&migrated, &cat).subscriptions[0], &cat, "price_calls"), d("0.20"));
    // Migrating a subscription without pins changes nothing.
    assert_eq!(migrate(&migrated, "sub_cus_a").expect("migrated"), migrated);
    let err = migrate(&pinned, "sub_nope").expect_err("no such subscription");
    assert_eq!((err.code, err.path.as_str()), (Code::UnknownReference, "/subscriptionId"));
}

// ---------------------------------------------------------------- end to end

fn engine_with_pinned_customer() -> Engine {
    let pinned = json!({ "pinnedPrices": { "price_calls": calls_price("0.10") } });
    let snapshot = json!({ "snapshotVersion": 1, "issuedAt": "2026-11-01T00:00:00Z", "catalog": v2(),
                           "customers": [customer("cus_a", "plan_dev", pinned)] });
    Engine::from_snapshot(&snapshot, Options::default()).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

fn call(e: &mut Engine, n: usize) {
    let time = format!("2026-11-{:02}T10:00:00Z", 10 + n);
    let ev = json!({ "id": format!("evt_{n}"), "source": "edge-test", "type": "api.call", "subject": "cus_a",
                     "time": time, "data": {} });
    let out = e.ingest(&ev, ts(&time)).unwrap_or_else(|err| panic!("ingest failed: {err}"));
    assert!(out.allowed && !out.duplicate && !out.unmatched, "event not applied: {out:?}");
}

#[test]
fn an_engine_loads_a_customer_with_pins() {
    let mut e = engine_with_pinned_customer();
    call(&mut e, 1);
}

#[test]
fn invoice_preview_bills_the_pinned_price_version() {
    let mut e = engine_with_pinned_customer();
    for n in 1..=3 {
        call(&mut e, n);
    }
    let inv = e.invoice_preview("cus_a", ts("2026-11-20T00:00:00Z")).expect("preview");
    let line = inv.lines.iter().find(|l| l.price_id.as_deref() == Some("price_calls")).expect("calls line");
    // 3 calls × 0.10 (the pinned version; the catalog says 0.20) = 0.30.
    assert_eq!(line.quantity, d("3"));
    assert_eq!(line.unit_price, Some(d("0.10")));
    assert_eq!(line.amount, d("0.30"));
}
