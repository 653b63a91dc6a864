//! Where the hub keeps its state: a narrow [`Store`] trait and its two implementations,
//! [`SqliteStore`] (one file, the embedded default) and [`PgStore`] (PostgreSQL).
//!
//! The trait is deliberately small — read everything once at start ([`Store::load`]), then
//! apply batches of changes, each group of batches in one transaction ([`Store::apply`]), plus
//! a few paged reads — and both implementations hold the same tables (see each one's `schema`).

mod postgres;
mod shared;
mod sqlite;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use postgres::PgStore;
pub use shared::{Cycle, Logged, Tail};
pub use sqlite::{SqliteStore, WriterLock};

/// A storage failure (the database could not be opened, read or written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `meta` entry holding the newest writer epoch (see [`Store::fence`]).
const WRITER_EPOCH: &str = "writer_epoch";

/// Where the hub keeps its state: `--db FILE` (SQLite) or `--db postgres://…` (PostgreSQL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://…`, `postgresql://…`).
    Postgres(String),
}

impl Database {
    /// `postgres://…` and `postgresql://…` name PostgreSQL; anything else is a SQLite file.
    pub fn parse(text: &str) -> Database {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.to_string())
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }

    /// How the hub names it in what it prints: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => postgres::without_password(url),
        }
    }

    /// Opens it for a hub: the writing store (fenced: see [`Store::fence`]), a second store for
    /// reads, and, for SQLite, the lock that keeps other processes out while it is held.
    pub fn open(&self) -> Result<Opened, StoreError> {
        match self {
            Database::Sqlite(path) => {
                // One writer per file: a second hub on the same database is refused before it
                // reads it.
                let lock = WriterLock::take(path)?;
                let writer = SqliteStore::open(path)?;
                let reader = SqliteStore::open(path)?;
                Ok(Opened { writer: Box::new(writer), reader: Box::new(reader), _lock: Some(lock) })
            }
            Database::Postgres(url) => {
                let writer = PgStore::connect(url)?;
                let reader = PgStore::connect(url)?;
                Ok(Opened { writer: Box::new(writer), reader: Box::new(reader), _lock: None })
            }
        }
    }
}

/// A database opened for a hub ([`Database::open`]).
pub struct Opened {
    /// The store the writer thread owns.
    pub writer: Box<dyn Store>,
    /// The store of reads made while serving (the ledger's pages, dead letters).
    pub reader: Box<dyn Store>,
    /// SQLite's one-writer lock, held as long as this value lives.
    _lock: Option<WriterLock>,
}

/// Why a customer definition changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerChange {
    /// `PUT /v1/customers/{id}` (or a seed): the definition as given.
    Put,
    /// `POST /v1/customers/{id}/grants`: a grant appended.
    Grant,
    /// `POST /v1/customers/{id}/wallet`: the wallet set to its running balance plus a top-up.
    TopUp,
}

impl CustomerChange {
    /// The `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerChange::Put => "put",
            CustomerChange::Grant => "grant",
            CustomerChange::TopUp => "topup",
        }
    }

    fn parse(text: &str) -> Option<CustomerChange> {
        match text {
            "put" => Some(CustomerChange::Put),
            "grant" => Some(CustomerChange::Grant),
            "topup" => Some(CustomerChange::TopUp),
            _ => None,
        }
    }
}

/// A new catalog version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRow {
    /// The catalog version (what its `catalogVersion` says).
    pub version: i64,
    /// The catalog's JSON.
    pub json: String,
    /// When it was stored (ms).
    pub created_at: i64,
    /// Position in the hub's history.
    pub seq: i64,
    /// The snapshot version it made.
    pub snapshot_version: i64,
}

/// A new customer definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRow {
    /// The customer id.
    pub id: String,
    /// Why it changed.
    pub kind: CustomerChange,
    /// The whole definition's JSON.
    pub json: String,
    /// When (ms).
    pub created_at: i64,
    /// Position in the hub's history.
    pub seq: i64,
    /// The snapshot version it made.
    pub snapshot_version: i64,
}

/// The hub's state at a point of its history: the engine's state beyond its definitions
/// (`tollgate::engine::checkpoint`), so that a start replays only the history after `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRow {
    /// The last history record it holds.
    pub seq: i64,
    /// The checkpoint's JSON.
    pub json: String,
    /// Hub time it was taken (ms).
    pub created_at: i64,
}

