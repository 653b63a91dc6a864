//! What the hub benchmarks share: the catalog, the tokens, a seed of N customers, the real
//! `tollgate hub` binary started on a database, and throwaway PostgreSQL databases.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tollgate::time::Timestamp;

pub const ADMIN: &str = "bench-admin-token-0123456789";
pub const EDGE: &str = "bench-edge-token-0123456789";

/// One hard-limited metered feature (`tokens`, SUM of `$.tokens`, 10⁹ a month: never reached).
pub const CATALOG: &str = r#"{
  "schemaVersion": 1,
  "products": [{ "id": "prod", "name": "API" }],
  "features": [{ "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" }],
  "billableMetrics": [
    { "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm.completion",
      "aggregation": "SUM", "valueProperty": "$.tokens" }
  ],
  "plans": [
    { "id": "plan_pro", "productId": "prod", "name": "Pro", "currency": "USD", "billingCadence": "P1M",
      "prices": [
        { "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
          "model": { "type": "per_unit", "unitPrice": "0.01" },
          "feature": { "featureId": "feat_tokens",
                       "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                        "issueAfterReset": "1000000000", "isSoftLimit": false } } }
      ] }
  ]
}"#;

/// An environment variable as a number above zero, else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

/// The customer id of customer `i`.
pub fn customer_id(i: usize) -> String {
    format!("cus_{i:05}")
}

/// The start of the current month (UTC), RFC 3339.
pub fn month_start() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let (y, m, _, _) = Timestamp(i64::try_from(now).unwrap()).to_parts();
    Timestamp::from_parts(y, m, 1, 0).to_rfc3339()
}

/// A fresh temporary directory for one benchmark run.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a seed snapshot of [`CATALOG`] and `customers` customers on `plan_pro` into `dir`.
pub fn write_seed(dir: &Path, customers: usize) -> PathBuf {
    let catalog: Value = serde_json::from_str(CATALOG).unwrap();
    let list: Vec<Value> = (0..customers)
        .map(|i| {
            json!({ "id": customer_id(i), "subscriptions": [{ "id": format!("sub_{i}"), "planId": "plan_pro",
                     "startedAt": "2026-01-01T00:00:00Z" }] })
        })
        .collect();
    let seed = dir.join("seed.json");
    std::fs::write(&seed, json!({ "snapshotVersion": 1, "catalog": catalog, "customers": list }).to_string()).unwrap();
    seed
}

/// A running hub: the process, its URL, and the line where it said how it started.
pub struct Started {
    pub child: Child,
    pub base: String,
    pub report: String,
    /// From the spawn to the listening line.
    pub took: Duration,
}

impl Started {
    /// Kills the hub (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the hub on `db` with extra `args`; returns once it listens.
pub fn start_hub(db: &std::ffi::OsStr, args: &[&str]) -> Started {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(["hub", "--listen", "127.0.0.1:0", "--db"]).arg(db).args(args);
    let spawned = Instant::now();
    let mut child = cmd
        .env("TOLLGATE_ADMIN_TOKEN", ADMIN)
        .env("TOLLGATE_EDGE_TOKENS", EDGE)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the hub");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut report = String::new();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if line.contains("event(s) replayed") {
                    report = line.clone();
                }
                if let Some(addr) = line.strip_prefix("tollgate hub listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => panic!("the hub did not start"),
        }
    };
    let took = spawned.elapsed();
    std::thread::spawn(move || lines.for_each(drop));
    Started { child, base, report, took }
}

/// A new empty database on the PostgreSQL server `server` (a `postgres://…/` URL); returns
/// its URL. Dropped with [`drop_database`].
pub fn create_database(server: &str, name: &str) -> String {
    let mut admin = postgres::Client::connect(&format!("{server}postgres"), postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{server}{name}")
}

/// Drops a database [`create_database`] made.
pub fn drop_database(server: &str, name: &str) {
    let mut admin = postgres::Client::connect(&format!("{server}postgres"), postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
}

/// Writes a benchmark's figures to `<target>/bench/<name>.json` (`CARGO_TARGET_DIR`, else the
/// workspace's `target/`), where `bench/bench.mjs --write` reads them into BENCHMARKS.md.
pub fn save(name: &str, figures: Value) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let at = Timestamp(tollgate_hub::store::now_ms()).to_rfc3339();
    let body = json!({ "at": at, "figures": figures });
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&body).unwrap()).unwrap();
}
