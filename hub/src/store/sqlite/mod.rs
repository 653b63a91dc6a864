//! The SQLite store: one file, WAL, `synchronous=FULL`, one writer process (an OS lock on
//! `<db>.lock`, and a fencing epoch in `meta` should the lock ever be bypassed).

mod rows;
mod schema;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    now_ms, start_query, Changes, DeadLetterRow, HistoryRow, Loaded, Record, Replay, Store, StoreError, StoredEvent,
    CHECKPOINT_INSERT, WRITER_EPOCH,
};
use rows::FromRow;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
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
        for r in &c.tokens {
            tx.prepare_cached(
                "INSERT INTO tokens (id, role, edge_id, hash, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at",
            )?
            .execute(params![r.id, r.role, r.edge_id, r.hash, r.created_at, r.revoked_at])?;
        }
        for r in &c.invoices {
            tx.prepare_cached(
                "INSERT INTO invoices (customer_id, subscription_id, period_start, json, closed_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (customer_id, subscription_id, period_start) DO NOTHING",
            )?
            .execute(params![r.customer_id, r.subscription_id, r.period_start, r.json, r.closed_at])?;
        }
        if let Some(r) = &c.checkpoint {
            tx.prepare_cached(CHECKPOINT_INSERT)?.execute(params![r.seq, r.json, r.created_at])?;
            tx.prepare_cached("DELETE FROM checkpoints WHERE seq < ?1")?.execute(params![r.seq])?;
        }
        Ok(())
    }

    /// Every row of `table`.
    fn select_all<T: FromRow>(&self, table: &str) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT {} FROM {table}", T::COLUMNS))?;
        let rows = stmt.query_map([], T::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn history(&self, replay: Replay, visit: &mut dyn FnMut(Record) -> Result<(), String>) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare(&start_query(replay))?;
        let mut rows = stmt.query([])?;
        let mut last = 0;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let record = HistoryRow {
                seq,
                which: row.get(1)?,
                a: row.get(2)?,
                b: row.get(3)?,
                json: row.get(4)?,
                at: row.get(5)?,
                snapshot_version: row.get(6)?,
            }
            .record()?;
            last = seq;
            visit(record).map_err(StoreError)?;
        }
        Ok(last)
    }
}

impl Store for SqliteStore {
    fn fence(&mut self) -> Result<i64, StoreError> {
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

    fn load(
        &mut self,
        replay: Replay,
        visit: &mut dyn FnMut(Record) -> Result<(), String>,
    ) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded { last_seq: self.history(replay, visit)?, ..Loaded::default() };
        let mut stmt = self.conn.prepare("SELECT key, value FROM meta")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            loaded.meta.insert(r.get(0)?, r.get(1)?);
        }
        loaded.leases = self.select_all("leases")?;
        loaded.topups = self.select_all("wallet_topups")?;
        loaded.invoices = self.select_all("invoices")?;
        loaded.tokens = self.select_all("tokens")?;
        Ok(loaded)
    }

    fn claim_meta(&mut self, key: &str, value: &str) -> Result<String, StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )?;
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))?)
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
