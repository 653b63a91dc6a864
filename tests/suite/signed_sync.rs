//! Signed sync responses (SPEC §7, issue 13): the hub seals `/v1/sync` responses like snapshots,
//! for the edge run they answer; an engine with the hub's key takes only those, all or nothing,
//! and an engine without a key takes both forms.

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::entitlements::Reason;
use tollgate::sync::signed::{decode_base64, encode_base64, seal_sync_response, KeyPair};
use tollgate::sync::{LeaseKey, SyncResponse};
use tollgate::time::Timestamp;
use tollgate::Code;

const SNAPSHOT: &str = include_str!("../data/leased-snapshot.json");

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn hub_key() -> KeyPair {
    KeyPair::from_seed(&[9; 32], Some("hub-test")).unwrap()
}

fn api_calls() -> LeaseKey {
    LeaseKey { customer_id: "cus_acme".into(), key: "api-calls".into(), period: at("2026-11-01T00:00:00Z") }
}

/// The fixture as version `version`, expiring at `expires` when given.
fn snapshot(version: u64, expires: Option<&str>) -> Value {
    let mut s: Value = serde_json::from_str(SNAPSHOT).unwrap();
    s["snapshotVersion"] = json!(version);
    if let Some(t) = expires {
        s["expiresAt"] = json!(t);
    }
    s
}

fn sealed_snapshot(key: &KeyPair, version: u64, expires: Option<&str>) -> Value {
    key.seal(serde_json::to_string(&snapshot(version, expires)).unwrap().as_bytes())
}

/// Edge `fra-1`, run `boot-1`, on the fixture (signed when it has the hub's key), that asked for
/// a lease of `api-calls` at `now`: its first sync request is seq 1.
fn edge(key: Option<&KeyPair>, now: Timestamp) -> Engine {
    let options = Options { hub_public_key: key.map(KeyPair::public_key), ..Options::default() };
    let loaded = match key {
        Some(k) => sealed_snapshot(k, 1, None),
        None => snapshot(1, None),
    };
    let mut e = Engine::from_snapshot(&loaded, options).unwrap();
    e.enable_leases("fra-1", "boot-1");
    let first = e.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap();
    assert_eq!(first.reason, Reason::LeaseExhausted);
    let request = e.sync_request(now).unwrap().unwrap();
    assert_eq!((request.seq, request.leases.len()), (1, 1));
    e
}

/// The hub's answer to request 1: 50 units of `api-calls` for 30 s, and `snapshot`.
fn body(snapshot: Value) -> Value {
    json!({ "ackSeq": 1, "leases": [{ "customerId": "cus_acme", "key": "api-calls",
            "period": "2026-11-01T00:00:00Z", "epoch": 0, "granted": "50", "ttlMs": 30000, "mode": "normal",
            "shrinkTo": null, "othersUsage": "0", "allowance": "0", "budget": "1000" }],
            "snapshot": snapshot })
}

fn granted(e: &Engine) -> Option<Decimal> {
    e.leases().unwrap().leases.get(&api_calls()).map(|l| l.granted)
}

/// Everything a refused response could have changed: the sync state and the snapshot version.
fn state(e: &Engine) -> (String, u64) {
    (e.export_sync_state().unwrap().unwrap(), e.snapshot_version())
}

fn assert_refused(e: &mut Engine, response: &Value, now: Timestamp, code: Code, path: &str) {
    let before = state(e);
    let errors = e.apply_sync(response, now).unwrap_err();
    assert_eq!((errors[0].code, errors[0].path.as_str()), (code, path), "{errors:?}");
    assert_eq!(state(e), before, "a refused response changes nothing");
}

/// The envelope's payload, as text.
fn payload(envelope: &Value) -> String {
    String::from_utf8(decode_base64(envelope["payload"].as_str().unwrap()).unwrap()).unwrap()
}

