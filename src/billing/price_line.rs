//! Pricing one price of a plan into one line: fees (with proration), usage (allowance, clamp,
//! model), each rounded once. Shared by quotes and invoices.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use rust_decimal::Decimal;

use super::line::{Line, LineType, TierLine};
use crate::catalog::Price;
use crate::error::Result;
use crate::money::{div, mul, round_half_away, sub, sum, Currency};
use crate::pricing::{Context, Model, Rating};

/// Usage of one metric: a total, or quantities per value of a matrix dimension.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricUsage {
    /// The period's quantity.
    Total(Decimal),
    /// Quantity per dimension value (`{"small": 1000, "large": 20}`).
    Groups(BTreeMap<String, Decimal>),
}

/// Clamps a billed quantity to the price's minimum and maximum.
pub fn clamp_quantity(price: &Price, q: Decimal) -> Decimal {
    let q = price.minimum_quantity.map_or(q, |lo| q.max(lo));
    price.maximum_quantity.map_or(q, |hi| q.min(hi))
}

/// The line's text: the price's own name, else the fee's or metric's.
pub fn description(price: &Price, target_name: &str) -> String {
    price.name.clone().unwrap_or_else(|| target_name.to_string())
}

/// The share of a period a fee is charged for: `part / whole` (e.g. active ms / period ms),
/// kept as a fraction so that the amount is multiplied first and divided once, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Numerator.
    pub part: Decimal,
    /// Denominator (> 0).
    pub whole: Decimal,
}

impl Share {
    /// The whole period.
    pub const FULL: Share = Share { part: Decimal::ONE, whole: Decimal::ONE };

    /// True when nothing is charged.
    pub fn is_zero(self) -> bool {
        self.part.is_zero()
    }
}

/// A fee line: the fee's quantity (clamped) priced by `model`, for `share` of the period
/// (all of it unless a subscription starts or ends inside it).
pub fn fee_line(
    price: &Price,
    model: &Model,
    name: &str,
    share: Share,
    currency: Currency,
    ctx: Context<'_>,
) -> Result<Line> {
    let q = clamp_quantity(price, price.quantity);
    let mut rated = model.rate_quantity(q, None, ctx)?;
    if share != Share::FULL {
        rated.amount = div(mul(rated.amount, share.part)?, share.whole)?;
    }
    let description = description(price, name);
    priced_line(Priced {
        kind: LineType::Fee,
        price,
        description,
        quantity: q,
        metered: price.quantity,
        rated,
        currency,
    })
}

/// A usage price about to be priced: its model (overridden or not), the allowance its
/// `grantDiscount` takes off, and the period's event count (for `percentage` fixed fees).
pub struct UsageLine<'a> {
    /// The price.
    pub price: &'a Price,
    /// The model to apply (a subscription's override or the price's own).
    pub model: &'a Model,
    /// The metric's name, for the description.
    pub name: &'a str,
    /// Units made free by grants (0 without `grantDiscount`).
    pub allowance: Decimal,
    /// Number of events, if known.
    pub events: Option<Decimal>,
}

impl UsageLine<'_> {
    /// The line for `usage`: allowance off, min/max clamp, model, rounding.
    pub fn priced(&self, usage: Option<&MetricUsage>, currency: Currency, ctx: Context<'_>) -> Result<Line> {
        let (price, model) = (self.price, self.model);
        let is_matrix = matches!(model, Model::Matrix { .. });
        let (metered, rated, billed) = match usage {
            Some(MetricUsage::Groups(groups)) if is_matrix => {
                let metered = sum(groups.values().copied())?;
                let groups = take_allowance(groups, self.allowance)?;
                let billed = sum(groups.values().copied())?;
                (metered, model.rate_groups(&groups, self.events, ctx)?, billed)
            }
            other => {
                let metered = match other {
                    Some(MetricUsage::Total(q)) => *q,
                    Some(MetricUsage::Groups(g)) => sum(g.values().copied())?,
                    None => Decimal::ZERO,
                };
                let billed = clamp_quantity(price, discounted(metered, self.allowance)?);
                // Nothing to bill prices to zero even where a total could not be priced (events
                // needed, a matrix without a default).
                let rated = if billed.is_zero() && (model.is_per_event() || is_matrix) {
                    Default::default()
                } else {
                    model.rate_quantity(billed, self.events, ctx)?
                };
                (metered, rated, billed)
            }
        };
        let description = description(price, self.name);
        priced_line(Priced { kind: LineType::Usage, price, description, quantity: billed, metered, rated, currency })
    }
}

/// Usage left after an allowance: max(0, q − allowance) for q ≥ 0; credits pass unchanged.
pub fn discounted(q: Decimal, allowance: Decimal) -> Result<Decimal> {
    if q <= Decimal::ZERO {
        return Ok(q);
    }
    Ok(sub(q, allowance)?.max(Decimal::ZERO))
}

/// Takes an allowance off per-dimension quantities, in the order of the dimension values.
fn take_allowance(groups: &BTreeMap<String, Decimal>, mut allowance: Decimal) -> Result<BTreeMap<String, Decimal>> {
    let mut out = BTreeMap::new();
    for (k, q) in groups {
        let left = discounted(*q, allowance)?;
        allowance = sub(allowance, sub(*q, left)?)?.max(Decimal::ZERO);
        out.insert(k.clone(), left);
    }
    Ok(out)
}

/// What a line is made of: a price's rating of a quantity (`metered` before any allowance).
pub struct Priced<'a> {
    /// Fee or usage.
    pub kind: LineType,
    /// The price rated.
    pub price: &'a Price,
    /// The line's text.
    pub description: String,
    /// The quantity billed.
    pub quantity: Decimal,
    /// The quantity metered.
    pub metered: Decimal,
    /// The unrounded rating.
    pub rated: Rating,
    /// The currency the amount is rounded in.
    pub currency: Currency,
}

/// A line from a rating, rounded once.
pub fn priced_line(p: Priced<'_>) -> Result<Line> {
    let Priced { kind, price, description, quantity, metered, rated, currency } = p;
    Ok(Line {
        kind,
        price_id: Some(price.id.clone()),
        description,
        quantity,
        metered_quantity: metered,
        unit_price: rated.unit_price,
        tiers: (!rated.tiers.is_empty()).then(|| rated.tiers.iter().map(TierLine::from).collect()),
        precise_amount: rated.amount,
        amount: round_half_away(rated.amount, currency.exponent())?,
        adjusts: None,
    })
}
