//! The hub (SPEC §7, §9): the source of truth the edges sync with. It stores the catalog, the
//! customers and the usage ledger in SQLite or PostgreSQL, shares hard limits out as quota leases (the
//! [`tollgate::sync::Escrow`]), meters and bills every event with its own
//! [`tollgate::engine::Engine`] — the same core the edges run — and serves the `www/` calculator.
//! The hub only stores and serves: business rules (top-ups, verdicts, metering) are the
//! engine's.
//!
//! - [`config`]: settings, random bytes; [`tokens`]: who may call (the environment's tokens and
//!   those the hub made, kept hashed); [`budget`]: what one request may cost.
//! - [`store`]: the narrow [`store::Store`] trait (load everything at start, apply batches of
//!   changes in one transaction), [`store::SqliteStore`] and [`store::PgStore`], each with its
//!   migrations.
//! - [`state`]: the state in memory and every API operation, as pure functions of
//!   `(state, input, now)` returning the reply and the changes to persist, or a
//!   [`state::HubError`] (the core's errors, no HTTP status). One module per piece of state:
//!   start-up and replay, leases (the escrow), documents (catalog, customers, invoices), the
//!   event ledger, reads.
//! - [`writer`]: group commit — the thread that makes changes durable before replies go out.
//! - [`http`]: the routes (axum), authorisation, inputs (each event decoded once), errors
//!   ([`http::error`]: status and JSON body of each error), the static site (tower-http's
//!   `ServeDir`).
//!
//! The hub reads the wall clock (the core never does) and passes it as `now` to the core.

pub mod budget;
pub mod config;
pub mod http;
pub mod state;
pub mod store;
pub mod tokens;
pub mod writer;

use std::io::Write;
use std::sync::Arc;

pub use config::Config;

use config::{hex, random_bytes};
use state::{HubState, Setup};
use tokens::{EnvTokens, Role, SharedKeyring, Tokens};
use writer::Writer;

use tollgate::sync::signed::KeyPair;
use tollgate::sync::Policy;

