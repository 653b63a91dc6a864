//! The engine as one edge among many (SPEC §7, §8 `leases: true`): hard-limit metered features
//! also need the edge's lease from the hub, every use is queued as a usage event for the hub,
//! and sync requests and responses go in and out as values. The hub's own engine uses
//! [`Engine::record`] for usage the edges already allowed.

use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::billing::{self, charges_attribute, Charge, PendingCharge, CHARGES_ATTRIBUTE};
use super::position::lost;
use super::usage::IngestOutcome;
use super::verdict::Verdict;
use super::Engine;
use crate::entitlements::Reason;
use crate::entitlements::WalletView;
use crate::error::{Code, Error, Result};
use crate::json::Fields;
use crate::metering::Event;
use crate::sync::{EdgeLeases, LeaseKey, QueuedUse, SyncRequest, SyncResponse, Terms, WALLET_KEY};
use crate::time::Timestamp;

/// The period a meter's lease key names: the start of its usage period, or the Unix epoch for
/// a meter that never resets (whose "period" is all of time, which no timestamp can name).
fn lease_period(meter: &crate::entitlements::Meter) -> Timestamp {
    match (meter.cadence, meter.period) {
        (Some(_), Some(p)) => p.start,
        _ => Timestamp(0),
    }
}

/// When a use happened and what it charged.
pub(super) struct Charged<'a> {
    pub(super) time: Timestamp,
    pub(super) charges: &'a [Charge],
}

/// The lease key of a customer's wallet: one per customer, outside any period.
pub fn wallet_key(customer_id: &str) -> LeaseKey {
    LeaseKey { customer_id: customer_id.into(), key: WALLET_KEY.into(), period: Timestamp(0) }
}

pub use crate::sync::CONSUME_EVENT;

impl Engine {
    /// Makes this engine an edge that enforces hard limits through hub leases.
    pub fn enable_leases(&mut self, edge_id: &str, boot_id: &str) {
        self.leases = Some(EdgeLeases::new(edge_id, boot_id));
    }

    /// Makes this engine's wallet balances the ledger's (the hub's engine, which records every
    /// edge's debits): decisions report them instead of the view through a wallet lease.
    pub fn keep_wallets_of_record(&mut self) {
        self.wallets_of_record = true;
    }

    /// The edge's sync state, when leases are on.
    pub fn leases(&self) -> Option<&EdgeLeases> {
        self.leases.as_ref()
    }

    /// The lease key of the access at `(c, a)` if it needs a lease (leases on, a hard-limit
    /// meter), from the customer's cache: built only when the usage period moved.
    fn lease_key(&mut self, c: usize, a: usize) -> Option<&LeaseKey> {
        self.leases.as_ref()?;
        let state = self.customers.get_mut(c)?;
        let access = state.access.get(a)?;
        let meter = access.meter.as_ref().filter(|m| !m.soft)?;
        let period = lease_period(meter);
        let slot = state.lease_keys.get_mut(a)?;
        if slot.as_ref().is_none_or(|k| k.period != period) {
            let key = String::from(&*access.key);
            *slot = Some(LeaseKey { customer_id: state.customer.id.clone(), key, period });
        }
        slot.as_ref()
    }

    /// With leases on, turns an allowed verdict for `n` units of `(c, a)` into the lease's
    /// refusal when the lease does not cover it (and remembers the demand).
    /// At an edge every metered answer rests on leases or on usage the hub has not acknowledged,
    /// so it is not `exact`; `needs_sync` says when a sync would help this key.
    pub(super) fn gate(
        &mut self,
        c: usize,
        a: usize,
        n: Decimal,
        mut verdict: Verdict,
        now: Timestamp,
    ) -> Result<Verdict> {
        if self.leases.is_none() || verdict.figures.is_none() {
            return Ok(verdict);
        }
        verdict.exact = false;
        if !verdict.allowed || self.lease_key(c, a).is_none() {
            return Ok(verdict);
        }
        let key = self.customers.get(c).and_then(|s| s.lease_keys.get(a));
        let (Some(leases), Some(Some(key))) = (self.leases.as_mut(), key) else {
            return Ok(verdict);
        };
        match leases.check_use(key, n, now) {
            Ok(wants_sync) => {
                verdict.needs_sync = wants_sync;
                Ok(verdict)
            }
            Err(refusal) => {
                leases.refused(key, n.max(Decimal::ONE))?;
                // `lease_exhausted` (and its kin) means "a sync would help now"; a spent budget
                // is `limit_reached` with the figures the hub last gave (balance 0).
                let needs_sync = refusal != crate::sync::Refusal::Spent;
                let figures = verdict.figures.map(|f| leases.known_figures(key, f));
                Ok(Verdict { allowed: false, reason: refusal.reason(), needs_sync, figures, ..verdict })
            }
        }
    }

