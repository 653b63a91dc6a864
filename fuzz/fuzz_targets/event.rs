//! Usage events: `Engine::ingest` of arbitrary event JSON on the example snapshot (the package's
//! `ingest`, and what `tollgate invoice` replays). The input is JSON lines, up to 16 events, fed
//! to one engine in order (so duplicates, instant charges and limits meet each other); then the
//! running invoices of the example customers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let mut engine = tollgate_fuzz::example_engine();
    let now = tollgate_fuzz::now();
    for line in text.lines().take(16) {
        let Some(value) = tollgate_fuzz::json(line) else { continue };
        if let Ok(outcome) = engine.ingest(&value, now) {
            let _ = serde_json::to_string(&outcome);
        }
    }
    tollgate_fuzz::exercise(&mut engine, &["cus_dev".into(), "cus_acme".into(), "cus_trial".into()]);
});
