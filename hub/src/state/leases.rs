//! Leases: the escrow that shares hard limits and wallets out to the edges and to the hub's own
//! engine, lease reports, collection and revocation.

use std::collections::BTreeSet;

use serde_json::json;

use super::{first_problem, text, HubError, HubState, Reply, HUB_EDGE};
use crate::store::{Changes, LeaseId, LeaseRow, Loaded};
use tollgate::engine::Engine;
use tollgate::entitlements::Reason;
use tollgate::error::{Code, Error};
use tollgate::money::{parse_decimal, plain};
use tollgate::sync::escrow::{Holder, Lease, Reporter};
use tollgate::sync::{Escrow, LeaseGrant, LeaseKey, LeaseReport, Mode, Policy, SyncRequest, SyncResponse, Terms};
use tollgate::time::Timestamp;
use tollgate::Decimal;

/// The `meta` entry listing the revoked edges (a JSON array of edge ids).
const REVOKED_META: &str = "revoked_edges";

/// How long a lease that expired without a final report is kept apart before it is settled as
/// fully used (its edge is gone): a day.
const UNREPORTED_GRACE_MS: i64 = 86_400_000;

/// The `meta` entries `hub_seen:<boot id>`: when each hub run on a shared store last ticked (ms).
const SEEN_META: &str = "hub_seen:";

/// How often the leases are collected (ms).
const COLLECT_EVERY_MS: i64 = 60_000;

/// True for the denials that a sync with the hub's escrow may lift.
pub(super) fn lease_reason(reason: Reason) -> bool {
    matches!(reason, Reason::LeaseExhausted | Reason::LeaseExpired | Reason::Offline)
}

fn lease_id(key: &LeaseKey, h: &Holder) -> LeaseId {
    LeaseId {
        customer_id: key.customer_id.clone(),
        key: key.key.clone(),
        period: key.period.0,
        edge_id: h.edge_id.clone(),
        boot_id: h.boot_id.clone(),
        epoch: i64::from(h.epoch),
    }
}

fn lease_row(key: &LeaseKey, edge_id: &str, boot_id: &str, epoch: u32, lease: &Lease) -> LeaseRow {
    LeaseRow {
        customer_id: key.customer_id.clone(),
        key: key.key.clone(),
        period: key.period.0,
        edge_id: edge_id.into(),
        boot_id: boot_id.into(),
        epoch: i64::from(epoch),
        granted: plain(lease.granted),
        returned: plain(lease.returned),
        used: plain(lease.used),
        expires_at: lease.expires_at.0,
        closed: lease.closed,
        allowance: plain(lease.allowance),
    }
}

/// Whether the hub answers a lease report, and against which terms: the key must be leased
/// now (a hard-limit feature of its current period, or a wallet) or be a lease the hub holds for
/// this edge already (a final report of an earlier period), and its counters must agree with
/// what the hub granted (`used` and `returned` ≤ `granted`; a new lease has used nothing).
fn judge_report(
    engine: &mut Engine,
    report: &LeaseReport,
    held: Option<&Lease>,
    now: Timestamp,
) -> Result<Terms, Error> {
    let terms = engine.lease_terms(&report.key, now)?;
    if terms.is_none() && held.is_none() {
        return Err(Error::new(
            Code::UnknownReference,
            "",
            "no such lease: the key is not a hard-limit feature of its current period nor a wallet",
        ));
    }
    let granted = held.map_or(Decimal::ZERO, |l| l.granted);
    if report.used > granted || report.returned > granted {
        return Err(Error::new(Code::InvalidValue, "", "used and returned cannot exceed what the hub granted"));
    }
    Ok(terms.unwrap_or_default())
}

/// The answer to a refused report: the lease is over (`closed`), at what the hub granted.
fn closed(report: &LeaseReport, held: Option<&Lease>) -> LeaseGrant {
    LeaseGrant {
        key: report.key.clone(),
        epoch: report.epoch,
        granted: held.map_or(Decimal::ZERO, |l| l.granted),
        ttl_ms: 0,
        mode: Mode::Closed,
        shrink_to: None,
        others_usage: Decimal::ZERO,
        allowance: Decimal::ZERO,
        budget: Decimal::ZERO,
    }
}

