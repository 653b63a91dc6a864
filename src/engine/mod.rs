//! The engine: one façade over a catalog and its customers that answers `check`, `consume`
//! and `ingest` (SPEC §5). It owns all mutable state; the wasm and hub layers wrap it.

mod dedupe;
mod hash;
mod snapshot;

pub use dedupe::{Dedupe, DEFAULT_WINDOW_MS};
pub use snapshot::Snapshot;

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Catalog, FeatureType, PriceTarget};
use crate::customer::Customer;
use crate::entitlements::{resolve, Access, Decision, Reason};
use crate::error::{Code, Error, Result};
use crate::metering::{group_of, matches, observe, Event, Fold, MetricLedger, Observation};
use crate::money::{add, sub};
use crate::time::{period_containing, Duration, Period, Timestamp};
use hash::Map;

/// The result of ingesting one event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestOutcome {
    /// False when the event was denied and nothing of it was applied.
    pub allowed: bool,
    /// `ok`, `unknown_customer` or `limit_reached`.
    pub reason: Reason,
    /// A decision per metered feature the event consumes.
    pub decisions: Vec<Decision>,
    /// Real-time charges (instant prices).
    pub charges: Vec<Value>,
    /// True when this `(source, id)` was seen before: the first result is returned.
    pub duplicate: bool,
    /// True when no metric counts the event.
    pub unmatched: bool,
}

/// A customer with the state the engine keeps for them.
#[derive(Clone, Debug)]
pub struct CustomerState {
    /// As given.
    pub customer: Customer,
    /// Access per feature key.
    pub access: Map<Arc<str>, Access>,
    /// Usage per metric index.
    pub ledgers: BTreeMap<usize, MetricLedger>,
}

/// Options of an engine.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long (ms of event time before `now`) idempotency keys are remembered.
    pub dedupe_window_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options { dedupe_window_ms: DEFAULT_WINDOW_MS }
    }
}

/// The entitlement and metering engine.
#[derive(Clone, Debug)]
pub struct Engine {
    catalog: Arc<Catalog>,
    feature_types: Map<Arc<str>, FeatureType>,
    customers: Map<String, CustomerState>,
    events: Dedupe<IngestOutcome>,
    consumed: Dedupe<Decision>,
    seq: u64,
    snapshot_version: u64,
}

/// Idempotency namespace of `consume` ids (an event source cannot contain a NUL).
const CONSUME_SOURCE: &str = "\u{0}consume";

impl Engine {
    /// An engine over a catalog with no customers.
    pub fn new(catalog: Catalog, options: Options) -> Engine {
        let mut feature_types = Map::default();
        for f in &catalog.features {
            feature_types.entry(Arc::from(f.key.as_str())).or_insert(f.kind);
        }
        Engine {
            catalog: Arc::new(catalog),
            feature_types,
            customers: Map::default(),
            events: Dedupe::new(options.dedupe_window_ms),
            consumed: Dedupe::new(options.dedupe_window_ms),
            seq: 0,
            snapshot_version: 0,
        }
    }

