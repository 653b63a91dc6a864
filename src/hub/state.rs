//! The hub's state in memory and every operation of its API, as plain functions of
//! `(state, input, now)` that return the reply and the [`Changes`] to make durable before it is
//! sent. Nothing here does I/O: the HTTP layer parses, locks, queues the changes and replies.
//!
//! The state is the hub's own [`Engine`] (the same core the edges run; it meters and bills every
//! event), the [`Escrow`] that shares hard limits out as leases, and the JSON documents the
//! snapshot is built from. The engine is rebuilt at start by replaying the history — catalog
//! versions, customer versions and events — in the order it happened, so it ends exactly as it
//! was when the last acknowledged change was made.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::store::{
    CatalogRow, Changes, CustomerChange, CustomerRow, EventRow, InvoiceRow, LeaseRow, Loaded, Record, Store,
    StoreError, TopUpRow,
};
use crate::catalog::Catalog;
use crate::customer::Customer;
use crate::engine::{Engine, Options, Verdict};
use crate::entitlements::{Decision, Reason};
use crate::error::{Code, Error};
use crate::json::{parse, Fields};
use crate::metering::Event;
use crate::money::{add, parse_decimal, plain, Currency};
use crate::sync::escrow::{Holder, Lease};
use crate::sync::signed::KeyPair;
use crate::sync::{Escrow, LeaseGrant, LeaseKey, LeaseReport, Mode, Policy, SyncRequest, SyncResponse, Terms};
use crate::time::Timestamp;
use crate::Decimal;

/// The edge id under which the hub's own engine holds leases (server-side ingestion draws on
/// the same escrow as the edges). Edges may not use it.
pub const HUB_EDGE: &str = "hub";

/// Longest accepted idempotency key of a wallet top-up.
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// An error reply: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `{ "error": { code, path, message } }` or `{ "errors": [...] }`.
    pub body: Value,
}

/// The HTTP status of an error code: 400 for every input-validation code.
pub fn status_of(code: Code) -> u16 {
    match code {
        Code::Unauthorized => 401,
        Code::Forbidden => 403,
        Code::NotFound => 404,
        Code::Conflict => 409,
        Code::PayloadTooLarge => 413,
        Code::Storage => 500,
        _ => 400,
    }
}

/// An error as JSON: `{ code, path, message }`.
pub fn error_json(e: &Error) -> Value {
    json!({ "code": e.code.as_str(), "path": e.path, "message": e.message })
}

impl ApiError {
    /// One error, its status from its code.
    pub fn one(e: Error) -> ApiError {
        ApiError { status: status_of(e.code), body: json!({ "error": error_json(&e) }) }
    }

    /// A validation failure listing every problem (400).
    pub fn list(errors: Vec<Error>) -> ApiError {
        let status = errors.first().map_or(400, |e| status_of(e.code));
        ApiError { status, body: json!({ "errors": errors.iter().map(error_json).collect::<Vec<_>>() }) }
    }

    /// A new error of `code` at `path`.
    pub fn new(code: Code, path: &str, message: impl Into<String>) -> ApiError {
        ApiError::one(Error::new(code, path, message))
    }
}

fn no_catalog() -> ApiError {
    ApiError::new(Code::Conflict, "", "the hub has no catalog yet: PUT /v1/catalog first")
}

fn no_customer(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, "", format!("no customer with id {id:?}"))
}

/// A successful reply: status, JSON body, and the ETag to send with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body (JSON text).
    pub body: Arc<Vec<u8>>,
    /// An `ETag` header value.
    pub etag: Option<String>,
}

impl Reply {
    /// A JSON reply.
    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ApiError::new(Code::Overflow, "", format!("the reply cannot be written: {e}")))?;
        Ok(Reply { status, body: Arc::new(body), etag: None })
    }
}

/// The current snapshot, signed once per version.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Its `snapshotVersion`.
    pub version: u64,
    /// The envelope's JSON text.
    pub text: Arc<Vec<u8>>,
    /// The envelope as a value (what `/v1/sync` embeds).
    pub value: Arc<Value>,
}

/// How the hub was started.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The signing key given with `--key`, if any.
    pub key: Option<KeyPair>,
    /// Lease policy (`--ttl-ms`).
    pub policy: Policy,
    /// This run's boot id (the hub's own leases are held under it).
    pub boot_id: String,
    /// A snapshot to load into an empty database (`--seed`).
    pub seed: Option<Value>,
    /// 32 random bytes, for a signing key if none is given or stored.
    pub key_seed: [u8; 32],
}

/// What start-up tells the operator.
#[derive(Clone, Debug, Default)]
pub struct StartReport {
    /// Events of the history the current engine could not record (logged, skipped).
    pub skipped_events: usize,
    /// Events replayed.
    pub events: usize,
    /// Whether `--seed` was loaded.
    pub seeded: bool,
    /// Whether the signing key was generated now.
    pub key_generated: bool,
}

