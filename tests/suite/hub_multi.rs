//! Several hubs on one PostgreSQL database (run by `make test-hub-pg`; SQLite keeps one hub per
//! file, which `hub_security::f5_two_hubs_on_one_sqlite_file` checks): one hard limit enforced
//! by two hubs and two edges together, a hub killed mid-burst, and changes made through one hub
//! reaching the other.

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate::engine::Engine;
use tollgate::entitlements::Reason;
use tollgate::Decimal;

use crate::support::hub_harness::*;

/// The tests here need the PostgreSQL server of `make test-hub-pg`.
fn server() -> String {
    postgres_server().expect("TOLLGATE_TEST_POSTGRES: run through `make test-hub-pg`")
}

/// Waits (at most 5 s) until `ready` holds; the hubs follow each other every 200 ms.
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An edge of the burst: its engine, its hub (an index), its token, what it was allowed.
struct Edge {
    engine: Engine,
    hub: usize,
    token: &'static str,
    allowed: u32,
    done: bool,
}

/// Consumes one token at a time on `edge` until its lease is used up, then syncs with its hub
/// (or, that one dead, with any live one); done once the limit is reached.
fn step(edge: &mut Edge, hubs: &[Option<Hub>], n: usize) {
    for _ in 0..n {
        let d = edge.engine.consume("cus_a", "tokens", Decimal::ONE, None, wall_clock()).unwrap();
        if d.allowed {
            edge.allowed += 1;
            continue;
        }
        if d.reason == Reason::LimitReached && !d.needs_sync {
            edge.done = true;
            return;
        }
        break;
    }
    let order = [edge.hub, 1 - edge.hub];
    for i in order {
        let Some(hub) = &hubs[i] else { continue };
        if try_edge_sync(hub, edge.token, &mut edge.engine).is_ok() {
            edge.hub = i;
            return;
        }
    }
    panic!("no hub answered");
}

#[test]
fn postgres_two_hubs_share_one_hard_limit_and_lose_nothing_when_one_is_killed() {
    let _ = server();
    let dir = TempDir::new("two-hubs");
    let args = ["--ttl-ms", "2000"];
    let first = Hub::start(&dir.db(), &args);
    first.setup(&[customer("cus_a", "plan_pro")]);
    let second = Hub::start(&dir.db(), &args);
    assert_eq!(first.public_key, second.public_key, "one signing key for every hub of the database");
    // The second hub serves what was put through the first.
    let snapshot = second.get("/v1/snapshot", Some(EDGE_B));
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);

    let mut hubs = [Some(first), Some(second)];
    let mut edges = [
        Edge {
            engine: edge_engine(hubs[0].as_ref().unwrap(), EDGE_A, "edge-a"),
            hub: 0,
            token: EDGE_A,
            allowed: 0,
            done: false,
        },
        Edge {
            engine: edge_engine(hubs[1].as_ref().unwrap(), EDGE_B, "edge-b"),
            hub: 1,
            token: EDGE_B,
            allowed: 0,
            done: false,
        },
    ];
    let mut rounds = 0;
    while edges.iter().any(|e| !e.done) {
        rounds += 1;
        assert!(rounds < 2_000, "the burst does not end: {} + {} allowed", edges[0].allowed, edges[1].allowed);
        for edge in edges.iter_mut().filter(|e| !e.done) {
            step(edge, &hubs, 40);
        }
        // Mid-burst, the second hub dies without a word; its edge goes on through the first.
        if hubs[1].is_some() && edges[0].allowed + edges[1].allowed >= 400 {
            hubs[1].take().unwrap().kill();
        }
    }
    let allowed = edges[0].allowed + edges[1].allowed;
    assert!(hubs[1].is_none(), "the second hub was killed mid-burst");
    assert!(edges[1].allowed > 0 && edges[0].allowed > 0, "both edges were served");
    assert!(allowed <= 1_000, "{allowed} allowed over a limit of 1,000");
    assert!(allowed >= 950, "only {allowed} of 1,000 allowed");

    // Every event either edge was allowed reaches the ledger once, whichever hub took it.
    let first = hubs[0].as_ref().unwrap();
    for edge in &mut edges {
        while edge.engine.sync_backlog() > 0 {
            edge_sync(first, edge.token, &mut edge.engine);
        }
        edge_sync(first, edge.token, &mut edge.engine);
    }
    assert_eq!(
        first.metered("cus_a", "price_tokens", None),
        Decimal::from(allowed),
        "the invoice bills what was allowed"
    );
    let entitlements = first.get("/v1/customers/cus_a/entitlements", Some(ADMIN));
    assert_eq!(entitlements.status, 200, "{}", entitlements.body);
}

