//! The edge's side of quota leases (SPEC §7): the leases it holds, the usage events the hub has
//! not acknowledged, and the requests and responses that move them.
//!
//! Rule: `n` may be used only if `used + n ≤ granted − returned` and the lease has not expired,
//! timed from when the request that renewed it was *sent*. An expired lease is never used again:
//! its next report is final and the key continues under a new epoch. Counters only grow, and
//! responses merge by max, so a lost, duplicated or reordered message does no harm. Events stay
//! queued until a response acknowledges a request that carried them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::message::CONSUME_EVENT;
use crate::money::plain;

use super::message::{LeaseKey, LeaseReport, Mode, SyncRequest, SyncResponse};
use crate::entitlements::{Balance, Reason};
use crate::money::{add, sub, Overflow};
use crate::time::Timestamp;

/// How many unanswered requests the edge remembers the send time of.
const IN_FLIGHT: usize = 32;

/// Most new events one sync request carries, and about how many bytes of them: after an outage
/// the queue goes to the hub in pages, each well under the hub's body limit.
pub const PAGE_EVENTS: usize = 1_000;
/// See [`PAGE_EVENTS`].
pub const PAGE_BYTES: usize = 1024 * 1024;

/// Why the lease does not allow a use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key's whole budget is used as far as the hub last said: no sync will help until the
    /// budget grows (a grant, a top-up, the next period).
    Spent,
    /// The lease is used up (or the edge holds none yet): sync, then retry.
    Exhausted,
    /// The lease expired and the hub answered recently: sync, then retry.
    Expired,
    /// The lease expired and the hub has not answered for a whole lease lifetime.
    Offline,
}

impl Refusal {
    /// The decision reason of SPEC §5.
    pub fn reason(self) -> Reason {
        match self {
            Refusal::Spent => Reason::LimitReached,
            Refusal::Exhausted => Reason::LeaseExhausted,
            Refusal::Expired => Reason::LeaseExpired,
            Refusal::Offline => Reason::Offline,
        }
    }
}

/// One key's current lease at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeLease {
    /// Which lease of the key.
    pub epoch: u32,
    /// Highest grant seen.
    pub granted: Decimal,
    /// Units given back.
    pub returned: Decimal,
    /// Units used.
    pub used: Decimal,
    /// Edge time at which the lease expires; `None` until the hub first answers.
    pub expires_at: Option<Timestamp>,
    /// How the hub last said it grants this key.
    pub mode: Mode,
    /// Units of the key used by everyone else, as of the hub's last answer.
    pub others_usage: Decimal,
    /// Units refused since the last request (what to ask for).
    pub demand: Decimal,
    /// `used` when the last request was built (the recent rate).
    pub used_at_request: Decimal,
    /// Of `granted`, the units usable only while the hub is unreachable.
    pub allowance: Decimal,
    /// The key's whole budget as the hub last said (`Decimal::MAX` until it says).
    pub budget: Decimal,
}

impl EdgeLease {
    fn fresh(epoch: u32, others_usage: Decimal, budget: Decimal) -> EdgeLease {
        EdgeLease {
            epoch,
            granted: Decimal::ZERO,
            returned: Decimal::ZERO,
            used: Decimal::ZERO,
            expires_at: None,
            mode: Mode::Normal,
            others_usage,
            demand: Decimal::ZERO,
            used_at_request: Decimal::ZERO,
            allowance: Decimal::ZERO,
            budget,
        }
    }

    /// Units still usable while the lease is valid (ignoring expiry): the offline allowance is
    /// kept aside.
    pub fn unused(&self) -> Decimal {
        self.offline_unused().saturating_sub(self.allowance).max(Decimal::ZERO)
    }

    /// Units still usable while the hub is unreachable: everything granted and not used.
    pub fn offline_unused(&self) -> Decimal {
        self.granted.saturating_sub(self.returned).saturating_sub(self.used).max(Decimal::ZERO)
    }

    /// What is left of the key's budget for everyone, as far as this edge knows (an upper bound:
    /// others' usage only grows).
    pub fn left(&self) -> Decimal {
        self.budget.saturating_sub(self.others_usage).saturating_sub(self.used)
    }

    fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

/// A lease the edge will not use again, reported final until the hub acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Highest grant seen.
    pub granted: Decimal,
    /// Units given back.
    pub returned: Decimal,
    /// Units used, final.
    pub used: Decimal,
    /// The `seq` of the first request that carried the final report (0: not sent yet). Only an
    /// answer to it or a later request proves the hub has the report: a `closed` answer to an
    /// earlier, non-final report of the same lease (an expired one) does not.
    pub first_seq: u64,
}

/// The `source` of the `consume` events that carry a caller's id (the same on every edge).
pub const CONSUME_SOURCE: &str = "tollgate:consume";

/// A `consume` queued for the hub, kept compact until a request needs it as an event of type
/// [`CONSUME_EVENT`]: `{ id, source, type, subject, time, data: { featureKey, quantity } }`,
/// where `source` is [`CONSUME_SOURCE`] for a caller's id and the edge's id otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedUse {
    /// The customer.
    pub customer: Arc<str>,
    /// The feature.
    pub feature: Arc<str>,
    /// Units used.
    pub quantity: Decimal,
    /// The caller's idempotency id (the event id is `consume:<customer>:<id>`).
    pub id: Option<String>,
    /// Without an id: the engine's sequence number (the event id is `consume:<boot>:<seq>`).
    pub seq: u64,
    /// When.
    pub time: Timestamp,
    /// What it debited (`tollgatecharges`), when anything.
    pub charges: Option<Value>,
}

/// Demand to ask for, about to expire (within a third of its lifetime), or under a quarter of
/// its grant left while the budget has more.
fn lease_wants_sync(l: &EdgeLease, now: Timestamp, ttl: i64) -> bool {
    !l.demand.is_zero()
        || l.expires_at.is_some_and(|t| t.0.saturating_sub(now.0) < ttl / 3)
        || l.unused()
            .checked_mul(Decimal::from(4))
            .is_some_and(|x| x < l.granted.saturating_sub(l.allowance) && l.left() > Decimal::ZERO)
}

/// A usage event queued for the hub.
#[derive(Clone, Debug, PartialEq)]
pub enum Queued {
    /// An ingested event, as it will be sent.
    Event(Value),
    /// A `consume`.
    Use(QueuedUse),
}

impl Queued {
    /// The event as the hub receives it, from the edge `edge_id` in its run `boot_id`.
    pub fn to_value(&self, edge_id: &str, boot_id: &str) -> Value {
        match self {
            Queued::Event(v) => v.clone(),
            Queued::Use(u) => {
                // A caller's id is the customer's idempotency key whichever edge the call
                // lands on: one source for all edges, so the hub records it once.
                let (id, source) = match &u.id {
                    Some(id) => (format!("consume:{}:{id}", u.customer), CONSUME_SOURCE),
                    None => (format!("consume:{boot_id}:{}", u.seq), edge_id),
                };
                let mut event = json!({
                    "id": id, "source": source, "type": CONSUME_EVENT, "subject": &*u.customer,
                    "time": u.time.to_rfc3339(),
                    "data": { "featureKey": &*u.feature, "quantity": plain(u.quantity) },
                });
                if let (Some(charges), Some(object)) = (&u.charges, event.as_object_mut()) {
                    object.insert(String::from("tollgatecharges"), charges.clone());
                }
                event
            }
        }
    }
}

/// Everything the edge keeps for sync: leases, finished leases, unacknowledged events.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeLeases {
    /// This edge.
    pub edge_id: String,
    /// This run of the edge.
    pub boot_id: String,
    /// The last request's `seq`.
    pub seq: u64,
    /// Send time of recent requests, by `seq`.
    pub in_flight: BTreeMap<u64, Timestamp>,
    /// The current lease per key.
    pub leases: BTreeMap<LeaseKey, EdgeLease>,
    /// Leases reported final, by key and epoch, until acknowledged.
    pub finished: BTreeMap<(LeaseKey, u32), Finished>,
    /// Events not yet acknowledged, with the `seq` of the first request that carried them (0:
    /// none yet).
    pub events: Vec<(u64, Queued)>,
    /// When the hub last answered (edge time).
    pub last_answer: Option<Timestamp>,
    /// The lease lifetime the hub last gave (ms).
    pub ttl_ms: u64,
}

