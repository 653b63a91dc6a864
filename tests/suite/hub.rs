//! The hub, end to end: the real `tollgate hub` binary on a free port with a temporary SQLite
//! file, spoken to over HTTP (the harness is tests/support/hub_harness.rs). Run with
//! `cargo test --features hub --test hub`; what an attacker can do to the hub is
//! tests/hub_security.rs.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::hub_harness::*;
use serde_json::{json, Value};
use tollgate::sync::signed::{parse_payload, Envelope, PublicKey};
use tollgate::time::Timestamp;

#[test]
fn test_catalog_is_valid() {
    tollgate::Catalog::from_json(CATALOG).expect("the test catalog");
}

#[test]
fn tokens_are_checked_and_roles_kept_apart() {
    let dir = TempDir::new("auth");
    let hub = Hub::start(&dir.db(), &[]);
    let health = hub.get("/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.body, json!({ "ok": true, "snapshotVersion": 0 }));

    assert_error(&hub.put("/v1/catalog", None, CATALOG), 401, "unauthorized", "");
    assert_error(&hub.put("/v1/catalog", Some("not-a-token-at-all-x"), CATALOG), 401, "unauthorized", "");
    assert_error(&hub.put("/v1/catalog", Some(EDGE_A), CATALOG), 403, "forbidden", "");
    assert_error(&hub.post("/v1/events", Some(EDGE_B), "[]"), 403, "forbidden", "");
    assert_error(&hub.post("/v1/invoices/close", Some(EDGE_A), "{}"), 403, "forbidden", "");
    assert_error(&hub.post("/v1/customers/x/wallet", Some(EDGE_A), "{}"), 403, "forbidden", "");
    assert_error(&hub.get("/v1/events?source=x", Some(EDGE_A)), 403, "forbidden", "");
    let sync = sync_body("fra-1", "b1", 1, 0, json!([]), json!([]));
    assert_error(&hub.post("/v1/sync", Some(ADMIN), &sync), 403, "forbidden", "");
    assert_error(&hub.post("/v1/sync", None, &sync), 401, "unauthorized", "");
    assert_error(&hub.get("/v1/snapshot", None), 401, "unauthorized", "");
    // A wrong scheme is no token.
    let r = hub.call("GET", "/v1/snapshot", None, None, &[("Authorization", &format!("Basic {ADMIN}"))]);
    assert_error(&r, 401, "unauthorized", "");

    // Generated tokens are printed once when the variables are unset.
    let dir2 = TempDir::new("auth-generated");
    let hub2 = Hub::start_with_env(&dir2.db(), &[], &[]);
    let lines = hub2.output.lock().unwrap().clone();
    let token = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("tollgate hub: {name} token (generated")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {name} token in {lines:?}"))
            .to_string()
    };
    let (admin, edge) = (token("admin"), token("edge"));
    assert_ne!(admin, edge);
    assert_eq!(hub2.put("/v1/catalog", Some(&admin), CATALOG).status, 200);
    assert_error(&hub2.put("/v1/catalog", Some(&edge), CATALOG), 403, "forbidden", "");
    assert_eq!(hub2.get("/v1/snapshot", Some(&edge)).status, 200);
}

