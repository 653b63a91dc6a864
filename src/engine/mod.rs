//! The engine: one façade over a catalog and its customers that answers `check`, `consume`
//! and `ingest` (SPEC §5). It owns all mutable state; the wasm and hub layers wrap it.

mod billing;
#[cfg(feature = "checkpoint")]
pub mod checkpoint;
mod dedupe;
mod handle;
mod hash;
mod leased;
mod of_record;
mod position;
mod priceable;
mod snapshot;
mod state;
mod usage;
mod verdict;
mod wallet;

pub use crate::entitlements::WalletView;
pub use billing::{declared_charges, Charge, Declared, CHARGES_ATTRIBUTE};
pub use dedupe::{payload_print, Dedupe, DEFAULT_MAX_ENTRIES, DEFAULT_WINDOW_MS};
pub use handle::Handle;
/// The engine's seedless hash map, for bindings that keep maps of their own (one hash table in the module).
pub use hash::{seeded as seeded_map, Map as IdMap};
pub use leased::CONSUME_EVENT;
pub use snapshot::Snapshot;
pub use state::CustomerState;
pub use state::{InstantRun, WalletState};
pub use usage::{metering_period, IngestOutcome};
pub use verdict::Verdict;
pub use wallet::{top_up_amount, TopUp};

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::catalog::{Catalog, FeatureType};
use crate::customer::Customer;
use crate::entitlements::{Decision, Reason};
use crate::error::{Code, Error, Result};
use crate::metering::MetricLedger;
use crate::time::{Period, Timestamp};
use hash::Map;

/// How far after `now` an ingested event may be dated by default: 5 minutes of clock skew.
pub const DEFAULT_MAX_FUTURE_MS: i64 = 300_000;

/// Options of an engine.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long (ms of event time before `now`) idempotency keys are remembered.
    pub dedupe_window_ms: i64,
    /// How many idempotency keys are remembered at most, per memory (events; `consume` ids):
    /// past it the oldest by event time are forgotten, and `ingest` refuses events at or before
    /// the newest forgotten one's time as `event_too_old` (see [`Dedupe::horizon`]).
    pub dedupe_max_entries: usize,
    /// How far (ms) after `now` an event passed to `ingest` may be dated; later is refused as
    /// `invalid_timestamp` at `/time`. Not applied to what the hub records (`record`).
    pub max_future_ms: i64,
    /// The hub's public key: when set, only snapshots signed with it are accepted.
    pub hub_public_key: Option<crate::sync::signed::PublicKey>,
    /// True when the caller deduplicates `(source, id)` against a store of its own before
    /// `ingest` (the hub's ledger): events are then accepted whatever their age, for any period
    /// still open (or as adjustments of a closed one), instead of `event_too_old`.
    pub external_dedupe: bool,
    /// The key of the engine's hash tables of customer, event and `consume` ids. Give a random
    /// one wherever ids come from outside (the hub draws it from the OS, the npm package from
    /// `crypto.getRandomValues`): with a known key, chosen ids could pile into a few buckets and
    /// make every lookup slow. 0 by default (the core draws no randomness itself).
    pub hash_seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dedupe_window_ms: DEFAULT_WINDOW_MS,
            dedupe_max_entries: DEFAULT_MAX_ENTRIES,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            hub_public_key: None,
            external_dedupe: false,
            hash_seed: 0,
        }
    }
}

