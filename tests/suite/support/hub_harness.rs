//! The harness of the hub's end-to-end tests (tests/hub.rs, tests/hub_security.rs): the real
//! `tollgate hub` binary on a free port with a temporary SQLite file, spoken to over HTTP, and
//! the builders of the requests they send.
//!
//! With `TOLLGATE_TEST_POSTGRES` set (a `postgres://…/` URL to which a database name is
//! appended; `make test-hub-pg` sets it), every hub runs on PostgreSQL instead: each
//! [`TempDir`] has a fresh database of its own, named after its path, which its hubs are given.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;

/// The admin token the hubs of [`Hub::start`] are given.
pub const ADMIN: &str = "admin-token-0123456789";
/// The first edge token of [`Hub::start`] (bare: it may act as any edge).
pub const EDGE_A: &str = "edge-token-aaaaaaaaaa";
/// The second edge token of [`Hub::start`].
pub const EDGE_B: &str = "edge-token-bbbbbbbbbb";

/// The catalog of the tests: `tokens` is a hard limit of 1,000 a month (plan `plan_pro`),
/// `api.call` is billed per call (also in `plan_payg`, paid instantly, and `plan_daily`).
pub const CATALOG: &str = r#"{
  "schemaVersion": 1,
  "products": [{ "id": "prod", "name": "API" }],
  "features": [
    { "id": "feat_tokens", "productId": "prod", "key": "tokens", "type": "metered" },
    { "id": "feat_priority", "productId": "prod", "key": "priority", "type": "boolean" }
  ],
  "billableMetrics": [
    { "id": "bm_tokens", "productId": "prod", "name": "Tokens", "eventType": "llm.completion",
      "aggregation": "SUM", "valueProperty": "$.tokens" },
    { "id": "bm_calls", "productId": "prod", "name": "Calls", "eventType": "api.call", "aggregation": "COUNT" }
  ],
  "fees": [{ "id": "fee_base", "productId": "prod", "name": "Base" }],
  "plans": [
    { "id": "plan_pro", "productId": "prod", "name": "Pro", "currency": "USD", "billingCadence": "P1M",
      "prices": [
        { "id": "price_tokens", "metricId": "bm_tokens", "paymentTerm": "in_arrears",
          "model": { "type": "per_unit", "unitPrice": "0.01" },
          "feature": { "featureId": "feat_tokens",
                       "entitlement": { "type": "metered", "usagePeriod": { "interval": "P1M" },
                                        "issueAfterReset": "1000", "isSoftLimit": false } } },
        { "id": "price_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
          "model": { "type": "per_unit", "unitPrice": "0.001" } },
        { "id": "price_base", "feeId": "fee_base", "paymentTerm": "in_advance",
          "model": { "type": "flat", "amount": "10" },
          "feature": { "featureId": "feat_priority", "entitlement": { "type": "boolean" } } }
      ] },
    { "id": "plan_payg", "productId": "prod", "name": "Pay as you go", "currency": "USD", "billingCadence": "P1M",
      "prices": [
        { "id": "price_payg_calls", "metricId": "bm_calls", "paymentTerm": "instant",
          "model": { "type": "per_unit", "unitPrice": "0.10" } }
      ] },
    { "id": "plan_daily", "productId": "prod", "name": "Daily", "currency": "USD", "billingCadence": "P1D",
      "prices": [
        { "id": "price_daily_calls", "metricId": "bm_calls", "paymentTerm": "in_arrears",
          "model": { "type": "per_unit", "unitPrice": "0.5" } }
      ] }
  ]
}"#;

