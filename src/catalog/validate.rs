//! Cross-reference rules of SPEC §3.4, run on a catalog whose shape already decoded cleanly.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;

use super::decode::Positions;
use super::model::*;
use crate::error::{Code, Error};
use crate::json::{child, Problems};
use crate::pricing::{DynamicSource, Model};

/// Records every cross-reference problem of `c` (the part of the input that decoded; `at`
/// says where each item stood). A reference to an id that the input `declared` but whose object
/// failed to decode is not reported again.
pub fn check(c: &Catalog, at: &Positions, declared: &BTreeSet<String>, problems: &mut Problems) {
    let refs = Refs { declared };
    let mut ids = Ids::default();
    for (p, i) in c.products.iter().zip(&at.products) {
        ids.claim("product", &p.id, &format!("/products/{i}/id"), problems);
    }
    let mut keys: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (f, i) in c.features.iter().zip(&at.features) {
        let at = format!("/features/{i}");
        ids.claim("feature", &f.id, &child(&at, "id"), problems);
        refs.known(&f.product_id, "product", &child(&at, "productId"), problems);
        if !keys.insert((f.product_id.as_str(), f.key.as_str())) {
            problems.push(Error::new(
                Code::DuplicateKey,
                child(&at, "key"),
                format!("feature key {:?} is used twice in product {:?}", f.key, f.product_id),
            ));
        }
    }
    for (m, i) in c.billable_metrics.iter().zip(&at.metrics) {
        let at = format!("/billableMetrics/{i}");
        ids.claim("billable metric", &m.id, &child(&at, "id"), problems);
        refs.known(&m.product_id, "product", &child(&at, "productId"), problems);
    }
    for (f, i) in c.fees.iter().zip(&at.fees) {
        let at = format!("/fees/{i}");
        ids.claim("fee", &f.id, &child(&at, "id"), problems);
        refs.known(&f.product_id, "product", &child(&at, "productId"), problems);
    }
    let mut price_ids = Ids::default();
    for ((plan, i), price_at) in c.plans.iter().zip(&at.plans).zip(&at.prices) {
        let at = format!("/plans/{i}");
        ids.claim("plan", &plan.id, &child(&at, "id"), problems);
        refs.known(&plan.product_id, "product", &child(&at, "productId"), problems);
        for (price, j) in plan.prices.iter().zip(price_at) {
            let at = format!("{at}/prices/{j}");
            price_ids.claim("price", &price.id, &child(&at, "id"), problems);
            check_price(c, &refs, plan, price, &at, problems);
        }
    }
}

/// Reference checks against the ids the input declares.
struct Refs<'a> {
    declared: &'a BTreeSet<String>,
}

impl Refs<'_> {
    fn known(&self, id: &str, what: &str, path: &str, problems: &mut Problems) {
        if !self.declared.contains(&format!("{what}:{id}")) {
            problems.push(unknown(what, id, path));
        }
    }
}

/// The reference checks of one price outside any plan (a subscription's pinned price, SPEC §4):
/// its metric or fee, its feature link and its model must name what `c` has.
pub(crate) fn price_references(c: &Catalog, price: &Price, at: &str, problems: &mut Problems) {
    let declared = declared_in(c);
    let refs = Refs { declared: &declared };
    let metric = targets(c, &refs, price, at, problems);
    check_model(c, &refs, &price.model, metric, &child(at, "model"), problems);
}

/// Every `kind:id` of `c` that a price may name (the form of `decode::declared_ids`).
fn declared_in(c: &Catalog) -> BTreeSet<String> {
    let metrics = c.billable_metrics.iter().map(|m| format!("billable metric:{}", m.id));
    let fees = c.fees.iter().map(|f| format!("fee:{}", f.id));
    let features = c.features.iter().map(|f| format!("feature:{}", f.id));
    let rates = c.rates.keys().map(|r| format!("rate:{r}"));
    metrics.chain(fees).chain(features).chain(rates).collect()
}

