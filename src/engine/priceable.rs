//! Refusal at the door (SPEC §13, §3.2, §5): a use that a price of the customer's subscriptions
//! could not rate — a `matrix` value with no cell and no default, a `dynamic` unit price missing
//! from the event, not a number or outside `[minPrice, maxPrice]`, a market rate the catalog
//! lacks — is refused where it enters, before anything is applied, so that nothing accepted can
//! make an invoice fail later. Prices of other models are skipped without allocating.

use alloc::format;
use alloc::string::String;
use rust_decimal::Decimal;
use serde_json::Value;

use super::Engine;
use crate::catalog::{BillableMetric, Catalog, PaymentTerm, Price, PriceTarget};
use crate::customer::{Customer, Subscription};
use crate::error::{Code, Error, Result};
use crate::json::scalar_text;
use crate::json::{child, decimal, JsonPath};
use crate::pricing::{DynamicSource, Model};
use crate::time::Timestamp;

/// Where a direct use (`consume`, no event data) points its refusals.
const DIRECT_USE: &str = "/featureKey";

/// Checks that every usage price on the metric at `metric`, in the plans of `customer`'s
/// subscriptions active at `time`, can rate a use with `data` (an event's `data`; `None` for a
/// direct use). Errors point into the event (`/data/model`), or at `/featureKey` for a direct use.
pub(super) fn check_priceable(
    catalog: &Catalog,
    customer: &Customer,
    metric: usize,
    data: Option<&Value>,
    time: Timestamp,
) -> Result<()> {
    let Some(m) = catalog.billable_metrics.get(metric) else { return Ok(()) };
    for sub in customer.subscriptions.iter().filter(|s| s.is_active(time)) {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        for price in sub.prices(plan) {
            let Some(model) = model_needing_data(sub, price) else { continue };
            if matches!(&price.target, PriceTarget::Metric(id) if *id == m.id) {
                check_model(catalog, m, model, data).map_err(|e| naming(e, &price.id))?;
            }
        }
    }
    Ok(())
}

/// True when a price of `customer`'s subscriptions active at `time` charges the metric at
/// `metric` (what makes a metered event billable for them).
pub(super) fn priced(catalog: &Catalog, customer: &Customer, metric: usize, time: Timestamp) -> bool {
    let Some(m) = catalog.billable_metrics.get(metric) else { return false };
    customer.subscriptions.iter().filter(|s| s.is_active(time)).any(|sub| {
        catalog
            .plan(&sub.plan_id)
            .is_some_and(|plan| sub.prices(plan).any(|p| matches!(&p.target, PriceTarget::Metric(id) if *id == m.id)))
    })
}

/// Checks that a negative `value` of the metric at `metric` (a credit) can be priced: every
/// usage price on it, for `customer`'s subscriptions active at `time`, must accept negative
/// quantities (`flat`, `per_unit`, `dynamic`, a matrix of those); tiered, package and percentage
/// models would fail the invoice, so the event is refused (`negative_quantity`) at `path`.
pub(super) fn check_negative(
    catalog: &Catalog,
    customer: &Customer,
    metric: usize,
    path: &str,
    time: Timestamp,
) -> Result<()> {
    let Some(m) = catalog.billable_metrics.get(metric) else { return Ok(()) };
    for sub in customer.subscriptions.iter().filter(|s| s.is_active(time)) {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        for price in sub.prices(plan).filter(|p| matches!(&p.target, PriceTarget::Metric(id) if *id == m.id)) {
            let model = sub.price_overrides.get(&price.id).unwrap_or(&price.model);
            if !takes_negative(model) {
                let message =
                    format!("a {} price does not accept a negative quantity (price {:?})", model.type_name(), price.id);
                return Err(Error::new(Code::NegativeQuantity, path, message));
            }
        }
    }
    Ok(())
}

fn takes_negative(model: &Model) -> bool {
    match model {
        Model::Flat { .. } | Model::PerUnit { .. } | Model::Dynamic { .. } => true,
        Model::Matrix { cells, default, .. } => {
            cells.values().all(takes_negative) && default.as_deref().is_none_or(takes_negative)
        }
        _ => false,
    }
}

/// The model a usage price rates `sub`'s uses by (its override, else its own) when that model
/// reads the use itself (`matrix`, `dynamic`); `None` for every other price.
fn model_needing_data<'a>(sub: &'a Subscription, price: &'a Price) -> Option<&'a Model> {
    if price.payment_term == PaymentTerm::InAdvance {
        return None; // fees only
    }
    let model = if sub.price_overrides.is_empty() {
        &price.model
    } else {
        sub.price_overrides.get(&price.id).unwrap_or(&price.model)
    };
    matches!(model, Model::Matrix { .. } | Model::Dynamic { .. }).then_some(model)
}