/// A usage event accepted into the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Position in the hub's history.
    pub seq: i64,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `id`.
    pub id: String,
    /// The event's subject.
    pub customer_id: String,
    /// The event's JSON as received.
    pub json: String,
    /// Hub time of receipt (ms): the `now` it was recorded at.
    pub received_at: i64,
}

/// One lease as the escrow keeps it, identified by key and holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRow {
    /// Lease key: customer.
    pub customer_id: String,
    /// Lease key: feature key or `$wallet`.
    pub key: String,
    /// Lease key: period start (ms).
    pub period: i64,
    /// Holder: edge.
    pub edge_id: String,
    /// Holder: boot.
    pub boot_id: String,
    /// Holder: epoch.
    pub epoch: i64,
    /// Units granted (decimal text).
    pub granted: String,
    /// Units returned (decimal text).
    pub returned: String,
    /// Units used (decimal text).
    pub used: String,
    /// Hub time after which it is not renewed (ms).
    pub expires_at: i64,
    /// Reported final.
    pub closed: bool,
    /// Of `granted`, the offline allowance (decimal text).
    pub allowance: String,
}

/// A wallet top-up, remembered by its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpRow {
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The customer.
    pub customer_id: String,
    /// Amount added (decimal text).
    pub amount: String,
    /// ISO-4217 code.
    pub currency: String,
    /// Running balance right after it (decimal text).
    pub balance: String,
    /// When (ms).
    pub created_at: i64,
    /// The customer version it made.
    pub seq: i64,
}

/// A closed invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    /// The customer.
    pub customer_id: String,
    /// The subscription billed.
    pub subscription_id: String,
    /// The billing period's start (ms).
    pub period_start: i64,
    /// The invoice document's JSON.
    pub json: String,
    /// When it was closed (ms).
    pub closed_at: i64,
}

/// An event the hub could not apply, kept with the reason (the dead-letter table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// Its position in the dead-letter table (0 when new: the store numbers it).
    pub seq: i64,
    /// CloudEvents `source` (empty when the event had none).
    pub source: String,
    /// CloudEvents `id` (empty when the event had none).
    pub id: String,
    /// The event's subject (empty when it had none).
    pub customer_id: String,
    /// The edge that sent it (`hub` for the hub's own).
    pub edge_id: String,
    /// The refusal: error code, JSON path, message.
    pub code: String,
    /// See `code`.
    pub path: String,
    /// See `code`.
    pub message: String,
    /// The event's JSON as received.
    pub json: String,
    /// Hub time of receipt (ms).
    pub received_at: i64,
}

/// A bearer token the hub made (at a first start without the environment's tokens, or through
/// `POST /v1/tokens`), kept by the SHA-256 of its text: the text itself is shown once and never
/// stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// Its public id (`tok_…`), for listing and revoking.
    pub id: String,
    /// `admin` or `edge`.
    pub role: String,
    /// The edge an edge token speaks for (empty for an admin token).
    pub edge_id: String,
    /// SHA-256 of the token's text, lowercase hex.
    pub hash: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it was revoked (ms); 0 while it is valid.
    pub revoked_at: i64,
}

/// One lease row's identity: key and holder (the first six fields of [`LeaseRow`], which keeps
/// them flat as its table does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseId {
    /// Customer, feature key or `$wallet`, period start (ms).
    pub customer_id: String,
    /// See `customer_id`.
    pub key: String,
    /// See `customer_id`.
    pub period: i64,
    /// Edge, boot, epoch.
    pub edge_id: String,
    /// See `edge_id`.
    pub boot_id: String,
    /// See `edge_id`.
    pub epoch: i64,
}

