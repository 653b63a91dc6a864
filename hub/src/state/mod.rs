//! The hub's state in memory and every operation of its API, as plain functions of
//! `(state, input, now)` that return the reply and the [`Changes`] to make durable before it is
//! sent. Nothing here does I/O: the HTTP layer parses, locks, queues the changes and replies.
//!
//! The state is the hub's own [`Engine`] (the same core the edges run; it meters, bills and
//! judges; the hub adds no business rule of its own) and one part per piece of state it owns:
//!
//! - `startup`: the history replayed into a new engine at start, a seed into an empty hub;
//! - `follow`: what other hubs of a shared store committed, applied;
//! - `leases`: the [`Escrow`](tollgate::sync::Escrow) that shares hard limits and wallets out as
//!   leases, lease reports, collection, revocation;
//! - `documents`: catalog versions, customer definitions, top-ups, closed invoices, the signed
//!   snapshot;
//! - `events`: the usage ledger (`/v1/sync`, `/v1/events`) and its dead letters;
//! - `queries`: reads (entitlements, wallet, running invoice);
//! - `tokens`: the bearer tokens the hub made (first start, `/v1/tokens`).
//!
//! Children import from this module, and `events` and `queries` from `leases`; nothing imports
//! the other way. The engine is rebuilt at start by replaying the history — catalog versions,
//! customer versions and events — in the order it happened, so it ends exactly as it was when
//! the last acknowledged change was made.

mod checkpoint;
mod documents;
mod events;
mod follow;
mod leases;
mod queries;
mod startup;
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::store::{Replay, TokenRow};
use crate::tokens::SharedKeyring;
use documents::Documents;
use leases::Leases;
use tollgate::engine::Engine;
use tollgate::error::{Code, Error};
use tollgate::metering::Event;
use tollgate::sync::signed::KeyPair;
use tollgate::sync::Policy;
use tollgate::time::Timestamp;

pub use checkpoint::DEFAULT_CHECKPOINT_EVERY;
pub use events::{dead_letter_json, InLedger};

/// The edge id under which the hub's own engine holds leases (server-side ingestion draws on
/// the same escrow as the edges). Edges may not use it.
pub const HUB_EDGE: &str = "hub";

/// Why an operation was refused, as the core's errors: the HTTP layer (`http::error`) gives each
/// its status and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub enum HubError {
    /// One problem.
    One(Error),
    /// Every problem of an input that failed validation.
    List(Vec<Error>),
    /// A valid catalog that would invalidate stored customers: the conflict, then each problem
    /// with the id of the customer it concerns, when known.
    Invalidates {
        /// The conflict itself.
        conflict: Error,
        /// The customers' problems.
        problems: Vec<(Error, Option<String>)>,
    },
}

impl HubError {
    /// A new error of `code` at `path`.
    pub fn new(code: Code, path: &str, message: impl Into<String>) -> HubError {
        HubError::One(Error::new(code, path, message))
    }

    /// True when the ledger failed part way (the state may hold changes never queued).
    pub fn is_storage(&self) -> bool {
        matches!(self, HubError::One(e) if e.code == Code::Storage)
    }
}

impl From<Error> for HubError {
    fn from(e: Error) -> HubError {
        HubError::One(e)
    }
}

/// An error as JSON: `{ code, path, message }`.
pub fn error_json(e: &Error) -> Value {
    json!({ "code": e.code.as_str(), "path": e.path, "message": e.message })
}

fn no_catalog() -> HubError {
    HubError::new(Code::Conflict, "", "the hub has no catalog yet: PUT /v1/catalog first")
}

fn no_customer(id: &str) -> HubError {
    HubError::new(Code::NotFound, "", format!("no customer with id {id:?}"))
}

/// A successful reply: status, JSON body, and the ETag to send with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body (JSON text).
    pub body: Arc<Vec<u8>>,
    /// An `ETag` header value.
    pub etag: Option<String>,
}

impl Reply {
    /// A JSON reply.
    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Result<Reply, HubError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| HubError::new(Code::Unencodable, "", format!("the reply cannot be written: {e}")))?;
        Ok(Reply { status, body: Arc::new(body), etag: None })
    }
}

/// An event of `POST /v1/events`, decoded once at the door: the event, its JSON as sent (what
/// the ledger stores) and its path in the request body.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The decoded event.
    pub event: Event,
    /// Its JSON.
    pub value: Value,
    /// Its path in the body (`/events/3`).
    pub path: String,
}

/// The current snapshot, signed once per version.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Its `snapshotVersion`.
    pub version: u64,
    /// The envelope's JSON text.
    pub text: Arc<Vec<u8>>,
    /// The envelope as a value (what `/v1/sync` embeds).
    pub value: Arc<Value>,
    /// Start of the signing window it was made in (see [`HubState::signed`]).
    pub window: Timestamp,
}