/// A customer subscribed to `plan` since 2026-01-01.
pub fn customer(id: &str, plan: &str) -> Value {
    json!({ "id": id, "subscriptions": [{ "id": format!("sub_{id}"), "planId": plan,
                                          "startedAt": "2026-01-01T00:00:00Z" }] })
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system's temporary one, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory whose name contains `name`.
    pub fn new(name: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tollgate-hub-test-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        if let Some(server) = postgres_server() {
            let name = postgres_name(&dir.db());
            let mut admin = postgres::Client::connect(&format!("{server}postgres"), postgres::NoTls)
                .unwrap_or_else(|e| panic!("connect to {server}postgres: {e}"));
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        }
        dir
    }

    /// The hub's database file in it.
    pub fn db(&self) -> PathBuf {
        self.0.join("hub.db")
    }

    /// The database's path with `suffix` appended (`-wal`, `-shm`, `.lock`).
    pub fn db_with(&self, suffix: &str) -> PathBuf {
        let mut name = self.db().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL server the hubs run on, when the tests are run against one.
pub fn postgres_server() -> Option<String> {
    std::env::var("TOLLGATE_TEST_POSTGRES").ok().filter(|v| !v.is_empty())
}

/// Runs `sql` on the PostgreSQL server as its superuser (from its `postgres` database); `{db}`
/// in it names the database of the hubs given `db`.
pub fn postgres_admin(db: &Path, sql: &str) {
    let server = postgres_server().expect("a PostgreSQL server");
    let mut admin = postgres::Client::connect(&format!("{server}postgres"), postgres::NoTls).unwrap();
    admin.batch_execute(&sql.replace("{db}", &postgres_name(db))).unwrap();
}

/// The database of the hubs given `db` (a file in a [`TempDir`]) on PostgreSQL.
fn postgres_name(db: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(db.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("t{hex}")
}

/// What `--db` says for `db`: the file, or its PostgreSQL database's URL.
pub fn database_arg(db: &Path) -> std::ffi::OsString {
    match postgres_server() {
        Some(server) => format!("{server}{}", postgres_name(db)).into(),
        None => db.as_os_str().to_owned(),
    }
}

/// Runs `sql` (statements without results) on the database of `db`, whichever store the hubs run
/// on.
pub fn execute(db: &Path, sql: &str) {
    match postgres_server() {
        Some(_) => {
            let url = database_arg(db).into_string().unwrap();
            postgres::Client::connect(&url, postgres::NoTls).unwrap().batch_execute(sql).unwrap();
        }
        None => rusqlite::Connection::open(db).unwrap().execute_batch(sql).unwrap(),
    }
}

/// The first column of the first row of `sql` (a number), asked of the database of `db`,
/// whichever store the hubs run on.
pub fn query_count(db: &Path, sql: &str) -> i64 {
    match postgres_server() {
        Some(_) => {
            let url = database_arg(db).into_string().unwrap();
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.query_one(sql, &[]).unwrap().get(0)
        }
        None => {
            let conn = rusqlite::Connection::open(db).unwrap();
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        }
    }
}

/// A running hub (killed when dropped).
pub struct Hub {
    /// The `tollgate hub` process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The public key it printed.
    pub public_key: String,
    /// Every line it printed, stdout and stderr.
    pub output: Arc<Mutex<Vec<String>>>,
    /// The HTTP client of the calls.
    pub agent: ureq::Agent,
}

/// A response: status, body as JSON (`Null` if it is not), ETag, content type, raw bytes.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub etag: Option<String>,
    pub content_type: String,
    pub raw: Vec<u8>,
}

impl Hub {
    /// Starts a hub on `db` with extra `args`, the admin token [`ADMIN`] and the bare edge tokens
    /// [`EDGE_A`] and [`EDGE_B`]; returns once it listens.
    pub fn start(db: &Path, args: &[&str]) -> Hub {
        Hub::start_with_env(
            db,
            args,
            &[
                ("TOLLGATE_ADMIN_TOKEN", ADMIN),
                ("TOLLGATE_EDGE_TOKENS", "edge-token-aaaaaaaaaa, edge-token-bbbbbbbbbb"),
            ],
        )
    }

    /// Starts a hub with exactly the token variables of `env` (unset otherwise).
    pub fn start_with_env(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Hub {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.current_dir(super::ROOT);
        cmd.args(["hub", "--db"]).arg(database_arg(db)).args(["--listen", "127.0.0.1:0"]).args(args);
        cmd.env_remove("TOLLGATE_ADMIN_TOKEN").env_remove("TOLLGATE_EDGE_TOKENS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the hub");
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        // What the hub logs (dropped events, say) is kept with its output, not printed.
        let stderr = child.stderr.take().unwrap();
        let logged = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logged.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut public_key = String::new();
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("the hub did not start: {:?}", output.lock().unwrap());
                }
            };
            if let Some(rest) = line.strip_prefix("tollgate hub: public key ") {
                public_key = rest.split(' ').next().unwrap().to_string();
            }
            if let Some(addr) = line.strip_prefix("tollgate hub listening on ") {
                break addr.trim().to_string();
            }
        };
        // A fresh connection per request: the hub may close a kept-alive connection after
        // refusing a request whose body it did not read (401/403/413), and a pooled connection
        // reused in that instant fails as "peer disconnected" (seen under CI load).
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        Hub { child, base, public_key, output, agent }
    }

    /// A request; panics if it cannot be made.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_call(method, path, token, body, headers).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A request, or the transport error.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ureq::Error> {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut response = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r.call()?
            }
            _ => {
                let mut r = match method {
                    "PUT" => self.agent.put(&url),
                    "POST" => self.agent.post(&url),
                    other => panic!("method {other}"),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r = r.header("Content-Type", "application/json");
                r.send(body.unwrap_or(""))?
            }
        };
        let status = response.status().as_u16();
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let raw = response.body_mut().with_config().limit(64 << 20).read_to_vec()?;
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Answer { status, body, etag, content_type, raw })
    }

    /// `GET path`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call("GET", path, token, None, &[])
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.call("PUT", path, token, Some(body), &[])
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.call("POST", path, token, Some(body), &[])
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Puts [`CATALOG`] and `customers`.
    pub fn setup(&self, customers: &[Value]) {
        let r = self.put("/v1/catalog", Some(ADMIN), CATALOG);
        assert_eq!(r.status, 200, "{}", r.body);
        for c in customers {
            let id = c["id"].as_str().unwrap();
            let r = self.put(&format!("/v1/customers/{id}"), Some(ADMIN), &c.to_string());
            assert!(r.status == 201 || r.status == 200, "{}", r.body);
        }
    }

    /// Every stored event of `source`, by id.
    pub fn stored_ids(&self, source: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self.get(&format!("/v1/events?source={source}&after={after}&limit=500"), Some(ADMIN));
            assert_eq!(r.status, 200, "{}", r.body);
            for e in r.body["events"].as_array().unwrap() {
                out.push(e["event"]["id"].as_str().unwrap().to_string());
            }
            match r.body["next"].as_i64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }

    /// The process id of the hub.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The metered quantity of the line of `price` on the invoice preview of `customer` at `at`
    /// (now if `None`); zero when the invoice has no such line.
    pub fn metered(&self, customer: &str, price: &str, at: Option<Timestamp>) -> tollgate::Decimal {
        let query = at.map(|t| format!("?now={}", t.to_rfc3339().replace(':', "%3A"))).unwrap_or_default();
        let invoice = self.get(&format!("/v1/customers/{customer}/invoice{query}"), Some(ADMIN));
        assert_eq!(invoice.status, 200, "{}", invoice.body);
        let lines = invoice.body["lines"].as_array().unwrap_or_else(|| panic!("no lines: {}", invoice.body));
        lines.iter().find(|l| l["priceId"] == price).map_or(tollgate::Decimal::ZERO, |l| decimal(&l["meteredQuantity"]))
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The start of the current UTC month (the usage period of the test catalog's `tokens`).
pub fn month_start() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let (y, m, _, _) = Timestamp(i64::try_from(now).unwrap()).to_parts();
    Timestamp::from_parts(y, m, 1, 0).to_rfc3339()
}

/// Noon (UTC) of yesterday.
pub fn yesterday_noon() -> Timestamp {
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let day = 86_400_000;
    Timestamp(now - now.rem_euclid(day) - day + day / 2)
}

/// An `llm.completion` event of `tokens` tokens.
pub fn event(source: &str, id: &str, customer: &str, tokens: u64) -> Value {
    json!({ "id": id, "source": source, "type": "llm.completion", "subject": customer, "data": { "tokens": tokens } })
}

/// A `/v1/sync` request body.
pub fn sync_body(edge: &str, boot: &str, seq: u64, version: u64, leases: Value, events: Value) -> String {
    json!({ "edgeId": edge, "bootId": boot, "seq": seq, "catalogVersion": version, "leases": leases, "events": events })
        .to_string()
}

/// A lease report on the `tokens` of `customer` in the current month, epoch 0.
pub fn report(customer: &str, used: &str, want: &str, is_final: bool) -> Value {
    json!({ "customerId": customer, "key": "tokens", "period": month_start(), "used": used, "want": want,
            "final": is_final })
}

/// A decimal string of a response.
pub fn decimal(v: &Value) -> tollgate::Decimal {
    tollgate::money::parse_decimal(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}"))).unwrap()
}

/// Asserts the status, and an error of `code` at `path` (alone or in the list).
pub fn assert_error(a: &Answer, status: u16, code: &str, path: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    let found = if a.body["error"].is_object() {
        a.body["error"]["code"] == code && a.body["error"]["path"] == path
    } else {
        a.body["errors"].as_array().into_iter().flatten().any(|e| e["code"] == code && e["path"] == path)
    };
    assert!(found, "expected {code} at {path:?} in {}", a.body);
}

/// A request with a declared body larger than the limit, by hand (the hub answers before the
/// body is sent, so a client that insists on sending it would see the connection close).
pub fn oversized(addr: &str, token: &str) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n[",
        5 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok());
            if len.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(Value::Null, |(_, b)| serde_json::from_str(b).unwrap_or(Value::Null));
    (status, body)
}

