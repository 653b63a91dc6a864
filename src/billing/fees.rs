//! Which share of a billing period a fee is billed for, on which invoice: upfront fees on the
//! advance invoice (from the later of the period's and the subscription's start to the period's
//! end), fees in arrears on the arrears invoice (the time the subscription was active), and the
//! refund of upfront time after an early end.

use rust_decimal::Decimal;

use super::price_line::Share;
use crate::catalog::PaymentTerm;
use crate::customer::Subscription;
use crate::time::{period_containing, Duration, Period};

/// A fee's cadence against the plan's, and the subscription's first billing period.
#[derive(Clone, Copy, Debug)]
pub struct FeeTiming {
    /// The fee's own cadence (`P0D` = one-time).
    pub cadence: Duration,
    /// The plan's billing cadence.
    pub plan_cadence: Duration,
    /// The subscription's first billing period.
    pub first: Period,
}

const NONE: Share = Share { part: Decimal::ZERO, whole: Decimal::ONE };

fn all_or_nothing(due: bool) -> Share {
    if due {
        Share::FULL
    } else {
        NONE
    }
}

/// The share of `period` an upfront fee is billed for when the period starts. An end date is
/// not anticipated: the time after an early end is refunded when the period closes
/// ([`refund_share`]), so what was issued never changes.
pub fn advance_share(sub: &Subscription, t: FeeTiming, period: Period) -> Share {
    if t.cadence.is_zero() {
        return all_or_nothing(period == t.first);
    }
    if t.cadence != t.plan_cadence {
        return all_or_nothing(due_on_own_cadence(sub, PaymentTerm::InAdvance, t.cadence, period));
    }
    let from = period.start.max(sub.started_at);
    let started = from < period.end && sub.ending_at.is_none_or(|e| e > from);
    share(from, if started { period.end } else { from }, period)
}

/// The share of `period` a fee in arrears is billed for: the time the subscription was active
/// in it (one-time fees on the first period, fees on their own cadence where one of their
/// periods ends).
pub fn arrears_share(sub: &Subscription, t: FeeTiming, period: Period) -> Share {
    if t.cadence.is_zero() {
        return all_or_nothing(period == t.first);
    }
    if t.cadence != t.plan_cadence {
        return all_or_nothing(due_on_own_cadence(sub, PaymentTerm::InArrears, t.cadence, period));
    }
    let from = period.start.max(sub.started_at);
    let until = sub.ending_at.map_or(period.end, |e| e.min(period.end));
    share(from, until, period)
}

/// The share of `period` to refund of a recurring upfront fee when the subscription ended
/// inside it: from the end to the period's end. `None` without an early end.
pub fn refund_share(sub: &Subscription, t: FeeTiming, period: Period) -> Option<Share> {
    if t.cadence.is_zero() || t.cadence != t.plan_cadence {
        return None;
    }
    let from = period.start.max(sub.started_at);
    let ended = sub.ending_at.filter(|e| *e > from && *e < period.end)?;
    Some(share(ended, period.end, period))
}

fn share(from: crate::time::Timestamp, until: crate::time::Timestamp, period: Period) -> Share {
    if until <= from {
        return NONE;
    }
    if from == period.start && until == period.end {
        return Share::FULL;
    }
    Share { part: Decimal::from(until.0 - from.0), whole: Decimal::from(period.len_ms()) }
}

/// True when one of a fee's own periods (anchored like the subscription) starts in `period`
/// while the subscription is active (in advance), or ends in it after the subscription began
/// (in arrears).
fn due_on_own_cadence(sub: &Subscription, term: PaymentTerm, cadence: Duration, period: Period) -> bool {
    let Some(mut fee_period) = period_containing(sub.anchor(), cadence, period.start) else { return false };
    loop {
        let due = match term {
            PaymentTerm::InArrears => {
                let b = fee_period.end;
                period.start < b
                    && b <= period.end
                    && b > sub.started_at
                    && sub.ending_at.is_none_or(|e| e > fee_period.start)
            }
            _ => {
                let b = fee_period.start;
                period.contains(b) && sub.is_active(b)
            }
        };
        if due {
            return true;
        }
        if fee_period.end >= period.end {
            return false;
        }
        match period_containing(sub.anchor(), cadence, fee_period.end) {
            Some(next) => fee_period = next,
            None => return false,
        }
    }
}
