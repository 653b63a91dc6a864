//! The engine as an edge (`leases: true`): hard limits need a lease from the hub, uses are
//! queued as events, and the hub's engine records them and budgets leases (SPEC §7).

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::entitlements::Reason;
use tollgate::sync::{Escrow, Policy, SyncRequest, SyncResponse};
use tollgate::time::Timestamp;

fn snapshot() -> Value {
    serde_json::from_str(include_str!("../data/leased-snapshot.json")).unwrap()
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A hub in miniature: its engine, its escrow, one round trip.
struct Hub {
    engine: Engine,
    escrow: Escrow,
    policy: Policy,
}

impl Hub {
    fn new() -> Hub {
        Hub::of(&snapshot())
    }

    fn of(snapshot: &Value) -> Hub {
        Hub {
            engine: Engine::from_snapshot(snapshot, Options::default()).unwrap(),
            escrow: Escrow::default(),
            policy: Policy::default(),
        }
    }

    fn sync(&mut self, edge: &mut Engine, now: Timestamp) {
        let request = edge.sync_request(now).unwrap().unwrap();
        let request = SyncRequest::from_value(&serde_json::to_value(&request).unwrap()).unwrap();
        for event in &request.events {
            self.engine.record(event, now).unwrap();
        }
        let mut grants = Vec::new();
        for report in &request.leases {
            let terms = self.engine.lease_terms(&report.key, now).unwrap().unwrap_or_default();
            let (grant, _) = self.escrow.report(request.reporter(), report, terms, &self.policy, now).unwrap();
            grants.push(grant);
        }
        let response = SyncResponse { ack_seq: request.seq, leases: grants, snapshot: None };
        edge.apply_sync(&serde_json::to_value(&response).unwrap(), now).unwrap();
    }
}

fn edge(id: &str) -> Engine {
    edge_of(&snapshot(), id)
}

fn edge_of(snapshot: &Value, id: &str) -> Engine {
    let mut e = Engine::from_snapshot(snapshot, Options::default()).unwrap();
    e.enable_leases(id, "boot-1");
    e
}

#[test]
fn a_hard_limit_needs_a_lease_then_sync_grants_it() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut fra = edge("fra-1");
    let first = fra.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap();
    assert!(!first.allowed);
    assert_eq!(first.reason, Reason::LeaseExhausted);
    // The decision says it rests on a lease, and that a sync would help.
    assert!(!first.exact && first.needs_sync, "{first:?}");
    assert!(fra.needs_sync(now));
    hub.sync(&mut fra, now);
    let second = fra.consume("cus_acme", "api-calls", Decimal::from(10), None, now).unwrap();
    assert!(second.allowed, "{second:?}");
    assert!(!second.exact, "{second:?}");
    // Without leases the same engine's answers are exact.
    let alone = Engine::from_snapshot(&snapshot(), Options::default()).unwrap().check("cus_acme", "api-calls", now);
    assert!(alone.unwrap().exact);
    // The use travels to the hub as an event and lands in its ledger after the next sync.
    hub.sync(&mut fra, now);
    assert!(fra.leases().unwrap().events.is_empty());
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(10));
}

#[test]
fn two_edges_hammering_one_limit_never_exceed_it_together() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut edges = [edge("fra-1"), edge("iad-1")];
    let mut allowed = 0u32;
    for round in 0..400 {
        for (i, e) in edges.iter_mut().enumerate() {
            for k in 0..5 {
                let id = format!("{i}-{round}-{k}");
                let event = json!({ "id": id, "source": format!("app-{i}"), "type": "api.call",
                                    "subject": "cus_acme", "time": "2026-11-10T00:00:00Z" });
                if e.ingest(&event, now).unwrap().allowed {
                    allowed += 1;
                }
            }
            hub.sync(e, now);
        }
    }
    assert_eq!(allowed, 1000, "exactly the limit is allowed across both edges");
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(1000));
    let invoice = hub.engine.invoice_preview("cus_acme", now).unwrap();
    assert_eq!(invoice.total, Decimal::new(1000, 2));
}

