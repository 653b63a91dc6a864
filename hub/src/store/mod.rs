//! Where the hub keeps its state: a narrow [`Store`] trait and its SQLite implementation.
//!
//! The trait is deliberately small — read everything once at start ([`Store::load`]), then
//! apply batches of changes, each group of batches in one transaction ([`Store::apply`]), plus
//! one paged read of the event ledger — so that another backend (PostgreSQL, for deployments
//! that outgrow one machine) is a matter of implementing three methods over the same tables.

mod rows;

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::schema;
use rows::FromRow;

/// A storage failure (the database could not be opened, read or written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// One lease row's identity: key and holder (the first six fields of [`LeaseRow`], which keeps
/// them flat as its table does).
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl Record {
    /// Its position in the history.
    pub fn seq(&self) -> i64 {
        match self {
            Record::Catalog(r) => r.seq,
            Record::Customer(r) => r.seq,
            Record::Event(r) => r.seq,
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
    /// The highest `seq` of the history (0 when empty).
    pub last_seq: i64,
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
    /// Reads the whole state: the history goes through `visit` in `seq` order (so a long event
    /// ledger never sits in memory twice); the rest is returned.
    fn load(&mut self, visit: &mut dyn FnMut(Record) -> Result<(), String>) -> Result<Loaded, StoreError>;

    /// Applies the batches, in order, in one transaction, and makes it durable before returning.
    fn apply(&mut self, batches: &[&Changes]) -> Result<(), StoreError>;

    /// Up to `limit` stored events of `source` with `seq > after`, in `seq` order.
    fn events(&mut self, source: &str, after: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// True when the ledger holds the event `(source, id)`.
    fn event_json(&mut self, source: &str, id: &str) -> Result<Option<String>, StoreError>;

    /// Dead letters after `seq` (oldest first), at most `limit`, of one customer or all.
    fn dead_letters(
        &mut self,
        after: i64,
        limit: u32,
        customer_id: Option<&str>,
    ) -> Result<Vec<DeadLetterRow>, StoreError>;
}

/// Creates `path` readable and writable by its owner only, if it does not exist.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError(format!("cannot create {}: {e}", path.display()))),
    }
}

/// Makes an existing `path` readable and writable by its owner only.
fn restrict(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError(format!("cannot restrict {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

/// Holds the lock that makes one hub process the only writer of a SQLite file (an OS lock on
/// `<db>.lock`, released when the process ends however it ends).
pub struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    /// Takes the lock of the database at `db`, or says which file another hub holds.
    pub fn take(db: &Path) -> Result<WriterLock, StoreError> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = Path::new(&name);
        private_file(path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError(format!(
                "another hub process is using {} (one hub per SQLite file; several hubs need PostgreSQL)",
                db.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError(format!("cannot lock {}: {e}", path.display()))),
        }
    }
}

/// The SQLite store: one file, WAL, `synchronous=FULL` (a committed transaction survives a
/// crash or power loss).
pub struct SqliteStore {
    conn: Connection,
    /// This process's writer epoch, once [`SqliteStore::fence`] took one: every transaction
    /// checks it is still the newest, so a stale process cannot write after a newer one started.
    epoch: Option<i64>,
}

/// The `meta` entry holding the newest writer epoch.
const WRITER_EPOCH: &str = "writer_epoch";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date. The
    /// database's files are readable by their owner only (0600): they hold tokens' effects,
    /// the ledger and the signing key.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        private_file(path)?;
        let conn = Connection::open(path).map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError(format!("{}: cannot use WAL (journal_mode is {mode})", path.display())));
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")?;
        // SQLite creates the WAL and shared-memory files with the database's permissions; an
        // older database may still have looser ones.
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            restrict(Path::new(&name))?;
        }
        let mut store = SqliteStore { conn, epoch: None };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);",
        )?;
        let current = self.schema_version()?;
        let latest = schema::latest();
        if current > latest {
            return Err(StoreError(format!(
                "the database has schema version {current}, newer than this build knows ({latest}): use a newer tollgate"
            )));
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
            if version <= current {
                continue;
            }
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", params![version, now_ms()])?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Takes the next writer epoch: from now on, a process holding an older one can no longer
    /// write (its transactions fail, and its hub stops accepting writes).
    pub fn fence(&mut self) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        let current: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = ?1", params![WRITER_EPOCH], |r| r.get(0)).optional()?;
        let next = current.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![WRITER_EPOCH, next.to_string()],
        )?;
        tx.commit()?;
        self.epoch = Some(next);
        Ok(next)
    }

    /// Fails the transaction when a newer writer took the database over.
    fn check_fence(epoch: Option<i64>, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let Some(mine) = epoch else { return Ok(()) };
        let current: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = ?1", params![WRITER_EPOCH], |r| r.get(0)).optional()?;
        if current.as_deref() != Some(mine.to_string().as_str()) {
            return Err(StoreError(format!(
                "a newer hub (writer epoch {}) took this database over from this one (epoch {mine}); this one no longer writes",
                current.unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn write(tx: &Transaction<'_>, c: &Changes) -> Result<(), rusqlite::Error> {
        for (k, v) in &c.meta {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![k, v])?;
        }
        for r in &c.catalogs {
            tx.prepare_cached(
                "INSERT INTO catalog_versions (version, json, created_at, seq, snapshot_version) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.version, r.json, r.created_at, r.seq, r.snapshot_version])?;
        }
        for r in &c.customers {
            tx.prepare_cached(
                "INSERT INTO customer_versions (seq, customer_id, kind, json, created_at, snapshot_version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![r.seq, r.id, r.kind.as_str(), r.json, r.created_at, r.snapshot_version])?;
            tx.prepare_cached(
                "INSERT INTO customers (id, json, version) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json, version = excluded.version",
            )?
            .execute(params![r.id, r.json, r.snapshot_version])?;
        }
        for r in &c.events {
            tx.prepare_cached(
                "INSERT INTO events (seq, source, id, customer_id, json, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (source, id) DO NOTHING",
            )?
            .execute(params![r.seq, r.source, r.id, r.customer_id, r.json, r.received_at])?;
        }
        for r in &c.leases {
            tx.prepare_cached(
                "INSERT INTO leases (customer_id, key, period, edge_id, boot_id, epoch, granted, returned, used, expires_at, closed, allowance) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (customer_id, key, period, edge_id, boot_id, epoch) DO UPDATE SET \
                 granted = excluded.granted, returned = excluded.returned, used = excluded.used, \
                 expires_at = excluded.expires_at, closed = excluded.closed, allowance = excluded.allowance",
            )?
            .execute(params![
                r.customer_id,
                r.key,
                r.period,
                r.edge_id,
                r.boot_id,
                r.epoch,
                r.granted,
                r.returned,
                r.used,
                r.expires_at,
                r.closed,
                r.allowance
            ])?;
        }
        for r in &c.topups {
            tx.prepare_cached(
                "INSERT INTO wallet_topups (idempotency_key, customer_id, amount, currency, balance, created_at, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                r.idempotency_key,
                r.customer_id,
                r.amount,
                r.currency,
                r.balance,
                r.created_at,
                r.seq
            ])?;
        }
        for r in &c.leases_removed {
            tx.prepare_cached(
                "DELETE FROM leases WHERE customer_id = ?1 AND key = ?2 AND period = ?3 AND edge_id = ?4 \
                 AND boot_id = ?5 AND epoch = ?6",
            )?
            .execute(params![r.customer_id, r.key, r.period, r.edge_id, r.boot_id, r.epoch])?;
        }
        for r in &c.dead_letters {
            tx.prepare_cached(
                "INSERT INTO dead_letters (source, id, customer_id, edge_id, code, path, message, json, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (source, id) DO NOTHING",
            )?
            .execute(params![
                r.source,
                r.id,
                r.customer_id,
                r.edge_id,
                r.code,
                r.path,
                r.message,
                r.json,
                r.received_at
            ])?;
        }
        for seq in &c.dead_letters_removed {
            tx.prepare_cached("DELETE FROM dead_letters WHERE seq = ?1")?.execute(params![seq])?;
        }
        for r in &c.invoices {
            tx.prepare_cached(
                "INSERT INTO invoices (customer_id, subscription_id, period_start, json, closed_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (customer_id, subscription_id, period_start) DO NOTHING",
            )?
            .execute(params![r.customer_id, r.subscription_id, r.period_start, r.json, r.closed_at])?;
        }
        Ok(())
    }

    /// Every row of `table`.
    fn select_all<T: FromRow>(&self, table: &str) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT {} FROM {table}", T::COLUMNS))?;
        let rows = stmt.query_map([], T::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn history(&self, visit: &mut dyn FnMut(Record) -> Result<(), String>) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, 0, CAST(version AS TEXT), '', json, created_at, snapshot_version FROM catalog_versions \
             UNION ALL SELECT seq, 1, customer_id, kind, json, created_at, snapshot_version FROM customer_versions \
             UNION ALL SELECT seq, 2, source, id, json, received_at, 0 FROM events \
             ORDER BY 1",
        )?;
        let mut rows = stmt.query([])?;
        let mut last = 0;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let which: i64 = row.get(1)?;
            let a: String = row.get(2)?;
            let b: String = row.get(3)?;
            let json: String = row.get(4)?;
            let at: i64 = row.get(5)?;
            let snapshot_version: i64 = row.get(6)?;
            let record = match which {
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
                _ => {
                    let customer_id = String::new();
                    Record::Event(EventRow { seq, source: a, id: b, customer_id, json, received_at: at })
                }
            };
            last = seq;
            visit(record).map_err(StoreError)?;
        }
        Ok(last)
    }
}

impl Store for SqliteStore {
    fn load(&mut self, visit: &mut dyn FnMut(Record) -> Result<(), String>) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded { last_seq: self.history(visit)?, ..Loaded::default() };
        let mut stmt = self.conn.prepare("SELECT key, value FROM meta")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            loaded.meta.insert(r.get(0)?, r.get(1)?);
        }
        loaded.leases = self.select_all("leases")?;
        loaded.topups = self.select_all("wallet_topups")?;
        loaded.invoices = self.select_all("invoices")?;
        Ok(loaded)
    }

    fn apply(&mut self, batches: &[&Changes]) -> Result<(), StoreError> {
        if batches.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        let epoch = self.epoch;
        let tx = self.conn.transaction()?;
        Self::check_fence(epoch, &tx)?;
        for c in batches {
            Self::write(&tx, c)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn events(&mut self, source: &str, after: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql =
            format!("SELECT {} FROM events WHERE source = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3", StoredEvent::COLUMNS);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![source, after, limit], StoredEvent::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn event_json(&mut self, source: &str, id: &str) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT json FROM events WHERE source = ?1 AND id = ?2")?;
        Ok(stmt.query_row(params![source, id], |row| row.get(0)).optional()?)
    }

    fn dead_letters(
        &mut self,
        after: i64,
        limit: u32,
        customer_id: Option<&str>,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM dead_letters WHERE seq > ?1 AND (?2 IS NULL OR customer_id = ?2) ORDER BY seq LIMIT ?3",
            DeadLetterRow::COLUMNS
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, customer_id, limit], DeadLetterRow::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// The wall clock in ms since the Unix epoch (0 before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
