//! Using features: `consume` (direct, idempotent by id) and `ingest` (events metered for every
//! matching metric, consuming the metered features those metrics feed, all or nothing).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::position::lost;
use super::priceable::{check_negative, check_priceable, data_pointer, priced};
use super::state::CustomerState;
use super::verdict::{judge, use_units, Verdict};
use super::{Dedupe, Engine};
use crate::catalog::{Catalog, PriceTarget};
use crate::customer::Customer;
use crate::entitlements::{Decision, Reason, WalletView};
use crate::error::{Code, Error, Result};
use crate::metering::{group_of, matches, observe, Event, Fold, Observation};
use crate::money::{add, sub};
use crate::time::{period_containing, Duration, Period, Timestamp};

/// The result of ingesting one event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct IngestOutcome {
    /// False when the event was denied and nothing of it was applied.
    pub allowed: bool,
    /// `ok`, `unknown_customer` or `limit_reached`.
    pub reason: Reason,
    /// A decision per metered feature the event consumes (the denials, when denied).
    pub decisions: Vec<Decision>,
    /// Real-time charges of instant prices, debited from the wallet.
    pub charges: Vec<super::Charge>,
    /// True when the denial is the wallet's: the real-time charges did not fit its balance.
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub wallet_denied: bool,
    /// True when this `(source, id)` was seen before: the first result is returned.
    pub duplicate: bool,
    /// True when no metric counts the event.
    pub unmatched: bool,
    /// The customer's wallet as this engine knows it, when they have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub wallet: Option<WalletView>,
}

/// The first outcome remembered for `event` under `key`, marked `duplicate`; an error when the
/// id was used for another payload (`idempotency_mismatch`).
pub(super) fn repeat_of(
    memory: &Dedupe<(u64, IngestOutcome)>,
    key: &str,
    event: &Event,
) -> Result<Option<IngestOutcome>> {
    let Some((print, first)) = memory.get(key) else { return Ok(None) };
    if *print != super::dedupe::payload_print(event) {
        let message = "this (source, id) was used for an event with another subject, type or data";
        return Err(Error::new(Code::IdempotencyMismatch, "/id", message));
    }
    let mut again = first.clone();
    again.duplicate = true;
    Ok(Some(again))
}

pub(super) fn outcome(allowed: bool, reason: Reason, decisions: Vec<Decision>, unmatched: bool) -> IngestOutcome {
    IngestOutcome {
        allowed,
        reason,
        decisions,
        charges: Vec::new(),
        wallet_denied: false,
        duplicate: false,
        unmatched,
        wallet: None,
    }
}

/// What an event would take from one access.
struct Want {
    /// The access's position.
    access: usize,
    /// Units it would consume in all.
    total: Decimal,
    /// Each metric's (position, units) share of them, in fold order.
    parts: Vec<(usize, Decimal)>,
}

/// Idempotency namespace of `consume` ids (an event source cannot contain a NUL).
const CONSUME_SOURCE: &str = "\u{0}consume";

/// The group of a direct consume: no dimension is known.
static NO_GROUP: [Option<String>; 16] = [const { None }; 16];

impl Engine {
    /// Uses `n` units of `feature_key`: all-or-nothing on a hard limit, overage on a soft one.
    /// With an `id`, a repeat (by the same customer) returns the first decision and changes
    /// nothing. A use that its metric's prices cannot rate without event data (a `matrix`
    /// without a default, a `dynamic` price read from events) is an error at `/featureKey`.
    pub fn consume(
        &mut self,
        customer: &str,
        feature_key: &str,
        n: Decimal,
        id: Option<&str>,
        now: Timestamp,
    ) -> Result<Decision> {
        if n < Decimal::ZERO {
            return Err(Error::new(Code::InvalidValue, "/quantity", "a quantity to consume must not be negative"));
        }
        let dedupe_key = id.map(|id| Dedupe::<Decision>::key(&alloc::format!("{CONSUME_SOURCE}{customer}"), id));
        if let Some((asked, first)) = dedupe_key.as_deref().and_then(|k| self.consumed.get(k)) {
            if *asked != n || *first.feature_key != *feature_key {
                let message = "this id was used for a consume of another feature or quantity";
                return Err(Error::new(Code::IdempotencyMismatch, "/id", message));
            }
            return Ok(first.clone());
        }
        let (c, a) = match self.locate(customer, feature_key, now) {
            Ok(found) => found,
            Err(refusal) => return Ok(refusal),
        };
        // A use its metric's prices could not rate (no event data to read) is refused.
        self.check_direct_use(c, a, now)?;
        let seq = self.next_seq();
        let verdict = self.use_access(super::position::Units { c, a, n, seq, now }, id)?;
        let mut decision = verdict.decision(self.access(c, a)?, now);
        if verdict.paid {
            decision.wallet = self.wallet_view(c).map(alloc::boxed::Box::new);
        }
        if let (true, Some(k)) = (verdict.allowed, dedupe_key) {
            self.consumed.insert(k, now, (n, decision.clone()), now);
        }
        Ok(decision)
    }