/// The hub's state.
pub struct HubState {
    engine: Option<Engine>,
    escrow: Escrow,
    policy: Policy,
    boot_id: String,
    catalog: Option<Value>,
    catalog_version: u64,
    customers: BTreeMap<String, Value>,
    snapshot_version: u64,
    issued_at: Timestamp,
    signed: Option<Signed>,
    key: KeyPair,
    topups: HashMap<String, TopUpRow>,
    invoices: HashMap<(String, String, i64), Arc<Vec<u8>>>,
    /// Edge events older than the engine's idempotency memory recorded since start, by
    /// (source, id): with the store's unique key, the hub's dedupe has no window.
    late: HashSet<(String, String)>,
    seq: i64,
    /// Tickets of queued write batches (see `writer`): the last one handed out.
    pub ticket: u64,
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse_stored(json: &str, what: &str) -> Result<Value, String> {
    parse(json).map_err(|e| format!("stored {what} is not JSON: {e}"))
}

fn first_problem(errors: &[Error]) -> String {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    format!("{} problem(s); first: {first}", errors.len())
}

fn decimal_of(text: &str, what: &str) -> Result<Decimal, String> {
    parse_decimal(text).ok_or_else(|| format!("stored {what} {text:?} is not a decimal"))
}

/// The hub's clock reading as a timestamp.
pub fn now() -> Timestamp {
    Timestamp(super::store::now_ms())
}

/// True for the denials that a sync with the hub's escrow may lift.
fn lease_reason(reason: Reason) -> bool {
    matches!(reason, Reason::LeaseExhausted | Reason::LeaseExpired | Reason::Offline)
}

fn lease_row(key: &LeaseKey, edge_id: &str, boot_id: &str, epoch: u32, lease: &Lease) -> LeaseRow {
    LeaseRow {
        customer_id: key.customer_id.clone(),
        key: key.key.clone(),
        period: key.period.0,
        edge_id: edge_id.into(),
        boot_id: boot_id.into(),
        epoch: i64::from(epoch),
        granted: plain(lease.granted),
        returned: plain(lease.returned),
        used: plain(lease.used),
        expires_at: lease.expires_at.0,
        closed: lease.closed,
        allowance: plain(lease.allowance),
    }
}

/// Whether the hub answers a lease report, and against which terms: the key must be leased
/// now (a hard-limit feature of its current period, or a wallet) or be a lease the hub holds for
/// this edge already (a final report of an earlier period), and its counters must agree with
/// what the hub granted (`used` and `returned` ≤ `granted`; a new lease has used nothing).
fn judge_report(
    engine: &mut Engine,
    report: &LeaseReport,
    held: Option<&Lease>,
    now: Timestamp,
) -> Result<Terms, Error> {
    let terms = engine.lease_terms(&report.key, now)?;
    if terms.is_none() && held.is_none() {
        return Err(Error::new(
            Code::UnknownReference,
            "",
            "no such lease: the key is not a hard-limit feature of its current period nor a wallet",
        ));
    }
    let granted = held.map_or(Decimal::ZERO, |l| l.granted);
    if report.used > granted || report.returned > granted {
        return Err(Error::new(Code::InvalidValue, "", "used and returned cannot exceed what the hub granted"));
    }
    Ok(terms.unwrap_or_default())
}

/// The answer to a refused report: the lease is over (`closed`), at what the hub granted.
fn closed(report: &LeaseReport, held: Option<&Lease>) -> LeaseGrant {
    LeaseGrant {
        key: report.key.clone(),
        epoch: report.epoch,
        granted: held.map_or(Decimal::ZERO, |l| l.granted),
        ttl_ms: 0,
        mode: Mode::Closed,
        shrink_to: None,
        others_usage: Decimal::ZERO,
        allowance: Decimal::ZERO,
        budget: Decimal::ZERO,
    }
}

fn storage(e: String) -> ApiError {
    ApiError::new(Code::Storage, "", format!("the ledger could not be read: {e}"))
}

fn overflow(path: &str) -> Error {
    Error::new(Code::Overflow, path, "a lease counter is too large to represent exactly")
}

impl HubState {
    /// Loads the state from `store`: the history is replayed into a new engine, leases go into
    /// the escrow. Returns the state and the changes start-up itself makes (a generated key, a
    /// seed, the closing of the hub's leases of earlier runs), which the caller applies before
    /// serving.
    pub fn load(
        store: &mut dyn Store,
        setup: Setup,
        now: Timestamp,
    ) -> Result<(HubState, Changes, StartReport), String> {
        let placeholder = KeyPair::from_seed(&setup.key_seed, None).map_err(|e| e.to_string())?;
        let mut state = HubState {
            engine: None,
            escrow: Escrow::default(),
            policy: setup.policy,
            boot_id: setup.boot_id.clone(),
            catalog: None,
            catalog_version: 0,
            customers: BTreeMap::new(),
            snapshot_version: 0,
            issued_at: now,
            signed: None,
            key: placeholder.clone(),
            topups: HashMap::new(),
            invoices: HashMap::new(),
            late: HashSet::new(),
            seq: 0,
            ticket: 0,
        };
        let mut report = StartReport::default();
        let loaded: Loaded = store
            .load(&mut |record| state.replay(record, &mut report))
            .map_err(|e: StoreError| format!("cannot read the database: {e}"))?;
        state.seq = loaded.last_seq;
        let mut changes = Changes::default();

        // The signing key: --key, else the stored one, else a new one (kept).
        state.key = match (setup.key, loaded.meta.get("signing_key")) {
            (Some(k), _) => k,
            (None, Some(stored)) => {
                let v = parse_stored(stored, "signing key")?;
                KeyPair::from_value(&v).map_err(|e| format!("the stored signing key is unusable: {e}"))?
            }
            (None, None) => {
                report.key_generated = true;
                changes.meta.push(("signing_key".into(), text(&placeholder.to_value())));
                placeholder
            }
        };

        // The escrow, from the stored leases.
        for row in &loaded.leases {
            let key =
                LeaseKey { customer_id: row.customer_id.clone(), key: row.key.clone(), period: Timestamp(row.period) };
            let epoch =
                u32::try_from(row.epoch).map_err(|_| format!("stored lease epoch {} is out of range", row.epoch))?;
            let holder = Holder { edge_id: row.edge_id.clone(), boot_id: row.boot_id.clone(), epoch };
            let mut lease = Lease {
                granted: decimal_of(&row.granted, "lease granted")?,
                returned: decimal_of(&row.returned, "lease returned")?,
                used: decimal_of(&row.used, "lease used")?,
                expires_at: Timestamp(row.expires_at),
                closed: row.closed,
                allowance: decimal_of(&row.allowance, "lease allowance")?,
            };
            // The hub's own leases of an earlier run: their `used` is exact (the hub reports it
            // in the same transaction as the events it covers), so they are closed, which gives
            // back what they did not use.
            if row.edge_id == HUB_EDGE && row.boot_id != state.boot_id && !lease.closed {
                lease.closed = true;
                changes.leases.push(lease_row(&key, &row.edge_id, &row.boot_id, epoch, &lease));
            }
            state.escrow.accounts.entry(key).or_default().leases.insert(holder, lease);
        }
        for row in loaded.topups {
            state.topups.insert(row.idempotency_key.clone(), row);
        }
        for row in loaded.invoices {
            let key = (row.customer_id, row.subscription_id, row.period_start);
            state.invoices.insert(key, Arc::new(row.json.into_bytes()));
        }

        // A seed goes into an empty hub only.
        if let Some(seed) = setup.seed {
            if state.catalog.is_none() && state.customers.is_empty() {
                state.seed(seed, now, &mut changes, &mut report)?;
                report.seeded = true;
            }
        }
        Ok((state, changes, report))
    }