/// Runs the hub until the process is stopped. Prints the generated tokens (once), the public
/// key, and then the line `tollgate hub listening on http://<addr>`.
pub fn run(config: Config) -> Result<(), String> {
    if config.ttl_ms == 0 {
        return Err("--ttl-ms must be positive".into());
    }
    let env_tokens =
        EnvTokens::from_env(std::env::var("TOLLGATE_ADMIN_TOKEN").ok(), std::env::var("TOLLGATE_EDGE_TOKENS").ok())?;
    let keyring = SharedKeyring::default();
    let opened = config.db.open().map_err(|e| e.to_string())?;
    // (SQLite's writer lock stays in `opened` until `run` returns.)
    let (mut store, reader) = (opened.writer, opened.reader);
    let shared = store.shared();
    let key_seed = random_bytes::<32>()?;
    let mut claimed_key = false;
    if shared {
        // Several hubs may run on this database: they agree on one signing key (the first one
        // stored wins) before any of them reads the state.
        if config.key.is_none() {
            let candidate = KeyPair::from_seed(&key_seed, None).map_err(|e| e.to_string())?.to_value().to_string();
            let stored = store.claim_meta("signing_key", &candidate).map_err(|e| e.to_string())?;
            claimed_key = stored == candidate;
        }
    } else {
        // A fencing epoch: should SQLite's file lock ever be bypassed (a copy of the file
        // system, a misconfigured mount), the older process's writes fail instead of
        // interleaving.
        store.fence().map_err(|e| e.to_string())?;
    }
    let setup = Setup {
        key: config.key.clone(),
        policy: Policy { ttl_ms: config.ttl_ms, edge_share_percent: config.edge_share_percent, ..Policy::default() },
        boot_id: hex(&random_bytes::<8>()?),
        seed: config.seed.clone(),
        key_seed,
        max_future_ms: i64::try_from(config.max_future_ms).unwrap_or(i64::MAX),
        snapshot_ttl_ms: i64::try_from(config.snapshot_ttl_ms).unwrap_or(i64::MAX),
        hash_seed: u64::from_le_bytes(random_bytes::<8>()?),
        keyring: keyring.clone(),
        shared,
        replay: if config.full_replay { store::Replay::Full } else { store::Replay::FromCheckpoint },
        checkpoint_every: config.checkpoint_every,
    };
    // What rebuilds the state if a shared store fails for a while (a new run id: the leases of
    // this one are closed by the hubs once it stops ticking).
    let reload_setup = Setup { seed: None, ..setup.clone() };
    let reload_keyring = keyring.clone();
    let reload: writer::Reload = Box::new(move |store: &mut dyn store::Store| {
        let setup =
            Setup { boot_id: hex(&random_bytes::<8>()?), keyring: SharedKeyring::default(), ..reload_setup.clone() };
        let (mut state, changes, report) = HubState::load(store, setup, state::now())?;
        let at = writer::write_start(store, &mut state, report.position, changes).map_err(|e| e.to_string())?;
        state.adopt_keyring(&reload_keyring);
        Ok((state, at))
    });
    let (mut state, mut changes, mut report) = HubState::load(&mut *store, setup, state::now())?;
    report.key_generated |= claimed_key;
    // Tokens for the roles neither the environment nor the database covers: stored (hashed)
    // with the rest of start-up's changes, so they keep working after a restart.
    let generated = state.first_tokens(&env_tokens, state::now(), &mut changes)?;
    let position = if shared {
        writer::write_start(&mut *store, &mut state, report.position, changes)
    } else {
        store.apply(&[&changes]).map(|()| 0)
    }
    .map_err(|e| format!("cannot write the database: {e}"))?;

    let mut out = std::io::stdout().lock();
    let db = config.db.describe();
    let print = |out: &mut std::io::StdoutLock<'_>, line: String| {
        let _ = writeln!(out, "{line}");
    };
    for (role, token) in &generated {
        let (name, var) = match role {
            Role::Admin => ("admin", "kept hashed in the database; set TOLLGATE_ADMIN_TOKEN to choose"),
            Role::Edge => {
                ("edge", "edge id edge-1, kept hashed in the database; set TOLLGATE_EDGE_TOKENS=edgeId:token to choose")
            }
        };
        print(&mut out, format!("tollgate hub: {name} token (generated, shown once; {var}): {token}"));
    }
    let key = state.key();
    let public = key.public_key().to_base64();
    let generated_key = if report.key_generated { ", generated and kept in the database" } else { "" };
    print(&mut out, format!("tollgate hub: public key {public} (keyId {}{generated_key})", key.key_id));
    if report.seeded {
        print(&mut out, format!("tollgate hub: seeded {db} from --seed"));
    } else if config.seed.is_some() {
        print(&mut out, format!("tollgate hub: {db} is not empty, --seed ignored"));
    }
    print(
        &mut out,
        format!(
            "tollgate hub: {db}: snapshot version {}, {} event(s) replayed{}{}",
            state.snapshot_version(),
            report.events,
            match report.checkpoint {
                Some(seq) => format!(" after the checkpoint at seq {seq}"),
                None => String::new(),
            },
            if report.skipped_events > 0 { format!(", {} skipped", report.skipped_events) } else { String::new() }
        ),
    );

    let state = Arc::new(std::sync::Mutex::new(state));
    let writer =
        if shared { Writer::start_shared(store, state.clone(), position, reload) } else { Writer::start(store) }
            .map_err(|e| e.to_string())?;
    let tokens = Tokens::new(env_tokens, keyring);
    let hub = Arc::new(http::Hub::new(state, writer, reader, tokens, config.www.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tollgate-hub")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let tick_every = std::time::Duration::from_millis((config.ttl_ms / 4).clamp(250, 10_000));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        print(&mut out, format!("tollgate hub listening on http://{addr}"));
        let _ = out.flush();
        drop(out);
        let ticker = hub.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick_every).await;
                ticker.tick().await;
            }
        });
        let limits = Limits {
            header_timeout: std::time::Duration::from_millis(config.header_timeout_ms),
            body_timeout: std::time::Duration::from_millis(config.body_timeout_ms),
            max_connections: config.max_connections,
        };
        serve(listener, http::router(hub), limits).await
    })
}

/// What a connection may take: the time to send headers (and to sit idle between requests),
/// the time to send a body, and how many connections may be open at once.
struct Limits {
    header_timeout: std::time::Duration,
    body_timeout: std::time::Duration,
    max_connections: usize,
}

/// Serves `app` on `listener` with hyper's HTTP/1 directly, so that a client that sends nothing,
/// or sends slowly, is cut off without a token (the slowloris attacks), and connections past the
/// cap are closed as they arrive instead of starving the rest.
async fn serve(listener: tokio::net::TcpListener, app: axum::Router, limits: Limits) -> Result<(), String> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let app = tower_http::timeout::RequestBodyTimeout::new(app, limits.body_timeout);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                eprintln!("tollgate hub: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream); // over the cap: closed at once
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let _ = connection.await;
            drop(permit);
        });
    }
}
