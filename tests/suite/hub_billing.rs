//! Billing truth at the hub (issue 14), against the real `tollgate hub` binary: no early close
//! (409 `period_open`), the invoice list, old usage into a period still open, late usage of a
//! closed period billed as an adjustment on the next invoice — also across a restart — and a
//! price edit that leaves an existing subscriber's invoice unchanged. Dates are relative to the
//! hub's clock (the wall clock). Run with `cargo test --features hub --test hub_billing`.

use crate::support::hub_harness::*;
use serde_json::{json, Value};
use tollgate::time::Timestamp;

/// Calls at 0.01 each in arrears; an upfront fee; monthly and yearly plans.
fn catalog(call_price: &str) -> String {
    json!({
        "schemaVersion": 1,
        "products": [{ "id": "prod", "name": "API" }],
        "features": [],
        "billableMetrics": [
            { "id": "bm_calls", "productId": "prod", "name": "Calls", "eventType": "api.call", "aggregation": "COUNT" }
        ],
        "fees": [{ "id": "fee_base", "productId": "prod", "name": "Base" }],
        "plans": [
            { "id": "plan_month", "productId": "prod", "name": "Monthly", "currency": "USD", "billingCadence": "P1M",
              "prices": [
                { "id": "price_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": call_price } },
                { "id": "price_base", "feeId": "fee_base", "paymentTerm": "in_advance",
                  "model": { "type": "flat", "amount": "10" } }
              ] },
            { "id": "plan_year", "productId": "prod", "name": "Yearly", "currency": "USD", "billingCadence": "P1Y",
              "prices": [
                { "id": "price_year_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
                  "model": { "type": "per_unit", "unitPrice": "0.01" } }
              ] }
        ]
    })
    .to_string()
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    Timestamp(i64::try_from(ms).expect("ms"))
}

/// The first instant of the month `back` months before the current one, and that month's day 10 and 20.
fn month(back: i64) -> (Timestamp, Timestamp, Timestamp) {
    let (y, m, _, _) = now().to_parts();
    let index = y * 12 + i64::from(m) - 1 - back;
    let (y, m) = (index.div_euclid(12), u32::try_from(index.rem_euclid(12) + 1).expect("month"));
    let day = |d: u32| Timestamp::from_parts(y, m, d, 0);
    (day(1), day(10), day(20))
}

fn call(id: &str, customer: &str, at: Timestamp) -> Value {
    json!({ "id": id, "source": "server", "type": "api.call", "subject": customer, "time": at.to_rfc3339(), "data": {} })
}

fn setup(hub: &Hub, call_price: &str) {
    let r = hub.put("/v1/catalog", Some(ADMIN), &catalog(call_price));
    assert_eq!(r.status, 200, "{}", r.body);
    // Yearly from Jan 1 of the year 3 months ago, so that its period is open and old events exist.
    let (start, _, _) = month(3);
    let (y, _, _, _) = start.to_parts();
    let year = Timestamp::from_parts(y, 1, 1, 0).to_rfc3339();
    let customers = [
        json!({ "id": "cus_m", "subscriptions": [{ "id": "sub_m", "planId": "plan_month", "startedAt": month(3).0.to_rfc3339() }] }),
        json!({ "id": "cus_y", "subscriptions": [{ "id": "sub_y", "planId": "plan_year", "startedAt": year }] }),
    ];
    for c in customers {
        let id = c["id"].as_str().expect("id");
        let r = hub.put(&format!("/v1/customers/{id}"), Some(ADMIN), &c.to_string());
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    }
}

