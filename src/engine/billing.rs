//! Billing inside the engine: real-time charges of `instant` prices against the wallet at
//! ingest, and invoices (preview and close) from the customer's metered usage.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::state::{CustomerState, InstantRun};
use super::Engine;
use crate::billing::{billing_period, Billed, Billing, InstantUsage, Invoice, InvoiceStatus, UsageSource};
use crate::catalog::{Catalog, PaymentTerm, PriceTarget};
use crate::customer::Subscription;
use crate::error::{Code, Error, Result};
use crate::json::scalar_text;
use crate::metering::{Event, Fold, Observation};
use crate::money::{add, sub, Currency};
use crate::pricing::{Context, EventInput, Model};
use crate::time::{Period, Timestamp};

/// A real-time charge reported by `ingest`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    /// The subscription.
    pub subscription_id: String,
    /// The instant price.
    pub price_id: String,
    /// Exact amount debited.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: String,
    /// ISO-4217 code.
    pub currency: &'static str,
    /// Wallet balance after the debit (`null` when the customer has no wallet: only a free
    /// charge gets that far).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub wallet_balance: Option<String>,
}

/// A charge computed but not yet applied.
pub(super) struct PendingCharge {
    key: (String, String, Timestamp),
    run: InstantRun,
    /// What the wallet is debited: `rated`, or what the edge that allowed the event debited;
    /// zero for a price billed in arrears.
    pub(super) amount: Decimal,
    pub(super) currency: Currency,
    /// True for an `instant` price (debited now); false for a per-event price in arrears.
    instant: bool,
}

/// The charges an edge debited for one event (its `tollgatecharges` attribute), by
/// (subscription, price).
pub type Declared = BTreeMap<(String, String), Decimal>;

/// The CloudEvents extension attribute in which an edge tells the hub what it debited.
pub const CHARGES_ATTRIBUTE: &str = "tollgatecharges";

/// Reads the charges an edge declared on an event it sends to the hub (absent: none).
pub fn declared_charges(event: &Value) -> Result<Declared> {
    let mut out = Declared::new();
    let Some(list) = event.get(CHARGES_ATTRIBUTE) else { return Ok(out) };
    let bad = |i: usize| {
        Error::new(
            Code::InvalidValue,
            alloc::format!("/{CHARGES_ATTRIBUTE}/{i}"),
            "expected { subscriptionId, priceId, amount ≥ 0 }",
        )
    };
    let Value::Array(items) = list else {
        return Err(Error::new(Code::InvalidType, alloc::format!("/{CHARGES_ATTRIBUTE}"), "expected an array"));
    };
    for (i, item) in items.iter().enumerate() {
        let text = |k: &str| item.get(k).and_then(Value::as_str);
        let (Some(sub), Some(price), Some(amount)) = (text("subscriptionId"), text("priceId"), text("amount")) else {
            return Err(bad(i));
        };
        match crate::money::parse_decimal(amount) {
            Some(a) if a >= Decimal::ZERO => {
                out.insert((String::from(sub), String::from(price)), a);
            }
            _ => return Err(bad(i)),
        }
    }
    Ok(out)
}

/// The `tollgatecharges` attribute for the charges applied to an event.
pub(super) fn charges_attribute(charges: &[Charge]) -> Value {
    Value::Array(
        charges
            .iter()
            .map(|c| {
                serde_json::json!({ "subscriptionId": c.subscription_id, "priceId": c.price_id, "amount": c.amount })
            })
            .collect(),
    )
}

/// The total of pending wallet debits.
pub(super) fn total(charges: &[PendingCharge]) -> Result<Decimal> {
    Ok(charges.iter().try_fold(Decimal::ZERO, |acc, c| add(acc, c.amount))?)
}

/// An event seen by a price: its value for the metric and its data.
struct Seen<'a> {
    value: Decimal,
    data: &'a Value,
}

