//! A customer's usage: per metric, per period, the running aggregate in total and per group.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::{Aggregate, GroupKey, Observation};
use crate::catalog::{Aggregation, BillableMetric};
use crate::error::Result;
use crate::time::{Period, Timestamp};

/// One metric's usage in one period.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodUsage {
    /// The period.
    pub period: Period,
    /// Over all events.
    pub total: Aggregate,
    /// Per `groupBy` value (empty when the metric has no `groupBy`).
    #[cfg_attr(feature = "checkpoint", serde(with = "crate::engine::checkpoint::pairs"))]
    pub groups: BTreeMap<GroupKey, Aggregate>,
    /// Events folded.
    pub events: u64,
    /// Units of this period that grants covered (free under `grantDiscount`).
    pub covered: Decimal,
}

/// One metric's usage across periods, keyed by period start.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricLedger {
    periods: BTreeMap<Timestamp, PeriodUsage>,
    /// The last period looked up and the span `[from, until)` over which that lookup holds.
    #[cfg_attr(feature = "checkpoint", serde(skip))]
    recent: Option<(Period, Timestamp, Timestamp)>,
}

/// Where a fold lands and what it changes.
pub struct Fold<'a> {
    /// The metric.
    pub metric: &'a BillableMetric,
    /// The period of the event.
    pub period: Period,
    /// Event time.
    pub time: Timestamp,
    /// Arrival number (LATEST ties).
    pub seq: u64,
    /// The observation.
    pub obs: Observation,
    /// Units (COUNT of a direct consume; 1 for an event).
    pub units: Decimal,
    /// Group under `groupBy` (borrowed for direct consumes, whose group is all-absent).
    pub group: Cow<'a, [Option<String>]>,
    /// Of the units, how many grants covered.
    pub covered: Decimal,
}

impl MetricLedger {
    /// True when no period has usage.
    pub fn is_empty(&self) -> bool {
        self.periods.is_empty()
    }

    /// The period containing `t`: the one last computed while `t` is inside the span where it
    /// holds, else `compute()` (which returns the period and that span). The engine calls
    /// [`MetricLedger::forget_period`] when subscriptions change.
    pub fn period_for(&mut self, t: Timestamp, compute: impl FnOnce() -> (Period, Timestamp, Timestamp)) -> Period {
        match self.recent {
            Some((p, from, until)) if from <= t && t < until => p,
            _ => {
                let found = compute();
                self.recent = Some(found);
                found.0
            }
        }
    }

    /// Drops the remembered period.
    pub fn forget_period(&mut self) {
        self.recent = None;
    }

    /// The usage of `period`, if any event fell in it.
    pub fn period(&self, period_start: Timestamp) -> Option<&PeriodUsage> {
        self.periods.get(&period_start)
    }

    /// Level carried into the period starting at `start` (WEIGHTED_SUM): the last level of the
    /// latest earlier period with events, for the whole metric or one group.
    pub fn carried(&self, start: Timestamp, group: Option<&[Option<String>]>) -> Decimal {
        self.periods
            .range(..start)
            .rev()
            .find_map(|(_, p)| match group {
                None if p.groups.is_empty() => p.total.last_level(),
                None => None,
                Some(g) => p.groups.get(g).and_then(Aggregate::last_level),
            })
            .unwrap_or_default()
    }

    /// The metric's quantity for a period: the total aggregate (Σ of groups for WEIGHTED_SUM
    /// with `groupBy`, since each group is its own level series).
    pub fn quantity(&self, metric: &BillableMetric, period: Period) -> Result<Decimal> {
        let Some(usage) = self.periods.get(&period.start) else {
            return self.empty_quantity(metric, period);
        };
        if metric.aggregation == Aggregation::WeightedSum && !metric.group_by.is_empty() {
            return self.weighted_groups(metric, period).map(|v| v.into_iter().map(|(_, q)| q).sum());
        }
        usage.total.value(period, self.carried(period.start, None))
    }

    fn empty_quantity(&self, metric: &BillableMetric, period: Period) -> Result<Decimal> {
        if metric.aggregation != Aggregation::WeightedSum {
            return Ok(Decimal::ZERO);
        }
        if metric.group_by.is_empty() {
            return Aggregate::new(metric.aggregation).value(period, self.carried(period.start, None));
        }
        self.weighted_groups(metric, period).map(|v| v.into_iter().map(|(_, q)| q).sum())
    }

    /// Quantity per group for a period.
    pub fn group_quantities(&self, metric: &BillableMetric, period: Period) -> Result<Vec<(GroupKey, Decimal)>> {
        if metric.aggregation == Aggregation::WeightedSum {
            return self.weighted_groups(metric, period);
        }
        let Some(usage) = self.periods.get(&period.start) else { return Ok(Vec::new()) };
        usage.groups.iter().map(|(g, a)| Ok((g.clone(), a.value(period, Decimal::ZERO)?))).collect()
    }

    /// Each group seen up to this period, with its level series carried in.
    fn weighted_groups(&self, metric: &BillableMetric, period: Period) -> Result<Vec<(GroupKey, Decimal)>> {
        let mut keys: Vec<&GroupKey> = self.periods.range(..=period.start).flat_map(|(_, p)| p.groups.keys()).collect();
        keys.sort();
        keys.dedup();
        let empty = Aggregate::new(metric.aggregation);
        let this = self.periods.get(&period.start);
        keys.into_iter()
            .map(|g| {
                let agg = this.and_then(|p| p.groups.get(g)).unwrap_or(&empty);
                Ok((g.clone(), agg.value(period, self.carried(period.start, Some(g)))?))
            })
            .collect()
    }

    /// How much the metric's quantity for the fold's period would change.
    pub fn delta(&self, f: &Fold<'_>) -> Result<Decimal> {
        let carried_total = self.carried(f.period.start, None);
        match self.periods.get(&f.period.start) {
            Some(u) if f.metric.aggregation == Aggregation::WeightedSum && !f.metric.group_by.is_empty() => {
                let carried = self.carried(f.period.start, Some(&f.group));
                let empty = Aggregate::new(f.metric.aggregation);
                let agg = u.groups.get(&*f.group).unwrap_or(&empty);
                agg.delta(f, carried)
            }
            Some(u) => u.total.delta(f, carried_total),
            None => {
                let carried = if f.metric.group_by.is_empty() {
                    carried_total
                } else {
                    self.carried(f.period.start, Some(&f.group))
                };
                Aggregate::new(f.metric.aggregation).delta(f, carried)
            }
        }
    }

    /// Folds the observation into its period's total and group.
    pub fn fold(&mut self, f: &Fold<'_>) -> Result<()> {
        let usage = self.periods.entry(f.period.start).or_insert_with(|| PeriodUsage {
            period: f.period,
            total: Aggregate::new(f.metric.aggregation),
            groups: BTreeMap::new(),
            events: 0,
            covered: Decimal::ZERO,
        });
        if !f.covered.is_zero() {
            usage.covered = crate::money::add(usage.covered, f.covered)?;
        }
        usage.total.fold(f.time, f.seq, &f.obs, f.units)?;
        if !f.metric.group_by.is_empty() {
            match usage.groups.get_mut(&*f.group) {
                Some(group) => group.fold(f.time, f.seq, &f.obs, f.units)?,
                None => {
                    let mut group = Aggregate::new(f.metric.aggregation);
                    group.fold(f.time, f.seq, &f.obs, f.units)?;
                    usage.groups.insert(f.group.to_vec(), group);
                }
            }
        }
        usage.events = usage.events.saturating_add(1);
        Ok(())
    }
}
