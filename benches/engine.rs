//! Native hot paths (SPEC §11: ≤ 100 ns): `check` and `consume` with string ids, on the
//! LLM-provider example snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails by panicking"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::Decimal;

fn engine() -> Engine {
    let snapshot: serde_json::Value = serde_json::from_str(include_str!("../examples/llm-snapshot.json")).unwrap();
    let mut e = Engine::from_snapshot(&snapshot, Options::default()).unwrap();
    // A hard-limited balance (a grant only) large enough never to run out during the run, so the
    // allowed path is what is measured.
    let big = serde_json::json!({
        "id": "cus_big",
        "subscriptions": [{ "id": "sub_big", "planId": "plan_business", "startedAt": "2026-11-01T00:00:00Z" }],
        "grants": [{ "id": "grt_big", "featureKey": "input-tokens", "amount": "1000000000000" }]
    });
    e.upsert_customer(&big).unwrap();
    e
}

fn hot_paths(c: &mut Criterion) {
    let now = Timestamp::parse("2026-11-28T10:00:00Z").unwrap();
    let mut e = engine();
    c.bench_function("check/boolean", |b| {
        b.iter(|| e.check(black_box("cus_acme"), black_box("priority-queue"), now).unwrap())
    });
    c.bench_function("check/metered", |b| {
        b.iter(|| e.check(black_box("cus_dev"), black_box("input-tokens"), now).unwrap())
    });
    c.bench_function("check/unknown_customer", |b| {
        b.iter(|| e.check(black_box("cus_nobody"), black_box("input-tokens"), now).unwrap())
    });
    let one = Decimal::ONE;
    c.bench_function("consume/metered_soft", |b| {
        b.iter(|| e.consume(black_box("cus_dev"), black_box("input-tokens"), one, None, now).unwrap())
    });
    c.bench_function("consume/metered_hard", |b| {
        b.iter(|| e.consume(black_box("cus_big"), black_box("input-tokens"), one, None, now).unwrap())
    });
    let mut drained = engine();
    drained.consume("cus_trial", "input-tokens", Decimal::from(1_000), None, now).unwrap();
    c.bench_function("consume/denied_at_limit", |b| {
        b.iter(|| drained.consume(black_box("cus_trial"), black_box("input-tokens"), one, None, now).unwrap())
    });
}

fn handles(c: &mut Criterion) {
    let now = Timestamp::parse("2026-11-28T10:00:00Z").unwrap();
    let mut e = engine();
    let metered = e.handle("cus_dev", "input-tokens").unwrap();
    let boolean = e.handle("cus_acme", "priority-queue").unwrap();
    let hard = e.handle("cus_big", "input-tokens").unwrap();
    let one = Decimal::ONE;
    c.bench_function("handle/check_boolean", |b| b.iter(|| e.check_handle(black_box(boolean), now).unwrap()));
    c.bench_function("handle/check_metered", |b| b.iter(|| e.check_handle(black_box(metered), now).unwrap()));
    c.bench_function("handle/consume_hard", |b| b.iter(|| e.consume_handle(black_box(hard), one, now).unwrap()));
}

/// `consume` at an edge (`leases: true`) next to the same call without leases: the lease check,
/// the use recorded on it and the use queued for the hub. A sync acknowledges the queue every
/// 10,000 calls, outside the timing, as a real edge's would.
fn leased(c: &mut Criterion) {
    let now = Timestamp::parse("2026-11-28T10:00:00Z").unwrap();
    let mut e = engine();
    e.enable_leases("bench-edge", "boot-1");
    let grant = |e: &mut Engine, seq: u64| {
        let request = e.sync_request(now).unwrap().unwrap();
        let response = serde_json::json!({ "ackSeq": request.seq, "leases": [{
            "customerId": "cus_big", "key": "input-tokens", "period": "1970-01-01T00:00:00Z",
            "granted": (seq * 1_000_000_000).to_string(), "ttlMs": 3_600_000_000u64, "mode": "normal" }] });
        e.apply_sync(&response, now).unwrap();
    };
    let _ = e.consume("cus_big", "input-tokens", Decimal::ONE, None, now).unwrap(); // ask for a lease
    grant(&mut e, 1);
    let d = e.consume("cus_big", "input-tokens", Decimal::ONE, None, now).unwrap();
    assert!(d.allowed, "the lease covers it: {d:?} {:?}", e.leases().map(|l| &l.leases));
    let one = Decimal::ONE;
    let mut round = 1;
    c.bench_function("consume/metered_hard_leased", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(10_000);
                let start = std::time::Instant::now();
                for _ in 0..n {
                    black_box(e.consume(black_box("cus_big"), black_box("input-tokens"), one, None, now).unwrap());
                }
                total += start.elapsed();
                round += 1;
                grant(&mut e, round);
                left -= n;
            }
            total
        })
    });
}

criterion_group!(benches, hot_paths, handles, leased);
criterion_main!(benches);
