//! The `matrix` model: one model per value of a dimension (a `groupBy` of the metric).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{Context, EventInput, Model, Rating};
use crate::error::{Code, Error, Result};
use crate::json::{child, index, scalar_text};
use crate::money::add;

fn cell<'m>(
    cells: &'m BTreeMap<String, Model>,
    default: Option<&'m Model>,
    key: Option<&str>,
    path: &str,
) -> Result<&'m Model> {
    key.and_then(|k| cells.get(k)).or(default).ok_or_else(|| {
        let shown = key.map_or_else(|| String::from("(missing)"), |k| format!("{k:?}"));
        Error::new(Code::NoPriceForDimension, path, format!("no price for dimension value {shown} and no default"))
    })
}

/// Groups the events by dimension value (keeping their order) and rates each group by its cell.
pub fn rate_events<E: EventInput>(
    dimension: &str,
    cells: &BTreeMap<String, Model>,
    default: Option<&Model>,
    events: &[E],
    ctx: Context<'_>,
) -> Result<Rating> {
    // Each group keeps the original index of its events, to point errors at the right one.
    let mut groups: BTreeMap<Option<String>, (Vec<usize>, Vec<&E>)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let key = e.dimension(dimension).and_then(scalar_text);
        let (indexes, members) = groups.entry(key).or_default();
        indexes.push(i);
        members.push(e);
    }
    let mut amount = Decimal::ZERO;
    for (key, (indexes, members)) in &groups {
        let Some(&first) = indexes.first() else { continue }; // a group has a member from its start
        let at = child(&format!("{}/data", index("", first)), dimension);
        let model = cell(cells, default, key.as_deref(), &at)?;
        let rated = model.rate_cell_events(members, ctx).map_err(|e| renumber(e, indexes))?;
        amount = add(amount, rated.amount)?;
    }
    Ok(Rating { amount, unit_price: None, tiers: Vec::new() })
}

/// Maps an error's leading `/j` (index within a group) back to the event's own index.
fn renumber(mut e: Error, indexes: &[usize]) -> Error {
    let rest = e.path.strip_prefix('/').unwrap_or("");
    let (head, tail) = rest.split_once('/').map_or((rest, ""), |(h, t)| (h, t));
    if let Some(&original) = head.parse::<usize>().ok().and_then(|j| indexes.get(j)) {
        e.path = if tail.is_empty() { index("", original) } else { format!("{}/{tail}", index("", original)) };
    }
    e
}

/// Rates quantities per dimension value by their cells.
pub fn rate_groups(
    cells: &BTreeMap<String, Model>,
    default: Option<&Model>,
    groups: &BTreeMap<String, Decimal>,
    event_count: Option<Decimal>,
    ctx: Context<'_>,
) -> Result<Rating> {
    let mut amount = Decimal::ZERO;
    for (key, q) in groups {
        let model = cell(cells, default, Some(key), &child("", key))?;
        let rated = model.rate_quantity(*q, event_count, ctx).map_err(|e| e.under(&child("", key)))?;
        amount = add(amount, rated.amount)?;
    }
    Ok(Rating { amount, unit_price: None, tiers: Vec::new() })
}

impl<E: EventInput> EventInput for &E {
    fn value(&self) -> Decimal {
        (*self).value()
    }
    fn data(&self) -> &Value {
        (*self).data()
    }
    fn dimension(&self, name: &str) -> Option<&Value> {
        (*self).dimension(name)
    }
}
