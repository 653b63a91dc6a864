//! The idempotency memory is bounded by a window of event time and by a number of entries, and
//! stays honest about what it forgot: `horizon(now)` is max(now − window, the time just above the
//! newest forgotten entry's), so an event at or before a forgotten one is refused as
//! `event_too_old` at the edge instead of being counted twice. Events dated too far after `now`
//! are refused at the edge (`invalid_timestamp` at `/time`), not when the hub records them.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate::engine::{Dedupe, Engine, IngestOutcome, Options, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_FUTURE_MS};
use tollgate::time::{Period, Timestamp};
use tollgate::{Code, Decimal, Error};

/// 2026-01-01T00:00:00Z: the subscription start; the billing period is January.
const START_MS: i64 = 1_767_225_600_000;
const JAN: Period = Period { start: Timestamp(START_MS), end: Timestamp(START_MS + 31 * 86_400_000) };
const SECOND: i64 = 1_000;

fn snapshot() -> Value {
    json!({
        "catalog": {
            "schemaVersion": 1, "catalogVersion": 1,
            "products": [{ "id": "prod", "name": "Product" }],
            "billableMetrics": [{ "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm",
                                  "aggregation": "SUM", "valueProperty": "$.tokens" }],
            "plans": [{ "id": "plan", "productId": "prod", "name": "Plan", "currency": "USD", "billingCadence": "P1M",
                        "prices": [{ "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
                                     "model": { "type": "per_unit", "unitPrice": "0.01" } }] }]
        },
        "customers": [{ "id": "cus", "subscriptions": [{ "id": "s", "planId": "plan", "startedAt": "2026-01-01T00:00:00Z" }] }]
    })
}

fn engine(options: Options) -> Engine {
    Engine::from_snapshot(&snapshot(), options).unwrap_or_else(|e| panic!("snapshot rejected: {e:?}"))
}

fn capped(max_entries: usize) -> Engine {
    engine(Options { dedupe_max_entries: max_entries, ..Options::default() })
}

/// An event of 10 tokens with id `id` at `time` (ms).
fn event(id: &str, time: i64) -> Value {
    json!({ "id": id, "source": "edge-fra", "type": "llm", "subject": "cus",
            "time": Timestamp(time).to_rfc3339(), "data": { "tokens": 10 } })
}

fn tokens(engine: &Engine) -> Decimal {
    engine.quantity("cus", "bm_tokens", JAN).expect("a quantity")
}

fn accepted(result: tollgate::Result<IngestOutcome>) -> IngestOutcome {
    let outcome = result.unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(outcome.allowed, "denied: {outcome:?}");
    outcome
}

