//! JSON → [`Catalog`]: shape, types and field-local rules, every problem with its path.
//! Cross-references are checked afterwards by `validate`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use super::model::*;
use crate::error::{Code, Error};
use crate::json::{decimal_map, json_path, Fields, Problems};
use crate::money::Currency;
use crate::pricing::Model;
use crate::time::{Duration, Timestamp};

/// Decodes a catalog object. Broken items are left out and reported, so the result is the
/// part that decoded (for the cross-reference checks); `None` only when the input is not an object.
pub fn catalog(value: &Value, problems: &mut Problems) -> Option<(Catalog, Positions)> {
    let mut f = Fields::open(value, "", problems)?;
    let mut pos = Positions::default();
    let schema_version = f.decimal("schemaVersion");
    if schema_version.is_some_and(|v| v != Decimal::ONE) {
        f.fail("schemaVersion", Code::UnsupportedSchemaVersion, "this build reads schemaVersion 1");
    }
    let catalog_version =
        f.opt_decimal("catalogVersion").map(|v| whole(&mut f, "catalogVersion", v)).unwrap_or(Some(0));
    let products = list(&mut f, "products", &mut pos.products, product);
    let features = list(&mut f, "features", &mut pos.features, feature);
    let billable_metrics = list(&mut f, "billableMetrics", &mut pos.metrics, metric);
    let fees = list(&mut f, "fees", &mut pos.fees, fee);
    let (rates, rate_history) = match f.opt("rates") {
        Some((v, path)) => rate_map(v, &path, f.problems()),
        None => (BTreeMap::new(), BTreeMap::new()),
    };
    for (name, rate) in &rates {
        if *rate < Decimal::ZERO {
            let path = crate::json::child("/rates", name);
            f.push(Error::new(Code::NegativePrice, path, "a market rate must not be negative"));
        }
    }
    let mut price_positions = Vec::new();
    let plans = list(&mut f, "plans", &mut pos.plans, plan)
        .into_iter()
        .map(|(plan, at)| {
            price_positions.push(at);
            plan
        })
        .collect();
    pos.prices = price_positions;
    f.finish();
    let catalog = Catalog {
        schema_version: 1,
        catalog_version: catalog_version.unwrap_or_default(),
        products,
        features,
        billable_metrics,
        fees,
        rates,
        rate_history,
        plans,
    };
    Some((catalog, pos))
}

/// A non-negative whole number that fits in u64.
fn whole(f: &mut Fields<'_, '_>, key: &str, v: Decimal) -> Option<u64> {
    let n = (v.fract().is_zero() && v >= Decimal::ZERO).then(|| u64::try_from(v).ok()).flatten();
    if n.is_none() {
        f.fail(key, Code::InvalidValue, format!("{key} must be a whole number ≥ 0"));
    }
    n
}

/// Where each decoded item stood in the input (broken items are left out of the catalog, so
/// vector positions and JSON positions can differ).
#[derive(Clone, Debug, Default)]
pub struct Positions {
    /// Of `products`.
    pub products: Vec<usize>,
    /// Of `features`.
    pub features: Vec<usize>,
    /// Of `billableMetrics`.
    pub metrics: Vec<usize>,
    /// Of `fees`.
    pub fees: Vec<usize>,
    /// Of `plans`.
    pub plans: Vec<usize>,
    /// Of each decoded plan's `prices`.
    pub prices: Vec<Vec<usize>>,
}

/// An optional array field decoded item by item; broken items are left out (and reported).
fn list<T>(
    f: &mut Fields<'_, '_>,
    key: &str,
    at: &mut Vec<usize>,
    item: fn(&Value, &str, &mut Problems) -> Option<T>,
) -> Vec<T> {
    let Some(items) = f.opt_array(key) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, (v, path)) in items.into_iter().enumerate() {
        if let Some(t) = item(v, &path, f.problems()) {
            out.push(t);
            at.push(i);
        }
    }
    out
}

/// A required, non-empty id.
fn id(f: &mut Fields<'_, '_>, key: &str) -> Option<String> {
    let s = f.str(key)?;
    if s.is_empty() {
        f.fail(key, Code::InvalidValue, format!("{key} must not be empty"));
    }
    Some(s)
}

