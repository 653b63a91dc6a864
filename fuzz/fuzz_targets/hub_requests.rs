//! The hub's request bodies (SPEC §7 hub API, §10 "HTTP body"), applied to the hub's state the way
//! its HTTP handlers apply them, on a hub seeded with examples/llm-snapshot.json and a store that
//! keeps nothing (the state under test is the in-memory one; SQLite is not what is fuzzed here).
//!
//! Input: up to 8 requests separated by NUL, each one letter then its JSON body:
//! `C` PUT /v1/catalog, `U` PUT /v1/customers/cus_fuzz, `G` POST /v1/customers/cus_dev/grants,
//! `W` POST /v1/customers/cus_dev/wallet, `X` POST /v1/invoices/close, `Y` POST /v1/sync,
//! `E` POST /v1/events. After them: entitlements, invoice previews and the signed snapshot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_hub::state::{HubState, Incoming, Setup};
use tollgate_hub::store::{Changes, DeadLetterRow, Loaded, Record, Replay, Store, StoreError, StoredEvent};
use tollgate::metering::Event;
use tollgate::sync::{Policy, SyncRequest};

/// A store with nothing in it that accepts every write.
struct NullStore;

impl Store for NullStore {
    fn fence(&mut self) -> Result<i64, StoreError> {
        Ok(1)
    }
    fn claim_meta(&mut self, _key: &str, value: &str) -> Result<String, StoreError> {
        Ok(value.to_string())
    }
    fn load(&mut self, _replay: Replay, _visit: &mut dyn FnMut(Record) -> Result<(), String>) -> Result<Loaded, StoreError> {
        Ok(Loaded::default())
    }
    fn apply(&mut self, _batches: &[&Changes]) -> Result<(), StoreError> {
        Ok(())
    }
    fn events(&mut self, _source: &str, _after: i64, _limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }
    fn event_json(&mut self, _source: &str, _id: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn dead_letters(&mut self, _after: i64, _limit: u32, _customer: Option<&str>) -> Result<Vec<DeadLetterRow>, StoreError> {
        Ok(Vec::new())
    }
}

fn hub() -> Option<HubState> {
    let seed = tollgate_fuzz::json(tollgate_fuzz::LLM_SNAPSHOT)?;
    let setup = Setup {
        key: None,
        policy: Policy::default(),
        boot_id: "boot-fuzz".into(),
        seed: Some(seed),
        key_seed: [7; 32],
        max_future_ms: 300_000,
        snapshot_ttl_ms: 7 * 86_400_000,
        hash_seed: 7,
        keyring: Default::default(),
        shared: false,
        replay: Replay::FromCheckpoint,
        checkpoint_every: 0,
    };
    HubState::load(&mut NullStore, setup, tollgate_fuzz::now()).ok().map(|(state, _, _)| state)
}

/// `POST /v1/events`: a bare array or `{ "events": [...] }`, every event's shape checked first.
fn events(hub: &mut HubState, value: &Value) {
    let now = tollgate_fuzz::now();
    let (list, prefix) = match value {
        Value::Array(items) => (items, ""),
        Value::Object(map) if map.len() == 1 => match map.get("events") {
            Some(Value::Array(items)) => (items, "/events"),
            _ => return,
        },
        _ => return,
    };
    let mut items = Vec::new();
    for (i, value) in list.iter().take(16).enumerate() {
        let Ok(event) = Event::decode(value, now) else { return };
        items.push(Incoming { event, value: value.clone(), path: format!("{prefix}/{i}") });
    }
    let _ = hub.ingest(&items, now, &mut |_, _| Ok(None));
}

/// `POST /v1/sync`: the request decoded, each event on its own (a bad one is a problem).
fn sync(hub: &mut HubState, value: &Value) {
    let now = tollgate_fuzz::now();
    let Ok(request) = SyncRequest::from_value(value) else { return };
    if request.events.len() > 16 {
        return;
    }
    let decoded: Vec<_> = request.events.iter().map(|e| Event::decode(e, now)).collect();
    let _ = hub.sync(&request, &decoded, now, &mut |_, _| Ok(None));
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let Some(mut hub) = hub() else { return };
    let now = tollgate_fuzz::now();
    for part in text.split('\0').take(8) {
        let mut chars = part.chars();
        let Some(op) = chars.next() else { continue };
        let Some(body) = tollgate_fuzz::json(chars.as_str()) else { continue };
        match op {
            'C' => drop(hub.put_catalog(body, now)),
            'U' => drop(hub.put_customer("cus_fuzz", body, now)),
            'G' => drop(hub.add_grant("cus_dev", body, now)),
            'W' => drop(hub.top_up("cus_dev", &body, now)),
            'X' => drop(hub.close_invoice(&body, now)),
            'Y' => sync(&mut hub, &body),
            'E' => events(&mut hub, &body),
            _ => {}
        }
    }
    for id in ["cus_dev", "cus_acme", "cus_fuzz"] {
        let _ = hub.entitlements(id, now);
        let _ = hub.invoice_preview(id, now);
    }
    let _ = hub.signed(now);
});
