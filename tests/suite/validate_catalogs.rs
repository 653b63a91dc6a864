//! Catalog validation (SPEC §3, §3.4) from the outside: the two example catalogs are valid, and
//! each broken copy of them (one thing changed) is rejected with the expected JSON path and code,
//! without a panic, by both `validate` and `Catalog::from_json`.

use std::panic::catch_unwind;

use serde_json::{json, Value};
use tollgate::{validate, Catalog, Code, Error};

const LLM: &str = include_str!("../../examples/llm-provider.catalog.json");
const ANALYTICS: &str = include_str!("../../examples/cloud-analytics.catalog.json");

// ---------------------------------------------------------------------------------------------
// Helpers: mutate a parsed fixture in one place, then check what validation says about it.

fn doc(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// The value at `pointer`, which must exist (so that a mistyped pointer fails loudly instead of
/// leaving the fixture unchanged).
fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
    v.pointer_mut(pointer).unwrap_or_else(|| panic!("the fixture has nothing at {pointer:?}"))
}

/// Replaces the existing value at `pointer`.
fn set(v: &mut Value, pointer: &str, new: Value) {
    *at(v, pointer) = new;
}

/// Adds `key` (which must be absent) to the object at `object`.
fn insert(v: &mut Value, object: &str, key: &str, new: Value) {
    let map = at(v, object).as_object_mut().unwrap_or_else(|| panic!("{object:?} is not an object"));
    assert!(map.insert(key.to_owned(), new).is_none(), "{object:?} already has {key:?}");
}

/// Removes `key` (which must be present) from the object at `object`.
fn remove(v: &mut Value, object: &str, key: &str) -> Value {
    let map = at(v, object).as_object_mut().unwrap_or_else(|| panic!("{object:?} is not an object"));
    map.remove(key).unwrap_or_else(|| panic!("{object:?} has no {key:?}"))
}

/// Renames `from` to `to` in the object at `object`, keeping the value.
fn rename(v: &mut Value, object: &str, from: &str, to: &str) {
    let value = remove(v, object, from);
    insert(v, object, to, value);
}

/// Appends `item` to the array at `array`.
fn push(v: &mut Value, array: &str, item: Value) {
    at(v, array).as_array_mut().unwrap_or_else(|| panic!("{array:?} is not an array")).push(item);
}

fn show(problems: &[Error]) -> String {
    problems.iter().map(|e| format!("\n  {}: {}", e.path, e.code.as_str())).collect()
}

fn pairs(problems: &[Error]) -> Vec<(String, Code)> {
    let mut out: Vec<(String, Code)> = problems.iter().map(|e| (e.path.clone(), e.code)).collect();
    out.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    out
}

/// Every problem `validate` reports for `text`; a panic fails the test with a clear message.
fn problems_of(text: &str) -> Vec<Error> {
    catch_unwind(|| validate(text)).unwrap_or_else(|_| panic!("validate panicked"))
}

/// Asserts that `text` (the JSON text of `broken`, when it is JSON) is rejected by `validate` and
/// by `Catalog::from_json` with a problem at `path` with `code`; returns every problem.
fn assert_text_rejected(text: &str, broken: Option<&Value>, path: &str, code: Code) -> Vec<Error> {
    let problems = problems_of(text);
    assert!(
        problems.iter().any(|e| e.path == path && e.code == code),
        "expected {path}: {} among the problems:{}",
        code.as_str(),
        show(&problems)
    );
    for e in &problems {
        assert!(!e.message.trim().is_empty(), "{}: {} has no message", e.path, e.code.as_str());
        // Every path points into the broken input: at the value itself or, for a missing
        // field, at the object that lacks it.
        if let Some(doc) = broken {
            let parent = e.path.rsplit_once('/').map_or("", |(p, _)| p);
            assert!(
                doc.pointer(&e.path).is_some() || doc.pointer(parent).is_some(),
                "{}: {} points outside the input",
                e.path,
                e.code.as_str()
            );
        }
    }
    let loaded = catch_unwind(|| Catalog::from_json(text)).unwrap_or_else(|_| panic!("Catalog::from_json panicked"));
    match loaded {
        Ok(_) => panic!("Catalog::from_json accepted a catalog with {path}: {}", code.as_str()),
        Err(errors) => assert_eq!(pairs(&errors), pairs(&problems), "from_json and validate disagree"),
    }
    problems
}

