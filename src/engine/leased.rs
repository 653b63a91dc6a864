//! The engine as one edge among many (SPEC §7, §8 `leases: true`): hard-limit metered features
//! also need the edge's lease from the hub, every use is queued as a usage event for the hub,
//! and sync requests and responses go in and out as values. The hub's own engine uses
//! [`Engine::record`] for usage the edges already allowed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::usage::IngestOutcome;
use super::verdict::Verdict;
use super::Engine;
use crate::entitlements::Reason;
use crate::error::{Code, Error, Result};
use crate::json::Fields;
use crate::metering::Event;
use crate::money::plain;
use crate::sync::{EdgeLeases, LeaseKey, SyncRequest, SyncResponse};
use crate::time::Timestamp;

/// The `type` of the events an edge emits for `consume` calls, so the hub can bill them.
pub const CONSUME_EVENT: &str = "tollgate.consume";

impl Engine {
    /// Makes this engine an edge that enforces hard limits through hub leases.
    pub fn enable_leases(&mut self, edge_id: &str, boot_id: &str) {
        self.leases = Some(EdgeLeases::new(edge_id, boot_id));
    }

    /// The edge's sync state, when leases are on.
    pub fn leases(&self) -> Option<&EdgeLeases> {
        self.leases.as_ref()
    }

    /// The lease key of the access at `(c, a)` if it needs a lease: a hard-limit meter.
    pub(super) fn lease_key(&self, c: usize, a: usize) -> Option<LeaseKey> {
        self.leases.as_ref()?;
        let state = &self.customers[c];
        let access = &state.access[a];
        let meter = access.meter.as_ref().filter(|m| !m.soft)?;
        Some(LeaseKey {
            customer_id: state.customer.id.clone(),
            key: String::from(&*access.key),
            period: meter.period.map_or(Timestamp(0), |p| p.start),
        })
    }

    /// With leases on, turns an allowed verdict for `n` units of `(c, a)` into the lease's
    /// refusal when the lease does not cover it (and remembers the demand).
    pub(super) fn gate(&mut self, c: usize, a: usize, n: Decimal, verdict: Verdict, now: Timestamp) -> Result<Verdict> {
        if !verdict.allowed {
            return Ok(verdict);
        }
        let Some(key) = self.lease_key(c, a) else { return Ok(verdict) };
        let Some(leases) = self.leases.as_mut() else { return Ok(verdict) };
        match leases.check(&key, n, now) {
            Ok(()) => Ok(verdict),
            Err(refusal) => {
                leases.refused(&key, n.max(Decimal::ONE))?;
                Ok(Verdict { allowed: false, reason: refusal.reason(), ..verdict })
            }
        }
    }

    /// With leases on, records `n` units used of `(c, a)` on its lease.
    pub(super) fn take_lease(&mut self, c: usize, a: usize, n: Decimal) -> Result<()> {
        if let Some(key) = self.lease_key(c, a) {
            if let Some(leases) = self.leases.as_mut() {
                leases.take(&key, n)?;
            }
        }
        Ok(())
    }

    /// With leases on, queues the event of a `consume` for the hub.
    pub(super) fn queue_consume(&mut self, c: usize, a: usize, n: Decimal, id: Option<&str>, seq: u64, now: Timestamp) {
        let Some(leases) = self.leases.as_mut() else { return };
        let state = &self.customers[c];
        let customer = &state.customer.id;
        let id = match id {
            Some(id) => format!("consume:{customer}:{id}"),
            None => format!("consume:{}:{seq}", leases.boot_id),
        };
        leases.push_event(json!({
            "id": id, "source": leases.edge_id, "type": CONSUME_EVENT, "subject": customer,
            "time": now.to_rfc3339(),
            "data": { "featureKey": &*state.access[a].key, "quantity": plain(n) },
        }));
    }

    /// With leases on, queues an ingested event for the hub.
    pub(super) fn queue_event(&mut self, event: &Event) {
        let Some(leases) = self.leases.as_mut() else { return };
        leases.push_event(json!({
            "id": event.id, "source": event.source, "type": event.kind, "subject": event.subject,
            "time": event.time.to_rfc3339(), "data": event.data,
        }));
    }

    /// True when this edge should sync soon (leases on only).
    pub fn needs_sync(&self, now: Timestamp) -> bool {
        self.leases.as_ref().is_some_and(|l| l.needs_sync(now))
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

    /// Merges the hub's response (leases on). A snapshot in it is applied as by
    /// [`Engine::apply_snapshot`] (checked against the hub's key when one is set).
    pub fn apply_sync(&mut self, response: &Value, now: Timestamp) -> Result<(), Vec<Error>> {
        let response = SyncResponse::from_value(response)?;
        if let Some(snapshot) = &response.snapshot {
            self.apply_snapshot(snapshot)?;
        }
        match self.leases.as_mut() {
            Some(l) => l.apply(&response, now).map_err(|e| alloc::vec![Error::from(e)]),
            None => Err(alloc::vec![Error::new(Code::NotAllowedHere, "", "this engine does not use leases")]),
        }
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

    /// Budget of a lease key on the hub: the feature's limit in that period plus its
    /// tolerance; `None` for what is not leased (unknown, soft, another period).
    pub fn lease_budget(&mut self, key: &LeaseKey, now: Timestamp) -> Result<Option<Decimal>> {
        let Some(&c) = self.by_id.get(&key.customer_id) else { return Ok(None) };
        let state = &mut self.customers[c];
        let Some(a) = state.access_index(&key.key) else { return Ok(None) };
        let Some(meter) = state.access[a].meter.as_mut().filter(|m| !m.soft) else { return Ok(None) };
        meter.advance(now)?;
        if meter.period.map_or(Timestamp(0), |p| p.start) != key.period {
            return Ok(None);
        }
        let figures = meter.balance(now)?;
        Ok(Some(crate::money::add(figures.limit, meter.tolerance)?))
    }

    /// Records usage an edge already allowed under its lease: metered and billed like
    /// [`Engine::ingest`], never denied for a limit. Understands the edges' `consume` events.
    pub fn record(&mut self, value: &Value, now: Timestamp) -> Result<IngestOutcome> {
        let event = Event::decode(value, now)?;
        if event.kind != CONSUME_EVENT {
            return self.ingest_with(&event, now, true);
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
        if let Some(first) = self.events.get(&dedupe) {
            let mut again = first.clone();
            again.duplicate = true;
            return Ok(again);
        }
        let located = self.locate(&event.subject, &feature, event.time);
        let result = match located {
            Ok((c, a)) => {
                let seq = self.next_seq();
                let verdict = self.force_use(c, a, n, seq, event.time)?;
                let decision = verdict.decision(&self.customers[c].access[a], event.time);
                super::usage::outcome(true, Reason::Ok, alloc::vec![decision], false)
            }
            Err(refusal) => super::usage::outcome(false, refusal.reason, alloc::vec![refusal], false),
        };
        self.events.insert(dedupe, event.time, result.clone(), now);
        Ok(result)
    }
}