    /// With leases on, records `n` units used of `(c, a)` on its lease.
    pub(super) fn take_lease(&mut self, c: usize, a: usize, n: Decimal) -> Result<()> {
        if self.leases.is_none() || self.lease_key(c, a).is_none() {
            return Ok(());
        }
        let key = self.customers.get(c).and_then(|s| s.lease_keys.get(a));
        if let (Some(leases), Some(Some(key))) = (self.leases.as_mut(), key) {
            leases.take(key, n)?;
        }
        Ok(())
    }

    /// Whether customer `c`'s wallet may pay `charges` at `now`; `None` when it may. Without
    /// leases the wallet's balance and credit limit decide; with leases, the edge's wallet lease
    /// (a refusal is remembered as demand for the next sync).
    pub(super) fn wallet_gate(
        &mut self,
        c: usize,
        charges: &[PendingCharge],
        now: Timestamp,
    ) -> Result<Option<Reason>> {
        let total = billing::total(charges)?;
        if total <= Decimal::ZERO {
            return Ok(None);
        }
        let state = self.customers.get(c).ok_or_else(lost)?;
        if !billing::payable(state, charges)? {
            return Ok(Some(Reason::LimitReached));
        }
        let Some(leases) = self.leases.as_mut() else {
            let spendable = state.wallet.as_ref().map_or(Decimal::ZERO, super::WalletState::spendable);
            return Ok((spendable < total).then_some(Reason::LimitReached));
        };
        let key = wallet_key(&state.customer.id);
        match leases.check(&key, total, now) {
            Ok(()) => Ok(None),
            Err(refusal) => {
                leases.refused(&key, total)?;
                Ok(Some(refusal.reason()))
            }
        }
    }

    /// With leases on, records `amount` spent under customer `c`'s wallet lease.
    pub(super) fn take_wallet(&mut self, c: usize, amount: Decimal) -> Result<()> {
        if amount <= Decimal::ZERO {
            return Ok(());
        }
        if let Some(leases) = self.leases.as_mut() {
            let state = self.customers.get(c).ok_or_else(lost)?;
            leases.take(&wallet_key(&state.customer.id), amount)?;
        }
        Ok(())
    }

    /// Customer `c`'s wallet as this engine knows it.
    pub(super) fn wallet_view(&self, c: usize) -> Option<WalletView> {
        let state = self.customers.get(c)?;
        let w = state.wallet.as_ref()?;
        let lease = self.leases.as_ref().and_then(|l| l.leases.get(&wallet_key(&state.customer.id)));
        let balance = match lease {
            Some(l) if l.budget != Decimal::MAX && !self.wallets_of_record => l.left().saturating_sub(w.credit_limit),
            _ => w.balance,
        };
        Some(WalletView {
            currency: w.currency.code(),
            balance: w.currency.format(balance),
            leased: self.leases.as_ref().map(|_| w.currency.format(lease.map_or(Decimal::ZERO, |l| l.unused()))),
            spent: self.leases.as_ref().map(|_| w.currency.format(lease.map_or(Decimal::ZERO, |l| l.used))),
        })
    }