/// Parses `base`, applies `mutate`, and asserts the result is rejected with `path` + `code`.
fn assert_rejected(base: &str, mutate: impl FnOnce(&mut Value), path: &str, code: Code) -> Vec<Error> {
    let mut broken = doc(base);
    mutate(&mut broken);
    assert_ne!(broken, doc(base), "the mutation changed nothing");
    let text = serde_json::to_string_pretty(&broken).expect("serialises");
    assert_text_rejected(&text, Some(&broken), path, code)
}

/// Parses `base`, applies `mutate`, and asserts the result is still a valid catalog.
fn assert_still_valid(base: &str, mutate: impl FnOnce(&mut Value)) {
    let mut changed = doc(base);
    mutate(&mut changed);
    let text = serde_json::to_string(&changed).expect("serialises");
    let problems = problems_of(&text);
    assert!(problems.is_empty(), "expected a valid catalog, got:{}", show(&problems));
    assert!(Catalog::from_json(&text).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The fixtures are valid.

#[test]
fn llm_provider_fixture_is_valid() {
    let problems = problems_of(LLM);
    assert!(problems.is_empty(), "llm-provider.catalog.json:{}", show(&problems));
    assert!(Catalog::from_json(LLM).is_ok());
}

#[test]
fn cloud_analytics_fixture_is_valid() {
    let problems = problems_of(ANALYTICS);
    assert!(problems.is_empty(), "cloud-analytics.catalog.json:{}", show(&problems));
    assert!(Catalog::from_json(ANALYTICS).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Unknown references.

#[test]
fn unknown_product_of_a_feature() {
    assert_rejected(
        LLM,
        |c| set(c, "/features/0/productId", json!("prod_nope")),
        "/features/0/productId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_product_of_a_metric() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/billableMetrics/1/productId", json!("prod_nope")),
        "/billableMetrics/1/productId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_product_of_a_fee() {
    assert_rejected(
        LLM,
        |c| set(c, "/fees/0/productId", json!("prod_nope")),
        "/fees/0/productId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_product_of_a_plan() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/productId", json!("prod_nope")),
        "/plans/1/productId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_metric_of_a_price() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/1/metricId", json!("bm_outptu")),
        "/plans/0/prices/1/metricId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_fee_of_a_price() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/0/feeId", json!("fee_nope")),
        "/plans/1/prices/0/feeId",
        Code::UnknownReference,
    );
}

#[test]
fn unknown_feature_of_a_price_feature_link() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/1/prices/2/feature/featureId", json!("feat_nope")),
        "/plans/1/prices/2/feature/featureId",
        Code::UnknownReference,
    );
}

#[test]
fn dynamic_price_following_a_market_rate_not_in_rates() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/0/prices/0/model", json!({ "type": "dynamic", "source": { "rate": "gpu-spot" } })),
        "/plans/0/prices/0/model/source/rate",
        Code::UnknownReference,
    );
}

#[test]
fn dynamic_price_following_a_market_rate_in_rates_is_valid() {
    assert_still_valid(ANALYTICS, |c| {
        set(c, "/rates", json!({ "gpu-spot": "3.50" }));
        set(c, "/plans/0/prices/0/model", json!({ "type": "dynamic", "source": { "rate": "gpu-spot" } }));
    });
}

#[test]
fn unknown_market_rate_inside_a_matrix_cell() {
    assert_rejected(
        LLM,
        |c| {
            let cell = json!({ "type": "dynamic", "source": { "rate": "gpu-spot" } });
            set(
                c,
                "/plans/1/prices/0/model",
                json!({ "type": "matrix", "dimension": "model", "cells": { "small": cell } }),
            );
        },
        "/plans/1/prices/0/model/cells/small/source/rate",
        Code::UnknownReference,
    );
}

// ---------------------------------------------------------------------------------------------
// Duplicate ids and keys.

#[test]
fn duplicate_product_id() {
    assert_rejected(
        LLM,
        |c| push(c, "/products", json!({ "id": "prod_nle", "name": "Another engine" })),
        "/products/1/id",
        Code::DuplicateId,
    );
}

