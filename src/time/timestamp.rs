//! RFC 3339 timestamps as milliseconds since the Unix epoch, in UTC.

use alloc::format;
use alloc::string::String;
use core::fmt;

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Days in a month of a year.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, b| acc.checked_mul(10)?.checked_add(u32::from(b - b'0')))
}

impl Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]` followed by `Z` or `±HH:MM` (years 0000–9999).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T' | b't', h1, h2, b':', mi1, mi2, b':', s1, s2, rest @ ..] =
            text.as_bytes()
        else {
            return None;
        };
        let (y, mo, d) = (digits(&[*y1, *y2, *y3, *y4])?, digits(&[*mo1, *mo2])?, digits(&[*d1, *d2])?);
        let (h, mi, s) = (digits(&[*h1, *h2])?, digits(&[*mi1, *mi2])?, digits(&[*s1, *s2])?);
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(i64::from(y), mo) || h > 23 || mi > 59 || s > 59 {
            return None;
        }
        let mut rest = rest;
        let mut ms: i64 = 0;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            let mut scale = 100;
            for c in frac.iter().take(n.min(3)) {
                ms += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            rest = frac.get(n..)?;
        }
        let offset_min: i64 = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
                let (oh, om) = (digits(&[*oh1, *oh2])?, digits(&[*om1, *om2])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let m = i64::from(oh * 60 + om);
                if *sign == b'+' {
                    m
                } else {
                    -m
                }
            }
            _ => return None,
        };
        let days = days_from_civil(i64::from(y), mo, d);
        let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_min * 60;
        Some(Timestamp(secs * 1000 + ms))
    }

    /// The UTC calendar parts: (year, month, day, ms within the day).
    pub fn to_parts(self) -> (i64, u32, u32, i64) {
        let days = self.0.div_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, self.0.rem_euclid(MS_PER_DAY))
    }

    /// From UTC calendar parts (day clamped by the caller).
    pub fn from_parts(y: i64, m: u32, d: u32, ms_of_day: i64) -> Timestamp {
        Timestamp(days_from_civil(y, m, d) * MS_PER_DAY + ms_of_day)
    }

    /// RFC 3339 in UTC: `2026-11-28T10:00:00Z`, with `.mmm` only when there are milliseconds.
    pub fn to_rfc3339(self) -> String {
        let (y, m, d, rem) = self.to_parts();
        let (h, mi, s, ms) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
        if ms == 0 {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in ["1970-01-01T00:00:00Z", "2026-11-28T10:00:00Z", "2024-02-29T23:59:59.123Z", "2000-03-01T00:00:00Z"] {
            assert_eq!(Timestamp::parse(t).unwrap().to_rfc3339(), t);
        }
        assert_eq!(Timestamp::parse("1970-01-01T00:00:01Z"), Some(Timestamp(1000)));
        assert_eq!(Timestamp::parse("1970-01-01T01:00:00+01:00"), Some(Timestamp(0)));
        assert_eq!(Timestamp::parse("1969-12-31T23:59:59Z"), Some(Timestamp(-1000)));
    }

    #[test]
    fn rejects_bad_dates() {
        for t in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28",
            "2026-11-28T10:00:00",
            "2026-11-28T10:00:00.Z",
            "２026-11-28T10:00:00Z",
        ] {
            assert!(Timestamp::parse(t).is_none(), "{t}");
        }
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2026, 4), 30);
    }
}
