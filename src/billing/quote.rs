//! `quote` (SPEC §6.1): the invoice a new customer of a plan would get for some usage.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::line::{as_text, close_lines, Adjustments, Line};
use super::price_line::{fee_line, MetricUsage, Share, UsageLine};
use crate::catalog::{Catalog, PriceTarget};
use crate::error::{Code, Error, Result};
use crate::json::{child, decimal, Fields};

/// A quote request: `{ planId, usage: { metricId: quantity }, eventCount? }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuoteRequest {
    /// The plan to price.
    pub plan_id: String,
    /// Usage per metric id.
    pub usage: BTreeMap<String, MetricUsage>,
    /// Number of events per metric id (for `percentage` fixed fees).
    pub event_count: BTreeMap<String, Decimal>,
    /// One event count for every metric without its own.
    pub default_event_count: Option<Decimal>,
}

// Its last four fields are an `Invoice`'s too: two documents of the wire format that share a
// tail, kept as fields of each so that both serialize flat.
/// The priced result: lines, subtotal, discount, total, in the plan's currency.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The plan priced.
    pub plan_id: String,
    /// ISO-4217 code.
    pub currency: &'static str,
    /// Fee, usage and commitment lines.
    pub lines: Vec<Line>,
    /// Σ fee and usage lines.
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub subtotal: Decimal,
    /// Σ discounts (none on a plain quote).
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub discount: Decimal,
    /// What the period would cost.
    #[serde(serialize_with = "as_text")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub total: Decimal,
}

impl QuoteRequest {
    /// Decodes `{ "planId"?, "usage": {...}, "eventCount"?: n | {metricId: n} }`; `plan_id`
    /// fills in a missing `planId`. A bare `{ metricId: quantity }` map is accepted as `usage`.
    pub fn from_value(value: &Value, plan_id: Option<&str>) -> Result<QuoteRequest, Vec<Error>> {
        let mut problems = Vec::new();
        let is_request = value.get("usage").is_some_and(Value::is_object);
        let mut req = QuoteRequest::default();
        if is_request {
            if let Some(mut f) = Fields::open(value, "", &mut problems) {
                req.plan_id = f.opt_str("planId").or(plan_id.map(ToString::to_string)).unwrap_or_default();
                if let Some((v, p)) = f.req("usage") {
                    req.usage = usage_map(v, &p, f.problems());
                }
                match f.opt("eventCount") {
                    Some((v @ Value::Object(_), p)) => req.event_count = decimals(v, &p, f.problems()),
                    Some((v, p)) => req.default_event_count = decimal(v, &p).map_err(|e| f.push(e)).ok(),
                    None => {}
                }
                f.opt("period");
                f.finish();
            }
        } else {
            req.plan_id = plan_id.unwrap_or_default().to_string();
            req.usage = usage_map(value, "", &mut problems);
        }
        if req.plan_id.is_empty() && problems.is_empty() {
            problems.push(Error::new(Code::MissingField, "/planId", "a quote needs a planId"));
        }
        if problems.is_empty() {
            Ok(req)
        } else {
            Err(problems)
        }
    }

    fn events_for(&self, metric_id: &str) -> Option<Decimal> {
        self.event_count.get(metric_id).copied().or(self.default_event_count)
    }
}

fn usage_map(v: &Value, path: &str, problems: &mut Vec<Error>) -> BTreeMap<String, MetricUsage> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.as_object() else {
        problems.push(Error::new(Code::InvalidType, path, "usage must be an object of metric id → quantity"));
        return out;
    };
    for (metric, q) in obj {
        let at = child(path, metric);
        let usage = match q {
            Value::Object(_) => MetricUsage::Groups(decimals(q, &at, problems)),
            _ => match decimal(q, &at) {
                Ok(d) => MetricUsage::Total(d),
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            },
        };
        out.insert(metric.clone(), usage);
    }
    out
}

fn decimals(v: &Value, path: &str, problems: &mut Vec<Error>) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    for (k, item) in v.as_object().into_iter().flatten() {
        match decimal(item, &child(path, k)) {
            Ok(d) => {
                out.insert(k.clone(), d);
            }
            Err(e) => problems.push(e),
        }
    }
    out
}

/// Prices `req` on its plan: fee lines at their quantity, usage lines for every metric price
/// (allowances of linked metered entitlements taken off where `grantDiscount` is set, then the
/// min/max clamp), each line rounded once, then the plan's minimum commitment.
pub fn quote(catalog: &Catalog, req: &QuoteRequest) -> Result<Quote> {
    let plan = catalog
        .plan(&req.plan_id)
        .ok_or_else(|| Error::new(Code::UnknownPlan, "/planId", format!("no plan with id {:?}", req.plan_id)))?;
    for metric in req.usage.keys() {
        if catalog.metric(metric).is_none() {
            return Err(Error::new(
                Code::UnknownReference,
                child("/usage", metric),
                format!("no billable metric with id {metric:?}"),
            ));
        }
    }
    let ctx = catalog.rates_now();
    let mut lines = Vec::with_capacity(plan.prices.len() + 1);
    for price in plan.prices.iter().filter(|p| p.bills) {
        let line = match &price.target {
            PriceTarget::Fee(fee_id) => {
                let name = catalog.fee(fee_id).map_or(fee_id.as_str(), |f| f.name.as_str());
                fee_line(price, &price.model, name, Share::FULL, plan.currency, ctx)?
            }
            PriceTarget::Metric(metric_id) => {
                let name = catalog.metric(metric_id).map_or(metric_id.as_str(), |m| m.name.as_str());
                let usage = req.usage.get(metric_id);
                let allowance = match (price.grant_discount, plan.metered_link(metric_id)) {
                    (true, Some((_, t))) => t.issue_after_reset,
                    _ => Decimal::ZERO,
                };
                let line = UsageLine { price, model: &price.model, name, allowance, events: req.events_for(metric_id) };
                line.priced(usage, plan.currency, ctx).map_err(|e| e.under(&child("/usage", metric_id)))?
            }
        };
        lines.push(line);
    }
    let adjustments = Adjustments { commitment: plan.minimum_commitment, ..Adjustments::default() };
    let totals = close_lines(&mut lines, &adjustments, plan.currency)?;
    Ok(Quote {
        plan_id: plan.id.clone(),
        currency: plan.currency.code(),
        lines,
        subtotal: totals.subtotal,
        discount: totals.discount,
        total: totals.total,
    })
}