/// The entitlement and metering engine.
#[derive(Clone, Debug)]
pub struct Engine {
    catalog: Arc<Catalog>,
    feature_types: Map<Arc<str>, FeatureType>,
    customers: Vec<CustomerState>,
    by_id: Map<String, usize>,
    /// The key of the id tables ([`Options::hash_seed`]).
    hash_seed: u64,
    /// First outcomes by `(source, id)`, with the payload's print ([`dedupe::payload_print`]).
    events: Dedupe<(u64, IngestOutcome)>,
    /// First decisions by `consume` id, with the quantity asked.
    consumed: Dedupe<(Decimal, Decision)>,
    /// `ingest` refuses events dated more than this after `now`.
    max_future_ms: i64,
    /// See [`Options::external_dedupe`].
    external_dedupe: bool,
    seq: u64,
    snapshot_version: u64,
    /// The `expiresAt` of the snapshot held: informational, nothing is torn down when it passes.
    snapshot_expires_at: Option<Timestamp>,
    generations: u32,
    /// The edge's leases and unacknowledged usage, when hard limits are shared through a hub.
    leases: Option<crate::sync::EdgeLeases>,
    /// Only snapshots signed with this key are accepted.
    hub_public_key: Option<crate::sync::signed::PublicKey>,
    /// The engine records every debit of every edge (the hub's): its wallet balances are the
    /// truth, not an edge's view through its lease.
    wallets_of_record: bool,
    /// Per metric (catalog position): does some plan price it by a model that reads the use
    /// itself? Lets a direct use skip the refusal check (SPEC §13) without a scan.
    data_priced: Vec<bool>,
    /// Per metric (catalog position): does some plan charge it by an instant price? Lets
    /// `consume` skip real-time billing without looking at plans.
    instant: Vec<bool>,
}

/// Per metric: does some plan price it by a model that reads the use (`matrix`, `dynamic`)?
fn data_priced_metrics(catalog: &Catalog) -> Vec<bool> {
    (0..catalog.billable_metrics.len()).map(|m| priceable::reads_use(catalog, m)).collect()
}

fn instant_metrics(catalog: &Catalog) -> Vec<bool> {
    (0..catalog.billable_metrics.len()).map(|m| billing::instant_priced(catalog, m)).collect()
}

impl Engine {
    /// An engine over a catalog with no customers.
    pub fn new(catalog: Catalog, options: Options) -> Engine {
        let mut feature_types = hash::seeded(options.hash_seed);
        for f in &catalog.features {
            feature_types.entry(Arc::from(f.key.as_str())).or_insert(f.kind);
        }
        Engine {
            wallets_of_record: false,
            instant: instant_metrics(&catalog),
            data_priced: data_priced_metrics(&catalog),
            catalog: Arc::new(catalog),
            feature_types,
            customers: Vec::new(),
            by_id: hash::seeded(options.hash_seed),
            events: Dedupe::seeded(options.dedupe_window_ms, options.dedupe_max_entries, options.hash_seed),
            consumed: Dedupe::seeded(options.dedupe_window_ms, options.dedupe_max_entries, options.hash_seed),
            hash_seed: options.hash_seed,
            max_future_ms: options.max_future_ms,
            external_dedupe: options.external_dedupe,
            seq: 0,
            snapshot_version: 0,
            snapshot_expires_at: None,
            generations: 0,
            leases: None,
            hub_public_key: options.hub_public_key,
        }
    }

