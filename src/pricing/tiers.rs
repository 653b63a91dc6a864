//! Tiered amounts: graduated (each unit at its tier's price) and volume (all units at the
//! price of the total's tier). Bounds are inclusive above; q = 0 falls in tier 1.

use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::{Rating, TierAmount};
use crate::error::Result;
use crate::money::{add, mul, sub};
use crate::pricing::Tier;

/// Σ over the tiers reached: units inside × unit price + the tier's flat price.
/// Tier 1 is always reached; tier i > 1 is reached when q > upTo[i-1].
pub fn graduated(tiers: &[Tier], q: Decimal) -> Result<Rating> {
    let mut total = Decimal::ZERO;
    let mut pieces = Vec::new();
    let mut floor = Decimal::ZERO;
    for (i, tier) in tiers.iter().enumerate() {
        if i > 0 && q <= floor {
            break;
        }
        let ceiling = tier.up_to.map_or(q, |u| u.min(q));
        let units = sub(ceiling, floor)?.max(Decimal::ZERO);
        let amount = add(mul(units, tier.unit_price)?, tier.flat_price)?;
        total = add(total, amount)?;
        pieces.push(TierAmount { up_to: tier.up_to, quantity: units, amount });
        match tier.up_to {
            Some(u) => floor = u,
            None => break,
        }
    }
    Ok(Rating { amount: total, unit_price: None, tiers: pieces })
}

/// q × unit price of q's tier + that tier's flat price.
pub fn volume(tiers: &[Tier], q: Decimal) -> Result<Rating> {
    let Some(tier) = tiers.iter().find(|t| t.up_to.is_none_or(|u| q <= u)).or(tiers.last()) else {
        return Ok(Rating::default());
    };
    let amount = add(mul(q, tier.unit_price)?, tier.flat_price)?;
    let piece = TierAmount { up_to: tier.up_to, quantity: q, amount };
    Ok(Rating { amount, unit_price: Some(tier.unit_price), tiers: alloc::vec![piece] })
}