/// True when the server closed `stream` (end of file or reset) within `within`.
pub fn closed_by_server(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Σ granted over the leases of the answers so far, by edge (granted only grows).
pub fn granted(answer: &Answer) -> tollgate::Decimal {
    answer.body["leases"].as_array().unwrap().iter().map(|l| decimal(&l["granted"])).sum()
}

// edges built from the core, speaking to the real hub

/// The wall clock as a timestamp.
pub fn wall_clock() -> Timestamp {
    Timestamp(
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap(),
    )
}

/// An edge engine on the hub's current snapshot, with leases on, as `edge`.
pub fn edge_engine(hub: &Hub, token: &str, edge: &str) -> Engine {
    let snapshot = hub.get("/v1/snapshot", Some(token));
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);
    let mut engine = Engine::from_snapshot(&snapshot.body, Options::default()).unwrap();
    engine.enable_leases(edge, "boot-1");
    engine
}

/// One sync round trip of `engine`: its next request (a page), the hub's answer merged.
pub fn edge_sync(hub: &Hub, token: &str, engine: &mut Engine) -> Answer {
    try_edge_sync(hub, token, engine).unwrap_or_else(|e| panic!("{e}"))
}

/// [`edge_sync`], or why it failed (the hub unreachable, or not 200): the engine is then as
/// it was, its usage still unacknowledged.
pub fn try_edge_sync(hub: &Hub, token: &str, engine: &mut Engine) -> Result<Answer, String> {
    let now = wall_clock();
    let request = engine.sync_request(now).unwrap().unwrap();
    let body = serde_json::to_string(&request).unwrap();
    assert!(body.len() < 4 * 1024 * 1024, "a page of {} bytes", body.len());
    let answer = hub.try_call("POST", "/v1/sync", Some(token), Some(&body), &[]).map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!("{}: {}", answer.status, answer.body));
    }
    engine.apply_sync(&answer.body, now).unwrap();
    Ok(answer)
}