/// One batch of changes, applied all together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `meta` entries to set.
    pub meta: Vec<(String, String)>,
    /// A new catalog version.
    pub catalogs: Vec<CatalogRow>,
    /// New customer definitions.
    pub customers: Vec<CustomerRow>,
    /// New events (an event already stored is left as it is).
    pub events: Vec<EventRow>,
    /// Leases to insert or overwrite.
    pub leases: Vec<LeaseRow>,
    /// New top-ups.
    pub topups: Vec<TopUpRow>,
    /// New closed invoices.
    pub invoices: Vec<InvoiceRow>,
    /// Leases that are over and forgotten (collected).
    pub leases_removed: Vec<LeaseId>,
    /// New dead letters (one already stored for the same source and id is left as it is).
    pub dead_letters: Vec<DeadLetterRow>,
    /// Dead letters replayed (by `seq`).
    pub dead_letters_removed: Vec<i64>,
    /// Tokens made or revoked (by `id`: the row as it now stands).
    pub tokens: Vec<TokenRow>,
    /// A checkpoint of the state after this batch (older ones are deleted with it).
    pub checkpoint: Option<CheckpointRow>,
}

impl Changes {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
            && self.catalogs.is_empty()
            && self.customers.is_empty()
            && self.events.is_empty()
            && self.leases.is_empty()
            && self.topups.is_empty()
            && self.invoices.is_empty()
            && self.leases_removed.is_empty()
            && self.dead_letters.is_empty()
            && self.dead_letters_removed.is_empty()
            && self.tokens.is_empty()
            && self.checkpoint.is_none()
    }
}

/// One entry of the hub's history, in `seq` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A catalog version.
    Catalog(CatalogRow),
    /// A customer definition.
    Customer(CustomerRow),
    /// A usage event.
    Event(EventRow),
    /// The state after every record up to its `seq` (events up to there are not read).
    Checkpoint(CheckpointRow),
}

/// How much of the history a start reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// The definitions, the latest checkpoint and the events after it.
    FromCheckpoint,
    /// Every record, checkpoints ignored (`tollgate hub --full-replay`).
    Full,
}

/// One row of the history query both stores run (the union of the three history tables, in
/// `seq` order), as its columns: `seq`, which table (0 catalog, 1 customer, 2 event,
/// 3 checkpoint), two ids (catalog version and nothing, customer id and change kind, source and
/// id, nothing), the JSON, the time, and the snapshot version (0 for events and checkpoints).
pub(crate) struct HistoryRow {
    pub seq: i64,
    pub which: i64,
    pub a: String,
    pub b: String,
    pub json: String,
    pub at: i64,
    pub snapshot_version: i64,
}

/// The `SELECT` of every history table, in one order; each store adds its own bounds.
pub(crate) const HISTORY_COLUMNS: [&str; 3] = [
    "SELECT seq, 0, CAST(version AS TEXT), '', json, created_at, snapshot_version FROM catalog_versions",
    "SELECT seq, 1, customer_id, kind, json, created_at, snapshot_version FROM customer_versions",
    "SELECT seq, 2, source, id, json, received_at, 0 FROM events",
];

/// Stores a checkpoint; one of the same `seq` (another hub's, of the same state) is kept.
pub(crate) const CHECKPOINT_INSERT: &str =
    "INSERT INTO checkpoints (seq, json, created_at) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING";

/// The history a start reads, in `seq` order: with [`Replay::FromCheckpoint`], the events after
/// the latest checkpoint and that checkpoint (after the definitions of its own `seq`).
pub(crate) fn start_query(replay: Replay) -> String {
    let [catalogs, customers, events] = HISTORY_COLUMNS;
    match replay {
        Replay::Full => format!("{catalogs} UNION ALL {customers} UNION ALL {events} ORDER BY 1, 2"),
        Replay::FromCheckpoint => format!(
            "{catalogs} UNION ALL {customers} \
             UNION ALL {events} WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM checkpoints) \
             UNION ALL SELECT seq, 3, '', '', json, created_at, 0 FROM checkpoints \
             WHERE seq = (SELECT MAX(seq) FROM checkpoints) ORDER BY 1, 2"
        ),
    }
}

impl HistoryRow {
    /// The record it is.
    pub(crate) fn record(self) -> Result<Record, StoreError> {
        let HistoryRow { seq, which, a, b, json, at, snapshot_version } = self;
        Ok(match which {
            0 => Record::Catalog(CatalogRow {
                version: a.parse().map_err(|_| StoreError(format!("catalog version {a:?} at seq {seq}")))?,
                json,
                created_at: at,
                seq,
                snapshot_version,
            }),
            1 => Record::Customer(CustomerRow {
                kind: CustomerChange::parse(&b)
                    .ok_or_else(|| StoreError(format!("unknown customer change kind {b:?} at seq {seq}")))?,
                id: a,
                json,
                created_at: at,
                seq,
                snapshot_version,
            }),
            2 => Record::Event(EventRow { seq, source: a, id: b, customer_id: String::new(), json, received_at: at }),
            _ => Record::Checkpoint(CheckpointRow { seq, json, created_at: at }),
        })
    }
}