#[test]
fn duplicate_feature_id() {
    assert_rejected(
        ANALYTICS,
        |c| {
            push(
                c,
                "/features",
                json!({ "id": "feat_compute", "productId": "prod_ca", "key": "sso", "type": "boolean" }),
            )
        },
        "/features/2/id",
        Code::DuplicateId,
    );
}

#[test]
fn duplicate_metric_id() {
    assert_rejected(
        ANALYTICS,
        |c| {
            let copy = at(c, "/billableMetrics/0").clone();
            push(c, "/billableMetrics", copy);
        },
        "/billableMetrics/4/id",
        Code::DuplicateId,
    );
}

#[test]
fn duplicate_plan_id() {
    assert_rejected(LLM, |c| set(c, "/plans/1/id", json!("plan_developer")), "/plans/1/id", Code::DuplicateId);
}

#[test]
fn duplicate_price_id_across_plans() {
    // Price ids are unique across the whole catalog, not only within a plan.
    assert_rejected(
        LLM,
        |c| set(c, "/plans/1/prices/0/id", json!("price_dev_input")),
        "/plans/1/prices/0/id",
        Code::DuplicateId,
    );
}

#[test]
fn duplicate_feature_key_within_a_product() {
    assert_rejected(LLM, |c| set(c, "/features/3/key", json!("priority-queue")), "/features/3/key", Code::DuplicateKey);
}

#[test]
fn same_feature_key_in_two_products_is_valid() {
    assert_still_valid(LLM, |c| {
        push(c, "/products", json!({ "id": "prod_other", "name": "Other" }));
        push(c, "/features", json!({ "id": "feat_other", "productId": "prod_other", "key": "sla", "type": "boolean" }));
    });
}

#[test]
fn feature_key_not_kebab_case() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/features/1/key", json!("Max_Connections")),
        "/features/1/key",
        Code::InvalidFeatureKey,
    );
}

#[test]
fn feature_key_with_a_double_dash() {
    assert_rejected(
        LLM,
        |c| set(c, "/features/1/key", json!("priority--queue")),
        "/features/1/key",
        Code::InvalidFeatureKey,
    );
}

// ---------------------------------------------------------------------------------------------
// Tiers.

#[test]
fn tiers_not_ascending() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/0/prices/2/model/tiers/1/upTo", json!("100")),
        "/plans/0/prices/2/model/tiers/1/upTo",
        Code::TiersNotAscending,
    );
}

#[test]
fn last_tier_bounded() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/0/prices/3/model/tiers/2/upTo", json!("1000")),
        "/plans/0/prices/3/model/tiers/2/upTo",
        Code::LastTierBounded,
    );
}

#[test]
fn unbounded_tier_that_is_not_last() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/2/prices/1/model/tiers/0/upTo", Value::Null),
        "/plans/2/prices/1/model/tiers/0/upTo",
        Code::UnboundedTierNotLast,
    );
}

#[test]
fn empty_tiers() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/2/prices/2/model/tiers", json!([])),
        "/plans/2/prices/2/model/tiers",
        Code::EmptyTiers,
    );
}

// ---------------------------------------------------------------------------------------------
// Negative prices.

#[test]
fn negative_unit_price() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/1/model/unitPrice", json!("-0.000006")),
        "/plans/0/prices/1/model/unitPrice",
        Code::NegativePrice,
    );
}

#[test]
fn negative_unit_price_of_a_tier() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/3/model/tiers/1/unitPrice", json!("-0.09")),
        "/plans/1/prices/3/model/tiers/1/unitPrice",
        Code::NegativePrice,
    );
}

#[test]
fn negative_flat_price_of_a_tier() {
    assert_rejected(
        ANALYTICS,
        |c| insert(c, "/plans/0/prices/3/model/tiers/0", "flatPrice", json!("-5")),
        "/plans/0/prices/3/model/tiers/0/flatPrice",
        Code::NegativePrice,
    );
}

#[test]
fn negative_package_price() {
    assert_rejected(
        LLM,
        |c| {
            let model = json!({ "type": "package", "packageSize": "1000000", "packagePrice": "-1" });
            set(c, "/plans/0/prices/1/model", model);
        },
        "/plans/0/prices/1/model/packagePrice",
        Code::NegativePrice,
    );
}

