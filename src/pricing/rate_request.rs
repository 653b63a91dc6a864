//! The request of `tollgate rate`, decoded: a price model (bare, or inside a price object), market
//! rates, and either a period's total (with an optional event count) or a list of events. The
//! command line reads the files and passes their JSON here; the `rate` fuzz target calls the same
//! functions. Each function fails with the first problem, its path inside that one input.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{Context, DataEvent, Model, Rating};
use crate::error::{Code, Error, Result};
use crate::json::{decimal, decimal_map};
use crate::money::{parse_decimal, Currency};

/// What a model is applied to.
#[derive(Clone, Debug, PartialEq)]
pub enum RateInput {
    /// A period's total quantity; the event count feeds `percentage`'s fixed fee.
    Total {
        /// The total quantity.
        quantity: Decimal,
        /// How many events made it, if known.
        event_count: Option<Decimal>,
    },
    /// Events one by one (each with its data).
    Events(Vec<DataEvent>),
}

impl RateInput {
    /// Applies `model` at the given market rates: the exact, unrounded amount.
    pub fn rate(&self, model: &Model, rates: &BTreeMap<String, Decimal>) -> Result<Rating> {
        let ctx = Context::of(rates);
        match self {
            RateInput::Total { quantity, event_count } => model.rate_quantity(*quantity, *event_count, ctx),
            RateInput::Events(events) => model.rate_events(events, ctx),
        }
    }
}

/// A price model: the object itself (`{"type": …}`), or a price object that carries it under
/// `model` (`{"id": …, "model": {…}}`).
pub fn model(value: &Value) -> Result<Model> {
    let inner = match value.get("type") {
        None => value.get("model").unwrap_or(value),
        Some(_) => value,
    };
    let mut problems = Vec::new();
    let model = Model::decode(inner, "", &mut problems);
    match (model, problems.into_iter().next()) {
        (Some(m), None) => Ok(m),
        (_, Some(first)) => Err(first),
        (None, None) => Err(Error::new(Code::InvalidType, "", "expected a price model object")),
    }
}

/// Market rates by name (`{"gpu-spot": "3.50"}`), or the same map under `rates`.
pub fn rates(value: &Value) -> Result<BTreeMap<String, Decimal>> {
    let (map, prefix) = match value.get("rates") {
        Some(inner) => (inner, "/rates"),
        None => (value, ""),
    };
    let mut problems = Vec::new();
    let rates = decimal_map(map, prefix, &mut problems);
    problems.into_iter().next().map_or(Ok(rates), Err)
}

/// Events: a JSON array whose items are bare values (`120`, `"0.5"`) or
/// `{"value": V, "data": {…}}`; `data` defaults to `{}`.
pub fn events(value: &Value) -> Result<Vec<DataEvent>> {
    let items = value.as_array().ok_or_else(|| Error::new(Code::InvalidType, "", "events must be a JSON array"))?;
    items.iter().enumerate().map(|(i, item)| event(item, &format!("/{i}"))).collect()
}

fn event(item: &Value, at: &str) -> Result<DataEvent> {
    let Value::Object(obj) = item else {
        return Ok(DataEvent { value: decimal(item, at)?, data: Value::Object(Map::new()) });
    };
    if let Some(k) = obj.keys().find(|k| *k != "value" && *k != "data") {
        return Err(Error::new(Code::UnknownField, format!("{at}/{k}"), format!("unknown field {k:?}")));
    }
    let value = obj
        .get("value")
        .ok_or_else(|| Error::new(Code::MissingField, format!("{at}/value"), "\"value\" is required"))?;
    let data = obj.get("data").cloned().unwrap_or(Value::Object(Map::new()));
    if !data.is_object() {
        return Err(Error::new(Code::InvalidType, format!("{at}/data"), "data must be an object"));
    }
    Ok(DataEvent { value: decimal(value, &format!("{at}/value"))?, data })
}

/// A decimal given as text (a quantity or an event count): plain (`-2500`, `0.5`) or scientific
/// (`1e6`); `invalid_decimal` at path `""` otherwise.
pub fn number(text: &str) -> Result<Decimal> {
    parse_decimal(text).ok_or_else(|| {
        Error::new(Code::InvalidDecimal, "", format!("{text:?} is not a decimal within ±7.9e28 and 28 places"))
    })
}

/// The currency that decides the rounding: an upper-case ISO-4217 code.
pub fn currency(code: &str) -> Result<Currency> {
    Currency::from_code(code)
        .ok_or_else(|| Error::new(Code::UnknownCurrency, "", format!("{code:?} is not an ISO-4217 currency code")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn v(text: &str) -> Value {
        parse(text).expect("test JSON")
    }

    #[test]
    fn a_price_object_carries_its_model() {
        let bare = model(&v(r#"{"type": "per_unit", "unitPrice": "2"}"#)).expect("bare");
        let wrapped = model(&v(r#"{"id": "p", "model": {"type": "per_unit", "unitPrice": "2"}}"#)).expect("wrapped");
        assert_eq!(bare, wrapped);
        let e = model(&v(r#"{"type": "package", "packageSize": "0", "packagePrice": "2"}"#)).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (Code::InvalidPackageSize, "/packageSize"));
    }

    #[test]
    fn events_name_the_offending_item() {
        let list = events(&v(r#"[1, "2.5", {"value": 3, "data": {"m": "x"}}]"#)).expect("events");
        assert_eq!(list.len(), 3);
        assert_eq!(list[2].data, v(r#"{"m": "x"}"#));
        let e = events(&v(r#"[1, {"value": 2, "extra": 1}]"#)).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (Code::UnknownField, "/1/extra"));
        let e = events(&v(r#"[{"data": {}}]"#)).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (Code::MissingField, "/0/value"));
        let e = events(&v(r#"[{"value": 1, "data": 7}]"#)).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (Code::InvalidType, "/0/data"));
        assert_eq!(events(&v(r#"{"value": 1}"#)).unwrap_err().code, Code::InvalidType);
    }

    #[test]
    fn rates_may_sit_under_rates() {
        let a = rates(&v(r#"{"gpu-spot": "3.5"}"#)).expect("flat");
        assert_eq!(a, rates(&v(r#"{"rates": {"gpu-spot": "3.5"}}"#)).expect("nested"));
        assert_eq!(rates(&v(r#"{"rates": {"x": "no"}}"#)).unwrap_err().path, "/rates/x");
    }

    #[test]
    fn a_negative_total_is_a_credit_per_unit() {
        // −2500 × 0.002 = −5
        let m = model(&v(r#"{"type": "per_unit", "unitPrice": "0.002"}"#)).expect("model");
        let input = RateInput::Total { quantity: number("-2500").expect("number"), event_count: None };
        assert_eq!(input.rate(&m, &BTreeMap::new()).expect("rated").amount, Decimal::new(-5, 0));
        assert_eq!(number("ten").unwrap_err().code, Code::InvalidDecimal);
        assert_eq!(currency("usd").unwrap_err().code, Code::UnknownCurrency);
    }
}
