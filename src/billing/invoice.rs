//! Invoices (SPEC §6.2): one subscription, one billing period. Fees (one-time, recurring and
//! prorated, own cadences), usage (grants off, min/max, model), real-time charges already paid
//! from the wallet, then discounts, the commitment true-up and the wallet credit.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;

use super::line::{as_text, close_lines, Adjustments, Line, LineType};
use super::price_line::{description, fee_line, priced_line, Share, UsageLine};
use super::quote::MetricUsage;
use crate::catalog::{Catalog, PaymentTerm, Price, PriceTarget};
use crate::customer::{Customer, Subscription};
use crate::error::{Code, Error, Result};
use crate::money::{add, sum};
use crate::pricing::{Context, Model, Rating};
use crate::time::{period_containing, Duration, Period, Timestamp};

/// Draft (the running bill) or final (closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// A preview: the period is still open.
    Draft,
    /// Closed: it will not change.
    Final,
}

/// An invoice.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// The customer.
    pub customer_id: String,
    /// The subscription billed.
    pub subscription_id: String,
    /// Its plan.
    pub plan_id: String,
    /// Period start (RFC 3339).
    pub period_start: String,
    /// Period end (RFC 3339, exclusive).
    pub period_end: String,
    /// ISO-4217 code.
    pub currency: &'static str,
    /// Draft or final.
    pub status: InvoiceStatus,
    /// Fee, usage, discount, commitment and credit lines.
    pub lines: Vec<Line>,
    /// Σ fee and usage lines.
    #[serde(serialize_with = "as_text")]
    pub subtotal: Decimal,
    /// Σ discounts (positive).
    #[serde(serialize_with = "as_text")]
    pub discount: Decimal,
    /// Σ every line: what is owed.
    #[serde(serialize_with = "as_text")]
    pub total: Decimal,
}

/// What an invoice needs from whoever meters the customer.
pub trait UsageSource {
    /// The metric's (catalog position) quantity in the period.
    fn quantity(&self, metric: usize, period: Period) -> Result<Decimal>;
    /// The metric's quantity per value of one of its `groupBy` dimensions (absent values under
    /// the empty key), for matrix prices.
    fn by_dimension(&self, metric: usize, dimension: &str, period: Period) -> Result<BTreeMap<String, Decimal>>;
    /// Events the metric counted in the period (for `percentage` fixed fees).
    fn events(&self, metric: usize, period: Period) -> Decimal;
    /// Units of the metric in the period that grants covered (free under `grantDiscount`).
    fn covered(&self, metric: usize, period: Period) -> Decimal;
    /// Real-time charges of an instant price in the period.
    fn instant(&self, subscription: &str, price_id: &str, period: Period) -> InstantUsage;
}

/// What an instant price charged in one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstantUsage {
    /// Units charged.
    pub quantity: Decimal,
    /// Exact amount debited from the wallet.
    pub charged: Decimal,
    /// Exact amount the price gives for the period's events in the order they were recorded;
    /// differs from `charged` only where edges rated with the usage they knew (SPEC §6.3 across
    /// edges), and the difference is settled on a line of its own.
    pub rated: Decimal,
}

/// The billing period of `sub` that contains `t`.
pub fn billing_period(catalog: &Catalog, sub: &Subscription, t: Timestamp) -> Result<Period> {
    let plan = catalog.plan(&sub.plan_id).ok_or_else(|| no_plan(&sub.plan_id))?;
    period_containing(sub.anchor(), plan.billing_cadence, t)
        .ok_or_else(|| Error::new(Code::InvalidValue, "/at", "no billing period contains this time"))
}

fn no_plan(id: &str) -> Error {
    Error::new(Code::UnknownPlan, "/planId", alloc::format!("no plan with id {id:?}"))
}