/// Every `kind:id` the input declares, broken items included: a reference to a declared id is not
/// reported as unknown when only its object failed to decode (that problem is reported already).
pub fn declared_ids(value: &Value) -> alloc::collections::BTreeSet<String> {
    let mut out = alloc::collections::BTreeSet::new();
    for (key, kind) in
        [("products", "product"), ("features", "feature"), ("billableMetrics", "billable metric"), ("fees", "fee")]
    {
        for item in value.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = item.get("id").and_then(Value::as_str) {
                out.insert(alloc::format!("{kind}:{id}"));
            }
        }
    }
    if let Some(rates) = value.get("rates").and_then(Value::as_object) {
        out.extend(rates.keys().map(|k| alloc::format!("rate:{k}")));
    }
    out
}

fn product(v: &Value, path: &str, problems: &mut Problems) -> Option<Product> {
    let mut f = Fields::open(v, path, problems)?;
    let (id, name, description) = (id(&mut f, "id"), f.str("name"), f.opt_str("description"));
    f.finish();
    Some(Product { id: id?, name: name?, description })
}

fn feature(v: &Value, path: &str, problems: &mut Problems) -> Option<Feature> {
    let mut f = Fields::open(v, path, problems)?;
    let (id, product_id, key) = (id(&mut f, "id"), f.str("productId"), f.str("key"));
    if let Some(k) = &key {
        if !is_kebab(k) {
            f.fail("key", Code::InvalidFeatureKey, format!("{k:?} is not kebab-case (a-z, 0-9, single dashes)"));
        }
    }
    let kind = f.spelled::<FeatureType>("type");
    let (name, _description) = (f.opt_str("name"), f.opt_str("description"));
    f.finish();
    Some(Feature { id: id?, product_id: product_id?, key: key?, kind: kind?, name })
}

