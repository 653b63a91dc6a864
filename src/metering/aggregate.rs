//! The eight aggregations, folded one event at a time (O(1) or O(log n) per event, never a
//! re-scan), with a side-effect-free `delta` so a hard limit can be checked before applying.

use alloc::collections::{BTreeMap, BTreeSet};
use rust_decimal::Decimal;

use super::{Fold, Observation};
use crate::catalog::Aggregation;
use crate::error::Result;
use crate::money::{add, div, mul, sub};
use crate::time::{Period, Timestamp};

/// Running state of one aggregation over one period (and group).
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// Σ values.
    Sum(Decimal),
    /// Number of events (or units consumed directly).
    Count(Decimal),
    /// Σ values and their count.
    Avg {
        /// Σ values.
        sum: Decimal,
        /// Number of values.
        count: Decimal,
    },
    /// Smallest value so far.
    Min(Option<Decimal>),
    /// Largest value so far.
    Max(Option<Decimal>),
    /// Distinct values so far.
    Unique(BTreeSet<alloc::string::String>),
    /// (time, arrival, value) of the latest event; a tie in time goes to the later arrival.
    Latest(Option<(Timestamp, u64, Decimal)>),
    /// Level changes by time; a level holds until the next change or the period's end.
    Weighted(BTreeMap<Timestamp, Decimal>),
}

fn number(obs: &Observation) -> Decimal {
    match obs {
        Observation::Number(n) => *n,
        Observation::Key(_) => Decimal::ZERO,
    }
}

impl Aggregate {
    /// The empty state of `aggregation`.
    pub fn new(aggregation: Aggregation) -> Aggregate {
        match aggregation {
            Aggregation::Sum => Aggregate::Sum(Decimal::ZERO),
            Aggregation::Count => Aggregate::Count(Decimal::ZERO),
            Aggregation::Avg => Aggregate::Avg { sum: Decimal::ZERO, count: Decimal::ZERO },
            Aggregation::Min => Aggregate::Min(None),
            Aggregation::Max => Aggregate::Max(None),
            Aggregation::UniqueCount => Aggregate::Unique(BTreeSet::new()),
            Aggregation::Latest => Aggregate::Latest(None),
            Aggregation::WeightedSum => Aggregate::Weighted(BTreeMap::new()),
        }
    }

    /// Folds one event observed at `time` (the `seq`-th arrival). `units` > 1 on COUNT counts
    /// several (a direct `consume(n)`); elsewhere the observation is the value.
    pub fn fold(&mut self, time: Timestamp, seq: u64, obs: &Observation, units: Decimal) -> Result<()> {
        let v = number(obs);
        match self {
            Aggregate::Sum(s) => *s = add(*s, v)?,
            Aggregate::Count(c) => *c = add(*c, units)?,
            Aggregate::Avg { sum, count } => {
                *sum = add(*sum, v)?;
                *count = add(*count, Decimal::ONE)?;
            }
            Aggregate::Min(m) => *m = Some(m.map_or(v, |m| m.min(v))),
            Aggregate::Max(m) => *m = Some(m.map_or(v, |m| m.max(v))),
            Aggregate::Unique(set) => {
                if let Observation::Key(k) = obs {
                    if !set.contains(k) {
                        set.insert(k.clone());
                    }
                }
            }
            Aggregate::Latest(cur) => {
                if cur.is_none_or(|(t, s, _)| (time, seq) > (t, s)) {
                    *cur = Some((time, seq, v));
                }
            }
            Aggregate::Weighted(levels) => {
                levels.insert(time, v);
            }
        }
        Ok(())
    }

    /// The aggregate's value over `period`; `carried` is the level in force at its start
    /// (WEIGHTED_SUM only: the last level of the previous period).
    pub fn value(&self, period: Period, carried: Decimal) -> Result<Decimal> {
        Ok(match self {
            Aggregate::Sum(s) | Aggregate::Count(s) => *s,
            Aggregate::Avg { sum, count } if !count.is_zero() => div(*sum, *count)?,
            Aggregate::Avg { .. } => Decimal::ZERO,
            Aggregate::Min(m) | Aggregate::Max(m) => m.unwrap_or_default(),
            Aggregate::Unique(set) => Decimal::from(set.len()),
            Aggregate::Latest(cur) => cur.map_or(Decimal::ZERO, |(_, _, v)| v),
            Aggregate::Weighted(levels) => {
                let mut level = carried;
                let mut cursor = period.start.0;
                let mut integral = Decimal::ZERO;
                for (t, l) in levels {
                    integral = add(integral, mul(level, Decimal::from(t.0 - cursor))?)?;
                    (level, cursor) = (*l, t.0);
                }
                integral = add(integral, mul(level, Decimal::from(period.end.0 - cursor))?)?;
                div(integral, Decimal::from(period.len_ms().max(1)))?
            }
        })
    }

    /// How much `value` would change if the observation of `f` were folded, without folding it.
    pub fn delta(&self, f: &Fold<'_>, carried: Decimal) -> Result<Decimal> {
        let Fold { time, seq, ref obs, units, period, .. } = *f;
        let v = number(obs);
        let before = self.value(period, carried)?;
        Ok(match self {
            Aggregate::Sum(_) => v,
            Aggregate::Count(_) => units,
            Aggregate::Avg { sum, count } => sub(div(add(*sum, v)?, add(*count, Decimal::ONE)?)?, before)?,
            Aggregate::Min(m) => sub(m.map_or(v, |m| m.min(v)), before)?,
            Aggregate::Max(m) => sub(m.map_or(v, |m| m.max(v)), before)?,
            Aggregate::Unique(set) => match obs {
                Observation::Key(k) if !set.contains(k) => Decimal::ONE,
                _ => Decimal::ZERO,
            },
            Aggregate::Latest(cur) if cur.is_none_or(|(t, s, _)| (time, seq) > (t, s)) => sub(v, before)?,
            Aggregate::Latest(_) => Decimal::ZERO,
            Aggregate::Weighted(levels) => {
                // The new level replaces the old one from `time` until the next change.
                let old = match levels.range(..=time).next_back() {
                    Some((_, l)) => *l,
                    None => carried,
                };
                let next = levels.range(time..).find(|(t, _)| **t > time).map_or(period.end.0, |(t, _)| t.0);
                let span = Decimal::from(next - time.0);
                div(mul(sub(v, old)?, span)?, Decimal::from(period.len_ms().max(1)))?
            }
        })
    }

    /// The level in force at the end (WEIGHTED_SUM), to carry into the next period.
    pub fn last_level(&self) -> Option<Decimal> {
        match self {
            Aggregate::Weighted(levels) => levels.values().next_back().copied(),
            _ => None,
        }
    }
}
