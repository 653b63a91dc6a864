//! `consume` with an arbitrary quantity text (the package's `consume(customer, key, "1.5")`):
//! the first byte picks the customer, the feature, an idempotency id and a time; the rest is the
//! quantity, parsed as the wasm layer does (`money::parse_decimal`) and as JSON would carry it
//! (`json::decimal`). Each quantity is consumed by id, repeated, and through a handle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::time::Timestamp;

const CUSTOMERS: [&str; 4] = ["cus_dev", "cus_acme", "cus_trial", "cus_nobody"];
const KEYS: [&str; 4] = ["input-tokens", "priority-queue", "sla", "nope"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some(quantity) = tollgate_fuzz::text(rest) else { return };
    let customer = CUSTOMERS[usize::from(selector & 3)];
    let key = KEYS[usize::from((selector >> 2) & 3)];
    let id = if selector & 16 != 0 { Some("req-1") } else { None };
    // Bit 5: a time at either end of what the wasm layer accepts for `now` (JS's ±8.64e15 ms).
    let now = if selector & 32 != 0 {
        Timestamp(if selector & 64 != 0 { 8_640_000_000_000_000 } else { -8_640_000_000_000_000 })
    } else {
        tollgate_fuzz::now()
    };
    let mut engine = tollgate_fuzz::example_engine();
    let mut amounts = Vec::new();
    amounts.extend(tollgate::money::parse_decimal(quantity));
    if let Some(v) = tollgate_fuzz::json(quantity) {
        amounts.extend(tollgate::json::decimal(&v, "/quantity").ok());
    }
    for n in amounts {
        let _ = engine.consume(customer, key, n, id, now);
        let _ = engine.consume(customer, key, n, id, now);
        if let Some(h) = engine.handle(customer, key) {
            if let Ok(verdict) = engine.consume_handle(h, n, now) {
                let _ = engine.decision(h, verdict, now);
            }
            if let Ok(verdict) = engine.check_handle(h, now) {
                let _ = engine.decision(h, verdict, now);
            }
        }
        let _ = engine.check(customer, key, now);
        let _ = engine.invoice_preview(customer, now);
    }
});
