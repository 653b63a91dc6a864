//! The engine as an edge (`leases: true`): hard limits need a lease from the hub, uses are
//! queued as events, and the hub's engine records them and budgets leases (SPEC §7).

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::entitlements::Reason;
use tollgate::sync::{Escrow, Policy, SyncRequest, SyncResponse};
use tollgate::time::Timestamp;

fn snapshot() -> Value {
    serde_json::from_str(include_str!("data/leased-snapshot.json")).unwrap()
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A hub in miniature: its engine, its escrow, one round trip.
struct Hub {
    engine: Engine,
    escrow: Escrow,
    policy: Policy,
}

impl Hub {
    fn new() -> Hub {
        Hub {
            engine: Engine::from_snapshot(&snapshot(), Options::default()).unwrap(),
            escrow: Escrow::default(),
            policy: Policy::default(),
        }
    }

    fn sync(&mut self, edge: &mut Engine, now: Timestamp) {
        let request = edge.sync_request(now).unwrap().unwrap();
        let request = SyncRequest::from_value(&serde_json::to_value(&request).unwrap()).unwrap();
        for event in &request.events {
            self.engine.record(event, now).unwrap();
        }
        let mut grants = Vec::new();
        for report in &request.leases {
            let terms = self.engine.lease_terms(&report.key, now).unwrap().unwrap_or_default();
            let (grant, _) =
                self.escrow.report(&request.edge_id, &request.boot_id, report, terms, &self.policy, now).unwrap();
            grants.push(grant);
        }
        let response = SyncResponse { ack_seq: request.seq, leases: grants, snapshot: None };
        edge.apply_sync(&serde_json::to_value(&response).unwrap(), now).unwrap();
    }
}

fn edge(id: &str) -> Engine {
    let mut e = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    e.enable_leases(id, "boot-1");
    e
}

#[test]
fn a_hard_limit_needs_a_lease_then_sync_grants_it() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut fra = edge("fra-1");
    let first = fra.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap();
    assert!(!first.allowed);
    assert_eq!(first.reason, Reason::LeaseExhausted);
    assert!(fra.needs_sync(now));
    hub.sync(&mut fra, now);
    let second = fra.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap();
    assert!(second.allowed, "{second:?}");
    // The use travels to the hub as an event and lands in its ledger after the next sync.
    hub.sync(&mut fra, now);
    assert!(fra.leases().unwrap().events.is_empty());
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(10));
}

#[test]
fn two_edges_hammering_one_limit_never_exceed_it_together() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut edges = [edge("fra-1"), edge("iad-1")];
    let mut allowed = 0u32;
    for round in 0..400 {
        for (i, e) in edges.iter_mut().enumerate() {
            for k in 0..5 {
                let id = format!("{i}-{round}-{k}");
                let event = json!({ "id": id, "source": format!("app-{i}"), "type": "api.call",
                                    "subject": "cus_acme", "time": "2026-11-10T00:00:00Z" });
                if e.ingest(&event, now).unwrap().allowed {
                    allowed += 1;
                }
            }
            hub.sync(e, now);
        }
    }
    assert_eq!(allowed, 1000, "exactly the limit is allowed across both edges");
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(1000));
    let invoice = hub.engine.invoice_preview("cus_acme", now).unwrap();
    assert_eq!(invoice.total, Decimal::new(1000, 2));
}

#[test]
fn an_exported_state_comes_back_whole() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut fra = edge("fra-1");
    fra.consume("cus_acme", "api-calls", Decimal::from(5), None, now).unwrap();
    hub.sync(&mut fra, now);
    fra.consume("cus_acme", "api-calls", Decimal::from(5), Some("req-1"), now).unwrap();
    let text = fra.export_sync_state().unwrap().unwrap();
    let mut restarted = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    restarted.import_sync_state(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(restarted.leases(), fra.leases());
    let bad = restarted.import_sync_state(&json!({ "edgeId": 1, "leases": [{ "used": "-1" }] })).unwrap_err();
    assert!(bad.iter().any(|e| e.path == "/edgeId"));
    assert!(bad.iter().any(|e| e.path == "/leases/0/used"));
}

#[test]
fn the_hub_records_edge_usage_past_its_own_view_of_the_limit() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    for i in 0..3 {
        let e = json!({ "id": format!("c{i}"), "source": "fra-1", "type": "tollgate.consume", "subject": "cus_acme",
                        "time": "2026-11-10T00:00:00Z", "data": { "featureKey": "api-calls", "quantity": "600" } });
        assert!(hub.engine.record(&e, now).unwrap().allowed);
    }
    let again = json!({ "id": "c0", "source": "fra-1", "type": "tollgate.consume", "subject": "cus_acme",
                        "time": "2026-11-10T00:00:00Z", "data": { "featureKey": "api-calls", "quantity": "600" } });
    assert!(hub.engine.record(&again, now).unwrap().duplicate);
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(1800));
    let key = tollgate::sync::LeaseKey {
        customer_id: "cus_acme".into(),
        key: "api-calls".into(),
        period: at("2026-11-01T00:00:00Z"),
    };
    assert_eq!(hub.engine.lease_terms(&key, now).unwrap().map(|t| t.budget), Some(Decimal::from(1000)));
}

#[test]
fn with_the_hubs_key_only_signed_snapshots_are_taken_and_a_bad_one_changes_nothing() {
    let keys: Value = serde_json::from_str(include_str!("../examples/keys/demo-hub.json")).unwrap();
    let key = tollgate::sync::signed::PublicKey::parse(keys["publicKey"].as_str().unwrap()).unwrap();
    let options = Options { hub_public_key: Some(key), ..Options::default() };
    let signed: Value = serde_json::from_str(include_str!("../examples/llm-snapshot.signed.json")).unwrap();
    let plain: Value = serde_json::from_str(include_str!("../examples/llm-snapshot.json")).unwrap();
    let unsigned = Engine::from_snapshot(&plain, options).unwrap_err();
    assert_eq!(unsigned[0].code, tollgate::error::Code::UnsignedSnapshot);
    let mut engine = Engine::from_snapshot(&signed, options).unwrap();
    assert_eq!(engine.customer_count(), 3);
    // An altered payload: one character of the base64 changed.
    let mut altered = signed.clone();
    let payload = altered["payload"].as_str().unwrap().to_string();
    let flipped = if payload.starts_with('e') { "f" } else { "e" };
    altered["payload"] = Value::String(format!("{flipped}{}", &payload[1..]));
    let errors = engine.apply_snapshot(&altered).unwrap_err();
    assert!(errors.iter().all(|e| e.code == tollgate::error::Code::BadSignature), "{errors:?}");
    assert!(engine.apply_snapshot(&plain).is_err());
    assert_eq!(engine.customer_count(), 3, "the previous snapshot stays");
    assert!(engine.apply_snapshot(&signed).is_ok());
}