#[test]
fn postgres_a_change_through_one_hub_reaches_the_other_within_a_second() {
    let _ = server();
    let dir = TempDir::new("two-hubs-follow");
    let first = Hub::start(&dir.db(), &[]);
    let second = Hub::start(&dir.db(), &[]);
    first.setup(&[customer("cus_a", "plan_pro")]);
    // A customer, a grant, a top-up, a token and a revocation made through the first hub…
    let started = Instant::now();
    let mut payg = customer("cus_p", "plan_payg");
    payg["wallet"] = json!({ "currency": "USD", "balance": "1.00" });
    assert_eq!(first.put("/v1/customers/cus_p", Some(ADMIN), &payg.to_string()).status, 201);
    let r = first.post("/v1/customers/cus_p/wallet", Some(ADMIN), r#"{"amount": "2.50", "idempotencyKey": "t1"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let made = first.post("/v1/tokens", Some(ADMIN), r#"{"role": "edge", "edgeId": "fra-1"}"#);
    let fra = made.body["token"].as_str().unwrap().to_string();
    assert_eq!(first.post("/v1/edges/iad-1/revoke", Some(ADMIN), "").status, 200);
    // …are served by the second one.
    eventually("the customer and the wallet", || {
        let w = second.get("/v1/customers/cus_p/wallet", Some(ADMIN));
        w.status == 200 && w.body["balance"] == "3.50"
    });
    eventually("the token", || second.get("/v1/snapshot", Some(&fra)).status == 200);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The same top-up key through the second hub is the same top-up, not a second one.
    let again = second.post("/v1/customers/cus_p/wallet", Some(ADMIN), r#"{"amount": "2.50", "idempotencyKey": "t1"}"#);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(second.get("/v1/customers/cus_p/wallet", Some(ADMIN)).body["balance"], "3.50");
    // The revoked edge gets nothing from the second hub either.
    let sync = second.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("iad-1", "b", 1, 0, json!([report("cus_a", "0", "10", false)]), json!([])),
    );
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(sync.body["leases"][0]["mode"], "closed", "{}", sync.body);
    // An invoice closed through both hubs at once is closed once.
    let body = r#"{"customerId": "cus_p", "at": "2026-02-01T00:00:00Z"}"#;
    let a = first.post("/v1/invoices/close", Some(ADMIN), body);
    let b = second.post("/v1/invoices/close", Some(ADMIN), body);
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    assert_eq!(a.body, b.body, "one invoice for the period");
}

#[test]
fn postgres_an_outage_is_a_503_and_the_hub_recovers_alone() {
    let _ = server();
    let dir = TempDir::new("pg-outage");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let post = |ids: &[&str]| {
        let events: Vec<_> = ids.iter().map(|id| event("api", id, "cus_a", 5)).collect();
        hub.post("/v1/events", Some(ADMIN), &json!(events).to_string())
    };
    assert_eq!(post(&["before"]).status, 200);

    // The database refuses this hub's connections and drops the ones it has.
    postgres_admin(
        &dir.db(),
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'",
    );
    // Writes are refused with a code, never acknowledged; the hub says it is unwell.
    for id in ["during-1", "during-2"] {
        assert_error(&post(&[id]), 503, "storage", "");
    }
    assert_eq!(hub.get("/healthz", None).status, 503);

    // Back: the hub reloads its state by itself, and takes writes again.
    postgres_admin(&dir.db(), "ALTER DATABASE {db} ALLOW_CONNECTIONS true");
    eventually("the hub writes again", || hub.get("/healthz", None).status == 200);
    eventually("an event is taken", || post(&["during-1"]).status == 200);
    assert_eq!(post(&["after"]).status, 200);
    // What was acknowledged is there once; what was refused is there only as sent again.
    let mut ids = hub.stored_ids("api");
    ids.sort();
    assert_eq!(ids, ["after", "before", "during-1"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(15));
}