impl Record {
    /// Its position in the history.
    pub fn seq(&self) -> i64 {
        match self {
            Record::Catalog(r) => r.seq,
            Record::Customer(r) => r.seq,
            Record::Event(r) => r.seq,
            Record::Checkpoint(r) => r.seq,
        }
    }
}

/// Everything but the history, read at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The `meta` table.
    pub meta: BTreeMap<String, String>,
    /// Every lease.
    pub leases: Vec<LeaseRow>,
    /// Every top-up.
    pub topups: Vec<TopUpRow>,
    /// Every closed invoice.
    pub invoices: Vec<InvoiceRow>,
    /// Every token the hub made, revoked ones included.
    pub tokens: Vec<TokenRow>,
    /// The highest `seq` of the history (0 when empty).
    pub last_seq: i64,
    /// Shared stores: the `change_log` position this state is at (0 otherwise).
    pub position: i64,
}

/// A stored event, as `GET /v1/events` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the history (the cursor for the next page).
    pub seq: i64,
    /// The event's JSON as received.
    pub json: String,
    /// Hub time of receipt (ms).
    pub received_at: i64,
}

/// The hub's storage.
pub trait Store: Send {
    /// Takes the next writer epoch: from then on, a process holding an older one can no longer
    /// write (its transactions fail, and its hub stops accepting writes). A hub fences before it
    /// reads its state, so whatever an older process made durable is in what it reads.
    fn fence(&mut self) -> Result<i64, StoreError>;

    /// Reads the whole state: the history (as much as `replay` says) goes through `visit` in
    /// `seq` order (so a long event ledger never sits in memory twice); the rest is returned.
    fn load(
        &mut self,
        replay: Replay,
        visit: &mut dyn FnMut(Record) -> Result<(), String>,
    ) -> Result<Loaded, StoreError>;

    /// Applies the batches, in order, in one transaction, and makes it durable before returning.
    fn apply(&mut self, batches: &[&Changes]) -> Result<(), StoreError>;

    /// Up to `limit` stored events of `source` with `seq > after`, in `seq` order.
    fn events(&mut self, source: &str, after: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// True when the ledger holds the event `(source, id)`.
    fn event_json(&mut self, source: &str, id: &str) -> Result<Option<String>, StoreError>;

    /// Sets `meta` entry `key` to `value` unless it is set already; returns what it holds. (How
    /// hubs starting together on one database agree on one signing key.)
    fn claim_meta(&mut self, key: &str, value: &str) -> Result<String, StoreError>;

    /// True when several hubs may share this store (PostgreSQL): their writes then go through
    /// [`Store::coordinate`], which orders them, and each follows the others' with [`Store::tail`].
    fn shared(&self) -> bool {
        false
    }

    /// Shared stores: one write across hubs. Takes the lock on the `change_log` position, lets
    /// `cycle` apply what others committed after `position` and gather its batches, writes them
    /// with their `change_log` row, and commits. Returns the new position.
    fn coordinate(&mut self, position: i64, cycle: &mut dyn Cycle) -> Result<i64, StoreError> {
        let _ = (position, cycle);
        Err(StoreError("this store is not shared by several hubs".into()))
    }

    /// Shared stores: what others committed after `position` (the history after `last_seq`),
    /// read without the lock; `None` when nothing was.
    fn tail(&mut self, position: i64, last_seq: i64) -> Result<Option<Tail>, StoreError> {
        let _ = (position, last_seq);
        Ok(None)
    }

    /// Dead letters after `seq` (oldest first), at most `limit`, of one customer or all.
    fn dead_letters(
        &mut self,
        after: i64,
        limit: u32,
        customer_id: Option<&str>,
    ) -> Result<Vec<DeadLetterRow>, StoreError>;
}

/// The wall clock in ms since the Unix epoch (0 before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