    /// An engine from a snapshot (`{ catalog, customers, ... }`), validated whole.
    pub fn from_snapshot(value: &Value, options: Options) -> Result<Engine, Vec<Error>> {
        let snap = Snapshot::from_value(value)?;
        let mut engine = Engine::new(snap.catalog, options);
        engine.snapshot_version = snap.snapshot_version;
        for c in snap.customers {
            engine.put_customer(c);
        }
        Ok(engine)
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The version of the snapshot loaded.
    pub fn snapshot_version(&self) -> u64 {
        self.snapshot_version
    }

    /// Adds or replaces a customer from JSON (validated against the catalog). Replacing keeps
    /// the usage recorded so far; balances are rebuilt from the new definition.
    pub fn upsert_customer(&mut self, value: &Value) -> Result<(), Vec<Error>> {
        let mut problems = Vec::new();
        match Customer::decode(value, "", &self.catalog, &mut problems) {
            Some(c) if problems.is_empty() => {
                self.put_customer(c);
                Ok(())
            }
            _ => Err(problems),
        }
    }

    fn put_customer(&mut self, customer: Customer) {
        let access = resolve(&self.catalog, &customer).into_iter().collect();
        let mut access: Map<Arc<str>, Access> = access;
        let ledgers = match self.customers.remove(&customer.id) {
            Some(old) => {
                // Usage so far survives a redefinition: balances are rebuilt from the new grants
                // minus what was already used of each.
                for (key, new) in access.iter_mut() {
                    if let (Some(m), Some(old_m)) = (&mut new.meter, old.access.get(key).and_then(|a| a.meter.as_ref()))
                    {
                        m.carry_over(old_m);
                    }
                }
                let mut ledgers = old.ledgers;
                // Periods depend on subscriptions, which may have changed.
                ledgers.values_mut().for_each(MetricLedger::forget_period);
                ledgers
            }
            None => BTreeMap::new(),
        };
        self.customers.insert(customer.id.clone(), CustomerState { customer, access, ledgers });
    }

    /// A customer's state.
    pub fn customer(&self, id: &str) -> Option<&CustomerState> {
        self.customers.get(id)
    }

    /// Number of customers.
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    fn key_of(&self, key: &str) -> (Arc<str>, Option<FeatureType>) {
        match self.feature_types.get_key_value(key) {
            Some((k, t)) => (k.clone(), Some(*t)),
            None => (Arc::from(key), None),
        }
    }

    /// The denial for a customer or feature that cannot be looked at further.
    fn denial(&self, state: Option<&CustomerState>, key: &str, now: Timestamp) -> Decision {
        let (arc, kind) = self.key_of(key);
        let reason = match (state, kind) {
            (None, _) => Reason::UnknownCustomer,
            (_, None) => Reason::UnknownFeature,
            (Some(s), Some(_)) if !s.customer.subscriptions.iter().any(|sub| sub.is_active(now)) => {
                Reason::NotSubscribed
            }
            _ => Reason::NoEntitlement,
        };
        Decision::plain(false, reason, arc, kind)
    }

    /// May `customer` use `feature_key` at `now`?
    pub fn check(&mut self, customer: &str, feature_key: &str, now: Timestamp) -> Result<Decision> {
        let Some(state) = self.customers.get_mut(customer) else { return Ok(self.denial(None, feature_key, now)) };
        match state.access.get_mut(feature_key) {
            Some(access) if access.entitled(now) => decide(access, Decimal::ZERO, now),
            _ => {
                let state = self.customers.get(customer);
                Ok(self.denial(state, feature_key, now))
            }
        }
    }

    /// Uses `n` units of `feature_key`: all-or-nothing on a hard limit, overage on a soft one.
    /// With an `id`, a repeat returns the first decision and changes nothing.
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
        // Ids are per customer: two customers may both send "req-1".
        let dedupe_key = id.map(|id| Dedupe::<Decision>::key(&alloc::format!("{CONSUME_SOURCE}{customer}"), id));
        if let Some(first) = dedupe_key.as_deref().and_then(|k| self.consumed.get(k)) {
            return Ok(first.clone());
        }
        let seq = self.next_seq();
        let catalog = self.catalog.clone();
        let Some(state) = self.customers.get_mut(customer) else { return Ok(self.denial(None, feature_key, now)) };
        let Some(access) = state.access.get_mut(feature_key).filter(|a| a.entitled(now)) else {
            let state = self.customers.get(customer);
            return Ok(self.denial(state, feature_key, now));
        };
        let decision = decide(access, n, now)?;
        if decision.allowed && access.meter.is_some() {
            if let Some(meter) = &mut access.meter {
                meter.apply(n, now, false)?;
            }
            let metric = access.consuming_metric(now);
            let after = applied(decision, n)?;
            if let Some(metric) = metric {
                record_units(&catalog, state, metric, n, seq, now)?;
            }
            if let Some(k) = dedupe_key {
                self.consumed.insert(k, now, after.clone(), now);
            }
            return Ok(after);
        }
        Ok(decision)
    }

    /// Ingests a usage event (JSON): meters it for every matching metric and consumes the
    /// metered features those metrics feed. A hard-limit denial applies nothing.
    pub fn ingest(&mut self, value: &Value, now: Timestamp) -> Result<IngestOutcome> {
        let event = Event::decode(value, now)?;
        self.ingest_event(&event, now)
    }