#[test]
fn the_sealed_payload_is_the_response_with_the_edge_run_it_answers() {
    let key = hub_key();
    let envelope = seal_sync_response(&key, json!({ "ackSeq": 7, "leases": [], "snapshot": null }), "fra-1", "b7c1");
    assert_eq!(envelope["keyId"], "hub-test");
    // Compact, fields in key order, signed over exactly these bytes.
    let text = payload(&envelope);
    assert_eq!(text, r#"{"ackSeq":7,"bootId":"b7c1","edgeId":"fra-1","leases":[],"snapshot":null}"#);
    assert_eq!(envelope, key.seal(text.as_bytes()));
    let opened = SyncResponse::open(&envelope, Some(&key.public_key()), "fra-1", "b7c1").unwrap();
    assert_eq!((opened.ack_seq, opened.leases.len(), opened.snapshot), (7, 0, None));
}

#[test]
fn a_signed_response_verifies_and_applies() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    e.apply_sync(&seal_sync_response(&key, body(Value::Null), "fra-1", "boot-1"), now).unwrap();
    assert_eq!(granted(&e), Some(Decimal::from(50)));
    // 50 granted: 10, then 40 more fit (50 − 10 = 40 left), the 51st unit does not.
    assert!(e.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap().allowed);
    assert!(!e.consume("cus_acme", "api-calls", Decimal::from(41), None, now).unwrap().allowed);
    assert!(e.consume("cus_acme", "api-calls", Decimal::from(40), None, now).unwrap().allowed);
    assert_eq!(e.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap().reason, Reason::LeaseExhausted);
}

#[test]
fn a_tampered_payload_is_a_bad_signature_and_changes_nothing() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    let envelope = seal_sync_response(&key, body(Value::Null), "fra-1", "boot-1");
    let text = payload(&envelope);
    assert_eq!(text.matches(r#""granted":"50""#).count(), 1);
    let mut tampered = envelope.clone();
    tampered["payload"] = json!(encode_base64(text.replace(r#""granted":"50""#, r#""granted":"5000""#).as_bytes()));
    assert_refused(&mut e, &tampered, now, Code::BadSignature, "/signature");
    assert_eq!(granted(&e), Some(Decimal::ZERO), "the lease the request opened, nothing granted");
    // Signed by another key: the same.
    let forged = seal_sync_response(&hub_key_of(10), body(Value::Null), "fra-1", "boot-1");
    assert_refused(&mut e, &forged, now, Code::BadSignature, "/signature");
    // The genuine one still applies afterwards.
    e.apply_sync(&envelope, now).unwrap();
    assert_eq!(granted(&e), Some(Decimal::from(50)));
}

fn hub_key_of(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32], Some("hub-test")).unwrap()
}

#[test]
fn an_unsigned_response_to_an_engine_with_the_key_is_refused() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    assert_refused(&mut e, &body(Value::Null), now, Code::UnsignedSnapshot, "");
    // Naming the right edge run does not make a plain response acceptable.
    let mut addressed = body(Value::Null);
    addressed["edgeId"] = json!("fra-1");
    addressed["bootId"] = json!("boot-1");
    assert_refused(&mut e, &addressed, now, Code::UnsignedSnapshot, "");
}

#[test]
fn a_response_signed_for_another_edge_or_run_is_refused() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    let other_edge = seal_sync_response(&key, body(Value::Null), "ams-1", "boot-1");
    assert_refused(&mut e, &other_edge, now, Code::InvalidValue, "/payload/edgeId");
    // The same edge's previous run: its seq 1 was another request.
    let earlier_run = seal_sync_response(&key, body(Value::Null), "fra-1", "boot-0");
    assert_refused(&mut e, &earlier_run, now, Code::InvalidValue, "/payload/bootId");
    // Signed without naming anyone (sealed as a plain payload): refused too.
    let unaddressed = key.seal(serde_json::to_string(&body(Value::Null)).unwrap().as_bytes());
    assert_refused(&mut e, &unaddressed, now, Code::MissingField, "/payload/edgeId");
}

#[test]
fn a_bad_payload_is_reported_under_payload() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    let mut bad = body(Value::Null);
    bad["leases"][0]["granted"] = json!("-5");
    let envelope = seal_sync_response(&key, bad, "fra-1", "boot-1");
    assert_refused(&mut e, &envelope, now, Code::InvalidValue, "/payload/leases/0/granted");
    let not_json = key.seal(b"{\"ackSeq\": 1,");
    assert_refused(&mut e, &not_json, now, Code::InvalidJson, "/payload");
}

