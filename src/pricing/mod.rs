//! Price models (SPEC §3.2): from a quantity, or from events, to an unrounded amount with its
//! breakdown. Rounding is not done here; it happens once per invoice line (`billing`).

mod dynamic;
mod matrix;
mod model;
mod percentage;
pub mod rate_request;
mod tiers;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

pub use dynamic::market_price;
pub use model::{DynamicSource, Model, PackageRounding, Percentage, Tier};
pub use percentage::PercentageState;

use crate::error::{Code, Error, Result};
use crate::json::index;
use crate::money::{add, div, mul, sub, sum};

/// What one tier contributed to an amount.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TierAmount {
    /// The tier's upper bound (`None` = open).
    pub up_to: Option<Decimal>,
    /// Units of the quantity inside this tier.
    pub quantity: Decimal,
    /// Their amount, flat price included, unrounded.
    pub amount: Decimal,
}

/// The unrounded result of a model, with its breakdown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rating {
    /// Exact amount, not rounded.
    pub amount: Decimal,
    /// The single unit price that applied, where there is one.
    pub unit_price: Option<Decimal>,
    /// Per-tier pieces for tiered models.
    pub tiers: Vec<TierAmount>,
}

/// One event as a model sees it: its metered value and its data.
pub trait EventInput {
    /// The event's quantity for this price.
    fn value(&self) -> Decimal;
    /// The event's data, where `dynamic` reads its `eventProperty`.
    fn data(&self) -> &Value;
    /// The event's value of a matrix dimension (a `groupBy` name), if it has one.
    fn dimension(&self, name: &str) -> Option<&Value>;
}

/// An event given as a value and a data object, whose dimensions are the data's own keys
/// (`{"value": 3, "data": {"model": "large"}}`): the shape `tollgate rate --events` reads.
#[derive(Clone, Debug, PartialEq)]
pub struct DataEvent {
    /// The event's quantity.
    pub value: Decimal,
    /// Its data: `dynamic` reads its `eventProperty` here, `matrix` its dimension by name.
    pub data: Value,
}

impl EventInput for DataEvent {
    fn value(&self) -> Decimal {
        self.value
    }
    fn data(&self) -> &Value {
        &self.data
    }
    fn dimension(&self, name: &str) -> Option<&Value> {
        self.data.get(name)
    }
}

/// What rating may need beyond the model: the catalog's market rates, and when the use
/// happened (a rate with a history prices a use at the rate in force at its time).
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Market rates by name in force now (`rates` of the catalog).
    pub rates: &'a BTreeMap<String, Decimal>,
    /// Rates with effective times, oldest first.
    pub history: Option<&'a BTreeMap<String, Vec<(crate::time::Timestamp, Decimal)>>>,
    /// When the use happened (`None`: now).
    pub at: Option<crate::time::Timestamp>,
}