    /// Applies one record of the stored history.
    fn replay(&mut self, record: Record, report: &mut StartReport) -> Result<(), String> {
        match record {
            Record::Catalog(row) => {
                let catalog = parse_stored(&row.json, "catalog")?;
                let sv = u64::try_from(row.snapshot_version).unwrap_or(0);
                self.install_catalog(&catalog, sv).map_err(|errors| {
                    format!("stored catalog version {} no longer loads: {}", row.version, first_problem(&errors))
                })?;
                self.catalog = Some(catalog);
                self.catalog_version = u64::try_from(row.version).unwrap_or(0);
                self.snapshot_version = sv;
                self.issued_at = Timestamp(row.created_at);
            }
            Record::Customer(row) => {
                let customer = parse_stored(&row.json, "customer")?;
                self.define_customer(&customer, row.kind).map_err(|errors| {
                    format!(
                        "stored customer {:?} (seq {}) no longer loads: {}",
                        row.id,
                        row.seq,
                        first_problem(&errors)
                    )
                })?;
                self.customers.insert(row.id, customer);
                self.snapshot_version = u64::try_from(row.snapshot_version).unwrap_or(0);
                self.issued_at = Timestamp(row.created_at);
            }
            Record::Event(row) => {
                let event = parse_stored(&row.json, "event")?;
                report.events += 1;
                let recorded = match self.engine.as_mut() {
                    Some(engine) => engine.record(&event, Timestamp(row.received_at)).map(|_| ()),
                    None => Err(Error::new(Code::Conflict, "", "no catalog")),
                };
                if let Err(e) = recorded {
                    report.skipped_events += 1;
                    eprintln!("tollgate hub: stored event {}/{} not recorded: {e}", row.source, row.id);
                }
            }
        }
        Ok(())
    }

    fn seed(
        &mut self,
        seed: Value,
        now: Timestamp,
        changes: &mut Changes,
        report: &mut StartReport,
    ) -> Result<(), String> {
        let seed = crate::sync::signed::open_value(seed, None).map_err(|e| format!("--seed: {e}"))?;
        crate::engine::Snapshot::from_value(&seed).map_err(|errors| format!("--seed: {}", first_problem(&errors)))?;
        let mut catalog = seed.get("catalog").cloned().unwrap_or(Value::Null);
        if let Value::Object(map) = &mut catalog {
            map.insert("catalogVersion".into(), json!(1));
        }
        let seq = self.next_seq();
        let row = CatalogRow { version: 1, json: text(&catalog), created_at: now.0, seq, snapshot_version: 1 };
        self.replay(Record::Catalog(row.clone()), report)?;
        changes.catalogs.push(row);
        for customer in seed.get("customers").and_then(Value::as_array).into_iter().flatten() {
            let id = customer.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let seq = self.next_seq();
            let row = CustomerRow {
                id,
                kind: CustomerChange::Put,
                json: text(customer),
                created_at: now.0,
                seq,
                snapshot_version: 1,
            };
            self.replay(Record::Customer(row.clone()), report)?;
            changes.customers.push(row);
        }
        Ok(())
    }

    fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    /// The hub's public key, as edges configure it.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The current snapshot version (0 before any catalog).
    pub fn snapshot_version(&self) -> u64 {
        self.snapshot_version
    }

    /// The snapshot as a value: version, issue time, catalog, customers.
    fn snapshot_value(&self, version: u64, issued_at: Timestamp, catalog: &Value) -> Value {
        let mut map = Map::new();
        map.insert("snapshotVersion".into(), json!(version));
        map.insert("issuedAt".into(), Value::String(issued_at.to_rfc3339()));
        map.insert("catalog".into(), catalog.clone());
        map.insert("customers".into(), Value::Array(self.customers.values().cloned().collect()));
        Value::Object(map)
    }

    /// Loads `catalog` (with the current customers) into the engine; nothing changes on error.
    fn install_catalog(&mut self, catalog: &Value, version: u64) -> Result<(), Vec<Error>> {
        let snapshot = self.snapshot_value(version, self.issued_at, catalog);
        match self.engine.as_mut() {
            Some(engine) => engine.apply_snapshot(&snapshot),
            None => {
                let mut engine = Engine::from_snapshot(&snapshot, Options::default())?;
                engine.enable_leases(HUB_EDGE, &self.boot_id);
                engine.keep_wallets_of_record();
                self.engine = Some(engine);
                Ok(())
            }
        }
    }

    /// Gives the engine a customer's definition. A top-up sets the wallet to the definition's
    /// figure whatever it was before (the engine keeps a running balance when the figure does
    /// not change); what was debited so far stays debited, so the wallet's lease budget grows
    /// by exactly the top-up.
    fn define_customer(&mut self, customer: &Value, kind: CustomerChange) -> Result<(), Vec<Error>> {
        let Some(engine) = self.engine.as_mut() else {
            return Err(vec![Error::new(Code::Conflict, "", "a customer was stored before any catalog")]);
        };
        engine.upsert_customer(customer)?;
        if kind == CustomerChange::TopUp {
            if let Some(id) = customer.get("id").and_then(Value::as_str) {
                engine.adopt_wallet_definition(id);
            }
        }
        Ok(())
    }

    /// Records a validated customer definition: a new snapshot version and its row.
    fn commit_customer(
        &mut self,
        id: &str,
        customer: Value,
        kind: CustomerChange,
        now: Timestamp,
        changes: &mut Changes,
    ) -> CustomerRow {
        self.snapshot_version += 1;
        self.issued_at = now;
        let seq = self.next_seq();
        let row = CustomerRow {
            id: id.into(),
            kind,
            json: text(&customer),
            created_at: now.0,
            seq,
            snapshot_version: i64::try_from(self.snapshot_version).unwrap_or(i64::MAX),
        };
        self.customers.insert(id.into(), customer);
        changes.customers.push(row.clone());
        row
    }

    /// The current snapshot, signed (built once per version).
    pub fn signed(&mut self) -> Option<Signed> {
        let catalog = self.catalog.as_ref()?;
        if let Some(s) = &self.signed {
            if s.version == self.snapshot_version {
                return Some(s.clone());
            }
        }
        let snapshot = self.snapshot_value(self.snapshot_version, self.issued_at, catalog);
        let payload = serde_json::to_vec(&snapshot).ok()?;
        let envelope = self.key.seal(&payload);
        let text = serde_json::to_vec(&envelope).ok()?;
        let signed = Signed { version: self.snapshot_version, text: Arc::new(text), value: Arc::new(envelope) };
        self.signed = Some(signed.clone());
        Some(signed)
    }

    // -----------------------------------------------------------------------------------------
    // the API