impl EventInput for Seen<'_> {
    fn value(&self) -> Decimal {
        self.value
    }
    fn data(&self) -> &Value {
        self.data
    }
    fn dimension(&self, _: &str) -> Option<&Value> {
        None
    }
}

/// The charges of every instant price of the customer's active subscriptions that prices one
/// of the matched metrics, without applying them.
pub(super) fn instant_charges(
    catalog: &Catalog,
    state: &CustomerState,
    event: &Event,
    folds: &[(usize, Fold<'_>)],
    declared: Option<&Declared>,
) -> Result<Vec<PendingCharge>> {
    let values: Vec<(usize, Decimal)> = folds
        .iter()
        .filter_map(|(m, f)| match f.obs {
            Observation::Number(v) => Some((*m, v)),
            _ => None,
        })
        .collect();
    charges_for(catalog, state, Use { time: event.time, data: &event.data, values: &values }, declared)
}

/// One use of metrics that instant prices may charge: when, the event's data (what `dynamic`
/// and `matrix` read), and each metric's value.
pub(super) struct Use<'a> {
    pub(super) time: Timestamp,
    pub(super) data: &'a Value,
    pub(super) values: &'a [(usize, Decimal)],
}

/// True when some plan prices `metric` per use: by an instant price, or by a per-event model
/// in arrears (a subscription's override may make any usage price per-event, so every usage
/// price of the metric counts when some subscription could override it).
pub(super) fn instant_priced(catalog: &Catalog, metric: usize) -> bool {
    let Some(m) = catalog.billable_metrics.get(metric) else { return false };
    catalog.plans.iter().flat_map(|p| &p.prices).any(|price| {
        price.bills
            && matches!(&price.target, PriceTarget::Metric(id) if *id == m.id)
            && (price.payment_term == PaymentTerm::Instant || price.model.is_per_event())
    })
}

/// True when `price` (with `model`, the subscription's effective one) is rated per use.
fn rated_per_use(price: &crate::catalog::Price, model: &Model) -> bool {
    price.payment_term == PaymentTerm::Instant || (price.payment_term == PaymentTerm::InArrears && model.is_per_event())
}

/// The charges of every instant price of the customer's active subscriptions on the metrics of
/// `u`, without applying them. With `declared`, the wallet is debited what the edge declared
/// for a price instead of this engine's rating.
pub(super) fn charges_for(
    catalog: &Catalog,
    state: &CustomerState,
    u: Use<'_>,
    declared: Option<&Declared>,
) -> Result<Vec<PendingCharge>> {
    let ctx = catalog.rates_at(u.time);
    let mut out = Vec::new();
    for sub in state.customer.subscriptions.iter().filter(|s| s.is_active(u.time)) {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        for price in sub.prices(plan).filter(|p| p.bills) {
            let PriceTarget::Metric(metric_id) = &price.target else { continue };
            let model = sub.price_overrides.get(&price.id).unwrap_or(&price.model);
            if !rated_per_use(price, model) {
                continue;
            }
            let found = u.values.iter().find_map(|&(m, v)| {
                catalog.billable_metrics.get(m).filter(|metric| metric.id == *metric_id).map(|metric| (metric, v))
            });
            let Some((metric, v)) = found else { continue };
            let period = billing_period(catalog, sub, u.time)?;
            let key = (sub.id.clone(), price.id.clone(), period.start);
            let mut run = state.instant.get(&key).cloned().unwrap_or_default();
            let instant = price.payment_term == PaymentTerm::Instant;
            let (cell, slot) = match model {
                Model::Matrix { dimension, cells, default } => {
                    let value = metric.group_by.get(dimension).and_then(|p| p.lookup(u.data)).and_then(scalar_text);
                    let cell = value.as_ref().and_then(|v| cells.get(v)).or(default.as_deref()).ok_or_else(|| {
                        Error::new(Code::NoPriceForDimension, "/data", "no price for this event's dimension value")
                    })?;
                    (cell, value.unwrap_or_default())
                }
                other => (other, String::new()),
            };
            let rated = charge(cell, &mut run, &slot, v, u.data, ctx)?;
            run.events += 1;
            run.rated = add(run.rated, rated)?;
            let amount = match instant {
                true => declared.and_then(|d| d.get(&(key.0.clone(), key.1.clone())).copied()).unwrap_or(rated),
                false => Decimal::ZERO,
            };
            out.push(PendingCharge { key, run, amount, currency: plan.currency, instant });
        }
    }
    Ok(out)
}

/// The cost of one more event of value `v` under `model`, updating `run`'s cumulative state:
/// per-event models price the event; the others charge A(after) − A(before), with nothing
/// before the first event (so a tier-1 flat price comes with it).
fn charge(
    model: &Model,
    run: &mut InstantRun,
    slot: &str,
    v: Decimal,
    data: &Value,
    ctx: Context<'_>,
) -> Result<Decimal> {
    match model {
        Model::Percentage(p) => run.percentage.entry(String::from(slot)).or_default().charge(p, v),
        Model::Dynamic { .. } => Ok(model.rate_events(&[Seen { value: v, data }], ctx)?.amount),
        _ => {
            let before_q = run.quantity.get(slot).copied();
            let after_q = add(before_q.unwrap_or_default(), v)?;
            let before = match before_q {
                Some(q) => model.rate_quantity(q, None, ctx)?.amount,
                None => Decimal::ZERO,
            };
            let after = model.rate_quantity(after_q, None, ctx)?.amount;
            run.quantity.insert(String::from(slot), after_q);
            Ok(sub(after, before)?)
        }
    }
}

/// True when the customer's wallet is the one to pay `charges`: same currency (a free charge
/// needs no wallet).
pub(super) fn payable(state: &CustomerState, charges: &[PendingCharge]) -> Result<bool> {
    if total(charges)? <= Decimal::ZERO {
        return Ok(true);
    }
    Ok(state.wallet.as_ref().is_some_and(|w| charges.iter().filter(|c| c.instant).all(|c| c.currency == w.currency)))
}

/// Applies pending charges: the runs advance and the wallet is debited (instant prices only;
/// they are the charges returned).
pub(super) fn apply_charges(state: &mut CustomerState, charges: Vec<PendingCharge>) -> Result<Vec<Charge>> {
    let mut out = Vec::with_capacity(charges.len());
    for mut c in charges {
        if !c.instant {
            state.instant.insert(c.key, c.run);
            continue;
        }
        c.run.charged = add(c.run.charged, c.amount)?;
        let balance = match &mut state.wallet {
            Some(w) => {
                w.balance = sub(w.balance, c.amount)?;
                w.debited = add(w.debited, c.amount)?;
                Some(w.currency.format(w.balance))
            }
            None => None,
        };
        out.push(Charge {
            subscription_id: c.key.0.clone(),
            price_id: c.key.1.clone(),
            amount: c.currency.format(c.amount),
            currency: c.currency.code(),
            wallet_balance: balance,
        });
        state.instant.insert(c.key, c.run);
    }
    Ok(out)
}

/// A customer's usage as an invoice reads it.
struct View<'a> {
    catalog: &'a Catalog,
    state: &'a CustomerState,
}