impl<'a> Context<'a> {
    /// Plain rates, without history.
    pub fn of(rates: &'a BTreeMap<String, Decimal>) -> Context<'a> {
        Context { rates, history: None, at: None }
    }

    /// The rate `name` in force at this context's time: the latest entry of its history that
    /// took effect by then (the first entry before that), else the current rate.
    pub fn rate(&self, name: &str) -> Option<Decimal> {
        let entries = self.at.and_then(|_| self.history?.get(name));
        match (entries, self.at) {
            (Some(list), Some(t)) => {
                let taken = list.iter().take_while(|(from, _)| *from <= t).last().or(list.first());
                taken.map(|(_, r)| *r)
            }
            _ => self.rates.get(name).copied(),
        }
    }
}

fn negative(path: &str) -> Error {
    Error::new(Code::NegativeQuantity, path, "this price model does not accept a negative quantity")
}

impl Model {
    /// Rates a period's total quantity `q`; `event_count` feeds `percentage`'s fixed fee.
    /// Per-event models that cannot be priced from totals fail with `events_required`.
    pub fn rate_quantity(&self, q: Decimal, event_count: Option<Decimal>, ctx: Context<'_>) -> Result<Rating> {
        let rejects_negative =
            !matches!(self, Model::Flat { .. } | Model::PerUnit { .. } | Model::Dynamic { .. } | Model::Matrix { .. });
        if rejects_negative && q < Decimal::ZERO {
            return Err(negative(""));
        }
        let simple = |amount: Decimal, unit_price: Option<Decimal>| Rating { amount, unit_price, tiers: Vec::new() };
        match self {
            Model::Flat { amount } => Ok(simple(mul(*amount, q)?, Some(*amount))),
            Model::PerUnit { unit_price } => Ok(simple(mul(q, *unit_price)?, Some(*unit_price))),
            Model::Package { package_size, package_price, free_units, rounding } => {
                // Whole packages by exact remainder, not by a (28-digit) quotient: a tiny excess
                // over a whole package still starts a new one.
                let billable = sub(q, *free_units)?.max(Decimal::ZERO);
                let rest = billable
                    .checked_rem(*package_size)
                    .ok_or_else(|| Error::new(Code::Overflow, "", "package remainder"))?;
                let whole = div(sub(billable, rest)?, *package_size)?.round();
                let packages = match rounding {
                    PackageRounding::Up if !rest.is_zero() => add(whole, Decimal::ONE)?,
                    _ => whole,
                };
                Ok(simple(mul(packages, *package_price)?, Some(*package_price)))
            }
            Model::Graduated { tiers } | Model::GraduatedPercentage { tiers } => tiers::graduated(tiers, q),
            Model::Volume { tiers } => tiers::volume(tiers, q),
            Model::Percentage(p) => Ok(simple(p.rate_totals(q, event_count.unwrap_or_default())?, None)),
            Model::Dynamic { source, min_price, max_price } => match source {
                DynamicSource::Rate(name) => {
                    let price = market_price(name, *min_price, *max_price, ctx)?;
                    Ok(simple(mul(q, price)?, Some(price)))
                }
                DynamicSource::EventProperty(_) => Err(Error::new(
                    Code::EventsRequired,
                    "",
                    "a dynamic price read from events needs events, not a total",
                )),
            },
            Model::Matrix { default, .. } => match default {
                Some(model) => model.rate_quantity(q, event_count, ctx),
                None => Err(Error::new(
                    Code::NoPriceForDimension,
                    "",
                    "a matrix priced from a total needs a default cell (or quantities per dimension value)",
                )),
            },
        }
    }

    /// Rates a period's events in order. Models that price totals rate Σ values; `percentage`
    /// and `dynamic` price each event; `matrix` prices each dimension value's events by its cell.
    /// Error paths point at the event (`/3`, `/3/data/unit_price`).
    pub fn rate_events<E: EventInput>(&self, events: &[E], ctx: Context<'_>) -> Result<Rating> {
        match self {
            Model::Matrix { dimension, cells, default } => {
                matrix::rate_events(dimension, cells, default.as_deref(), events, ctx)
            }
            _ => self.rate_cell_events(events, ctx),
        }
    }

    /// [`Model::rate_events`] for every model but `matrix` (cells are never matrices).
    pub(super) fn rate_cell_events<E: EventInput>(&self, events: &[E], ctx: Context<'_>) -> Result<Rating> {
        match self {
            Model::Percentage(p) => {
                let mut state = PercentageState::default();
                let costs = events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| state.charge(p, e.value()).map_err(|err| err.under(&index("", i))));
                let amount = sum(costs.collect::<Result<Vec<_>>>()?)?;
                Ok(Rating { amount, unit_price: None, tiers: Vec::new() })
            }
            Model::Dynamic { source, min_price, max_price } => {
                dynamic::rate_events(source, *min_price, *max_price, events, ctx)
            }
            Model::Matrix { .. } => Err(Error::new(Code::NotAllowedHere, "", "a matrix cell cannot be another matrix")),
            _ => {
                let q = sum(events.iter().map(EventInput::value))?;
                let count = Decimal::from(events.len());
                self.rate_quantity(q, Some(count), ctx)
            }
        }
    }

    /// Rates quantities already split by a matrix dimension (`value → quantity`), e.g. a quote's
    /// usage per model name. Models other than `matrix` rate the sum.
    pub fn rate_groups(
        &self,
        groups: &BTreeMap<String, Decimal>,
        event_count: Option<Decimal>,
        ctx: Context<'_>,
    ) -> Result<Rating> {
        match self {
            Model::Matrix { cells, default, .. } => {
                matrix::rate_groups(cells, default.as_deref(), groups, event_count, ctx)
            }
            _ => self.rate_quantity(sum(groups.values().copied())?, event_count, ctx),
        }
    }
}
