//! `tollgate rate`: a price model file, a rates file, and a quantity (with an event count) or an
//! events file, decoded and rated by the functions the CLI calls (`pricing::rate_request`:
//! `model`, `rates`, `events`, `number`, `currency`, `RateInput::rate`), then
//! `money::round_half_away`.
//!
//! Input: `model JSON \0 quantity \0 event count \0 events JSON \0 rates JSON \0 currency`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::money::{plain, round_half_away, Currency};
use tollgate::pricing::rate_request::{self, RateInput};

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let p = tollgate_fuzz::parts(text, 6);
    let Some(model) = tollgate_fuzz::json(p[0]).and_then(|v| rate_request::model(&v).ok()) else { return };
    let rates = tollgate_fuzz::json(p[4]).and_then(|v| rate_request::rates(&v).ok()).unwrap_or_else(BTreeMap::new);
    let currency = rate_request::currency(p[5].trim()).unwrap_or(Currency::USD);
    let mut inputs = Vec::new();
    if let Ok(quantity) = rate_request::number(p[1].trim()) {
        let event_count = rate_request::number(p[2].trim()).ok();
        inputs.push(RateInput::Total { quantity, event_count });
    }
    if let Some(mut v) = tollgate_fuzz::json(p[3]) {
        if let Value::Array(items) = &mut v {
            items.truncate(64);
        }
        if let Ok(events) = rate_request::events(&v) {
            inputs.push(RateInput::Events(events));
        }
    }
    for rated in inputs.iter().filter_map(|input| input.rate(&model, &rates).ok()) {
        let _ = plain(rated.amount);
        let _ = round_half_away(rated.amount, currency.exponent());
    }
});