/// How the hub was started.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The signing key given with `--key`, if any.
    pub key: Option<KeyPair>,
    /// Lease policy (`--ttl-ms`).
    pub policy: Policy,
    /// This run's boot id (the hub's own leases are held under it).
    pub boot_id: String,
    /// A snapshot to load into an empty database (`--seed`).
    pub seed: Option<Value>,
    /// 32 random bytes, for a signing key if none is given or stored.
    pub key_seed: [u8; 32],
    /// How far (ms) an edge's event may be dated after the hub's clock (`--max-future-ms`).
    pub max_future_ms: i64,
    /// How long a signed snapshot stays valid (`--snapshot-ttl-ms`).
    pub snapshot_ttl_ms: i64,
    /// The key of the engine's id tables (random per run: see `Options::hash_seed`).
    pub hash_seed: u64,
    /// The keyring the requests' guards read: the state fills it at start and changes it as
    /// tokens are made and revoked.
    pub keyring: SharedKeyring,
    /// The store is shared with other hubs (PostgreSQL): their leases are not this hub's to
    /// close at start.
    pub shared: bool,
    /// How much of the history start-up reads (`--full-replay`: all of it).
    pub replay: Replay,
    /// History records between two checkpoints (`--checkpoint-every`; 0: none).
    pub checkpoint_every: u64,
}

/// What start-up tells the operator.
#[derive(Clone, Debug, Default)]
pub struct StartReport {
    /// Events of the history the current engine could not record (logged, skipped).
    pub skipped_events: usize,
    /// Events replayed.
    pub events: usize,
    /// The `seq` of the checkpoint start-up began from, if any.
    pub checkpoint: Option<i64>,
    /// Why a stored checkpoint was not used (the whole history was replayed instead).
    pub checkpoint_refused: Option<String>,
    /// Whether `--seed` was loaded.
    pub seeded: bool,
    /// Whether the signing key was generated now.
    pub key_generated: bool,
    /// A shared store's `change_log` position the state was loaded at (0 otherwise).
    pub position: i64,
}

/// The hub's state: its engine, and a part for each piece of state it keeps besides.
pub struct HubState {
    /// The hub's own engine (none before the first catalog).
    engine: Option<Engine>,
    /// The escrow ([`leases`]).
    leases: Leases,
    /// Catalog, customers, top-ups, closed invoices, the signed snapshot ([`documents`]).
    docs: Documents,
    /// Edge events recorded in batches not yet durable, by (source, id), with their batch's
    /// ticket: with these and the store's unique key, the hub's dedupe has no window.
    late: HashMap<(String, String), u64>,
    /// The last `seq` of the history (catalogs, customers, events share it).
    seq: i64,
    /// How far (ms) an edge's event may be dated after the hub's clock.
    max_future_ms: i64,
    /// The key of the engine's id tables.
    hash_seed: u64,
    /// Every token the hub made, by id, revoked ones included ([`tokens`]).
    tokens: BTreeMap<String, TokenRow>,
    /// The valid ones, as the guards read them.
    keyring: SharedKeyring,
    /// History records between two checkpoints (0: none).
    checkpoint_every: u64,
    /// The `seq` of the last checkpoint read or written.
    checkpoint_seq: i64,
    /// Tickets of queued write batches (see `writer`): the last one handed out.
    pub ticket: u64,
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn first_problem(errors: &[Error]) -> String {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    format!("{} problem(s); first: {first}", errors.len())
}

/// The hub's clock reading as a timestamp.
pub fn now() -> Timestamp {
    Timestamp(super::store::now_ms())
}

/// Most problems a reply lists (the rest are counted).
pub const MAX_LISTED: usize = 100;

/// The first [`MAX_LISTED`] problems as JSON.
pub fn listed(problems: &[Error]) -> Value {
    Value::Array(problems.iter().take(MAX_LISTED).map(error_json).collect())
}

impl HubState {
    /// The next `seq` of the history.
    fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    /// Forgets the old events recorded in batches that are durable by now (ticket ≤ `durable`):
    /// the store answers for them, so the set holds only what is in flight.
    pub fn forget_durable(&mut self, durable: u64) {
        if !self.late.is_empty() {
            self.late.retain(|_, ticket| *ticket > durable);
        }
    }

    /// The hub's public key, as edges configure it.
    pub fn key(&self) -> &KeyPair {
        &self.docs.key
    }

    /// The current snapshot version (0 before any catalog).
    pub fn snapshot_version(&self) -> u64 {
        self.docs.snapshot_version
    }
}
