//! The PostgreSQL store: the same tables as SQLite's, on a server (`--db postgres://…`).
//!
//! A committed transaction is as durable as the server makes it (`synchronous_commit`, on by
//! default). Writes are fenced like SQLite's: the newest hub process takes the next writer
//! epoch, and every transaction first reads the epoch `FOR SHARE`, so an older process can
//! neither write after the takeover nor commit between the newer one's fence and its read of the
//! state. The connection is plain (no TLS): a Unix socket or a private network.

mod schema;

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, IsolationLevel, NoTls, Row, Statement, Transaction};

use super::{
    now_ms, Changes, Cycle, DeadLetterRow, EventRow, HistoryRow, LeaseRow, Loaded, Logged, Record, Store, StoreError,
    StoredEvent, Tail, HISTORY_COLUMNS, WRITER_EPOCH,
};
use super::{start_query, Replay, CHECKPOINT_INSERT};

/// The `meta` entry holding the last `change_log` position; its row lock orders the hubs' commits.
const LOG_POSITION: &str = "log_position";

/// How long `change_log` rows are kept: hubs follow each other every 200 ms, so only a hub
/// stalled this long needs an older row, and it restarts instead (it loads the current state).
const LOG_KEPT_MS: i64 = 10 * 60_000;

/// Older rows are deleted at every this many positions.
const PRUNE_EVERY: i64 = 1_000;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The server's own message (and its detail) says more than the client's summary.
        match e.as_db_error() {
            Some(db) => StoreError(format!("PostgreSQL: {}", db.message())),
            None => StoreError(format!("PostgreSQL: {e}")),
        }
    }
}

/// `url` with its password, if any, replaced by `***` (for what the hub prints).
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let shown = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    match tail {
        Some(t) => format!("{scheme}://{shown}/{t}"),
        None => format!("{scheme}://{shown}"),
    }
}

/// The statements every transaction uses, prepared once per connection.
struct Prepared {
    epoch: Statement,
    lock_position: Statement,
    read_position: Statement,
    log: Statement,
    prune: Statement,
    meta: Statement,
    catalog: Statement,
    customer_version: Statement,
    customer: Statement,
    events: Statement,
    leases: Statement,
    leases_removed: Statement,
    topup: Statement,
    invoice: Statement,
    dead_letter: Statement,
    dead_letter_removed: Statement,
    token: Statement,
    checkpoint: Statement,
    checkpoints_removed: Statement,
    event_json: Statement,
    event_page: Statement,
    dead_letter_page: Statement,
}