pub(super) fn overflow(path: &str) -> Error {
    Error::new(Code::Overflow, path, "a lease counter is too large to represent exactly")
}

fn decimal_of(text: &str, what: &str) -> Result<Decimal, String> {
    parse_decimal(text).ok_or_else(|| format!("stored {what} {text:?} is not a decimal"))
}

/// A stored lease row as the escrow keeps it.
fn parse_row(row: &LeaseRow) -> Result<(LeaseKey, Holder, Lease), String> {
    let key = LeaseKey { customer_id: row.customer_id.clone(), key: row.key.clone(), period: Timestamp(row.period) };
    let epoch = u32::try_from(row.epoch).map_err(|_| format!("stored lease epoch {} is out of range", row.epoch))?;
    let holder = Holder { edge_id: row.edge_id.clone(), boot_id: row.boot_id.clone(), epoch };
    let lease = Lease {
        granted: decimal_of(&row.granted, "lease granted")?,
        returned: decimal_of(&row.returned, "lease returned")?,
        used: decimal_of(&row.used, "lease used")?,
        expires_at: Timestamp(row.expires_at),
        closed: row.closed,
        allowance: decimal_of(&row.allowance, "lease allowance")?,
    };
    Ok((key, holder, lease))
}

/// The escrow and what governs it: the policy, the revoked edges, the hub's own boot id.
pub(super) struct Leases {
    escrow: Escrow,
    policy: Policy,
    /// This run's boot id: the hub's own leases are held under it.
    boot_id: String,
    /// Edges whose leases an admin revoked: none is granted until the revocation is lifted.
    revoked: BTreeSet<String>,
    /// When leases were last collected.
    collected_at: Timestamp,
    /// The store is shared by several hubs: each says it is alive at every tick, and the hub's
    /// own leases of a run that stopped saying so are closed by whichever hub notices.
    shared: bool,
    /// Shared stores: when each hub run was last seen (ms, its own clock), by boot id.
    seen: std::collections::HashMap<String, i64>,
}

impl Leases {
    /// An empty escrow.
    pub(super) fn new(policy: Policy, boot_id: String, now: Timestamp) -> Leases {
        Leases {
            escrow: Escrow::default(),
            policy,
            boot_id,
            revoked: BTreeSet::new(),
            collected_at: now,
            shared: false,
            seen: std::collections::HashMap::new(),
        }
    }

    /// This run's boot id.
    pub(super) fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// Loads the stored leases and revoked edges, and closes the hub's own leases of runs that
    /// are over ([`Leases::close_gone`]), which gives back what they did not use.
    pub(super) fn restore(&mut self, loaded: &Loaded, shared: bool, changes: &mut Changes) -> Result<(), String> {
        self.shared = shared;
        for (key, value) in &loaded.meta {
            self.follow_meta(key, value)?;
        }
        for row in &loaded.leases {
            let (key, holder, lease) = parse_row(row)?;
            self.escrow.accounts.entry(key).or_default().leases.insert(holder, lease);
        }
        // On SQLite every earlier run is over; on a shared store, only those not seen lately.
        let now = self.collected_at;
        if shared {
            changes.meta.push((format!("{SEEN_META}{}", self.boot_id), now.0.to_string()));
            self.seen.insert(self.boot_id.clone(), now.0);
        }
        self.close_gone(now, changes);
        Ok(())
    }

    /// The time after which a hub run that has not ticked is taken for gone: three of its ticks.
    fn gone_after_ms(&self) -> i64 {
        3 * i64::try_from((self.policy.ttl_ms / 4).clamp(250, 10_000)).unwrap_or(10_000)
    }

