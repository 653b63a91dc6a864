//! ISO-8601 calendar durations as catalogs use them: `P1D`, `P2W`, `P1M`, `P3M`, `P1Y`, `P0D`.

use alloc::format;
use alloc::string::String;
use core::fmt;

/// A calendar duration: whole days or whole months (weeks are 7 days, years 12 months).
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Duration {
    /// A number of days (`P0D` is zero: a one-time charge).
    Days(u32),
    /// A number of calendar months.
    Months(u32),
}

impl Duration {
    /// Parses `P<n>D`, `P<n>W`, `P<n>M` or `P<n>Y` (a single component, n ≤ 10 000).
    pub fn parse(text: &str) -> Option<Duration> {
        let body = text.strip_prefix('P')?;
        let unit = body.chars().last()?;
        let n = &body[..body.len() - unit.len_utf8()];
        if n.is_empty() || n.len() > 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = n.parse().ok()?;
        if n > 10_000 {
            return None;
        }
        match unit {
            'D' => Some(Duration::Days(n)),
            'W' => Some(Duration::Days(n * 7)),
            'M' => Some(Duration::Months(n)),
            'Y' => Some(Duration::Months(n * 12)),
            _ => None,
        }
    }

    /// True for `P0D`/`P0M`: no recurrence.
    pub fn is_zero(self) -> bool {
        matches!(self, Duration::Days(0) | Duration::Months(0))
    }

    /// Canonical ISO text (`P1M`, `P1Y`, `P7D`).
    pub fn to_iso(self) -> String {
        match self {
            Duration::Days(n) => format!("P{n}D"),
            Duration::Months(n) if n > 0 && n % 12 == 0 => format!("P{}Y", n / 12),
            Duration::Months(n) => format!("P{n}M"),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_catalog_forms() {
        assert_eq!(Duration::parse("P1D"), Some(Duration::Days(1)));
        assert_eq!(Duration::parse("P1W"), Some(Duration::Days(7)));
        assert_eq!(Duration::parse("P3M"), Some(Duration::Months(3)));
        assert_eq!(Duration::parse("P1Y"), Some(Duration::Months(12)));
        assert!(Duration::parse("P0D").unwrap().is_zero());
        for bad in ["", "P", "1M", "PM", "P1H", "PT1H", "P1M1D", "P-1M", "P1.5M", "P99999999D"] {
            assert!(Duration::parse(bad).is_none(), "{bad:?}");
        }
    }
}
