//! Which metrics an event feeds, with what value, under which group.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use super::Event;
use crate::catalog::{Aggregation, BillableMetric, Filter};
use crate::error::{Code, Error, Result};
use crate::json::{child, decimal, scalar_text};

/// What one event contributes to one metric.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Observation {
    /// A number (every aggregation but UNIQUE_COUNT; COUNT ignores it).
    Number(Decimal),
    /// A distinct-able value (UNIQUE_COUNT).
    Key(String),
}

/// The values of a metric's `groupBy` dimensions, in the metric's key order (`None` = absent).
pub type GroupKey = Vec<Option<String>>;

/// True when the event's type is the metric's and every filter condition holds.
pub fn matches(metric: &BillableMetric, event: &Event) -> bool {
    metric.event_type == event.kind && metric.filter.iter().all(|f| filter_holds(f, &event.data))
}

fn filter_holds(filter: &Filter, data: &Value) -> bool {
    let Some(found) = filter.path.lookup(data) else { return false };
    filter.allowed.iter().any(|a| same_scalar(a, found))
}

/// Equality of scalars where numbers compare by value (`1` = `1.0` = `"1"` is not: types matter
/// except between numbers).
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (decimal(a, ""), decimal(b, "")) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        _ => a == b,
    }
}

/// The event's observation for `metric`, or an error naming the missing or non-numeric property.
pub fn observe(metric: &BillableMetric, event: &Event) -> Result<Observation> {
    let Some(path) = &metric.value_property else { return Ok(Observation::Number(Decimal::ONE)) };
    let pointer = path.keys().iter().fold(String::from("/data"), |p, k| child(&p, k));
    let found = path.lookup(&event.data).filter(|v| !v.is_null()).ok_or_else(|| {
        Error::new(
            Code::MissingProperty,
            pointer.as_str(),
            format!("metric {:?} needs {path} in the event's data", metric.id),
        )
    })?;
    if metric.aggregation == Aggregation::UniqueCount {
        return scalar_text(found).map(Observation::Key).ok_or_else(|| {
            Error::new(Code::InvalidType, pointer.as_str(), format!("{path} must be a string, number or boolean"))
        });
    }
    decimal(found, &pointer).map(Observation::Number).map_err(|e| {
        Error::new(
            Code::MissingProperty,
            e.path,
            format!("metric {:?} needs a number at {path}: {}", metric.id, e.message),
        )
    })
}

/// The event's group under `metric`'s `groupBy`.
pub fn group_of(metric: &BillableMetric, event: &Event) -> GroupKey {
    metric.group_by.values().map(|p| p.lookup(&event.data).and_then(scalar_text)).collect()
}
