//! Decisions on the usage of record alone: what the hub answers a read with, without taking a
//! lease or moving a meter.

use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::{verdict, Engine};
use crate::entitlements::Decision;
use crate::error::{Code, Error, Result};
use crate::time::Timestamp;

impl Engine {
    /// A decision for every feature `customer` has at `now`, in the engine's order. A hard limit
    /// the customer is entitled to is judged by [`verdict::judge`] on the usage recorded
    /// (balance > 0) and not gated by a lease: a read takes none and moves no meter. Every other
    /// feature is answered as by [`Engine::check`]. `unknown_reference` for an unknown customer.
    pub fn entitlements_of_record(&mut self, customer: &str, now: Timestamp) -> Result<Vec<Decision>> {
        let Some(&c) = self.by_id.get(customer) else {
            return Err(Error::new(Code::UnknownReference, "/customerId", "no customer with this id"));
        };
        let count = self.state(c)?.access.len();
        let mut out = Vec::with_capacity(count);
        for a in 0..count {
            let access = self.access(c, a)?;
            if access.meter.as_ref().is_some_and(|m| !m.soft) && access.entitled(now) {
                let mut copy = access.clone();
                let verdict = verdict::judge(&mut copy, Decimal::ZERO, now)?;
                out.push(verdict.decision(&copy, now));
            } else {
                let key = access.key.clone();
                out.push(self.check(customer, &key, now)?);
            }
        }
        Ok(out)
    }
}