    /// With leases on, queues a `consume` of `n` units of `(c, a)` for the hub, with what it
    /// charged (kept compact: shared ids, no JSON, until a sync request is built).
    pub(super) fn queue_consume(&mut self, u: super::position::Units, id: Option<&str>, at: Charged<'_>) {
        let super::position::Units { c, a, n, seq, now: _ } = u;
        let Some(leases) = self.leases.as_mut() else { return };
        // The caller has just applied the use at `(c, a)`, so both positions are held.
        let Some((state, access)) = self.customers.get(c).and_then(|s| Some((s, s.access.get(a)?))) else { return };
        leases.push_use(QueuedUse {
            customer: state.shared_id.clone(),
            feature: access.key.clone(),
            quantity: n,
            id: id.map(String::from),
            seq,
            time: at.time,
            charges: (!at.charges.is_empty()).then(|| charges_attribute(at.charges)),
        });
    }

    /// With leases on, queues an ingested event for the hub, with what it charged.
    pub(super) fn queue_event(&mut self, event: &Event, charges: &[Charge]) {
        let Some(leases) = self.leases.as_mut() else { return };
        let mut value = json!({
            "id": event.id, "source": event.source, "type": event.kind, "subject": event.subject,
            "time": event.time.to_rfc3339(), "data": event.data,
        });
        if let (false, Some(object)) = (charges.is_empty(), value.as_object_mut()) {
            object.insert(String::from(CHARGES_ATTRIBUTE), charges_attribute(charges));
        }
        leases.push_event(value);
    }

    /// The oldest event time this engine's idempotency memory still covers at `now`: a repeat of
    /// an older event is not recognised here (the hub asks its ledger).
    pub fn remembered_since(&self, now: Timestamp) -> Timestamp {
        self.events.horizon(now)
    }

    /// True when this edge should sync soon (leases on only).
    pub fn needs_sync(&self, now: Timestamp) -> bool {
        self.leases.as_ref().is_some_and(|l| l.needs_sync(now))
    }

    /// Queued events that no sync request has carried yet: when a sync is answered and this is
    /// not zero, send the next page.
    pub fn sync_backlog(&self) -> usize {
        self.leases.as_ref().map_or(0, EdgeLeases::unsent)
    }

    /// The next sync request (leases on), at edge time `now`. Nothing is dropped until a
    /// response acknowledges it, so this may be called any number of times.
    pub fn sync_request(&mut self, now: Timestamp) -> Result<Option<SyncRequest>> {
        let version = self.snapshot_version;
        match self.leases.as_mut() {
            Some(l) => Ok(Some(l.request(now, version)?)),
            None => Ok(None),
        }
    }

    /// Merges the hub's response (leases on), received at edge time `now`, plain or signed
    /// ([`SyncResponse::open`]). With the hub's public key set, only a signed response whose
    /// signature checks (`unsigned_snapshot`, `bad_signature`) and that names this edge and run
    /// (`edgeId`, `bootId`) is taken; without a key both forms are, and a plain response that
    /// names another edge or run is refused. A snapshot in it is applied as by
    /// [`Engine::apply_snapshot_at`] at `now` (checked against the hub's key, refused when older
    /// than the engine's or expired). All or nothing: a response that fails anywhere leaves the
    /// engine as it was.
    pub fn apply_sync(&mut self, response: &Value, now: Timestamp) -> Result<(), Vec<Error>> {
        let Some(current) = self.leases.as_ref() else {
            return Err(alloc::vec![Error::new(Code::NotAllowedHere, "", "this engine does not use leases")]);
        };
        let response = SyncResponse::open(response, self.hub_public_key.as_ref(), &current.edge_id, &current.boot_id)?;
        let mut next = current.clone();
        next.apply(&response, now).map_err(|e| alloc::vec![Error::from(e)])?;
        if let Some(snapshot) = &response.snapshot {
            self.apply_snapshot_at(snapshot, now)?;
        }
        self.leases = Some(next);
        Ok(())
    }

    /// The edge's sync state as JSON text, for durable storage.
    pub fn export_sync_state(&self) -> Result<Option<String>> {
        self.leases.as_ref().map(EdgeLeases::export_state).transpose()
    }

    /// Restores a state exported by [`Engine::export_sync_state`] (turns leases on).
    pub fn import_sync_state(&mut self, state: &Value) -> Result<(), Vec<Error>> {
        self.leases = Some(EdgeLeases::import_state(state)?);
        Ok(())
    }