#[test]
fn a_fresh_edge_learns_in_one_sync_that_the_global_limit_is_spent() {
    // Two edges use up the global limit of 1,000; a third edge starting afterwards answers
    // `limit_reached` after its first sync, with the hub's figures: no "sync and retry" loop.
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut edges = [edge("fra-1"), edge("iad-1")];
    let mut allowed = Decimal::ZERO;
    for _ in 0..200 {
        for e in edges.iter_mut() {
            for _ in 0..5 {
                if e.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap().allowed {
                    allowed += Decimal::ONE;
                }
            }
            hub.sync(e, now);
        }
    }
    assert_eq!(allowed, Decimal::from(1000));
    let mut fresh = edge("ams-1");
    let first = fresh.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    // It holds no lease yet: a sync would help, and it says so.
    assert_eq!((first.reason, first.needs_sync), (Reason::LeaseExhausted, true), "{first:?}");
    hub.sync(&mut fresh, now);
    for d in [
        fresh.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap(),
        fresh.check("cus_acme", "api-calls", now).unwrap(),
    ] {
        assert_eq!((d.allowed, d.reason, d.needs_sync), (false, Reason::LimitReached, false), "{d:?}");
        let f = d.figures.unwrap();
        assert_eq!((f.balance, f.usage, f.limit), (Decimal::ZERO, Decimal::from(1000), Decimal::from(1000)), "{d:?}");
        assert_eq!(f.reset_at, Some(at("2026-12-01T00:00:00Z")));
    }
    // Another sync changes nothing: still spent.
    hub.sync(&mut fresh, now);
    let again = fresh.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    assert_eq!((again.reason, again.needs_sync), (Reason::LimitReached, false));
}

#[test]
fn an_exported_state_comes_back_whole() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    let mut fra = edge("fra-1");
    fra.consume("cus_acme", "api-calls", Decimal::from(5), None, now).unwrap();
    hub.sync(&mut fra, now);
    fra.consume("cus_acme", "api-calls", Decimal::from(5), Some("req-1"), now).unwrap();
    let text = fra.export_sync_state().unwrap().unwrap();
    let mut restarted = Engine::from_snapshot(&snapshot(), Options::default()).unwrap();
    restarted.import_sync_state(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(restarted.export_sync_state().unwrap(), Some(text));
    assert_eq!(restarted.leases().unwrap().pending_events(), fra.leases().unwrap().pending_events());
    let bad = restarted.import_sync_state(&json!({ "edgeId": 1, "leases": [{ "used": "-1" }] })).unwrap_err();
    assert!(bad.iter().any(|e| e.path == "/edgeId"));
    assert!(bad.iter().any(|e| e.path == "/leases/0/used"));
}

#[test]
fn the_hub_records_edge_usage_past_its_own_view_of_the_limit() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::new();
    for i in 0..3 {
        let e = json!({ "id": format!("c{i}"), "source": "fra-1", "type": "tollgate.consume", "subject": "cus_acme",
                        "time": "2026-11-10T00:00:00Z", "data": { "featureKey": "api-calls", "quantity": "600" } });
        assert!(hub.engine.record(&e, now).unwrap().allowed);
    }
    let again = json!({ "id": "c0", "source": "fra-1", "type": "tollgate.consume", "subject": "cus_acme",
                        "time": "2026-11-10T00:00:00Z", "data": { "featureKey": "api-calls", "quantity": "600" } });
    assert!(hub.engine.record(&again, now).unwrap().duplicate);
    let period = tollgate::time::Period { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
    assert_eq!(hub.engine.quantity("cus_acme", "bm_calls", period).unwrap(), Decimal::from(1800));
    let key = tollgate::sync::LeaseKey {
        customer_id: "cus_acme".into(),
        key: "api-calls".into(),
        period: at("2026-11-01T00:00:00Z"),
    };
    assert_eq!(hub.engine.lease_terms(&key, now).unwrap().map(|t| t.budget), Some(Decimal::from(1000)));
}