#[test]
fn the_snapshot_inside_a_signed_response_is_checked_as_a_snapshot() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    // Unsigned inside signed: refused, and the grant next to it is not taken either.
    let mut e = edge(Some(&key), now);
    let plain_inside = seal_sync_response(&key, body(snapshot(2, None)), "fra-1", "boot-1");
    assert_refused(&mut e, &plain_inside, now, Code::UnsignedSnapshot, "");
    assert_eq!(granted(&e), Some(Decimal::ZERO));
    // Expired at `now`: refused.
    let expired =
        seal_sync_response(&key, body(sealed_snapshot(&key, 2, Some("2026-11-10T00:00:00Z"))), "fra-1", "boot-1");
    assert_refused(&mut e, &expired, now, Code::StaleSnapshot, "/expiresAt");
    // Older than the engine's: refused.
    let mut newer = edge(Some(&key), now);
    newer.apply_snapshot(&sealed_snapshot(&key, 3, None)).unwrap();
    let older = seal_sync_response(&key, body(sealed_snapshot(&key, 2, None)), "fra-1", "boot-1");
    assert_refused(&mut newer, &older, now, Code::StaleSnapshot, "/snapshotVersion");
    // Signed and expiring a second from now: the grant and the snapshot both apply.
    let fresh =
        seal_sync_response(&key, body(sealed_snapshot(&key, 2, Some("2026-11-10T00:00:01Z"))), "fra-1", "boot-1");
    e.apply_sync(&fresh, now).unwrap();
    assert_eq!((granted(&e), e.snapshot_version()), (Some(Decimal::from(50)), 2));
}

#[test]
fn without_a_key_both_forms_are_taken_but_never_one_for_another_edge() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    // Plain, not naming anyone (what hubs sent before): taken.
    let mut plain = edge(None, now);
    plain.apply_sync(&body(Value::Null), now).unwrap();
    assert_eq!(granted(&plain), Some(Decimal::from(50)));
    // Signed: taken (there is no key to check it with).
    let mut signed = edge(None, now);
    signed.apply_sync(&seal_sync_response(&key, body(Value::Null), "fra-1", "boot-1"), now).unwrap();
    assert_eq!(granted(&signed), Some(Decimal::from(50)));
    // Naming another edge or run, in either form: refused.
    let mut e = edge(None, now);
    let mut elsewhere = body(Value::Null);
    elsewhere["edgeId"] = json!("ams-1");
    elsewhere["bootId"] = json!("boot-1");
    assert_refused(&mut e, &elsewhere, now, Code::InvalidValue, "/edgeId");
    elsewhere["edgeId"] = json!("fra-1");
    elsewhere["bootId"] = json!("boot-2");
    assert_refused(&mut e, &elsewhere, now, Code::InvalidValue, "/bootId");
    let sealed_elsewhere = seal_sync_response(&key, body(Value::Null), "ams-1", "boot-1");
    assert_refused(&mut e, &sealed_elsewhere, now, Code::InvalidValue, "/payload/edgeId");
    // A plain snapshot inside a plain response applies, unexpired; an expired one does not.
    let expired = body(snapshot(2, Some("2026-11-09T00:00:00Z")));
    assert_refused(&mut e, &expired, now, Code::StaleSnapshot, "/expiresAt");
    e.apply_sync(&body(snapshot(2, Some("2026-11-11T00:00:00Z"))), now).unwrap();
    assert_eq!((granted(&e), e.snapshot_version()), (Some(Decimal::from(50)), 2));
}

#[test]
fn the_hubs_extra_fields_decode() {
    // `problems` and `problemsOmitted` are the hub's report on refused leases and events.
    let mut b = body(Value::Null);
    b["problems"] = json!([{ "code": "invalid_value", "path": "/events/0", "message": "…" }]);
    b["problemsOmitted"] = json!(3);
    let (response, to) = SyncResponse::addressed(&b).unwrap();
    assert_eq!((response.ack_seq, to.edge_id, to.boot_id), (1, None, None));
    b["edgeId"] = json!(5);
    let errors = SyncResponse::from_value(&b).unwrap_err();
    assert_eq!((errors[0].code, errors[0].path.as_str()), (Code::InvalidType, "/edgeId"));
}

#[test]
fn a_signed_snapshot_and_a_signed_response_cannot_stand_in_for_each_other() {
    let now = at("2026-11-10T00:00:00Z");
    let key = hub_key();
    let mut e = edge(Some(&key), now);
    // One key signs both, and each decoder refuses the other's payload.
    assert_refused(&mut e, &sealed_snapshot(&key, 2, None), now, Code::MissingField, "/payload/ackSeq");
    let response = seal_sync_response(&key, body(Value::Null), "fra-1", "boot-1");
    let errors = e.apply_snapshot(&response).unwrap_err();
    assert_eq!((errors[0].code, errors[0].path.as_str()), (Code::MissingField, "/payload/catalog"));
    assert_eq!(e.snapshot_version(), 1);
}