#[test]
fn negative_price_in_a_matrix_cell_with_an_escaped_key() {
    // RFC 6901: "/" in a key is written "~1" and "~" is written "~0".
    assert_rejected(
        LLM,
        |c| {
            let cells = json!({ "gpt/4~mini": { "type": "per_unit", "unitPrice": "-1" } });
            set(c, "/plans/1/prices/0/model", json!({ "type": "matrix", "dimension": "model", "cells": cells }));
        },
        "/plans/1/prices/0/model/cells/gpt~14~0mini/unitPrice",
        Code::NegativePrice,
    );
}

#[test]
fn negative_market_rate() {
    assert_rejected(LLM, |c| set(c, "/rates", json!({ "gpu-spot": "-3.50" })), "/rates/gpu-spot", Code::NegativePrice);
}

#[test]
fn negative_minimum_commitment() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/2/minimumCommitment", json!("-12000")),
        "/plans/2/minimumCommitment",
        Code::NegativePrice,
    );
}

#[test]
fn package_size_zero() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/1/model", json!({ "type": "package", "packageSize": "0", "packagePrice": "2" })),
        "/plans/0/prices/1/model/packageSize",
        Code::InvalidPackageSize,
    );
}

// ---------------------------------------------------------------------------------------------
// Currency, durations, timestamps.

#[test]
fn unknown_currency() {
    assert_rejected(LLM, |c| set(c, "/plans/0/currency", json!("USX")), "/plans/0/currency", Code::UnknownCurrency);
}

#[test]
fn plan_billing_cadence_not_allowed() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/2/billingCadence", json!("P2M")),
        "/plans/2/billingCadence",
        Code::InvalidDuration,
    );
}

#[test]
fn price_billing_cadence_not_a_duration() {
    assert_rejected(
        ANALYTICS,
        |c| insert(c, "/plans/1/prices/0", "billingCadence", json!("monthly")),
        "/plans/1/prices/0/billingCadence",
        Code::InvalidDuration,
    );
}

#[test]
fn usage_period_interval_of_zero() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/0/feature/entitlement/usagePeriod/interval", json!("P0M")),
        "/plans/0/prices/0/feature/entitlement/usagePeriod/interval",
        Code::InvalidDuration,
    );
}

#[test]
fn usage_period_interval_not_iso_8601() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/1/feature/entitlement/usagePeriod/interval", json!("1 month")),
        "/plans/1/prices/1/feature/entitlement/usagePeriod/interval",
        Code::InvalidDuration,
    );
}

#[test]
fn usage_period_anchor_not_a_timestamp() {
    assert_rejected(
        LLM,
        |c| insert(c, "/plans/0/prices/0/feature/entitlement/usagePeriod", "anchor", json!("2026-02-30T00:00:00Z")),
        "/plans/0/prices/0/feature/entitlement/usagePeriod/anchor",
        Code::InvalidTimestamp,
    );
}

#[test]
fn usage_period_anchor_without_time_zone() {
    assert_rejected(
        LLM,
        |c| insert(c, "/plans/0/prices/0/feature/entitlement/usagePeriod", "anchor", json!("2026-01-01T00:00:00")),
        "/plans/0/prices/0/feature/entitlement/usagePeriod/anchor",
        Code::InvalidTimestamp,
    );
}

#[test]
fn usage_period_anchor_in_utc_is_valid() {
    assert_still_valid(LLM, |c| {
        insert(c, "/plans/0/prices/0/feature/entitlement/usagePeriod", "anchor", json!("2026-01-01T00:00:00Z"));
    });
}

// ---------------------------------------------------------------------------------------------
// Billable metrics.

#[test]
fn value_property_missing_for_sum() {
    assert_rejected(
        LLM,
        |c| {
            remove(c, "/billableMetrics/2", "valueProperty");
        },
        "/billableMetrics/2/valueProperty",
        Code::MissingValueProperty,
    );
}

#[test]
fn value_property_missing_for_weighted_sum() {
    assert_rejected(
        ANALYTICS,
        |c| {
            remove(c, "/billableMetrics/1", "valueProperty");
        },
        "/billableMetrics/1/valueProperty",
        Code::MissingValueProperty,
    );
}

#[test]
fn count_without_value_property_is_valid() {
    assert_still_valid(LLM, |c| {
        set(c, "/billableMetrics/2/aggregation", json!("COUNT"));
        remove(c, "/billableMetrics/2", "valueProperty");
    });
}

