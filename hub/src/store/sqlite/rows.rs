//! How each row type is read back from its table: its columns, and one mapping from a SQLite row.

use rusqlite::Row;

use crate::store::{DeadLetterRow, InvoiceRow, LeaseRow, StoredEvent, TokenRow, TopUpRow};

/// A row type read from SQLite: `COLUMNS` in the order [`FromRow::from_row`] reads them.
pub(super) trait FromRow: Sized {
    /// The columns, comma-separated, for a `SELECT`.
    const COLUMNS: &'static str;
    /// The value of one row selected with [`FromRow::COLUMNS`].
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self>;
}

impl FromRow for LeaseRow {
    const COLUMNS: &'static str =
        "customer_id, key, period, edge_id, boot_id, epoch, granted, returned, used, expires_at, closed, allowance";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(LeaseRow {
            customer_id: r.get(0)?,
            key: r.get(1)?,
            period: r.get(2)?,
            edge_id: r.get(3)?,
            boot_id: r.get(4)?,
            epoch: r.get(5)?,
            granted: r.get(6)?,
            returned: r.get(7)?,
            used: r.get(8)?,
            expires_at: r.get(9)?,
            closed: r.get(10)?,
            allowance: r.get(11)?,
        })
    }
}

impl FromRow for TopUpRow {
    const COLUMNS: &'static str = "idempotency_key, customer_id, amount, currency, balance, created_at, seq";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(TopUpRow {
            idempotency_key: r.get(0)?,
            customer_id: r.get(1)?,
            amount: r.get(2)?,
            currency: r.get(3)?,
            balance: r.get(4)?,
            created_at: r.get(5)?,
            seq: r.get(6)?,
        })
    }
}

impl FromRow for InvoiceRow {
    const COLUMNS: &'static str = "customer_id, subscription_id, period_start, json, closed_at";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(InvoiceRow {
            customer_id: r.get(0)?,
            subscription_id: r.get(1)?,
            period_start: r.get(2)?,
            json: r.get(3)?,
            closed_at: r.get(4)?,
        })
    }
}

impl FromRow for DeadLetterRow {
    const COLUMNS: &'static str = "seq, source, id, customer_id, edge_id, code, path, message, json, received_at";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(DeadLetterRow {
            seq: r.get(0)?,
            source: r.get(1)?,
            id: r.get(2)?,
            customer_id: r.get(3)?,
            edge_id: r.get(4)?,
            code: r.get(5)?,
            path: r.get(6)?,
            message: r.get(7)?,
            json: r.get(8)?,
            received_at: r.get(9)?,
        })
    }
}

impl FromRow for StoredEvent {
    const COLUMNS: &'static str = "seq, json, received_at";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(StoredEvent { seq: r.get(0)?, json: r.get(1)?, received_at: r.get(2)? })
    }
}

impl FromRow for TokenRow {
    const COLUMNS: &'static str = "id, role, edge_id, hash, created_at, revoked_at";
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(TokenRow {
            id: r.get(0)?,
            role: r.get(1)?,
            edge_id: r.get(2)?,
            hash: r.get(3)?,
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    }
}
