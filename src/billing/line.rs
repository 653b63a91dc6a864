//! Invoice lines and the totals rule: lines are rounded once each, totals are sums of rounded
//! lines, then percentage discounts (compounding) and the minimum-commitment true-up.

use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use crate::error::Result;
use crate::money::{add, mul, plain, round_half_away, sub, sum, Currency};
use crate::pricing::TierAmount;

/// The closed invoice an adjustment line belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Adjusts {
    /// Its subscription.
    pub subscription_id: String,
    /// Its period start (RFC 3339).
    pub period_start: String,
    /// Its period end (RFC 3339, exclusive).
    pub period_end: String,
    /// The description of the line adjusted.
    pub description: String,
}

/// What a line is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// A fee price (platform access, seats).
    Fee,
    /// A usage price.
    Usage,
    /// A percentage discount (negative).
    Discount,
    /// The minimum-commitment true-up.
    Commitment,
    /// A wallet credit (negative).
    Credit,
    /// Late usage of a closed period, billed on a later invoice (see `adjusts`).
    Adjustment,
}

/// One tier's part of a line.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TierLine {
    /// The tier's inclusive upper bound; `null` for the open tier.
    #[serde(serialize_with = "opt_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub up_to: Option<Decimal>,
    /// Units inside the tier.
    #[serde(serialize_with = "as_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub quantity: Decimal,
    /// Their unrounded amount, flat price included.
    #[serde(serialize_with = "as_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: Decimal,
}

impl From<&TierAmount> for TierLine {
    fn from(t: &TierAmount) -> Self {
        TierLine { up_to: t.up_to, quantity: t.quantity, amount: t.amount }
    }
}

/// An invoice or quote line (SPEC §6.2).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Fee, usage, discount, commitment or credit.
    #[serde(rename = "type")]
    pub kind: LineType,
    /// The price behind the line, if any.
    pub price_id: Option<String>,
    /// What the customer reads.
    pub description: String,
    /// Billed quantity (after allowances and clamps).
    #[serde(serialize_with = "as_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub quantity: Decimal,
    /// Quantity as metered, before allowances and clamps.
    #[serde(serialize_with = "as_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub metered_quantity: Decimal,
    /// The single unit price, where there is one.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString", optional))]
    pub unit_price: Option<Decimal>,
    /// Per-tier breakdown of tiered models.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tiers: Option<Vec<TierLine>>,
    /// The exact amount.
    #[serde(serialize_with = "as_plain")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub precise_amount: Decimal,
    /// The amount rounded half away from zero to the currency's exponent.
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: Decimal,
    /// On an adjustment line: the closed invoice and line it adjusts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub adjusts: Option<Adjusts>,
}

impl Line {
    /// A line whose amount is `precise` rounded for `currency`.
    pub fn rounded(
        kind: LineType,
        price_id: Option<String>,
        description: String,
        precise: Decimal,
        currency: Currency,
    ) -> Result<Line> {
        Ok(Line {
            kind,
            price_id,
            description,
            quantity: Decimal::ONE,
            metered_quantity: Decimal::ONE,
            unit_price: None,
            tiers: None,
            precise_amount: precise,
            amount: round_half_away(precise, currency.exponent())?,
            adjusts: None,
        })
    }
}

/// Subtotal, discount and total of a document, all in the currency's exponent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    /// Σ fee and usage lines.
    pub subtotal: Decimal,
    /// Σ discount lines, as a positive number.
    pub discount: Decimal,
    /// What is owed.
    pub total: Decimal,
}

/// What is applied after the fee and usage lines, in this order (SPEC §6.2).
#[derive(Clone, Copy, Debug, Default)]
pub struct Adjustments<'a> {
    /// Percentage discounts, compounding: two of 0.35 take 0.5775 off.
    pub discounts: &'a [Decimal],
    /// What the discounts apply to (default: the subtotal). Real-time charges, already paid from
    /// the wallet at their price, are left out of it.
    pub discountable: Option<Decimal>,
    /// Minimum spend of the period: a true-up line tops the discounted subtotal up to it.
    pub commitment: Option<Decimal>,
    /// Already paid from the wallet in real time: (what for, exact amount) per instant line. Each
    /// gets a credit line of its own, rounded like the line it pays, so they net to zero.
    pub wallet_paid: &'a [(String, Decimal)],
    /// Already billed towards the commitment for the same period (the advance invoice's total).
    pub prepaid: Decimal,
}

/// Appends the discount lines (each rounded), the commitment true-up (commitment − discounted
/// subtotal, if positive) and the wallet credit to `lines` (fee and usage lines), and returns
/// the totals. The total is the sum of the rounded lines.
pub fn close_lines(lines: &mut Vec<Line>, adj: &Adjustments<'_>, currency: Currency) -> Result<Totals> {
    let exp = currency.exponent();
    let subtotal = sum(lines.iter().map(|l| l.amount))?;
    let mut base = adj.discountable.unwrap_or(subtotal);
    let mut discount = Decimal::ZERO;
    for (i, d) in adj.discounts.iter().enumerate() {
        let off = mul(base, *d)?;
        let mut line = Line::rounded(LineType::Discount, None, discount_text(i, *d), -off, currency)?;
        line.quantity = *d;
        line.metered_quantity = *d;
        base = add(base, line.amount)?;
        discount = sub(discount, line.amount)?;
        lines.push(line);
    }
    let net = sub(subtotal, discount)?;
    let mut total = net;
    if let Some(c) = adj.commitment {
        let shortfall = sub(sub(c, net)?, adj.prepaid)?;
        if shortfall > Decimal::ZERO {
            let text = String::from("Minimum commitment true-up");
            let line = Line::rounded(LineType::Commitment, None, text, shortfall, currency)?;
            total = add(total, line.amount)?;
            lines.push(line);
        }
    }
    for (what, paid) in adj.wallet_paid.iter().filter(|(_, paid)| !paid.is_zero()) {
        let text = alloc::format!("Paid from wallet: {what}");
        let line = Line::rounded(LineType::Credit, None, text, -*paid, currency)?;
        total = add(total, line.amount)?;
        lines.push(line);
    }
    let scaled = |d: Decimal| round_half_away(d, exp);
    Ok(Totals { subtotal: scaled(subtotal)?, discount: scaled(discount)?, total: scaled(total)? })
}

fn discount_text(i: usize, d: Decimal) -> String {
    let pct = mul(d, Decimal::ONE_HUNDRED).map(plain).unwrap_or_default();
    if i == 0 {
        alloc::format!("Discount {pct}%")
    } else {
        alloc::format!("Discount {pct}% (compounding)")
    }
}

fn as_plain<S: Serializer>(d: &Decimal, s: S) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&plain(*d))
}

fn opt_plain<S: Serializer>(d: &Option<Decimal>, s: S) -> core::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&plain(*d)),
        None => s.serialize_none(),
    }
}

/// Serializes a decimal with the scale it has (rounded amounts keep their currency places).
pub(crate) fn as_text<S: Serializer>(d: &Decimal, s: S) -> core::result::Result<S::Ok, S::Error> {
    s.collect_str(d)
}
