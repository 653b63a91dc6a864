//! The hub's SQLite schema, as numbered migrations recorded in `schema_version`.
//!
//! Every column uses a type that maps one to one onto PostgreSQL (see docs/hub.md): `TEXT` for
//! ids, JSON documents and decimals (exact, written in plain notation), `INTEGER` for times (ms
//! since the Unix epoch, `BIGINT` in PostgreSQL), counters and flags. `seq` is one sequence shared
//! by catalog versions, customer versions and events: replaying the three in `seq` order rebuilds
//! the hub's engine exactly as it was.

/// The migrations, in order: migration `i` brings the schema to version `i + 1`. Never edit one
/// that has shipped; add the next.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE catalog_versions (
        version          INTEGER PRIMARY KEY,
        json             TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        seq              INTEGER NOT NULL UNIQUE,
        snapshot_version INTEGER NOT NULL
    );
    CREATE TABLE customers (
        id      TEXT PRIMARY KEY,
        json    TEXT    NOT NULL,
        version INTEGER NOT NULL
    );
    CREATE TABLE customer_versions (
        seq              INTEGER PRIMARY KEY,
        customer_id      TEXT    NOT NULL,
        kind             TEXT    NOT NULL,
        json             TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        snapshot_version INTEGER NOT NULL
    );
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY,
        source      TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        customer_id TEXT    NOT NULL,
        json        TEXT    NOT NULL,
        received_at INTEGER NOT NULL,
        UNIQUE (source, id)
    );
    CREATE TABLE leases (
        customer_id TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        period      INTEGER NOT NULL,
        edge_id     TEXT    NOT NULL,
        boot_id     TEXT    NOT NULL,
        epoch       INTEGER NOT NULL,
        granted     TEXT    NOT NULL,
        returned    TEXT    NOT NULL,
        used        TEXT    NOT NULL,
        expires_at  INTEGER NOT NULL,
        closed      INTEGER NOT NULL,
        PRIMARY KEY (customer_id, key, period, edge_id, boot_id, epoch)
    );
    CREATE TABLE direct_usage (
        customer_id TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        period      INTEGER NOT NULL,
        used        TEXT    NOT NULL,
        PRIMARY KEY (customer_id, key, period)
    );
    CREATE TABLE wallet_topups (
        idempotency_key TEXT    NOT NULL UNIQUE,
        customer_id     TEXT    NOT NULL,
        amount          TEXT    NOT NULL,
        currency        TEXT    NOT NULL,
        balance         TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        seq             INTEGER NOT NULL
    );
    CREATE TABLE invoices (
        customer_id     TEXT    NOT NULL,
        subscription_id TEXT    NOT NULL,
        period_start    INTEGER NOT NULL,
        json            TEXT    NOT NULL,
        closed_at       INTEGER NOT NULL,
        UNIQUE (customer_id, subscription_id, period_start)
    );
    ",
    // 2: the offline allowance of a lease (part of `granted`).
    "ALTER TABLE leases ADD COLUMN allowance TEXT NOT NULL DEFAULT '0';",
    // 3: usage outside any lease was never written (the hub draws through a lease of its own).
    "DROP TABLE direct_usage;",
    // 4: events the hub could not apply (unknown customer, unreadable, too far in the future),
    // kept with the reason until they are replayed; `seq` is their own arrival order.
    "
    CREATE TABLE dead_letters (
        seq         INTEGER PRIMARY KEY,
        source      TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        customer_id TEXT    NOT NULL,
        edge_id     TEXT    NOT NULL,
        code        TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        message     TEXT    NOT NULL,
        json        TEXT    NOT NULL,
        received_at INTEGER NOT NULL,
        UNIQUE (source, id)
    );
    ",
    // 5: the bearer tokens the hub made, by the SHA-256 of their text.
    "
    CREATE TABLE tokens (
        id         TEXT    PRIMARY KEY,
        role       TEXT    NOT NULL,
        edge_id    TEXT    NOT NULL,
        hash       TEXT    NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL
    );
    ",
    // 6: the state at a point of the history, so a start replays only what came after it.
    "
    CREATE TABLE checkpoints (
        seq        INTEGER PRIMARY KEY,
        json       TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    );
    ",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
