//! Exact money: decimals, currencies and the one rounding rule (SPEC §2).

mod currency;
mod decimal;

pub use currency::Currency;
pub use decimal::{
    add, add_inline, div, mul, parse_decimal, plain, saturating_add, saturating_sub, sub, sub_inline, sum, Overflow,
};
pub use rust_decimal::Decimal;

use rust_decimal::RoundingStrategy;

/// Rounds `amount` to `exponent` decimal places, half away from zero (10.125 → 10.13,
/// −2.5 → −3), and keeps exactly that many places, so `"100.00"` prints as such. An amount too
/// large to carry those places is an `overflow` error.
pub fn round_half_away(amount: Decimal, exponent: u32) -> crate::error::Result<Decimal> {
    let mut rounded = amount.round_dp_with_strategy(exponent, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(exponent);
    if rounded.scale() != exponent {
        let message = "amount too large to carry the currency's decimal places";
        return Err(crate::error::Error::new(crate::error::Code::Overflow, "", message));
    }
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    Ok(rounded)
}