impl Prepared {
    fn new(c: &mut Client) -> Result<Prepared, postgres::Error> {
        Ok(Prepared {
            epoch: c.prepare("SELECT value FROM meta WHERE key = $1 FOR SHARE")?,
            lock_position: c.prepare("SELECT value FROM meta WHERE key = $1 FOR UPDATE")?,
            read_position: c.prepare("SELECT value FROM meta WHERE key = $1")?,
            log: c.prepare("INSERT INTO change_log (position, last_seq, body, created_at) VALUES ($1, $2, $3, $4)")?,
            prune: c.prepare("DELETE FROM change_log WHERE created_at < $1")?,
            meta: c.prepare(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?,
            catalog: c.prepare(
                "INSERT INTO catalog_versions (version, json, created_at, seq, snapshot_version) VALUES ($1, $2, $3, $4, $5)",
            )?,
            customer_version: c.prepare(
                "INSERT INTO customer_versions (seq, customer_id, kind, json, created_at, snapshot_version) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )?,
            customer: c.prepare(
                "INSERT INTO customers (id, json, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json, version = excluded.version",
            )?,
            // Many rows in one statement: one round trip per group commit, not per event.
            events: c.prepare(
                "INSERT INTO events (seq, source, id, customer_id, json, received_at) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]) \
                 ON CONFLICT (source, id) DO NOTHING",
            )?,
            leases: c.prepare(
                "INSERT INTO leases (customer_id, key, period, edge_id, boot_id, epoch, granted, returned, used, \
                 expires_at, closed, allowance) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], \
                 $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BOOLEAN[], $12::TEXT[]) \
                 ON CONFLICT (customer_id, key, period, edge_id, boot_id, epoch) DO UPDATE SET \
                 granted = excluded.granted, returned = excluded.returned, used = excluded.used, \
                 expires_at = excluded.expires_at, closed = excluded.closed, allowance = excluded.allowance",
            )?,
            leases_removed: c.prepare(
                "DELETE FROM leases WHERE (customer_id, key, period, edge_id, boot_id, epoch) IN \
                 (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]))",
            )?,
            topup: c.prepare(
                "INSERT INTO wallet_topups (idempotency_key, customer_id, amount, currency, balance, created_at, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?,
            invoice: c.prepare(
                "INSERT INTO invoices (customer_id, subscription_id, period_start, json, closed_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, subscription_id, period_start) DO NOTHING",
            )?,
            dead_letter: c.prepare(
                "INSERT INTO dead_letters (source, id, customer_id, edge_id, code, path, message, json, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (source, id) DO NOTHING",
            )?,
            dead_letter_removed: c.prepare("DELETE FROM dead_letters WHERE seq = $1")?,
            token: c.prepare(
                "INSERT INTO tokens (id, role, edge_id, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at",
            )?,
            checkpoint: c.prepare(CHECKPOINT_INSERT)?,
            checkpoints_removed: c.prepare("DELETE FROM checkpoints WHERE seq < $1")?,
            event_json: c.prepare("SELECT json FROM events WHERE source = $1 AND id = $2")?,
            event_page: c.prepare(
                "SELECT seq, json, received_at FROM events WHERE source = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )?,
            dead_letter_page: c.prepare(&format!(
                "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE seq > $1 \
                 AND ($2::TEXT IS NULL OR customer_id = $2) ORDER BY seq LIMIT $3"
            ))?,
        })
    }
}

const DEAD_LETTER_COLUMNS: &str = "seq, source, id, customer_id, edge_id, code, path, message, json, received_at";
const LEASE_COLUMNS: &str =
    "customer_id, key, period, edge_id, boot_id, epoch, granted, returned, used, expires_at, closed, allowance";

/// A hub's connection to PostgreSQL.
pub struct PgStore {
    url: String,
    client: Client,
    statements: Prepared,
    /// This process's writer epoch, once [`Store::fence`] took one.
    epoch: Option<i64>,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date (several hubs starting at once agree:
    /// each migration is recorded in the transaction that makes it, and a hub that loses the
    /// race reads the version again).
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut client = Client::connect(url, NoTls)
            .map_err(|e| StoreError(format!("cannot connect to {}: {e}", without_password(url))))?;
        let mut attempts = 0;
        loop {
            match migrate(&mut client) {
                Ok(()) => break,
                Err(e) if attempts < 5 && lost_race(&e) => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
        let statements = Prepared::new(&mut client)?;
        let mut store = PgStore { url: url.to_string(), client, statements, epoch: None };
        check_version(store.schema_version()?)?;
        Ok(store)
    }

    /// Connects again when the connection was lost (the server restarted, the network broke):
    /// the first call after a loss fails, the next ones work once the server is back.
    fn ensure(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            let mut client = Client::connect(&self.url, NoTls)
                .map_err(|e| StoreError(format!("cannot connect to {}: {e}", without_password(&self.url))))?;
            self.statements = Prepared::new(&mut client)?;
            self.client = client;
        }
        Ok(())
    }

    /// The schema version of the database.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        Ok(self.client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?.try_get(0)?)
    }
}

/// The history records with `after < seq ≤ upto`, in `seq` order, through `visit`; returns
/// the last `seq` seen (`after` when none).
fn history(
    c: &mut impl GenericClient,
    after: i64,
    upto: i64,
    visit: &mut dyn FnMut(Record) -> Result<(), String>,
) -> Result<i64, StoreError> {
    let bounded: Vec<String> = HISTORY_COLUMNS.iter().map(|q| format!("{q} WHERE seq > $1 AND seq <= $2")).collect();
    let rows = c.query_raw(&format!("{} ORDER BY 1", bounded.join(" UNION ALL ")), [after, upto])?;
    visit_rows(rows, after, visit)
}

/// Each row of a history query through `visit`; returns the last `seq` seen (`last` when none).
fn visit_rows(
    mut rows: postgres::RowIter<'_>,
    mut last: i64,
    visit: &mut dyn FnMut(Record) -> Result<(), String>,
) -> Result<i64, StoreError> {
    while let Some(row) = rows.next()? {
        let seq: i64 = row.try_get(0)?;
        let record = HistoryRow {
            seq,
            which: i64::from(row.try_get::<_, i32>(1)?),
            a: row.try_get(2)?,
            b: row.try_get(3)?,
            json: row.try_get(4)?,
            at: row.try_get(5)?,
            snapshot_version: row.try_get(6)?,
        }
        .record()?;
        last = seq;
        visit(record).map_err(StoreError)?;
    }
    Ok(last)
}

/// Every row of a query without parameters, mapped by `row`.
fn select<T>(
    c: &mut impl GenericClient,
    sql: &str,
    row: fn(&Row) -> Result<T, postgres::Error>,
) -> Result<Vec<T>, StoreError> {
    let rows = c.query(sql, &[])?;
    Ok(rows.iter().map(row).collect::<Result<Vec<_>, _>>()?)
}

/// The `change_log` position (`FOR UPDATE`: locked until the transaction ends).
fn position(c: &mut impl GenericClient, statement: &Statement) -> Result<i64, StoreError> {
    let value: String = c.query_one(statement, &[&LOG_POSITION])?.try_get(0)?;
    value.parse().map_err(|_| StoreError(format!("the change log position {value:?} is not a number")))
}

/// What was committed after `from` up to position `to`: the logged batches, and the history
/// after `last_seq` up to theirs.
fn read_tail(c: &mut impl GenericClient, from: i64, to: i64, last_seq: i64) -> Result<Tail, StoreError> {
    let rows = c.query(
        "SELECT last_seq, body FROM change_log WHERE position > $1 AND position <= $2 ORDER BY position",
        &[&from, &to],
    )?;
    if i64::try_from(rows.len()).ok() != Some(to - from) {
        return Err(StoreError(format!(
            "this hub is at change {from}, older than the change log keeps ({} of {} changes after it are left): \
             restart it to load the current state",
            rows.len(),
            to - from
        )));
    }
    let mut tail = Tail { position: to, last_seq, ..Tail::default() };
    for row in rows {
        tail.last_seq = tail.last_seq.max(row.try_get(0)?);
        let body: String = row.try_get(1)?;
        let logged: Vec<Logged> =
            serde_json::from_str(&body).map_err(|e| StoreError(format!("a change log row is unreadable: {e}")))?;
        tail.logged.extend(logged);
    }
    let mut records = Vec::new();
    history(c, last_seq, tail.last_seq, &mut |r| {
        records.push(r);
        Ok(())
    })?;
    tail.records = records;
    Ok(tail)
}

/// True when `e` is another hub's concurrent migration (a unique key taken under us).
fn lost_race(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn migrate(client: &mut Client) -> Result<(), postgres::Error> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let current: i64 = client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?.try_get(0)?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if version <= current {
            continue;
        }
        let mut tx = client.transaction()?;
        // The version row first: a hub migrating at the same time waits here, then fails on the
        // unique key and starts over from the version it then reads.
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", &[&version, &now_ms()])?;
        tx.batch_execute(sql)?;
        tx.commit()?;
    }
    Ok(())
}

/// Refuses a database newer than this build.
fn check_version(current: i64) -> Result<(), StoreError> {
    let latest = schema::latest();
    if current > latest {
        return Err(StoreError(format!(
            "the database has schema version {current}, newer than this build knows ({latest}): use a newer tollgate"
        )));
    }
    Ok(())
}

/// The leases of a group of batches as they stand at its end: each lease's last row, or `None`
/// for one removed (a batch's removals come after its rows, as SQLite applies them).
fn final_leases<'a>(batches: &[&'a Changes]) -> HashMap<LeaseKey<'a>, Option<&'a LeaseRow>> {
    let mut out = HashMap::new();
    for c in batches {
        for r in &c.leases {
            out.insert((&*r.customer_id, &*r.key, r.period, &*r.edge_id, &*r.boot_id, r.epoch), Some(r));
        }
        for r in &c.leases_removed {
            out.insert((&*r.customer_id, &*r.key, r.period, &*r.edge_id, &*r.boot_id, r.epoch), None);
        }
    }
    out
}

type LeaseKey<'a> = (&'a str, &'a str, i64, &'a str, &'a str, i64);

/// Columns of rows, one vector per column, for `UNNEST`.
#[derive(Default)]
struct LeaseColumns<'a> {
    customer: Vec<&'a str>,
    key: Vec<&'a str>,
    period: Vec<i64>,
    edge: Vec<&'a str>,
    boot: Vec<&'a str>,
    epoch: Vec<i64>,
}

