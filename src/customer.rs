//! Customers (SPEC §4): subscriptions to plans, grants of metered units, and a prepaid wallet.
//! A subscription may keep the price versions it started with ([`Subscription::pinned_prices`],
//! written by [`pins`] when the catalog changes).

pub mod pins;

pub use pins::{migrate, pin_prices, PriceChanges};

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::catalog::{decode_price, price_references, Catalog, FeatureType, Plan, Price};
use crate::error::{Code, Error};
use crate::json::{child, decimal, Fields, Problems};
use crate::money::Currency;
use crate::pricing::Model;
use crate::time::Timestamp;

/// A customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    /// Unique id (what `check` and events' `subject` name).
    pub id: String,
    /// The id in the seller's own systems.
    pub external_id: Option<String>,
    /// Subscriptions, active or not.
    pub subscriptions: Vec<Subscription>,
    /// Grants of metered units on top of the plans'.
    pub grants: Vec<Grant>,
    /// Prepaid balance for instant charges.
    pub wallet: Option<Wallet>,
}

/// A subscription to a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// Unique id.
    pub id: String,
    /// The plan.
    pub plan_id: String,
    /// Start (inclusive).
    pub started_at: Timestamp,
    /// End (exclusive); `None` = open.
    pub ending_at: Option<Timestamp>,
    /// Anchor of billing periods; default `started_at`.
    pub billing_anchor: Option<Timestamp>,
    /// Negotiated models by price id.
    pub price_overrides: BTreeMap<String, Model>,
    /// Percentage discounts, applied compounding.
    pub percentage_discounts: Vec<Decimal>,
    /// Negotiated minimum spend per period (overrides the plan's).
    pub minimum_commitment: Option<Decimal>,
    /// Price versions kept from before a catalog change, by price id (`pinnedPrices`): a price
    /// replaces the plan's price of that id; `None` = the price does not exist for this
    /// subscription. Read through [`Subscription::prices`].
    pub pinned_prices: BTreeMap<String, Option<Price>>,
}

impl Subscription {
    /// True when the subscription is active at `t`.
    pub fn is_active(&self, t: Timestamp) -> bool {
        self.started_at <= t && self.ending_at.is_none_or(|end| t < end)
    }

    /// The anchor of its billing periods.
    pub fn anchor(&self) -> Timestamp {
        self.billing_anchor.unwrap_or(self.started_at)
    }

    /// The prices this subscription is billed by: `plan`'s, in plan order, with pinned versions
    /// in place and prices pinned to `null` left out; then pinned prices that `plan` no longer
    /// has, in id order.
    pub fn prices<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = &'a Price> + 'a {
        effective_prices(plan, &self.pinned_prices)
    }

    /// The price with id `id` among [`Subscription::prices`].
    pub fn price<'a>(&'a self, plan: &'a Plan, id: &str) -> Option<&'a Price> {
        match self.pinned_prices.get(id) {
            Some(pin) => pin.as_ref(),
            None => plan.prices.iter().find(|p| p.id == id),
        }
    }
}

/// `plan`'s prices with `pinned` applied (see [`Subscription::prices`]).
fn effective_prices<'a>(
    plan: &'a Plan,
    pinned: &'a BTreeMap<String, Option<Price>>,
) -> impl Iterator<Item = &'a Price> + 'a {
    let in_plan = plan.prices.iter().filter_map(move |p| match pinned.get(&p.id) {
        Some(pin) => pin.as_ref(),
        None => Some(p),
    });
    let dropped = pinned
        .iter()
        .filter(move |(id, _)| !plan.prices.iter().any(|p| &p.id == *id))
        .filter_map(|(_, pin)| pin.as_ref());
    in_plan.chain(dropped)
}

/// A grant of metered units to a customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// Unique id within the customer.
    pub id: String,
    /// Key of a metered feature.
    pub feature_key: String,
    /// Units granted.
    pub amount: Decimal,
    /// Burn priority: lower burns first.
    pub priority: Decimal,
    /// From when it counts; `None` = from the start.
    pub effective_at: Option<Timestamp>,
    /// When what is left is lost; `None` = never.
    pub expires_at: Option<Timestamp>,
    /// Cap on what carries into the next usage period (`None` = everything).
    pub reset_max_rollover: Option<Decimal>,
    /// Floor on what carries into the next usage period.
    pub reset_min_rollover: Decimal,
}

impl Grant {
    /// True when the grant counts at `t`.
    pub fn is_active(&self, t: Timestamp) -> bool {
        self.effective_at.is_none_or(|e| e <= t) && self.expires_at.is_none_or(|x| t < x)
    }
}

