//! The hub's side of quota leases (SPEC §7): per key a budget B = limit + tolerance, shared out
//! as leases with cumulative grow-only counters, keeping
//! `Σ over leases of their commitment ≤ B` at every step (the hub's own use goes through a lease
//! it holds itself).
//!
//! A lease commits `granted − returned` while it may still be used, and exactly its final
//! `used` once the edge reports it final. An expired lease is settled pessimistically: it keeps
//! committing `granted − returned` (all of it counted as used) and is never renewed, so the
//! edge, which times the lease from when it sent its request and so always sees it expire
//! first, must report it final and open a new epoch; the final report credits back what it did
//! not use. Every operation here is pure: the hub persists the changed leases before replying.

use alloc::collections::BTreeMap;
use alloc::string::String;
use rust_decimal::Decimal;

use super::message::{LeaseGrant, LeaseKey, LeaseReport, Mode};
use crate::money::{add, mul, sub, Overflow};
use crate::time::Timestamp;

/// How the hub grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Lease lifetime the edge is told (ms).
    pub ttl_ms: u64,
    /// Bound on how much faster the hub's clock may run than an edge's, in parts per million;
    /// the hub keeps a lease `ttl × (1 + margin)` from receipt so it never expires before the
    /// edge's copy.
    pub drift_ppm: u64,
    /// Below this share of the budget left (in percent), the key is in precise mode.
    pub precise_below_percent: u32,
    /// Most of a key's budget (in percent) one lease may hold unused: what a single edge token
    /// can lock away from the others. An edge still uses the whole budget, a share at a time.
    pub edge_share_percent: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { ttl_ms: 30_000, drift_ppm: 10_000, precise_below_percent: 10, edge_share_percent: 50 }
    }
}

impl Policy {
    /// How long the hub keeps a lease alive from receipt: ttl scaled by 2·drift/(1 − drift),
    /// rounded up, plus one millisecond.
    pub fn hub_ttl_ms(&self) -> i64 {
        let ppm = u128::from(self.drift_ppm.min(500_000));
        let ttl = u128::from(self.ttl_ms);
        let margin = (ttl * 2 * ppm).div_ceil(1_000_000 - ppm);
        i64::try_from(ttl + margin + 1).unwrap_or(i64::MAX)
    }
}

/// What the hub grants a key against: its budget and the offline allowance of each lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    /// `limit + tolerance` of a feature; funded money + credit limit of a wallet.
    pub budget: Decimal,
    /// Units of each lease reserved for use while the hub is unreachable (offline mode
    /// `allowance`); 0 for `deny`.
    pub allowance: Decimal,
}

/// Who sent a lease report: an edge and its boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reporter<'a> {
    /// The edge.
    pub edge_id: &'a str,
    /// The edge's boot.
    pub boot_id: &'a str,
}

/// Who holds a lease: an edge's boot and the lease's epoch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holder {
    /// The edge.
    pub edge_id: String,
    /// The edge's boot.
    pub boot_id: String,
    /// Which lease of the key.
    pub epoch: u32,
}

impl Holder {
    /// The holder of a key's settled lease: what every lease that is over used, summed (an
    /// edge id is never empty, so it is no edge's).
    pub fn settled() -> Holder {
        Holder { edge_id: String::new(), boot_id: String::new(), epoch: 0 }
    }
}

/// One lease as the hub keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Units granted (raised only by the hub).
    pub granted: Decimal,
    /// Units given back (highest reported).
    pub returned: Decimal,
    /// Units used (highest reported).
    pub used: Decimal,
    /// Hub time after which the lease is not renewed.
    pub expires_at: Timestamp,
    /// The edge reported it final: `used` is exact and nothing more will be used.
    pub closed: bool,
    /// Of `granted`, the units the edge may use only while the hub is unreachable (set once,
    /// at the lease's first grant that could afford it).
    pub allowance: Decimal,
}