fn refused(result: tollgate::Result<IngestOutcome>) -> Error {
    match result {
        Ok(outcome) => panic!("accepted: {outcome:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults() {
    let options = Options::default();
    assert_eq!(options.dedupe_max_entries, 100_000);
    assert_eq!(DEFAULT_MAX_ENTRIES, 100_000);
    assert_eq!(options.max_future_ms, 300_000);
    assert_eq!(DEFAULT_MAX_FUTURE_MS, 300_000);
}

/// An id reused for another request is `idempotency_mismatch` and changes nothing: an event's
/// `(source, id)` with other data, subject or type, a `consume` id with another quantity or
/// feature. The same request again (an event at another time included) is a duplicate.
#[test]
fn an_id_reused_for_another_request_is_a_mismatch() {
    let now = Timestamp(START_MS + 60 * SECOND);
    let mut e = engine(Options::default());
    accepted(e.ingest(&event("e1", START_MS), now));
    let mut more = event("e1", START_MS);
    more["data"]["tokens"] = json!(11);
    let err = refused(e.ingest(&more, now));
    assert_eq!((err.code, err.path.as_str()), (Code::IdempotencyMismatch, "/id"), "{err}");
    let mut other_type = event("e1", START_MS);
    other_type["type"] = json!("llm.other");
    assert_eq!(refused(e.ingest(&other_type, now)).code, Code::IdempotencyMismatch);
    // The same payload at another time (a resend without `time` takes its arrival time): a duplicate.
    let again = accepted(e.ingest(&event("e1", START_MS + SECOND), now));
    assert!(again.duplicate);
    assert_eq!(tokens(&e), Decimal::from(10), "counted once");

    // The same plan with a hard limit of 100 tokens a month on its price.
    let mut snap = snapshot();
    snap["catalog"]["features"] =
        json!([{ "id": "feat_tokens", "productId": "prod", "key": "tokens", "name": "Tokens", "type": "metered" }]);
    snap["catalog"]["plans"][0]["prices"][0]["feature"] = json!({ "featureId": "feat_tokens",
        "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" }, "issueAfterReset": "100", "isSoftLimit": false } });
    let mut hard = Engine::from_snapshot(&snap, Options::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let first = hard.consume("cus", "tokens", Decimal::from(5), Some("req-1"), now).unwrap();
    assert!(first.allowed, "{first:?}");
    assert_eq!(hard.consume("cus", "tokens", Decimal::from(5), Some("req-1"), now).unwrap(), first);
    let err = hard.consume("cus", "tokens", Decimal::from(6), Some("req-1"), now).unwrap_err();
    assert_eq!((err.code, err.path.as_str()), (Code::IdempotencyMismatch, "/id"), "{err}");
    let balance = hard.check("cus", "tokens", now).unwrap().figures.unwrap().balance;
    assert_eq!(balance, Decimal::from(95), "the mismatch applied nothing");
}

/// Cap 3, five events at t = 1..5 s: after the 4th, e1 is forgotten (horizon t1 + 1 ms); after
/// the 5th, e2 (horizon t2 + 1 ms). Resends of e1 and e2 are refused, not counted again; a resend
/// of e5 is a duplicate.
#[test]
fn cap_three_five_events() {
    let t = |i: i64| START_MS + i * SECOND;
    let now = Timestamp(t(10));
    let mut e = capped(3);
    assert_eq!(e.remembered_since(now), Timestamp(now.0 - tollgate::engine::DEFAULT_WINDOW_MS));
    for i in 1..=3 {
        let o = accepted(e.ingest(&event(&format!("e{i}"), t(i)), now));
        assert!(!o.duplicate);
    }
    // Nothing forgotten yet: the horizon is the window's.
    assert_eq!(e.remembered_since(now), Timestamp(now.0 - tollgate::engine::DEFAULT_WINDOW_MS));
    accepted(e.ingest(&event("e4", t(4)), now));
    assert_eq!(e.remembered_since(now), Timestamp(t(1) + 1));
    accepted(e.ingest(&event("e5", t(5)), now));
    assert_eq!(e.remembered_since(now), Timestamp(t(2) + 1));
    assert_eq!(tokens(&e), Decimal::from(50));

    for forgotten in [1, 2] {
        let err = refused(e.ingest(&event(&format!("e{forgotten}"), t(forgotten)), now));
        assert_eq!((err.code, err.path.as_str()), (Code::EventTooOld, "/time"), "{err}");
    }
    for kept in [3, 4, 5] {
        let again = accepted(e.ingest(&event(&format!("e{kept}"), t(kept)), now));
        assert!(again.duplicate, "e{kept} should be remembered");
    }
    // A new event at the very time of a forgotten one is refused too (it may be a resend under
    // a time the memory no longer answers for); one ms later is remembered territory.
    let err = refused(e.ingest(&event("new-at-t2", t(2)), now));
    assert_eq!(err.code, Code::EventTooOld);
    accepted(e.ingest(&event("new-after-t2", t(2) + 1), now));
    assert_eq!(tokens(&e), Decimal::from(60), "each event counted once");
}

/// Ties: cap 2 and three events at the same time. Forgetting one of them (the first by key)
/// moves the horizon past that time: no event at it is claimed remembered any more, though the
/// two still kept are still answered as duplicates.
#[test]
fn ties_move_the_horizon_past_their_time() {
    let t1 = START_MS + SECOND;
    let now = Timestamp(START_MS + 10 * SECOND);
    let mut e = capped(2);
    for id in ["a", "b", "c"] {
        accepted(e.ingest(&event(id, t1), now));
    }
    assert_eq!(e.remembered_since(now), Timestamp(t1 + 1));
    assert_eq!(refused(e.ingest(&event("a", t1), now)).code, Code::EventTooOld);
    assert_eq!(refused(e.ingest(&event("d", t1), now)).code, Code::EventTooOld);
    assert!(accepted(e.ingest(&event("b", t1), now)).duplicate);
    assert!(accepted(e.ingest(&event("c", t1), now)).duplicate);
    assert_eq!(tokens(&e), Decimal::from(30));
}

/// The same at the level of the memory itself.
#[test]
fn dedupe_horizon_with_ties() {
    let now = Timestamp(1_000);
    let mut d: Dedupe<u32> = Dedupe::bounded(10_000, 2);
    assert_eq!(d.horizon(now), Timestamp(-9_000));
    d.insert("x".into(), Timestamp(5), 1, now);
    d.insert("y".into(), Timestamp(5), 2, now);
    assert_eq!(d.horizon(now), Timestamp(-9_000));
    d.insert("z".into(), Timestamp(7), 3, now);
    // "x" (first of the tie by key) is forgotten: nothing at t = 5 is claimed any more.
    assert_eq!(d.horizon(now), Timestamp(6));
    assert_eq!((d.get("x"), d.get("y"), d.get("z")), (None, Some(&2), Some(&3)));
    assert_eq!(d.len(), 2);
    // The window still applies: at a later `now` the horizon is whichever is later.
    assert_eq!(d.horizon(Timestamp(20_000)), Timestamp(10_000));
    // Cap 0 keeps nothing, and says so.
    let mut none: Dedupe<u32> = Dedupe::bounded(10_000, 0);
    none.insert("x".into(), Timestamp(5), 1, now);
    assert!(none.is_empty());
    assert_eq!(none.horizon(now), Timestamp(6));
}

/// An event dated more than `maxFutureMs` (default 5 minutes) after `now` is refused at the edge.
#[test]
fn future_events_are_refused_at_the_edge() {
    let now = START_MS + 3_600 * SECOND;
    let mut e = engine(Options::default());
    let err = refused(e.ingest(&event("late", now + 301 * SECOND), Timestamp(now)));
    assert_eq!((err.code, err.path.as_str()), (Code::InvalidTimestamp, "/time"));
    assert!(err.message.contains("future"), "{}", err.message);
    assert_eq!(tokens(&e), Decimal::ZERO, "nothing applied");
    accepted(e.ingest(&event("soon", now + 299 * SECOND), Timestamp(now)));
    accepted(e.ingest(&event("edge", now + 300 * SECOND), Timestamp(now)));
    assert_eq!(
        refused(e.ingest(&event("edge+1", now + 300 * SECOND + 1), Timestamp(now))).code,
        Code::InvalidTimestamp
    );
    assert_eq!(tokens(&e), Decimal::from(20));

    // Configurable: 0 allows nothing after `now`.
    let mut strict = engine(Options { max_future_ms: 0, ..Options::default() });
    accepted(strict.ingest(&event("now", now), Timestamp(now)));
    assert_eq!(refused(strict.ingest(&event("now+1", now + 1), Timestamp(now))).code, Code::InvalidTimestamp);
}

/// The hub's `record` (usage an edge already allowed) does not apply the edge's future bound:
/// the hub applies its own policy before recording.
#[test]
fn record_does_not_apply_the_future_bound() {
    let now = START_MS + 3_600 * SECOND;
    let mut hub = engine(Options::default());
    let outcome = hub.record(&event("from-edge", now + 3_600 * SECOND), Timestamp(now)).expect("recorded");
    assert!(outcome.allowed && !outcome.duplicate);
    assert_eq!(tokens(&hub), Decimal::from(10));
    assert!(hub.record(&event("from-edge", now + 3_600 * SECOND), Timestamp(now)).expect("again").duplicate);
}

/// `consume` has no event time of its own (it happens at `now`): the future bound cannot apply,
/// and an id is still answered once.
#[test]
fn consume_ids_are_still_idempotent() {
    let snapshot = json!({
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
                                         "issueAfterReset": "100", "isSoftLimit": false } } }] }]
        },
        "customers": [{ "id": "cus", "subscriptions": [{ "id": "s", "planId": "plan", "startedAt": "2026-01-01T00:00:00Z" }] }]
    });
    let options = Options { dedupe_max_entries: 2, ..Options::default() };
    let mut e = Engine::from_snapshot(&snapshot, options).expect("snapshot");
    let now = Timestamp(START_MS + SECOND);
    let first = e.consume("cus", "tokens", Decimal::from(7), Some("r1"), now).expect("consume");
    let again = e.consume("cus", "tokens", Decimal::from(7), Some("r1"), now).expect("consume");
    assert_eq!(first, again);
    assert_eq!(tokens(&e), Decimal::from(7));
}

