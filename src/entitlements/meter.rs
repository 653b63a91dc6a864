//! A metered entitlement's balance: grants ("buckets") burned in order, usage and overage per
//! usage period, and the reset rules of SPEC §5 (rollover min/max, preserved overage).

use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::Balance;
use crate::error::Result;
// The inlined forms: `apply` and the balance's sum run on every `consume` and `check`; the
// rest (a period's reset, a redefinition) calls the out-of-line `money::add` and `money::sub`.
use crate::money::{self, add_inline as add, sub_inline as sub};
use crate::time::{period_containing, Duration, Period, Timestamp};

/// The end of time, for one-time entitlements that never reset.
const FOREVER: Timestamp = Timestamp(i64::MAX);

/// When a bucket counts.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// A plan's period grant: while its subscription is active; refilled at each reset.
    Plan {
        /// Subscription start.
        from: Timestamp,
        /// Subscription end.
        until: Option<Timestamp>,
        /// Units issued at each period start.
        issue: Decimal,
    },
    /// A customer grant: from `effectiveAt` until `expiresAt`.
    Grant {
        /// Effective from.
        from: Option<Timestamp>,
        /// Expires at.
        until: Option<Timestamp>,
    },
}

/// One source of units.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Identity across redefinitions: `plan:<subscription>/<price>` or `grant:<id>`.
    pub id: String,
    /// When it counts.
    pub window: Window,
    /// Lower burns first.
    pub priority: Decimal,
    /// Creation order (ties).
    pub order: usize,
    /// Units its definition grants (the grant's amount, the plan's `issueAfterReset`).
    pub amount: Decimal,
    /// Units left.
    pub remaining: Decimal,
    /// Units it held at the start of the period (or when it became effective).
    pub issued: Decimal,
    /// Cap on carried units (`None` = no cap).
    pub max_rollover: Option<Decimal>,
    /// Floor on carried units.
    pub min_rollover: Decimal,
}

impl Bucket {
    fn active(&self, t: Timestamp) -> bool {
        let (from, until) = match self.window {
            Window::Plan { from, until, .. } => (Some(from), until),
            Window::Grant { from, until } => (from, until),
        };
        from.is_none_or(|f| f <= t) && until.is_none_or(|u| t < u)
    }

    /// When the bucket's units are lost: its expiry, or the period end for a period grant
    /// that carries nothing over.
    fn expiry(&self, period_end: Timestamp) -> Timestamp {
        match self.window {
            Window::Grant { until, .. } => until.unwrap_or(FOREVER),
            Window::Plan { .. } if self.max_rollover == Some(Decimal::ZERO) && self.min_rollover.is_zero() => {
                period_end
            }
            Window::Plan { until, .. } => until.unwrap_or(FOREVER),
        }
    }

    /// The instants where it starts or stops counting.
    fn edges(&self) -> [Option<Timestamp>; 2] {
        match self.window {
            Window::Plan { from, until, .. } => [Some(from), until],
            Window::Grant { from, until } => [from, until],
        }
    }

    fn rollover(&self, ending: Decimal) -> Decimal {
        let carried = ending.max(self.min_rollover);
        self.max_rollover.map_or(carried, |hi| carried.min(hi))
    }
}

/// A reset cadence and its anchor.
pub type Cadence = (Duration, Timestamp);

/// The state of one customer's metered feature.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq)]
pub struct Meter {
    /// Soft limits allow past zero and count overage.
    pub soft: bool,
    /// Overage at a reset is burned from the next period's balance.
    pub preserve_overage: bool,
    /// Reset cadence and anchor; `None` = one-time.
    pub cadence: Option<Cadence>,
    /// The current usage period, once known.
    pub period: Option<Period>,
    /// Sources of units.
    pub buckets: Vec<Bucket>,
    /// Units used this period.
    pub usage: Decimal,
    /// Units used past the balance this period.
    pub overage: Decimal,
    /// Extra units the hub may lease out across all edges (SPEC §3.3 `tolerance`).
    pub tolerance: Decimal,
    /// Units of each edge's lease usable only while the hub is unreachable (0: offline `deny`).
    pub offline_allowance: Decimal,
    /// Σ remaining and Σ issued of the active buckets, valid while no bucket starts or stops
    /// and no reset happens (the hot path reads it instead of summing).
    #[cfg_attr(feature = "checkpoint", serde(skip))]
    totals: Option<Totals>,
}

/// Cached sums over the active buckets and the span of time over which they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Totals {
    balance: Decimal,
    limit: Decimal,
    from: Timestamp,
    until: Timestamp,
}

impl Meter {
    /// A meter with no usage yet.
    pub fn new(soft: bool, preserve_overage: bool, cadence: Option<Cadence>, buckets: Vec<Bucket>) -> Meter {
        Meter {
            soft,
            preserve_overage,
            cadence,
            period: None,
            buckets,
            usage: Decimal::ZERO,
            overage: Decimal::ZERO,
            tolerance: Decimal::ZERO,
            offline_allowance: Decimal::ZERO,
            totals: None,
        }
    }

    /// True when some bucket counts at `t` (the customer is entitled).
    pub fn any_active(&self, t: Timestamp) -> bool {
        self.buckets.iter().any(|b| b.active(t))
    }

    fn period_at(&self, t: Timestamp) -> Period {
        match self.cadence.and_then(|(every, anchor)| period_containing(anchor, every, t)) {
            Some(p) => p,
            None => Period { start: Timestamp(i64::MIN), end: FOREVER },
        }
    }