impl Lease {
    /// What the lease holds of the budget.
    pub fn commitment(&self) -> Decimal {
        if self.closed {
            self.used
        } else {
            // Both counters are non-negative and returned ≤ granted: no overflow.
            (self.granted - self.returned.min(self.granted)).max(self.used)
        }
    }
}

/// One key's account: its leases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Leases by holder.
    pub leases: BTreeMap<Holder, Lease>,
}

impl Account {
    /// `Σ commitments`: what the budget must cover.
    pub fn committed(&self) -> Result<Decimal, Overflow> {
        self.leases.values().try_fold(Decimal::ZERO, |sum, l| add(sum, l.commitment()))
    }

    /// Units used as far as the hub knows: every lease's reported `used`.
    pub fn usage(&self) -> Result<Decimal, Overflow> {
        self.leases.values().try_fold(Decimal::ZERO, |sum, l| add(sum, l.used))
    }
}

/// Every key's account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Escrow {
    /// Accounts by key.
    pub accounts: BTreeMap<LeaseKey, Account>,
}

impl Escrow {
    /// Answers one lease report of `from` (an edge's boot) received at hub time `now`, against the
    /// key's [`Terms`]. Returns the grant and the lease as it now stands (to persist).
    pub fn report(
        &mut self,
        from: Reporter<'_>,
        report: &LeaseReport,
        terms: Terms,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<(LeaseGrant, Lease), Overflow> {
        let budget = terms.budget;
        let account = self.accounts.entry(report.key.clone()).or_default();
        let holder = Holder { edge_id: from.edge_id.into(), boot_id: from.boot_id.into(), epoch: report.epoch };
        let committed_before = account.committed()?;
        let lease = account.leases.entry(holder.clone()).or_insert(Lease {
            granted: Decimal::ZERO,
            returned: Decimal::ZERO,
            used: Decimal::ZERO,
            expires_at: now,
            closed: false,
            allowance: Decimal::ZERO,
        });
        let idle = report.used <= lease.used;
        let old_commitment = lease.commitment();
        lease.used = lease.used.max(report.used);
        lease.returned = lease.returned.max(report.returned).min(lease.granted);
        let expired = lease.granted > Decimal::ZERO && now >= lease.expires_at;
        if report.is_final {
            lease.closed = true;
        }
        let mut grant = LeaseGrant {
            key: report.key.clone(),
            epoch: report.epoch,
            granted: lease.granted,
            ttl_ms: 0,
            mode: Mode::Closed,
            shrink_to: None,
            others_usage: Decimal::ZERO,
            allowance: lease.allowance,
            budget,
        };
        if !lease.closed && !expired {
            // What the others hold, plus this lease after the report's returns.
            let others = sub(committed_before, old_commitment)?;
            let mut available = sub(sub(budget, others)?, lease.commitment())?.max(Decimal::ZERO);
            // The offline allowance comes first, once per lease: it is part of `granted`, so it
            // is committed like the rest until the edge reports the lease final.
            if lease.allowance.is_zero() && terms.allowance > Decimal::ZERO {
                let reserve = terms.allowance.min(available);
                lease.allowance = reserve;
                lease.granted = add(lease.granted, reserve)?;
                available = sub(available, reserve)?;
                grant.allowance = reserve;
            }
            // One lease holds at most its share of the budget unused (the allowance included).
            let share = mul(budget.max(Decimal::ZERO), Decimal::from(policy.edge_share_percent.min(100)))?
                / Decimal::ONE_HUNDRED;
            let held = sub(sub(lease.granted, lease.returned)?, lease.used)?.max(Decimal::ZERO);
            let give = report.want.min(available).min(sub(share, held)?.max(Decimal::ZERO));
            lease.granted = add(lease.granted, give)?;
            lease.expires_at = Timestamp(now.0.saturating_add(policy.hub_ttl_ms()));
            let left = sub(available, give)?;
            let percent = Decimal::from(policy.precise_below_percent);
            let precise = mul(left, Decimal::ONE_HUNDRED)? < mul(budget.max(Decimal::ZERO), percent)?;
            let unused = sub(sub(sub(lease.granted, lease.returned)?, lease.used)?, lease.allowance)?;
            grant.granted = lease.granted;
            grant.ttl_ms = policy.ttl_ms;
            grant.mode = if precise { Mode::Precise } else { Mode::Normal };
            // Near exhaustion, an edge that used nothing since its last report and asks for
            // nothing gives its unused units back.
            if precise && idle && report.want.is_zero() && unused > Decimal::ZERO {
                grant.shrink_to = Some(Decimal::ZERO);
            }
        }
        let own_used = lease.used;
        let lease = lease.clone();
        grant.others_usage = sub(account.usage()?, own_used)?;
        Ok((grant, lease))
    }

    /// Folds the leases of `key` that are over into one settled lease per key (held by
    /// [`Holder::settled`]), so an account keeps one row per live lease, the newest ended one
    /// of each edge run (until it is old), and one: a lease
    /// reported final counts its `used`; one expired before `expired_before` and never reported
    /// final counts everything it held (`granted − returned`, at least `used`), as if used — the
    /// pessimistic settlement. Returns the holders folded (to delete) and the settled lease (to
    /// write), or `None` when nothing was over.
    pub fn settle(
        &mut self,
        key: &LeaseKey,
        expired_before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(alloc::vec::Vec<Holder>, Lease)>, Overflow> {
        let Some(account) = self.accounts.get_mut(key) else { return Ok(None) };
        let settled = Holder::settled();
        // The newest lease of each edge run stays apart until it is old, as a marker: a late
        // copy of an earlier report of it (the network duplicates) must find it closed, not
        // open a new lease.
        let mut newest: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        for h in account.leases.keys() {
            let e = newest.entry((h.edge_id.as_str(), h.boot_id.as_str())).or_insert(h.epoch);
            *e = (*e).max(h.epoch);
        }
        let over: alloc::vec::Vec<Holder> = account
            .leases
            .iter()
            .filter(|(h, l)| {
                let marker = newest.get(&(h.edge_id.as_str(), h.boot_id.as_str())) == Some(&h.epoch)
                    && l.expires_at >= expired_before;
                **h != settled && (l.closed || l.expires_at < expired_before) && !marker
            })
            .map(|(h, _)| h.clone())
            .collect();
        if over.is_empty() {
            return Ok(None);
        }
        let mut total = account.leases.get(&settled).map_or(Decimal::ZERO, |l| l.used);
        for h in &over {
            if let Some(l) = account.leases.get(h) {
                total = add(total, l.commitment())?;
            }
        }
        for h in &over {
            account.leases.remove(h);
        }
        let lease = Lease {
            granted: total,
            returned: Decimal::ZERO,
            used: total,
            expires_at: now,
            closed: true,
            allowance: Decimal::ZERO,
        };
        account.leases.insert(settled, lease.clone());
        Ok(Some((over, lease)))
    }

    /// True when the edge run holds a newer lease of `key` than `epoch`: a report of an older
    /// epoch the hub no longer keeps is a late copy (an edge's epochs only grow).
    pub fn superseded(&self, key: &LeaseKey, edge_id: &str, boot_id: &str, epoch: u32) -> bool {
        self.accounts
            .get(key)
            .is_some_and(|a| a.leases.keys().any(|h| h.edge_id == edge_id && h.boot_id == boot_id && h.epoch > epoch))
    }

    /// Units used of `key` as far as the hub knows.
    pub fn usage(&self, key: &LeaseKey) -> Result<Decimal, Overflow> {
        self.accounts.get(key).map_or(Ok(Decimal::ZERO), Account::usage)
    }

    /// What the budget of `key` must cover.
    pub fn committed(&self, key: &LeaseKey) -> Result<Decimal, Overflow> {
        self.accounts.get(key).map_or(Ok(Decimal::ZERO), Account::committed)
    }
}
