//! `tollgate quote` and the package's `quote`: a usage file (`{ metricId: quantity }`) or a
//! whole request (`{ planId, usage, eventCount? }`), decoded by `QuoteRequest::from_value` and
//! priced by `billing::quote` on every plan of both example catalogs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::billing::{quote, QuoteRequest};

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let Some(value) = tollgate_fuzz::json(text) else { return };
    for catalog in tollgate_fuzz::example_catalogs() {
        // As `Engine::quote` (the package) reads it: the request names its plan.
        if let Ok(req) = QuoteRequest::from_value(&value, None) {
            if let Ok(q) = quote(catalog, &req) {
                let _ = serde_json::to_string(&q);
            }
        }
        // As the CLI reads it: `--plan` given, the file a bare usage map or a request.
        for plan in &catalog.plans {
            if let Ok(req) = QuoteRequest::from_value(&value, Some(&plan.id)) {
                if let Ok(q) = quote(catalog, &req) {
                    let _ = serde_json::to_string(&q);
                }
            }
        }
    }
});
