//! Decimal parsing, checked arithmetic (overflow is an error) and plain printing.

use alloc::string::{String, ToString};
use rust_decimal::Decimal;

use crate::error::{Code, Error, Result};

/// Parses a decimal in plain (`"0.000002"`, `"-3"`) or scientific (`"1e6"`) notation, exactly.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t.is_empty() || t != text {
        return None;
    }
    let plain_chars = t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.'));
    if plain_chars {
        // Reject forms rust_decimal tolerates but JSON users would not mean: "1_000", ".5" ok.
        return Decimal::from_str_exact(t).ok();
    }
    if t.bytes().any(|b| b == b'e' || b == b'E') {
        return Decimal::from_scientific(t).ok();
    }
    None
}

/// An arithmetic result too large to represent. Zero-sized, so checked arithmetic stays as cheap
/// as plain arithmetic on the hot path; `?` turns it into an `overflow` [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl From<Overflow> for Error {
    fn from(_: Overflow) -> Error {
        Error::new(Code::Overflow, "", "result too large to represent exactly")
    }
}

// In the WebAssembly module the four operations below stay out of line: rust_decimal inlines
// its whole arithmetic (`#[inline(always)]`) into each caller, which cost ~45 KB of the module's
// gzip size over the crate's hundred-odd call sites, all off the per-call path. The per-call
// path (`consume`, a meter's balance) uses [`add_inline`] and [`sub_inline`]. Native builds
// inline all of them, as before.

/// `a + b`, or [`Overflow`].
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn add(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    add_inline(a, b)
}

/// `a - b`, or [`Overflow`].
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn sub(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    sub_inline(a, b)
}

/// `a × b`, or [`Overflow`].
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn mul(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_mul(b).ok_or(Overflow)
}

/// `a ÷ b` (b ≠ 0 is the caller's duty), or [`Overflow`].
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn div(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_div(b).ok_or(Overflow)
}

/// `a + b`, saturating at the largest or smallest decimal. Out of line in the wasm module, like
/// [`add`]: rust_decimal's own `saturating_add` inlines a whole addition into every caller.
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn saturating_add(a: Decimal, b: Decimal) -> Decimal {
    a.saturating_add(b)
}

/// `a - b`, saturating at the largest or smallest decimal; out of line in the wasm module.
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline)]
pub fn saturating_sub(a: Decimal, b: Decimal) -> Decimal {
    a.saturating_sub(b)
}

/// [`add`], inlined into its caller everywhere: for the per-call hot path only.
#[inline]
pub fn add_inline(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

/// [`sub`], inlined into its caller everywhere: for the per-call hot path only.
#[inline]
pub fn sub_inline(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_sub(b).ok_or(Overflow)
}

/// Σ of the items, or [`Overflow`].
pub fn sum(items: impl IntoIterator<Item = Decimal>) -> Result<Decimal, Overflow> {
    items.into_iter().try_fold(Decimal::ZERO, add)
}

/// The exact value in plain notation without trailing zeros: `"51.2345"`, `"4"`, `"-0.5"`.
pub fn plain(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.is_zero() {
        n.set_sign_positive(true);
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        parse_decimal(s).unwrap()
    }

    #[test]
    fn parses_plain_and_scientific() {
        assert_eq!(d("0.000002").to_string(), "0.000002");
        assert_eq!(d("1e6"), Decimal::from(1_000_000));
        assert_eq!(d("2.5E-3"), d("0.0025"));
        assert_eq!(d("-3"), Decimal::from(-3));
        for bad in ["", " 1", "1 ", "abc", "1.2.3", "0x10", "1_000", "NaN", "inf"] {
            assert!(parse_decimal(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn plain_strips_trailing_zeros() {
        assert_eq!(plain(d("4.000000")), "4");
        assert_eq!(plain(d("51.23450")), "51.2345");
        assert_eq!(plain(d("-0.0")), "0");
    }

    #[test]
    fn saturating_forms_stop_at_the_bounds() {
        assert_eq!(saturating_add(Decimal::MAX, Decimal::ONE), Decimal::MAX);
        assert_eq!(saturating_sub(Decimal::MIN, Decimal::ONE), Decimal::MIN);
        assert_eq!(saturating_sub(d("5"), d("1.5")), d("3.5"));
        assert_eq!(add_inline(d("1.5"), d("2")).unwrap(), d("3.5"));
        assert_eq!(sub_inline(d("1.5"), d("2")).unwrap(), d("-0.5"));
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(Error::from(mul(Decimal::MAX, Decimal::TWO).unwrap_err()).code, Code::Overflow);
        assert_eq!(Error::from(add(Decimal::MAX, Decimal::ONE).unwrap_err()).code, Code::Overflow);
    }
}
