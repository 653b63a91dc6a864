//! `quote` on the two example catalogs, against figures computed by hand.

use serde_json::json;
use tollgate::billing::{quote, LineType, Quote, QuoteRequest};
use tollgate::{Catalog, Code, Decimal};

const LLM: &str = include_str!("../../examples/llm-provider.catalog.json");
const ANALYTICS: &str = include_str!("../../examples/cloud-analytics.catalog.json");

fn run(catalog: &str, plan: &str, usage: serde_json::Value) -> Quote {
    let catalog = Catalog::from_json(catalog).expect("example catalog is valid");
    let req = QuoteRequest::from_value(&usage, Some(plan)).expect("valid usage");
    quote(&catalog, &req).expect("quote")
}

fn amounts(q: &Quote) -> Vec<(Option<&str>, String)> {
    q.lines.iter().map(|l| (l.price_id.as_deref(), l.amount.to_string())).collect()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The sum of the rounded lines is the total (no discounts on a quote).
fn assert_lines_sum(q: &Quote) {
    let sum: Decimal = q.lines.iter().map(|l| l.amount).sum();
    assert_eq!(sum, q.total, "lines {:?}", amounts(q));
}

#[test]
fn developer_two_million_input_half_million_output() {
    let q = run(LLM, "plan_developer", json!({ "bm_input": 2_000_000, "bm_output": 500_000 }));
    // Input: (2,000,000 − 10,000 free) × 0.000002 = 3.98; output: 500,000 × 0.000006 = 3.00.
    assert_eq!(
        amounts(&q),
        [
            (Some("price_dev_input"), "3.98".into()),
            (Some("price_dev_output"), "3.00".into()),
            (Some("price_dev_calls"), "0.00".into())
        ]
    );
    let input = &q.lines[0];
    assert_eq!((input.metered_quantity, input.quantity), (d("2000000"), d("1990000")));
    assert_eq!(input.precise_amount, d("3.98"));
    assert_eq!((q.subtotal.to_string(), q.total.to_string()), ("6.98".into(), "6.98".into()));
    assert_eq!(q.currency, "USD");
    assert_lines_sum(&q);
}

#[test]
fn developer_under_the_allowance_is_free() {
    let q = run(LLM, "plan_developer", json!({ "bm_input": 9_999 }));
    assert_eq!(q.lines[0].quantity, Decimal::ZERO);
    assert_eq!(q.total.to_string(), "0.00");
}

#[test]
fn business_with_fine_tuning() {
    let usage = json!({ "bm_input": 2_000_000, "bm_output": 500_000, "bm_finetune": 10, "bm_calls": 1200 });
    let q = run(LLM, "plan_business", usage);
    // 2,000,000 × 0.000001 = 2.00; 500,000 × 0.000003 = 1.50; 10 h × 3 = 30.00; calls free.
    assert_eq!(q.total.to_string(), "33.50");
    assert_lines_sum(&q);
}

#[test]
fn enterprise_commitment_true_up() {
    let q = run(LLM, "plan_enterprise", json!({ "bm_input": 2_000_000, "bm_output": 500_000 }));
    // 2,000,000 × 0.0000009 = 1.80; 500,000 × 0.0000027 = 1.35; subtotal 3.15;
    // true-up 10,000 − 3.15 = 9,996.85.
    assert_eq!(q.subtotal.to_string(), "3.15");
    let last = q.lines.last().unwrap();
    assert_eq!((last.kind, last.amount.to_string()), (LineType::Commitment, "9996.85".into()));
    assert_eq!(q.total.to_string(), "10000.00");
    assert_lines_sum(&q);
}

#[test]
fn enterprise_graduated_tiers_cross_the_billion() {
    let q = run(LLM, "plan_enterprise", json!({ "bm_input": "1500000000" }));
    let input = q.lines.iter().find(|l| l.price_id.as_deref() == Some("price_ent_input")).unwrap();
    // 1e9 × 0.0000009 = 900; 5e8 × 0.0000007 = 350.
    let tiers = input.tiers.as_ref().unwrap();
    assert_eq!(tiers.len(), 2);
    assert_eq!((tiers[0].quantity, tiers[0].amount), (d("1000000000"), d("900")));
    assert_eq!((tiers[1].quantity, tiers[1].amount), (d("500000000"), d("350")));
    assert_eq!(input.amount.to_string(), "1250.00");
}

#[test]
fn analytics_on_demand() {
    let usage = json!({ "bm_compute": 3_600_000, "bm_storage": 500, "bm_egress": 12_000, "bm_connections": 120 });
    let q = run(ANALYTICS, "plan_on_demand", usage);
    // compute 3,600,000 × 0.000125 = 450; storage 500 × 0.023 = 11.50;
    // egress 100 × 0 + 10,140 × 0.09 + 1,760 × 0.07 = 912.60 + 123.20 = 1,035.80;
    // connections 120 in the volume tier (50, 500] → 120 × 0.50 = 60.
    assert_eq!(
        amounts(&q),
        [
            (Some("price_od_compute"), "450.00".into()),
            (Some("price_od_storage"), "11.50".into()),
            (Some("price_od_egress"), "1035.80".into()),
            (Some("price_od_connections"), "60.00".into())
        ]
    );
    assert_eq!(q.total.to_string(), "1557.30");
    assert_lines_sum(&q);
}

#[test]
fn analytics_reserved_fee_and_overage() {
    let usage = json!({ "bm_compute": 1_500_000, "bm_storage": 500, "bm_egress": 12_000 });
    let q = run(ANALYTICS, "plan_reserved", usage);
    // fee 75; compute (1,500,000 − 1,000,000) × 0.000125 = 62.50; storage 11.50; egress 1,035.80.
    assert_eq!(q.lines[0].kind, LineType::Fee);
    assert_eq!(q.total.to_string(), "1184.80");
    assert_lines_sum(&q);
}

#[test]
fn analytics_committed_annual_minimum() {
    let usage = json!({ "bm_compute": 3_600_000, "bm_storage": 500, "bm_egress": 12_000 });
    let q = run(ANALYTICS, "plan_committed", usage);
    // 360 + 120 + 720 = 1,200; true-up to 12,000 = 10,800.
    assert_eq!(q.subtotal.to_string(), "1200.00");
    assert_eq!(q.lines.last().unwrap().amount.to_string(), "10800.00");
    assert_eq!(q.total.to_string(), "12000.00");
}

#[test]
fn request_form_and_errors() {
    let catalog = Catalog::from_json(LLM).unwrap();
    let req = QuoteRequest::from_value(&json!({ "planId": "plan_developer", "usage": { "bm_input": "20000" } }), None)
        .unwrap();
    assert_eq!(quote(&catalog, &req).unwrap().total.to_string(), "0.02");

    let unknown_plan = QuoteRequest::from_value(&json!({ "bm_input": 1 }), Some("plan_nope")).unwrap();
    let err = quote(&catalog, &unknown_plan).unwrap_err();
    assert_eq!((err.code, err.path.as_str()), (Code::UnknownPlan, "/planId"));

    let unknown_metric = QuoteRequest::from_value(&json!({ "bm_nope": 1 }), Some("plan_developer")).unwrap();
    let err = quote(&catalog, &unknown_metric).unwrap_err();
    assert_eq!((err.code, err.path.as_str()), (Code::UnknownReference, "/usage/bm_nope"));

    let bad = QuoteRequest::from_value(&json!({ "bm_input": "lots" }), Some("plan_developer")).unwrap_err();
    assert_eq!((bad[0].code, bad[0].path.as_str()), (Code::InvalidDecimal, "/bm_input"));
}
