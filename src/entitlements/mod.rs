//! Entitlements (SPEC §3.3, §5): what a customer may use, resolved from the prices of their
//! plans (`feature` links) and their own grants, and the decisions of `check` and `consume`.

mod decision;
mod meter;

pub use decision::{Balance, Decision, Reason, WalletView};
pub use meter::{Bucket, Cadence, Meter, Window};

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::catalog::{Catalog, EntitlementTemplate, FeatureType, PriceTarget};
use crate::customer::Customer;
use crate::time::Timestamp;

/// One way a customer gets a feature: a price of a subscribed plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Subscription start.
    pub from: Timestamp,
    /// Subscription end.
    pub until: Option<Timestamp>,
    /// Index (in the catalog) of the linking price's metric: how a metered feature is consumed.
    pub metric: Option<usize>,
    /// Static configuration.
    pub config: Option<Arc<Value>>,
}

impl Link {
    /// True when the subscription is active at `t`.
    pub fn active(&self, t: Timestamp) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// A customer's access to one feature key.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// The key (shared with every decision about it).
    pub key: Arc<str>,
    /// The feature's type.
    pub kind: FeatureType,
    /// Plan links, in subscription then price order.
    pub links: Vec<Link>,
    /// The balance of a metered feature.
    pub meter: Option<Meter>,
    /// Metric indexes that consume it when no plan link is active (grant-only access).
    pub fallback_metrics: Vec<usize>,
}

impl Access {
    /// True when the customer holds the feature at `t`.
    pub fn entitled(&self, t: Timestamp) -> bool {
        match &self.meter {
            Some(m) => m.any_active(t),
            None => self.links.iter().any(|l| l.active(t)),
        }
    }

    /// True when events of the metric at index `metric` consume this feature at `t`.
    pub fn consumed_by(&self, metric: usize, t: Timestamp) -> bool {
        let mut active = self.links.iter().filter(|l| l.active(t)).peekable();
        if active.peek().is_some() {
            active.any(|l| l.metric == Some(metric))
        } else {
            self.fallback_metrics.contains(&metric)
        }
    }

    /// The metric a direct `consume` is recorded on at `t`.
    pub fn consuming_metric(&self, t: Timestamp) -> Option<usize> {
        let linked = self.links.iter().filter(|l| l.active(t)).find_map(|l| l.metric);
        linked.or_else(|| self.fallback_metrics.first().copied())
    }

    /// The config of the first active link.
    pub fn config(&self, t: Timestamp) -> Option<Arc<Value>> {
        self.links.iter().find(|l| l.active(t)).and_then(|l| l.config.clone())
    }
}

/// Every feature key the customer may hold, from their subscriptions' prices and their grants.
pub fn resolve(catalog: &Catalog, customer: &Customer) -> BTreeMap<Arc<str>, Access> {
    let mut out: BTreeMap<Arc<str>, Access> = BTreeMap::new();
    let mut meters: BTreeMap<Arc<str>, MeterParts> = BTreeMap::new();
    for sub in &customer.subscriptions {
        let Some(plan) = catalog.plan(&sub.plan_id) else { continue };
        for price in sub.prices(plan) {
            let Some(link) = &price.feature else { continue };
            let Some(feature) = catalog.feature(&link.feature_id) else { continue };
            let key: Arc<str> = Arc::from(feature.key.as_str());
            let access = out.entry(key.clone()).or_insert_with(|| Access {
                key: key.clone(),
                kind: feature.kind,
                links: Vec::new(),
                meter: None,
                fallback_metrics: Vec::new(),
            });
            let metric = match &price.target {
                PriceTarget::Metric(m) => catalog.metric_index(m),
                PriceTarget::Fee(_) => None,
            };
            let config = match &link.entitlement {
                EntitlementTemplate::Static { config } => Some(Arc::new(config.clone())),
                _ => None,
            };
            access.links.push(Link { from: sub.started_at, until: sub.ending_at, metric, config });
            if let EntitlementTemplate::Metered(t) = &link.entitlement {
                let parts = meters.entry(key).or_default();
                if !parts.linked {
                    let anchor = t.usage_period.and_then(|p| p.anchor).unwrap_or(sub.anchor());
                    parts.linked = true;
                    parts.soft = t.is_soft_limit;
                    parts.preserve_overage = t.preserve_overage_at_reset;
                    parts.cadence = t.usage_period.map(|p| (p.interval, anchor));
                    parts.tolerance = t.tolerance;
                    parts.offline_allowance = t.offline_allowance;
                }
                let order = parts.buckets.len();
                parts.buckets.push(Bucket {
                    id: alloc::format!("plan:{}/{}", sub.id, price.id),
                    window: Window::Plan { from: sub.started_at, until: sub.ending_at, issue: t.issue_after_reset },
                    priority: t.issue_after_reset_priority,
                    order,
                    amount: t.issue_after_reset,
                    remaining: t.issue_after_reset,
                    issued: t.issue_after_reset,
                    max_rollover: t.reset_max_rollover,
                    min_rollover: t.reset_min_rollover,
                });
            }
        }
    }
    for grant in &customer.grants {
        let Some(feature) = catalog.features.iter().find(|f| f.key == grant.feature_key) else { continue };
        let key: Arc<str> = Arc::from(feature.key.as_str());
        out.entry(key.clone()).or_insert_with(|| Access {
            key: key.clone(),
            kind: FeatureType::Metered,
            links: Vec::new(),
            meter: None,
            fallback_metrics: metrics_consuming(catalog, &feature.id),
        });
        let parts = meters.entry(key).or_default();
        let order = parts.buckets.len();
        parts.buckets.push(Bucket {
            id: alloc::format!("grant:{}", grant.id),
            window: Window::Grant { from: grant.effective_at, until: grant.expires_at },
            priority: grant.priority,
            order,
            amount: grant.amount,
            remaining: grant.amount,
            issued: grant.amount,
            max_rollover: grant.reset_max_rollover,
            min_rollover: grant.reset_min_rollover,
        });
    }
    for (key, parts) in meters {
        if let Some(access) = out.get_mut(&key) {
            let mut meter = Meter::new(parts.soft, parts.preserve_overage, parts.cadence, parts.buckets);
            meter.tolerance = parts.tolerance;
            meter.offline_allowance = parts.offline_allowance;
            access.meter = Some(meter);
        }
    }
    out
}

/// What a feature's meter is built from: the settings of its first metered link, and the
/// buckets of every source (a grant-only feature keeps the default settings: a hard limit that
/// never resets).
#[derive(Default)]
struct MeterParts {
    /// Whether a metered link has set the settings below.
    linked: bool,
    /// Soft limit: allows past zero and counts overage.
    soft: bool,
    /// Overage at a reset is burned from the next period's balance.
    preserve_overage: bool,
    /// Reset cadence and anchor; `None` = one-time.
    cadence: Option<Cadence>,
    tolerance: Decimal,
    offline_allowance: Decimal,
    buckets: Vec<Bucket>,
}

/// Metrics of prices (in any plan) that link the feature: what consumes a grant-only feature.
fn metrics_consuming(catalog: &Catalog, feature_id: &str) -> Vec<usize> {
    let mut out: Vec<usize> = catalog
        .plans
        .iter()
        .flat_map(|p| &p.prices)
        .filter(|p| p.feature.as_ref().is_some_and(|l| l.feature_id == feature_id))
        .filter_map(|p| match &p.target {
            PriceTarget::Metric(m) => catalog.metric_index(m),
            PriceTarget::Fee(_) => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
