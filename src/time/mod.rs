//! Calendar time without a clock: RFC 3339 timestamps (ms since the Unix epoch, UTC) and the
//! ISO-8601 durations that catalogs use for cadences and usage periods.

mod duration;
mod period;
mod timestamp;

pub use duration::Duration;
pub use period::{boundary, period_containing, Period};
pub use timestamp::{civil_from_days, days_from_civil, Timestamp};