fn post_events(hub: &Hub, events: &[Value]) -> Value {
    let r = hub.post("/v1/events", Some(ADMIN), &Value::Array(events.to_vec()).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn close(hub: &Hub, customer: &str, at: Timestamp) -> Answer {
    hub.post("/v1/invoices/close", Some(ADMIN), &json!({ "customerId": customer, "at": at.to_rfc3339() }).to_string())
}

fn line_amount(doc: &Value, price: &str, kind: &str) -> tollgate::Decimal {
    doc["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["priceId"] == price && l["type"] == kind)
        .map(|l| decimal(&l["amount"]))
        .sum()
}

fn d(s: &str) -> tollgate::Decimal {
    tollgate::Decimal::from_str_exact(s).expect("decimal")
}

#[test]
fn a_forty_day_old_event_into_an_open_yearly_period_is_billed() {
    let dir = TempDir::new("hub-billing-old");
    let hub = Hub::start(&dir.db(), &[]);
    setup(&hub, "0.01");
    let old = Timestamp(now().0 - 40 * 86_400_000);
    let body = post_events(&hub, &[call("old-1", "cus_y", old)]);
    assert_eq!(body["outcomes"][0]["allowed"], true, "{body}");
    assert_eq!(hub.metered("cus_y", "price_year_calls", None), d("1"));
    // Sent again: a duplicate, whatever its age (the ledger answers).
    let again = post_events(&hub, &[call("old-1", "cus_y", old)]);
    assert_eq!(again["outcomes"][0]["duplicate"], true, "{again}");
    assert_eq!(hub.metered("cus_y", "price_year_calls", None), d("1"));
}

#[test]
fn an_open_period_is_not_closed_and_invoices_are_listed() {
    let dir = TempDir::new("hub-billing-list");
    let hub = Hub::start(&dir.db(), &[]);
    setup(&hub, "0.01");
    let (_, this_month_10th, _) = month(0);
    let open = close(&hub, "cus_m", now());
    assert_error(&open, 409, "period_open", "/at");
    let _ = this_month_10th;
    // Last month has ended: it closes, once.
    let (_, last_10th, _) = month(1);
    post_events(&hub, &[call("c-last", "cus_m", last_10th)]);
    let closed = close(&hub, "cus_m", last_10th);
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.body["status"], "final");
    assert_eq!(closed.body["kind"], "arrears");
    assert_eq!(line_amount(&closed.body, "price_calls", "usage"), d("0.01"));
    assert_eq!(line_amount(&closed.body, "price_base", "fee"), d("0"), "the fee is upfront: {}", closed.body);
    // Listed: per month since the start (4 months), an advance and an arrears invoice each.
    let list = hub.get("/v1/customers/cus_m/invoices", Some(ADMIN));
    assert_eq!(list.status, 200, "{}", list.body);
    let docs = list.body["invoices"].as_array().expect("invoices");
    assert_eq!(docs.len(), 8, "{}", list.body);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, ["advance", "arrears", "advance", "arrears", "advance", "arrears", "advance", "arrears"]);
    for doc in docs {
        assert!(doc["id"].as_str().is_some_and(|id| id.starts_with("sub_m-")), "{doc}");
        assert!(doc["issuedAt"].is_string(), "{doc}");
        if doc["kind"] == "advance" {
            assert_eq!(doc["status"], "final");
            assert_eq!(doc["total"], "10.00");
            assert_eq!(doc["issuedAt"], doc["periodStart"]);
        }
    }
    let last_arrears = &docs[5];
    assert_eq!(last_arrears, &closed.body, "the closed invoice is listed as stored");
    assert_eq!(docs[7]["status"], "draft", "the current month is a draft");
    // Edge tokens may not list invoices.
    assert_error(&hub.get("/v1/customers/cus_m/invoices", Some(EDGE_A)), 403, "forbidden", "");
}

#[test]
fn late_usage_of_a_closed_month_is_an_adjustment_on_the_next_close_across_a_restart() {
    let dir = TempDir::new("hub-billing-late");
    let db = dir.db();
    let mut hub = Hub::start(&db, &[]);
    setup(&hub, "0.01");
    let (_, two_ago_10th, two_ago_20th) = month(2);
    let (last_start, last_10th, _) = month(1);
    post_events(&hub, &[call("c1", "cus_m", two_ago_10th), call("c2", "cus_m", last_10th)]);
    let first = close(&hub, "cus_m", two_ago_10th);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["total"], "0.01");
    // Two calls of that closed month arrive late (an edge was offline for weeks).
    let body = post_events(&hub, &[call("late-1", "cus_m", two_ago_20th), call("late-2", "cus_m", two_ago_20th)]);
    assert!(body["outcomes"].as_array().expect("outcomes").iter().all(|o| o["allowed"] == true), "{body}");
    // The closed invoice does not change.
    assert_eq!(close(&hub, "cus_m", two_ago_10th).body, first.body);
    // Restart: the adjustment is still owed, and billed once.
    hub.kill();
    let hub = Hub::start(&db, &[]);
    let next = close(&hub, "cus_m", last_10th);
    assert_eq!(next.status, 200, "{}", next.body);
    let adjustments: Vec<&Value> =
        next.body["lines"].as_array().expect("lines").iter().filter(|l| l["type"] == "adjustment").collect();
    assert_eq!(adjustments.len(), 1, "{}", next.body);
    assert_eq!(adjustments[0]["amount"], "0.02");
    assert_eq!(adjustments[0]["adjusts"]["periodStart"], first.body["periodStart"]);
    assert_eq!(adjustments[0]["adjusts"]["subscriptionId"], "sub_m");
    // Last month's own call 0.01 + the adjustment 0.02.
    assert_eq!(next.body["total"], "0.03");
    assert_eq!(next.body["periodStart"], last_start.to_rfc3339());
    // Not again on the running bill of this month, before or after another restart.
    let preview = hub.get("/v1/customers/cus_m/invoice", Some(ADMIN));
    assert!(
        preview.body["lines"].as_array().expect("lines").iter().all(|l| l["type"] != "adjustment"),
        "{}",
        preview.body
    );
}