/// `^[a-z0-9]+(-[a-z0-9]+)*$`
pub fn is_kebab(k: &str) -> bool {
    !k.is_empty()
        && k.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn metric(v: &Value, path: &str, problems: &mut Problems) -> Option<BillableMetric> {
    let mut f = Fields::open(v, path, problems)?;
    let (id, product_id, name) = (id(&mut f, "id"), f.str("productId"), f.str("name"));
    let (unit, _description) = (f.opt_str("unit"), f.opt_str("description"));
    let event_type = f.str("eventType");
    let aggregation = f.spelled::<Aggregation>("aggregation");
    let value_property = f.opt_json_path("valueProperty");
    if aggregation.is_some_and(|a| a != Aggregation::Count)
        && value_property.is_none()
        && f.opt("valueProperty").is_none()
    {
        f.fail(
            "valueProperty",
            Code::MissingValueProperty,
            "valueProperty is required for every aggregation but COUNT",
        );
    }
    let mut group_by = BTreeMap::new();
    for (name, v, p) in f.opt_object("groupBy").unwrap_or_default() {
        match json_path(v, &p) {
            Ok(jp) => {
                group_by.insert(String::from(name), jp);
            }
            Err(e) => f.push(e),
        }
    }
    let mut filter = Vec::new();
    for (key, v, p) in f.opt_object("filter").unwrap_or_default() {
        let Some(jp) = crate::json::JsonPath::parse(key) else {
            f.push(Error::new(Code::InvalidJsonPath, p, format!("{key:?} is not a dotted JSONPath like \"$.a.b\"")));
            continue;
        };
        let allowed = match v {
            Value::Array(items) => items.clone(),
            other => alloc::vec![other.clone()],
        };
        if allowed.is_empty() || allowed.iter().any(|a| a.is_array() || a.is_object() || a.is_null()) {
            f.push(Error::new(
                Code::InvalidValue,
                p,
                "a filter allows a value or a non-empty list of strings, numbers or booleans",
            ));
            continue;
        }
        filter.push(Filter { path: jp, allowed });
    }
    f.finish();
    Some(BillableMetric {
        id: id?,
        product_id: product_id?,
        name: name?,
        unit,
        event_type: event_type?,
        aggregation: aggregation?,
        value_property,
        group_by,
        filter,
    })
}

fn fee(v: &Value, path: &str, problems: &mut Problems) -> Option<Fee> {
    let mut f = Fields::open(v, path, problems)?;
    let (id, product_id, name, _description) =
        (id(&mut f, "id"), f.str("productId"), f.str("name"), f.opt_str("description"));
    f.finish();
    Some(Fee { id: id?, product_id: product_id?, name: name? })
}

/// Cadences a plan may bill on.
const CADENCES: [&str; 5] = ["P1D", "P1W", "P1M", "P3M", "P1Y"];

fn cadence(f: &mut Fields<'_, '_>, key: &str, one_time_ok: bool, required: bool) -> Option<Duration> {
    let text = if required { f.str(key)? } else { f.opt_str(key)? };
    let ok = CADENCES.contains(&text.as_str()) || (one_time_ok && text == "P0D");
    match Duration::parse(&text) {
        Some(d) if ok => Some(d),
        _ => {
            let allowed = if one_time_ok { "P0D, P1D, P1W, P1M, P3M or P1Y" } else { "P1D, P1W, P1M, P3M or P1Y" };
            f.fail(key, Code::InvalidDuration, format!("{text:?} is not a billing cadence ({allowed})"));
            None
        }
    }
}

fn plan(v: &Value, path: &str, problems: &mut Problems) -> Option<(Plan, Vec<usize>)> {
    let mut f = Fields::open(v, path, problems)?;
    let (id, product_id, name, _description) =
        (id(&mut f, "id"), f.str("productId"), f.str("name"), f.opt_str("description"));
    let currency = f.str("currency").and_then(|c| {
        let found = Currency::from_code(&c);
        if found.is_none() {
            f.fail("currency", Code::UnknownCurrency, format!("{c:?} is not an ISO-4217 currency code"));
        }
        found
    });
    let billing_cadence = cadence(&mut f, "billingCadence", false, true);
    let minimum_commitment = non_negative(&mut f, "minimumCommitment");
    let mut at = Vec::new();
    let prices = list(&mut f, "prices", &mut at, price);
    f.finish();
    Some((
        Plan {
            id: id?,
            product_id: product_id?,
            name: name?,
            currency: currency?,
            billing_cadence: billing_cadence?,
            minimum_commitment,
            prices,
        },
        at,
    ))
}

fn non_negative(f: &mut Fields<'_, '_>, key: &str) -> Option<Decimal> {
    let d = f.opt_decimal(key)?;
    if d < Decimal::ZERO {
        f.fail(key, Code::NegativePrice, format!("{key} must not be negative"));
    }
    Some(d)
}

/// Decodes one price object (shape and field-local rules; references are checked by `validate`).
pub(crate) fn price(v: &Value, path: &str, problems: &mut Problems) -> Option<Price> {
    let mut f = Fields::open(v, path, problems)?;
    let id = id(&mut f, "id");
    let name = f.opt_str("name");
    let target = match (f.opt_str("metricId"), f.opt_str("feeId")) {
        (Some(m), None) => Some(PriceTarget::Metric(m)),
        (None, Some(fee)) => Some(PriceTarget::Fee(fee)),
        _ => {
            let path = String::from(f.path());
            f.push(Error::new(Code::MetricOrFeeRequired, path, "a price names exactly one of metricId and feeId"));
            None
        }
    };
    let payment_term = f.spelled::<PaymentTerm>("paymentTerm");
    // Without a model, a price that grants a feature is entitlement-only: it bills nothing.
    let bills = f.has("model") || !f.has("feature");
    let model = if bills {
        f.req("model").and_then(|(v, p)| Model::decode(v, &p, f.problems()))
    } else {
        Some(Model::Flat { amount: Decimal::ZERO })
    };
    let quantity = non_negative(&mut f, "quantity");
    let billing_cadence = cadence(&mut f, "billingCadence", true, false);
    let minimum_quantity = non_negative(&mut f, "minimumQuantity");
    let maximum_quantity = non_negative(&mut f, "maximumQuantity");
    if let (Some(lo), Some(hi)) = (minimum_quantity, maximum_quantity) {
        if lo > hi {
            f.fail("minimumQuantity", Code::MinGreaterThanMax, "minimumQuantity is above maximumQuantity");
        }
    }
    let grant_discount = f.opt_bool("grantDiscount").unwrap_or(false);
    let feature = f.opt("feature").and_then(|(v, p)| feature_link(v, &p, f.problems()));
    // Local rules that depend on the target.
    if let Some(target) = &target {
        let is_fee = matches!(target, PriceTarget::Fee(_));
        let term_ok = match payment_term {
            Some(PaymentTerm::InAdvance) => is_fee,
            Some(PaymentTerm::Instant) => !is_fee,
            _ => true,
        };
        if !term_ok {
            let why = if is_fee {
                "a fee price is in_advance or in_arrears"
            } else {
                "a usage price is in_arrears or instant"
            };
            f.fail("paymentTerm", Code::NotAllowedHere, why);
        }
        if !is_fee && quantity.is_some() {
            f.fail(
                "quantity",
                Code::NotAllowedHere,
                "quantity is for fee prices; usage prices take it from the metric",
            );
        }
        if !is_fee && billing_cadence.is_some_and(Duration::is_zero) {
            f.fail("billingCadence", Code::NotAllowedHere, "P0D (one-time) is for fee prices");
        }
        if is_fee && grant_discount {
            f.fail("grantDiscount", Code::NotAllowedHere, "grantDiscount is for usage prices");
        }
        if is_fee && model.as_ref().is_some_and(Model::is_per_event) {
            f.fail("model", Code::NotAllowedHere, "a fee cannot use a model that prices events (percentage, dynamic)");
        }
        if is_fee && model.as_ref().is_some_and(|m| matches!(m, Model::Matrix { .. })) {
            f.fail("model", Code::NotAllowedHere, "a fee has no dimensions for a matrix");
        }
    }
    f.finish();
    Some(Price {
        id: id?,
        target: target?,
        payment_term: payment_term?,
        model: model?,
        bills,
        quantity: quantity.unwrap_or(Decimal::ONE),
        billing_cadence,
        minimum_quantity,
        maximum_quantity,
        grant_discount,
        feature,
        name,
    })
}

fn feature_link(v: &Value, path: &str, problems: &mut Problems) -> Option<FeatureLink> {
    let mut f = Fields::open(v, path, problems)?;
    let feature_id = f.str("featureId");
    let entitlement = f.req("entitlement").and_then(|(v, p)| entitlement(v, &p, f.problems()));
    f.finish();
    Some(FeatureLink { feature_id: feature_id?, entitlement: entitlement? })
}

fn entitlement(v: &Value, path: &str, problems: &mut Problems) -> Option<EntitlementTemplate> {
    let mut f = Fields::open(v, path, problems)?;
    let out = match f.spelled::<FeatureType>("type")? {
        FeatureType::Boolean => Some(EntitlementTemplate::Boolean),
        FeatureType::Static => {
            let config = match f.opt("config") {
                Some((v @ Value::Object(_), _)) => Some(v.clone()),
                Some((_, _)) => {
                    f.fail("config", Code::InvalidType, "config must be an object");
                    None
                }
                None => Some(Value::Object(serde_json::Map::new())),
            };
            config.map(|config| EntitlementTemplate::Static { config })
        }
        FeatureType::Metered => metered(&mut f).map(EntitlementTemplate::Metered),
    };
    f.finish();
    out
}

fn metered(f: &mut Fields<'_, '_>) -> Option<MeteredTemplate> {
    let usage_period = f.opt("usagePeriod").and_then(|(v, p)| {
        let mut u = Fields::open(v, &p, f.problems())?;
        let interval = u.str("interval").and_then(|text| match Duration::parse(&text) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                u.fail(
                    "interval",
                    Code::InvalidDuration,
                    format!("{text:?} is not a positive ISO-8601 duration like P1M"),
                );
                None
            }
        });
        let anchor = u.opt_str("anchor").and_then(|text| {
            let t = Timestamp::parse(&text);
            if t.is_none() {
                u.fail("anchor", Code::InvalidTimestamp, format!("{text:?} is not an RFC 3339 timestamp"));
            }
            t
        });
        let anchor_given = u.opt("anchor").is_some();
        u.finish();
        let interval = interval?;
        (anchor.is_some() || !anchor_given).then_some(UsagePeriod { interval, anchor })
    });
    let issue_after_reset = non_negative(f, "issueAfterReset").unwrap_or_default();
    let issue_after_reset_priority = f.opt_decimal("issueAfterResetPriority").unwrap_or_default();
    let is_soft_limit = f.opt_bool("isSoftLimit").unwrap_or(false);
    let preserve_overage_at_reset = f.opt_bool("preserveOverageAtReset").unwrap_or(false);
    // Absent: nothing carries over (SPEC default "0"); explicit null: no cap.
    let reset_max_rollover = match f.raw("resetMaxRollover") {
        Some(Value::Null) => None,
        Some(_) => non_negative(f, "resetMaxRollover"),
        None => Some(Decimal::ZERO),
    };
    let reset_min_rollover = non_negative(f, "resetMinRollover").unwrap_or_default();
    if let Some(hi) = reset_max_rollover {
        if reset_min_rollover > hi {
            f.fail("resetMinRollover", Code::MinGreaterThanMax, "resetMinRollover is above resetMaxRollover");
        }
    }
    let tolerance = non_negative(f, "tolerance").unwrap_or_default();
    let offline_allowance = offline(f);
    Some(MeteredTemplate {
        usage_period,
        issue_after_reset,
        issue_after_reset_priority,
        is_soft_limit,
        preserve_overage_at_reset,
        reset_max_rollover,
        reset_min_rollover,
        tolerance,
        offline_allowance,
    })
}

