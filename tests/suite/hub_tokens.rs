//! Tokens that survive restarts: the hub's generated tokens are stored (hashed) and keep working
//! after a restart; admin and edge tokens are made, listed and revoked through `/v1/tokens`
//! without one; the environment's tokens keep working beside them.

use serde_json::{json, Value};

use crate::support::hub_harness::*;

/// The token of `role` a hub printed as generated, if it did.
fn printed(hub: &Hub, role: &str) -> Option<String> {
    let lines = hub.output.lock().unwrap().clone();
    lines
        .iter()
        .find(|l| l.starts_with(&format!("tollgate hub: {role} token (generated")))
        .and_then(|l| l.rsplit(' ').next())
        .map(String::from)
}

fn delete(hub: &Hub, path: &str, token: &str) -> Answer {
    hub.call("DELETE", path, Some(token), None, &[])
}

/// A sync of edge `edge` with no leases and no events.
fn empty_sync(hub: &Hub, token: &str, edge: &str) -> Answer {
    hub.post("/v1/sync", Some(token), &sync_body(edge, "boot", 1, 0, json!([]), json!([])))
}

#[test]
fn generated_tokens_are_stored_hashed_and_survive_a_restart() {
    let dir = TempDir::new("tokens-generated");
    let mut hub = Hub::start_with_env(&dir.db(), &[], &[]);
    let admin = printed(&hub, "admin").expect("an admin token printed");
    let edge = printed(&hub, "edge").expect("an edge token printed");
    assert!(admin.starts_with("tga_") && edge.starts_with("tge_"), "{admin} {edge}");
    assert_eq!(hub.put("/v1/catalog", Some(&admin), CATALOG).status, 200);
    assert_eq!(empty_sync(&hub, &edge, "edge-1").status, 200);
    // The generated edge token is bound to edge-1.
    assert_error(&empty_sync(&hub, &edge, "edge-2"), 403, "forbidden", "/edgeId");

    // Only hashes are stored: the texts appear nowhere in the database.
    let listed = hub.get("/v1/tokens", Some(&admin));
    assert_eq!(listed.status, 200, "{}", listed.body);
    let tokens = listed.body["tokens"].as_array().expect("tokens").clone();
    assert_eq!(tokens.len(), 2, "{}", listed.body);
    let of = |role: &str| tokens.iter().find(|t| t["role"] == role).cloned().expect(role);
    assert_eq!((&of("admin")["edgeId"], &of("edge")["edgeId"]), (&Value::Null, &json!("edge-1")));
    assert!(!listed.body.to_string().contains(&admin) && !listed.body.to_string().contains(&edge));
    let plain =
        query_count(&dir.db(), &format!("SELECT COUNT(*) FROM tokens WHERE hash = '{admin}' OR hash = '{edge}'"));
    assert_eq!(plain, 0, "a token's text was stored");
    assert_eq!(query_count(&dir.db(), "SELECT COUNT(*) FROM tokens WHERE length(hash) = 64"), 2);

    // Restarted with no token variables: nothing new is generated, the old ones still work.
    hub.kill();
    let hub = Hub::start_with_env(&dir.db(), &[], &[]);
    assert_eq!(printed(&hub, "admin"), None);
    assert_eq!(printed(&hub, "edge"), None);
    assert_eq!(hub.get("/v1/tokens", Some(&admin)).status, 200);
    assert_eq!(empty_sync(&hub, &edge, "edge-1").status, 200);
}

