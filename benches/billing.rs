//! Invoice close for 10,000 customers × 5 metrics (SPEC §11: ≤ 1 s natively).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails by panicking"
)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;

const CUSTOMERS: usize = 10_000;

fn catalog() -> Value {
    let metric = |id: &str, event: &str, agg: &str| json!({ "id": id, "productId": "p", "name": id, "eventType": event, "aggregation": agg, "valueProperty": "$.v" });
    let price = |id: &str, metric: &str, model: Value| json!({ "id": id, "metricId": metric, "paymentTerm": "in_arrears", "model": model });
    let tiers = json!([{ "upTo": "1000", "unitPrice": "0.01" }, { "upTo": "10000", "unitPrice": "0.008" }, { "upTo": null, "unitPrice": "0.005" }]);
    json!({
        "schemaVersion": 1,
        "products": [{ "id": "p", "name": "Bench" }],
        "features": [],
        "billableMetrics": [
            metric("m_calls", "api.call", "SUM"), metric("m_bytes", "api.call", "MAX"),
            metric("m_jobs", "job.run", "SUM"), metric("m_storage", "storage.level", "WEIGHTED_SUM"),
            metric("m_users", "user.seen", "SUM")
        ],
        "fees": [{ "id": "f_platform", "productId": "p", "name": "Platform" }],
        "plans": [{ "id": "plan", "productId": "p", "name": "Plan", "currency": "USD", "billingCadence": "P1M",
            "minimumCommitment": "50",
            "prices": [
                { "id": "fee", "feeId": "f_platform", "paymentTerm": "in_advance", "model": { "type": "flat", "amount": "20" } },
                price("p_calls", "m_calls", json!({ "type": "graduated", "tiers": tiers })),
                price("p_bytes", "m_bytes", json!({ "type": "volume", "tiers": tiers })),
                price("p_jobs", "m_jobs", json!({ "type": "package", "packageSize": "10", "packagePrice": "1.5" })),
                price("p_storage", "m_storage", json!({ "type": "per_unit", "unitPrice": "0.023" })),
                price("p_users", "m_users", json!({ "type": "per_unit", "unitPrice": "0.4" }))
            ] }]
    })
}

fn engine() -> Engine {
    let customers: Vec<Value> = (0..CUSTOMERS)
        .map(|i| {
            json!({ "id": format!("c{i}"), "subscriptions": [{ "id": format!("s{i}"), "planId": "plan",
                    "startedAt": "2026-11-01T00:00:00Z", "percentageDiscount": "0.05" }] })
        })
        .collect();
    let mut e =
        Engine::from_snapshot(&json!({ "catalog": catalog(), "customers": customers }), Options::default()).unwrap();
    let now = Timestamp::parse("2026-11-28T00:00:00Z").unwrap();
    for i in 0..CUSTOMERS {
        for (j, (kind, day)) in
            [("api.call", 3), ("api.call", 9), ("job.run", 12), ("storage.level", 15), ("user.seen", 20)]
                .into_iter()
                .enumerate()
        {
            let event = json!({ "id": format!("{i}-{j}"), "source": "bench", "type": kind, "subject": format!("c{i}"),
                                "time": format!("2026-11-{day:02}T10:00:00Z"), "data": { "v": 100 + (i * 7 + j * 13) % 900 } });
            e.ingest(&event, now).unwrap();
        }
    }
    e
}

fn close(c: &mut Criterion) {
    let base = engine();
    let at = Timestamp::parse("2026-11-30T23:00:00Z").unwrap();
    let ids: Vec<String> = (0..CUSTOMERS).map(|i| format!("c{i}")).collect();
    let mut group = c.benchmark_group("invoice");
    group.sample_size(10);
    group.bench_function("close_10k_customers_x_5_metrics", |b| {
        b.iter_batched(
            || base.clone(),
            |mut e| {
                for id in &ids {
                    e.close_invoice(id, at, Timestamp(i64::MAX)).unwrap();
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, close);
criterion_main!(benches);
