//! The `dynamic` model: each unit priced from the event itself or from a market rate.

use alloc::format;
use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::{Context, DynamicSource, EventInput, Rating};
use crate::error::{Code, Error, Result};
use crate::json::{decimal, index};
use crate::money::{mul, sum};

/// A market rate clamped to `[min, max]` (absent bounds are open).
pub fn market_price(name: &str, min: Option<Decimal>, max: Option<Decimal>, ctx: Context<'_>) -> Result<Decimal> {
    let rate =
        ctx.rate(name).ok_or_else(|| Error::new(Code::UnknownRate, "", format!("no market rate named {name:?}")))?;
    Ok(clamp(rate, min, max))
}

fn clamp(v: Decimal, min: Option<Decimal>, max: Option<Decimal>) -> Decimal {
    let v = min.map_or(v, |lo| v.max(lo));
    max.map_or(v, |hi| v.min(hi))
}

/// Σ value × unit price over the events. An event's own price outside the bounds rejects it.
pub fn rate_events<E: EventInput>(
    source: &DynamicSource,
    min: Option<Decimal>,
    max: Option<Decimal>,
    events: &[E],
    ctx: Context<'_>,
) -> Result<Rating> {
    match source {
        DynamicSource::Rate(name) => {
            let price = market_price(name, min, max, ctx)?;
            let amount = mul(sum(events.iter().map(EventInput::value))?, price)?;
            Ok(Rating { amount, unit_price: Some(price), tiers: Vec::new() })
        }
        DynamicSource::EventProperty(path) => {
            let mut costs = Vec::with_capacity(events.len());
            for (i, e) in events.iter().enumerate() {
                let at = index("", i);
                let ptr = path.keys().iter().fold(format!("{at}/data"), |p, k| crate::json::child(&p, k));
                let raw = path.lookup(e.data()).ok_or_else(|| {
                    Error::new(Code::MissingProperty, ptr.as_str(), format!("the event has no {path}"))
                })?;
                let price =
                    decimal(raw, &ptr).map_err(|err| Error::new(Code::MissingProperty, err.path, err.message))?;
                if min.is_some_and(|lo| price < lo) || max.is_some_and(|hi| price > hi) {
                    return Err(Error::new(
                        Code::PriceOutOfBounds,
                        ptr,
                        format!("unit price {price} is outside the price's bounds"),
                    ));
                }
                costs.push(mul(e.value(), price).map_err(|err| Error::from(err).under(&at))?);
            }
            Ok(Rating { amount: sum(costs)?, unit_price: None, tiers: Vec::new() })
        }
    }
}