    /// `POST /v1/sync`: records the edge's events, answers its lease reports against the
    /// escrow, and sends the snapshot when the edge's is older. `in_ledger` tells whether an
    /// event (source, id) is already in the durable ledger; it is asked only about events older
    /// than the engine's idempotency memory.
    pub fn sync(
        &mut self,
        req: &SyncRequest,
        events: &[Event],
        now: Timestamp,
        in_ledger: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<(Reply, Changes), ApiError> {
        if req.edge_id == HUB_EDGE {
            return Err(ApiError::new(Code::InvalidValue, "/edgeId", "the edge id \"hub\" is the hub's own"));
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let mut changes = Changes::default();
        // Leases, each on its own: a report that is refused (a key that is not leased, counters
        // that contradict what the hub granted, an overflow) changes nothing of its lease, is
        // answered `closed` so the edge stops using it and drops it, and is listed in
        // `problems`; the other leases and the events of the request go ahead.
        let mut grants = Vec::with_capacity(req.leases.len());
        let mut problems = Vec::new();
        for (i, report) in req.leases.iter().enumerate() {
            let holder = Holder { edge_id: req.edge_id.clone(), boot_id: req.boot_id.clone(), epoch: report.epoch };
            let existing = self.escrow.accounts.get(&report.key).and_then(|a| a.leases.get(&holder)).cloned();
            let answered = match judge_report(engine, report, existing.as_ref(), now) {
                Ok(terms) => self
                    .escrow
                    .report(&req.edge_id, &req.boot_id, report, terms, &self.policy, now)
                    .map_err(|_| overflow("")),
                Err(e) => Err(e),
            };
            match answered {
                Ok((grant, lease)) => {
                    changes.leases.push(lease_row(&report.key, &req.edge_id, &req.boot_id, report.epoch, &lease));
                    grants.push(grant);
                }
                Err(e) => {
                    // Put the lease back as it was (a refused report changes nothing).
                    if let Some(account) = self.escrow.accounts.get_mut(&report.key) {
                        match &existing {
                            Some(l) => account.leases.insert(holder, l.clone()),
                            None => account.leases.remove(&holder),
                        };
                        if account.leases.is_empty() {
                            self.escrow.accounts.remove(&report.key);
                        }
                    }
                    problems.push(e.under(&format!("/leases/{i}")));
                    grants.push(closed(report, existing.as_ref()));
                }
            }
        }
        // Then the events: each recorded once, whatever the limits say (the edge allowed it),
        // and whatever its age: the ledger is the billing truth, and nothing acknowledged is
        // left out of it. The engine's memory answers for recent events, the store for older ones.
        let horizon = engine.remembered_since(now);
        for (value, event) in req.events.iter().zip(events) {
            let key = (event.source.clone(), event.id.clone());
            let old = event.time < horizon;
            if old && (self.late.contains(&key) || in_ledger(&event.source, &event.id).map_err(storage)?) {
                continue;
            }
            let outcome = engine.record(value, now);
            if matches!(&outcome, Ok(o) if o.duplicate) {
                continue;
            }
            match &outcome {
                Ok(o) if o.reason == Reason::UnknownCustomer => eprintln!(
                    "tollgate hub: event {}/{} from edge {} is for unknown customer {:?} (recorded, not metered)",
                    event.source, event.id, req.edge_id, event.subject
                ),
                Err(e) => eprintln!(
                    "tollgate hub: event {}/{} from edge {} recorded but not metered: {e}",
                    event.source, event.id, req.edge_id
                ),
                Ok(_) => {}
            }
            if old {
                self.late.insert(key);
            }
            let seq = self.seq + 1;
            self.seq = seq;
            changes.events.push(EventRow {
                seq,
                source: event.source.clone(),
                id: event.id.clone(),
                customer_id: event.subject.clone(),
                json: text(value),
                received_at: now.0,
            });
        }
        let snapshot =
            if req.catalog_version < self.snapshot_version { self.signed().map(|s| (*s.value).clone()) } else { None };
        let response = SyncResponse { ack_seq: req.seq, leases: grants, snapshot };
        let mut body = serde_json::to_value(&response).map_err(|_| ApiError::new(Code::Overflow, "", "unencodable"))?;
        if !problems.is_empty() {
            body["problems"] = Value::Array(problems.iter().map(error_json).collect());
        }
        Ok((Reply::json(200, &body)?, changes))
    }

    /// The hub's own engine syncs with the escrow in-process, as an edge named [`HUB_EDGE`]:
    /// its lease reports are answered like any edge's (its events are stored already).
    fn round(&mut self, now: Timestamp, changes: &mut Changes) {
        let Some(engine) = self.engine.as_mut() else { return };
        let request = match engine.sync_request(now) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                eprintln!("tollgate hub: the hub's own sync request failed: {e}");
                return;
            }
        };
        let mut grants = Vec::with_capacity(request.leases.len());
        for report in &request.leases {
            let terms = engine.lease_terms(&report.key, now).ok().flatten().unwrap_or_default();
            match self.escrow.report(HUB_EDGE, &self.boot_id, report, terms, &self.policy, now) {
                Ok((grant, lease)) => {
                    changes.leases.push(lease_row(&report.key, HUB_EDGE, &self.boot_id, report.epoch, &lease));
                    grants.push(grant);
                }
                Err(_) => eprintln!("tollgate hub: the hub's own lease report overflowed"),
            }
        }
        let response = SyncResponse { ack_seq: request.seq, leases: grants, snapshot: None };
        let applied = serde_json::to_value(&response)
            .map_err(|e| e.to_string())
            .and_then(|v| engine.apply_sync(&v, now).map_err(|errors| first_problem(&errors)));
        if let Err(e) = applied {
            eprintln!("tollgate hub: the hub's own sync response was refused: {e}");
        }
    }

    /// A periodic in-process sync of the hub's own leases (renewals, final reports, the queue
    /// of its events), when its engine says one is due.
    pub fn tick(&mut self, now: Timestamp) -> Changes {
        let mut changes = Changes::default();
        if self.engine.as_ref().is_some_and(|e| e.needs_sync(now)) {
            self.round(now, &mut changes);
        }
        changes
    }