#[test]
fn value_property_not_a_dotted_json_path() {
    assert_rejected(
        LLM,
        |c| set(c, "/billableMetrics/0/valueProperty", json!("input_tokens")),
        "/billableMetrics/0/valueProperty",
        Code::InvalidJsonPath,
    );
}

#[test]
fn group_by_path_with_brackets() {
    assert_rejected(
        LLM,
        |c| set(c, "/billableMetrics/1/groupBy/model", json!("$.models[0]")),
        "/billableMetrics/1/groupBy/model",
        Code::InvalidJsonPath,
    );
}

#[test]
fn unknown_aggregation() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/billableMetrics/3/aggregation", json!("PEAK")),
        "/billableMetrics/3/aggregation",
        Code::InvalidValue,
    );
}

// ---------------------------------------------------------------------------------------------
// Feature links and entitlements.

#[test]
fn metered_feature_linked_from_a_fee_price() {
    assert_rejected(
        LLM,
        |c| {
            let link = json!({ "featureId": "feat_input_tokens",
                               "entitlement": { "type": "metered", "issueAfterReset": "1000" } });
            set(c, "/plans/2/prices/0/feature", link);
        },
        "/plans/2/prices/0/feature/featureId",
        Code::MeteredFeatureWithoutMetric,
    );
}

#[test]
fn entitlement_type_differs_from_a_boolean_feature() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/1/prices/2/feature/entitlement", json!({ "type": "metered", "issueAfterReset": "10" })),
        "/plans/1/prices/2/feature/entitlement/type",
        Code::EntitlementTypeMismatch,
    );
}

#[test]
fn entitlement_type_differs_from_a_static_feature() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/0/prices/3/feature/entitlement", json!({ "type": "boolean" })),
        "/plans/0/prices/3/feature/entitlement/type",
        Code::EntitlementTypeMismatch,
    );
}

#[test]
fn reset_min_rollover_above_max() {
    assert_rejected(
        ANALYTICS,
        |c| {
            insert(c, "/plans/1/prices/1/feature/entitlement", "resetMaxRollover", json!("100"));
            insert(c, "/plans/1/prices/1/feature/entitlement", "resetMinRollover", json!("500"));
        },
        "/plans/1/prices/1/feature/entitlement/resetMinRollover",
        Code::MinGreaterThanMax,
    );
}

#[test]
fn grant_discount_without_a_metered_feature_in_the_plan() {
    // bm_input is linked to a metered feature by the Developer plan, not by the Business plan.
    assert_rejected(
        LLM,
        |c| insert(c, "/plans/1/prices/0", "grantDiscount", json!(true)),
        "/plans/1/prices/0/grantDiscount",
        Code::GrantDiscountWithoutFeature,
    );
}

// ---------------------------------------------------------------------------------------------
// Matrix.

#[test]
fn matrix_dimension_not_a_group_by_of_its_metric() {
    assert_rejected(
        LLM,
        |c| {
            let cells = json!({ "small": { "type": "per_unit", "unitPrice": "0.000001" } });
            set(c, "/plans/1/prices/0/model", json!({ "type": "matrix", "dimension": "region", "cells": cells }));
        },
        "/plans/1/prices/0/model/dimension",
        Code::UnknownDimension,
    );
}

#[test]
fn matrix_on_a_metric_without_group_by() {
    assert_rejected(
        ANALYTICS,
        |c| {
            let cells = json!({ "eu": { "type": "per_unit", "unitPrice": "0.06" } });
            set(c, "/plans/2/prices/2/model", json!({ "type": "matrix", "dimension": "region", "cells": cells }));
        },
        "/plans/2/prices/2/model/dimension",
        Code::UnknownDimension,
    );
}