impl View<'_> {
    /// The customer's ledger of the metric at position `metric`, and the metric.
    fn ledger(&self, metric: usize) -> Result<(&crate::metering::MetricLedger, &crate::catalog::BillableMetric)> {
        match (self.state.ledgers.get(metric), self.catalog.billable_metrics.get(metric)) {
            (Some(ledger), Some(m)) => Ok((ledger, m)),
            _ => Err(Error::new(Code::UnknownReference, "", "no billable metric at this position")),
        }
    }
}

impl UsageSource for View<'_> {
    fn quantity(&self, metric: usize, period: Period) -> Result<Decimal> {
        let (ledger, m) = self.ledger(metric)?;
        ledger.quantity(m, period)
    }

    fn by_dimension(&self, metric: usize, dimension: &str, period: Period) -> Result<BTreeMap<String, Decimal>> {
        let (ledger, m) = self.ledger(metric)?;
        let position = m.group_by.keys().position(|k| k == dimension);
        let mut out = BTreeMap::new();
        let groups = ledger.group_quantities(m, period)?;
        let grouped: Decimal = groups.iter().map(|(_, q)| *q).sum();
        for (key, q) in groups {
            let value = position.and_then(|p| key.get(p).cloned().flatten()).unwrap_or_default();
            let slot = out.entry(value).or_insert(Decimal::ZERO);
            *slot = add(*slot, q)?;
        }
        // Units without a group (direct consumes) are priced as an absent dimension value.
        let rest = sub(self.quantity(metric, period)?, grouped)?;
        if rest > Decimal::ZERO {
            let slot = out.entry(String::new()).or_insert(Decimal::ZERO);
            *slot = add(*slot, rest)?;
        }
        Ok(out)
    }

    fn events(&self, metric: usize, period: Period) -> Decimal {
        Decimal::from(self.state.ledgers.get(metric).and_then(|l| l.period(period.start)).map_or(0, |p| p.events))
    }

    fn covered(&self, metric: usize, period: Period) -> Decimal {
        self.state.ledgers.get(metric).and_then(|l| l.period(period.start)).map_or(Decimal::ZERO, |p| p.covered)
    }

    fn instant(&self, subscription: &str, price_id: &str, period: Period) -> InstantUsage {
        let key = (String::from(subscription), String::from(price_id), period.start);
        match self.state.instant.get(&key) {
            Some(run) => InstantUsage {
                quantity: run.quantity.values().copied().sum(),
                charged: run.charged,
                rated: run.rated,
                events: run.events,
            },
            None => InstantUsage::default(),
        }
    }
}