    /// `POST /v1/events`: server-side ingestion. Each event is ingested by the hub's engine —
    /// hard limits enforced against the shared budget through the hub's own leases — and the
    /// accepted ones are stored. `items` holds each event with its path in the body.
    pub fn ingest(&mut self, items: &[(Value, String)], now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        let mut changes = Changes::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut accepted = false;
        for (value, path) in items {
            let mut result = self.engine.as_mut().map(|e| e.ingest(value, now));
            if matches!(&result, Some(Ok(o)) if !o.allowed && lease_reason(o.reason)) {
                self.round(now, &mut changes);
                result = self.engine.as_mut().map(|e| e.ingest(value, now));
            }
            match result {
                Some(Ok(outcome)) => {
                    if outcome.allowed && !outcome.duplicate {
                        accepted = true;
                        let event = Event::decode(value, now).map_err(|e| ApiError::one(e.under(path)))?;
                        let seq = self.next_seq();
                        changes.events.push(EventRow {
                            seq,
                            source: event.source,
                            id: event.id,
                            customer_id: event.subject,
                            json: text(value),
                            received_at: now.0,
                        });
                    }
                    outcomes.push(serde_json::to_value(&outcome).unwrap_or(Value::Null));
                }
                Some(Err(e)) => outcomes.push(json!({ "error": error_json(&e.under(path)) })),
                None => return Err(no_catalog()),
            }
        }
        // Report the hub's use to the escrow in the same transaction as the events it covers.
        if accepted || self.engine.as_ref().is_some_and(|e| e.needs_sync(now)) {
            self.round(now, &mut changes);
        }
        Ok((Reply::json(200, &json!({ "outcomes": outcomes }))?, changes))
    }

    /// `PUT /v1/catalog`: a new catalog version, validated; the engine takes it with the current
    /// customers (a catalog that would invalidate a customer is refused: 409).
    pub fn put_catalog(&mut self, mut catalog: Value, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        let next = self.catalog_version + 1;
        let Value::Object(map) = &mut catalog else {
            return Err(ApiError::new(Code::InvalidType, "", "a catalog is a JSON object"));
        };
        // The same catalog again changes nothing (PUT is idempotent).
        if let Some(Value::Object(current)) = &self.catalog {
            let mut a = current.clone();
            let mut b = map.clone();
            a.remove("catalogVersion");
            b.remove("catalogVersion");
            if a == b {
                let body = json!({ "catalogVersion": self.catalog_version, "snapshotVersion": self.snapshot_version });
                return Ok((Reply::json(200, &body)?, Changes::default()));
            }
        }
        map.insert("catalogVersion".into(), json!(next));
        Catalog::from_value(&catalog).map_err(ApiError::list)?;
        let version = self.snapshot_version + 1;
        let previous_issue = self.issued_at;
        self.issued_at = now;
        if let Err(errors) = self.install_catalog(&catalog, version) {
            self.issued_at = previous_issue;
            let ids: Vec<&String> = self.customers.keys().collect();
            let details: Vec<Value> = errors
                .iter()
                .map(|e| {
                    let mut v = error_json(e);
                    // /customers/<i>/… names the customer by position; say which.
                    let index =
                        e.path.strip_prefix("/customers/").and_then(|r| r.split('/').next()?.parse::<usize>().ok());
                    if let Some(id) = index.and_then(|i| ids.get(i)) {
                        v["customerId"] = json!(id);
                    }
                    v
                })
                .collect();
            let mut body = ApiError::new(
                Code::Conflict,
                "",
                format!("the catalog is valid but would invalidate stored customers: {}", first_problem(&errors)),
            )
            .body;
            body["errors"] = Value::Array(details);
            return Err(ApiError { status: 409, body });
        }
        self.snapshot_version = version;
        self.catalog_version = next;
        let seq = self.next_seq();
        let json = text(&catalog);
        self.catalog = Some(catalog);
        let mut changes = Changes::default();
        changes.catalogs.push(CatalogRow {
            version: i64::try_from(next).unwrap_or(i64::MAX),
            json,
            created_at: now.0,
            seq,
            snapshot_version: i64::try_from(version).unwrap_or(i64::MAX),
        });
        let body = json!({ "catalogVersion": next, "snapshotVersion": version });
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `PUT /v1/customers/{id}`: defines or redefines a customer (usage so far is kept).
    pub fn put_customer(&mut self, id: &str, customer: Value, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        if !customer.is_object() {
            return Err(ApiError::new(Code::InvalidType, "", "a customer is a JSON object"));
        }
        if let Some(Value::String(body_id)) = customer.get("id") {
            if body_id != id {
                return Err(ApiError::new(
                    Code::InvalidValue,
                    "/id",
                    format!("the body's id {body_id:?} differs from the URL's {id:?}"),
                ));
            }
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let created = !self.customers.contains_key(id);
        if self.customers.get(id) == Some(&customer) {
            let body = json!({ "id": id, "created": false, "snapshotVersion": self.snapshot_version });
            return Ok((Reply::json(200, &body)?, Changes::default()));
        }
        engine.upsert_customer(&customer).map_err(ApiError::list)?;
        let mut changes = Changes::default();
        self.commit_customer(id, customer, CustomerChange::Put, now, &mut changes);
        let body = json!({ "id": id, "created": created, "snapshotVersion": self.snapshot_version });
        Ok((Reply::json(if created { 201 } else { 200 }, &body)?, changes))
    }

    /// `POST /v1/customers/{id}/grants`: appends a grant to the customer's definition.
    pub fn add_grant(&mut self, id: &str, grant: Value, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        let Some(current) = self.customers.get(id) else { return Err(no_customer(id)) };
        if !grant.is_object() {
            return Err(ApiError::new(Code::InvalidType, "", "a grant is a JSON object"));
        }
        let grants = current.get("grants").and_then(Value::as_array);
        if let Some(grant_id) = grant.get("id").and_then(Value::as_str) {
            if grants.into_iter().flatten().any(|g| g.get("id").and_then(Value::as_str) == Some(grant_id)) {
                return Err(ApiError::new(
                    Code::Conflict,
                    "/id",
                    format!("customer {id:?} already has a grant {grant_id:?}"),
                ));
            }
        }
        let index = grants.map_or(0, Vec::len);
        let mut customer = current.clone();
        match customer.get_mut("grants") {
            Some(Value::Array(list)) => list.push(grant.clone()),
            _ => customer["grants"] = json!([grant.clone()]),
        }
        let prefix = format!("/grants/{index}");
        let engine = self.engine.as_mut().ok_or_else(no_catalog)?;
        engine.upsert_customer(&customer).map_err(|errors| {
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    if let Some(rest) = e.path.strip_prefix(&prefix) {
                        if rest.is_empty() || rest.starts_with('/') {
                            e.path = rest.to_string();
                        }
                    }
                    e
                })
                .collect();
            ApiError::list(errors)
        })?;
        let mut changes = Changes::default();
        self.commit_customer(id, customer, CustomerChange::Grant, now, &mut changes);
        let body = json!({ "customerId": id, "grant": grant, "snapshotVersion": self.snapshot_version });
        Ok((Reply::json(201, &body)?, changes))
    }

