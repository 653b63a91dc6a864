//! Cross-reference rules of SPEC §3.4, run on a catalog whose shape already decoded cleanly.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;

use super::model::*;
use crate::error::{Code, Error};
use crate::json::{child, Problems};
use crate::pricing::{DynamicSource, Model};

/// Records every cross-reference problem of `c`.
pub fn check(c: &Catalog, problems: &mut Problems) {
    let mut ids = Ids::default();
    let products: BTreeSet<&str> = c.products.iter().map(|p| p.id.as_str()).collect();
    for (i, p) in c.products.iter().enumerate() {
        ids.claim("product", &p.id, &format!("/products/{i}/id"), problems);
    }
    let mut keys: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for (i, f) in c.features.iter().enumerate() {
        let at = format!("/features/{i}");
        ids.claim("feature", &f.id, &child(&at, "id"), problems);
        known(&products, &f.product_id, "product", &child(&at, "productId"), problems);
        if keys.insert((f.product_id.as_str(), f.key.as_str()), ()).is_some() {
            problems.push(Error::new(
                Code::DuplicateKey,
                child(&at, "key"),
                format!("feature key {:?} is used twice in product {:?}", f.key, f.product_id),
            ));
        }
    }
    for (i, m) in c.billable_metrics.iter().enumerate() {
        let at = format!("/billableMetrics/{i}");
        ids.claim("billable metric", &m.id, &child(&at, "id"), problems);
        known(&products, &m.product_id, "product", &child(&at, "productId"), problems);
    }
    for (i, f) in c.fees.iter().enumerate() {
        let at = format!("/fees/{i}");
        ids.claim("fee", &f.id, &child(&at, "id"), problems);
        known(&products, &f.product_id, "product", &child(&at, "productId"), problems);
    }
    let mut price_ids = Ids::default();
    for (i, plan) in c.plans.iter().enumerate() {
        let at = format!("/plans/{i}");
        ids.claim("plan", &plan.id, &child(&at, "id"), problems);
        known(&products, &plan.product_id, "product", &child(&at, "productId"), problems);
        for (j, price) in plan.prices.iter().enumerate() {
            let at = format!("{at}/prices/{j}");
            price_ids.claim("price", &price.id, &child(&at, "id"), problems);
            check_price(c, plan, price, &at, problems);
        }
    }
}

fn check_price(c: &Catalog, plan: &Plan, price: &Price, at: &str, problems: &mut Problems) {
    let metric = match &price.target {
        PriceTarget::Metric(id) => {
            let m = c.metric(id);
            if m.is_none() {
                problems.push(unknown("billable metric", id, &child(at, "metricId")));
            }
            m
        }
        PriceTarget::Fee(id) => {
            if c.fee(id).is_none() {
                problems.push(unknown("fee", id, &child(at, "feeId")));
            }
            None
        }
    };
    if let Some(link) = &price.feature {
        let link_at = child(at, "feature");
        match c.feature(&link.feature_id) {
            None => problems.push(unknown("feature", &link.feature_id, &child(&link_at, "featureId"))),
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
    check_model(c, &price.model, metric, &child(at, "model"), problems);
}

fn check_model(c: &Catalog, model: &Model, metric: Option<&BillableMetric>, at: &str, problems: &mut Problems) {
    match model {
        Model::Dynamic { source: DynamicSource::Rate(name), .. } if !c.rates.contains_key(name) => {
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
                check_model(c, cell, metric, &child(&child(at, "cells"), key), problems);
            }
            if let Some(d) = default {
                check_model(c, d, metric, &child(at, "default"), problems);
            }
        }
        _ => {}
    }
}

fn unknown(what: &str, id: &str, path: &str) -> Error {
    Error::new(Code::UnknownReference, path, format!("no {what} with id {id:?}"))
}

fn known(set: &BTreeSet<&str>, id: &str, what: &str, path: &str, problems: &mut Problems) {
    if !set.contains(id) {
        problems.push(unknown(what, id, path));
    }
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
