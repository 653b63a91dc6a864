//! What an attacker on the network could do to the hub (issue 13, "A hub you can put on the
//! internet"): one test per numbered finding of the review, each against the real `tollgate hub`
//! binary (the harness is tests/support/hub_harness.rs). Each test reproduces the attack of its
//! finding and shows it fixed. Run with `cargo test --features hub --test hub_security` (`make
//! test-hub` runs it with tests/hub.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::hub_harness::*;
use serde_json::{json, Value};
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::Decimal;

const DAY_MS: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------------
// helpers

/// The start of next UTC month: a period the test catalog's `tokens` is not leased for yet.
fn next_month_start() -> String {
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let (y, m, _, _) = Timestamp(now).to_parts();
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Timestamp::from_parts(y, m, 1, 0).to_rfc3339()
}

/// The `problems` of a sync answer, as (path, code).
fn problems(answer: &Answer) -> Vec<(String, String)> {
    answer.body["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["path"].as_str().unwrap().to_string(), p["code"].as_str().unwrap().to_string()))
        .collect()
}

/// (path, code) pairs, to compare with [`problems`].
fn expected(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()
}

/// A lease report on `key` of `customer` for `period`, epoch `epoch`.
fn lease(customer: &str, key: &str, period: &str, used: &str, want: &str, epoch: u32) -> Value {
    json!({ "customerId": customer, "key": key, "period": period, "used": used, "want": want, "epoch": epoch })
}

/// A sync of `edge` (boot `b`, bare token [`EDGE_A`]) with `leases` and no events.
fn hub_sync(hub: &Hub, edge: &str, seq: u64, leases: Value) -> Answer {
    hub.post("/v1/sync", Some(EDGE_A), &sync_body(edge, "b", seq, 2, leases, json!([])))
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// True when some file in `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// Waits up to `within` for `child` to exit.
fn exit_within(child: &mut std::process::Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The peak resident set of process `pid` so far, in bytes (`VmHWM` of /proc/<pid>/status);
/// `None` once the process is gone.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------------------------------------
// the findings

/// F1. "Any edge token can act as any edge": the hub believed the body's `edgeId`, so one edge's
/// token could report, renew and close another edge's leases; and lease reports for keys nobody
/// leases (a future period, a customer that does not exist, ids of 100 kB) were taken in.
///
/// Fixed: `TOLLGATE_EDGE_TOKENS` binds each token to an edge (`edgeId:token`); a sync whose
/// `edgeId` is not its token's is refused whole (403 `forbidden` at `/edgeId`) and changes
/// nothing. Edge ids are 1 to 64 of `A-Z a-z 0-9 . _ -` and boot ids at most 128 bytes (400
/// `invalid_value`). A report on a key the hub does not lease now is refused for that lease
/// alone: answered `closed` with nothing granted, listed in `problems` at `/leases/<i>`, and
/// nothing is stored for it.
#[test]
fn f1_any_edge_token_can_act_as_any_edge() {
    let dir = TempDir::new("f1");
    let env = [
        ("TOLLGATE_ADMIN_TOKEN", ADMIN),
        ("TOLLGATE_EDGE_TOKENS", "fra-1:edge-token-aaaaaaaaaa, iad-1:edge-token-bbbbbbbbbb"),
    ];
    let hub = Hub::start_with_env(&dir.db(), &[], &env);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    // Leases of 400 of the 1,000 tokens of cus_a's month (within any one edge's share).
    let ask = || json!([report("cus_a", "0", "400", false)]);
    let month = month_start();

    // iad-1's token speaking as fra-1 (another boot, 400, an event): refused.
    let spoof = sync_body("fra-1", "evil", 1, 2, ask(), json!([event("fra-1", "spoofed", "cus_a", 5)]));
    assert_error(&hub.post("/v1/sync", Some(EDGE_B), &spoof), 403, "forbidden", "/edgeId");
    // So is a 100 kB edge id with a bound token: it is not the token's edge.
    let long = "z".repeat(100_000);
    assert_error(
        &hub.post("/v1/sync", Some(EDGE_A), &sync_body(&long, "b1", 1, 2, ask(), json!([]))),
        403,
        "forbidden",
        "/edgeId",
    );
    // Nothing was granted or recorded: the real edges get 400 each (a spoofed grant would have
    // left iad-1 200), and what is left after them is 200.
    assert!(hub.stored_ids("fra-1").is_empty(), "the spoofed event was stored");
    let fra = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 1, 2, ask(), json!([])));
    assert_eq!((fra.status, granted(&fra)), (200, Decimal::from(400)), "{}", fra.body);
    let iad = hub.post("/v1/sync", Some(EDGE_B), &sync_body("iad-1", "b1", 1, 2, ask(), json!([])));
    assert_eq!((iad.status, granted(&iad)), (200, Decimal::from(400)), "{}", iad.body);
    let rest = json!([lease("cus_a", "tokens", &month, "0", "400", 1)]);
    let iad = hub.post("/v1/sync", Some(EDGE_B), &sync_body("iad-1", "b1", 2, 2, rest, json!([])));
    assert_eq!((iad.status, granted(&iad)), (200, Decimal::from(200)), "{}", iad.body);
    // A boot id of 100 kB is refused whole.
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", &long, 2, 2, ask(), json!([])));
    let error = if r.body["error"].is_object() { &r.body["error"] } else { &r.body["errors"][0] };
    assert_eq!((r.status, &error["code"]), (400, &json!("invalid_value")), "{}", r.body);
    // (The hub names /edgeId for a bad boot id too.)
    assert!(["/bootId", "/edgeId"].contains(&error["path"].as_str().unwrap_or("")), "{}", r.body);

    // Reports on keys nobody leases, next to fra-1's own lease: each refused on its own.
    let reports = json!([
        report("cus_a", "0", "400", false),
        lease("cus_a", "tokens", &next_month_start(), "0", "100", 0),
        lease("cus_nobody", "tokens", &month, "0", "100", 0),
        lease(&format!("cus_{long}"), "tokens", &month, "0", "100", 0),
        lease("cus_a", &format!("key-{long}"), &month, "0", "100", 0),
    ]);
    let refused = expected(&[
        ("/leases/1", "unknown_reference"),
        ("/leases/2", "unknown_reference"),
        ("/leases/3", "unknown_reference"),
        ("/leases/4", "unknown_reference"),
    ]);
    let check = |r: &Answer| {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(problems(r), refused, "{}", r.body);
        let answers = r.body["leases"].as_array().unwrap();
        assert_eq!(decimal(&answers[0]["granted"]), Decimal::from(400), "{}", r.body);
        for answer in &answers[1..] {
            assert_eq!((&answer["mode"], decimal(&answer["granted"])), (&json!("closed"), Decimal::ZERO), "{answer}");
        }
    };
    check(&hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 2, 2, reports.clone(), json!([]))));

    // Nothing of them is stored: no file of the database holds the long id, and after a restart
    // the same reports are refused again (a stored lease would now be answered as held).
    let mut hub = hub;
    hub.kill();
    assert!(!any_file_holds(&dir.0, &long.as_bytes()[..1000]), "a 100 kB id was written to the database");
    let hub = Hub::start_with_env(&dir.db(), &[], &env);
    check(&hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 3, 2, reports, json!([]))));
    assert_error(&hub.get("/v1/customers/cus_nobody/entitlements", Some(EDGE_A)), 404, "not_found", "");
    let more = json!([lease("cus_a", "tokens", &month, "0", "400", 2)]);
    let iad = hub.post("/v1/sync", Some(EDGE_B), &sync_body("iad-1", "b1", 3, 2, more, json!([])));
    assert_eq!((iad.status, granted(&iad)), (200, Decimal::ZERO), "the leases held: {}", iad.body);

    // A bare token (no `edgeId:`) may act as any edge: for development, and warned about; its
    // edge ids are still bounded.
    let bare_dir = TempDir::new("f1-bare");
    let bare = Hub::start(&bare_dir.db(), &[]);
    bare.setup(&[customer("cus_a", "plan_pro")]);
    assert!(
        bare.output.lock().unwrap().iter().any(|l| l.contains("may act as any edge")),
        "a bare token is warned about"
    );
    let body = sync_body(&long, "b1", 1, 2, json!([]), json!([]));
    assert_error(&bare.post("/v1/sync", Some(EDGE_A), &body), 400, "invalid_value", "/edgeId");
    let body = sync_body("fra 1/../x", "b1", 1, 2, json!([]), json!([]));
    assert_error(&bare.post("/v1/sync", Some(EDGE_A), &body), 400, "invalid_value", "/edgeId");
}