    /// Moves to the usage period containing `now`, applying one reset per period boundary
    /// crossed (stopping early once a reset changes nothing). Time never runs backwards: a
    /// `now` before the current period is treated as inside it.
    pub fn advance(&mut self, now: Timestamp) -> Result<()> {
        let Some(mut current) = self.period else {
            self.period = Some(self.period_at(now));
            return Ok(());
        };
        if now < current.end {
            return Ok(());
        }
        let target = self.period_at(now);
        while current.start < target.start {
            let before = (self.usage, self.overage, self.buckets.clone());
            self.reset(current)?;
            let next = self.period_at(current.end);
            // A reset that changed nothing repeats identically until a bucket starts or stops.
            let unchanged = (self.usage, self.overage, &self.buckets) == (before.0, before.1, &before.2);
            let quiet =
                !self.buckets.iter().flat_map(Bucket::edges).flatten().any(|e| next.start < e && e <= target.start);
            if next.start >= target.start || (unchanged && quiet) {
                current = target;
                break;
            }
            current = next;
        }
        self.period = Some(current);
        Ok(())
    }

    fn reset(&mut self, ending: Period) -> Result<()> {
        self.totals = None;
        for b in &mut self.buckets {
            // A bucket that had not started by the end of the period is untouched.
            if !b.active(Timestamp(ending.end.0 - 1)) && !b.active(ending.end) {
                continue;
            }
            let carried = b.rollover(b.remaining);
            b.remaining = match b.window {
                Window::Plan { issue, .. } => money::add(carried, issue)?,
                Window::Grant { .. } => carried,
            };
            b.issued = b.remaining;
        }
        let carried_overage = if self.preserve_overage { self.overage } else { Decimal::ZERO };
        self.usage = Decimal::ZERO;
        self.overage = Decimal::ZERO;
        if carried_overage > Decimal::ZERO {
            self.apply(carried_overage, ending.end, true)?;
        }
        Ok(())
    }

    /// Takes over the period, usage and overage of `old` (the same feature before the customer
    /// was redefined), and what was already used of each bucket that both share.
    pub fn carry_over(&mut self, old: &Meter) {
        self.totals = None;
        self.period = old.period;
        self.usage = old.usage;
        self.overage = old.overage;
        for b in &mut self.buckets {
            if let Some(o) = old.buckets.iter().find(|o| o.id == b.id) {
                let used = money::sub(o.issued, o.remaining).unwrap_or_default();
                let same = o.amount == b.amount && o.window == b.window;
                if same && o.max_rollover == b.max_rollover && o.min_rollover == b.min_rollover {
                    b.issued = o.issued;
                }
                b.remaining = money::sub(b.issued, used).unwrap_or_default().max(Decimal::ZERO);
            }
        }
    }

    /// The figures at `now` (call [`Meter::advance`] first).
    pub fn balance(&mut self, now: Timestamp) -> Result<Balance> {
        let totals = match self.totals {
            Some(t) if t.from <= now && now < t.until => t,
            _ => {
                let t = self.sum_active(now)?;
                self.totals = Some(t);
                t
            }
        };
        let reset_at = self.cadence.and(self.period).map(|p| p.end);
        Ok(Balance { balance: totals.balance, usage: self.usage, overage: self.overage, limit: totals.limit, reset_at })
    }

    fn sum_active(&self, now: Timestamp) -> Result<Totals> {
        let mut t = Totals { balance: Decimal::ZERO, limit: Decimal::ZERO, from: Timestamp(i64::MIN), until: FOREVER };
        for b in &self.buckets {
            if b.active(now) {
                t.balance = add(t.balance, b.remaining)?;
                t.limit = add(t.limit, b.issued)?;
            }
            for edge in b.edges().into_iter().flatten() {
                if edge <= now {
                    t.from = t.from.max(edge);
                } else {
                    t.until = t.until.min(edge);
                }
            }
        }
        Ok(t)
    }

    /// Uses `n` units at `now`, burning active buckets in order (priority, then earliest
    /// expiry, then creation); past the balance, the rest is overage. The caller checks a
    /// hard limit first (the engine's `judge`).
    pub fn apply(&mut self, n: Decimal, now: Timestamp, soft: bool) -> Result<()> {
        let period_end = self.period.map_or(FOREVER, |p| p.end);
        let mut left = n;
        // Repeatedly burn the first bucket in burn order that still holds units: no allocation,
        // and a customer has only a handful of buckets.
        while left > Decimal::ZERO {
            let next = self
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.remaining > Decimal::ZERO && b.active(now))
                .min_by_key(|(_, b)| (b.priority, b.expiry(period_end), b.order))
                .map(|(i, _)| i);
            let Some(b) = next.and_then(|i| self.buckets.get_mut(i)) else { break };
            if b.remaining >= left {
                b.remaining = sub(b.remaining, left)?;
                left = Decimal::ZERO;
            } else {
                left = sub(left, b.remaining)?;
                b.remaining = Decimal::ZERO;
            }
        }
        if let Some(t) = &mut self.totals {
            if t.from <= now && now < t.until {
                let burned = if left.is_zero() { n } else { sub(n, left)? };
                t.balance = sub(t.balance, burned)?;
            } else {
                self.totals = None;
            }
        }
        self.usage = add(self.usage, n)?;
        if left > Decimal::ZERO {
            debug_assert!(soft || self.soft, "a hard limit was checked before applying");
            self.overage = add(self.overage, left)?;
        }
        Ok(())
    }
}