impl EdgeLeases {
    /// An edge with no lease yet.
    pub fn new(edge_id: &str, boot_id: &str) -> EdgeLeases {
        EdgeLeases {
            edge_id: edge_id.into(),
            boot_id: boot_id.into(),
            seq: 0,
            in_flight: BTreeMap::new(),
            leases: BTreeMap::new(),
            finished: BTreeMap::new(),
            events: Vec::new(),
            last_answer: None,
            ttl_ms: 0,
        }
    }

    /// Whether `n` units of `key` may be used at `now`.
    pub fn check(&self, key: &LeaseKey, n: Decimal, now: Timestamp) -> Result<(), Refusal> {
        self.check_use(key, n, now).map(|_| ())
    }

    /// [`EdgeLeases::check`], and when `n` may be used, whether a sync would help the lease
    /// (demand to ask for, about to expire, running low) — one lookup for the hot path.
    pub fn check_use(&self, key: &LeaseKey, n: Decimal, now: Timestamp) -> Result<bool, Refusal> {
        let Some(lease) = self.leases.get(key) else { return Err(Refusal::Exhausted) };
        let ttl = i64::try_from(self.ttl_ms).unwrap_or(i64::MAX);
        let fits = |usable: Decimal| if n.is_zero() { usable > Decimal::ZERO } else { n <= usable };
        let answered_lately = self.answered_lately(now);
        if lease.expires_at.is_none() && self.last_answer.is_some() && !answered_lately {
            return Err(Refusal::Offline); // a new epoch the silent hub never granted
        }
        if lease.expired(now) || lease.mode == Mode::Closed {
            if answered_lately {
                return Err(Refusal::Expired);
            }
            // Offline: only the allowance of a lease that expired (never of a closed one).
            if lease.mode != Mode::Closed && !lease.allowance.is_zero() && fits(lease.offline_unused()) {
                return Ok(true);
            }
            return Err(Refusal::Offline);
        }
        if lease.expires_at.is_none() || !fits(lease.unused()) {
            return Err(if lease.expires_at.is_some() && !fits(lease.left()) {
                Refusal::Spent
            } else {
                Refusal::Exhausted
            });
        }
        Ok(lease_wants_sync(lease, now, ttl))
    }

    /// True when the hub answered within the last lease lifetime.
    fn answered_lately(&self, now: Timestamp) -> bool {
        self.last_answer.is_some_and(|t| now.0.saturating_sub(t.0) < i64::try_from(self.ttl_ms).unwrap_or(i64::MAX))
    }

    /// Records the use of `n` units of `key` (after [`EdgeLeases::check`] allowed it).
    pub fn take(&mut self, key: &LeaseKey, n: Decimal) -> Result<(), Overflow> {
        if let Some(lease) = self.leases.get_mut(key) {
            lease.used = add(lease.used, n)?;
        }
        Ok(())
    }

    /// Records that `n` units of `key` were refused, so the next request asks for them.
    pub fn refused(&mut self, key: &LeaseKey, n: Decimal) -> Result<(), Overflow> {
        let lease = self.leases.entry(key.clone()).or_insert_with(|| EdgeLease::fresh(0, Decimal::ZERO, Decimal::MAX));
        lease.demand = add(lease.demand, n)?;
        Ok(())
    }

    /// Queues a usage event for the hub.
    pub fn push_event(&mut self, event: Value) {
        self.events.push((0, Queued::Event(event)));
    }

    /// Queues a `consume` for the hub.
    pub fn push_use(&mut self, used: QueuedUse) {
        self.events.push((0, Queued::Use(used)));
    }