    /// Closes the hub's own leases of runs that are over (any other run on SQLite; on a shared
    /// store, a run not seen for [`Leases::gone_after_ms`]) at what they used, which is exact:
    /// a hub writes its lease's `used` in the same transaction as the events it covers.
    fn close_gone(&mut self, now: Timestamp, changes: &mut Changes) {
        let gone_before = now.0.saturating_sub(self.gone_after_ms());
        let (me, seen, shared) = (&self.boot_id, &self.seen, self.shared);
        for (key, account) in &mut self.escrow.accounts {
            for (h, lease) in &mut account.leases {
                let gone = !shared || seen.get(&h.boot_id).is_none_or(|at| *at < gone_before);
                if h.edge_id == HUB_EDGE && h.boot_id != *me && !lease.closed && gone {
                    lease.closed = true;
                    changes.leases.push(lease_row(key, &h.edge_id, &h.boot_id, h.epoch, lease));
                }
            }
        }
    }

    /// Another hub's change to a lease: the row as it now stands.
    pub(super) fn follow_row(&mut self, row: &LeaseRow) -> Result<(), String> {
        let (key, holder, lease) = parse_row(row)?;
        self.escrow.accounts.entry(key).or_default().leases.insert(holder, lease);
        Ok(())
    }

    /// Another hub's collection of a lease.
    pub(super) fn follow_removal(&mut self, id: &LeaseId) {
        let key = LeaseKey { customer_id: id.customer_id.clone(), key: id.key.clone(), period: Timestamp(id.period) };
        let Ok(epoch) = u32::try_from(id.epoch) else { return };
        let holder = Holder { edge_id: id.edge_id.clone(), boot_id: id.boot_id.clone(), epoch };
        if let Some(account) = self.escrow.accounts.get_mut(&key) {
            account.leases.remove(&holder);
            if account.leases.is_empty() {
                self.escrow.accounts.remove(&key);
            }
        }
    }

    /// A `meta` entry this part keeps (the revoked edges, when hubs were last seen), as stored
    /// or as another hub changed it.
    pub(super) fn follow_meta(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key == REVOKED_META {
            self.revoked = serde_json::from_str(value).map_err(|e| format!("revoked edges: {e}"))?;
        } else if let Some(boot) = key.strip_prefix(SEEN_META) {
            let at = value.parse().map_err(|_| format!("{key}: {value:?} is not a time"))?;
            self.seen.insert(boot.to_string(), at);
        }
        Ok(())
    }

    /// Answers an edge's lease reports, each on its own: a report that is refused (a key that is
    /// not leased, counters that contradict what the hub granted, an overflow) changes nothing
    /// of its lease, is answered `closed` so the edge stops using it and drops it, and is listed
    /// in `problems`; the others go ahead.
    pub(super) fn answer(
        &mut self,
        engine: &mut Engine,
        req: &SyncRequest,
        now: Timestamp,
        changes: &mut Changes,
        problems: &mut Vec<Error>,
    ) -> Vec<LeaseGrant> {
        let mut grants = Vec::with_capacity(req.leases.len());
        let revoked = self.revoked.contains(&req.edge_id);
        let mut finished = Vec::new();
        for (i, report) in req.leases.iter().enumerate() {
            let holder = Holder { edge_id: req.edge_id.clone(), boot_id: req.boot_id.clone(), epoch: report.epoch };
            let existing = self.escrow.accounts.get(&report.key).and_then(|a| a.leases.get(&holder)).cloned();
            let stale = existing.is_none()
                && (report.is_final || self.escrow.superseded(&report.key, &req.edge_id, &req.boot_id, report.epoch));
            if stale {
                // A report of a lease already settled, or of an epoch this edge run has moved on
                // from (a resend, a late duplicate): it is over, nothing changes.
                grants.push(closed(report, None));
                continue;
            }
            let answered = match judge_report(engine, report, existing.as_ref(), now) {
                Ok(_) if revoked => {
                    Err(Error::new(Code::Forbidden, "", "this edge's leases are revoked: nothing is granted to it"))
                }
                Ok(terms) => {
                    self.escrow.report(req.reporter(), report, terms, &self.policy, now).map_err(|_| overflow(""))
                }
                Err(e) => Err(e),
            };
            match answered {
                Ok((grant, lease)) => {
                    changes.leases.push(lease_row(&report.key, &req.edge_id, &req.boot_id, report.epoch, &lease));
                    grants.push(grant);
                    if lease.closed {
                        finished.push(report.key.clone());
                    }
                }
                Err(e) => {
                    // Put the lease back as it was (a refused report changes nothing).
                    if let Some(account) = self.escrow.accounts.get_mut(&report.key) {
                        match &existing {
                            Some(l) => account.leases.insert(holder, l.clone()),
                            None => account.leases.remove(&holder),
                        };
                        if account.leases.is_empty() {
                            self.escrow.accounts.remove(&report.key);
                        }
                    }
                    problems.push(e.under(&format!("/leases/{i}")));
                    grants.push(closed(report, existing.as_ref()));
                }
            }
        }
        for key in &finished {
            self.settle(key, now, changes);
        }
        grants
    }