#[test]
fn a_price_edit_leaves_existing_subscribers_on_their_version_until_migrated() {
    let dir = TempDir::new("hub-billing-versions");
    let db = dir.db();
    let mut hub = Hub::start(&db, &[]);
    setup(&hub, "0.01");
    let (_, last_10th, _) = month(1);
    let just_now = Timestamp(now().0 - 60_000);
    post_events(&hub, &[call("old-month", "cus_m", last_10th), call("m1", "cus_m", just_now)]);
    let closed = close(&hub, "cus_m", last_10th);
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(line_amount(&closed.body, "price_calls", "usage"), d("0.01"));

    // The call price doubles: the running subscription keeps 0.01, pinned in its definition.
    let r = hub.put("/v1/catalog", Some(ADMIN), &catalog("0.02"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["pinned"], json!(["cus_m"]), "{}", r.body);
    let new = json!({ "id": "cus_new", "subscriptions": [{ "id": "sub_new", "planId": "plan_month", "startedAt": just_now.to_rfc3339() }] });
    assert_eq!(hub.put("/v1/customers/cus_new", Some(ADMIN), &new.to_string()).status, 201);
    post_events(&hub, &[call("m2", "cus_m", just_now), call("n1", "cus_new", just_now)]);
    // cus_m: 2 calls × 0.01; the new subscriber pays the new price.
    assert_eq!(unit(&hub, "cus_m"), ("0.01".to_string(), "0.02".to_string()));
    assert_eq!(unit(&hub, "cus_new"), ("0.02".to_string(), "0.02".to_string()));
    // The closed month is never repriced.
    assert_eq!(close(&hub, "cus_m", last_10th).raw, closed.raw);

    // After a restart (the pins are replayed with the catalog): the same.
    hub.kill();
    let hub = Hub::start(&db, &[]);
    assert_eq!(unit(&hub, "cus_m"), ("0.01".to_string(), "0.02".to_string()));

    // Migrated: the current prices from now on, for the open period too.
    let r = hub.post("/v1/customers/cus_m/subscriptions/sub_m/migrate", Some(ADMIN), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unit(&hub, "cus_m"), ("0.02".to_string(), "0.04".to_string()));
    assert_eq!(close(&hub, "cus_m", last_10th).raw, closed.raw);
    let unknown = hub.post("/v1/customers/cus_m/subscriptions/sub_nope/migrate", Some(ADMIN), "");
    assert_error(&unknown, 400, "unknown_reference", "/subscriptionId");
    assert_error(&hub.post("/v1/customers/cus_m/subscriptions/sub_m/migrate", Some(EDGE_A), ""), 403, "forbidden", "");
}

/// The unit price and amount of the call line on the running bill of `customer`.
fn unit(hub: &Hub, customer: &str) -> (String, String) {
    let preview = hub.get(&format!("/v1/customers/{customer}/invoice"), Some(ADMIN));
    assert_eq!(preview.status, 200, "{}", preview.body);
    let line = preview.body["lines"].as_array().expect("lines").iter().find(|l| l["priceId"] == "price_calls").cloned();
    let line = line.unwrap_or_else(|| panic!("no call line: {}", preview.body));
    (line["unitPrice"].as_str().expect("unit price").to_string(), line["amount"].as_str().expect("amount").to_string())
}
