//! Properties of `consume` on one metered feature within one usage period (SPEC §5), checked
//! with `proptest`: a hard limit never lets through more than the period grant plus the
//! customer grants, every decision's figures satisfy balance + usage = limit, a consume is
//! all-or-nothing, and a repeated id is applied once. Decimals are built from integers
//! (mantissa and scale), never from floats.

use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::entitlements::{Decision, Reason};
use tollgate::time::Timestamp;
use tollgate::Decimal;

/// 2026-01-01T00:00:00Z: the subscription start and the usage period's anchor (P1M, so the
/// period runs to Feb 1, 31 days later).
const START_MS: i64 = 1_767_225_600_000;
const HOUR_MS: i64 = 3_600_000;

fn snapshot(limit: i64, soft: bool, grants: &[(i64, i64)]) -> Value {
    let grants: Vec<Value> = grants
        .iter()
        .enumerate()
        .map(|(i, (cents, priority))| {
            json!({ "id": format!("g{i}"), "featureKey": "tokens", "amount": Decimal::new(*cents, 2).to_string(),
                    "priority": priority })
        })
        .collect();
    json!({
        "catalog": {
            "schemaVersion": 1, "catalogVersion": 1,
            "products": [{ "id": "prod", "name": "Product" }],
            "features": [{ "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" }],
            "billableMetrics": [{ "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm",
                                  "aggregation": "SUM", "valueProperty": "$.tokens" }],
            "plans": [{ "id": "plan", "productId": "prod", "name": "Plan", "currency": "USD", "billingCadence": "P1M",
                        "prices": [{ "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
                                     "model": { "type": "per_unit", "unitPrice": "0" },
                                     "feature": { "featureId": "feat_tokens", "entitlement": {
                                         "type": "metered",
                                         "usagePeriod": { "interval": "P1M", "anchor": "2026-01-01T00:00:00Z" },
                                         "issueAfterReset": limit.to_string(),
                                         "isSoftLimit": soft } } }] }]
        },
        "customers": [{ "id": "cus",
                        "subscriptions": [{ "id": "s", "planId": "plan", "startedAt": "2026-01-01T00:00:00Z" }],
                        "grants": grants }]
    })
}

fn engine(limit: i64, soft: bool, grants: &[(i64, i64)]) -> Engine {
    Engine::from_snapshot(&snapshot(limit, soft, grants), Options::default())
        .unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

/// `(balance, usage, overage, limit)` of a metered decision, read back from its JSON strings.
fn figures(dec: &Decision) -> (Decimal, Decimal, Decimal, Decimal) {
    let v = serde_json::to_value(dec).expect("a decision serialises");
    let get = |k: &str| match &v[k] {
        Value::String(s) => Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{k} = {s:?}: {e}")),
        other => panic!("{k} is {other}, not a string, in {v}"),
    };
    (get("balance"), get("usage"), get("overage"), get("limit"))
}

/// One step of a run.
#[derive(Clone, Debug)]
enum Ask {
    /// Consume this many units.
    Units(Decimal),
    /// Consume exactly what the model says is left (1 when nothing is).
    Rest,
    /// Repeat the k-th (mod count) applied consume with its id.
    Repeat(usize),
}

/// Positive amounts: whole units or hundredths, from integers.
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![(1i64..=60).prop_map(Decimal::from), (1i64..=6_000).prop_map(|c| Decimal::new(c, 2))]
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![6 => amount().prop_map(Ask::Units), 1 => Just(Ask::Rest), 1 => (0usize..64).prop_map(Ask::Repeat)]
}

/// Steps: what to ask and how long after the previous step (at most 12 h, so 60 steps stay
/// inside January: 60 × 12 h = 30 days < 31 days).
fn steps() -> impl Strategy<Value = Vec<(Ask, i64)>> {
    prop::collection::vec((ask(), 0..=12 * HOUR_MS), 1..60)
}

/// Customer grants: amounts in hundredths (0 to 50.00) and priorities 0..=2.
fn grants() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((0i64..=5_000, 0i64..=2), 0..4)
}