    /// The hub's own engine syncs with the escrow in-process, as an edge named [`HUB_EDGE`]:
    /// its lease reports are answered like any edge's (its events are stored already).
    pub(super) fn round(&mut self, engine: &mut Engine, now: Timestamp, changes: &mut Changes) {
        let request = match engine.sync_request(now) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                eprintln!("tollgate hub: the hub's own sync request failed: {e}");
                return;
            }
        };
        let mut grants = Vec::with_capacity(request.leases.len());
        for report in &request.leases {
            let terms = engine.lease_terms(&report.key, now).ok().flatten().unwrap_or_default();
            let hub = Reporter { edge_id: HUB_EDGE, boot_id: &self.boot_id };
            match self.escrow.report(hub, report, terms, &self.policy, now) {
                Ok((grant, lease)) => {
                    changes.leases.push(lease_row(&report.key, HUB_EDGE, &self.boot_id, report.epoch, &lease));
                    grants.push(grant);
                }
                Err(_) => eprintln!("tollgate hub: the hub's own lease report overflowed"),
            }
        }
        let response = SyncResponse { ack_seq: request.seq, leases: grants, snapshot: None };
        let applied = serde_json::to_value(&response)
            .map_err(|e| e.to_string())
            .and_then(|v| engine.apply_sync(&v, now).map_err(|errors| first_problem(&errors)));
        if let Err(e) = applied {
            eprintln!("tollgate hub: the hub's own sync response was refused: {e}");
        }
    }

    /// A periodic in-process sync of the hub's own leases (renewals, final reports, the queue
    /// of its events), when its engine says one is due, and the collection of leases.
    fn tick(&mut self, mut engine: Option<&mut Engine>, now: Timestamp) -> Changes {
        let mut changes = Changes::default();
        if self.shared {
            // Alive: said at every tick, and the runs that stopped saying so are closed.
            changes.meta.push((format!("{SEEN_META}{}", self.boot_id), now.0.to_string()));
            self.seen.insert(self.boot_id.clone(), now.0);
            self.close_gone(now, &mut changes);
        }
        if let Some(engine) = engine.as_deref_mut().filter(|e| e.needs_sync(now)) {
            self.round(engine, now, &mut changes);
        }
        if now.0.saturating_sub(self.collected_at.0) >= COLLECT_EVERY_MS {
            self.collect(engine, now, &mut changes);
        }
        changes
    }

    /// Folds the leases of `key` that are over into its settled lease (see
    /// [`Escrow::settle`]), so lease rows stay bounded however many epochs an edge goes through.
    fn settle(&mut self, key: &LeaseKey, now: Timestamp, changes: &mut Changes) {
        let before = Timestamp(now.0.saturating_sub(UNREPORTED_GRACE_MS));
        match self.escrow.settle(key, before, now) {
            Ok(Some((folded, lease))) => {
                for h in folded {
                    changes.leases.retain(|r| {
                        !(r.customer_id == key.customer_id
                            && r.key == key.key
                            && r.period == key.period.0
                            && r.edge_id == h.edge_id
                            && r.boot_id == h.boot_id
                            && r.epoch == i64::from(h.epoch))
                    });
                    changes.leases_removed.push(lease_id(key, &h));
                }
                let settled = Holder::settled();
                changes.leases.push(lease_row(key, &settled.edge_id, &settled.boot_id, settled.epoch, &lease));
            }
            Ok(None) => {}
            Err(_) => eprintln!("tollgate hub: the settled usage of {key:?} overflowed; its leases are kept apart"),
        }
    }

    /// Collects leases: the accounts of keys that are no longer leased (a period that ended, a
    /// feature or wallet gone) once none of their leases can still be used, and in the others
    /// the leases that are over.
    fn collect(&mut self, mut engine: Option<&mut Engine>, now: Timestamp, changes: &mut Changes) {
        self.collected_at = now;
        let keys: Vec<LeaseKey> = self.escrow.accounts.keys().cloned().collect();
        for key in keys {
            let leased = engine.as_deref_mut().is_some_and(|e| matches!(e.lease_terms(&key, now), Ok(Some(_))));
            let Some(account) = self.escrow.accounts.get(&key) else { continue };
            let live = account.leases.values().any(|l| !l.closed && l.expires_at >= now);
            if !leased && !live {
                for h in account.leases.keys() {
                    changes.leases_removed.push(lease_id(&key, h));
                }
                self.escrow.accounts.remove(&key);
            } else {
                self.settle(&key, now, changes);
            }
        }
    }

    /// Revokes `edge_id`: every lease it holds is settled as fully used. Returns how many.
    fn revoke(&mut self, edge_id: &str, now: Timestamp, changes: &mut Changes) -> usize {
        if self.revoked.insert(edge_id.to_string()) {
            changes.meta.push((REVOKED_META.into(), text(&json!(self.revoked))));
        }
        let mut settled = 0usize;
        let keys: Vec<LeaseKey> = self.escrow.accounts.keys().cloned().collect();
        for key in keys {
            let Some(account) = self.escrow.accounts.get_mut(&key) else { continue };
            let mut any = false;
            for (h, l) in &mut account.leases {
                if h.edge_id == edge_id && !l.closed {
                    l.used = l.commitment();
                    l.closed = true;
                    changes.leases.push(lease_row(&key, &h.edge_id, &h.boot_id, h.epoch, l));
                    any = true;
                    settled += 1;
                }
            }
            if any {
                self.settle(&key, now, changes);
            }
        }
        settled
    }

    /// Lifts the revocation of `edge_id`.
    fn lift(&mut self, edge_id: &str, changes: &mut Changes) {
        if self.revoked.remove(edge_id) {
            changes.meta.push((REVOKED_META.into(), text(&json!(self.revoked))));
        }
    }
}

