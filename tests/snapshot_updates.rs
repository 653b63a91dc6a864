//! `apply_snapshot`: a new catalog and customers replace the old ones, what already happened
//! stays, and a bad snapshot changes nothing.

use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::time::{Period, Timestamp};
use tollgate::{Code, Decimal};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn snapshot() -> Value {
    serde_json::from_str(include_str!("../examples/llm-snapshot.json")).unwrap()
}

fn balance(e: &mut Engine, customer: &str, now: Timestamp) -> String {
    let d = e.check(customer, "input-tokens", now).unwrap();
    d.figures.map(|f| f.balance.to_string()).unwrap_or_default()
}

#[test]
fn usage_survives_a_new_snapshot_with_reordered_metrics_and_a_bigger_grant() {
    let now = ts("2026-11-12T10:00:00Z");
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    let d = e.consume("cus_trial", "input-tokens", Decimal::from(600), Some("r1"), now).unwrap();
    assert_eq!(d.figures.unwrap().balance, Decimal::from(400));
    let handle = e.handle("cus_trial", "input-tokens").unwrap();

    let mut next = snapshot();
    next["snapshotVersion"] = json!(2);
    // A new metric first: every metric after it moves one place.
    let metrics = next["catalog"]["billableMetrics"].as_array_mut().unwrap();
    metrics.insert(
        0,
        json!({ "id": "bm_images", "productId": "prod_nle", "name": "Images", "eventType": "image.made",
                "aggregation": "COUNT" }),
    );
    next["customers"][2]["grants"][0]["amount"] = json!("1500");
    e.apply_snapshot(&next).unwrap();

    assert_eq!(e.snapshot_version(), 2);
    // 1,500 granted − 600 already used.
    assert_eq!(balance(&mut e, "cus_trial", now), "900");
    let november = Period { start: ts("2026-11-01T00:00:00Z"), end: ts("2026-12-01T00:00:00Z") };
    assert_eq!(e.quantity("cus_trial", "bm_input", november).unwrap(), Decimal::from(600));
    assert_eq!(e.quantity("cus_trial", "bm_images", november).unwrap(), Decimal::ZERO);
    // The consume id is still remembered; the old handle is stale.
    let again = e.consume("cus_trial", "input-tokens", Decimal::from(600), Some("r1"), now).unwrap();
    assert_eq!(again.figures.unwrap().balance, Decimal::from(400), "the first decision, unchanged");
    assert_eq!(e.check_handle(handle, now).unwrap_err().code, Code::StaleHandle);
}

#[test]
fn a_bad_snapshot_changes_nothing() {
    let now = ts("2026-11-12T10:00:00Z");
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    e.consume("cus_trial", "input-tokens", Decimal::from(100), None, now).unwrap();
    let mut bad = snapshot();
    bad["catalog"]["plans"][0]["currency"] = json!("XXX");
    bad["customers"][2]["grants"][0]["amount"] = json!("5000");
    let problems = e.apply_snapshot(&bad).unwrap_err();
    assert_eq!((problems[0].code, problems[0].path.as_str()), (Code::UnknownCurrency, "/catalog/plans/0/currency"));
    assert_eq!(balance(&mut e, "cus_trial", now), "900");
    assert_eq!(e.snapshot_version(), 1);
}

#[test]
fn a_customer_left_out_of_the_snapshot_is_gone() {
    let now = ts("2026-11-12T10:00:00Z");
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    let mut next = snapshot();
    next["customers"].as_array_mut().unwrap().remove(2);
    e.apply_snapshot(&next).unwrap();
    let d = e.check("cus_trial", "input-tokens", now).unwrap();
    assert_eq!(serde_json::to_value(&d).unwrap()["reason"], "unknown_customer");
    assert_eq!(e.customer_count(), 2);
}