#[test]
fn matrix_dimension_that_is_a_group_by_is_valid() {
    assert_still_valid(LLM, |c| {
        let cells = json!({ "small": { "type": "per_unit", "unitPrice": "0.000001" } });
        let default = json!({ "type": "per_unit", "unitPrice": "0.000002" });
        set(
            c,
            "/plans/1/prices/0/model",
            json!({ "type": "matrix", "dimension": "model", "cells": cells, "default": default }),
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Prices: target, payment term, quantities, per-event bounds.

#[test]
fn price_with_both_metric_and_fee() {
    assert_rejected(
        LLM,
        |c| insert(c, "/plans/1/prices/0", "feeId", json!("fee_enterprise_platform")),
        "/plans/1/prices/0",
        Code::MetricOrFeeRequired,
    );
}

#[test]
fn price_with_neither_metric_nor_fee() {
    assert_rejected(
        ANALYTICS,
        |c| {
            remove(c, "/plans/0/prices/0", "metricId");
        },
        "/plans/0/prices/0",
        Code::MetricOrFeeRequired,
    );
}

#[test]
fn in_advance_on_a_usage_price() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/0/paymentTerm", json!("in_advance")),
        "/plans/0/prices/0/paymentTerm",
        Code::NotAllowedHere,
    );
}

#[test]
fn instant_on_a_fee_price() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/0/paymentTerm", json!("instant")),
        "/plans/1/prices/0/paymentTerm",
        Code::NotAllowedHere,
    );
}

#[test]
fn minimum_quantity_above_maximum_quantity() {
    assert_rejected(
        LLM,
        |c| {
            insert(c, "/plans/0/prices/1", "minimumQuantity", json!("1000"));
            insert(c, "/plans/0/prices/1", "maximumQuantity", json!(10));
        },
        "/plans/0/prices/1/minimumQuantity",
        Code::MinGreaterThanMax,
    );
}

#[test]
fn percentage_min_per_event_above_max_per_event() {
    assert_rejected(
        LLM,
        |c| {
            let model = json!({ "type": "percentage", "rate": "0.029", "minPerEvent": "5", "maxPerEvent": "1" });
            set(c, "/plans/1/prices/2/model", model);
        },
        "/plans/1/prices/2/model/minPerEvent",
        Code::MinGreaterThanMax,
    );
}

// ---------------------------------------------------------------------------------------------
// Shape: JSON, types, fields, versions, decimals.

#[test]
fn invalid_json_text() {
    let truncated = LLM.trim_end().strip_suffix('}').expect("the fixture ends with }");
    let problems = assert_text_rejected(truncated, None, "", Code::InvalidJson);
    assert_eq!(problems.len(), 1, "{}", show(&problems));
}

#[test]
fn typo_in_a_model_field() {
    let problems = assert_rejected(
        LLM,
        |c| rename(c, "/plans/0/prices/1/model", "unitPrice", "unitprice"),
        "/plans/0/prices/1/model/unitprice",
        Code::UnknownField,
    );
    // The real field is then missing too.
    assert!(
        problems.iter().any(|e| e.path == "/plans/0/prices/1/model/unitPrice" && e.code == Code::MissingField),
        "{}",
        show(&problems)
    );
}

#[test]
fn unknown_top_level_field() {
    assert_rejected(
        ANALYTICS,
        |c| {
            let plans = remove(c, "", "plans");
            insert(c, "", "plan", plans);
        },
        "/plan",
        Code::UnknownField,
    );
}

#[test]
fn prices_not_an_array() {
    assert_rejected(LLM, |c| set(c, "/plans/0/prices", json!({})), "/plans/0/prices", Code::InvalidType);
}

#[test]
fn soft_limit_flag_as_a_string() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/1/feature/entitlement/isSoftLimit", json!("true")),
        "/plans/1/prices/1/feature/entitlement/isSoftLimit",
        Code::InvalidType,
    );
}

#[test]
fn plan_without_currency() {
    assert_rejected(
        LLM,
        |c| {
            remove(c, "/plans/0", "currency");
        },
        "/plans/0/currency",
        Code::MissingField,
    );
}

#[test]
fn metric_without_event_type() {
    assert_rejected(
        ANALYTICS,
        |c| {
            remove(c, "/billableMetrics/2", "eventType");
        },
        "/billableMetrics/2/eventType",
        Code::MissingField,
    );
}

#[test]
fn unsupported_schema_version() {
    assert_rejected(LLM, |c| set(c, "/schemaVersion", json!(2)), "/schemaVersion", Code::UnsupportedSchemaVersion);
}

#[test]
fn unit_price_not_a_decimal() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/0/prices/1/model/unitPrice", json!("1,50")),
        "/plans/0/prices/1/model/unitPrice",
        Code::InvalidDecimal,
    );
}

