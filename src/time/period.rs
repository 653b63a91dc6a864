//! Periods: half-open UTC intervals `[start, end)` laid end to end from an anchor. A monthly
//! period anchored on the 31st ends on the last day of shorter months and returns to the 31st.

use super::timestamp::days_in_month;
use super::{Duration, Timestamp};

const MS_PER_DAY: i64 = 86_400_000;

/// `[start, end)` in ms since the epoch.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// First instant inside.
    pub start: Timestamp,
    /// First instant after.
    pub end: Timestamp,
}

impl Period {
    /// True when `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Length in ms.
    pub fn len_ms(&self) -> i64 {
        self.end.0 - self.start.0
    }
}

/// The `k`-th boundary after `anchor` (k may be negative), or `None` past year ±9999.
pub fn boundary(anchor: Timestamp, every: Duration, k: i64) -> Option<Timestamp> {
    match every {
        Duration::Days(n) => {
            let step = i64::from(n).checked_mul(MS_PER_DAY)?;
            anchor.0.checked_add(step.checked_mul(k)?).map(Timestamp)
        }
        Duration::Months(n) => {
            let (y, m, d, ms) = anchor.to_parts();
            let total = (y * 12 + i64::from(m) - 1).checked_add(i64::from(n).checked_mul(k)?)?;
            let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
            if !(0..=9999).contains(&ny) {
                return None;
            }
            Some(Timestamp::from_parts(ny, nm, d.min(days_in_month(ny, nm)), ms))
        }
    }
}

/// The period of cadence `every` anchored at `anchor` that contains `t`; `None` for a zero
/// cadence or out-of-range dates.
pub fn period_containing(anchor: Timestamp, every: Duration, t: Timestamp) -> Option<Period> {
    if every.is_zero() {
        return None;
    }
    // An estimate of k from the distance, then a walk of at most a step or two.
    let mut k = match every {
        Duration::Days(n) => (t.0 - anchor.0).div_euclid(i64::from(n) * MS_PER_DAY),
        Duration::Months(n) => {
            let (ay, am, ..) = anchor.to_parts();
            let (ty, tm, ..) = t.to_parts();
            ((ty - ay) * 12 + i64::from(tm) - i64::from(am)).div_euclid(i64::from(n))
        }
    };
    loop {
        let start = boundary(anchor, every, k)?;
        let end = boundary(anchor, every, k + 1)?;
        if t < start {
            k -= 1;
        } else if t >= end {
            k += 1;
        } else {
            return Some(Period { start, end });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn p(anchor: &str, every: &str, t: &str) -> (String, String) {
        let per = period_containing(ts(anchor), Duration::parse(every).unwrap(), ts(t)).unwrap();
        (per.start.to_rfc3339(), per.end.to_rfc3339())
    }

    #[test]
    fn month_end_anchor_clamps_and_returns() {
        let a = "2026-01-31T00:00:00Z";
        assert_eq!(p(a, "P1M", "2026-02-15T00:00:00Z"), ("2026-01-31T00:00:00Z".into(), "2026-02-28T00:00:00Z".into()));
        assert_eq!(p(a, "P1M", "2026-03-01T00:00:00Z"), ("2026-02-28T00:00:00Z".into(), "2026-03-31T00:00:00Z".into()));
        assert_eq!(p(a, "P1M", "2026-04-05T00:00:00Z"), ("2026-03-31T00:00:00Z".into(), "2026-04-30T00:00:00Z".into()));
        // Leap year: Jan 31 → Feb 29 → Mar 31.
        let leap = "2028-01-31T00:00:00Z";
        assert_eq!(
            p(leap, "P1M", "2028-02-29T12:00:00Z"),
            ("2028-02-29T00:00:00Z".into(), "2028-03-31T00:00:00Z".into())
        );
    }

    #[test]
    fn before_the_anchor_and_other_cadences() {
        assert_eq!(
            p("2026-11-01T00:00:00Z", "P1M", "2026-10-15T00:00:00Z"),
            ("2026-10-01T00:00:00Z".into(), "2026-11-01T00:00:00Z".into())
        );
        assert_eq!(
            p("2026-11-01T00:00:00Z", "P1W", "2026-11-20T00:00:00Z"),
            ("2026-11-15T00:00:00Z".into(), "2026-11-22T00:00:00Z".into())
        );
        assert_eq!(
            p("2024-02-29T00:00:00Z", "P1Y", "2025-03-01T00:00:00Z"),
            ("2025-02-28T00:00:00Z".into(), "2026-02-28T00:00:00Z".into())
        );
        // The boundary instant belongs to the next period.
        assert_eq!(
            p("2026-11-01T00:00:00Z", "P1M", "2026-12-01T00:00:00Z"),
            ("2026-12-01T00:00:00Z".into(), "2027-01-01T00:00:00Z".into())
        );
        assert!(period_containing(ts("2026-11-01T00:00:00Z"), Duration::Days(0), ts("2026-11-02T00:00:00Z")).is_none());
    }
}