    /// `POST /v1/customers/{id}/wallet`: adds `amount` to the wallet's running balance, once per
    /// idempotency key.
    pub fn top_up(&mut self, id: &str, body: &Value, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        let mut problems = Vec::new();
        let (amount, key, currency) = match Fields::open(body, "", &mut problems) {
            Some(mut f) => {
                let amount = f.decimal("amount");
                let key = f.str("idempotencyKey");
                let currency = f.opt_str("currency");
                f.finish();
                (amount, key, currency)
            }
            None => (None, None, None),
        };
        if !problems.is_empty() {
            return Err(ApiError::list(problems));
        }
        let (Some(amount), Some(key)) = (amount, key) else {
            return Err(ApiError::new(Code::MissingField, "", "amount and idempotencyKey are required"));
        };
        if amount <= Decimal::ZERO {
            return Err(ApiError::new(Code::InvalidValue, "/amount", "a top-up amount must be positive"));
        }
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(ApiError::new(
                Code::InvalidValue,
                "/idempotencyKey",
                format!("an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} bytes"),
            ));
        }
        if let Some(done) = self.topups.get(&key) {
            if done.customer_id == id && parse_decimal(&done.amount) == Some(amount) {
                let body = topup_body(done, true);
                return Ok((Reply::json(200, &body)?, Changes::default()));
            }
            return Err(ApiError::new(
                Code::Conflict,
                "/idempotencyKey",
                "this idempotency key was used for another top-up",
            ));
        }
        let Some(engine) = self.engine.as_ref() else { return Err(no_catalog()) };
        let Some(current) = self.customers.get(id) else { return Err(no_customer(id)) };
        let wallet_currency = current.get("wallet").and_then(|w| w.get("currency")).and_then(Value::as_str);
        let code = match (wallet_currency, currency.as_deref()) {
            (Some(w), Some(given)) if w != given => {
                return Err(ApiError::new(
                    Code::InvalidValue,
                    "/currency",
                    format!("the wallet is in {w}, not {given}"),
                ))
            }
            (Some(w), _) => w.to_string(),
            (None, Some(given)) => given.to_string(),
            (None, None) => {
                return Err(ApiError::new(
                    Code::MissingField,
                    "/currency",
                    "the customer has no wallet yet: give the currency to open one",
                ))
            }
        };
        if Currency::from_code(&code).is_none() {
            return Err(ApiError::new(Code::UnknownCurrency, "/currency", format!("{code:?} is not an ISO-4217 code")));
        }
        let running = engine.wallet_balance(id).unwrap_or(Decimal::ZERO);
        let balance = add(running, amount)
            .map_err(|_| ApiError::new(Code::Overflow, "/amount", "the balance would be too large"))?;
        let mut customer = current.clone();
        // Only the figure changes: the credit limit and offline mode stay as defined.
        let mut wallet = current.get("wallet").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        wallet["currency"] = json!(code);
        wallet["balance"] = json!(plain(balance));
        customer["wallet"] = wallet;
        // Check the new definition before the engine sees it (it goes in two steps).
        let mut problems = Vec::new();
        let valid = Customer::decode(&customer, "", engine.catalog(), &mut problems).is_some();
        if !valid || !problems.is_empty() {
            return Err(ApiError::list(problems));
        }
        self.define_customer(&customer, CustomerChange::TopUp).map_err(ApiError::list)?;
        let mut changes = Changes::default();
        let row = self.commit_customer(id, customer, CustomerChange::TopUp, now, &mut changes);
        let topup = TopUpRow {
            idempotency_key: key.clone(),
            customer_id: id.into(),
            amount: plain(amount),
            currency: code,
            balance: plain(balance),
            created_at: now.0,
            seq: row.seq,
        };
        let body = topup_body(&topup, false);
        changes.topups.push(topup.clone());
        self.topups.insert(key, topup);
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `GET /v1/customers/{id}/entitlements`: a decision for every feature the customer has.
    ///
    /// A hard-limit metered feature is judged on the hub's ledger (balance > 0), not on the
    /// hub's own lease: a read must not take a lease.
    pub fn entitlements(&mut self, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
        let Some(engine) = self.engine.as_mut() else { return Err(no_customer(id)) };
        let Some(state) = engine.customer(id) else { return Err(no_customer(id)) };
        let mut decisions: Vec<Option<Decision>> = Vec::with_capacity(state.access.len());
        let mut keys = Vec::with_capacity(state.access.len());
        for access in &state.access {
            keys.push(access.key.clone());
            let hard = access.meter.as_ref().filter(|m| !m.soft);
            let decision = match hard {
                Some(meter) if access.entitled(now) => {
                    let mut meter = meter.clone();
                    let figures = meter.advance(now).and_then(|()| meter.balance(now)).map_err(ApiError::one)?;
                    let allowed = figures.balance > Decimal::ZERO;
                    let reason = if allowed { Reason::Ok } else { Reason::LimitReached };
                    let verdict = Verdict { allowed, reason, figures: Some(figures), exact: true, needs_sync: false };
                    Some(verdict.decision(access, now))
                }
                _ => None,
            };
            decisions.push(decision);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (key, decision) in keys.iter().zip(decisions) {
            out.push(match decision {
                Some(d) => d,
                None => engine.check(id, key, now).map_err(ApiError::one)?,
            });
        }
        Reply::json(200, &json!({ "customerId": id, "entitlements": out }))
    }

    /// `GET /v1/customers/{id}/wallet`: the wallet as the hub's ledger has it: balance = funded
    /// − debited (every real-time charge recorded so far, from edges and the hub alike).
    pub fn wallet(&self, id: &str) -> Result<Reply, ApiError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        let Some(state) = engine.customer(id) else { return Err(no_customer(id)) };
        let Some(w) = &state.wallet else {
            return Err(ApiError::new(Code::UnknownReference, "/customerId", "the customer has no wallet"));
        };
        let funded = add(w.balance, w.debited).map_err(|_| ApiError::one(overflow("")))?;
        Reply::json(
            200,
            &json!({ "customerId": id, "currency": w.currency.code(), "balance": plain(w.balance),
                "creditLimit": plain(w.credit_limit), "funded": plain(funded), "debited": plain(w.debited) }),
        )
    }

