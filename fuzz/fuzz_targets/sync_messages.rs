//! The `/v1/sync` messages (SPEC §7) and the edge's exported sync state, decoded and then used:
//! a request is answered by the hub's escrow (twice, as a retried delivery would be), a response
//! is merged into an edge that holds a lease, an imported edge state builds its next request.
//!
//! Input: `request JSON \0 response JSON \0 edge state JSON`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::sync::{EdgeLeases, Escrow, LeaseKey, Policy, SyncRequest, SyncResponse, Terms};
use tollgate::time::Timestamp;
use tollgate::Decimal;

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let p = tollgate_fuzz::parts(text, 3);
    let now = tollgate_fuzz::now();
    let response = tollgate_fuzz::json(p[1]).and_then(|v| SyncResponse::from_value(&v).ok());

    if let Some(request) = tollgate_fuzz::json(p[0]).and_then(|v| SyncRequest::from_value(&v).ok()) {
        let _ = serde_json::to_string(&request);
        let mut escrow = Escrow::default();
        let policy = Policy::default();
        for _ in 0..2 {
            for report in request.leases.iter().take(32) {
                if let Ok((grant, _lease)) =
                    escrow.report(request.reporter(), report, Terms { budget: Decimal::from(10_000), allowance: Decimal::ONE }, &policy, now)
                {
                    let _ = serde_json::to_string(&grant);
                }
                let _ = escrow.usage(&report.key);
                let _ = escrow.committed(&report.key);
            }
        }
    }

    let key = LeaseKey {
        customer_id: "cus_acme".into(),
        key: "input-tokens".into(),
        period: Timestamp::parse("2026-11-01T00:00:00Z").expect("a timestamp"),
    };
    let mut edge = EdgeLeases::new("fra-1", "boot-1");
    let _ = edge.refused(&key, Decimal::from(100));
    let _ = edge.request(now, 1);
    if let Some(response) = &response {
        let _ = serde_json::to_string(response);
        let _ = edge.apply(response, now);
        let _ = edge.check(&key, Decimal::ONE, now);
        let _ = edge.take(&key, Decimal::ONE);
        let _ = edge.needs_sync(now);
        let _ = edge.request(now, 1);
        let _ = edge.export_state();
    }

    if let Some(mut imported) = tollgate_fuzz::json(p[2]).and_then(|v| EdgeLeases::import_state(&v).ok()) {
        let _ = imported.needs_sync(now);
        let _ = imported.check(&key, Decimal::ONE, now);
        if let Ok(request) = imported.request(now, 1) {
            let _ = serde_json::to_string(&request);
        }
        if let Some(response) = &response {
            let _ = imported.apply(response, now);
        }
        let _ = imported.export_state();
    }
});
