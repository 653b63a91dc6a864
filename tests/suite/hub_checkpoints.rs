//! Restarts from a checkpoint: the real hub writes one every few history records, and a restart
//! that reads it and the history after it answers exactly as one that replays everything
//! (`--full-replay`) and as the hub did before it stopped — on SQLite, and on PostgreSQL under
//! `make test-hub-pg`.

use serde_json::{json, Value};

use crate::support::hub_harness::*;

/// Hub time of the events: two days ago, yesterday and today at noon (UTC), within this month
/// or the last one, all in periods still open or closed below.
fn days_ago(n: i64) -> String {
    let now = wall_clock().0;
    let noon = now - now.rem_euclid(86_400_000) - n * 86_400_000 + 43_200_000;
    tollgate::time::Timestamp(noon.min(now)).to_rfc3339()
}

/// Everything the API tells about the customers that a restart must rebuild.
fn view(hub: &Hub, customers: &[&str], at: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for c in customers {
        for path in [
            format!("/v1/customers/{c}/entitlements"),
            format!("/v1/customers/{c}/invoice?now={at}"),
            format!("/v1/customers/{c}/invoices?now={at}"),
            format!("/v1/customers/{c}/wallet"),
        ] {
            let a = hub.get(&path, Some(ADMIN));
            out.push((path, json!({ "status": a.status, "body": a.body })));
        }
    }
    out
}

fn started_from(hub: &Hub) -> String {
    let lines = hub.output.lock().unwrap();
    lines.iter().find(|l| l.contains("event(s) replayed")).cloned().unwrap_or_default()
}

fn assert_same(what: &str, expected: &[(String, Value)], got: &[(String, Value)]) {
    for ((path, a), (_, b)) in expected.iter().zip(got) {
        assert_eq!(a, b, "{what}: {path} differs");
    }
    assert_eq!(expected.len(), got.len());
}

#[test]
fn a_restart_from_a_checkpoint_answers_as_a_full_replay() {
    let dir = TempDir::new("checkpoints");
    let hub = Hub::start(&dir.db(), &["--checkpoint-every", "40"]);
    let mut payg = customer("cus_p", "plan_payg");
    payg["wallet"] = json!({ "currency": "USD", "balance": "30.00" });
    hub.setup(&[customer("cus_pro", "plan_pro"), payg, customer("cus_d", "plan_daily")]);
    let grant = json!({ "id": "g1", "featureKey": "tokens", "amount": "150" });
    assert_eq!(hub.post("/v1/customers/cus_pro/grants", Some(ADMIN), &grant.to_string()).status, 201);

    // 12 rounds of 25 events: tokens past the hard limit of 1,000 + 150 (some denied), instant
    // charges from the wallet, daily calls over three days; a top-up, a new catalog version and
    // a closed invoice on the way.
    let mut n = 0;
    for round in 0..12 {
        let mut batch = Vec::new();
        for i in 0..25 {
            n += 1;
            let (subject, kind, data) = match i % 3 {
                0 => ("cus_pro", "llm.completion", json!({ "tokens": 7 + round })),
                1 => ("cus_p", "api.call", json!({})),
                _ => ("cus_d", "api.call", json!({})),
            };
            let time = days_ago(i64::from(i % 3));
            batch.push(json!({ "id": format!("e{n}"), "source": "api", "type": kind, "subject": subject,
                               "time": time, "data": data }));
        }
        let r = hub.post("/v1/events", Some(ADMIN), &Value::Array(batch).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        match round {
            3 => {
                let t =
                    hub.post("/v1/customers/cus_p/wallet", Some(ADMIN), r#"{"amount": "5", "idempotencyKey": "t1"}"#);
                assert_eq!(t.status, 200, "{}", t.body);
            }
            6 => {
                let changed = CATALOG.replace("\"unitPrice\": \"0.5\"", "\"unitPrice\": \"0.75\"");
                assert_eq!(hub.put("/v1/catalog", Some(ADMIN), &changed).status, 200);
            }
            8 => {
                let body = json!({ "customerId": "cus_d", "at": days_ago(2) }).to_string();
                let r = hub.post("/v1/invoices/close", Some(ADMIN), &body);
                assert_eq!(r.status, 200, "{}", r.body);
            }
            _ => {}
        }
    }
    let denied = hub.post(
        "/v1/events",
        Some(ADMIN),
        &json!([{ "id": "big", "source": "api", "type": "llm.completion",
        "subject": "cus_pro", "data": { "tokens": 5000 } }])
        .to_string(),
    );
    assert_eq!(denied.body["outcomes"][0]["allowed"], false, "{}", denied.body);
    let customers = ["cus_pro", "cus_p", "cus_d"];
    let at = days_ago(0);
    let before = view(&hub, &customers, &at);
    let checkpoints = query_count(&dir.db(), "SELECT COUNT(*) FROM checkpoints");
    let last = query_count(&dir.db(), "SELECT MAX(seq) FROM checkpoints");
    let stored = query_count(&dir.db(), "SELECT COUNT(*) FROM events");
    assert!(stored > 250 && stored < 301, "denied events are not stored: {stored}");
    assert_eq!(checkpoints, 1, "older checkpoints are deleted with each new one");
    assert!(last > 200, "a checkpoint every 40 records of about 310: the last at seq {last}");
    drop(hub);

    // From the checkpoint: fewer than 40 events read, the same answers.
    let hub = Hub::start(&dir.db(), &[]);
    let line = started_from(&hub);
    assert!(line.contains(&format!("after the checkpoint at seq {last}")), "{line}");
    let replayed: usize =
        line.split(", ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap();
    assert!(replayed < 40, "{line}");
    assert_same("from the checkpoint", &before, &view(&hub, &customers, &at));
    drop(hub);

    // The whole history: the same answers again.
    let hub = Hub::start(&dir.db(), &["--full-replay"]);
    let line = started_from(&hub);
    assert!(!line.contains("after the checkpoint") && line.contains(&format!(" {stored} event(s) replayed")), "{line}");
    assert_same("full replay", &before, &view(&hub, &customers, &at));
    drop(hub);

    // A checkpoint this build cannot read (another format): the whole history is replayed.
    execute(&dir.db(), "UPDATE checkpoints SET json = REPLACE(json, '\"format\":1,', '\"format\":99,')");
    let hub = Hub::start(&dir.db(), &[]);
    let output = hub.output.lock().unwrap().join("\n");
    assert!(
        output.contains("checkpoint format 99") && output.contains("replaying the whole history instead"),
        "{output}"
    );
    assert!(started_from(&hub).contains(&format!(" {stored} event(s) replayed")), "{output}");
    assert_same("after a refused checkpoint", &before, &view(&hub, &customers, &at));
}