#[test]
fn with_the_hubs_key_only_signed_snapshots_are_taken_and_a_bad_one_changes_nothing() {
    let keys: Value = serde_json::from_str(include_str!("../../examples/keys/demo-hub.json")).unwrap();
    let key = tollgate::sync::signed::PublicKey::parse(keys["publicKey"].as_str().unwrap()).unwrap();
    let options = Options { hub_public_key: Some(key), ..Options::default() };
    let signed: Value = serde_json::from_str(include_str!("../../examples/llm-snapshot.signed.json")).unwrap();
    let plain: Value = serde_json::from_str(include_str!("../../examples/llm-snapshot.json")).unwrap();
    let unsigned = Engine::from_snapshot(&plain, options).unwrap_err();
    assert_eq!(unsigned[0].code, tollgate::error::Code::UnsignedSnapshot);
    let mut engine = Engine::from_snapshot(&signed, options).unwrap();
    assert_eq!(engine.customer_count(), 3);
    // An altered payload: one character of the base64 changed.
    let mut altered = signed.clone();
    let payload = altered["payload"].as_str().unwrap().to_string();
    let flipped = if payload.starts_with('e') { "f" } else { "e" };
    altered["payload"] = Value::String(format!("{flipped}{}", &payload[1..]));
    let errors = engine.apply_snapshot(&altered).unwrap_err();
    assert!(errors.iter().all(|e| e.code == tollgate::error::Code::BadSignature), "{errors:?}");
    assert!(engine.apply_snapshot(&plain).is_err());
    assert_eq!(engine.customer_count(), 3, "the previous snapshot stays");
    assert!(engine.apply_snapshot(&signed).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Wallets (SPEC §6.3, §7): prepaid money leased like a quota.

fn wallet_snapshot() -> Value {
    serde_json::from_str(include_str!("../data/wallet-leased-snapshot.json")).unwrap()
}

fn call(id: &str) -> Value {
    json!({ "id": id, "source": "app", "type": "api.call", "subject": "cus_acme", "time": "2026-11-10T00:00:00Z" })
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn line<'a>(invoice: &'a tollgate::billing::Invoice, description_part: &str) -> Option<&'a tollgate::billing::Line> {
    invoice.lines.iter().find(|l| l.description.contains(description_part))
}

#[test]
fn two_edges_never_spend_one_wallet_twice() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::of(&wallet_snapshot());
    let mut edges = [edge_of(&wallet_snapshot(), "fra-1"), edge_of(&wallet_snapshot(), "iad-1")];
    let mut allowed = 0u32;
    for round in 0..100 {
        for (i, e) in edges.iter_mut().enumerate() {
            for k in 0..5 {
                let outcome = e.ingest(&call(&format!("{i}-{round}-{k}")), now).unwrap();
                if outcome.allowed {
                    allowed += 1;
                    assert_eq!(outcome.charges[0].amount, "0.01");
                } else {
                    assert!(outcome.wallet_denied || outcome.reason == Reason::LeaseExhausted, "{outcome:?}");
                }
            }
            hub.sync(e, now);
        }
    }
    // 2.00 at 0.01 a call: exactly 200, across both edges, and the hub's balance is exactly 0.
    assert_eq!(allowed, 200);
    assert_eq!(hub.engine.wallet_balance("cus_acme"), Some(Decimal::ZERO));
    let invoice = hub.engine.invoice_preview("cus_acme", now).unwrap();
    let instant = invoice.lines.iter().find(|l| l.price_id.as_deref() == Some("price_calls")).unwrap();
    assert_eq!(instant.amount, dec("2.00"));
    assert_eq!(invoice.total, Decimal::ZERO, "{invoice:?}");
    // A spent wallet is `limit_reached` at the edge once the hub said so, not "sync and retry".
    let last = edges[0].ingest(&call("late"), now).unwrap();
    assert!(!last.allowed && last.wallet_denied);
    assert_eq!(last.reason, Reason::LimitReached, "{last:?}");
    // Spent: no sync would help (until the budget grows).
    let spent = edges[0].consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    assert_eq!((spent.reason, spent.needs_sync, spent.exact), (Reason::LimitReached, false, false), "{spent:?}");
    assert_eq!(last.wallet.as_ref().unwrap().balance, "0.00");
}