impl<'a> LeaseColumns<'a> {
    fn push(&mut self, k: &LeaseKey<'a>) {
        self.customer.push(k.0);
        self.key.push(k.1);
        self.period.push(k.2);
        self.edge.push(k.3);
        self.boot.push(k.4);
        self.epoch.push(k.5);
    }
}

fn write(tx: &mut Transaction<'_>, s: &Prepared, batches: &[&Changes]) -> Result<(), postgres::Error> {
    for c in batches {
        for (k, v) in &c.meta {
            tx.execute(&s.meta, &[k, v])?;
        }
        for r in &c.catalogs {
            tx.execute(&s.catalog, &[&r.version, &r.json, &r.created_at, &r.seq, &r.snapshot_version])?;
        }
        for r in &c.customers {
            tx.execute(
                &s.customer_version,
                &[&r.seq, &r.id, &r.kind.as_str(), &r.json, &r.created_at, &r.snapshot_version],
            )?;
            tx.execute(&s.customer, &[&r.id, &r.json, &r.snapshot_version])?;
        }
    }
    let events: Vec<&EventRow> = batches.iter().flat_map(|c| &c.events).collect();
    if !events.is_empty() {
        let seq: Vec<i64> = events.iter().map(|r| r.seq).collect();
        let source: Vec<&str> = events.iter().map(|r| &*r.source).collect();
        let id: Vec<&str> = events.iter().map(|r| &*r.id).collect();
        let customer: Vec<&str> = events.iter().map(|r| &*r.customer_id).collect();
        let json: Vec<&str> = events.iter().map(|r| &*r.json).collect();
        let at: Vec<i64> = events.iter().map(|r| r.received_at).collect();
        tx.execute(&s.events, &[&seq, &source, &id, &customer, &json, &at])?;
    }
    let leases = final_leases(batches);
    let (mut kept, mut gone) = (LeaseColumns::default(), LeaseColumns::default());
    let (mut granted, mut returned, mut used, mut expires, mut closed, mut allowance) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, row) in &leases {
        match row {
            Some(r) => {
                kept.push(k);
                granted.push(&*r.granted);
                returned.push(&*r.returned);
                used.push(&*r.used);
                expires.push(r.expires_at);
                closed.push(r.closed);
                allowance.push(&*r.allowance);
            }
            None => gone.push(k),
        }
    }
    if !gone.customer.is_empty() {
        tx.execute(&s.leases_removed, &[&gone.customer, &gone.key, &gone.period, &gone.edge, &gone.boot, &gone.epoch])?;
    }
    if !kept.customer.is_empty() {
        tx.execute(
            &s.leases,
            &[
                &kept.customer,
                &kept.key,
                &kept.period,
                &kept.edge,
                &kept.boot,
                &kept.epoch,
                &granted,
                &returned,
                &used,
                &expires,
                &closed,
                &allowance,
            ],
        )?;
    }
    for c in batches {
        for r in &c.topups {
            tx.execute(
                &s.topup,
                &[&r.idempotency_key, &r.customer_id, &r.amount, &r.currency, &r.balance, &r.created_at, &r.seq],
            )?;
        }
        for r in &c.dead_letters {
            tx.execute(
                &s.dead_letter,
                &[&r.source, &r.id, &r.customer_id, &r.edge_id, &r.code, &r.path, &r.message, &r.json, &r.received_at],
            )?;
        }
        for seq in &c.dead_letters_removed {
            tx.execute(&s.dead_letter_removed, &[seq])?;
        }
        for r in &c.tokens {
            tx.execute(&s.token, &[&r.id, &r.role, &r.edge_id, &r.hash, &r.created_at, &r.revoked_at])?;
        }
        for r in &c.invoices {
            tx.execute(&s.invoice, &[&r.customer_id, &r.subscription_id, &r.period_start, &r.json, &r.closed_at])?;
        }
        if let Some(r) = &c.checkpoint {
            tx.execute(&s.checkpoint, &[&r.seq, &r.json, &r.created_at])?;
            tx.execute(&s.checkpoints_removed, &[&r.seq])?;
        }
    }
    Ok(())
}