/// `offlineMode` (`deny`, the default, or `allowance`) and `offlineAllowance` (required and
/// positive with `allowance`, refused without it): the offline allowance, 0 for `deny`.
pub(crate) fn offline(f: &mut Fields<'_, '_>) -> Decimal {
    let allowance_mode = f.opt_choice("offlineMode", &["deny", "allowance"]) == Some(1);
    let amount = f.opt_decimal("offlineAllowance");
    match (allowance_mode, amount) {
        (true, Some(a)) if a > Decimal::ZERO => a,
        (true, _) => {
            f.fail(
                "offlineAllowance",
                Code::InvalidValue,
                "offlineMode \"allowance\" needs a positive offlineAllowance",
            );
            Decimal::ZERO
        }
        (false, Some(_)) => {
            f.fail("offlineAllowance", Code::InvalidValue, "offlineAllowance needs offlineMode \"allowance\"");
            Decimal::ZERO
        }
        (false, None) => Decimal::ZERO,
    }
}

/// Market rates: `{ name: "3.50" }`, or a history `{ name: [{ "rate", "effectiveAt" }, …] }`
/// (effective times strictly ascending). Returns the rates in force now (the latest of each
/// history) and the histories.
#[allow(clippy::type_complexity, reason = "two plain maps returned together; a named type would be used once")]
fn rate_map(
    v: &Value,
    path: &str,
    problems: &mut Problems,
) -> (BTreeMap<String, Decimal>, BTreeMap<String, Vec<(Timestamp, Decimal)>>) {
    let Some(obj) = v.as_object() else {
        problems.push(Error::new(Code::InvalidType, path, "rates must be an object of name → rate"));
        return (BTreeMap::new(), BTreeMap::new());
    };
    let mut plain = serde_json::Map::new();
    let mut history = BTreeMap::new();
    for (name, item) in obj {
        match item {
            Value::Array(entries) => {
                let at = crate::json::child(path, name);
                if let Some(list) = rate_history(entries, &at, problems) {
                    if let Some((_, latest)) = list.last() {
                        plain.insert(name.clone(), Value::String(alloc::string::ToString::to_string(latest)));
                    }
                    history.insert(name.clone(), list);
                }
            }
            other => {
                plain.insert(name.clone(), other.clone());
            }
        }
    }
    (decimal_map(&Value::Object(plain), path, problems), history)
}

fn rate_history(entries: &[Value], path: &str, problems: &mut Problems) -> Option<Vec<(Timestamp, Decimal)>> {
    if entries.is_empty() {
        problems.push(Error::new(Code::InvalidValue, path, "a rate history needs at least one entry"));
        return None;
    }
    let mut out: Vec<(Timestamp, Decimal)> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = crate::json::index(path, i);
        let mut f = Fields::open(entry, &at, problems)?;
        let (rate, from) = (f.decimal("rate"), f.timestamp("effectiveAt"));
        f.finish();
        let (Some(rate), Some(from)) = (rate, from) else { return None };
        if out.last().is_some_and(|(t, _)| *t >= from) {
            let p = crate::json::child(&at, "effectiveAt");
            problems.push(Error::new(Code::InvalidValue, p, "rate entries must have strictly ascending effectiveAt"));
            return None;
        }
        out.push((from, rate));
    }
    Some(out)
}
