//! The catalog's data model (SPEC §3): what is sold, how it is metered and how it is priced.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::json::{spelled, JsonPath};
use crate::money::Currency;
use crate::pricing::Model;
use crate::time::{Duration, Timestamp};

/// A validated catalog. Build it with [`Catalog::from_json`] or [`Catalog::from_value`].
#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    /// Format version; this build reads 1.
    pub schema_version: u32,
    /// Set by the hub; grows by one on every change.
    pub catalog_version: u64,
    /// Products.
    pub products: Vec<Product>,
    /// Features (boolean, static, metered).
    pub features: Vec<Feature>,
    /// Billable metrics: how events become quantities.
    pub billable_metrics: Vec<BillableMetric>,
    /// Fees: what fee prices charge for.
    pub fees: Vec<Fee>,
    /// Market rates for `dynamic` prices, by name: the one in force now (the latest).
    pub rates: BTreeMap<String, Decimal>,
    /// Rates given with effective times (`[{ "rate", "effectiveAt" }]`), oldest first: an event
    /// is priced at the rate in force at its time.
    pub rate_history: BTreeMap<String, Vec<(crate::time::Timestamp, Decimal)>>,
    /// Plans with their prices.
    pub plans: Vec<Plan>,
}

/// A product.
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
}

/// What kind of entitlement a feature is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    /// On or off.
    Boolean,
    /// A static configuration value (seat limit, SLA).
    Static,
    /// A quota consumed through a billable metric.
    Metered,
}

spelled!(FeatureType { Boolean => "boolean", Static => "static", Metered => "metered" });

/// A feature customers may be entitled to.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    /// Unique id.
    pub id: String,
    /// Owning product.
    pub product_id: String,
    /// Kebab-case key, unique within the product; what `check` is called with.
    pub key: String,
    /// Boolean, static or metered.
    pub kind: FeatureType,
    /// Optional display name.
    pub name: Option<String>,
}

/// How a metric folds event values into one quantity per period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// Σ values.
    Sum,
    /// Number of events.
    Count,
    /// Mean of values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of distinct values.
    UniqueCount,
    /// Value of the event with the latest time.
    Latest,
    /// Time-weighted level (∫ level dt ÷ period length).
    WeightedSum,
}

spelled!(Aggregation {
    Sum => "SUM",
    Count => "COUNT",
    Avg => "AVG",
    Min => "MIN",
    Max => "MAX",
    UniqueCount => "UNIQUE_COUNT",
    Latest => "LATEST",
    WeightedSum => "WEIGHTED_SUM",
});

/// A filter condition: the value at `path` must equal one of `allowed`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Where to look in the event's data.
    pub path: JsonPath,
    /// Accepted values (strings, numbers or booleans).
    pub allowed: Vec<Value>,
}

/// How matching events become a quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct BillableMetric {
    /// Unique id.
    pub id: String,
    /// Owning product.
    pub product_id: String,
    /// Display name.
    pub name: String,
    /// Unit shown on invoices.
    pub unit: Option<String>,
    /// CloudEvents `type` this metric counts.
    pub event_type: String,
    /// How values fold.
    pub aggregation: Aggregation,
    /// Where the value is (required for all but COUNT).
    pub value_property: Option<JsonPath>,
    /// Dimensions: name → where to read it.
    pub group_by: BTreeMap<String, JsonPath>,
    /// Only events matching every condition count.
    pub filter: Vec<Filter>,
}

/// Something a fee price charges for (platform access, seats).
#[derive(Clone, Debug, PartialEq)]
pub struct Fee {
    /// Unique id.
    pub id: String,
    /// Owning product.
    pub product_id: String,
    /// Display name.
    pub name: String,
}

/// When a price is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentTerm {
    /// At the start of each period (fees).
    InAdvance,
    /// On the period's invoice.
    InArrears,
    /// Per event, from the wallet, as it happens.
    Instant,
}

spelled!(PaymentTerm { InAdvance => "in_advance", InArrears => "in_arrears", Instant => "instant" });

/// What a price charges for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriceTarget {
    /// Usage of a billable metric.
    Metric(String),
    /// A fee.
    Fee(String),
}

/// A price of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Price {
    /// Unique id (across the catalog).
    pub id: String,
    /// A metric or a fee.
    pub target: PriceTarget,
    /// When it is charged.
    pub payment_term: PaymentTerm,
    /// How the amount is computed (an entitlement-only price: a flat 0 it never bills).
    pub model: Model,
    /// False for an entitlement-only price (no `model` in the catalog): it grants its feature
    /// and puts no line on quotes or invoices.
    pub bills: bool,
    /// Fee prices: quantity billed per period (seats); 1 by default.
    pub quantity: Decimal,
    /// Own cadence; `None` = the plan's; `P0D` = one-time.
    pub billing_cadence: Option<Duration>,
    /// Lower clamp of the billed quantity per period.
    pub minimum_quantity: Option<Decimal>,
    /// Upper clamp of the billed quantity per period.
    pub maximum_quantity: Option<Decimal>,
    /// Units covered by grants of the linked metered feature are free.
    pub grant_discount: bool,
    /// The entitlement a subscriber of this price receives.
    pub feature: Option<FeatureLink>,
    /// Optional display name.
    pub name: Option<String>,
}

