//! What several hubs on one database (PostgreSQL) exchange through it: each group commit is also
//! a row of `change_log`, at the next `position`, written under a lock on that position (a
//! row lock, so hubs commit one at a time and in one order); a hub that is behind applies the
//! rows it has not seen, with the history they point at, before it decides anything.

use serde::{Deserialize, Serialize};

use super::{Changes, InvoiceRow, LeaseId, LeaseRow, Record, TokenRow, TopUpRow};

/// The part of a batch that other hubs apply to their memory besides the history (which they
/// read from its own tables): everything but the history rows and the dead letters (which no
/// hub keeps in memory).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    /// `meta` entries set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<(String, String)>,
    /// Leases inserted or overwritten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseRow>,
    /// Leases collected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases_removed: Vec<LeaseId>,
    /// Top-ups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topups: Vec<TopUpRow>,
    /// Closed invoices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoices: Vec<InvoiceRow>,
    /// Tokens made or revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenRow>,
}

impl Logged {
    /// The logged part of `c`.
    pub fn of(c: &Changes) -> Logged {
        Logged {
            meta: c.meta.clone(),
            leases: c.leases.clone(),
            leases_removed: c.leases_removed.clone(),
            topups: c.topups.clone(),
            invoices: c.invoices.clone(),
            tokens: c.tokens.clone(),
        }
    }
}

/// What other hubs committed after a position: their history records (in `seq` order) and
/// their logged batches (in commit order).
#[derive(Clone, Debug, Default)]
pub struct Tail {
    /// The position it brings a hub to.
    pub position: i64,
    /// The history's last `seq` at that position.
    pub last_seq: i64,
    /// History records after the hub's last `seq`, up to `last_seq`.
    pub records: Vec<Record>,
    /// The logged batches.
    pub logged: Vec<Logged>,
}

/// One coordinated write, driven by [`super::Store::coordinate`] while it holds the position's
/// lock: first what others committed is applied, then the batches to write are gathered.
pub trait Cycle {
    /// The history's last `seq` in memory (where the tail's records start).
    fn last_seq(&mut self) -> i64;
    /// Applies what other hubs committed since this one's position.
    fn catch_up(&mut self, tail: Tail) -> Result<(), String>;
    /// The batches to write now, in order, and the history's last `seq` after them.
    fn gather(&mut self) -> (Vec<Changes>, i64);
}
