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
    serde_json::from_str(include_str!("../../examples/llm-snapshot.json")).unwrap()
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

// ---- expiry (`expiresAt`)

/// The fixture as version 2, expiring at `expires` (`None`: the field left out), with the trial
/// customer's grant raised to 1,500.
fn expiring(expires: Option<Value>) -> Value {
    let mut next = snapshot();
    next["snapshotVersion"] = json!(2);
    next["customers"][2]["grants"][0]["amount"] = json!("1500");
    if let Some(t) = expires {
        next["expiresAt"] = t;
    }
    next
}

#[test]
fn a_snapshot_expired_at_apply_time_changes_nothing_and_one_a_millisecond_younger_applies() {
    let now = ts("2026-11-12T10:00:00Z");
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    e.consume("cus_trial", "input-tokens", Decimal::from(100), None, now).unwrap();
    let next = expiring(Some(json!("2026-11-12T10:00:00Z")));
    // Expired at exactly its `expiresAt` …
    let problems = e.apply_snapshot_at(&next, now).unwrap_err();
    assert_eq!((problems[0].code, problems[0].path.as_str()), (Code::StaleSnapshot, "/expiresAt"));
    assert_eq!((e.snapshot_version(), e.snapshot_expires_at()), (1, None));
    // 1,000 granted − 100 used: the old grant still decides.
    assert_eq!(balance(&mut e, "cus_trial", now), "900");
    // … and still valid one millisecond before it: 1,500 − 100.
    e.apply_snapshot_at(&next, ts("2026-11-12T09:59:59.999Z")).unwrap();
    assert_eq!((e.snapshot_version(), e.snapshot_expires_at()), (2, Some(now)));
    assert_eq!(balance(&mut e, "cus_trial", now), "1400");
    // Once held, its expiry passing tears nothing down: the engine goes on deciding.
    let d = e.consume("cus_trial", "input-tokens", Decimal::from(400), None, ts("2026-11-20T00:00:00Z")).unwrap();
    assert!(d.allowed);
    assert_eq!(d.figures.unwrap().balance, Decimal::from(1000));
    assert_eq!(e.snapshot_expires_at(), Some(now), "still held, still saying when it expired");
    // A newer snapshot without the field replaces the expiry with none.
    let mut third = expiring(None);
    third["snapshotVersion"] = json!(3);
    e.apply_snapshot(&third).unwrap();
    assert_eq!(e.snapshot_expires_at(), None);
}

#[test]
fn without_expires_at_or_with_null_a_snapshot_never_expires() {
    let late = ts("2099-01-01T00:00:00Z");
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    e.apply_snapshot_at(&expiring(None), late).unwrap();
    assert_eq!(e.snapshot_version(), 2);
    e.apply_snapshot_at(&expiring(Some(Value::Null)), late).unwrap();
    assert!(Engine::from_snapshot_at(&snapshot(), Options::default(), late).is_ok());
}

#[test]
fn apply_snapshot_without_a_time_does_not_check_expiry() {
    // The older entry points have no `now`: they take an expired snapshot as before.
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    e.apply_snapshot(&expiring(Some(json!("2026-11-02T00:00:00Z")))).unwrap();
    assert_eq!(e.snapshot_version(), 2);
    let expired = expiring(Some(json!("2026-11-02T00:00:00Z")));
    assert!(Engine::from_snapshot(&expired, Options::default()).is_ok());
}

#[test]
fn from_snapshot_at_refuses_an_expired_snapshot() {
    let expired = expiring(Some(json!("2026-11-12T10:00:00Z")));
    let problems = Engine::from_snapshot_at(&expired, Options::default(), ts("2026-11-12T10:00:00.001Z")).unwrap_err();
    assert_eq!((problems[0].code, problems[0].path.as_str()), (Code::StaleSnapshot, "/expiresAt"));
    let e = Engine::from_snapshot_at(&expired, Options::default(), ts("2026-11-12T09:00:00Z")).unwrap();
    assert_eq!((e.snapshot_version(), e.snapshot_expires_at()), (2, Some(ts("2026-11-12T10:00:00Z"))));
    let plain = Engine::from_snapshot(&expired, Options::default()).unwrap();
    assert_eq!(plain.snapshot_expires_at(), Some(ts("2026-11-12T10:00:00Z")));
}

#[test]
fn expires_at_must_be_a_timestamp_after_issued_at() {
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    let now = ts("2026-11-01T00:00:00Z");
    for (expires, code) in [
        (json!("soon"), Code::InvalidTimestamp),
        (json!(1_790_000_000_000_u64), Code::InvalidType),
        // issuedAt is 2026-11-01T00:00:00Z: expiring at it, or before it, is a broken snapshot.
        (json!("2026-11-01T00:00:00Z"), Code::InvalidValue),
        (json!("2026-10-31T23:59:59Z"), Code::InvalidValue),
    ] {
        let problems = e.apply_snapshot_at(&expiring(Some(expires.clone())), now).unwrap_err();
        assert_eq!((problems[0].code, problems[0].path.as_str()), (code, "/expiresAt"), "{expires}");
    }
    assert_eq!(e.snapshot_version(), 1);
}

#[test]
fn an_older_snapshot_is_stale_with_or_without_a_time() {
    let mut e = Engine::from_snapshot(&expiring(None), Options::default()).unwrap();
    let problems = e.apply_snapshot_at(&snapshot(), ts("2026-11-12T10:00:00Z")).unwrap_err();
    assert_eq!((problems[0].code, problems[0].path.as_str()), (Code::StaleSnapshot, "/snapshotVersion"));
    assert_eq!(e.snapshot_version(), 2);
}
