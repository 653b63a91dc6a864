//! Positions: the engine's customers and accesses are read by index (from its own maps, the
//! catalog's order or a checked handle); these are the only ways in, and a position it does not
//! hold is an error, never a panic.

use rust_decimal::Decimal;

use super::state::CustomerState;
use super::Engine;
use crate::entitlements::Access;
use crate::error::{Code, Error, Result};
use crate::time::Timestamp;

impl Engine {
    /// The state of the customer at position `c`.
    #[inline]
    pub(super) fn state(&self, c: usize) -> Result<&CustomerState> {
        self.customers.get(c).ok_or_else(lost)
    }

    /// The state of the customer at position `c`, to change.
    #[inline]
    pub(super) fn state_mut(&mut self, c: usize) -> Result<&mut CustomerState> {
        self.customers.get_mut(c).ok_or_else(lost)
    }

    /// The access at `(c, a)`.
    #[inline]
    pub(super) fn access(&self, c: usize, a: usize) -> Result<&Access> {
        self.customers.get(c).and_then(|s| s.access.get(a)).ok_or_else(lost)
    }

    /// The access at `(c, a)`, to change.
    #[inline]
    pub(super) fn access_mut(&mut self, c: usize, a: usize) -> Result<&mut Access> {
        self.customers.get_mut(c).and_then(|s| s.access.get_mut(a)).ok_or_else(lost)
    }
}

/// A use: `n` units of the access at `(c, a)`, the engine's change number `seq`, at `now`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Units {
    /// The customer's position.
    pub c: usize,
    /// The access's position in the customer's state.
    pub a: usize,
    /// How many units.
    pub n: Decimal,
    /// The change number.
    pub seq: u64,
    /// When.
    pub now: Timestamp,
}

/// A customer, access or ledger position the engine does not hold. Positions come from the
/// engine's own maps, the catalog's order and a checked [`Handle`], so only a stale position
/// meets this.
#[cold]
#[inline(never)]
pub(super) fn lost() -> Error {
    Error::new(Code::StaleHandle, "", "the engine holds nothing at this position")
}
