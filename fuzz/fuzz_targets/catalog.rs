//! Catalog JSON: `tollgate::validate` (the CLI's `validate`, the package's `validateCatalog`) and
//! `Catalog::from_json` (what loads a catalog); a catalog that loads is then quoted on every plan,
//! so odd but valid price models reach the pricing code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::billing::{quote, QuoteRequest};
use tollgate::Catalog;

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let problems = tollgate::validate(text);
    for p in &problems {
        let _ = p.to_string();
    }
    let Ok(catalog) = Catalog::from_json(text) else { return };
    for plan in catalog.plans.iter().take(4) {
        for q in ["0", "1", "1234.5", "99999999999"] {
            let usage: serde_json::Map<String, serde_json::Value> =
                catalog.billable_metrics.iter().map(|m| (m.id.clone(), serde_json::Value::String(q.into()))).collect();
            let request = serde_json::json!({ "planId": plan.id, "usage": usage, "eventCount": 3 });
            if let Ok(req) = QuoteRequest::from_value(&request, None) {
                if let Ok(quoted) = quote(&catalog, &req) {
                    let _ = serde_json::to_string(&quoted);
                }
            }
        }
    }
});