fn lease_row(r: &Row) -> Result<LeaseRow, postgres::Error> {
    Ok(LeaseRow {
        customer_id: r.try_get(0)?,
        key: r.try_get(1)?,
        period: r.try_get(2)?,
        edge_id: r.try_get(3)?,
        boot_id: r.try_get(4)?,
        epoch: r.try_get(5)?,
        granted: r.try_get(6)?,
        returned: r.try_get(7)?,
        used: r.try_get(8)?,
        expires_at: r.try_get(9)?,
        closed: r.try_get(10)?,
        allowance: r.try_get(11)?,
    })
}

fn topup_row(r: &Row) -> Result<super::TopUpRow, postgres::Error> {
    Ok(super::TopUpRow {
        idempotency_key: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        amount: r.try_get(2)?,
        currency: r.try_get(3)?,
        balance: r.try_get(4)?,
        created_at: r.try_get(5)?,
        seq: r.try_get(6)?,
    })
}

fn invoice_row(r: &Row) -> Result<super::InvoiceRow, postgres::Error> {
    Ok(super::InvoiceRow {
        customer_id: r.try_get(0)?,
        subscription_id: r.try_get(1)?,
        period_start: r.try_get(2)?,
        json: r.try_get(3)?,
        closed_at: r.try_get(4)?,
    })
}