#[test]
fn a_top_up_reaches_edges_through_sync() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::of(&wallet_snapshot());
    let mut fra = edge_of(&wallet_snapshot(), "fra-1");
    let mut allowed = 0;
    for i in 0..300 {
        if !fra.ingest(&call(&format!("a{i}")), now).unwrap().allowed {
            hub.sync(&mut fra, now);
            if fra.ingest(&call(&format!("a{i}")), now).unwrap().allowed {
                allowed += 1;
            }
        } else {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 200);
    // The hub's engine takes the top-up (the definition's new figure); the edge's snapshot does not.
    let mut customer = wallet_snapshot()["customers"][0].clone();
    customer["wallet"]["balance"] = json!("0.50");
    hub.engine.upsert_customer(&customer).unwrap();
    hub.engine.adopt_wallet_definition("cus_acme");
    let mut more = 0;
    for i in 0..100 {
        let mut o = fra.ingest(&call(&format!("b{i}")), now).unwrap();
        if !o.allowed {
            hub.sync(&mut fra, now);
            o = fra.ingest(&call(&format!("b{i}")), now).unwrap();
        }
        more += u32::from(o.allowed);
    }
    assert_eq!(more, 50, "exactly the 0.50 top-up");
    hub.sync(&mut fra, now);
    assert_eq!(hub.engine.wallet_balance("cus_acme"), Some(Decimal::ZERO));
}

#[test]
fn consume_charges_the_wallet_like_an_event() {
    let now = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::of(&wallet_snapshot());
    let mut fra = edge_of(&wallet_snapshot(), "fra-1");
    hub.sync(&mut fra, now); // nothing leased yet: the first consume is refused and asks
    let first = fra.consume("cus_acme", "api-calls", Decimal::from(5), Some("r1"), now).unwrap();
    assert_eq!(first.reason, Reason::LeaseExhausted);
    hub.sync(&mut fra, now);
    let d = fra.consume("cus_acme", "api-calls", Decimal::from(5), Some("r1"), now).unwrap();
    assert!(d.allowed, "{d:?}");
    // The decision carries the wallet that paid: 2.00 − 5 × 0.01 as far as this edge knows.
    let wallet = d.wallet.as_ref().expect("the wallet on a paid consume");
    assert_eq!((wallet.currency, wallet.balance.as_str(), wallet.spent.as_deref()), ("USD", "1.95", Some("0.05")));
    assert_eq!(serde_json::to_value(&d).unwrap()["wallet"]["balance"], json!("1.95"));
    hub.sync(&mut fra, now);
    assert_eq!(hub.engine.wallet_balance("cus_acme"), Some(dec("1.95")));
    let invoice = hub.engine.invoice_preview("cus_acme", now).unwrap();
    let instant = invoice.lines.iter().find(|l| l.price_id.as_deref() == Some("price_calls")).unwrap();
    assert_eq!((instant.quantity, instant.amount), (Decimal::from(5), dec("0.05")));
    // Without leases, the engine's own wallet pays, all or nothing.
    let mut alone = Engine::from_snapshot(&wallet_snapshot(), Options::default()).unwrap();
    assert!(alone.consume("cus_acme", "api-calls", Decimal::from(200), None, now).unwrap().allowed);
    let over = alone.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    assert_eq!(over.reason, Reason::LimitReached);
    // A wallet denial shows the balance that could not pay.
    assert_eq!(over.wallet.as_ref().map(|w| w.balance.as_str()), Some("0.00"), "{over:?}");
    assert_eq!(alone.wallet_balance("cus_acme"), Some(Decimal::ZERO));
}

#[test]
fn tiered_instant_prices_across_edges_are_settled_on_the_invoice() {
    let now = at("2026-11-10T00:00:00Z");
    let mut snap = wallet_snapshot();
    snap["customers"][0]["wallet"]["balance"] = json!("10.00"); // plenty: no edge waits for another
    let mut hub = Hub::of(&snap);
    let mut edges = [edge_of(&snap, "fra-1"), edge_of(&snap, "iad-1")];
    for e in &mut edges {
        e.ingest(&call("warm-up"), now).unwrap();
        hub.sync(e, now); // a wallet lease
        hub.sync(e, now);
    }
    // Each edge sees only its own 80 tokens: each rates them in the first tier, 80 × 0.01.
    for (i, e) in edges.iter_mut().enumerate() {
        let tokens = json!({ "id": format!("t{i}"), "source": "app", "type": "llm.call", "subject": "cus_acme",
                             "time": "2026-11-10T00:00:00Z", "data": { "tokens": 80 } });
        let mut o = e.ingest(&tokens, now).unwrap();
        if !o.allowed {
            hub.sync(e, now);
            o = e.ingest(&tokens, now).unwrap();
        }
        assert!(o.allowed, "{o:?}");
        assert_eq!(dec(&o.charges[0].amount), dec("0.80"));
        hub.sync(e, now);
    }
    // Globally, 160 tokens cost 100 × 0.01 + 60 × 0.001 = 1.06: the wallets paid 1.60, and the
    // invoice settles −0.54 on a line of its own.
    let invoice = hub.engine.invoice_preview("cus_acme", now).unwrap();
    let paid =
        invoice.lines.iter().find(|l| l.price_id.as_deref() == Some("price_tokens") && l.quantity > Decimal::ZERO);
    assert_eq!(paid.unwrap().precise_amount, dec("1.60"));
    let settlement = line(&invoice, "settlement").expect("a settlement line");
    assert_eq!(settlement.precise_amount, dec("-0.54"));
    assert_eq!(hub.engine.wallet_balance("cus_acme"), Some(dec("10.00") - dec("1.60")));
    // Paid 1.60 from the wallet; the settlement is what is owed back: −0.54.
    assert_eq!(invoice.total, dec("-0.54"));
}

