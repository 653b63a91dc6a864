//! Pre-resolved handles for the hot path: resolve `(customer, feature)` once, then check or
//! consume by position, without hashing strings or building a full [`Decision`].

use rust_decimal::Decimal;

use super::position::{lost, Units};
use super::verdict::{judge, use_units, Verdict};
use super::Engine;
use crate::entitlements::{Decision, Reason};
use crate::error::{Code, Error, Result};
use crate::time::Timestamp;

/// A customer's access to one feature, by position. Redefining the customer makes it stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    customer: u32,
    access: u32,
    generation: u32,
}

impl Engine {
    /// A handle on `customer`'s access to `feature_key`, or `None` when they have no such access
    /// at all (use `check` for the reason).
    pub fn handle(&self, customer: &str, feature_key: &str) -> Option<Handle> {
        let &c = self.by_id.get(customer)?;
        let state = self.customers.get(c)?;
        let a = state.access_index(feature_key)?;
        Some(Handle { customer: c as u32, access: a as u32, generation: state.generation })
    }

    fn resolve(&self, h: Handle) -> Result<(usize, usize)> {
        let (c, a) = (h.customer as usize, h.access as usize);
        match self.customers.get(c) {
            Some(s) if s.generation == h.generation && a < s.access.len() => Ok((c, a)),
            _ => Err(Error::new(Code::StaleHandle, "", "the customer changed since this handle was made")),
        }
    }

    /// `check` through a handle.
    pub fn check_handle(&mut self, h: Handle, now: Timestamp) -> Result<Verdict> {
        let (c, a) = self.resolve(h)?;
        let access = self.access_mut(c, a)?;
        if !access.entitled(now) {
            return Ok(self.not_entitled_at(c, now));
        }
        let verdict = judge(access, Decimal::ZERO, now)?;
        self.gate(c, a, Decimal::ZERO, verdict, now)
    }

    /// `consume` (without an idempotency id) through a handle.
    pub fn consume_handle(&mut self, h: Handle, n: Decimal, now: Timestamp) -> Result<Verdict> {
        let (c, a) = self.resolve(h)?;
        if n < Decimal::ZERO {
            return Err(Error::new(Code::InvalidValue, "/quantity", "a quantity to consume must not be negative"));
        }
        if !self.access(c, a)?.entitled(now) {
            return Ok(self.not_entitled_at(c, now));
        }
        // A use its metric's prices could not rate (no event data to read) is refused.
        self.check_direct_use(c, a, now)?;
        let seq = self.next_seq();
        self.use_access(Units { c, a, n, seq, now }, None)
    }

    /// The full decision of a verdict obtained through `h`.
    pub fn decision(&self, h: Handle, verdict: Verdict, now: Timestamp) -> Result<Decision> {
        let (c, a) = self.resolve(h)?;
        let access = self.access(c, a)?;
        let mut d = if verdict.allowed || verdict.figures.is_some() {
            verdict.decision(access, now)
        } else {
            verdict.bare(access.key.clone(), Some(access.kind))
        };
        if verdict.paid {
            d.wallet = self.wallet_view(c).map(alloc::boxed::Box::new);
        }
        Ok(d)
    }

    /// The denial for a customer whose access exists but does not count at `now`.
    fn not_entitled_at(&self, c: usize, now: Timestamp) -> Verdict {
        let subscribed = self.customers.get(c).is_some_and(|s| s.subscribed(now));
        Verdict::denied(if subscribed { Reason::NoEntitlement } else { Reason::NotSubscribed })
    }

