//! Invoices (SPEC §6.2, §13): per subscription and billing period, two documents. The advance
//! invoice, issued when the period starts, bills the upfront fees (prorated for a start inside
//! the period). The arrears invoice, issued when the period ends (or the subscription does),
//! bills usage, fees in arrears, real-time charges already paid from the wallet, the refund of
//! upfront time after an early end, then discounts, the commitment true-up and the wallet credit.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;

use super::fees::{advance_share, arrears_share, refund_share, FeeTiming};
use super::line::{as_text, close_lines, Adjustments, Line, LineType};
use super::price_line::{description, fee_line, priced_line, MetricUsage, Priced, UsageLine};
use crate::catalog::{Catalog, PaymentTerm, Plan, Price, PriceTarget};
use crate::customer::{Customer, Subscription};
use crate::error::{Code, Error, Result};
use crate::money::{add, sum};
use crate::pricing::{Context, Model, Rating};
use crate::time::{period_containing, Period, Timestamp};

/// Draft (the running bill) or final (issued: it will not change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// A preview: the period is still open.
    Draft,
    /// Issued: it will not change.
    Final,
}

/// Which of a period's two invoices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// Upfront fees, issued at the period's start.
    Advance,
    /// Usage and everything else, issued at the period's end.
    Arrears,
}

/// An invoice.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// Stable id: `<subscription>-<period start, basic ISO 8601>-<kind>`.
    pub id: String,
    /// Advance (upfront fees) or arrears (the period's bill).
    pub kind: InvoiceKind,
    /// The customer.
    pub customer_id: String,
    /// The subscription billed.
    pub subscription_id: String,
    /// Its plan.
    pub plan_id: String,
    /// Period start (RFC 3339).
    pub period_start: String,
    /// Period end (RFC 3339, exclusive): the subscription's end when it ended inside the period.
    pub period_end: String,
    /// When it falls due (RFC 3339): the period's start (or the subscription's, if later) for
    /// an advance invoice, the period's end (or the subscription's, if earlier) for arrears.
    pub issued_at: String,
    /// ISO-4217 code.
    pub currency: &'static str,
    /// Draft or final.
    pub status: InvoiceStatus,
    /// Fee, usage, discount, commitment, credit and adjustment lines.
    pub lines: Vec<Line>,
    /// Σ fee and usage lines.
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub subtotal: Decimal,
    /// Σ discounts (positive).
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub discount: Decimal,
    /// Σ every line: what is owed.
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub total: Decimal,
}

impl Invoice {
    /// Appends adjustment lines (late usage of closed periods) to the total.
    pub fn add_adjustments(&mut self, lines: Vec<Line>) -> Result<()> {
        for line in lines {
            self.total = add(self.total, line.amount)?;
            self.lines.push(line);
        }
        Ok(())
    }
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
    /// What a price rated per use (instant, or per-event in arrears) gave in the period.
    fn instant(&self, subscription: &str, price_id: &str, period: Period) -> InstantUsage;
}

/// What a price rated per use gave in one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstantUsage {
    /// Units charged.
    pub quantity: Decimal,
    /// Exact amount debited from the wallet (zero in arrears).
    pub charged: Decimal,
    /// Exact amount the price gives for the period's events in the order they were recorded;
    /// differs from `charged` only where edges rated with the usage they knew (SPEC §6.3 across
    /// edges), and the difference is settled on a line of its own.
    pub rated: Decimal,
    /// Events rated.
    pub events: u64,
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

/// One subscription's period about to be invoiced.
#[derive(Clone, Copy)]
pub struct Billing<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The customer.
    pub customer: &'a Customer,
    /// The subscription.
    pub sub: &'a Subscription,
    /// The billing period.
    pub period: Period,
}