#[test]
fn bad_input_is_a_400_with_code_and_path_never_a_500() {
    let dir = TempDir::new("bad-input");
    let hub = Hub::start(&dir.db(), &[]);
    // Before any catalog.
    assert_error(
        &hub.put("/v1/customers/cus_a", Some(ADMIN), &customer("cus_a", "plan_pro").to_string()),
        409,
        "conflict",
        "",
    );
    assert_error(&hub.get("/v1/snapshot", Some(EDGE_A)), 404, "not_found", "");

    assert_error(&hub.put("/v1/catalog", Some(ADMIN), "{ not json"), 400, "invalid_json", "");
    assert_error(&hub.put("/v1/catalog", Some(ADMIN), "[1, 2]"), 400, "invalid_type", "");
    let broken = CATALOG.replace(
        "\"currency\": \"USD\", \"billingCadence\": \"P1M\"",
        "\"currency\": \"USX\", \"billingCadence\": \"P1M\"",
    );
    let r = hub.put("/v1/catalog", Some(ADMIN), &broken.replace("\"key\": \"tokens\"", "\"key\": \"Tokens\""));
    assert_error(&r, 400, "unknown_currency", "/plans/0/currency");
    assert_error(&r, 400, "invalid_feature_key", "/features/0/key");
    hub.setup(&[customer("cus_a", "plan_pro")]);

    // Customers.
    let other = customer("cus_b", "plan_pro").to_string();
    assert_error(&hub.put("/v1/customers/cus_a", Some(ADMIN), &other), 400, "invalid_value", "/id");
    assert_error(
        &hub.put("/v1/customers/cus_c", Some(ADMIN), &customer("cus_c", "plan_gold").to_string()),
        400,
        "unknown_reference",
        "/subscriptions/0/planId",
    );
    assert_error(&hub.put("/v1/customers/cus_c", Some(ADMIN), "\"cus_c\""), 400, "invalid_type", "");
    assert_error(
        &hub.post(
            "/v1/customers/cus_a/grants",
            Some(ADMIN),
            r#"{"id": "g1", "featureKey": "tokens", "amount": "lots"}"#,
        ),
        400,
        "invalid_decimal",
        "/amount",
    );
    assert_error(
        &hub.post("/v1/customers/cus_zz/grants", Some(ADMIN), r#"{"id": "g1", "featureKey": "tokens", "amount": "1"}"#),
        404,
        "not_found",
        "",
    );
    assert_error(
        &hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "-1", "idempotencyKey": "k"}"#),
        400,
        "invalid_value",
        "/amount",
    );
    assert_error(
        &hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": 1.5, "idempotencyKey": "k", "extra": 1}"#),
        400,
        "unknown_field",
        "/extra",
    );

    // Sync messages and events.
    assert_error(&hub.post("/v1/sync", Some(EDGE_A), r#"{"edgeId": "", "bootId": 3, "leases": [{"customerId": "c", "key": "k", "period": "soon", "used": "-1"}]}"#), 400, "invalid_timestamp", "/leases/0/period");
    assert_error(
        &hub.post("/v1/sync", Some(EDGE_A), r#"{"edgeId": "e", "bootId": "b"}"#),
        400,
        "missing_field",
        "/seq",
    );
    let bad_event = sync_body(
        "e",
        "b",
        1,
        0,
        json!([]),
        json!([{ "id": "x", "source": "s", "type": "t", "subject": "cus_a", "time": "yesterday" }]),
    );
    // A bad event is answered on its own: listed in `problems`, kept as a dead letter, and
    // acknowledged with the rest (an edge never resends it forever).
    let r = hub.post("/v1/sync", Some(EDGE_A), &bad_event);
    assert_eq!((r.status, &r.body["ackSeq"]), (200, &json!(1)), "{}", r.body);
    assert_eq!(r.body["problems"][0]["code"], "invalid_timestamp", "{}", r.body);
    assert_eq!(r.body["problems"][0]["path"], "/events/0/time", "{}", r.body);
    assert_error(
        &hub.post("/v1/sync", Some(EDGE_A), &sync_body("hub", "b", 1, 0, json!([]), json!([]))),
        400,
        "invalid_value",
        "/edgeId",
    );
    assert_error(
        &hub.post(
            "/v1/events",
            Some(ADMIN),
            r#"[{"id": "x", "source": "s", "type": "t", "subject": "cus_a", "time": 5}]"#,
        ),
        400,
        "invalid_type",
        "/0/time",
    );
    assert_error(
        &hub.post("/v1/events", Some(ADMIN), r#"{"events": [{"source": "s", "type": "t", "subject": "cus_a"}]}"#),
        400,
        "missing_field",
        "/events/0/id",
    );
    assert_error(&hub.post("/v1/events", Some(ADMIN), r#"{"events": 3}"#), 400, "invalid_type", "/events");
    // U+0000, which PostgreSQL's text cannot hold, is refused at the door, wherever it is.
    assert_error(
        &hub.post(
            "/v1/events",
            Some(ADMIN),
            r#"{"events": [{"id": "a\u0000b", "source": "s", "type": "api.call", "subject": "cus_a"}]}"#,
        ),
        400,
        "invalid_value",
        "/events/0/id",
    );
    assert_error(&hub.get("/v1/customers/cus%00a", Some(ADMIN)), 400, "invalid_value", "");
    assert_error(&hub.get("/v1/events?source=s%00", Some(ADMIN)), 400, "invalid_value", "");
    // From an edge, such an event is a dead letter like any that does not decode: stored (the
    // character written as its escape), listed, acknowledged, and the hub keeps writing.
    let nul = json!([{ "id": "n\u{0}1", "source": "s\u{0}", "type": "api.call", "subject": "cus_a" }]);
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("e", "b", 2, 1, json!([]), nul));
    assert_eq!((r.status, &r.body["ackSeq"]), (200, &json!(2)), "{}", r.body);
    assert_eq!(r.body["problems"][0]["path"], "/events/0/id", "{}", r.body);
    let dead = hub.get("/v1/dead-letters", Some(ADMIN));
    let ids: Vec<&Value> =
        dead.body["deadLetters"].as_array().expect("dead letters").iter().map(|d| &d["id"]).collect();
    assert!(ids.contains(&&json!("n\\u00001")), "{}", dead.body);
    assert_eq!(hub.get("/healthz", None).status, 200);
    assert_error(&hub.post("/v1/events", Some(ADMIN), r#""x""#), 400, "invalid_type", "");
    // A value the metric needs is missing: that event's outcome is the error, nothing stored.
    let r = hub.post(
        "/v1/events",
        Some(ADMIN),
        r#"[{"id": "m1", "source": "s", "type": "llm.completion", "subject": "cus_a", "data": {}}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcomes"][0]["error"]["code"], "missing_property", "{}", r.body);
    assert_eq!(r.body["outcomes"][0]["error"]["path"], "/0/data/tokens", "{}", r.body);
    assert!(hub.stored_ids("s").is_empty());

    // Queries, invoices, unknown things.
    assert_error(&hub.get("/v1/customers/cus_a/invoice?now=tomorrow", Some(ADMIN)), 400, "invalid_timestamp", "/now");
    assert_error(&hub.get("/v1/customers/cus_zz/invoice", Some(ADMIN)), 404, "not_found", "");
    assert_error(&hub.get("/v1/customers/cus_zz/entitlements", Some(EDGE_A)), 404, "not_found", "");
    assert_error(
        &hub.post("/v1/invoices/close", Some(ADMIN), r#"{"customerId": "cus_a"}"#),
        400,
        "missing_field",
        "/at",
    );
    assert_error(
        &hub.post("/v1/invoices/close", Some(ADMIN), r#"{"customerId": "cus_a", "at": "x"}"#),
        400,
        "invalid_timestamp",
        "/at",
    );
    assert_error(
        &hub.post("/v1/invoices/close", Some(ADMIN), r#"{"customerId": "nobody", "at": "2026-01-05T00:00:00Z"}"#),
        404,
        "not_found",
        "",
    );
    assert_error(&hub.get("/v1/events", Some(ADMIN)), 400, "missing_field", "/source");
    assert_error(&hub.get("/v1/events?source=s&limit=-4", Some(ADMIN)), 400, "invalid_value", "/limit");
    assert_error(&hub.get("/v1/nothing-here", Some(ADMIN)), 404, "not_found", "");

    // Too large: 413 before the body is read.
    let (status, body) = oversized(hub.addr(), ADMIN);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Still serving.
    assert_eq!(hub.get("/healthz", None).status, 200);
}

#[test]
fn catalog_versions_snapshot_etag_and_signature() {
    let dir = TempDir::new("snapshot");
    let hub = Hub::start(&dir.db(), &[]);
    let r = hub.put("/v1/catalog", Some(ADMIN), CATALOG);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({ "catalogVersion": 1, "snapshotVersion": 1 }));
    // The same catalog again changes nothing.
    assert_eq!(hub.put("/v1/catalog", Some(ADMIN), CATALOG).body, json!({ "catalogVersion": 1, "snapshotVersion": 1 }));

    let snap = hub.get("/v1/snapshot", Some(EDGE_A));
    assert_eq!(snap.status, 200);
    // The tag names the version and the signing window.
    let tag = snap.etag.clone().unwrap();
    assert!(tag.starts_with("\"1.") && tag.ends_with('"'), "{tag}");
    let key = PublicKey::parse(&hub.public_key).unwrap();
    let envelope = Envelope::decode(&snap.body).unwrap();
    envelope.verify(&key).expect("signed with the printed key");
    let payload = parse_payload(&envelope.payload).unwrap();
    assert_eq!(payload["snapshotVersion"], 1);
    assert_eq!(payload["catalog"]["catalogVersion"], 1);
    // It expires a week after its signing window began (at or after its issue).
    let issued = Timestamp::parse(payload["issuedAt"].as_str().unwrap()).unwrap();
    let expires = Timestamp::parse(payload["expiresAt"].as_str().unwrap()).unwrap();
    assert!(expires.0 - issued.0 >= 7 * 86_400_000, "{payload}");
    tollgate::engine::Snapshot::from_value(&payload).expect("a valid snapshot");

    let again = hub.call("GET", "/v1/snapshot", Some(ADMIN), None, &[("If-None-Match", &tag)]);
    assert_eq!(again.status, 304);
    assert!(again.raw.is_empty());

    // A customer is a change: version 2; the old ETag no longer matches.
    let r = hub.put("/v1/customers/cus_a", Some(ADMIN), &customer("cus_a", "plan_pro").to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["snapshotVersion"], 2);
    let fresh = hub.call("GET", "/v1/snapshot", Some(EDGE_B), None, &[("If-None-Match", &tag)]);
    assert_eq!(fresh.status, 200);
    assert!(fresh.etag.as_deref().is_some_and(|t| t.starts_with("\"2.")), "{:?}", fresh.etag);
    let payload = parse_payload(&Envelope::decode(&fresh.body).unwrap().payload).unwrap();
    assert_eq!(payload["customers"][0]["id"], "cus_a");

    // A new catalog version.
    let changed = CATALOG.replace("\"unitPrice\": \"0.01\"", "\"unitPrice\": \"0.02\"");
    // cus_a keeps the price it subscribed at, pinned in the same snapshot version.
    assert_eq!(
        hub.put("/v1/catalog", Some(ADMIN), &changed).body,
        json!({ "catalogVersion": 2, "snapshotVersion": 3, "pinned": ["cus_a"] })
    );
    // One that would orphan the customer's subscription is refused, and changes nothing.
    let orphaning = changed.replace("\"id\": \"plan_pro\"", "\"id\": \"plan_pro2\"");
    let r = hub.put("/v1/catalog", Some(ADMIN), &orphaning);
    assert_error(&r, 409, "conflict", "");
    assert_eq!(r.body["errors"][0]["customerId"], "cus_a", "{}", r.body);
    assert_eq!(hub.get("/healthz", None).body["snapshotVersion"], 3);

    // An edge with an old snapshot gets the signed current one with its sync.
    let s = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 1, 1, json!([]), json!([])));
    assert_eq!(s.status, 200, "{}", s.body);
    let payload = parse_payload(&Envelope::decode(&s.body["snapshot"]).unwrap().payload).unwrap();
    assert_eq!(payload["snapshotVersion"], 3);
    let current = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 2, 3, json!([]), json!([])));
    assert_eq!(current.body["snapshot"], Value::Null);

    // After a restart: same versions, same key (kept in the database), same signed bytes.
    let public_key = hub.public_key.clone();
    let before = hub.get("/v1/snapshot", Some(EDGE_A));
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(hub.public_key, public_key);
    let tag = before.etag.clone().unwrap();
    let snap = hub.call("GET", "/v1/snapshot", Some(EDGE_A), None, &[("If-None-Match", &tag)]);
    assert_eq!(snap.status, 304);
    assert_eq!(
        hub.put("/v1/catalog", Some(ADMIN), &changed).body,
        json!({ "catalogVersion": 2, "snapshotVersion": 3 })
    );

    // --key: the given key signs.
    let keyed = TempDir::new("snapshot-key");
    let hub = Hub::start(&keyed.db(), &["--key", "examples/keys/demo-hub.json"]);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/examples/keys/demo-hub.json", crate::support::ROOT)).unwrap(),
    )
    .unwrap();
    assert_eq!(hub.public_key, file["publicKey"].as_str().unwrap());
}

#[test]
fn customers_grants_and_wallet_top_ups_are_idempotent() {
    let dir = TempDir::new("customers");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[]);
    let body = customer("cus_a", "plan_pro").to_string();
    let r = hub.put("/v1/customers/cus_a", Some(ADMIN), &body);
    assert_eq!((r.status, &r.body["created"]), (201, &json!(true)), "{}", r.body);
    let version = r.body["snapshotVersion"].clone();
    let r = hub.put("/v1/customers/cus_a", Some(ADMIN), &body);
    assert_eq!((r.status, &r.body["created"], &r.body["snapshotVersion"]), (200, &json!(false), &version));

    // Grants: appended, a duplicate id is a conflict.
    let grant = r#"{"id": "grt_1", "featureKey": "tokens", "amount": "500"}"#;
    let r = hub.post("/v1/customers/cus_a/grants", Some(ADMIN), grant);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_error(&hub.post("/v1/customers/cus_a/grants", Some(ADMIN), grant), 409, "conflict", "/id");
    let ent = hub.get("/v1/customers/cus_a/entitlements", Some(EDGE_A));
    assert_eq!(ent.status, 200, "{}", ent.body);
    let tokens =
        ent.body["entitlements"].as_array().unwrap().iter().find(|d| d["featureKey"] == "tokens").unwrap().clone();
    assert_eq!(tokens["allowed"], true, "{tokens}");
    assert_eq!(decimal(&tokens["balance"]), tollgate::Decimal::from(1500));
    assert!(ent.body["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["featureKey"] == "priority" && d["allowed"] == true));

    // Wallet: no wallet yet, so the currency is needed.
    assert_error(
        &hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "10.00", "idempotencyKey": "k1"}"#),
        400,
        "missing_field",
        "/currency",
    );
    let first = hub.post(
        "/v1/customers/cus_a/wallet",
        Some(ADMIN),
        r#"{"amount": "10.00", "idempotencyKey": "k1", "currency": "USD"}"#,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!((decimal(&first.body["balance"]), &first.body["duplicate"]), ("10.00".parse().unwrap(), &json!(false)));
    let again = hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "10.00", "idempotencyKey": "k1"}"#);
    assert_eq!(again.status, 200);
    assert_eq!((decimal(&again.body["balance"]), &again.body["duplicate"]), ("10.00".parse().unwrap(), &json!(true)));
    let second = hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "5.5", "idempotencyKey": "k2"}"#);
    assert_eq!(decimal(&second.body["balance"]), "15.5".parse().unwrap());
    assert_error(
        &hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "7", "idempotencyKey": "k1"}"#),
        409,
        "idempotency_mismatch",
        "/idempotencyKey",
    );
    assert_error(
        &hub.post(
            "/v1/customers/cus_a/wallet",
            Some(ADMIN),
            r#"{"amount": "7", "idempotencyKey": "k9", "currency": "EUR"}"#,
        ),
        400,
        "invalid_value",
        "/currency",
    );
    assert_error(
        &hub.post("/v1/customers/nobody/wallet", Some(ADMIN), r#"{"amount": "7", "idempotencyKey": "k8"}"#),
        404,
        "not_found",
        "",
    );

    // All of it survives a restart.
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    let again = hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "10.00", "idempotencyKey": "k1"}"#);
    assert_eq!((decimal(&again.body["balance"]), &again.body["duplicate"]), ("10.00".parse().unwrap(), &json!(true)));
    let third = hub.post("/v1/customers/cus_a/wallet", Some(ADMIN), r#"{"amount": "1", "idempotencyKey": "k3"}"#);
    assert_eq!(decimal(&third.body["balance"]), "16.5".parse().unwrap(), "{}", third.body);
    assert_error(&hub.post("/v1/customers/cus_a/grants", Some(ADMIN), grant), 409, "conflict", "/id");
    let snap = hub.get("/v1/snapshot", Some(ADMIN));
    let payload = parse_payload(&Envelope::decode(&snap.body).unwrap().payload).unwrap();
    assert_eq!(payload["customers"][0]["grants"][0]["id"], "grt_1");
    assert_eq!(decimal(&payload["customers"][0]["wallet"]["balance"]), "16.5".parse().unwrap());
}

#[test]
fn events_are_idempotent_by_source_and_id() {
    let dir = TempDir::new("events");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let batch =
        json!([event("api", "e1", "cus_a", 10), event("api", "e2", "cus_a", 20), event("other", "e1", "cus_a", 30)]);
    let r = hub.post("/v1/events", Some(ADMIN), &batch.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let outcomes = r.body["outcomes"].as_array().unwrap();
    assert!(outcomes.iter().all(|o| o["allowed"] == true && o["duplicate"] == false), "{}", r.body);
    assert_eq!(
        r.body["counts"],
        json!({ "accepted": 3, "unmatched": 0, "duplicate": 0, "denied": 0, "rejected": 0 }),
        "{}",
        r.body
    );
    let again = hub.post("/v1/events", Some(ADMIN), &json!({ "events": batch }).to_string());
    assert!(again.body["outcomes"].as_array().unwrap().iter().all(|o| o["duplicate"] == true), "{}", again.body);
    assert_eq!(again.body["counts"]["duplicate"], json!(3), "{}", again.body);
    // An event of a type no metric reads is accepted, stored, and counted as unmatched.
    let stray = json!([{ "id": "s1", "source": "api", "type": "llm.typo", "subject": "cus_a", "data": {} }]);
    let r = hub.post("/v1/events", Some(ADMIN), &stray.to_string());
    assert_eq!(
        (&r.body["outcomes"][0]["unmatched"], &r.body["counts"]["unmatched"]),
        (&json!(true), &json!(1)),
        "{}",
        r.body
    );
    assert_eq!(hub.stored_ids("api"), ["e1", "e2", "s1"]);
    assert_eq!(hub.stored_ids("other"), ["e1"]);

    // The hub's engine metered each once: 60 tokens.
    let invoice = hub.get("/v1/customers/cus_a/invoice", Some(ADMIN));
    assert_eq!(invoice.status, 200, "{}", invoice.body);
    let line =
        invoice.body["lines"].as_array().unwrap().iter().find(|l| l["priceId"] == "price_tokens").unwrap().clone();
    assert_eq!(decimal(&line["meteredQuantity"]), tollgate::Decimal::from(60), "{line}");

    // An edge's events, through sync, are idempotent the same way (and with the admin's).
    let body = sync_body(
        "fra-1",
        "b1",
        1,
        2,
        json!([]),
        json!([event("api", "e2", "cus_a", 20), event("fra-1", "x1", "cus_a", 5)]),
    );
    assert_eq!(hub.post("/v1/sync", Some(EDGE_A), &body).status, 200);
    assert_eq!(hub.post("/v1/sync", Some(EDGE_A), &body).status, 200);
    assert_eq!(hub.stored_ids("api"), ["e1", "e2", "s1"]);
    assert_eq!(hub.stored_ids("fra-1"), ["x1"]);
    // One the hub cannot meter (no such customer, a missing property) is acknowledged and kept
    // as a dead letter with its reason, outside the ledger: nothing acknowledged is lost.
    let unmeterable = json!([event("fra-1", "x2", "cus_nobody", 5),
                             { "id": "x3", "source": "fra-1", "type": "llm.completion", "subject": "cus_a", "data": {} }]);
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 2, 2, json!([]), unmeterable));
    assert_eq!((r.status, &r.body["ackSeq"]), (200, &json!(2)), "{}", r.body);
    let paths: Vec<&Value> = r.body["problems"].as_array().unwrap().iter().map(|p| &p["path"]).collect();
    assert_eq!(paths, [&json!("/events/0/subject"), &json!("/events/1/data/tokens")], "{}", r.body);
    assert_eq!(hub.stored_ids("fra-1"), ["x1"]);
    let dead = hub.get("/v1/dead-letters", Some(ADMIN));
    let ids: Vec<&Value> = dead.body["deadLetters"].as_array().unwrap().iter().map(|d| &d["id"]).collect();
    assert_eq!(ids, [&json!("x2"), &json!("x3")], "{}", dead.body);

    // And after a restart.
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    let r = hub.post("/v1/events", Some(ADMIN), &batch.to_string());
    assert!(r.body["outcomes"].as_array().unwrap().iter().all(|o| o["duplicate"] == true), "{}", r.body);
    // The same (source, id) with another quantity is a mismatch (the ledger's copy is compared),
    // refused with a path, and changes nothing.
    let r = hub.post("/v1/events", Some(ADMIN), &json!([event("api", "e1", "cus_a", 11)]).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcomes"][0]["error"]["code"], json!("idempotency_mismatch"), "{}", r.body);
    assert_eq!(r.body["outcomes"][0]["error"]["path"], json!("/0/id"), "{}", r.body);
    assert_eq!(r.body["counts"]["rejected"], json!(1), "{}", r.body);
    let invoice = hub.get("/v1/customers/cus_a/invoice", Some(ADMIN));
    let line =
        invoice.body["lines"].as_array().unwrap().iter().find(|l| l["priceId"] == "price_tokens").unwrap().clone();
    assert_eq!(decimal(&line["meteredQuantity"]), tollgate::Decimal::from(65), "{line}");
}

#[test]
fn two_edges_share_a_hard_limit_without_overspending() {
    let dir = TempDir::new("leases");
    let hub = Hub::start(&dir.db(), &["--max-edge-share", "100"]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let limit = tollgate::Decimal::from(1000);

    let a1 = hub.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("edge-a", "ba", 1, 0, json!([report("cus_a", "0", "600", false)]), json!([])),
    );
    assert_eq!(a1.status, 200, "{}", a1.body);
    assert_eq!(granted(&a1), tollgate::Decimal::from(600));
    assert!(a1.body["snapshot"].is_object(), "a stale edge gets the snapshot");
    let b1 = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "bb", 1, 2, json!([report("cus_a", "0", "600", false)]), json!([])),
    );
    assert_eq!(granted(&b1), tollgate::Decimal::from(400), "{}", b1.body);
    assert_eq!(b1.body["leases"][0]["mode"], "precise");

    // Server-side ingestion draws on the same budget: nothing is left for it.
    let r = hub.post("/v1/events", Some(ADMIN), &json!([event("api", "s1", "cus_a", 10)]).to_string());
    assert_eq!(r.body["outcomes"][0]["allowed"], false, "{}", r.body);
    assert_eq!(r.body["outcomes"][0]["reason"], "lease_exhausted", "{}", r.body);

    // Edge A used 200 (its events come along) and is done with the lease: 400 come back.
    let events: Vec<Value> = (0..4).map(|i| event("edge-a", &format!("a{i}"), "cus_a", 50)).collect();
    let a2 = hub.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("edge-a", "ba", 2, 2, json!([report("cus_a", "200", "0", true)]), json!(events)),
    );
    assert_eq!(a2.body["leases"][0]["mode"], "closed", "{}", a2.body);
    let b2 = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "bb", 2, 2, json!([report("cus_a", "0", "1000", false)]), json!([])),
    );
    assert_eq!(granted(&b2), tollgate::Decimal::from(800), "{}", b2.body);
    assert_eq!(decimal(&b2.body["leases"][0]["othersUsage"]), tollgate::Decimal::from(200));

    // B gives back 300 of its unused 800 (returned), then the hub may ingest within it.
    let b3 = hub.post("/v1/sync", Some(EDGE_B), &sync_body("edge-b", "bb", 3, 2, json!([{ "customerId": "cus_a", "key": "tokens", "period": month_start(), "used": "0", "returned": "300", "want": "0" }]), json!([])));
    assert_eq!(b3.status, 200, "{}", b3.body);
    let r = hub.post("/v1/events", Some(ADMIN), &json!([event("api", "s2", "cus_a", 10)]).to_string());
    assert_eq!(r.body["outcomes"][0]["allowed"], true, "{}", r.body);

    // Many concurrent syncs of both edges never grant more than the limit in all.
    let hub = Arc::new(hub);
    let epoch_grants: Arc<Mutex<Vec<(String, tollgate::Decimal)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (edge, token) in [("edge-c", EDGE_A), ("edge-d", EDGE_B)] {
        let hub = hub.clone();
        let grants = epoch_grants.clone();
        threads.push(std::thread::spawn(move || {
            let mut best = tollgate::Decimal::ZERO;
            for seq in 1..=40u64 {
                let want = ((seq * 37) % 200).to_string();
                let r = hub.post(
                    "/v1/sync",
                    Some(token),
                    &sync_body(edge, "boot", seq, 2, json!([report("cus_a", "0", &want, false)]), json!([])),
                );
                assert_eq!(r.status, 200, "{}", r.body);
                best = best.max(granted(&r));
            }
            grants.lock().unwrap().push((edge.to_string(), best));
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    // Committed: A's 200 used, B's 800 − 300 returned, the hub's own lease (at least the 10 it
    // used), and the two new leases.
    let new: tollgate::Decimal = epoch_grants.lock().unwrap().iter().map(|(_, g)| *g).sum();
    assert!(new + tollgate::Decimal::from(200 + 500 + 10) <= limit, "granted {new} more");
}

#[test]
fn invoice_preview_and_idempotent_close() {
    let dir = TempDir::new("invoices");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_d", "plan_daily"), customer("cus_a", "plan_pro")]);
    let noon = yesterday_noon();
    let calls: Vec<Value> = (0..4)
        .map(|i| json!({ "id": format!("c{i}"), "source": "api", "type": "api.call", "subject": "cus_d", "time": noon.to_rfc3339() }))
        .collect();
    let r = hub.post("/v1/events", Some(ADMIN), &json!(calls).to_string());
    assert!(r.body["outcomes"].as_array().unwrap().iter().all(|o| o["allowed"] == true), "{}", r.body);

    let evening = Timestamp(noon.0 + 6 * 3_600_000).to_rfc3339();
    let preview = hub.get(&format!("/v1/customers/cus_d/invoice?now={}", evening.replace(':', "%3A")), Some(EDGE_A));
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(preview.body["status"], "draft");
    assert_eq!(decimal(&preview.body["total"]), "2.00".parse().unwrap(), "{}", preview.body);
    assert_eq!(hub.get("/v1/customers/cus_a/invoice", Some(ADMIN)).status, 200);

    let close = json!({ "customerId": "cus_d", "at": noon.to_rfc3339() }).to_string();
    let first = hub.post("/v1/invoices/close", Some(ADMIN), &close);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["status"], "final");
    assert_eq!(decimal(&first.body["total"]), "2.00".parse().unwrap());
    // A late event of that day does not change the closed invoice.
    let late =
        json!([{ "id": "late", "source": "api", "type": "api.call", "subject": "cus_d", "time": noon.to_rfc3339() }]);
    assert_eq!(hub.post("/v1/events", Some(ADMIN), &late.to_string()).status, 200);
    let second = hub.post("/v1/invoices/close", Some(ADMIN), &close);
    assert_eq!(second.raw, first.raw);
    // A period that has not ended cannot be closed (usage may still arrive): 409, nothing stored.
    let today = json!({ "customerId": "cus_d", "at": Timestamp(noon.0 + 86_400_000).to_rfc3339() }).to_string();
    assert_error(&hub.post("/v1/invoices/close", Some(ADMIN), &today), 409, "period_open", "/at");
    assert_error(&hub.post("/v1/invoices/close", Some(ADMIN), &today), 409, "period_open", "/at");

    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(hub.post("/v1/invoices/close", Some(ADMIN), &close).raw, first.raw);
}

#[test]
fn static_files_with_their_content_types() {
    let dir = TempDir::new("www");
    let site = dir.0.join("site");
    std::fs::create_dir_all(site.join("www")).unwrap();
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::create_dir_all(site.join("examples")).unwrap();
    std::fs::write(site.join("www/index.html"), "<!doctype html><title>t</title>").unwrap();
    std::fs::write(site.join("www/app.js"), "export {};").unwrap();
    std::fs::write(site.join("pkg/tollgate_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(site.join("examples/c.json"), "{}").unwrap();
    std::fs::write(site.join("secret.txt"), "no").unwrap();
    let www = site.join("www");
    let hub = Hub::start(&dir.db(), &["--www", www.to_str().unwrap()]);
    let index = hub.get("/", None);
    assert_eq!((index.status, index.content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert_eq!(hub.get("/app.js", None).content_type, "text/javascript; charset=utf-8");
    let wasm = hub.get("/pkg/tollgate_bg.wasm", None);
    assert_eq!((wasm.status, wasm.content_type.as_str()), (200, "application/wasm"));
    assert_eq!(wasm.raw, b"\0asm\x01\0\0\0");
    assert_eq!(hub.get("/examples/c.json", None).content_type, "application/json");
    assert_error(&hub.get("/missing.js", None), 404, "not_found", "");
    assert_error(&hub.get("/%2e%2e/secret.txt", None), 404, "not_found", "");
    assert_error(&hub.get("/pkg/%2e%2e/secret.txt", None), 404, "not_found", "");

    // Missing directories are 404s too.
    let empty = TempDir::new("www-missing");
    let hub = Hub::start(&empty.db(), &["--www", empty.0.join("nope/www").to_str().unwrap()]);
    assert_error(&hub.get("/", None), 404, "not_found", "");
    assert_error(&hub.get("/pkg/x.wasm", None), 404, "not_found", "");
}

#[test]
fn kill_9_during_a_burst_loses_no_acknowledged_event_or_grant() {
    let dir = TempDir::new("kill");
    let mut hub = Hub::start(&dir.db(), &["--max-edge-share", "100"]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    // A grant acknowledged before the crash must hold after it.
    let a = hub.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("edge-a", "ba", 1, 2, json!([report("cus_a", "0", "600", false)]), json!([])),
    );
    assert_eq!(granted(&a), tollgate::Decimal::from(600));

    // Three clients post events one by one (so writes of several requests share commits), each
    // recording what was acknowledged, until the hub is killed.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let posters: Vec<_> = (0..3)
        .map(|client| {
            let acked = acked.clone();
            let base = hub.base.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                for i in 0..100_000 {
                    let id = format!("burst-{client}-{i}");
                    let body =
                        json!([{ "id": id, "source": "burst", "type": "api.call", "subject": "cus_a" }]).to_string();
                    let sent = agent
                        .post(&format!("{base}/v1/events"))
                        .header("Authorization", &format!("Bearer {ADMIN}"))
                        .send(&body)
                        .and_then(|mut r| Ok((r.status().as_u16(), r.body_mut().read_to_string()?)));
                    match sent {
                        Ok((200, text)) => {
                            let v: Value = serde_json::from_str(&text).unwrap();
                            assert_eq!(v["outcomes"][0]["allowed"], true, "{v}");
                            acked.lock().unwrap().push(id);
                        }
                        Ok((status, text)) => panic!("{status}: {text}"),
                        Err(_) => return, // the hub is gone
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    hub.child.kill().unwrap(); // SIGKILL
    let _ = hub.child.wait();
    for poster in posters {
        poster.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged before the deadline", acked.len());

    let hub = Hub::start(&dir.db(), &[]);
    let stored = hub.stored_ids("burst");
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged {id} was lost ({} acked, {} stored)", acked.len(), stored.len());
    }
    // The engine replayed exactly the stored events.
    let invoice = hub.get("/v1/customers/cus_a/invoice", Some(ADMIN));
    let line =
        invoice.body["lines"].as_array().unwrap().iter().find(|l| l["priceId"] == "price_calls").unwrap().clone();
    assert_eq!(decimal(&line["meteredQuantity"]), tollgate::Decimal::from(stored.len()), "{line}");
    // The grant held: another edge gets at most what is left.
    let b = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "bb", 1, 2, json!([report("cus_a", "0", "1000", false)]), json!([])),
    );
    assert_eq!(granted(&b), tollgate::Decimal::from(400), "{}", b.body);
}

#[test]
fn the_hubs_own_unused_lease_comes_back_at_restart() {
    let dir = TempDir::new("hub-lease");
    // On PostgreSQL, where several hubs may share the database, an earlier run's lease is closed
    // once that run has not ticked for three ticks (a tick is a quarter of the lease TTL).
    let shared = postgres_server().is_some();
    let args: &[&str] = if shared { &["--ttl-ms", "1000"] } else { &[] };
    let hub = Hub::start(&dir.db(), args);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    // Server-side use of a hard limit takes a lease for the hub (and a little ahead).
    let r = hub.post("/v1/events", Some(ADMIN), &json!([event("api", "s1", "cus_a", 10)]).to_string());
    assert_eq!(r.body["outcomes"][0]["allowed"], true, "{}", r.body);
    let a = hub.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("edge-a", "ba", 1, 2, json!([report("cus_a", "0", "1000", false)]), json!([])),
    );
    let before = granted(&a);
    assert!(before < tollgate::Decimal::from(990), "the hub holds more than it used: {}", a.body);
    drop(hub);
    // Restarted, the hub closes its earlier run's lease at what it used: only 10 stay committed.
    let hub = Hub::start(&dir.db(), args);
    if shared {
        std::thread::sleep(std::time::Duration::from_millis(2_000));
    }
    let b = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "bb", 1, 2, json!([report("cus_a", "0", "1000", false)]), json!([])),
    );
    assert_eq!(granted(&b), tollgate::Decimal::from(990) - before, "{}", b.body);
    assert_eq!(decimal(&b.body["leases"][0]["othersUsage"]), tollgate::Decimal::from(10));
}

#[test]
fn a_restart_replays_definitions_and_events_in_their_order() {
    let dir = TempDir::new("replay");
    let hub = Hub::start(&dir.db(), &[]);
    let mut payg = customer("cus_p", "plan_payg");
    payg["wallet"] = json!({ "currency": "USD", "balance": "1.00" });
    hub.setup(&[payg]);
    let calls = |ids: std::ops::Range<u32>| {
        let list: Vec<Value> = ids
            .map(|i| json!({ "id": format!("c{i}"), "source": "api", "type": "api.call", "subject": "cus_p" }))
            .collect();
        json!(list).to_string()
    };
    // Three real-time charges of 0.10, then a top-up of the running balance (0.70 + 1 = 1.70).
    let r = hub.post("/v1/events", Some(ADMIN), &calls(0..3));
    assert_eq!(decimal(&r.body["outcomes"][2]["charges"][0]["walletBalance"]), "0.70".parse().unwrap(), "{}", r.body);
    let t = hub.post("/v1/customers/cus_p/wallet", Some(ADMIN), r#"{"amount": "1", "idempotencyKey": "t1"}"#);
    assert_eq!(decimal(&t.body["balance"]), "1.70".parse().unwrap(), "{}", t.body);
    let r = hub.post("/v1/events", Some(ADMIN), &calls(3..4));
    assert_eq!(decimal(&r.body["outcomes"][0]["charges"][0]["walletBalance"]), "1.60".parse().unwrap(), "{}", r.body);
    // A new catalog version between events: cus_p keeps 0.10 (pinned) until migrated.
    let changed = CATALOG.replace("\"unitPrice\": \"0.10\"", "\"unitPrice\": \"0.20\"");
    assert_eq!(hub.put("/v1/catalog", Some(ADMIN), &changed).status, 200);
    let r = hub.post("/v1/events", Some(ADMIN), &calls(4..5));
    assert_eq!(decimal(&r.body["outcomes"][0]["charges"][0]["walletBalance"]), "1.50".parse().unwrap(), "{}", r.body);
    assert_eq!(hub.post("/v1/customers/cus_p/subscriptions/sub_cus_p/migrate", Some(ADMIN), "").status, 200);
    let r = hub.post("/v1/events", Some(ADMIN), &calls(5..6));
    assert_eq!(decimal(&r.body["outcomes"][0]["charges"][0]["walletBalance"]), "1.30".parse().unwrap(), "{}", r.body);

    // Replayed in order (catalog, pins, migration, events), the engine ends where it was:
    // 1.30 + 0.70 = 2.00.
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    let t = hub.post("/v1/customers/cus_p/wallet", Some(ADMIN), r#"{"amount": "0.70", "idempotencyKey": "t2"}"#);
    assert_eq!(decimal(&t.body["balance"]), "2.00".parse().unwrap(), "{}", t.body);
    let r = hub.post("/v1/events", Some(ADMIN), &calls(0..7));
    let outcomes = r.body["outcomes"].as_array().unwrap();
    assert!(outcomes[..6].iter().all(|o| o["duplicate"] == true), "{}", r.body);
    assert_eq!(decimal(&outcomes[6]["charges"][0]["walletBalance"]), "1.80".parse().unwrap(), "{}", r.body);
}