#[test]
fn minimum_commitment_not_a_decimal() {
    assert_rejected(
        LLM,
        |c| set(c, "/plans/2/minimumCommitment", json!("ten thousand")),
        "/plans/2/minimumCommitment",
        Code::InvalidDecimal,
    );
}

#[test]
fn tier_bound_not_a_decimal() {
    assert_rejected(
        ANALYTICS,
        |c| set(c, "/plans/1/prices/3/model/tiers/0/upTo", json!("1e")),
        "/plans/1/prices/3/model/tiers/0/upTo",
        Code::InvalidDecimal,
    );
}

// ---------------------------------------------------------------------------------------------
// Every problem, not just the first (SPEC §3.4).

#[test]
fn several_independent_shape_problems_are_all_reported() {
    let mut c = doc(LLM);
    insert(&mut c, "/products/0", "colour", json!("blue"));
    set(&mut c, "/features/1/key", json!("Priority Queue"));
    remove(&mut c, "/billableMetrics/2", "valueProperty");
    set(&mut c, "/plans/0/currency", json!("USX"));
    set(&mut c, "/plans/1/prices/0/model/unitPrice", json!("-0.000001"));
    set(&mut c, "/plans/2/prices/1/model/tiers/1/upTo", json!("2000000000"));
    let text = serde_json::to_string(&c).unwrap();
    let problems = problems_of(&text);
    let expected = [
        ("/products/0/colour", Code::UnknownField),
        ("/features/1/key", Code::InvalidFeatureKey),
        ("/billableMetrics/2/valueProperty", Code::MissingValueProperty),
        ("/plans/0/currency", Code::UnknownCurrency),
        ("/plans/1/prices/0/model/unitPrice", Code::NegativePrice),
        ("/plans/2/prices/1/model/tiers/1/upTo", Code::LastTierBounded),
    ];
    let expected: Vec<Error> = expected.iter().map(|(p, code)| Error::new(*code, *p, "")).collect();
    assert_eq!(pairs(&problems), pairs(&expected), "got:{}", show(&problems));
    assert!(Catalog::from_json(&text).is_err());
}

#[test]
fn several_independent_reference_problems_are_all_reported() {
    let mut c = doc(ANALYTICS);
    set(&mut c, "/features/1/productId", json!("prod_nope"));
    set(&mut c, "/plans/2/id", json!("plan_on_demand"));
    set(&mut c, "/plans/0/prices/1/metricId", json!("bm_nope"));
    set(&mut c, "/plans/0/prices/3/feature/entitlement", json!({ "type": "boolean" }));
    let cells = json!({ "eu": { "type": "per_unit", "unitPrice": "0.06" } });
    set(&mut c, "/plans/2/prices/2/model", json!({ "type": "matrix", "dimension": "region", "cells": cells }));
    let text = serde_json::to_string(&c).unwrap();
    let problems = problems_of(&text);
    let expected = [
        ("/features/1/productId", Code::UnknownReference),
        ("/plans/2/id", Code::DuplicateId),
        ("/plans/0/prices/1/metricId", Code::UnknownReference),
        ("/plans/0/prices/3/feature/entitlement/type", Code::EntitlementTypeMismatch),
        ("/plans/2/prices/2/model/dimension", Code::UnknownDimension),
    ];
    let expected: Vec<Error> = expected.iter().map(|(p, code)| Error::new(*code, *p, "")).collect();
    assert_eq!(pairs(&problems), pairs(&expected), "got:{}", show(&problems));
}