#[test]
fn an_offline_allowance_serves_while_the_hub_is_silent_and_only_then() {
    let mut snap = wallet_snapshot();
    snap["customers"][0]["wallet"] = json!({ "currency": "USD", "balance": "2.00",
        "offlineMode": "allowance", "offlineAllowance": "0.05" });
    // The calls' hard limit has an allowance too: offline, the wallet's 0.05 binds (5 calls).
    let calls = &mut snap["catalog"]["plans"][0]["prices"][0]["feature"]["entitlement"];
    calls["offlineMode"] = json!("allowance");
    calls["offlineAllowance"] = json!("10");
    let t0 = at("2026-11-10T00:00:00Z");
    let mut hub = Hub::of(&snap);
    let mut fra = edge_of(&snap, "fra-1");
    fra.ingest(&call("x0"), t0).unwrap();
    hub.sync(&mut fra, t0);
    let key = tollgate::sync::LeaseKey { customer_id: "cus_acme".into(), key: "$wallet".into(), period: Timestamp(0) };
    let lease = fra.leases().unwrap().leases[&key].clone();
    assert_eq!(lease.allowance, dec("0.05"));
    // While the lease is valid, the allowance is kept aside.
    let mut served = 0;
    for i in 0..100 {
        served += u32::from(fra.ingest(&call(&format!("v{i}")), t0).unwrap().allowed);
    }
    assert_eq!(Decimal::from(served) * dec("0.01"), lease.granted - lease.allowance);
    // Expired, with the hub silent for a whole lifetime: only the allowance, 5 calls.
    let later = Timestamp(t0.0 + 120_000);
    let mut offline = 0;
    let mut last = None;
    for i in 0..10 {
        let o = fra.ingest(&call(&format!("o{i}")), later).unwrap();
        offline += u32::from(o.allowed);
        last = Some(o);
    }
    assert_eq!(offline, 5, "{last:?} {:?}", fra.leases().unwrap().leases[&key]);
    assert_eq!(last.unwrap().reason, Reason::Offline);
    // Back online: everything reconciles and the hub's balance is exact.
    hub.sync(&mut fra, later);
    hub.sync(&mut fra, later);
    assert!(fra.leases().unwrap().events.is_empty());
    let spent = Decimal::from(served + offline) * dec("0.01");
    assert_eq!(hub.engine.wallet_balance("cus_acme"), Some(dec("2.00") - spent));
}

#[test]
fn a_failed_sync_response_changes_nothing() {
    let now = at("2026-11-10T00:00:00Z");
    let mut fra = edge("fra-1");
    let before = fra.export_sync_state().unwrap();
    // A valid lease grant next to a snapshot that is not one: the engine stays as it was.
    let response = json!({ "ackSeq": 0, "snapshot": { "bad": true }, "leases": [{ "customerId": "cus_acme",
        "key": "api-calls", "period": "2026-11-01T00:00:00Z", "granted": "50", "ttlMs": 30000 }] });
    fra.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    let _ = fra.sync_request(now).unwrap();
    let mid = fra.export_sync_state().unwrap();
    assert!(fra.apply_sync(&response, now).is_err());
    assert_eq!(fra.export_sync_state().unwrap(), mid);
    assert_ne!(before, mid);
}