/// Runs the steps against a hard limit, checking every decision; returns nothing, panics (via
/// `prop_assert`) on the first broken property. With `strict_flag`, the `allowed` flag of a
/// consume must also be exactly "balance before ≥ n" (SPEC §5).
fn run_hard(
    limit: i64,
    grant_cents: &[(i64, i64)],
    steps: &[(Ask, i64)],
    strict_flag: bool,
) -> Result<(), TestCaseError> {
    let mut e = engine(limit, false, grant_cents);
    // L + ΣG (grant amounts are given in hundredths).
    let total = grant_cents.iter().fold(Decimal::from(limit), |acc, (c, _)| acc + Decimal::new(*c, 2));
    let mut left = total; // the model's balance
    let mut used = Decimal::ZERO; // the model's usage
    let mut allowed_total = Decimal::ZERO; // Σ n over decisions that said allowed
    let mut applied: Vec<(String, Decision, Decimal)> = Vec::new(); // id, first decision, n
    let mut now = START_MS;
    for (i, (ask, dt)) in steps.iter().enumerate() {
        now += dt;
        let at = Timestamp(now);
        if let Ask::Repeat(k) = ask {
            if applied.is_empty() {
                continue;
            }
            let (id, first, n) = applied[k % applied.len()].clone();
            let again = e.consume("cus", "tokens", n, Some(&id), at).expect("consume");
            prop_assert_eq!(&again, &first, "step {}: a repeated id returns the first decision", i);
            let (bal, usage, _, _) = figures(&e.check("cus", "tokens", at).expect("check"));
            prop_assert_eq!((bal, usage), (left, used), "step {}: a repeated id changes nothing", i);
            continue;
        }
        let n = match ask {
            Ask::Units(n) => *n,
            _ if left > Decimal::ZERO => left,
            _ => Decimal::ONE,
        };
        let id = format!("req-{i}");
        let dec = e.consume("cus", "tokens", n, Some(&id), at).expect("consume");
        let (bal, usage, overage, lim) = figures(&dec);
        // Figures: balance + usage = limit, and the limit is L + ΣG all period long.
        prop_assert_eq!(bal + usage, lim, "step {}: balance {} + usage {} ≠ limit {}", i, bal, usage, lim);
        prop_assert_eq!(lim, total, "step {}", i);
        prop_assert_eq!(overage, Decimal::ZERO, "step {}: a hard limit has no overage", i);
        // All or nothing: exactly n applied when it fits, nothing otherwise.
        let fits = left >= n;
        let delta = usage - used;
        if fits {
            prop_assert_eq!(delta, n, "step {}: {} fits in {} but {} was applied", i, n, left, delta);
            left -= n;
            used += n;
            applied.push((id, dec.clone(), n));
        } else {
            prop_assert_eq!(
                delta,
                Decimal::ZERO,
                "step {}: {} does not fit in {} but {} was applied",
                i,
                n,
                left,
                delta
            );
            prop_assert!(!dec.allowed, "step {}: {} > balance {} was allowed", i, n, left);
            prop_assert_eq!(dec.reason, Reason::LimitReached, "step {}", i);
        }
        prop_assert_eq!(bal, left, "step {}: balance", i);
        if strict_flag {
            prop_assert_eq!(dec.allowed, fits, "step {}: n = {}, balance before = {}", i, n, left + delta);
            prop_assert_eq!(dec.reason, if fits { Reason::Ok } else { Reason::LimitReached }, "step {}", i);
        }
        if dec.allowed {
            allowed_total += n;
        }
        prop_assert!(allowed_total <= total, "allowed {} > L + ΣG = {}", allowed_total, total);
        prop_assert!(used <= total);
    }
    Ok(())
}

proptest! {
    // No regression files: a failure prints its minimal input instead.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hard_limit_never_allows_more_than_the_grants(limit in 0i64..=200, grant_cents in grants(), steps in steps()) {
        run_hard(limit, &grant_cents, &steps, false)?;
    }

    #[test]
    fn hard_limit_allowed_flag_is_balance_before_at_least_n(
        limit in 0i64..=200, grant_cents in grants(), steps in steps()
    ) {
        run_hard(limit, &grant_cents, &steps, true)?;
    }

    #[test]
    fn soft_limit_always_allows_and_counts_overage(
        limit in 0i64..=200, grant_cents in grants(), steps in prop::collection::vec((amount(), 0..=12 * HOUR_MS), 1..60)
    ) {
        let mut e = engine(limit, true, &grant_cents);
        let total = grant_cents.iter().fold(Decimal::from(limit), |acc, (c, _)| acc + Decimal::new(*c, 2));
        let mut used = Decimal::ZERO;
        let mut now = START_MS;
        for (i, (n, dt)) in steps.iter().enumerate() {
            now += dt;
            let dec = e.consume("cus", "tokens", *n, None, Timestamp(now)).expect("consume");
            prop_assert!(dec.allowed, "step {}: a soft limit allows", i);
            prop_assert_eq!(dec.reason, Reason::Ok);
            used += *n;
            let (bal, usage, overage, lim) = figures(&dec);
            // balance = max(0, L + ΣG − usage); overage = max(0, usage − (L + ΣG)).
            prop_assert_eq!(usage, used, "step {}", i);
            prop_assert_eq!(lim, total, "step {}", i);
            prop_assert_eq!(bal, (total - used).max(Decimal::ZERO), "step {}", i);
            prop_assert_eq!(overage, (used - total).max(Decimal::ZERO), "step {}", i);
            prop_assert_eq!(bal + usage, lim + overage, "step {}", i);
        }
    }
}
