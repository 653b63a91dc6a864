//! Money you can read (issue 20): `GET /v1/customers/{id}` (the definition, the wallet's
//! figures, each grant's remaining units) and `GET /v1/customers/{id}/wallet` (balance, top-ups,
//! real-time debits), on the real binary, with figures computed by hand.

use serde_json::json;

use crate::support::hub_harness::{assert_error, customer, month_start, Hub, TempDir, ADMIN, EDGE_A};

#[test]
fn a_customer_and_their_wallet_read_back_with_exact_figures() {
    let dir = TempDir::new("reads");
    let hub = Hub::start(&dir.db(), &[]);
    let mut cus = customer("cus_w", "plan_payg");
    cus["wallet"] = json!({ "currency": "USD", "balance": "0" });
    cus["grants"] = json!([{ "id": "grt_1", "featureKey": "tokens", "amount": "500" }]);
    hub.setup(&[cus]);
    for (key, amount) in [("k1", "5"), ("k2", "2.5"), ("k1", "5")] {
        let r = hub.post(
            "/v1/customers/cus_w/wallet",
            Some(ADMIN),
            &json!({ "amount": amount, "idempotencyKey": key }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Three calls at 0.10 from the wallet (instant), and 120 tokens burnt from the grant.
    let calls: Vec<_> = (0..3)
        .map(|i| json!({ "id": format!("c{i}"), "source": "api", "type": "api.call", "subject": "cus_w" }))
        .collect();
    let mut batch = calls.clone();
    batch.push(
        json!({ "id": "t1", "source": "api", "type": "llm.completion", "subject": "cus_w", "data": { "tokens": 120 } }),
    );
    let r = hub.post("/v1/events", Some(ADMIN), &json!(batch).to_string());
    assert_eq!(r.body["counts"]["accepted"], json!(4), "{}", r.body);

    // Funded 5.00 + 2.50 = 7.50; debited 3 × 0.10 = 0.30; balance 7.50 − 0.30 = 7.20.
    let r = hub.get("/v1/customers/cus_w", Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"]["id"], json!("cus_w"));
    assert_eq!(r.body["customer"]["subscriptions"][0]["planId"], json!("plan_payg"));
    assert_eq!(
        r.body["wallet"],
        json!({ "currency": "USD", "balance": "7.20", "creditLimit": "0.00", "funded": "7.50", "debited": "0.30" })
    );
    // The grant of 500 tokens has 500 − 120 = 380 left.
    assert_eq!(
        r.body["grants"],
        json!([{ "id": "grt_1", "featureKey": "tokens", "amount": "500", "remaining": "380" }])
    );

    let w = hub.get("/v1/customers/cus_w/wallet", Some(ADMIN));
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(
        (&w.body["balance"], &w.body["funded"], &w.body["debited"]),
        (&json!("7.20"), &json!("7.50"), &json!("0.30"))
    );
    // Newest first; the repeated k1 is one top-up.
    assert_eq!(w.body["topUpCount"], json!(2));
    let topups: Vec<_> = w.body["topUps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["idempotencyKey"].clone(), t["amount"].clone(), t["balance"].clone()))
        .collect();
    assert_eq!(topups, [(json!("k2"), json!("2.50"), json!("7.50")), (json!("k1"), json!("5.00"), json!("5.00"))]);
    assert_eq!(w.body["debitCount"], json!(1));
    assert_eq!(
        w.body["debits"],
        json!([{ "subscriptionId": "sub_cus_w", "priceId": "price_payg_calls", "periodStart": month_start(), "events": 3, "amount": "0.30" }])
    );

    // Unknown customers, missing and edge tokens.
    assert_error(&hub.get("/v1/customers/cus_nobody", Some(ADMIN)), 404, "not_found", "");
    assert_error(&hub.get("/v1/customers/cus_w", None), 401, "unauthorized", "");
    assert_error(&hub.get("/v1/customers/cus_w", Some(EDGE_A)), 403, "forbidden", "");
    assert_error(&hub.get("/v1/customers/cus_w/wallet", Some(EDGE_A)), 403, "forbidden", "");
}