    /// [`Engine::ingest`] for a decoded event.
    pub fn ingest_event(&mut self, event: &Event, now: Timestamp) -> Result<IngestOutcome> {
        let key = Dedupe::<IngestOutcome>::key(&event.source, &event.id);
        if let Some(first) = self.events.get(&key) {
            let mut again = first.clone();
            again.duplicate = true;
            return Ok(again);
        }
        if event.time < self.events.horizon(now) {
            return Err(Error::new(Code::EventTooOld, "/time", "the event is older than the idempotency window"));
        }
        let seq = self.next_seq();
        let catalog = self.catalog.clone();
        let Some(state) = self.customers.get_mut(&event.subject) else {
            return Ok(outcome(false, Reason::UnknownCustomer, Vec::new(), false));
        };
        // 1. Observe every matching metric (any bad value rejects the whole event).
        let mut folds = Vec::new();
        for (i, metric) in catalog.billable_metrics.iter().enumerate() {
            if !matches(metric, event) {
                continue;
            }
            let obs = observe(metric, event)?;
            let ledger = state.ledgers.entry(i).or_default();
            let period =
                ledger.period_for(event.time, || metering_span(&catalog, &state.customer, &metric.id, event.time));
            let fold = Fold {
                metric,
                period,
                time: event.time,
                seq,
                obs,
                units: Decimal::ONE,
                group: Cow::Owned(group_of(metric, event)),
            };
            folds.push((i, fold));
        }
        if folds.is_empty() {
            let result = outcome(true, Reason::Ok, Vec::new(), true);
            self.events.insert(key, event.time, result.clone(), now);
            return Ok(result);
        }
        // 2. What each metered feature would consume, and whether every hard limit allows it.
        let mut wants: Vec<(Arc<str>, Decimal)> = Vec::new();
        for (i, fold) in &folds {
            let delta = state.ledgers.get(i).map_or_else(|| MetricLedger::default().delta(fold), |l| l.delta(fold))?;
            if delta <= Decimal::ZERO {
                continue;
            }
            for access in state.access.values_mut() {
                if access.meter.is_none() || !access.entitled(now) || !access.consumed_by(*i, now) {
                    continue;
                }
                let meter = access.meter.as_mut().expect("checked above");
                meter.advance(now)?;
                if !meter.period.is_some_and(|p| p.contains(event.time)) {
                    continue; // usage of another period is billed but does not move today's balance
                }
                match wants.iter_mut().find(|(k, _)| *k == access.key) {
                    Some((_, total)) => *total = add(*total, delta)?,
                    None => wants.push((access.key.clone(), delta)),
                }
            }
        }
        let mut decisions = Vec::with_capacity(wants.len());
        for (key, n) in &wants {
            let access = state.access.get_mut(key).expect("collected from this map");
            decisions.push(decide(access, *n, now)?);
        }
        if decisions.iter().any(|d| !d.allowed) {
            decisions.retain(|d| !d.allowed);
            return Ok(outcome(false, Reason::LimitReached, decisions, false));
        }
        // 3. Apply.
        for (i, fold) in &folds {
            state.ledgers.entry(*i).or_default().fold(fold)?;
        }
        for ((key, n), decision) in wants.iter().zip(decisions.iter_mut()) {
            let access = state.access.get_mut(key).expect("collected from this map");
            if let Some(meter) = &mut access.meter {
                meter.apply(*n, now, false)?;
            }
            *decision = applied(decision.clone(), *n)?;
        }
        let result = outcome(true, Reason::Ok, decisions, false);
        self.events.insert(key, event.time, result.clone(), now);
        Ok(result)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A metric's quantity for a customer in a period (0 when nothing was metered).
    pub fn quantity(&self, customer: &str, metric_id: &str, period: Period) -> Result<Decimal> {
        let Some((i, metric)) = self.catalog.billable_metrics.iter().enumerate().find(|(_, m)| m.id == metric_id)
        else {
            return Err(Error::new(Code::UnknownReference, "/metricId", "no such billable metric"));
        };
        match self.customers.get(customer).and_then(|s| s.ledgers.get(&i)) {
            Some(ledger) => ledger.quantity(metric, period),
            None => MetricLedger::default().quantity(metric, period),
        }
    }

    /// The quote of SPEC §6.1 for a request `{ planId, usage, eventCount? }` on this catalog.
    pub fn quote(&self, request: &Value) -> Result<crate::billing::Quote, Vec<Error>> {
        let req = crate::billing::QuoteRequest::from_value(request, None)?;
        crate::billing::quote(&self.catalog, &req).map_err(|e| alloc::vec![e])
    }

    /// Number of idempotency keys remembered (events and consumes).
    pub fn remembered_keys(&self) -> usize {
        self.events.len() + self.consumed.len()
    }
}

fn outcome(allowed: bool, reason: Reason, decisions: Vec<Decision>, unmatched: bool) -> IngestOutcome {
    IngestOutcome { allowed, reason, decisions, charges: Vec::new(), duplicate: false, unmatched }
}

/// The decision for `access` if `n` more units were used at `now` (n = 0: a check).
fn decide(access: &mut Access, n: Decimal, now: Timestamp) -> Result<Decision> {
    let key = access.key.clone();
    let Some(meter) = &mut access.meter else {
        let mut d = Decision::plain(true, Reason::Ok, key, Some(access.kind));
        d.config = access.config(now);
        return Ok(d);
    };
    meter.advance(now)?;
    let figures = meter.balance(now)?;
    let allowed = meter.soft || if n.is_zero() { figures.balance > Decimal::ZERO } else { figures.balance >= n };
    let reason = if allowed { Reason::Ok } else { Reason::LimitReached };
    let mut d = Decision::plain(allowed, reason, key, Some(FeatureType::Metered));
    d.figures = Some(figures);
    Ok(d)
}

/// The allowing decision `d` (taken before `n` units were applied) with the figures after: the
/// buckets gave min(n, balance), the rest is overage. Cheaper than asking the meter again.
fn applied(mut d: Decision, n: Decimal) -> Result<Decision> {
    if let Some(f) = &mut d.figures {
        let burned = n.min(f.balance);
        f.balance = sub(f.balance, burned)?;
        f.usage = add(f.usage, n)?;
        f.overage = add(f.overage, sub(n, burned)?)?;
    }
    Ok(d)
}

/// The group of a direct consume: no dimension is known.
static NO_GROUP: [Option<String>; 16] = [const { None }; 16];

/// Records `n` units consumed directly on the customer's ledger of the metric at `index`.
fn record_units(
    catalog: &Catalog,
    state: &mut CustomerState,
    index: usize,
    n: Decimal,
    seq: u64,
    now: Timestamp,
) -> Result<()> {
    let Some(metric) = catalog.billable_metrics.get(index) else { return Ok(()) };
    let ledger = state.ledgers.entry(index).or_default();
    let period = ledger.period_for(now, || metering_span(catalog, &state.customer, &metric.id, now));
    let group = match NO_GROUP.get(..metric.group_by.len()) {
        Some(none) => Cow::Borrowed(none),
        None => Cow::Owned(alloc::vec![None; metric.group_by.len()]),
    };
    let fold = Fold { metric, period, time: now, seq, obs: Observation::Number(n), units: n, group };
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

/// The billing period an event of `metric_id` at `t` falls in: that of the active subscription
/// whose plan prices the metric, else of the first active subscription, else the UTC month.
pub fn metering_period(catalog: &Catalog, customer: &Customer, metric_id: &str, t: Timestamp) -> Period {
    let active = customer.subscriptions.iter().filter(|s| s.is_active(t));
    let mut fallback = None;
    for sub in active {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        let prices_metric = plan.prices.iter().any(|p| matches!(&p.target, PriceTarget::Metric(m) if m == metric_id));
        let period = period_containing(sub.anchor(), plan.billing_cadence, t);
        if prices_metric {
            if let Some(p) = period {
                return p;
            }
        }
        fallback = fallback.or(period);
    }
    fallback
        .or_else(|| period_containing(Timestamp(0), Duration::Months(1), t))
        .unwrap_or(Period { start: t, end: Timestamp(t.0.saturating_add(1)) })
}