/// A prepaid wallet.
#[derive(Clone, Debug, PartialEq)]
pub struct Wallet {
    /// Its currency.
    pub currency: Currency,
    /// What is left, at full precision.
    pub balance: Decimal,
    /// How far below zero real-time charges may take the balance (default 0).
    pub credit_limit: Decimal,
    /// Offline mode of the wallet lease (SPEC §7): 0 = `deny`; above 0 = `allowance`, the money
    /// of each edge's wallet lease reserved for use while the hub is unreachable.
    pub offline_allowance: Decimal,
}

fn timestamp(f: &mut Fields<'_, '_>, key: &str, required: bool) -> Option<Timestamp> {
    if required {
        f.timestamp(key)
    } else {
        f.opt_timestamp(key)
    }
}

fn non_negative(f: &mut Fields<'_, '_>, key: &str, required: bool) -> Option<Decimal> {
    let d = if required { f.decimal(key)? } else { f.opt_decimal(key)? };
    if d < Decimal::ZERO {
        f.fail(key, Code::InvalidValue, format!("{key} must not be negative"));
    }
    Some(d)
}

impl Customer {
    /// Decodes a customer object at `path`; checks references against `catalog`.
    pub fn decode(value: &Value, path: &str, catalog: &Catalog, problems: &mut Problems) -> Option<Customer> {
        let before = problems.len();
        let mut f = Fields::open(value, path, problems)?;
        let id = f.str("id");
        let external_id = f.opt_str("externalId");
        let _name = f.opt_str("name");
        let subscriptions = match f.opt_array("subscriptions") {
            Some(items) => items.into_iter().filter_map(|(v, p)| subscription(v, &p, catalog, f.problems())).collect(),
            None => Vec::new(),
        };
        let grants: Vec<Grant> = match f.opt_array("grants") {
            Some(items) => items.into_iter().filter_map(|(v, p)| grant(v, &p, catalog, f.problems())).collect(),
            None => Vec::new(),
        };
        for (i, g) in grants.iter().enumerate() {
            if grants.iter().take(i).any(|o| o.id == g.id) {
                let at = child(&format!("{}/grants/{i}", f.path()), "id");
                f.push(Error::new(Code::DuplicateId, at, format!("grant id {:?} is used twice", g.id)));
            }
        }
        let wallet = f.opt("wallet").and_then(|(v, p)| wallet(v, &p, f.problems()));
        f.finish();
        (problems.len() == before).then_some(())?;
        Some(Customer { id: id?, external_id, subscriptions, grants, wallet })
    }
}

fn subscription(v: &Value, path: &str, catalog: &Catalog, problems: &mut Problems) -> Option<Subscription> {
    let mut f = Fields::open(v, path, problems)?;
    let id = f.str("id");
    let plan_id = f.str("planId");
    let plan = plan_id.as_deref().and_then(|p| catalog.plan(p));
    if plan_id.is_some() && plan.is_none() {
        f.fail("planId", Code::UnknownReference, format!("no plan with id {:?}", plan_id.as_deref().unwrap_or("")));
    }
    let started_at = timestamp(&mut f, "startedAt", true);
    let (ending_at, ending_key) = ending(&mut f);
    if let (Some(s), Some(e)) = (started_at, ending_at) {
        if e <= s {
            f.fail(ending_key, Code::InvalidValue, format!("{ending_key} must be after startedAt"));
        }
    }
    let billing_anchor = timestamp(&mut f, "billingAnchor", false);
    let pinned_prices = pinned(&mut f, catalog);
    let mut price_overrides = BTreeMap::new();
    for (price_id, model, p) in f.opt_object("priceOverrides").unwrap_or_default() {
        let price = plan.map(|pl| effective_prices(pl, &pinned_prices).find(|pr| pr.id == price_id));
        if let Some(None) = price {
            f.push(Error::new(
                Code::UnknownReference,
                p.clone(),
                format!("the subscription has no price {price_id:?}"),
            ));
        }
        if let Some(Some(pr)) = price.filter(|pr| pr.is_some_and(|pr| !pr.bills)) {
            let message = format!("price {:?} grants a feature only (no model): it has nothing to override", pr.id);
            f.push(Error::new(Code::NotAllowedHere, p.clone(), message));
        }
        if let Some(m) = Model::decode(model, &p, f.problems()) {
            price_overrides.insert(String::from(price_id), m);
        }
    }
    let percentage_discounts = match f.opt("percentageDiscount") {
        None => Vec::new(),
        Some((Value::Array(items), p)) => {
            items.iter().enumerate().filter_map(|(i, item)| fraction(item, &format!("{p}/{i}"), f.problems())).collect()
        }
        Some((item, p)) => fraction(item, &p, f.problems()).into_iter().collect(),
    };
    let minimum_commitment = non_negative(&mut f, "minimumCommitment", false);
    f.finish();
    Some(Subscription {
        id: id?,
        plan_id: plan_id?,
        started_at: started_at?,
        ending_at,
        billing_anchor,
        price_overrides,
        percentage_discounts,
        minimum_commitment,
        pinned_prices,
    })
}