/// F2. "One report jams a key for good": a lease report with a `used` (or `returned`) past
/// anything the hub granted — the largest decimal, say — was taken as it came, and the key's
/// account could no longer be computed: later syncs on that key failed, for every edge and
/// across restarts.
///
/// Fixed: counters are checked against what the hub granted that lease; a report past them is
/// refused for that lease alone (answered `closed` at what was granted, `invalid_value` in
/// `problems`), while the same sync's other leases and its events are applied, and later syncs on
/// the key work, before and after a restart.
#[test]
fn f2_one_report_jams_a_key_for_good() {
    let dir = TempDir::new("f2");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let month = month_start();
    let huge = "79228162514264337593543950335";
    let mut returned = lease("cus_a", "tokens", &month, "0", "0", 2);
    returned["returned"] = json!(huge);

    // e2 holds 100 (epoch 0), then reports it used the largest decimal, next to a good lease
    // (epoch 1), a report returning the largest decimal (epoch 2) and an event.
    let first = hub_sync(&hub, "e2", 1, json!([report("cus_a", "0", "100", false)]));
    assert_eq!(granted(&first), Decimal::from(100), "{}", first.body);
    let mixed = json!([
        lease("cus_a", "tokens", &month, huge, huge, 0),
        lease("cus_a", "tokens", &month, "0", "100", 1),
        returned,
    ]);
    let r =
        hub.post("/v1/sync", Some(EDGE_A), &sync_body("e2", "b", 2, 2, mixed, json!([event("e2", "p1", "cus_a", 3)])));
    assert_eq!((r.status, &r.body["ackSeq"]), (200, &json!(2)), "{}", r.body);
    assert_eq!(problems(&r), expected(&[("/leases/0", "invalid_value"), ("/leases/2", "invalid_value")]), "{}", r.body);
    let answers = r.body["leases"].as_array().unwrap();
    assert_eq!((&answers[0]["mode"], decimal(&answers[0]["granted"])), (&json!("closed"), Decimal::from(100)));
    assert_eq!(decimal(&answers[1]["granted"]), Decimal::from(100), "{}", r.body);
    assert_eq!((&answers[2]["mode"], decimal(&answers[2]["granted"])), (&json!("closed"), Decimal::ZERO));
    // The event went in: stored and billed.
    assert_eq!(hub.stored_ids("e2"), ["p1"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(3));

    // The key is not jammed: another edge is granted its lease, and e2's epoch 0, reported
    // honestly, closes and gives back the 40 it did not use (60 + 100 + 400 + 400 committed).
    let ask = |edge: &str, seq: u64| {
        let r = hub_sync(&hub, edge, seq, json!([report("cus_a", "0", "400", false)]));
        assert_eq!((r.status, problems(&r)), (200, vec![]), "{}", r.body);
        granted(&r)
    };
    assert_eq!(ask("e3", 1), Decimal::from(400));
    let honest =
        json!([{ "customerId": "cus_a", "key": "tokens", "period": month, "used": "60", "want": "0", "final": true }]);
    let r = hub_sync(&hub, "e2", 3, honest);
    assert_eq!((r.status, problems(&r), &r.body["leases"][0]["mode"]), (200, vec![], &json!("closed")), "{}", r.body);
    assert_eq!(ask("e4", 1), Decimal::from(400));
    assert_eq!(ask("e5", 1), Decimal::from(40));

    // And after a restart: what was applied held, the poison is refused again, the key works.
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(hub.stored_ids("e2"), ["p1"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(3));
    let poison = json!([lease("cus_a", "tokens", &month, huge, "0", 1)]);
    let r =
        hub.post("/v1/sync", Some(EDGE_A), &sync_body("e2", "b", 4, 2, poison, json!([event("e2", "p2", "cus_a", 4)])));
    assert_eq!((r.status, problems(&r)), (200, expected(&[("/leases/0", "invalid_value")])), "{}", r.body);
    assert_eq!(decimal(&r.body["leases"][0]["granted"]), Decimal::from(100), "{}", r.body);
    assert_eq!(hub.stored_ids("e2"), ["p1", "p2"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(7));
    let r = hub_sync(&hub, "e2", 5, json!([lease("cus_a", "tokens", &month, "10", "100", 1)]));
    assert_eq!((r.status, problems(&r), granted(&r)), (200, vec![], Decimal::from(100)), "{}", r.body);
    let ask = |edge: &str, seq: u64| {
        let r = hub_sync(&hub, edge, seq, json!([report("cus_a", "0", "400", false)]));
        assert_eq!((r.status, problems(&r)), (200, vec![]), "{}", r.body);
        granted(&r)
    };
    assert_eq!(ask("e5", 2), Decimal::from(40), "e5's lease held");
    assert_eq!(ask("e6", 1), Decimal::ZERO, "nothing left");
}

/// F3. "Slowloris": a client could open connections and send nothing, or send a request's body a
/// byte at a time, for as long as it liked, and enough such connections (no token needed) starved
/// every other client of the hub.
///
/// Fixed: the hub drives hyper's HTTP/1 server itself, with a header-read timeout (also the idle
/// limit between requests, `--header-timeout-ms`), a body timeout (`--body-timeout-ms`) and a cap
/// on open connections (`--max-connections`; connections past it are closed as they arrive).
#[test]
fn f3_slowloris() {
    let dir = TempDir::new("f3");
    let hub = Hub::start(&dir.db(), &["--header-timeout-ms", "1000", "--body-timeout-ms", "1000"]);
    let addr = hub.addr().to_string();
    // 200 connections that never send a byte (no token needed to open one).
    let opened = Instant::now();
    let mut silent: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    // The hub still answers everyone else at once (the client gives up after 1 s).
    let quick: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .into();
    let health = quick.get(&format!("{}/healthz", hub.base)).call().expect("healthz within 1 s");
    assert_eq!(health.status(), 200);
    // A request whose body never finishes.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"id\""
    );
    slow.write_all(head.as_bytes()).unwrap();
    let sent = Instant::now();
    // A silent connection is open until the header timeout, then closed by the server.
    let mut fresh = TcpStream::connect(&addr).unwrap();
    let fresh_opened = Instant::now();
    let early = closed_by_server(&mut fresh, Duration::from_millis(300));
    assert!(!early, "closed {:?} after it was opened, before the header timeout", fresh_opened.elapsed());
    silent.push(fresh);
    for s in &mut silent {
        assert!(closed_by_server(s, Duration::from_secs(5)), "a silent connection was left open");
    }
    let all_closed = opened.elapsed();
    assert!(all_closed < Duration::from_secs(5), "closed after {all_closed:?}");
    // The half-sent body is cut off by the body timeout: no answer of success, and closed.
    let mut answer = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = slow.read_to_end(&mut answer);
    let cut = sent.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or("(nothing)");
    println!("silent connections closed within {all_closed:?}; the half-sent body cut after {cut:?}: {status_line}");
    assert!(cut < Duration::from_secs(5), "the half-sent request was held {cut:?}");
    assert!(!answer.starts_with("HTTP/1.1 2"), "a half-sent request was answered: {answer}");
    assert_eq!(hub.get("/healthz", None).status, 200);

    // The connection cap: past it, connections are closed as they arrive; it frees up as they
    // close.
    let capped_dir = TempDir::new("f3-cap");
    let capped = Hub::start(&capped_dir.db(), &["--max-connections", "20", "--header-timeout-ms", "30000"]);
    let addr = capped.addr().to_string();
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(&addr).unwrap();
    assert!(closed_by_server(&mut extra, Duration::from_secs(5)), "the 21st connection was kept");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(capped.get("/healthz", None).status, 200, "the cap frees up as connections close");
}

/// F5. "Two hubs on one SQLite file": a second `tollgate hub` started on the same `--db` (an
/// overlapping deploy, a typo) loaded the same state and granted the same budget a second time,
/// each hub unaware of the other's leases.
///
/// Fixed: a hub holds an OS lock on `<db>.lock` for as long as it runs; a second one exits
/// non-zero at once, saying another hub uses the file, before it reads or grants anything, and
/// the first goes on serving. The lock goes with the process, however it ends.
#[test]
fn f5_two_hubs_on_one_sqlite_file() {
    let dir = TempDir::new("f5");
    let first = Hub::start(&dir.db(), &[]);
    first.setup(&[customer("cus_a", "plan_pro")]);
    let ask = || json!([report("cus_a", "0", "400", false)]);
    let a = hub_sync(&first, "fra-1", 1, ask());
    assert_eq!(granted(&a), Decimal::from(400), "{}", a.body);
    let mut second = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(crate::support::ROOT)
        .args(["hub", "--db"])
        .arg(dir.db())
        .args(["--listen", "127.0.0.1:0"])
        .env("TOLLGATE_ADMIN_TOKEN", ADMIN)
        .env("TOLLGATE_EDGE_TOKENS", EDGE_A)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run a second hub");
    let status = exit_within(&mut second, Duration::from_secs(10));
    if status.is_none() {
        let _ = second.kill();
    }
    let status = status.expect("the second hub kept running");
    assert!(!status.success(), "the second hub exited with {status}");
    let mut said = String::new();
    second.stderr.take().unwrap().read_to_string(&mut said).unwrap();
    let mut printed = String::new();
    second.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    assert!(said.contains("another hub process is using"), "{said}");
    assert!(said.contains(&dir.db().display().to_string()), "the error names the file: {said}");
    assert!(!printed.contains("listening"), "the second hub listened: {printed}");
    // The first one goes on serving, its grant intact (600 left, then 200).
    assert_eq!(first.get("/healthz", None).status, 200);
    assert_eq!(granted(&hub_sync(&first, "iad-1", 1, ask())), Decimal::from(400));
    assert_eq!(granted(&hub_sync(&first, "sin-1", 1, ask())), Decimal::from(200));
    // Once the first is gone (killed), the lock goes with it: a restart takes the file.
    drop(first);
    let again = Hub::start(&dir.db(), &[]);
    assert_eq!(again.get("/healthz", None).status, 200);
}

/// F7. "Memory and ledger disagree": an edge re-sends the `tollgate.consume` events a sync did
/// not acknowledge; one older than the hub engine's 35-day idempotency memory was no longer
/// recognised in memory and was counted again there (the invoice preview billed it twice) while
/// the ledger's unique key kept it once, so a restart changed the bill.
///
/// Fixed: an edge event older than the engine's memory is looked up in the ledger (and in the
/// set of late events recorded since start) before it is recorded: it is counted once in memory
/// and stored once, however often it is sent, before and after a restart.
#[test]
fn f7_memory_and_ledger_disagree() {
    let dir = TempDir::new("f7");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let old_time = Timestamp(yesterday_noon().0 - 40 * DAY_MS);
    // As an edge builds a consume event (`Queued::to_value` in src/sync/edge.rs).
    let consume = |boot: &str, seq: u64, time: Timestamp, quantity: &str| {
        json!({ "id": format!("consume:{boot}:{seq}"), "source": "fra-1", "type": "tollgate.consume",
                "subject": "cus_a", "time": time.to_rfc3339(),
                "data": { "featureKey": "tokens", "quantity": quantity } })
    };
    let old = consume("b0", 1, old_time, "7");
    let mut old_plain = event("fra-1", "old-1", "cus_a", 5);
    old_plain["time"] = json!(old_time.to_rfc3339());
    let recent = consume("b0", 2, yesterday_noon(), "4");
    let batch = json!([old, old_plain, recent]);
    let ids = ["consume:b0:1", "old-1", "consume:b0:2"];
    let counted =
        |hub: &Hub| (hub.metered("cus_a", "price_tokens", Some(old_time)), hub.metered("cus_a", "price_tokens", None));
    let once = (Decimal::from(12), Decimal::from(4));

    // Sent again and again (the edge never saw an acknowledgement).
    for seq in 1..4 {
        let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b0", seq, 2, json!([]), batch.clone()));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(hub.stored_ids("fra-1"), ids);
    assert_eq!(counted(&hub), once, "memory counts each once");

    // After a restart the ledger is replayed: the same counts; sent again, still once.
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(counted(&hub), once, "the ledger holds each once");
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b0", 4, 2, json!([]), batch.clone()));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("fra-1", "b1", 1, 2, json!([]), batch));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(hub.stored_ids("fra-1"), ids);
    assert_eq!(counted(&hub), once, "memory after the restart");
    drop(hub);
    let hub = Hub::start(&dir.db(), &[]);
    assert_eq!(counted(&hub), once, "the ledger after the restart");
}

/// F12. "Secrets at rest": the database (which holds the signing key, the ledger and the
/// leases), its WAL and its shared-memory file were created with the process's umask (commonly
/// world-readable), so other local users could read the hub's signing key.
///
/// Fixed: the database's files, and the lock file, are created 0600, and looser ones of an
/// older database are restricted at start. The signing key stays in the database (decision
/// #73 of docs/decisions.md) unless `--key FILE` names a key file; no other file is written.
#[test]
fn f12_secrets_at_rest_in_the_sqlite_file() {
    let dir = TempDir::new("f12");
    let mut hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let public_key = hub.public_key.clone();
    let files = |dir: &TempDir| {
        let mut names: Vec<String> = std::fs::read_dir(&dir.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let check_modes = |dir: &TempDir| {
        assert!(dir.db_with("-wal").exists(), "a WAL database");
        for name in files(dir) {
            assert_eq!(mode(&dir.0.join(&name)), 0o600, "{name} is {:o}", mode(&dir.0.join(&name)));
        }
    };
    check_modes(&dir);
    for name in files(&dir) {
        assert!(["hub.db", "hub.db-wal", "hub.db-shm", "hub.db.lock"].contains(&name.as_str()), "another file: {name}");
    }

    // Loosened while the hub is down (an older database, a careless copy): restricted at start.
    hub.kill();
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.db_with(suffix);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let mut hub = Hub::start(&dir.db(), &[]);
    assert_eq!(hub.public_key, public_key, "the key is kept");
    check_modes(&dir);

    // The signing key is in the database: its public half is the one the hub prints.
    hub.kill();
    let conn = rusqlite::Connection::open_with_flags(dir.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let stored: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'signing_key'", [], |r| r.get(0)).expect("a stored key");
    drop(conn);
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["publicKey"], json!(public_key));
    assert!(stored["secretKey"].is_string());

    // With --key the key stays in its file: none is written to the database.
    let keyed = TempDir::new("f12-key");
    let mut hub = Hub::start(&keyed.db(), &["--key", "examples/keys/demo-hub.json"]);
    check_modes(&keyed);
    hub.kill();
    let conn = rusqlite::Connection::open_with_flags(keyed.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM meta WHERE key = 'signing_key'", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 0, "--key's key was copied into the database");
}

/// F6. "One 4 MiB request of invalid elements made the hub allocate ~4 GB": a body within the
/// size limit holding a million or more tiny invalid elements (`[1,1,1,…]`) became as many JSON
/// values and then as many error objects, each with its path and message, before any reply.
///
/// Fixed (in progress): a body is bounded by a budget of JSON values at the door (413
/// `payload_too_large` past it, before it is parsed), and a refusal lists at most 100 problems.
/// The hub's peak resident memory stays under 100 MB through every such request.
#[test]
fn f6_a_4_mib_request_of_invalid_elements() {
    const PEAK: u64 = 100 * 1024 * 1024;
    // Just under the 4 MiB body limit: `prefix [e,e,…] suffix`.
    let fill = |prefix: &str, element: &str, suffix: &str| {
        let room = 4 * 1024 * 1024 - prefix.len() - suffix.len() - 2;
        let n = room / (element.len() + 1);
        let mut body = String::with_capacity(4 * 1024 * 1024);
        body.push_str(prefix);
        body.push('[');
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            body.push_str(element);
        }
        body.push(']');
        body.push_str(suffix);
        assert!(body.len() <= 4 * 1024 * 1024);
        body
    };
    let sync_prefix = r#"{"edgeId":"edge-a","bootId":"b","seq":1,"catalogVersion":2,"leases":[],"events":"#;
    // Tiny elements (two million values), and fewer, longer ones (two hundred thousand strings).
    let long = format!("\"{}\"", "x".repeat(18));
    let cases = [
        ("POST", "/v1/sync", EDGE_A, fill(sync_prefix, "1", "}")),
        ("POST", "/v1/events", ADMIN, fill("", "1", "")),
        ("PUT", "/v1/catalog", ADMIN, fill(r#"{"schemaVersion":1,"products":"#, "1", "}")),
        ("POST", "/v1/sync", EDGE_A, fill(sync_prefix, &long, "}")),
        ("POST", "/v1/events", ADMIN, fill("", &long, "")),
        ("PUT", "/v1/catalog", ADMIN, fill(r#"{"schemaVersion":1,"products":"#, &long, "}")),
    ];
    let mut failures = Vec::new();
    for (method, path, token, body) in &cases {
        // A hub of its own for each, so that each peak is its request's.
        let dir = TempDir::new("f6");
        let hub = Hub::start(&dir.db(), &[]);
        hub.setup(&[customer("cus_a", "plan_pro")]);
        let pid = hub.pid();
        let before = peak_rss(pid).expect("the hub's memory");
        let what = format!("{method} {path} ({} bytes, {} elements)", body.len(), body.matches(',').count() + 1);
        // The request runs in a thread while the hub's peak is watched; past the bound the hub is
        // stopped (SIGKILL) rather than left to grow.
        let started = Instant::now();
        let (answer, peak, stopped) = std::thread::scope(|scope| {
            let request = scope.spawn(|| hub.try_call(method, path, Some(token), Some(body), &[]));
            let (mut peak, mut stopped) = (before, false);
            while !request.is_finished() {
                peak = peak.max(peak_rss(pid).unwrap_or(0));
                if peak >= PEAK && !stopped {
                    stopped = true;
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let answer = request.join().unwrap();
            (answer, peak.max(peak_rss(pid).unwrap_or(0)), stopped)
        });
        let took = started.elapsed();
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                let why = if stopped { "stopped past the bound".to_string() } else { e.to_string() };
                println!("{what}: no answer after {took:?} ({why}), peak RSS {} MB", peak >> 20);
                failures.push(format!("{what}: no answer after {took:?} ({why}), peak RSS {} MB", peak >> 20));
                continue;
            }
        };
        let typed = r.body["error"]["code"].is_string()
            || r.body["errors"].as_array().is_some_and(|e| !e.is_empty() && e.iter().all(|e| e["code"].is_string()));
        let listed = r.body["errors"].as_array().map_or(0, Vec::len);
        println!(
            "{what}: {} in {took:?}, {} bytes answered, {listed} problem(s) listed, peak RSS {} MB (at start {} MB)",
            r.status,
            r.raw.len(),
            peak >> 20,
            before >> 20
        );
        if r.status != 400 && r.status != 413 {
            failures.push(format!("{what}: status {}", r.status));
        }
        if !typed {
            let start = String::from_utf8_lossy(&r.raw[..r.raw.len().min(300)]).into_owned();
            failures.push(format!("{what}: no typed error body: {start}"));
        }
        if listed > 100 {
            failures.push(format!("{what}: {listed} problems listed (at most 100)"));
        }
        if peak >= PEAK {
            failures.push(format!("{what}: peak RSS {} MB (at start {} MB)", peak >> 20, before >> 20));
        }
        assert_eq!(hub.get("/healthz", None).status, 200, "{what}: the hub stopped serving");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The rows of the hub's `leases` table.
fn lease_rows(db: &Path) -> i64 {
    query_count(db, "SELECT COUNT(*) FROM leases")
}

/// F4. "A 20-second outage wedges a busy edge forever": a sync carried every unacknowledged
/// event, so an outage at 1,000 events/s built a request over the hub's 4 MiB limit, refused
/// every time after.
///
/// Fixed: the edge builds its requests as pages (at most 1,000 new events and about 1 MiB);
/// `syncBacklog` says whether another page is waiting. 30,000 events queued while the hub was
/// away go in 30 pages, each acknowledged, all stored once and billed.
#[test]
fn f4_an_outage_wedges_a_busy_edge() {
    let dir = TempDir::new("f4");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let mut edge = edge_engine(&hub, EDGE_A, "edge-a");
    // The outage: 30,000 calls allowed locally (no hard limit on calls), queued for the hub.
    let now = wall_clock();
    for i in 0..30_000 {
        let e = json!({ "id": format!("c{i}"), "source": "edge-a", "type": "api.call", "subject": "cus_a",
                        "time": now.to_rfc3339() });
        assert!(edge.ingest(&e, now).unwrap().allowed);
    }
    assert_eq!(edge.sync_backlog(), 30_000);
    // The hub is back: pages until nothing is left.
    let mut pages = 0;
    loop {
        edge_sync(&hub, EDGE_A, &mut edge);
        pages += 1;
        if edge.sync_backlog() == 0 {
            break;
        }
        assert!(pages < 100, "the backlog does not shrink");
    }
    assert_eq!(pages, 30);
    assert_eq!(hub.stored_ids("edge-a").len(), 30_000);
    assert_eq!(hub.metered("cus_a", "price_calls", None), Decimal::from(30_000));
    // Nothing is left to send, and a sync now carries no event.
    let request = edge.sync_request(wall_clock()).unwrap().unwrap();
    assert!(request.events.is_empty());
}

/// F8. "Events dated outside the current period skip hard limits and leases": 50,000 tokens
/// dated 40 days ahead were allowed at a customer already at the limit.
///
/// Fixed: time is bounded. Usage backdated into a usage period that has ended is denied on a hard
/// limit (`limit_reached`: no balance nor lease covers it). An event dated more than 5 minutes
/// (`maxFutureMs`, `--max-future-ms`) after the clock is refused by `ingest` at the edge (`invalid_timestamp` at `/time`), by the
/// hub's `POST /v1/events`, and in a sync, where it is a problem of that event and a dead letter
/// (replayable once its time has come), never recorded as usage.
#[test]
fn f8_events_outside_the_current_period() {
    let dir = TempDir::new("f8");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let ahead = Timestamp(wall_clock().0 + 40 * DAY_MS).to_rfc3339();
    let future = json!({ "id": "f1", "source": "edge-a", "type": "llm.completion", "subject": "cus_a",
                         "time": ahead, "data": { "tokens": 50_000 } });
    // At the edge.
    let mut edge = edge_engine(&hub, EDGE_A, "edge-a");
    let refused = edge.ingest(&future, wall_clock()).unwrap_err();
    assert_eq!((refused.code.as_str(), refused.path.as_str()), ("invalid_timestamp", "/time"));
    // Backdated into last month's usage period: no balance nor lease covers a period that has
    // ended, so a hard limit denies it (a value, not an error).
    let last_month = Timestamp(Timestamp::parse(&month_start()).unwrap().0 - DAY_MS).to_rfc3339();
    let backdated = json!({ "id": "b1", "source": "edge-a", "type": "llm.completion", "subject": "cus_a",
                            "time": last_month, "data": { "tokens": 50_000 } });
    let denied = edge.ingest(&backdated, wall_clock()).unwrap();
    assert!(!denied.allowed && denied.reason == tollgate::entitlements::Reason::LimitReached, "{denied:?}");
    assert_eq!(edge.sync_backlog(), 0, "nothing of it is queued");
    // At the hub, server-side.
    let r = hub.post("/v1/events", Some(ADMIN), &json!([backdated]).to_string());
    assert_eq!(
        (r.body["outcomes"][0]["allowed"].clone(), r.body["outcomes"][0]["reason"].clone()),
        (json!(false), json!("limit_reached")),
        "{}",
        r.body
    );
    let r = hub.post("/v1/events", Some(ADMIN), &json!([future]).to_string());
    assert_eq!(r.body["outcomes"][0]["error"]["code"], "invalid_timestamp", "{}", r.body);
    // In a sync: a problem of that event, the others recorded.
    let fine = event("edge-a", "ok1", "cus_a", 10);
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("edge-a", "b", 1, 2, json!([]), json!([future, fine])));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(problems(&r), expected(&[("/events/0/time", "invalid_timestamp")]));
    assert_eq!(hub.stored_ids("edge-a"), ["ok1"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(10));
    let dead = hub.get("/v1/dead-letters", Some(ADMIN));
    assert_eq!(dead.body["deadLetters"][0]["id"], "f1", "{}", dead.body);
    assert_eq!(dead.body["deadLetters"][0]["error"]["code"], "invalid_timestamp");
    // Replaying it now changes nothing: its time has not come.
    let r = hub.post("/v1/dead-letters/replay", Some(ADMIN), "{}");
    assert_eq!((r.body["replayed"].clone(), r.body["stillDead"].clone()), (json!(0), json!(1)), "{}", r.body);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), Decimal::from(10));
}

/// F9. "`consume` ids are deduplicated per edge only: a client retry that lands on another edge
/// is billed twice."
///
/// Fixed: a `consume` with the caller's id travels as event `consume:<customer>:<id>` from the
/// source `tollgate:consume`, the same on every edge, so the hub records (and bills) it once.
#[test]
fn f9_a_consume_id_on_two_edges_is_billed_once() {
    let dir = TempDir::new("f9");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let seven = Decimal::from(7);
    for (token, name) in [(EDGE_A, "edge-a"), (EDGE_B, "edge-b")] {
        let mut edge = edge_engine(&hub, token, name);
        let first = edge.consume("cus_a", "tokens", seven, Some("req-1"), wall_clock()).unwrap();
        assert_eq!(first.reason, tollgate::entitlements::Reason::LeaseExhausted, "{first:?}");
        edge_sync(&hub, token, &mut edge); // the lease
        let retry = edge.consume("cus_a", "tokens", seven, Some("req-1"), wall_clock()).unwrap();
        assert!(retry.allowed, "{retry:?}");
        edge_sync(&hub, token, &mut edge); // the usage
    }
    assert_eq!(hub.stored_ids("tollgate:consume"), ["consume:cus_a:req-1"]);
    assert_eq!(hub.metered("cus_a", "price_tokens", None), seven);
}

/// F10. "An engine on signed snapshot v5 accepts the validly signed v4 (a rollback re-enabled an
/// ended subscription)."
///
/// Fixed: an engine never takes a snapshot older than the one it holds (`stale_snapshot`), and
/// keeps deciding on the newer one.
#[test]
fn f10_a_signed_snapshot_never_goes_back() {
    let dir = TempDir::new("f10");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let older = hub.get("/v1/snapshot", Some(EDGE_A)).body;
    // The customer's subscription ends: a newer snapshot.
    let mut ended = customer("cus_a", "plan_pro");
    ended["subscriptions"][0]["endingAt"] = json!("2026-02-01T00:00:00Z");
    let r = hub.put("/v1/customers/cus_a", Some(ADMIN), &ended.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let newer = hub.get("/v1/snapshot", Some(EDGE_A)).body;
    let key = tollgate::sync::signed::PublicKey::parse(&hub.public_key).unwrap();
    let options = Options { hub_public_key: Some(key), ..Options::default() };
    let mut engine = Engine::from_snapshot(&newer, options).unwrap();
    let denied = engine.check("cus_a", "priority", wall_clock()).unwrap();
    assert!(!denied.allowed);
    let errors = engine.apply_snapshot(&older).unwrap_err();
    assert_eq!(errors[0].code.as_str(), "stale_snapshot", "{errors:?}");
    assert!(!engine.check("cus_a", "priority", wall_clock()).unwrap().allowed, "still the newer snapshot");
}

/// F11. "State grows without bound: lease rows are never collected."
///
/// Fixed: a lease reported final is folded into its key's settled lease (one row per key for
/// everything that is over), and accounts of keys no longer leased are dropped once
/// none of their leases can be used. 1,000 syncs of an edge that each close one lease and open
/// the next (until the budget is spent) leave two rows: the settled one and the live one (the
/// newest lease of an edge run stays apart even when it ended, for a day, so that a late
/// duplicate of an earlier report finds it closed).
#[test]
fn f11_lease_rows_stay_bounded_over_sparse_syncs() {
    let dir = TempDir::new("f11");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let period = month_start();
    let first = hub_sync(&hub, "edge-a", 1, json!([lease("cus_a", "tokens", &period, "0", "1", 0)]));
    assert_eq!(granted(&first), Decimal::ONE);
    for epoch in 0..999u32 {
        let mut done = lease("cus_a", "tokens", &period, "1", "0", epoch);
        done["final"] = json!(true);
        let next = lease("cus_a", "tokens", &period, "0", "1", epoch + 1);
        let r = hub_sync(&hub, "edge-a", u64::from(epoch) + 2, json!([done, next]));
        assert_eq!(problems(&r), expected(&[]), "{}", r.body);
        assert_eq!(r.body["leases"][1]["granted"], "1", "{}", r.body);
    }
    assert_eq!(lease_rows(&dir.db()), 2);
    // The settled lease still counts what was used: 999 of the 1,000 tokens, and the live lease
    // holds the last one.
    let r = hub_sync(&hub, "edge-b", 1, json!([lease("cus_a", "tokens", &period, "0", "5", 0)]));
    assert_eq!(granted(&r), Decimal::ZERO, "{}", r.body);
    assert_eq!(r.body["leases"][0]["othersUsage"], "999", "{}", r.body);
}

/// F13. "Events for unknown customers, or missing properties, are acknowledged and dropped
/// (stderr only)."
///
/// Fixed: an event the hub cannot apply is acknowledged and kept in a dead-letter table with
/// its reason, listed by `GET /v1/dead-letters`, and replayed by `POST /v1/dead-letters/replay`
/// once it can be (the customer exists): recorded then, once, and gone from the table.
#[test]
fn f13_events_the_hub_cannot_apply_are_dead_letters_not_lost() {
    let dir = TempDir::new("f13");
    let mut hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let early = event("edge-a", "early", "cus_later", 30);
    let broken =
        json!({ "id": "broken", "source": "edge-a", "type": "llm.completion", "subject": "cus_a", "data": {} });
    let r = hub.post("/v1/sync", Some(EDGE_A), &sync_body("edge-a", "b", 1, 2, json!([]), json!([early, broken])));
    assert_eq!((r.status, &r.body["ackSeq"]), (200, &json!(1)), "{}", r.body);
    assert_eq!(
        problems(&r),
        expected(&[("/events/0/subject", "unknown_reference"), ("/events/1/data/tokens", "missing_property")])
    );
    assert!(hub.stored_ids("edge-a").is_empty());
    // Kept across a restart.
    hub.kill();
    let hub = Hub::start(&dir.db(), &[]);
    let dead = hub.get("/v1/dead-letters", Some(ADMIN));
    let listed: Vec<(&str, &str)> = dead.body["deadLetters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["error"]["code"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("early", "unknown_reference"), ("broken", "missing_property")]);
    assert_eq!(dead.body["deadLetters"][0]["edgeId"], "edge-a");
    assert_eq!(hub.get("/v1/dead-letters", Some(EDGE_A)).status, 403, "an admin route");
    // The customer arrives: the replay records the early event, once.
    let r = hub.put("/v1/customers/cus_later", Some(ADMIN), &customer("cus_later", "plan_pro").to_string());
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let r = hub.post("/v1/dead-letters/replay", Some(ADMIN), "");
    assert_eq!((r.body["replayed"].clone(), r.body["stillDead"].clone()), (json!(1), json!(1)), "{}", r.body);
    assert_eq!(hub.stored_ids("edge-a"), ["early"]);
    assert_eq!(hub.metered("cus_later", "price_tokens", None), Decimal::from(30));
    let r = hub.post("/v1/dead-letters/replay", Some(ADMIN), r#"{"customerId":"cus_later"}"#);
    assert_eq!(r.body["replayed"], 0, "{}", r.body);
    assert_eq!(hub.metered("cus_later", "price_tokens", None), Decimal::from(30));
    let dead = hub.get("/v1/dead-letters", Some(ADMIN));
    assert_eq!(dead.body["deadLetters"].as_array().unwrap().len(), 1, "{}", dead.body);
}

/// F1, continued: an edge token, even its own edge's, cannot lock a customer's whole limit away
/// from the other edges: one lease holds at most `--max-edge-share` (50 %) of a key's budget
/// unused. And an admin can revoke an edge: its leases are settled as fully used, it is granted
/// nothing until the revocation is lifted, and its events are still recorded.
#[test]
fn f1_an_edge_token_cannot_take_a_whole_limit_and_can_be_revoked() {
    let dir = TempDir::new("f1cap");
    let hub = Hub::start(&dir.db(), &[]);
    hub.setup(&[customer("cus_a", "plan_pro")]);
    let period = month_start();
    let greedy = hub_sync(&hub, "edge-a", 1, json!([lease("cus_a", "tokens", &period, "0", "1000", 0)]));
    assert_eq!(granted(&greedy), Decimal::from(500), "{}", greedy.body);
    let other = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "b", 1, 2, json!([lease("cus_a", "tokens", &period, "0", "300", 0)]), json!([])),
    );
    assert_eq!(granted(&other), Decimal::from(300), "{}", other.body);
    // Revoked: its 500 count as used, nothing more is granted to it.
    let r = hub.post("/v1/edges/edge-a/revoke", Some(ADMIN), "");
    assert_eq!((r.status, &r.body["leasesSettled"]), (200, &json!(1)), "{}", r.body);
    let e = event("edge-a", "after-revoke", "cus_a", 3);
    let r = hub.post(
        "/v1/sync",
        Some(EDGE_A),
        &sync_body("edge-a", "b", 2, 2, json!([lease("cus_a", "tokens", &period, "0", "100", 1)]), json!([e])),
    );
    assert_eq!(r.body["leases"][0]["mode"], "closed", "{}", r.body);
    assert_eq!(problems(&r), expected(&[("/leases/0", "forbidden")]));
    assert_eq!(hub.stored_ids("edge-a"), ["after-revoke"], "its usage is still recorded");
    // Edge B sees edge A's 500 as used.
    let r = hub.post(
        "/v1/sync",
        Some(EDGE_B),
        &sync_body("edge-b", "b", 2, 2, json!([lease("cus_a", "tokens", &period, "0", "300", 0)]), json!([])),
    );
    assert_eq!(r.body["leases"][0]["othersUsage"], "500", "{}", r.body);
    // Lifted: edge A may lease again (what is left: 1,000 − 500 − 600 held by B … none).
    let r = hub.call("DELETE", "/v1/edges/edge-a/revoke", Some(ADMIN), None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = hub_sync(&hub, "edge-a", 3, json!([lease("cus_a", "tokens", &period, "0", "100", 2)]));
    assert_eq!(problems(&r), expected(&[]), "{}", r.body);
    assert_ne!(r.body["leases"][0]["mode"], "closed", "{}", r.body);
}