fn dead_letter_row(r: &Row) -> Result<DeadLetterRow, postgres::Error> {
    Ok(DeadLetterRow {
        seq: r.try_get(0)?,
        source: r.try_get(1)?,
        id: r.try_get(2)?,
        customer_id: r.try_get(3)?,
        edge_id: r.try_get(4)?,
        code: r.try_get(5)?,
        path: r.try_get(6)?,
        message: r.try_get(7)?,
        json: r.try_get(8)?,
        received_at: r.try_get(9)?,
    })
}

fn token_row(r: &Row) -> Result<super::TokenRow, postgres::Error> {
    Ok(super::TokenRow {
        id: r.try_get(0)?,
        role: r.try_get(1)?,
        edge_id: r.try_get(2)?,
        hash: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

impl Store for PgStore {
    fn fence(&mut self) -> Result<i64, StoreError> {
        self.ensure()?;
        // One statement: two hubs starting at once get two different epochs.
        let row = self.client.query_one(
            "INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO UPDATE \
             SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT) RETURNING value",
            &[&WRITER_EPOCH],
        )?;
        let value: String = row.try_get(0)?;
        let epoch = value.parse::<i64>().map_err(|_| StoreError(format!("writer epoch {value:?} is not a number")))?;
        self.epoch = Some(epoch);
        Ok(epoch)
    }

    fn load(
        &mut self,
        replay: Replay,
        visit: &mut dyn FnMut(Record) -> Result<(), String>,
    ) -> Result<Loaded, StoreError> {
        self.ensure()?;
        // One snapshot of the database: what other hubs commit meanwhile is after `position`.
        let mut tx =
            self.client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let position = position(&mut tx, &self.statements.read_position)?;
        let rows = tx.query_raw(&start_query(replay), std::iter::empty::<i64>())?;
        let last_seq = visit_rows(rows, 0, visit)?;
        let mut loaded = Loaded { last_seq, position, ..Loaded::default() };
        for row in tx.query("SELECT key, value FROM meta", &[])? {
            loaded.meta.insert(row.try_get(0)?, row.try_get(1)?);
        }
        loaded.leases = select(&mut tx, &format!("SELECT {LEASE_COLUMNS} FROM leases"), lease_row)?;
        loaded.topups = select(
            &mut tx,
            "SELECT idempotency_key, customer_id, amount, currency, balance, created_at, seq FROM wallet_topups",
            topup_row,
        )?;
        loaded.invoices = select(
            &mut tx,
            "SELECT customer_id, subscription_id, period_start, json, closed_at FROM invoices",
            invoice_row,
        )?;
        loaded.tokens =
            select(&mut tx, "SELECT id, role, edge_id, hash, created_at, revoked_at FROM tokens", token_row)?;
        tx.commit()?;
        Ok(loaded)
    }

    fn claim_meta(&mut self, key: &str, value: &str) -> Result<String, StoreError> {
        self.ensure()?;
        self.client
            .execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])?;
        Ok(self.client.query_one("SELECT value FROM meta WHERE key = $1", &[&key])?.try_get(0)?)
    }

    fn shared(&self) -> bool {
        true
    }

    fn coordinate(&mut self, at: i64, cycle: &mut dyn Cycle) -> Result<i64, StoreError> {
        self.ensure()?;
        let mut tx = self.client.transaction()?;
        // Held until the commit: the hubs' writes go one at a time, in position order.
        let head = position(&mut tx, &self.statements.lock_position)?;
        if head > at {
            let tail = read_tail(&mut tx, at, head, cycle.last_seq())?;
            cycle.catch_up(tail).map_err(StoreError)?;
        }
        let (batches, last_seq) = cycle.gather();
        let batches: Vec<&Changes> = batches.iter().filter(|c| !c.is_empty()).collect();
        if batches.is_empty() {
            tx.commit()?;
            return Ok(head);
        }
        write(&mut tx, &self.statements, &batches)?;
        let logged: Vec<Logged> = batches.iter().map(|c| Logged::of(c)).collect();
        let body = serde_json::to_string(&logged).map_err(|e| StoreError(format!("a change log row: {e}")))?;
        let next = head + 1;
        let now = now_ms();
        tx.execute(&self.statements.log, &[&next, &last_seq, &body, &now])?;
        tx.execute(&self.statements.meta, &[&LOG_POSITION, &next.to_string()])?;
        if next % PRUNE_EVERY == 0 {
            tx.execute(&self.statements.prune, &[&now.saturating_sub(LOG_KEPT_MS)])?;
        }
        tx.commit()?;
        Ok(next)
    }

    fn tail(&mut self, at: i64, last_seq: i64) -> Result<Option<Tail>, StoreError> {
        self.ensure()?;
        let head = position(&mut self.client, &self.statements.read_position)?;
        if head <= at {
            return Ok(None);
        }
        let mut tx =
            self.client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let tail = read_tail(&mut tx, at, head, last_seq)?;
        tx.commit()?;
        Ok(Some(tail))
    }

    fn apply(&mut self, batches: &[&Changes]) -> Result<(), StoreError> {
        self.ensure()?;
        if batches.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        let mut tx = self.client.transaction()?;
        if let Some(mine) = self.epoch {
            let current: Option<String> =
                tx.query_opt(&self.statements.epoch, &[&WRITER_EPOCH])?.map(|r| r.try_get(0)).transpose()?;
            if current.as_deref() != Some(mine.to_string().as_str()) {
                return Err(StoreError(format!(
                    "a newer hub (writer epoch {}) took this database over from this one (epoch {mine}); this one no longer writes",
                    current.unwrap_or_default()
                )));
            }
        }
        write(&mut tx, &self.statements, batches)?;
        tx.commit()?;
        Ok(())
    }

    fn events(&mut self, source: &str, after: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.ensure()?;
        let rows = self.client.query(&self.statements.event_page, &[&source, &after, &i64::from(limit)])?;
        let event = |r: &Row| -> Result<StoredEvent, postgres::Error> {
            Ok(StoredEvent { seq: r.try_get(0)?, json: r.try_get(1)?, received_at: r.try_get(2)? })
        };
        Ok(rows.iter().map(event).collect::<Result<Vec<_>, _>>()?)
    }

    fn event_json(&mut self, source: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.ensure()?;
        let row = self.client.query_opt(&self.statements.event_json, &[&source, &id])?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn dead_letters(
        &mut self,
        after: i64,
        limit: u32,
        customer_id: Option<&str>,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        self.ensure()?;
        let rows = self.client.query(&self.statements.dead_letter_page, &[&after, &customer_id, &i64::from(limit)])?;
        Ok(rows.iter().map(dead_letter_row).collect::<Result<Vec<_>, _>>()?)
    }
}