    /// The events not yet acknowledged, as the hub will receive them.
    pub fn pending_events(&self) -> Vec<Value> {
        self.events.iter().map(|(_, q)| q.to_value(&self.edge_id, &self.boot_id)).collect()
    }

    /// The key's usage as this edge knows it: everyone else's as of the last answer, plus its own.
    pub fn usage(&self, key: &LeaseKey) -> Decimal {
        self.leases.get(key).map_or(Decimal::ZERO, |l| l.others_usage.saturating_add(l.used))
    }

    /// `figures` of `key` as the engine's snapshot has them, corrected by what the hub last said
    /// of everyone's use: usage is at least the key's usage known here (others' as of the last
    /// answer plus this edge's), and the balance shrinks by what that adds (never below 0).
    pub fn known_figures(&self, key: &LeaseKey, figures: Balance) -> Balance {
        let Some(lease) = self.leases.get(key).filter(|l| l.budget != Decimal::MAX) else { return figures };
        // (`add` and `sub` rather than saturating forms: they are in the wasm module already.)
        let usage = add(lease.others_usage, lease.used).unwrap_or(Decimal::MAX);
        if usage <= figures.usage {
            return figures;
        }
        let more = sub(usage, figures.usage).unwrap_or(Decimal::MAX);
        Balance { usage, balance: sub(figures.balance, more).unwrap_or(Decimal::ZERO).max(Decimal::ZERO), ..figures }
    }

    /// Events queued that no request has carried yet (more pages to send).
    pub fn unsent(&self) -> usize {
        // (They are the tail of the queue: a request carries a prefix.)
        self.events.iter().rev().take_while(|(first, _)| *first == 0).count()
    }

    /// True when a sync would help: events to send, demand to ask for, a lease about to expire
    /// or running low, a final report to deliver.
    pub fn needs_sync(&self, now: Timestamp) -> bool {
        let ttl = i64::try_from(self.ttl_ms).unwrap_or(i64::MAX);
        !self.events.is_empty()
            || !self.finished.is_empty()
            || self.leases.values().any(|l| lease_wants_sync(l, now, ttl))
    }

    /// Builds the next request at edge time `now`. Expired leases are reported final and their
    /// keys continue under a new epoch. Call it as often as wanted: nothing is lost until a
    /// response acknowledges it.
    pub fn request(&mut self, now: Timestamp, catalog_version: u64) -> Result<SyncRequest, Overflow> {
        self.seq += 1;
        self.in_flight.insert(self.seq, now);
        while self.in_flight.len() > IN_FLIGHT {
            self.in_flight.pop_first();
        }
        let mut leases = Vec::new();
        for (key, lease) in &mut self.leases {
            if lease.expires_at.is_some() {
                // An expired lease with an offline allowance stays open until the hub answers
                // after its expiry (that answer closes it), so the allowance stays usable
                // through an outage that begins with requests lost.
                let answered_since = match (self.last_answer, lease.expires_at) {
                    (Some(a), Some(x)) => a >= x,
                    _ => false,
                };
                let keep_allowance = !lease.allowance.is_zero() && !answered_since;
                let done = (lease.expired(now) && !keep_allowance) || lease.mode == Mode::Closed;
                // (An unused offline allowance keeps the lease: it is what the edge may spend
                // if the hub stops answering, so it is given back only at expiry.)
                let spent_and_idle = !lease.granted.is_zero()
                    && lease.offline_unused().is_zero()
                    && lease.demand.is_zero()
                    && lease.used == lease.used_at_request;
                if done || spent_and_idle {
                    let finished =
                        Finished { granted: lease.granted, returned: lease.returned, used: lease.used, first_seq: 0 };
                    self.finished.insert((key.clone(), lease.epoch), finished);
                    let demand = lease.demand;
                    *lease = EdgeLease::fresh(
                        lease.epoch.saturating_add(1),
                        lease.others_usage.saturating_add(lease.used),
                        lease.budget,
                    );
                    lease.demand = demand;
                }
            }
            let recent = sub(lease.used, lease.used_at_request)?;
            let want = if lease.mode == Mode::Precise || lease.expires_at.is_none() {
                lease.demand.max(recent)
            } else {
                let target = add(lease.demand, recent)?.saturating_mul(Decimal::TWO);
                sub(target, lease.unused())?.max(lease.demand)
            };
            lease.used_at_request = lease.used;
            lease.demand = Decimal::ZERO;
            leases.push(LeaseReport {
                key: key.clone(),
                epoch: lease.epoch,
                used: lease.used,
                returned: lease.returned,
                granted_seen: lease.granted,
                want,
                is_final: false,
            });
        }
        let seq = self.seq;
        for ((key, epoch), f) in &mut self.finished {
            if f.first_seq == 0 {
                f.first_seq = seq;
            }
            leases.push(LeaseReport {
                key: key.clone(),
                epoch: *epoch,
                used: f.used,
                returned: f.returned,
                granted_seen: f.granted,
                want: Decimal::ZERO,
                is_final: true,
            });
        }
        // A page of events: every event an earlier request carried (they lead the queue, and an
        // answer to this request acknowledges them), then new ones up to the page's size.
        let seq = self.seq;
        let mut events = Vec::with_capacity(self.events.len().min(PAGE_EVENTS));
        let mut bytes = 0usize;
        for (first, event) in &mut self.events {
            let value = event.to_value(&self.edge_id, &self.boot_id);
            if *first == 0 {
                let size = serde_json::to_vec(&value).map_or(0, |v| v.len());
                if !events.is_empty() && (events.len() >= PAGE_EVENTS || bytes.saturating_add(size) > PAGE_BYTES) {
                    break;
                }
                bytes = bytes.saturating_add(size);
                *first = seq;
            }
            events.push(value);
        }
        Ok(SyncRequest {
            edge_id: self.edge_id.clone(),
            boot_id: self.boot_id.clone(),
            seq,
            catalog_version,
            leases,
            events,
        })
    }