    /// `GET /v1/customers/{id}/invoice`: the running bill at `at`.
    pub fn invoice_preview(&self, id: &str, at: Timestamp) -> Result<Reply, ApiError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        if engine.customer(id).is_none() {
            return Err(no_customer(id));
        }
        let invoice = engine.invoice_preview(id, at).map_err(ApiError::one)?;
        Reply::json(200, &invoice)
    }

    /// `POST /v1/invoices/close`: the final invoice of the billing period that contains `at`,
    /// once the period has ended; the same document every time.
    pub fn close_invoice(&mut self, body: &Value, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        let mut problems = Vec::new();
        let (customer, at) = match Fields::open(body, "", &mut problems) {
            Some(mut f) => {
                let customer = f.str("customerId");
                let at = f.timestamp("at");
                f.finish();
                (customer, at)
            }
            None => (None, None),
        };
        if !problems.is_empty() {
            return Err(ApiError::list(problems));
        }
        let (Some(customer), Some(at)) = (customer, at) else {
            return Err(ApiError::new(Code::MissingField, "", "customerId and at are required"));
        };
        let Some(engine) = self.engine.as_mut() else { return Err(no_customer(&customer)) };
        if engine.customer(&customer).is_none() {
            return Err(no_customer(&customer));
        }
        let draft = engine.invoice_preview(&customer, at).map_err(ApiError::one)?;
        let start = Timestamp::parse(&draft.period_start).map_or(0, |t| t.0);
        let key = (customer.clone(), draft.subscription_id.clone(), start);
        if let Some(done) = self.invoices.get(&key) {
            return Ok((Reply { status: 200, body: done.clone(), etag: None }, Changes::default()));
        }
        // A period still open is closed as it stands (docs/decisions.md 46), like a draft
        // finalised early; usage arriving later stays out of the stored invoice.
        let invoice = engine.close_invoice(&customer, at).map_err(ApiError::one)?;
        let reply = Reply::json(200, &invoice)?;
        self.invoices.insert(key.clone(), reply.body.clone());
        let mut changes = Changes::default();
        changes.invoices.push(InvoiceRow {
            customer_id: key.0,
            subscription_id: key.1,
            period_start: key.2,
            json: String::from_utf8_lossy(&reply.body).into_owned(),
            closed_at: now.0,
        });
        Ok((reply, changes))
    }
}

fn topup_body(t: &TopUpRow, duplicate: bool) -> Value {
    json!({
        "customerId": t.customer_id,
        "idempotencyKey": t.idempotency_key,
        "amount": t.amount,
        "currency": t.currency,
        "balance": t.balance,
        "duplicate": duplicate,
    })
}
