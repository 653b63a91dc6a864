//! Snapshots: `Engine::from_snapshot` (a fresh engine) and `Engine::apply_snapshot` on an engine
//! loaded from examples/llm-snapshot.json (an update keeping usage so far). An engine that takes
//! the snapshot is then asked a few checks and running invoices.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::engine::{Engine, Options};

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let Some(value) = tollgate_fuzz::json(text) else { return };
    let mut ids: Vec<String> = value
        .get("customers")
        .and_then(|c| c.as_array())
        .map(|list| list.iter().filter_map(|c| c.get("id")?.as_str().map(String::from)).collect())
        .unwrap_or_default();
    ids.push("cus_dev".into());
    if let Ok(mut engine) = Engine::from_snapshot(&value, Options::default()) {
        tollgate_fuzz::exercise(&mut engine, &ids);
    }
    let mut engine = tollgate_fuzz::example_engine();
    // Some usage first, so that the update has usage, balances and a wallet debit to carry over.
    let now = tollgate_fuzz::now();
    let _ = engine.consume("cus_dev", "input-tokens", 1500.into(), Some("seed-1"), now);
    let _ = engine.ingest(
        &serde_json::json!({ "id": "evt_seed", "source": "fuzz", "type": "llm.completion", "subject": "cus_acme",
            "time": "2026-11-28T09:00:00Z", "data": { "input_tokens": 1000, "output_tokens": 10, "model": "large" } }),
        now,
    );
    if engine.apply_snapshot(&value).is_ok() {
        tollgate_fuzz::exercise(&mut engine, &ids);
    }
});