    /// Merges a response received at edge time `now`. Grants merge by max; a lease's expiry is
    /// renewed only from the send time of the request answered; events carried by that request
    /// (or an earlier one) are acknowledged.
    pub fn apply(&mut self, response: &SyncResponse, now: Timestamp) -> Result<(), Overflow> {
        if response.ack_seq > self.seq {
            return Ok(()); // not an answer to this boot's requests
        }
        let ack = response.ack_seq;
        self.events.retain(|(first, _)| *first == 0 || *first > ack);
        let sent = self.in_flight.get(&ack).copied();
        self.last_answer = Some(self.last_answer.map_or(now, |t| t.max(now)));
        for grant in &response.leases {
            self.ttl_ms = self.ttl_ms.max(grant.ttl_ms);
            let finished = (grant.key.clone(), grant.epoch);
            if let Some(f) = self.finished.get(&finished) {
                if grant.mode == Mode::Closed && f.first_seq != 0 && ack >= f.first_seq {
                    self.finished.remove(&finished);
                }
                continue;
            }
            let Some(lease) = self.leases.get_mut(&grant.key) else { continue };
            if lease.epoch != grant.epoch {
                continue;
            }
            lease.granted = lease.granted.max(grant.granted);
            lease.others_usage = lease.others_usage.max(grant.others_usage);
            lease.allowance = lease.allowance.max(grant.allowance);
            lease.budget = grant.budget;
            if grant.mode == Mode::Closed {
                lease.mode = Mode::Closed;
                continue;
            }
            if lease.mode != Mode::Closed {
                lease.mode = grant.mode;
            }
            if let (Some(sent), true) = (sent, grant.ttl_ms > 0) {
                let ttl = i64::try_from(grant.ttl_ms).unwrap_or(i64::MAX);
                let until = Timestamp(sent.0.saturating_add(ttl));
                lease.expires_at = Some(lease.expires_at.map_or(until, |t| t.max(until)));
            }
            if let Some(keep) = grant.shrink_to {
                // Give back until at most `keep` units are unused.
                let give = sub(lease.unused(), keep)?;
                if give > Decimal::ZERO {
                    lease.returned = add(lease.returned, give)?;
                }
            }
        }
        Ok(())
    }
}
