//! Late usage (SPEC §13): what a closed invoice billed, line by line, so that usage arriving
//! after the close is billed on the next invoice as the difference, each line naming the
//! period it adjusts. Nothing closed is ever rewritten.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use super::invoice::Invoice;
use super::line::{Adjusts, Line, LineType};
use crate::error::Result;
use crate::money::{add, parse_decimal, sub};
use crate::time::Timestamp;

/// A line as billed: its price and description.
type LineKey = (Option<String>, String);

/// One line's billed amounts so far: rounded and exact.
#[derive(Clone, Debug, PartialEq)]
struct BilledLine {
    key: LineKey,
    amount: Decimal,
    precise: Decimal,
}

/// What has been billed for one closed period so far: its own lines plus later adjustments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Billed {
    /// Period start and end (RFC 3339).
    pub period: (String, String),
    /// ISO-4217 code.
    pub currency: String,
    /// Per line, in the order first billed (an invoice has a handful: a list beats a map).
    lines: Vec<BilledLine>,
    /// Events metered in the period when this was last brought up to date (`None`: unknown,
    /// after a restart): while it holds, nothing arrived late and nothing is recomputed.
    pub events: Option<u64>,
}

impl Billed {
    /// What `invoice` bills (its adjustment lines belong to other periods and are left out).
    pub fn of(invoice: &Invoice) -> Result<Billed> {
        let mut billed = Billed {
            period: (invoice.period_start.clone(), invoice.period_end.clone()),
            currency: String::from(invoice.currency),
            lines: Vec::new(),
            events: None,
        };
        for line in invoice.lines.iter().filter(|l| l.adjusts.is_none()) {
            billed.record((line.price_id.clone(), line.description.clone()), line.amount, line.precise_amount)?;
        }
        Ok(billed)
    }

    /// Adds amounts billed for a line (an adjustment a later invoice carried for this period).
    pub fn record(&mut self, key: LineKey, amount: Decimal, precise: Decimal) -> Result<()> {
        match self.lines.iter_mut().find(|l| l.key == key) {
            Some(l) => {
                l.amount = add(l.amount, amount)?;
                l.precise = add(l.precise, precise)?;
            }
            None => self.lines.push(BilledLine { key, amount, precise }),
        }
        Ok(())
    }

    fn get(&self, key: &LineKey) -> (Decimal, Decimal) {
        self.lines.iter().find(|l| l.key == *key).map_or((Decimal::ZERO, Decimal::ZERO), |l| (l.amount, l.precise))
    }

    /// The lines that bring what was billed up to `recomputed` (the same period's invoice with
    /// the usage known now), recorded as billed. Empty when nothing arrived late.
    pub fn adjust(&mut self, subscription_id: &str, recomputed: &Invoice) -> Result<Vec<Line>> {
        let now = Billed::of(recomputed)?;
        // Lines of the recomputed invoice, then lines billed that it no longer has.
        let gone = self.lines.iter().filter(|l| !now.lines.iter().any(|n| n.key == l.key));
        let keys: Vec<LineKey> = now.lines.iter().chain(gone).map(|l| l.key.clone()).collect();
        let mut out = Vec::new();
        for key in keys {
            let (new_amount, new_precise) = now.get(&key);
            let (old_amount, old_precise) = self.get(&key);
            let (amount, precise) = (sub(new_amount, old_amount)?, sub(new_precise, old_precise)?);
            if amount.is_zero() && precise.is_zero() {
                continue;
            }
            out.push(self.line(subscription_id, &key, amount, precise));
            self.record(key, amount, precise)?;
        }
        Ok(out)
    }

    fn line(&self, subscription_id: &str, key: &LineKey, amount: Decimal, precise: Decimal) -> Line {
        let (start, end) = &self.period;
        Line {
            kind: LineType::Adjustment,
            price_id: key.0.clone(),
            description: format!("Adjustment for {start} – {end}: {}", key.1),
            quantity: Decimal::ONE,
            metered_quantity: Decimal::ONE,
            unit_price: None,
            tiers: None,
            precise_amount: precise,
            amount,
            adjusts: Some(Adjusts {
                subscription_id: String::from(subscription_id),
                period_start: start.clone(),
                period_end: end.clone(),
                description: key.1.clone(),
            }),
        }
    }
}

/// A stored closed invoice (JSON) as billed state: its own period's [`Billed`] and the
/// adjustments it carried for earlier periods, `(subscription, period start, line, amounts)`.
/// `None` when the JSON is not an arrears invoice.
#[allow(
    clippy::type_complexity,
    reason = "a stored invoice read back whole: its key, its billed state and its adjustments; one caller"
)]
pub fn billed_from_json(
    doc: &Value,
) -> Option<((String, Timestamp), Billed, Vec<((String, Timestamp), LineKey, Decimal, Decimal)>)> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).and_then(parse_decimal).unwrap_or_default();
    let sub_id = text(doc, "subscriptionId")?;
    let start = text(doc, "periodStart")?;
    let key = (sub_id, Timestamp::parse(&start)?);
    let mut billed = Billed {
        period: (start, text(doc, "periodEnd")?),
        currency: text(doc, "currency")?,
        lines: Vec::new(),
        events: None,
    };
    let mut later = Vec::new();
    for line in doc.get("lines").and_then(Value::as_array).into_iter().flatten() {
        let (amount, precise) = (number(line, "amount"), number(line, "preciseAmount"));
        let price = text(line, "priceId");
        match line.get("adjusts") {
            Some(a) => {
                let (Some(s), Some(p), Some(d)) =
                    (text(a, "subscriptionId"), text(a, "periodStart"), text(a, "description"))
                else {
                    continue;
                };
                let Some(p) = Timestamp::parse(&p) else { continue };
                later.push(((s, p), (price, d), amount, precise));
            }
            None => billed.record((price, text(line, "description").unwrap_or_default()), amount, precise).ok()?,
        }
    }
    Some((key, billed, later))
}