/// Checks one model (recursively through a matrix's chosen cell).
fn check_model(catalog: &Catalog, metric: &BillableMetric, model: &Model, data: Option<&Value>) -> Result<()> {
    match model {
        Model::Matrix { dimension, cells, default } => {
            let path = metric.group_by.get(dimension);
            let value = data.zip(path).and_then(|(d, p)| p.lookup(d)).and_then(scalar_text);
            let cell = value.as_deref().and_then(|k| cells.get(k)).or(default.as_deref());
            let Some(cell) = cell else { return Err(no_cell(dimension, path, value.as_deref(), data.is_some())) };
            check_model(catalog, metric, cell, data)
        }
        Model::Dynamic { source: DynamicSource::Rate(name), .. } if !catalog.rates.contains_key(name) => {
            let at = if data.is_some() { "" } else { DIRECT_USE };
            Err(Error::new(Code::UnknownRate, at, format!("no market rate named {name:?} in the catalog")))
        }
        Model::Dynamic { source: DynamicSource::EventProperty(path), min_price, max_price } => match data {
            Some(d) => check_event_price(path, d, *min_price, *max_price),
            None => Err(Error::new(
                Code::MissingProperty,
                DIRECT_USE,
                format!("the price reads each unit's price from the event ({path}): a direct use has none"),
            )),
        },
        _ => Ok(()),
    }
}

/// The pointer of a JSONPath inside an event: `$.a.b` → `/data/a/b`.
pub(super) fn data_pointer(path: &JsonPath) -> String {
    path.keys().iter().fold(String::from("/data"), |p, k| child(&p, k))
}

/// The refusal of a matrix with no cell for `value` and no default.
fn no_cell(dimension: &str, path: Option<&JsonPath>, value: Option<&str>, event: bool) -> Error {
    let at = match (event, path) {
        (true, Some(p)) => data_pointer(p),
        (true, None) => String::from("/data"),
        (false, _) => String::from(DIRECT_USE),
    };
    let message = match (event, value) {
        (true, Some(v)) => format!("no price for {dimension} {v:?}: the matrix has no such cell and no default"),
        (true, None) => format!("the event has no {dimension} and the matrix has no default"),
        (false, _) => format!("a direct use has no {dimension}, and the matrix pricing it has no default"),
    };
    Error::new(Code::NoPriceForDimension, at, message)
}

/// The event's own unit price at `path`: present, a decimal, within the bounds (as `dynamic`
/// rates it).
fn check_event_price(path: &JsonPath, data: &Value, min: Option<Decimal>, max: Option<Decimal>) -> Result<()> {
    let Some(raw) = path.lookup(data) else {
        let message = format!("the event has no {path}: its price needs it");
        return Err(Error::new(Code::MissingProperty, data_pointer(path), message));
    };
    let price = decimal(raw, "").map_err(|e| {
        let message = format!("{path} must be a decimal unit price: {}", e.message);
        Error::new(Code::MissingProperty, data_pointer(path), message)
    })?;
    if min.is_some_and(|lo| price < lo) || max.is_some_and(|hi| price > hi) {
        let message = format!("unit price {price} is outside the price's bounds");
        return Err(Error::new(Code::PriceOutOfBounds, data_pointer(path), message));
    }
    Ok(())
}

/// Names the price in the error's message (the path stays the input's).
fn naming(mut e: Error, price_id: &str) -> Error {
    e.message = format!("{} (price {price_id:?})", e.message);
    e
}

/// True when some plan prices the metric at `metric` by a model that reads the use itself.
pub(super) fn reads_use(catalog: &Catalog, metric: usize) -> bool {
    let Some(m) = catalog.billable_metrics.get(metric) else { return false };
    catalog.plans.iter().flat_map(|p| &p.prices).any(|price| {
        matches!(&price.target, PriceTarget::Metric(id) if *id == m.id)
            && matches!(price.model, Model::Matrix { .. } | Model::Dynamic { .. })
    })
}

impl Engine {
    /// Checks that a direct use of the access at `(c, a)` at `t` can be priced: the metric it is
    /// recorded on has no price that needs event data it lacks (see [`check_priceable`]). No
    /// scan when no plan prices the metric that way and the customer has no prices of its own.
    pub(super) fn check_direct_use(&self, c: usize, a: usize, t: Timestamp) -> Result<()> {
        let state = self.state(c)?;
        let access = state.access.get(a).ok_or_else(super::position::lost)?;
        if access.meter.is_none() {
            return Ok(()); // nothing is recorded
        }
        let Some(metric) = access.consuming_metric(t) else { return Ok(()) };
        let own_prices =
            state.customer.subscriptions.iter().any(|s| !s.price_overrides.is_empty() || !s.pinned_prices.is_empty());
        if !own_prices && !self.data_priced.get(metric).copied().unwrap_or(true) {
            return Ok(());
        }
        check_priceable(&self.catalog, &state.customer, metric, None, t)
    }
}