    /// Ingests a usage event (JSON): meters it for every matching metric and consumes the
    /// metered features those metrics feed. A hard-limit denial applies nothing. An event that a
    /// price of the customer's cannot rate (`no_price_for_dimension`, `missing_property`,
    /// `price_out_of_bounds`, `unknown_rate`) is an error and is not remembered as seen.
    pub fn ingest(&mut self, value: &Value, now: Timestamp) -> Result<IngestOutcome> {
        let event = Event::decode(value, now)?;
        self.ingest_event(&event, now)
    }

    /// [`Engine::ingest`] for a decoded event.
    pub fn ingest_event(&mut self, event: &Event, now: Timestamp) -> Result<IngestOutcome> {
        self.ingest_with(event, now, None)
    }

    /// Ingests an event. `recorded` (at the hub) records usage an edge already allowed: past any
    /// limit, debiting the wallet what the edge declared it debited.
    pub(super) fn ingest_with(
        &mut self,
        event: &Event,
        now: Timestamp,
        recorded: Option<&super::Declared>,
    ) -> Result<IngestOutcome> {
        let force = recorded.is_some();
        let key = Dedupe::<IngestOutcome>::key(&event.source, &event.id);
        if let Some(again) = repeat_of(&self.events, &key, event)? {
            return Ok(again);
        }
        if !force && !self.external_dedupe && event.time < self.events.horizon(now) {
            // Older than what the memory answers for (its window, or what its size cap made it
            // forget): it may have been counted already.
            let message =
                "the event is older than the idempotency memory reaches (its window, or what its size cap forgot)";
            return Err(Error::new(Code::EventTooOld, "/time", message));
        }
        if !force && event.time.0 > now.0.saturating_add(self.max_future_ms) {
            // The hub (`record`, `force`) applies its own policy before recording.
            let message =
                alloc::format!("the event is too far in the future: more than {} ms after now", self.max_future_ms);
            return Err(Error::new(Code::InvalidTimestamp, "/time", message));
        }
        let seq = self.next_seq();
        let Some(&c) = self.by_id.get(&event.subject) else {
            return Ok(outcome(false, Reason::UnknownCustomer, Vec::new(), false));
        };
        // The catalog is shared, so the folds may borrow it while the engine changes.
        let shared = self.catalog.clone();
        let catalog = &*shared;
        let state = self.customers.get_mut(c).ok_or_else(lost)?;
        // 1. Observe every matching metric (any bad value rejects the whole event), and check
        // that every price on it can rate the event (refused at the door, SPEC §13).
        let mut folds = Vec::new();
        // One ledger per catalog metric, in catalog order.
        for ((i, metric), ledger) in catalog.billable_metrics.iter().enumerate().zip(&mut state.ledgers) {
            if !matches(metric, event) {
                continue;
            }
            let obs = observe(metric, event)?;
            let customer = &state.customer;
            check_priceable(catalog, customer, i, Some(&event.data), event.time)?;
            if matches!(obs, Observation::Number(v) if v < Decimal::ZERO) {
                let at = metric.value_property.as_ref().map_or_else(|| String::from("/data"), data_pointer);
                check_negative(catalog, customer, i, &at, event.time)?;
            }
            let period = ledger.period_for(event.time, || metering_span(catalog, customer, &metric.id, event.time));
            let group = Cow::Owned(group_of(metric, event));
            let covered = Decimal::ZERO;
            folds.push((i, Fold { metric, period, time: event.time, seq, obs, units: Decimal::ONE, group, covered }));
        }
        if folds.is_empty() {
            let result = outcome(true, Reason::Ok, Vec::new(), true);
            self.events.insert(key, event.time, (super::dedupe::payload_print(event), result.clone()), now);
            return Ok(result);
        }
        // 2. What each metered feature would consume, and whether every hard limit allows it.
        // Per access: the total it would consume and what each metric contributes to it.
        let mut wants: Vec<Want> = Vec::new();
        // Hard limits whose usage period ended before the event's time: no balance and no lease
        // covers that period any more, so such usage is not waved through (decision 86).
        let mut ended: Vec<usize> = Vec::new();
        for (i, fold) in &folds {
            let delta = state.ledgers.get(*i).ok_or_else(lost)?.delta(fold)?;
            if delta <= Decimal::ZERO {
                continue;
            }
            for (a, access) in state.access.iter_mut().enumerate() {
                if access.meter.is_none() || !access.entitled(now) || !access.consumed_by(*i, now) {
                    continue;
                }
                let Some(meter) = access.meter.as_mut() else { continue }; // checked above
                meter.advance(now)?;
                if !meter.period.is_some_and(|p| p.contains(event.time)) {
                    if !force
                        && !meter.soft
                        && meter.period.is_some_and(|p| event.time < p.start)
                        && !ended.contains(&a)
                    {
                        ended.push(a);
                    }
                    continue; // usage of another period is billed but does not move today's balance
                }
                match wants.iter_mut().find(|w| w.access == a) {
                    Some(w) => {
                        w.total = add(w.total, delta)?;
                        w.parts.push((*i, delta));
                    }
                    None => wants.push(Want { access: a, total: delta, parts: alloc::vec![(*i, delta)] }),
                }
            }
        }
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(wants.len());
        for w in &wants {
            let v = judge(state.access.get_mut(w.access).ok_or_else(lost)?, w.total, now)?;
            verdicts.push(if force { Verdict { allowed: true, reason: Reason::Ok, ..v } } else { v });
        }
        if !ended.is_empty() {
            let denied = ended
                .iter()
                .map(|a| {
                    let access = state.access.get_mut(*a).ok_or_else(lost)?;
                    let v = judge(access, Decimal::ZERO, now)?;
                    Ok(Verdict { allowed: false, reason: Reason::LimitReached, ..v }.decision(access, now))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(outcome(false, Reason::LimitReached, denied, false));
        }
        if !force && self.leases.is_some() {
            // With leases on, every hard limit also needs its lease to cover the use (asked
            // only when every limit allows it), and no answer is exact.
            let all_allowed = verdicts.iter().all(|v| v.allowed);
            for (w, v) in wants.iter().zip(verdicts.iter_mut()) {
                if !all_allowed {
                    v.exact = v.figures.is_none();
                    continue;
                }
                *v = self.gate(c, w.access, w.total, *v, now)?;
            }
        }
        if !force && self.leases.is_some() && verdicts.iter().any(|v| !v.allowed) {
            // So that one sync brings every lease this event needs: the wallet's demand too.
            let state = self.customers.get(c).ok_or_else(lost)?;
            let pending = super::billing::instant_charges(catalog, state, event, &folds, None)?;
            self.wallet_gate(c, &pending, now)?;
        }
        let state = self.customers.get_mut(c).ok_or_else(lost)?;
        if verdicts.iter().any(|v| !v.allowed) {
            let reason = verdicts.iter().find(|v| !v.allowed).map_or(Reason::LimitReached, |v| v.reason);
            let denied = wants
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| !v.allowed)
                .map(|(w, v)| Ok(v.decision(state.access.get(w.access).ok_or_else(lost)?, now)))
                .collect::<Result<_>>()?;
            return Ok(outcome(false, reason, denied, false));
        }
        // 3. Real-time charges of instant prices must fit the wallet (with leases on: the
        // edge's wallet lease), all or nothing with the units above.
        let pending = super::billing::instant_charges(catalog, state, event, &folds, recorded)?;
        if !force {
            // The folds borrow the shared catalog, not the engine, so the gate may look.
            if let Some(reason) = self.wallet_gate(c, &pending, now)? {
                let mut denied = outcome(false, reason, Vec::new(), false);
                denied.wallet_denied = true;
                denied.wallet = self.wallet_view(c);
                return Ok(denied);
            }
        }
        let state = self.customers.get_mut(c).ok_or_else(lost)?;
        // 4. Apply. What grants cover (min(n, balance) of each use) is attributed to the
        // metrics that asked for it, in order, and recorded with their fold.
        for (w, before) in wants.iter().zip(&verdicts) {
            let mut covered = before.figures.map_or(Decimal::ZERO, |f| f.balance.min(w.total));
            for (i, delta) in &w.parts {
                let share = covered.min(*delta);
                covered = sub(covered, share)?;
                if let Some((_, fold)) = folds.iter_mut().find(|(m, _)| m == i) {
                    fold.covered = add(fold.covered, share)?;
                }
            }
        }
        for (i, fold) in &folds {
            state.ledgers.get_mut(*i).ok_or_else(lost)?.fold(fold)?;
        }
        let mut decisions = Vec::with_capacity(wants.len());
        for (w, before) in wants.iter().zip(verdicts) {
            let access = state.access.get_mut(w.access).ok_or_else(lost)?;
            let after = use_units(access, before, w.total, now, force)?;
            decisions.push(after.decision(access, now));
        }
        // Metered by some metric, but neither priced for this customer nor feeding one of their
        // features: accepted and kept in the ledger, and said to be unmatched (decision 111).
        let unmatched = wants.is_empty()
            && !folds.iter().any(|(i, _)| {
                priced(catalog, &state.customer, *i, event.time)
                    || state.access.iter().any(|a| a.meter.is_some() && a.consumed_by(*i, event.time))
            });
        let spend = super::billing::total(&pending)?;
        let mut charges = super::billing::apply_charges(state, pending)?;
        if !force {
            for w in &wants {
                self.take_lease(c, w.access, w.total)?;
            }
            self.take_wallet(c, spend)?;
            self.queue_event(event, &charges);
        }
        let mut result = outcome(true, Reason::Ok, decisions, unmatched);
        result.wallet = self.wallet_view(c);
        if let Some(w) = &result.wallet {
            charges.iter_mut().for_each(|ch| ch.wallet_balance = Some(w.balance.clone()));
        }
        result.charges = charges;
        self.events.insert(key, event.time, (super::dedupe::payload_print(event), result.clone()), now);
        Ok(result)
    }
}

/// Records the units of `u` consumed directly (`covered` of them by grants) on the customer's
/// ledger of the metric at `index`.
pub(super) fn record_units(
    catalog: &Catalog,
    state: &mut CustomerState,
    index: usize,
    u: super::position::Units,
    covered: Decimal,
) -> Result<()> {
    let super::position::Units { n, seq, now, .. } = u;
    let Some(metric) = catalog.billable_metrics.get(index) else { return Ok(()) };
    let customer = &state.customer;
    let Some(ledger) = state.ledgers.get_mut(index) else { return Ok(()) };
    let period = ledger.period_for(now, || metering_span(catalog, customer, &metric.id, now));
    let group = match NO_GROUP.get(..metric.group_by.len()) {
        Some(none) => Cow::Borrowed(none),
        None => Cow::Owned(alloc::vec![None; metric.group_by.len()]),
    };
    let fold = Fold { metric, period, time: now, seq, obs: Observation::Number(n), units: n, group, covered };
    ledger.fold(&fold)
}

/// The billing period an event of `metric_id` at `t` falls in, and the span `[from, until)`
/// around `t` in which no subscription starts or ends (so the answer holds there).
fn metering_span(
    catalog: &Catalog,
    customer: &Customer,
    metric_id: &str,
    t: Timestamp,
) -> (Period, Timestamp, Timestamp) {
    let period = metering_period(catalog, customer, metric_id, t);
    let (mut from, mut until) = (period.start, period.end);
    for sub in &customer.subscriptions {
        for edge in [Some(sub.started_at), sub.ending_at].into_iter().flatten() {
            if edge <= t {
                from = from.max(edge);
            } else {
                until = until.min(edge);
            }
        }
    }
    (period, from, until)
}

/// The metering period an event of `metric_id` at `t` falls in: the billing period of the active
/// subscription whose plan prices the metric (clipped to the time that subscription is active),
/// else of the first active subscription, else the UTC month.
pub fn metering_period(catalog: &Catalog, customer: &Customer, metric_id: &str, t: Timestamp) -> Period {
    let active = customer.subscriptions.iter().filter(|s| s.is_active(t));
    let mut fallback = None;
    for sub in active {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        let prices_metric = sub.prices(plan).any(|p| matches!(&p.target, PriceTarget::Metric(m) if m == metric_id));
        let period = period_containing(sub.anchor(), plan.billing_cadence, t);
        if prices_metric {
            if let Some(p) = period {
                // The part of the period this subscription covers: a plan change inside a period
                // meters each part apart, so each subscription bills its own.
                let start = p.start.max(sub.started_at);
                return Period { start, end: sub.ending_at.map_or(p.end, |e| e.min(p.end)).max(start) };
            }
        }
        fallback = fallback.or(period);
    }
    fallback
        .or_else(|| period_containing(Timestamp(0), Duration::Months(1), t))
        .unwrap_or(Period { start: t, end: Timestamp(t.0.saturating_add(1)) })
}