    /// The terms of a lease key on the hub: for a feature, its limit in that period plus its
    /// tolerance and its offline allowance; for a wallet, everything funded plus the credit
    /// limit and its offline allowance; `None` for what is not leased (unknown, soft, another
    /// period, no wallet).
    pub fn lease_terms(&mut self, key: &LeaseKey, now: Timestamp) -> Result<Option<Terms>> {
        let Some(&c) = self.by_id.get(&key.customer_id) else { return Ok(None) };
        let Some(state) = self.customers.get_mut(c) else { return Ok(None) };
        if key.key == WALLET_KEY {
            let wallet = state.wallet.as_ref().filter(|_| key.period == Timestamp(0));
            return Ok(wallet.map(|w| Terms { budget: w.budget(), allowance: w.offline_allowance }));
        }
        let access = state.access_index(&key.key).and_then(|a| state.access.get_mut(a));
        let Some(meter) = access.and_then(|x| x.meter.as_mut()).filter(|m| !m.soft) else { return Ok(None) };
        meter.advance(now)?;
        if lease_period(meter) != key.period {
            return Ok(None);
        }
        let figures = meter.balance(now)?;
        let budget = crate::money::add(figures.limit, meter.tolerance)?;
        Ok(Some(Terms { budget, allowance: meter.offline_allowance }))
    }

    /// Records usage an edge already allowed under its lease: metered and billed like
    /// [`Engine::ingest`], never denied for a limit. Understands the edges' `consume` events.
    /// Usage that a price cannot rate is refused as by `ingest` and `consume` (a `consume`
    /// event's refusal points at `/data/featureKey`).
    pub fn record(&mut self, value: &Value, now: Timestamp) -> Result<IngestOutcome> {
        let event = Event::decode(value, now)?;
        let declared = billing::declared_charges(value)?;
        self.record_event(&event, &declared, now)
    }

    /// [`Engine::record`] for an event decoded already, with the charges its edge declared
    /// ([`billing::declared_charges`] of its JSON).
    pub fn record_event(
        &mut self,
        event: &Event,
        declared: &billing::Declared,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        if event.kind != CONSUME_EVENT {
            return self.ingest_with(event, now, Some(declared));
        }
        let mut problems = Vec::new();
        let (feature, n) = {
            let Some(mut f) = Fields::open(&event.data, "/data", &mut problems) else {
                return Err(Error::new(Code::InvalidType, "/data", "expected an object"));
            };
            let feature = f.str("featureKey");
            let n = f.decimal("quantity");
            f.finish();
            (feature, n)
        };
        let (Some(feature), Some(n), None) = (feature, n, problems.into_iter().next()) else {
            return Err(Error::new(Code::InvalidValue, "/data", "a consume event needs featureKey and quantity"));
        };
        if n < Decimal::ZERO {
            return Err(Error::new(Code::InvalidValue, "/data/quantity", "must not be negative"));
        }
        let dedupe = super::Dedupe::<IngestOutcome>::key(&event.source, &event.id);
        if let Some(again) = super::usage::repeat_of(&self.events, &dedupe, event)? {
            return Ok(again);
        }
        let located = self.locate(&event.subject, &feature, event.time);
        let result = match located {
            Ok((c, a)) => {
                self.check_direct_use(c, a, event.time).map_err(|e| e.under("/data"))?;
                let seq = self.next_seq();
                let units = super::position::Units { c, a, n, seq, now: event.time };
                let (verdict, charges) = self.force_use(units, declared)?;
                let decision = verdict.decision(self.access(c, a)?, event.time);
                let mut result = super::usage::outcome(true, Reason::Ok, alloc::vec![decision], false);
                result.charges = charges;
                result.wallet = self.wallet_view(c);
                result
            }
            Err(refusal) => super::usage::outcome(false, refusal.reason, alloc::vec![refusal], false),
        };
        self.events.insert(dedupe, event.time, (super::dedupe::payload_print(event), result.clone()), now);
        Ok(result)
    }
}
