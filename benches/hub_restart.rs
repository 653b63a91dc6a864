//! Restart time of the hub with a long ledger (issue budget: ≤ 3 s with 1,000,000 events, on
//! SQLite and on PostgreSQL, on this 2-core machine). Not a test: `make bench-hub`.
//!
//! Fills a database through the real `tollgate hub` binary (edges' `POST /v1/sync` with pages of
//! 5,000 events, 1,000 customers, events of one metered feature) with checkpoints 900,000 records
//! apart, so that the last one is 100,000 records before the end: the most a hub with the
//! default `--checkpoint-every` leaves to replay. Then it kills the hub (SIGKILL: nothing saved
//! on the way out) and times new starts, from the spawn to the listening line: from that
//! checkpoint and the events after it (as a default hub would, but without storing a new one, so
//! each timed start has the same 100,000 to replay), and with `--full-replay`.
//!
//! Settings (environment): `HUB_RESTART_EVENTS` (default 1,000,000), `HUB_BENCH_CUSTOMERS`
//! (default 1000); `HUB_BENCH_POSTGRES` as for `hub_sync`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::hub::{create_database, customer_id, drop_database, setting, start_hub, temp_dir, write_seed, EDGE};

/// Events per `POST /v1/sync`.
const BATCH: usize = 5_000;
/// Clients posting at once.
const CLIENTS: usize = 2;
/// Timed starts from the checkpoint (the median is reported).
const STARTS: usize = 3;

/// Sends `events` events to the hub at `base` as edges do, spread over `customers` customers.
fn fill(base: &str, events: usize, customers: usize) -> Duration {
    let started = Instant::now();
    let now = tollgate::time::Timestamp(tollgate_hub::store::now_ms()).to_rfc3339();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let url = format!("{base}/v1/sync");
            let now = now.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(300)))
                    .build()
                    .into();
                let (mut first, mut seq) = (t * BATCH, 0);
                while first < events {
                    seq += 1;
                    let batch: Vec<Value> = (first..events.min(first + BATCH))
                        .map(|n| {
                            json!({ "specversion": "1.0", "id": format!("evt-{n}"), "source": format!("edge-{t}"),
                                    "type": "llm.completion", "subject": customer_id(n % customers), "time": now,
                                    "data": { "tokens": 1 + n % 7 } })
                        })
                        .collect();
                    let body = json!({ "edgeId": format!("edge-{t}"), "bootId": "fill", "seq": seq,
                                       "catalogVersion": 1, "leases": [], "events": batch });
                    let mut r = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {EDGE}"))
                        .send(&body.to_string())
                        .expect("sync");
                    let text = r.body_mut().read_to_string().expect("sync reply");
                    assert_eq!(r.status().as_u16(), 200, "{text}");
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(reply["ackSeq"], seq, "{text}");
                    assert!(reply["problems"].as_array().is_none_or(Vec::is_empty), "{text}");
                    first += CLIENTS * BATCH;
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    started.elapsed()
}

/// Fills `db`, then times its restarts; prints the figures.
fn run(name: &str, db: &std::ffi::OsStr, seed: &str, events: usize, customers: usize) -> Value {
    let hub = start_hub(db, &["--seed", seed, "--checkpoint-every", "900000"]);
    let filled = fill(&hub.base, events, customers);
    hub.kill();
    println!(
        "hub restart, {name}: {events} events of {customers} customers stored in {:.1} s ({:.0} events/s)",
        filled.as_secs_f64(),
        events as f64 / filled.as_secs_f64()
    );
    let mut times = Vec::new();
    let mut report = String::new();
    for _ in 0..STARTS {
        // `--checkpoint-every 0`: a start with 100,000 records to replay would otherwise store a
        // new checkpoint at once, and the next start would have none left to replay.
        let hub = start_hub(db, &["--checkpoint-every", "0"]);
        times.push(hub.took);
        report = hub.report.clone();
        hub.kill();
    }
    times.sort();
    let median = times[STARTS / 2];
    let full = start_hub(db, &["--full-replay"]);
    let (full_took, full_report) = (full.took, full.report.clone());
    full.kill();
    let said = |line: &str| line.split(": ").last().unwrap_or_default().to_string();
    println!("  from the checkpoint: {:.0} ms (median of {STARTS}; {})", median.as_secs_f64() * 1e3, said(&report));
    println!("  full replay: {:.0} ms ({})", full_took.as_secs_f64() * 1e3, said(&full_report));
    println!(
        "  budget (≤ 3 s with 1,000,000 events): {}",
        if median <= Duration::from_secs(3) { "met" } else { "NOT met" }
    );
    let tail = report.split(", ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse::<u64>().ok());
    json!({ "store": name, "events": events, "customers": customers, "tailEvents": tail,
            "fromCheckpointMs": median.as_millis(), "fullReplayMs": full_took.as_millis(),
            "fillPerSecond": (events as f64 / filled.as_secs_f64()).round() })
}

fn main() {
    let events = setting("HUB_RESTART_EVENTS", 1_000_000);
    let customers = setting("HUB_BENCH_CUSTOMERS", 1000);
    let dir = temp_dir("hub-restart-bench");
    let seed = write_seed(&dir, customers);
    let seed = seed.to_str().unwrap();
    let mut stores = vec![run("SQLite", dir.join("hub.db").as_os_str(), seed, events, customers)];
    if let Some(server) = std::env::var("HUB_BENCH_POSTGRES").ok().filter(|s| !s.is_empty()) {
        let name = format!("bench_restart_{}", std::process::id());
        let url = create_database(&server, &name);
        stores.push(run("PostgreSQL", std::ffi::OsStr::new(&url), seed, events, customers));
        drop_database(&server, &name);
    }
    support::hub::save("hub-restart", Value::Array(stores));
    let _ = std::fs::remove_dir_all(&dir);
}