#[test]
fn shape_and_reference_problems_are_reported_together() {
    let mut c = doc(LLM);
    set(&mut c, "/plans/0/currency", json!("USX"));
    set(&mut c, "/plans/1/prices/0/metricId", json!("bm_nope"));
    let text = serde_json::to_string(&c).unwrap();
    let problems = problems_of(&text);
    for (path, code) in
        [("/plans/0/currency", Code::UnknownCurrency), ("/plans/1/prices/0/metricId", Code::UnknownReference)]
    {
        assert!(
            problems.iter().any(|e| e.path == path && e.code == code),
            "expected {path}: {} among:{}",
            code.as_str(),
            show(&problems)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Paths that point at the wrong place, and problems reported for input that is not wrong.

#[test]
fn nested_matrix_in_default_is_reported_at_default() {
    let problems = assert_rejected(
        LLM,
        |c| {
            let inner = json!({ "type": "matrix", "dimension": "model", "cells": {} });
            let outer = json!({ "type": "matrix", "dimension": "model", "cells": {}, "default": inner });
            set(c, "/plans/1/prices/0/model", outer);
        },
        "/plans/1/prices/0/model/default",
        Code::NotAllowedHere,
    );
    assert!(!problems.iter().any(|e| e.path == "/plans/1/prices/0/model/cells"), "{}", show(&problems));
}

#[test]
fn matrix_cells_of_the_wrong_type_is_only_a_type_error() {
    let problems = assert_rejected(
        LLM,
        |c| set(c, "/plans/1/prices/0/model", json!({ "type": "matrix", "dimension": "model", "cells": 5 })),
        "/plans/1/prices/0/model/cells",
        Code::InvalidType,
    );
    assert!(!problems.iter().any(|e| e.code == Code::MissingField), "{}", show(&problems));
}

#[test]
fn dynamic_source_with_a_bad_path_is_only_a_path_error() {
    let problems = assert_rejected(
        LLM,
        |c| {
            let model = json!({ "type": "dynamic", "source": { "eventProperty": "unit_price" } });
            set(c, "/plans/1/prices/2/model", model);
        },
        "/plans/1/prices/2/model/source/eventProperty",
        Code::InvalidJsonPath,
    );
    assert_eq!(problems.len(), 1, "{}", show(&problems));
}

// ---------------------------------------------------------------------------------------------
// How an error reads.

#[test]
fn error_display_is_path_code_message() {
    let mut c = doc(LLM);
    set(&mut c, "/plans/2/prices/1/model/tiers/0/upTo", json!("-1"));
    let problems = problems_of(&serde_json::to_string(&c).unwrap());
    let e = problems
        .iter()
        .find(|e| e.code == Code::TiersNotAscending)
        .unwrap_or_else(|| panic!("no tiers_not_ascending in:{}", show(&problems)));
    assert_eq!(e.path, "/plans/2/prices/1/model/tiers/0/upTo");
    assert_eq!(e.to_string(), format!("{}: {} ({})", e.path, e.code.as_str(), e.message));
    assert!(e.to_string().starts_with("/plans/2/prices/1/model/tiers/0/upTo: tiers_not_ascending ("));

    let made = Error::new(Code::TiersNotAscending, "/plans/0/prices/2/model/tiers/1/upTo", "upTo must grow");
    assert_eq!(made.to_string(), "/plans/0/prices/2/model/tiers/1/upTo: tiers_not_ascending (upTo must grow)");
    assert_eq!(Code::TiersNotAscending.to_string(), "tiers_not_ascending");
}

#[test]
fn error_display_of_the_whole_input() {
    // docs/errors.md: the empty pointer "" (the input as a whole) is printed as "/".
    let problems = problems_of("{ not json");
    assert_eq!(pairs(&problems), vec![(String::new(), Code::InvalidJson)]);
    let e = &problems[0];
    assert_eq!(e.to_string(), format!("/: invalid_json ({})", e.message));
}

#[test]
fn one_time_cadence_on_a_usage_price() {
    assert_rejected(
        LLM,
        |c| insert(c, "/plans/0/prices/0", "billingCadence", json!("P0D")),
        "/plans/0/prices/0/billingCadence",
        Code::NotAllowedHere,
    );
}

#[test]
fn empty_ids() {
    assert_rejected(LLM, |c| set(c, "/features/0/id", json!("")), "/features/0/id", Code::InvalidValue);
    assert_rejected(LLM, |c| set(c, "/plans/1/prices/0/id", json!("")), "/plans/1/prices/0/id", Code::InvalidValue);
}

#[test]
fn a_broken_feature_does_not_make_its_references_unknown() {
    // The feature fails to decode (bad type), so a price linking it must not add
    // `unknown_reference` on top of the feature's own problem.
    let problems =
        assert_rejected(LLM, |c| set(c, "/features/0/type", json!("gauge")), "/features/0/type", Code::InvalidValue);
    assert!(!problems.iter().any(|p| p.code == Code::UnknownReference), "{}", show(&problems));
}