impl HubState {
    /// The periodic in-process sync of the hub's own leases, and their collection.
    pub fn tick(&mut self, now: Timestamp) -> Changes {
        self.leases.tick(self.engine.as_mut(), now)
    }

    /// `POST /v1/edges/{id}/revoke`: the edge gets no lease until the revocation is lifted, and
    /// every lease it holds is settled now as fully used (what it may have used of them is
    /// unknown). Its events are still recorded: they are usage that happened.
    pub fn revoke_edge(&mut self, edge_id: &str, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        if edge_id == HUB_EDGE || !crate::tokens::valid_edge_id(edge_id) {
            return Err(HubError::new(Code::InvalidValue, "", "not an edge id"));
        }
        let mut changes = Changes::default();
        let settled = self.leases.revoke(edge_id, now, &mut changes);
        let body = json!({ "edgeId": edge_id, "revoked": true, "leasesSettled": settled });
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `DELETE /v1/edges/{id}/revoke`: the edge may be granted leases again.
    pub fn lift_revocation(&mut self, edge_id: &str) -> Result<(Reply, Changes), HubError> {
        let mut changes = Changes::default();
        self.leases.lift(edge_id, &mut changes);
        Ok((Reply::json(200, &json!({ "edgeId": edge_id, "revoked": false }))?, changes))
    }
}