fn check_price(c: &Catalog, refs: &Refs<'_>, plan: &Plan, price: &Price, at: &str, problems: &mut Problems) {
    let metric = targets(c, refs, price, at, problems);
    if price.grant_discount {
        if let PriceTarget::Metric(id) = &price.target {
            if plan.metered_link(id).is_none() {
                problems.push(Error::new(
                    Code::GrantDiscountWithoutFeature,
                    child(at, "grantDiscount"),
                    format!("no price of plan {:?} links metric {id:?} to a metered feature", plan.id),
                ));
            }
        }
    }
    check_model(c, refs, &price.model, metric, &child(at, "model"), problems);
}

/// Checks what a price charges for and the feature it grants; returns its metric.
fn targets<'c>(
    c: &'c Catalog,
    refs: &Refs<'_>,
    price: &Price,
    at: &str,
    problems: &mut Problems,
) -> Option<&'c BillableMetric> {
    let metric = match &price.target {
        PriceTarget::Metric(id) => {
            refs.known(id, "billable metric", &child(at, "metricId"), problems);
            c.metric(id)
        }
        PriceTarget::Fee(id) => {
            refs.known(id, "fee", &child(at, "feeId"), problems);
            None
        }
    };
    if let Some(link) = &price.feature {
        let link_at = child(at, "feature");
        refs.known(&link.feature_id, "feature", &child(&link_at, "featureId"), problems);
        match c.feature(&link.feature_id) {
            None => {}
            Some(f) => {
                let wanted = link.entitlement.feature_type();
                if f.kind != wanted {
                    problems.push(Error::new(
                        Code::EntitlementTypeMismatch,
                        child(&child(&link_at, "entitlement"), "type"),
                        format!("feature {:?} is {}, the entitlement is {}", f.id, f.kind.as_str(), wanted.as_str()),
                    ));
                } else if f.kind == FeatureType::Metered && matches!(price.target, PriceTarget::Fee(_)) {
                    problems.push(Error::new(
                        Code::MeteredFeatureWithoutMetric,
                        child(&link_at, "featureId"),
                        format!("metered feature {:?} is linked by a fee price: it needs a price with a metricId to be consumed", f.id),
                    ));
                }
            }
        }
    }
    metric
}

fn check_model(
    c: &Catalog,
    refs: &Refs<'_>,
    model: &Model,
    metric: Option<&BillableMetric>,
    at: &str,
    problems: &mut Problems,
) {
    match model {
        Model::Dynamic { source: DynamicSource::Rate(name), .. }
            if !c.rates.contains_key(name) && !refs.declared.contains(&format!("rate:{name}")) =>
        {
            problems.push(unknown("market rate", name, &child(&child(at, "source"), "rate")));
        }
        Model::Matrix { dimension, cells, default } => {
            if let Some(m) = metric {
                if !m.group_by.contains_key(dimension) {
                    problems.push(Error::new(
                        Code::UnknownDimension,
                        child(at, "dimension"),
                        format!("{dimension:?} is not a groupBy of metric {:?}", m.id),
                    ));
                }
            }
            for (key, cell) in cells {
                check_model(c, refs, cell, metric, &child(&child(at, "cells"), key), problems);
            }
            if let Some(d) = default {
                check_model(c, refs, d, metric, &child(at, "default"), problems);
            }
        }
        _ => {}
    }
}

fn unknown(what: &str, id: &str, path: &str) -> Error {
    Error::new(Code::UnknownReference, path, format!("no {what} with id {id:?}"))
}

/// Ids seen so far, with the path of their first use.
#[derive(Default)]
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn claim(&mut self, what: &str, id: &str, path: &str, problems: &mut Problems) {
        if let Some(first) = self.0.get(id) {
            problems.push(Error::new(Code::DuplicateId, path, format!("{what} id {id:?} is already used at {first}")));
        } else {
            self.0.insert(String::from(id), String::from(path));
        }
    }
}
