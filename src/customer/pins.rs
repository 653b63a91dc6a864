//! Price versions (issue 14): editing a price in the catalog does not reprice existing
//! subscriptions. When a catalog changes, each running subscription of a plan whose prices changed
//! keeps the old versions in its `pinnedPrices` (the old Price JSON for a price edited or removed,
//! `null` for a price added), until [`migrate`] removes its pins. Pure JSON → JSON: the hub stores
//! customers and catalogs as JSON and calls these on a catalog change.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::catalog::decode_price;
use crate::error::{Code, Error};
use crate::time::Timestamp;

/// The pins a catalog change calls for, by plan: price id → the old Price JSON (edited or removed
/// price) or `null` (added price). Compute it once per change, apply it to every customer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceChanges {
    plans: BTreeMap<String, Map<String, Value>>,
}

impl PriceChanges {
    /// The changes between catalog JSON `old` and `new` (both valid catalogs). A price counts as
    /// changed when its decoded value differs (so `"0.10"` → `"0.1"` is no change).
    pub fn between(old: &Value, new: &Value) -> PriceChanges {
        let mut plans = BTreeMap::new();
        for (plan_id, old_prices) in plans_of(old) {
            let new_prices = plans_of(new).find(|(id, _)| *id == plan_id).map(|(_, p)| p).unwrap_or_default();
            let pins = plan_pins(&old_prices, &new_prices);
            if !pins.is_empty() {
                plans.insert(String::from(plan_id), pins);
            }
        }
        PriceChanges { plans }
    }

    /// True when no plan's prices changed.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// The pins for subscriptions of `plan_id` (price id → pin), if its prices changed.
    pub fn plan(&self, plan_id: &str) -> Option<&Map<String, Value>> {
        self.plans.get(plan_id)
    }

    /// `customer` (stored JSON) with the pins added to every subscription not ended by `now` on a
    /// changed plan; a price already pinned keeps its pin. `None` when nothing is added.
    pub fn apply(&self, customer: &Value, now: Timestamp) -> Option<Value> {
        let mut out = customer.clone();
        let subs = out.get_mut("subscriptions")?.as_array_mut()?;
        let mut added = false;
        for sub in subs.iter_mut().filter_map(Value::as_object_mut) {
            let plan = sub.get("planId").and_then(Value::as_str).and_then(|id| self.plans.get(id));
            if let Some(pins) = plan.filter(|_| !ended(sub, now)) {
                added |= pin(sub, pins);
            }
        }
        added.then_some(out)
    }
}

/// `customer` with the pins that the change from catalog JSON `old` to `new` calls for (see
/// [`PriceChanges`]); `None` when nothing changes.
pub fn pin_prices(old: &Value, new: &Value, customer: &Value, now: Timestamp) -> Option<Value> {
    PriceChanges::between(old, new).apply(customer, now)
}

/// `customer` with subscription `subscription_id` moved to the catalog's current prices (its
/// `pinnedPrices` removed); `unknown_reference` at `/subscriptionId` when it has no such
/// subscription.
pub fn migrate(customer: &Value, subscription_id: &str) -> Result<Value, Error> {
    let mut out = customer.clone();
    let sub = out
        .get_mut("subscriptions")
        .and_then(Value::as_array_mut)
        .and_then(|subs| subs.iter_mut().find(|s| s.get("id").and_then(Value::as_str) == Some(subscription_id)))
        .and_then(Value::as_object_mut);
    let Some(sub) = sub else {
        let message = format!("the customer has no subscription {subscription_id:?}");
        return Err(Error::new(Code::UnknownReference, "/subscriptionId", message));
    };
    sub.remove("pinnedPrices");
    Ok(out)
}

/// Each plan of catalog JSON with its prices by id.
fn plans_of(catalog: &Value) -> impl Iterator<Item = (&str, Vec<(&str, &Value)>)> {
    let plans = catalog.get("plans").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    plans.iter().filter_map(|plan| {
        let id = plan.get("id")?.as_str()?;
        let prices = plan.get("prices").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        Some((id, prices.iter().filter_map(|p| Some((p.get("id")?.as_str()?, p))).collect()))
    })
}

/// The pins of one plan: old versions of prices edited or removed, `null` for prices added.
fn plan_pins(old: &[(&str, &Value)], new: &[(&str, &Value)]) -> Map<String, Value> {
    let mut pins = Map::new();
    for (id, before) in old {
        if find(new, id).is_none_or(|after| !same_price(before, after)) {
            pins.insert(String::from(*id), (*before).clone());
        }
    }
    for (id, _) in new.iter().filter(|(id, _)| find(old, id).is_none()) {
        pins.insert(String::from(*id), Value::Null);
    }
    pins
}

/// The price with id `id`.
fn find<'v>(prices: &[(&str, &'v Value)], id: &str) -> Option<&'v Value> {
    prices.iter().find(|(p, _)| *p == id).map(|(_, v)| *v)
}

/// True when two price objects are the same price (equal JSON, or equal once decoded).
fn same_price(a: &Value, b: &Value) -> bool {
    a == b || {
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        let decoded = (decode_price(a, "", &mut pa), decode_price(b, "", &mut pb));
        matches!(decoded, (Some(x), Some(y)) if x == y)
    }
}

/// True when the subscription object ended at or before `now` (`endingAt` or `endedAt`).
fn ended(sub: &Map<String, Value>, now: Timestamp) -> bool {
    ["endingAt", "endedAt"]
        .iter()
        .filter_map(|k| sub.get(*k)?.as_str().and_then(Timestamp::parse))
        .any(|end| end <= now)
}

/// Adds `pins` the subscription object does not have yet; true when one was added.
fn pin(sub: &mut Map<String, Value>, pins: &Map<String, Value>) -> bool {
    let slot = sub.entry("pinnedPrices").or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    let Some(pinned) = slot.as_object_mut() else { return false };
    let mut added = false;
    for (id, version) in pins {
        if !pinned.contains_key(id) {
            pinned.insert(id.clone(), version.clone());
            added = true;
        }
    }
    added
}