    /// Applies `n` units of the access at `(c, a)` when its limit (and, with leases on, its
    /// lease) allows, recording them on the metric that consumes it.
    pub(super) fn use_access(&mut self, u: Units, id: Option<&str>) -> Result<Verdict> {
        let Units { c, a, n, seq: _, now } = u;
        let access = self.access_mut(c, a)?;
        let before = judge(access, n, now)?;
        if access.meter.is_none() {
            return Ok(before);
        }
        let before = self.gate(c, a, n, before, now)?;
        if !before.allowed {
            if self.leases.is_some() {
                // So that one sync brings both leases: the wallet's demand too.
                let pending = self.consume_charges(c, a, n, now, None)?;
                self.wallet_gate(c, &pending, now)?;
            }
            return Ok(before);
        }
        // Units whose metric an instant price charges are paid from the wallet, all or nothing
        // with the units themselves.
        let pending = self.consume_charges(c, a, n, now, None)?;
        let paid = !pending.is_empty() && self.state(c)?.wallet.is_some();
        if let Some(reason) = self.wallet_gate(c, &pending, now)? {
            let needs_sync = self.leases.is_some() && reason != Reason::LimitReached;
            return Ok(Verdict { allowed: false, reason, needs_sync, paid, ..before });
        }
        let spend = super::billing::total(&pending)?;
        let after = Verdict { paid, ..self.apply_use(u, before, false)? };
        let charges = super::billing::apply_charges(self.state_mut(c)?, pending)?;
        self.take_lease(c, a, n)?;
        self.take_wallet(c, spend)?;
        self.queue_consume(u, id, super::leased::Charged { time: now, charges: &charges });
        Ok(after)
    }

    /// The real-time charges of consuming `n` units of `(c, a)` (none, without allocating, when
    /// no instant price charges its metric).
    fn consume_charges(
        &self,
        c: usize,
        a: usize,
        n: Decimal,
        now: Timestamp,
        declared: Option<&super::Declared>,
    ) -> Result<alloc::vec::Vec<super::billing::PendingCharge>> {
        let state = self.state(c)?;
        let Some(metric) = state.access.get(a).ok_or_else(lost)?.consuming_metric(now) else {
            return Ok(alloc::vec::Vec::new());
        };
        if !self.instant.get(metric).copied().unwrap_or(false) {
            return Ok(alloc::vec::Vec::new());
        }
        let data = serde_json::Value::Null;
        let u = super::billing::Use { time: now, data: &data, values: &[(metric, n)] };
        super::billing::charges_for(&self.catalog, state, u, declared)
    }

    /// Applies `n` units of `(c, a)` whatever its limit says (usage an edge already allowed),
    /// debiting the wallet what the edge `declared` it charged.
    pub(super) fn force_use(
        &mut self,
        u: Units,
        declared: &super::Declared,
    ) -> Result<(Verdict, alloc::vec::Vec<super::Charge>)> {
        let Units { c, a, n, seq: _, now } = u;
        let access = self.access_mut(c, a)?;
        let before = judge(access, n, now)?;
        if access.meter.is_none() {
            return Ok((before, alloc::vec::Vec::new()));
        }
        let pending = self.consume_charges(c, a, n, now, Some(declared))?;
        let allowed = Verdict { allowed: true, reason: Reason::Ok, ..before };
        let after = self.apply_use(u, allowed, true)?;
        let charges = super::billing::apply_charges(self.state_mut(c)?, pending)?;
        Ok((after, charges))
    }

    /// Applies the units judged `before`; `force` records units past a hard limit as overage.
    fn apply_use(&mut self, u: Units, before: Verdict, force: bool) -> Result<Verdict> {
        let Units { c, a, n, seq: _, now } = u;
        let catalog = &self.catalog;
        let state = self.customers.get_mut(c).ok_or_else(lost)?;
        let access = state.access.get_mut(a).ok_or_else(lost)?;
        let metric = access.consuming_metric(now);
        let covered = before.figures.map_or(Decimal::ZERO, |f| f.balance.max(Decimal::ZERO).min(n));
        let after = use_units(access, before, n, now, force)?;
        if let Some(metric) = metric {
            super::usage::record_units(catalog, state, metric, u, covered)?;
        }
        Ok(after)
    }
}