impl<'a> Billing<'a> {
    fn plan(&self) -> Result<&'a Plan> {
        self.catalog.plan(&self.sub.plan_id).ok_or_else(|| no_plan(&self.sub.plan_id))
    }

    fn ctx(&self) -> Context<'a> {
        self.catalog.rates_now()
    }

    fn timing(&self, plan: &Plan, price: &Price) -> Result<FeeTiming> {
        let first = billing_period(self.catalog, self.sub, self.sub.started_at)?;
        Ok(FeeTiming {
            cadence: price.billing_cadence.unwrap_or(plan.billing_cadence),
            plan_cadence: plan.billing_cadence,
            first,
        })
    }

    fn model(&self, price: &'a Price) -> &'a Model {
        self.sub.price_overrides.get(&price.id).unwrap_or(&price.model)
    }

    fn fee_name(&self, fee_id: &'a str) -> &'a str {
        self.catalog.fee(fee_id).map_or(fee_id, |f| f.name.as_str())
    }

    /// The part of the period the subscription was active: usage is metered per part, so each
    /// side of a plan change bills its own.
    pub fn usage_period(&self) -> Period {
        let start = self.period.start.max(self.sub.started_at).min(self.period.end);
        Period { start, end: self.arrears_due().max(start) }
    }

    /// When the advance invoice falls due.
    pub fn advance_due(&self) -> Timestamp {
        self.period.start.max(self.sub.started_at)
    }

    /// When the arrears invoice falls due: the period's end, or the subscription's if earlier.
    pub fn arrears_due(&self) -> Timestamp {
        self.sub.ending_at.map_or(self.period.end, |e| e.min(self.period.end).max(self.period.start))
    }

    /// The advance invoice: the upfront fees of the period (none: `None`).
    pub fn advance(&self) -> Result<Option<Invoice>> {
        let plan = self.plan()?;
        let mut lines = Vec::new();
        for price in self.sub.prices(plan).filter(|p| p.bills && p.payment_term != PaymentTerm::InArrears) {
            let PriceTarget::Fee(fee_id) = &price.target else { continue };
            let share = advance_share(self.sub, self.timing(plan, price)?, self.period);
            if !share.is_zero() {
                let name = self.fee_name(fee_id);
                lines.push(fee_line(price, self.model(price), name, share, plan.currency, self.ctx())?);
            }
        }
        if lines.is_empty() {
            return Ok(None);
        }
        let adjustments = Adjustments { discounts: &self.sub.percentage_discounts, ..Adjustments::default() };
        let due = self.advance_due();
        self.document(InvoiceKind::Advance, lines, &adjustments, due, InvoiceStatus::Final).map(Some)
    }

    /// The arrears invoice: usage, fees in arrears, real-time charges, refunds of upfront time
    /// after an early end, discounts, the commitment true-up (counting the advance invoice) and
    /// the wallet credit.
    pub fn arrears(&self, usage: &dyn UsageSource, status: InvoiceStatus) -> Result<Invoice> {
        let plan = self.plan()?;
        let mut lines = Vec::with_capacity(plan.prices.len() + 3);
        let mut paid = WalletPaid::default();
        for price in self.sub.prices(plan).filter(|p| p.bills) {
            let model = self.model(price);
            match &price.target {
                PriceTarget::Fee(fee_id) => {
                    let name = self.fee_name(fee_id);
                    let timing = self.timing(plan, price)?;
                    if price.payment_term == PaymentTerm::InArrears {
                        let share = arrears_share(self.sub, timing, self.period);
                        if !share.is_zero() {
                            lines.push(fee_line(price, model, name, share, plan.currency, self.ctx())?);
                        }
                    } else if let Some(share) = refund_share(self.sub, timing, self.period) {
                        lines.push(refund_line(fee_line(price, model, name, share, plan.currency, self.ctx())?));
                    }
                }
                PriceTarget::Metric(metric_id) => {
                    let m = self.catalog.metric_index(metric_id).ok_or_else(|| no_metric(metric_id))?;
                    let metric = self.catalog.billable_metrics.get(m).ok_or_else(|| no_metric(metric_id))?;
                    let name = metric.name.as_str();
                    let usage_of = Usage { billing: self, price, model, name, metric: m, usage };
                    if price.payment_term == PaymentTerm::Instant {
                        usage_of.instant_lines(&mut lines, &mut paid, plan.currency)?;
                    } else {
                        lines.push(usage_of.arrears_line(plan.currency)?);
                    }
                }
            }
        }
        let discountable = crate::money::sub(sum(lines.iter().map(|l| l.amount))?, paid.total).ok();
        let prepaid = self.advance()?.map_or(Decimal::ZERO, |a| a.total);
        let adjustments = Adjustments {
            discounts: &self.sub.percentage_discounts,
            discountable,
            commitment: self.sub.minimum_commitment.or(plan.minimum_commitment),
            wallet_paid: &paid.lines,
            prepaid,
        };
        self.document(InvoiceKind::Arrears, lines, &adjustments, self.arrears_due(), status)
    }

    fn document(
        &self,
        kind: InvoiceKind,
        mut lines: Vec<Line>,
        adjustments: &Adjustments<'_>,
        issued: Timestamp,
        status: InvoiceStatus,
    ) -> Result<Invoice> {
        let plan = self.plan()?;
        let totals = close_lines(&mut lines, adjustments, plan.currency)?;
        let end = match kind {
            InvoiceKind::Advance => self.period.end,
            InvoiceKind::Arrears => self.arrears_due(),
        };
        Ok(Invoice {
            id: invoice_id(&self.sub.id, self.period.start, kind),
            kind,
            customer_id: self.customer.id.clone(),
            subscription_id: self.sub.id.clone(),
            plan_id: plan.id.clone(),
            period_start: self.period.start.to_rfc3339(),
            period_end: end.to_rfc3339(),
            issued_at: issued.to_rfc3339(),
            currency: plan.currency.code(),
            status,
            lines,
            subtotal: totals.subtotal,
            discount: totals.discount,
            total: totals.total,
        })
    }
}

/// The stable id of an invoice: `<subscription>-<period start, basic ISO 8601>-<kind>`.
pub fn invoice_id(subscription: &str, start: Timestamp, kind: InvoiceKind) -> String {
    let compact: String = start.to_rfc3339().chars().filter(|c| *c != '-' && *c != ':').collect();
    let kind = match kind {
        InvoiceKind::Advance => "advance",
        InvoiceKind::Arrears => "arrears",
    };
    alloc::format!("{subscription}-{compact}-{kind}")
}

/// The arrears invoice of `sub` for `period` (kept for callers that bill one document).
pub fn invoice(
    catalog: &Catalog,
    customer: &Customer,
    sub: &Subscription,
    period: Period,
    usage: &dyn UsageSource,
    status: InvoiceStatus,
) -> Result<Invoice> {
    Billing { catalog, customer, sub, period }.arrears(usage, status)
}

/// A refund of upfront time: the fee line for the unused share, negated.
fn refund_line(mut line: Line) -> Line {
    line.description = alloc::format!("{} (refund of unused time)", line.description);
    line.precise_amount = -line.precise_amount;
    line.amount = -line.amount;
    line
}

/// Real-time charges already paid from the wallet: one credit per instant line.
#[derive(Default)]
struct WalletPaid {
    total: Decimal,
    lines: Vec<(String, Decimal)>,
}

/// One usage price of the invoice.
struct Usage<'a, 'b> {
    billing: &'b Billing<'a>,
    price: &'a Price,
    model: &'a Model,
    name: &'a str,
    metric: usize,
    usage: &'b dyn UsageSource,
}

impl Usage<'_, '_> {
    fn period(&self) -> Period {
        self.billing.usage_period()
    }

    /// A time-weighted quantity averaged over the part of the period the subscription was
    /// active, as a share of the whole period (GB-months of a partial month).
    fn weighted(&self, q: Decimal) -> Result<Decimal> {
        let (part, whole) = (self.period(), self.billing.period);
        let metrics = &self.billing.catalog.billable_metrics;
        let metric = metrics.get(self.metric).ok_or_else(|| no_metric(&alloc::format!("#{}", self.metric)))?;
        if metric.aggregation != crate::catalog::Aggregation::WeightedSum || part == whole {
            return Ok(q);
        }
        Ok(crate::money::div(
            crate::money::mul(q, Decimal::from(part.len_ms()))?,
            Decimal::from(whole.len_ms().max(1)),
        )?)
    }

    fn quantity(&self) -> Result<Decimal> {
        self.weighted(self.usage.quantity(self.metric, self.period())?)
    }

    fn run(&self) -> InstantUsage {
        self.usage.instant(&self.billing.sub.id, &self.price.id, self.billing.period)
    }

    /// The line of a price in arrears: per-event models sum what each event was rated when it
    /// was recorded; the others rate the period's total (allowance off, min/max clamp).
    fn arrears_line(&self, currency: crate::money::Currency) -> Result<Line> {
        let (price, period) = (self.price, self.period());
        let run = self.run();
        if self.model.is_per_event() && (run.events > 0 || self.quantity()?.is_zero()) {
            let metered = self.quantity()?;
            let rating = Rating { amount: run.rated, unit_price: None, tiers: Vec::new() };
            let description = description(price, self.name);
            let kind = LineType::Usage;
            return priced_line(Priced {
                kind,
                price,
                description,
                quantity: metered,
                metered,
                rated: rating,
                currency,
            });
        }
        let quantity = match self.model {
            Model::Matrix { dimension, .. } => {
                let mut groups = self.usage.by_dimension(self.metric, dimension, period)?;
                for q in groups.values_mut() {
                    *q = self.weighted(*q)?;
                }
                MetricUsage::Groups(groups)
            }
            _ => MetricUsage::Total(self.quantity()?),
        };
        let allowance = if price.grant_discount { self.usage.covered(self.metric, period) } else { Decimal::ZERO };
        let events = Some(self.usage.events(self.metric, period));
        let line = UsageLine { price, model: self.model, name: self.name, allowance, events };
        line.priced(Some(&quantity), currency, self.billing.ctx())
    }

    /// The lines of an instant price: the settlement of what edges rated apart (if any), then
    /// the charges, paid from the wallet (credited back after the totals).
    fn instant_lines(
        &self,
        lines: &mut Vec<Line>,
        paid: &mut WalletPaid,
        currency: crate::money::Currency,
    ) -> Result<()> {
        let price = self.price;
        let InstantUsage { quantity, charged, rated, .. } = self.run();
        let settlement = crate::money::sub(rated, charged)?;
        if !settlement.is_zero() {
            let rating = Rating { amount: settlement, unit_price: None, tiers: Vec::new() };
            let what = alloc::format!("{} (settlement of real-time charges)", description(price, self.name));
            let (kind, quantity) = (LineType::Usage, Decimal::ZERO);
            let line = priced_line(Priced {
                kind,
                price,
                description: what,
                quantity,
                metered: quantity,
                rated: rating,
                currency,
            })?;
            paid.total = add(paid.total, line.amount)?;
            lines.push(line);
        }
        let rating = Rating { amount: charged, unit_price: None, tiers: Vec::new() };
        let (kind, description) = (LineType::Usage, description(price, self.name));
        let line =
            priced_line(Priced { kind, price, description, quantity, metered: quantity, rated: rating, currency })?;
        paid.total = add(paid.total, line.amount)?;
        paid.lines.push((line.description.clone(), charged));
        lines.push(line);
        Ok(())
    }
}

fn no_metric(id: &str) -> Error {
    Error::new(Code::UnknownReference, "/metricId", alloc::format!("no billable metric with id {id:?}"))
}