    /// An engine from a snapshot (`{ catalog, customers, ... }`, or its signed envelope),
    /// validated whole.
    pub fn from_snapshot(value: &Value, options: Options) -> Result<Engine, Vec<Error>> {
        let snap = Snapshot::open(value, options.hub_public_key.as_ref())?;
        Ok(Engine::from_opened(snap, options))
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

    fn next_generation(&mut self) -> u32 {
        self.generations = self.generations.wrapping_add(1);
        self.generations
    }

    fn put_customer(&mut self, customer: Customer) {
        let generation = self.next_generation();
        match self.by_id.get(&customer.id).and_then(|&i| self.customers.get_mut(i)) {
            Some(slot) => {
                let placeholder = CustomerState::new(&self.catalog, customer.clone(), generation);
                let old = core::mem::replace(slot, placeholder);
                *slot = old.redefine(&self.catalog, &self.catalog, customer, generation);
            }
            None => {
                self.by_id.insert(customer.id.clone(), self.customers.len());
                self.customers.push(CustomerState::new(&self.catalog, customer, generation));
            }
        }
    }

    /// Replaces the catalog and the customers with a new snapshot, keeping what happened so far:
    /// usage, balances already used, wallet debits, closed invoices and the idempotency memory.
    /// A snapshot with any problem changes nothing, and so does one older than the engine's
    /// (`stale_snapshot` at `/snapshotVersion`). Its expiry is not checked here (there is no
    /// `now`): see [`Engine::apply_snapshot_at`]. Handles made before become stale.
    pub fn apply_snapshot(&mut self, value: &Value) -> Result<(), Vec<Error>> {
        let snap = Snapshot::open(value, self.hub_public_key.as_ref())?;
        self.install_snapshot(snap, None)
    }

    /// A customer's state.
    pub fn customer(&self, id: &str) -> Option<&CustomerState> {
        self.by_id.get(id).and_then(|&i| self.customers.get(i))
    }

    /// Number of customers.
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// The shared key and the type of a catalog feature key.
    fn key_of(&self, key: &str) -> (Arc<str>, Option<FeatureType>) {
        match self.feature_types.get_key_value(key) {
            Some((k, t)) => (k.clone(), Some(*t)),
            None => (Arc::from(key), None),
        }
    }

    /// Why `customer` (by position) cannot use `key` at `now` when they hold no usable access.
    fn refusal(&self, customer: Option<usize>, key: &str, now: Timestamp) -> Decision {
        let (arc, kind) = self.key_of(key);
        let reason = match (customer, kind) {
            (None, _) => Reason::UnknownCustomer,
            (_, None) => Reason::UnknownFeature,
            (Some(c), Some(_)) if !self.customers.get(c).is_some_and(|s| s.subscribed(now)) => Reason::NotSubscribed,
            _ => Reason::NoEntitlement,
        };
        Verdict::denied(reason).bare(arc, kind)
    }

    /// The positions of a customer and of their usable access to `key` at `now`.
    fn locate(&self, customer: &str, key: &str, now: Timestamp) -> core::result::Result<(usize, usize), Decision> {
        let Some(&c) = self.by_id.get(customer) else { return Err(self.refusal(None, key, now)) };
        let state = self.customers.get(c);
        match state.and_then(|s| s.access_entry(key)) {
            Some((a, access)) if access.entitled(now) => Ok((c, a)),
            _ => Err(self.refusal(Some(c), key, now)),
        }
    }

    /// May `customer` use `feature_key` at `now`?
    pub fn check(&mut self, customer: &str, feature_key: &str, now: Timestamp) -> Result<Decision> {
        let (c, a) = match self.locate(customer, feature_key, now) {
            Ok(found) => found,
            Err(refusal) => return Ok(refusal),
        };
        let verdict = verdict::judge(self.access_mut(c, a)?, Decimal::ZERO, now)?;
        let verdict = self.gate(c, a, Decimal::ZERO, verdict, now)?;
        Ok(verdict.decision(self.access(c, a)?, now))
    }

    /// The quote of SPEC §6.1 for a request `{ planId, usage, eventCount? }` on this catalog.
    pub fn quote(&self, request: &Value) -> Result<crate::billing::Quote, Vec<Error>> {
        let req = crate::billing::QuoteRequest::from_value(request, None)?;
        crate::billing::quote(&self.catalog, &req).map_err(|e| alloc::vec![e])
    }

    /// A metric's quantity for a customer in a period (0 when nothing was metered).
    pub fn quantity(&self, customer: &str, metric_id: &str, period: Period) -> Result<Decimal> {
        let Some(i) = self.catalog.metric_index(metric_id) else {
            return Err(Error::new(Code::UnknownReference, "/metricId", "no such billable metric"));
        };
        let Some(metric) = self.catalog.billable_metrics.get(i) else {
            return Err(Error::new(Code::UnknownReference, "/metricId", "no such billable metric"));
        };
        match self.customer(customer).and_then(|s| s.ledgers.get(i)) {
            Some(ledger) => ledger.quantity(metric, period),
            None => MetricLedger::default().quantity(metric, period),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}