#[derive(Clone, Debug)]
enum Op {
    /// Insert key k at time t (ms); `now` moves forward by `dt` first.
    Insert { k: u8, t: i64, dt: i64 },
    /// Look key k up.
    Get(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0u8..24, 0i64..40, 0i64..4).prop_map(|(k, t, dt)| Op::Insert { k, t, dt }),
        1 => (0u8..24).prop_map(Op::Get),
    ];
    proptest::collection::vec(op, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No entry at or after the horizon is ever forgotten: a key the memory says it has not
    /// seen, whose (last) insert time is at or after the horizon, was never inserted. The memory
    /// never holds more than its cap, and never answers for a key it was not given.
    #[test]
    fn nothing_newer_than_the_horizon_is_forgotten(
        cap in 0usize..6,
        window in prop_oneof![Just(i64::MAX / 4), 0i64..30],
        start in 0i64..30,
        ops in ops(),
    ) {
        let mut d: Dedupe<u32> = Dedupe::bounded(window, cap);
        let mut inserted: BTreeMap<u8, (i64, u32)> = BTreeMap::new();
        let mut now = start;
        let mut last_horizon = i64::MIN;
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert { k, t, dt } => {
                    now += dt;
                    d.insert(k.to_string(), Timestamp(t), n as u32, Timestamp(now));
                    inserted.insert(k, (t, n as u32));
                }
                Op::Get(k) => {
                    let got = d.get(&k.to_string()).copied();
                    let horizon = d.horizon(Timestamp(now)).0;
                    match inserted.get(&k) {
                        None => prop_assert_eq!(got, None),
                        Some(&(t, v)) if t >= horizon => prop_assert_eq!(got, Some(v)),
                        Some(&(_, v)) => prop_assert!(got.is_none() || got == Some(v)),
                    }
                }
            }
            let horizon = d.horizon(Timestamp(now)).0;
            prop_assert!(horizon >= last_horizon, "the horizon never moves back while now does not");
            last_horizon = horizon;
            prop_assert!(d.len() <= cap);
            for (k, &(t, v)) in &inserted {
                if t >= horizon {
                    prop_assert_eq!(d.get(&k.to_string()).copied(), Some(v), "key {} at {} forgotten (horizon {})", k, t, horizon);
                }
            }
        }
    }

    /// End to end at the edge, with a small cap: whatever is sent and resent (ids from a small
    /// pool, times in a few seconds), each id is counted at most once, and every answer is
    /// "new", "duplicate" or `event_too_old`.
    #[test]
    fn resends_are_never_counted_twice(
        cap in 1usize..5,
        sends in proptest::collection::vec((0u8..12, 0i64..8), 0..60),
    ) {
        let mut e = capped(cap);
        let now = Timestamp(START_MS + 60 * SECOND);
        // Each id always carries the same time (a resend is the same event).
        let time_of = |id: u8, t: i64| START_MS + (t + i64::from(id % 3)) * SECOND;
        let mut first_time: BTreeMap<u8, i64> = BTreeMap::new();
        let mut counted: BTreeSet<u8> = BTreeSet::new();
        for (id, t) in sends {
            let time = *first_time.entry(id).or_insert_with(|| time_of(id, t));
            match e.ingest(&event(&format!("id{id}"), time), now) {
                Ok(o) if o.duplicate => prop_assert!(counted.contains(&id)),
                Ok(o) => {
                    prop_assert!(o.allowed);
                    prop_assert!(counted.insert(id), "id{} counted twice", id);
                }
                Err(err) => {
                    prop_assert_eq!(err.code, Code::EventTooOld);
                    prop_assert!(time < e.remembered_since(now).0);
                }
            }
        }
        prop_assert_eq!(tokens(&e), Decimal::from(10 * counted.len() as i64));
    }
}