/// `endingAt`, or its alias `endedAt` (SPEC §13), with the key it came from; when both are
/// given they must agree.
fn ending(f: &mut Fields<'_, '_>) -> (Option<Timestamp>, &'static str) {
    let ending_at = timestamp(f, "endingAt", false);
    let ended_at = timestamp(f, "endedAt", false);
    match (ending_at, ended_at) {
        (Some(a), Some(b)) if a != b => {
            f.fail("endedAt", Code::InvalidValue, "endedAt and endingAt name different times");
            (Some(a), "endingAt")
        }
        (None, Some(b)) => (Some(b), "endedAt"),
        (a, _) => (a, "endingAt"),
    }
}

/// `pinnedPrices`: price id → the price version kept (a catalog Price), or `null`.
fn pinned(f: &mut Fields<'_, '_>, catalog: &Catalog) -> BTreeMap<String, Option<Price>> {
    let mut out = BTreeMap::new();
    for (price_id, v, p) in f.opt_object("pinnedPrices").unwrap_or_default() {
        let pin = if v.is_null() { Some(None) } else { pinned_price(price_id, v, &p, catalog, f.problems()).map(Some) };
        if let Some(pin) = pin {
            out.insert(String::from(price_id), pin);
        }
    }
    out
}

/// One pinned price: decoded and checked like a catalog price, its id equal to its key.
fn pinned_price(key: &str, v: &Value, path: &str, catalog: &Catalog, problems: &mut Problems) -> Option<Price> {
    let before = problems.len();
    let price = decode_price(v, path, problems)?;
    if price.id != key {
        let message = format!("a pinned price's id must be its key {key:?}");
        problems.push(Error::new(Code::InvalidValue, child(path, "id"), message));
    }
    price_references(catalog, &price, path, problems);
    (problems.len() == before).then_some(price)
}

/// A discount fraction in [0, 1].
fn fraction(v: &Value, path: &str, problems: &mut Problems) -> Option<Decimal> {
    match decimal(v, path) {
        Ok(d) if (Decimal::ZERO..=Decimal::ONE).contains(&d) => Some(d),
        Ok(_) => {
            problems.push(Error::new(Code::InvalidValue, path, "a percentage discount is a fraction between 0 and 1"));
            None
        }
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

fn grant(v: &Value, path: &str, catalog: &Catalog, problems: &mut Problems) -> Option<Grant> {
    let mut f = Fields::open(v, path, problems)?;
    let id = f.str("id");
    let feature_key = f.str("featureKey");
    if let Some(k) = &feature_key {
        let metered = catalog.features.iter().any(|ft| &ft.key == k && ft.kind == FeatureType::Metered);
        if !metered {
            f.fail("featureKey", Code::UnknownReference, format!("no metered feature with key {k:?}"));
        }
    }
    let amount = non_negative(&mut f, "amount", true);
    let priority = f.opt_decimal("priority").unwrap_or_default();
    let effective_at = timestamp(&mut f, "effectiveAt", false);
    let expires_at = timestamp(&mut f, "expiresAt", false);
    let reset_max_rollover = non_negative(&mut f, "resetMaxRollover", false);
    let reset_min_rollover = non_negative(&mut f, "resetMinRollover", false).unwrap_or_default();
    if reset_max_rollover.is_some_and(|hi| reset_min_rollover > hi) {
        f.fail("resetMinRollover", Code::MinGreaterThanMax, "resetMinRollover is above resetMaxRollover");
    }
    f.finish();
    Some(Grant {
        id: id?,
        feature_key: feature_key?,
        amount: amount?,
        priority,
        effective_at,
        expires_at,
        reset_max_rollover,
        reset_min_rollover,
    })
}

fn wallet(v: &Value, path: &str, problems: &mut Problems) -> Option<Wallet> {
    let mut f = Fields::open(v, path, problems)?;
    let currency = f.str("currency").and_then(|c| {
        let found = Currency::from_code(&c);
        if found.is_none() {
            f.fail("currency", Code::UnknownCurrency, format!("{c:?} is not an ISO-4217 currency code"));
        }
        found
    });
    let balance = f.decimal("balance");
    let credit_limit = f.opt_decimal("creditLimit").unwrap_or_default();
    if credit_limit < Decimal::ZERO {
        f.fail("creditLimit", Code::InvalidValue, "creditLimit must not be negative");
    }
    let offline_allowance = crate::catalog::offline(&mut f);
    f.finish();
    Some(Wallet { currency: currency?, balance: balance?, credit_limit, offline_allowance })
}
