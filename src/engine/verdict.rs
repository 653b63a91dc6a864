//! The core of every decision, without the parts that cost allocation: what `check` and
//! `consume` compute on the hot path, turned into a [`Decision`] only when asked.

use alloc::sync::Arc;
use rust_decimal::Decimal;

use crate::catalog::FeatureType;
use crate::entitlements::{Access, Balance, Decision, Reason};
use crate::error::Result;
use crate::time::Timestamp;

/// Allowed or not, why, and the metered figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// May the customer go ahead.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// Metered figures, when the feature is metered.
    pub figures: Option<Balance>,
    /// False when the answer rests on a lease or on usage the hub has not acknowledged (an edge).
    pub exact: bool,
    /// True when a sync with the hub would help this answer (an edge).
    pub needs_sync: bool,
    /// True when the customer's wallet pays (or refused to pay) this use: its decision carries
    /// the wallet.
    pub paid: bool,
}

impl Verdict {
    /// A denial without figures.
    pub fn denied(reason: Reason) -> Verdict {
        Verdict { allowed: false, reason, figures: None, exact: true, needs_sync: false, paid: false }
    }

    /// The full decision about `access`.
    pub fn decision(self, access: &Access, now: Timestamp) -> Decision {
        let kind = if access.meter.is_some() { FeatureType::Metered } else { access.kind };
        let mut d = Decision::plain(self.allowed, self.reason, access.key.clone(), Some(kind));
        d.figures = self.figures;
        d.exact = self.exact;
        d.needs_sync = self.needs_sync;
        if self.allowed && access.meter.is_none() {
            d.config = access.config(now);
        }
        d
    }

    /// A decision without an entitlement to describe (unknown customer or feature, not entitled).
    pub fn bare(self, key: Arc<str>, kind: Option<FeatureType>) -> Decision {
        let mut d = Decision::plain(self.allowed, self.reason, key, kind);
        d.exact = self.exact;
        d.needs_sync = self.needs_sync;
        d
    }
}

/// The verdict for `access` if `n` more units were used at `now` (n = 0: a check). A check of
/// a hard limit needs a positive balance; a use of n needs balance ≥ n.
pub fn judge(access: &mut Access, n: Decimal, now: Timestamp) -> Result<Verdict> {
    let Some(meter) = &mut access.meter else {
        return Ok(Verdict {
            allowed: true,
            reason: Reason::Ok,
            figures: None,
            exact: true,
            needs_sync: false,
            paid: false,
        });
    };
    meter.advance(now)?;
    let figures = meter.balance(now)?;
    let allowed = meter.soft || if n.is_zero() { figures.balance > Decimal::ZERO } else { figures.balance >= n };
    let reason = if allowed { Reason::Ok } else { Reason::LimitReached };
    Ok(Verdict { allowed, reason, figures: Some(figures), exact: true, needs_sync: false, paid: false })
}

/// Applies an allowed use of `n` and returns the verdict with the figures after it (the meter's
/// running totals make that a read, not a sum).
/// `force` records usage past a hard limit as overage (usage an edge already allowed).
pub fn use_units(access: &mut Access, before: Verdict, n: Decimal, now: Timestamp, force: bool) -> Result<Verdict> {
    let Some(meter) = &mut access.meter else { return Ok(before) };
    meter.apply(n, now, force)?;
    Ok(Verdict { figures: Some(meter.balance(now)?), ..before })
}