impl Engine {
    /// The running bill of `customer` at `now`: the draft arrears invoice of the billing period
    /// of their first subscription active at `now` (or, without one, of their latest
    /// subscription), with the adjustments for late usage its close would carry.
    pub fn invoice_preview(&self, customer: &str, now: Timestamp) -> Result<Invoice> {
        let (state, sub) = self.subscription_at(customer, now)?;
        let period = billing_period(&self.catalog, sub, now)?;
        self.draft(state, sub, period)
    }

    /// The draft arrears invoice of `period`, with the adjustments for late usage its close
    /// would carry.
    fn draft(&self, state: &CustomerState, sub: &Subscription, period: Period) -> Result<Invoice> {
        let view = View { catalog: &self.catalog, state };
        let mut doc = self.billing(state, sub, period).arrears(&view, InvoiceStatus::Draft)?;
        let (adjustments, _) = self.late_usage(state, &(sub.id.clone(), period.start), doc.currency)?;
        doc.add_adjustments(adjustments)?;
        Ok(doc)
    }

    fn billing<'a>(&'a self, state: &'a CustomerState, sub: &'a Subscription, period: Period) -> Billing<'a> {
        Billing { catalog: &self.catalog, customer: &state.customer, sub, period }
    }

    /// The invoices of the billing period that contains `at`, as known at `now`: the advance
    /// invoice (when upfront fees are due and it was issued by `now`), then the arrears invoice
    /// (final once closed, else a draft).
    pub fn invoices_at(&self, customer: &str, at: Timestamp, now: Timestamp) -> Result<Vec<Invoice>> {
        let (state, sub) = self.subscription_at(customer, at)?;
        let period = billing_period(&self.catalog, sub, at)?;
        self.period_invoices(state, sub, period, now)
    }

    fn period_invoices(
        &self,
        state: &CustomerState,
        sub: &Subscription,
        period: Period,
        now: Timestamp,
    ) -> Result<Vec<Invoice>> {
        let billing = self.billing(state, sub, period);
        let mut out = Vec::with_capacity(2);
        if billing.advance_due() <= now {
            out.extend(billing.advance()?);
        }
        match state.closed.get(&(sub.id.clone(), period.start)) {
            Some(done) => out.push(done.clone()),
            None => out.push(self.draft(state, sub, period)?),
        }
        Ok(out)
    }

    /// Every invoice of `customer` up to `now`, oldest period first: per subscription and
    /// billing period from its start to the period containing `now` (or its end), at most
    /// `limit` periods (the latest).
    pub fn invoice_list(&self, customer: &str, now: Timestamp, limit: usize) -> Result<Vec<Invoice>> {
        let state = self.customer(customer).ok_or_else(no_customer)?;
        let mut periods: Vec<(Timestamp, usize, Period)> = Vec::new();
        for (i, sub) in state.customer.subscriptions.iter().enumerate() {
            if sub.started_at > now {
                continue;
            }
            // Periods begun by `now`, and before the subscription's end once it has ended.
            let begun = |p: &Period| match sub.ending_at {
                Some(end) if end <= now => p.start < end,
                _ => p.start <= now,
            };
            let mut period = billing_period(&self.catalog, sub, sub.started_at)?;
            let mut subs_periods = Vec::new();
            while begun(&period) {
                subs_periods.push((period.start, i, period));
                match billing_period(&self.catalog, sub, period.end) {
                    Ok(next) if next.start > period.start => period = next,
                    _ => break,
                }
                if subs_periods.len() > limit {
                    subs_periods.remove(0);
                }
            }
            periods.extend(subs_periods);
        }
        periods.sort();
        let skip = periods.len().saturating_sub(limit);
        let mut out = Vec::new();
        for (_, i, period) in periods.into_iter().skip(skip) {
            let Some(sub) = state.customer.subscriptions.get(i) else { continue };
            out.extend(self.period_invoices(state, sub, period, now)?);
        }
        Ok(out)
    }

    /// Closes the arrears invoice of the billing period that contains `at`: final, and the
    /// same document every time it is asked for again. Refused with `period_open` before the
    /// period ends, unless the subscription ended by `now` (its last period closes at that
    /// instant). Usage that reached earlier closed periods since they closed is billed on it
    /// as adjustment lines.
    pub fn close_invoice(&mut self, customer: &str, at: Timestamp, now: Timestamp) -> Result<Invoice> {
        let (state, sub) = self.subscription_at(customer, at)?;
        let period = billing_period(&self.catalog, sub, at)?;
        let key = (sub.id.clone(), period.start);
        if let Some(done) = state.closed.get(&key) {
            return Ok(done.clone());
        }
        let billing = self.billing(state, sub, period);
        let due = billing.arrears_due();
        if now < due {
            let message = alloc::format!(
                "the period {} – {} has not ended: it can be closed from {}",
                period.start.to_rfc3339(),
                period.end.to_rfc3339(),
                due.to_rfc3339()
            );
            return Err(Error::new(Code::PeriodOpen, "/at", message));
        }
        let view = View { catalog: &self.catalog, state };
        let mut doc = billing.arrears(&view, InvoiceStatus::Final)?;
        let (adjustments, billed) = self.late_usage(state, &key, doc.currency)?;
        doc.add_adjustments(adjustments)?;
        let c = self.by_id.get(customer).copied().ok_or_else(no_customer)?;
        let state = self.state_mut(c)?;
        for (k, b) in billed {
            state.billed.insert(k, b);
        }
        let mut billed = Billed::of(&doc)?;
        billed.events = self.events_in(self.state(c)?, &key);
        let state = self.state_mut(c)?;
        state.billed.insert(key.clone(), billed);
        state.closed.insert(key, doc.clone());
        Ok(doc)
    }

    /// The adjustment lines for usage that reached the customer's closed periods (same
    /// currency) after they closed, and their billed state once these lines are issued.
    #[allow(
        clippy::type_complexity,
        reason = "the lines and the billed state they lead to, returned together to its two callers"
    )]
    fn late_usage(
        &self,
        state: &CustomerState,
        closing: &(String, Timestamp),
        currency: &str,
    ) -> Result<(Vec<crate::billing::Line>, Vec<((String, Timestamp), Billed)>)> {
        let mut lines = Vec::new();
        let mut updated = Vec::new();
        // While every closed period has the events it had when last billed, nothing is late.
        if state.billed.iter().all(|(k, b)| b.events == self.events_in(state, k)) {
            return Ok((lines, updated));
        }
        for (key, billed) in state.billed.iter().filter(|(k, b)| *k != closing && b.currency == currency) {
            let Some(sub) = state.customer.subscriptions.iter().find(|s| s.id == key.0) else { continue };
            let Ok(period) = billing_period(&self.catalog, sub, key.1) else { continue };
            let view = View { catalog: &self.catalog, state };
            let recomputed = self.billing(state, sub, period).arrears(&view, InvoiceStatus::Final)?;
            let mut next = billed.clone();
            lines.extend(next.adjust(&sub.id, &recomputed)?);
            next.events = self.events_in(state, key);
            updated.push((key.clone(), next));
        }
        Ok((lines, updated))
    }

    /// Events metered (all metrics) in the usage period of a billed (subscription, period).
    fn events_in(&self, state: &CustomerState, key: &(String, Timestamp)) -> Option<u64> {
        let sub = state.customer.subscriptions.iter().find(|s| s.id == key.0)?;
        let period = billing_period(&self.catalog, sub, key.1).ok()?;
        let start = self.billing(state, sub, period).usage_period().start;
        Some(state.ledgers.iter().filter_map(|l| l.period(start)).map(|p| p.events).sum())
    }

    /// Takes back what a stored closed invoice (JSON, as the hub keeps it) billed, so that a
    /// restarted hub bills late usage as the difference: its own period and the adjustments
    /// it carried for earlier ones.
    pub fn restore_closed(&mut self, customer: &str, invoice: &Value) {
        let Some(&c) = self.by_id.get(customer) else { return };
        let Some((key, billed, later)) = crate::billing::billed_from_json(invoice) else { return };
        let Some(state) = self.customers.get_mut(c) else { return };
        for (period, line, amount, precise) in later {
            if let Some(b) = state.billed.get_mut(&period) {
                let _ = b.record(line, amount, precise); // overflow: that line stays as it was
            }
        }
        state.billed.insert(key, billed);
    }

    fn subscription_at(
        &self,
        customer: &str,
        t: Timestamp,
    ) -> Result<(&CustomerState, &crate::customer::Subscription)> {
        let state = self.customer(customer).ok_or_else(no_customer)?;
        let subs = &state.customer.subscriptions;
        let sub = subs
            .iter()
            .find(|s| s.is_active(t))
            .or_else(|| subs.iter().filter(|s| s.started_at <= t).max_by_key(|s| s.started_at))
            .ok_or_else(|| {
                Error::new(Code::NotAllowedHere, "/customerId", "the customer has no subscription at this time")
            })?;
        Ok((state, sub))
    }

    /// Makes the balance of `customer`'s wallet the figure of their definition, whatever was
    /// debited since it was last defined (a top-up written into the definition); what was
    /// debited stays debited.
    pub fn adopt_wallet_definition(&mut self, customer: &str) {
        let Some(state) = self.by_id.get(customer).and_then(|&c| self.customers.get_mut(c)) else { return };
        if let (Some(w), Some(def)) = (&mut state.wallet, &state.customer.wallet) {
            w.balance = def.balance;
            w.defined = def.balance;
        }
    }

    /// The wallet balance of a customer, at full precision.
    pub fn wallet_balance(&self, customer: &str) -> Option<Decimal> {
        self.customer(customer).and_then(|s| s.wallet.as_ref()).map(|w| w.balance)
    }
}

fn no_customer() -> Error {
    Error::new(Code::UnknownReference, "/customerId", "no customer with this id")
}
