//! `tollgate rate`: a price model file, a rates file, and a quantity (with an event count) or an
//! events file, decoded and rated by the library functions the CLI calls (`Model::decode`,
//! `json::decimal_map`, `money::parse_decimal`, `json::decimal`, `Model::rate_quantity`,
//! `Model::rate_events`, `money::round_half_away`).
//!
//! Input: `model JSON \0 quantity \0 event count \0 events JSON \0 rates JSON \0 currency`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::money::{parse_decimal, plain, round_half_away};
use tollgate::pricing::{Context, DataEvent, Model};
use tollgate::Currency;

/// `rate --events`: each item a bare value or `{ "value": V, "data": {...} }` (as the CLI reads
/// it; items it would refuse are skipped here).
fn events(value: &Value) -> Vec<DataEvent> {
    let Some(items) = value.as_array() else { return Vec::new() };
    items
        .iter()
        .take(64)
        .enumerate()
        .filter_map(|(i, item)| match item {
            Value::Object(obj) => {
                let data = obj.get("data").cloned().unwrap_or(Value::Object(Default::default()));
                let v = tollgate::json::decimal(obj.get("value")?, &format!("/{i}/value")).ok()?;
                data.is_object().then_some(DataEvent { value: v, data })
            }
            other => Some(DataEvent {
                value: tollgate::json::decimal(other, &format!("/{i}")).ok()?,
                data: Value::Object(Default::default()),
            }),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let p = tollgate_fuzz::parts(text, 6);
    let Some(mut model_json) = tollgate_fuzz::json(p[0]) else { return };
    if model_json.get("type").is_none() {
        if let Some(inner) = model_json.get_mut("model") {
            model_json = inner.take();
        }
    }
    let mut problems = Vec::new();
    let Some(model) = Model::decode(&model_json, "", &mut problems) else { return };
    if !problems.is_empty() {
        return;
    }
    let rates = match tollgate_fuzz::json(p[4]) {
        Some(v) => {
            let v = v.get("rates").cloned().unwrap_or(v);
            let mut problems = Vec::new();
            tollgate::json::decimal_map(&v, "", &mut problems)
        }
        None => BTreeMap::new(),
    };
    let ctx = Context::of(&rates);
    let currency = Currency::from_code(p[5].trim()).unwrap_or(Currency::from_code("USD").expect("USD"));
    let mut ratings = Vec::new();
    if let Some(q) = parse_decimal(p[1].trim()) {
        let count = parse_decimal(p[2].trim());
        ratings.push(model.rate_quantity(q, count, ctx));
    }
    if let Some(v) = tollgate_fuzz::json(p[3]) {
        ratings.push(model.rate_events(&events(&v), ctx));
    }
    for rated in ratings.into_iter().flatten() {
        let _ = plain(rated.amount);
        let _ = round_half_away(rated.amount, currency.exponent());
    }
});