#[test]
fn tokens_are_made_and_revoked_without_a_restart() {
    let dir = TempDir::new("tokens-made");
    let mut hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    // The environment covers both roles: nothing was generated.
    assert_eq!(hub.get("/v1/tokens", Some(ADMIN)).body, json!({ "tokens": [] }));

    // An edge token for fra-1, and a second admin token.
    let made = hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "edge", "edgeId": "fra-1"}"#);
    assert_eq!(made.status, 201, "{}", made.body);
    let fra: String = made.body["token"].as_str().expect("the token's text").into();
    let fra_id: String = made.body["id"].as_str().expect("an id").into();
    assert!(fra.starts_with("tge_") && fra_id.starts_with("tok_"), "{}", made.body);
    assert_eq!((&made.body["role"], &made.body["edgeId"]), (&json!("edge"), &json!("fra-1")));
    let second = hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "admin"}"#);
    assert_eq!(second.status, 201, "{}", second.body);
    let admin2: String = second.body["token"].as_str().unwrap().into();
    let admin2_id: String = second.body["id"].as_str().unwrap().into();
    assert_eq!(second.body["edgeId"], Value::Null);

    // Each works at once, in its role only, and an edge token speaks for its edge only.
    assert_eq!(empty_sync(&hub, &fra, "fra-1").status, 200);
    assert_error(&empty_sync(&hub, &fra, "iad-1"), 403, "forbidden", "/edgeId");
    assert_error(&hub.get("/v1/tokens", Some(&fra)), 403, "forbidden", "");
    assert_error(&hub.post("/v1/tokens", Some(&fra), r#"{"role": "admin"}"#), 403, "forbidden", "");
    assert_eq!(hub.get("/v1/customers/cus_a", Some(&admin2)).status, 200);

    // Bad requests are refused with their path, and make nothing.
    assert_error(&hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "edge"}"#), 400, "missing_field", "/edgeId");
    assert_error(&hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "root"}"#), 400, "invalid_value", "/role");
    assert_error(
        &hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "admin", "edgeId": "fra-1"}"#),
        400,
        "invalid_value",
        "/edgeId",
    );
    assert_error(
        &hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "edge", "edgeId": "hub"}"#),
        400,
        "invalid_value",
        "/edgeId",
    );
    assert_error(
        &hub.post("/v1/tokens", Some(ADMIN), r#"{"role": "edge", "edgeId": "x", "ttl": 1}"#),
        400,
        "unknown_field",
        "/ttl",
    );
    assert_eq!(hub.get("/v1/tokens", Some(ADMIN)).body["tokens"].as_array().unwrap().len(), 2);

    // Revoked: refused at once; revoking again gives the same answer; unknown ids are 404.
    let revoked = delete(&hub, &format!("/v1/tokens/{fra_id}"), &admin2);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revokedAt"].is_string(), "{}", revoked.body);
    assert_error(&empty_sync(&hub, &fra, "fra-1"), 401, "unauthorized", "");
    assert_eq!(delete(&hub, &format!("/v1/tokens/{fra_id}"), ADMIN).body, revoked.body);
    assert_error(&delete(&hub, "/v1/tokens/tok_nope", ADMIN), 404, "not_found", "");

    // Across a restart: the made admin token works, the revoked edge token stays refused, and
    // the environment's tokens work beside them.
    hub.kill();
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(hub.get("/v1/tokens", Some(&admin2)).status, 200);
    assert_error(&empty_sync(&hub, &fra, "fra-1"), 401, "unauthorized", "");
    assert_eq!(empty_sync(&hub, EDGE_A, "any-1").status, 200);
    let listed = hub.get("/v1/tokens", Some(ADMIN)).body;
    let by_id = |id: &str| listed["tokens"].as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap();
    assert_eq!(by_id(&fra_id)["revokedAt"], revoked.body["revokedAt"], "{listed}");
    assert_eq!(by_id(&admin2_id)["revokedAt"], Value::Null, "{listed}");
    // A made admin token may revoke itself while the environment still names an admin.
    assert_eq!(delete(&hub, &format!("/v1/tokens/{admin2_id}"), &admin2).status, 200);
    assert_error(&hub.get("/v1/tokens", Some(&admin2)), 401, "unauthorized", "");
}

#[test]
fn the_last_admin_token_is_not_revoked_when_the_environment_has_none() {
    let dir = TempDir::new("tokens-last-admin");
    let hub = Hub::start_with_env(&dir.db(), &[], &[]);
    let admin = printed(&hub, "admin").expect("an admin token printed");
    let listed = hub.get("/v1/tokens", Some(&admin)).body;
    let admin_row = listed["tokens"].as_array().unwrap().iter().find(|t| t["role"] == "admin").cloned().unwrap();
    let id = admin_row["id"].as_str().unwrap().to_string();
    assert_error(&delete(&hub, &format!("/v1/tokens/{id}"), &admin), 409, "conflict", "");
    assert_eq!(hub.get("/v1/tokens", Some(&admin)).status, 200, "still the administrator");
    // With another admin token made first, it may go.
    let other = hub.post("/v1/tokens", Some(&admin), r#"{"role": "admin"}"#);
    let other_text = other.body["token"].as_str().unwrap().to_string();
    assert_eq!(delete(&hub, &format!("/v1/tokens/{id}"), &other_text).status, 200);
    assert_error(&hub.get("/v1/tokens", Some(&admin)), 401, "unauthorized", "");
}
