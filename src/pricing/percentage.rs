//! The `percentage` model: a share of each event's value, with a fixed fee per paying event,
//! a per-event floor and cap, and free allowances (first N events, first X of value).

use rust_decimal::Decimal;

use super::Percentage;
use crate::error::{Code, Error, Result};
use crate::money::{add, mul, sub};

/// Running state over a period's events, so a live charge of event n can be computed without
/// the events before it.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PercentageState {
    /// Events seen so far.
    pub events: Decimal,
    /// Cumulative value seen so far.
    pub cumulative: Decimal,
}

impl PercentageState {
    /// The cost of the next event of value `v`, and the state after it.
    ///
    /// An event is free while every allowance that is set lasts; the event that crosses
    /// `freeAmount` pays for its value above it; a paying event costs
    /// clamp(rate × paid value + fixedFee, minPerEvent, maxPerEvent).
    pub fn charge(&mut self, p: &Percentage, v: Decimal) -> Result<Decimal> {
        if v < Decimal::ZERO {
            return Err(Error::new(Code::NegativeQuantity, "", "a percentage price does not accept a negative value"));
        }
        let by_events = p.free_events > Decimal::ZERO;
        let by_amount = p.free_amount > Decimal::ZERO;
        let within_events = !by_events || self.events < p.free_events;
        let remaining = sub(p.free_amount, self.cumulative)?.max(Decimal::ZERO);
        let within_amount = !by_amount || remaining > Decimal::ZERO;
        let covered = (by_events || by_amount) && within_events && within_amount;
        let paid = match (covered, by_amount) {
            (false, _) => Some(v),
            (true, false) => None,
            (true, true) if v <= remaining => None,
            (true, true) => Some(sub(v, remaining)?),
        };
        self.events = add(self.events, Decimal::ONE)?;
        self.cumulative = add(self.cumulative, v)?;
        let Some(paid) = paid else {
            return Ok(Decimal::ZERO);
        };
        let mut cost = add(mul(p.rate, paid)?, p.fixed_fee)?;
        if let Some(lo) = p.min_per_event {
            cost = cost.max(lo);
        }
        if let Some(hi) = p.max_per_event {
            cost = cost.min(hi);
        }
        Ok(cost)
    }
}

impl Percentage {
    /// From totals only: rate × max(0, q − freeAmount) + fixedFee × max(0, events − freeEvents).
    /// Per-event floors and caps need events and do not apply here.
    pub fn rate_totals(&self, q: Decimal, event_count: Decimal) -> Result<Decimal> {
        let value = sub(q, self.free_amount)?.max(Decimal::ZERO);
        let paying = sub(event_count, self.free_events)?.max(Decimal::ZERO);
        Ok(add(mul(self.rate, value)?, mul(self.fixed_fee, paying)?)?)
    }
}