/// The invoice of `sub` for `period`.
pub fn invoice(
    catalog: &Catalog,
    customer: &Customer,
    sub: &Subscription,
    period: Period,
    usage: &dyn UsageSource,
    status: InvoiceStatus,
) -> Result<Invoice> {
    let plan = catalog.plan(&sub.plan_id).ok_or_else(|| no_plan(&sub.plan_id))?;
    let ctx = Context { rates: &catalog.rates };
    let first = billing_period(catalog, sub, sub.started_at)?;
    let mut lines = Vec::with_capacity(plan.prices.len() + 3);
    // The instant lines: already paid from the wallet, credited back one by one.
    let mut instant_total = Decimal::ZERO;
    let mut wallet_paid: Vec<(String, Decimal)> = Vec::new();
    for price in &plan.prices {
        let model = sub.price_overrides.get(&price.id).unwrap_or(&price.model);
        let line = match &price.target {
            PriceTarget::Fee(fee_id) => {
                let cadence = price.billing_cadence.unwrap_or(plan.billing_cadence);
                let fraction = fee_fraction(sub, price.payment_term, cadence, plan.billing_cadence, period, first)?;
                if fraction.is_zero() {
                    continue;
                }
                let name = catalog.fee(fee_id).map_or(fee_id.as_str(), |f| f.name.as_str());
                fee_line(price, model, name, fraction, plan.currency, ctx)?
            }
            PriceTarget::Metric(metric_id) => {
                let m = catalog.metric_index(metric_id).ok_or_else(|| no_metric(metric_id))?;
                let name = catalog.billable_metrics[m].name.as_str();
                if price.payment_term == PaymentTerm::Instant {
                    let InstantUsage { quantity, charged: amount, rated: exact } =
                        usage.instant(&sub.id, &price.id, period);
                    let settlement = sub_amounts(exact, amount)?;
                    if !settlement.is_zero() {
                        let rating = Rating { amount: settlement, unit_price: None, tiers: Vec::new() };
                        let what = alloc::format!("{} (settlement of real-time charges)", description(price, name));
                        let line = priced_line(
                            LineType::Usage,
                            price,
                            what,
                            Decimal::ZERO,
                            Decimal::ZERO,
                            rating,
                            plan.currency,
                        )?;
                        instant_total = add(instant_total, line.amount)?;
                        lines.push(line);
                    }
                    let rated = Rating { amount, unit_price: None, tiers: Vec::new() };
                    let line = priced_line(
                        LineType::Usage,
                        price,
                        description(price, name),
                        quantity,
                        quantity,
                        rated,
                        plan.currency,
                    )?;
                    instant_total = add(instant_total, line.amount)?;
                    wallet_paid.push((line.description.clone(), amount));
                    line
                } else {
                    usage_line(price, model, name, m, period, usage, plan.currency, ctx)?
                }
            }
        };
        lines.push(line);
    }
    let discountable = crate::money::sub(sum(lines.iter().map(|l| l.amount))?, instant_total).ok();
    let adjustments = Adjustments {
        discounts: &sub.percentage_discounts,
        discountable,
        commitment: sub.minimum_commitment.or(plan.minimum_commitment),
        wallet_paid: &wallet_paid,
    };
    let totals = close_lines(&mut lines, &adjustments, plan.currency)?;
    Ok(Invoice {
        customer_id: customer.id.clone(),
        subscription_id: sub.id.clone(),
        plan_id: plan.id.clone(),
        period_start: period.start.to_rfc3339(),
        period_end: period.end.to_rfc3339(),
        currency: plan.currency.code(),
        status,
        lines,
        subtotal: totals.subtotal,
        discount: totals.discount,
        total: totals.total,
    })
}

fn sub_amounts(a: Decimal, b: Decimal) -> Result<Decimal> {
    Ok(crate::money::sub(a, b)?)
}

fn no_metric(id: &str) -> Error {
    Error::new(Code::UnknownReference, "/metricId", alloc::format!("no billable metric with id {id:?}"))
}

#[allow(clippy::too_many_arguments)]
fn usage_line(
    price: &Price,
    model: &Model,
    name: &str,
    metric: usize,
    period: Period,
    usage: &dyn UsageSource,
    currency: crate::money::Currency,
    ctx: Context<'_>,
) -> Result<Line> {
    let quantity = match model {
        Model::Matrix { dimension, .. } => MetricUsage::Groups(usage.by_dimension(metric, dimension, period)?),
        _ => MetricUsage::Total(usage.quantity(metric, period)?),
    };
    let allowance = if price.grant_discount { usage.covered(metric, period) } else { Decimal::ZERO };
    let events = Some(usage.events(metric, period));
    let line = UsageLine { price, model, name, allowance, events };
    line.priced(Some(&quantity), currency, ctx)
}

/// How much of a fee the invoice of `period` carries: 0 (not charged in this period), the
/// active fraction of the period for recurring fees on the plan's cadence, 1 for a one-time fee
/// on the first invoice and for fees on their own cadence in the period where they fall due.
fn fee_fraction(
    sub: &Subscription,
    term: PaymentTerm,
    cadence: Duration,
    plan_cadence: Duration,
    period: Period,
    first: Period,
) -> Result<Share> {
    let all_or_nothing = |due: bool| if due { Share::FULL } else { Share { part: Decimal::ZERO, whole: Decimal::ONE } };
    if cadence.is_zero() {
        return Ok(all_or_nothing(period == first));
    }
    if cadence != plan_cadence {
        return Ok(all_or_nothing(due_on_own_cadence(sub, term, cadence, period)));
    }
    let from = period.start.max(sub.started_at);
    let until = sub.ending_at.map_or(period.end, |e| e.min(period.end));
    if until <= from {
        return Ok(all_or_nothing(false));
    }
    if from == period.start && until == period.end {
        return Ok(Share::FULL);
    }
    Ok(Share { part: Decimal::from(until.0 - from.0), whole: Decimal::from(period.len_ms()) })
}

/// True when one of a fee's own periods (anchored like the subscription) starts in `period`
/// while the subscription is active (in advance), or ends in it after the subscription began
/// (in arrears).
fn due_on_own_cadence(sub: &Subscription, term: PaymentTerm, cadence: Duration, period: Period) -> bool {
    let Some(mut fee_period) = period_containing(sub.anchor(), cadence, period.start) else { return false };
    loop {
        let due = match term {
            PaymentTerm::InArrears => {
                let b = fee_period.end;
                period.start < b
                    && b <= period.end
                    && b > sub.started_at
                    && sub.ending_at.is_none_or(|e| e > fee_period.start)
            }
            _ => {
                let b = fee_period.start;
                period.contains(b) && sub.is_active(b)
            }
        };
        if due {
            return true;
        }
        if fee_period.end >= period.end {
            return false;
        }
        match period_containing(sub.anchor(), cadence, fee_period.end) {
            Some(next) => fee_period = next,
            None => return false,
        }
    }
}