/// The link from a price to the feature it grants.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureLink {
    /// The feature's id.
    pub feature_id: String,
    /// What is granted.
    pub entitlement: EntitlementTemplate,
}

/// A usage period of a metered entitlement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsagePeriod {
    /// Length of each period.
    pub interval: Duration,
    /// Anchor of the periods; `None` = the subscription's billing anchor.
    pub anchor: Option<Timestamp>,
}

/// The metered part of an entitlement template (SPEC §3.3).
#[derive(Clone, Debug, PartialEq)]
pub struct MeteredTemplate {
    /// Reset period; `None` = one-time, never refills.
    pub usage_period: Option<UsagePeriod>,
    /// Units granted at every period start.
    pub issue_after_reset: Decimal,
    /// Burn priority of the period grant (lower burns first).
    pub issue_after_reset_priority: Decimal,
    /// Soft: allow past zero and count overage. Hard: deny at zero.
    pub is_soft_limit: bool,
    /// Last period's overage reduces the next start balance.
    pub preserve_overage_at_reset: bool,
    /// Cap on carried balance (`None` = no cap).
    pub reset_max_rollover: Option<Decimal>,
    /// Floor on carried balance.
    pub reset_min_rollover: Decimal,
    /// Extra units the hub may grant across all edges.
    pub tolerance: Decimal,
    /// Offline mode (SPEC §7): 0 = `deny`; above 0 = `allowance`, the units of each edge's lease
    /// reserved for use while the hub is unreachable.
    pub offline_allowance: Decimal,
}

/// What subscribing to a price grants (SPEC §3.3).
#[derive(Clone, Debug, PartialEq)]
pub enum EntitlementTemplate {
    /// Access, on or off.
    Boolean,
    /// A configuration value returned by `check`.
    Static {
        /// Free-form JSON object.
        config: Value,
    },
    /// A quota.
    Metered(MeteredTemplate),
}

impl EntitlementTemplate {
    /// The feature type this template fits.
    pub fn feature_type(&self) -> FeatureType {
        match self {
            EntitlementTemplate::Boolean => FeatureType::Boolean,
            EntitlementTemplate::Static { .. } => FeatureType::Static,
            EntitlementTemplate::Metered(_) => FeatureType::Metered,
        }
    }
}

/// A plan: a currency, a cadence and prices.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Unique id.
    pub id: String,
    /// Owning product.
    pub product_id: String,
    /// Display name.
    pub name: String,
    /// Currency of every price.
    pub currency: Currency,
    /// Billing period length.
    pub billing_cadence: Duration,
    /// Minimum spend per billing period (true-up line when not reached).
    pub minimum_commitment: Option<Decimal>,
    /// Prices.
    pub prices: Vec<Price>,
}

impl Catalog {
    /// The pricing context of this catalog's market rates in force now.
    pub fn rates_now(&self) -> crate::pricing::Context<'_> {
        crate::pricing::Context { rates: &self.rates, history: Some(&self.rate_history), at: None }
    }

    /// The pricing context of this catalog's market rates in force at `at`.
    pub fn rates_at(&self, at: crate::time::Timestamp) -> crate::pricing::Context<'_> {
        crate::pricing::Context { at: Some(at), ..self.rates_now() }
    }

    /// The plan with this id.
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The metric with this id.
    pub fn metric(&self, id: &str) -> Option<&BillableMetric> {
        self.billable_metrics.iter().find(|m| m.id == id)
    }

    /// The position of the metric with this id in `billable_metrics`.
    pub fn metric_index(&self, id: &str) -> Option<usize> {
        self.billable_metrics.iter().position(|m| m.id == id)
    }

    /// The feature with this id.
    pub fn feature(&self, id: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.id == id)
    }

    /// The fee with this id.
    pub fn fee(&self, id: &str) -> Option<&Fee> {
        self.fees.iter().find(|f| f.id == id)
    }
}

impl Plan {
    /// The metered entitlement linked to `metric_id` by a price of this plan, if any: the
    /// allowance that `grantDiscount` prices of that metric give away.
    pub fn metered_link(&self, metric_id: &str) -> Option<(&FeatureLink, &MeteredTemplate)> {
        self.prices.iter().find_map(|p| match (&p.target, &p.feature) {
            (PriceTarget::Metric(m), Some(link)) if m == metric_id => match &link.entitlement {
                EntitlementTemplate::Metered(t) => Some((link, t)),
                _ => None,
            },
            _ => None,
        })
    }
}
