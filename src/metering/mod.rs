//! Metering (SPEC §3, §5): events in, per-customer, per-period quantities out.

mod aggregate;
mod event;
mod ledger;
mod matcher;

pub use aggregate::Aggregate;
pub use event::Event;
pub use ledger::{Fold, MetricLedger, PeriodUsage};
pub use matcher::{group_of, matches, observe, GroupKey, Observation};
