//! The hub's state in memory and every operation of its API, as plain functions of
//! `(state, input, now)` that return the reply and the [`Changes`] to make durable before it is
//! sent. Nothing here does I/O: the HTTP layer parses, locks, queues the changes and replies.
//!
//! The state is the hub's own [`Engine`] (the same core the edges run; it meters and bills every
//! event), the [`Escrow`] that shares hard limits out as leases, and the JSON documents the
//! snapshot is built from. The engine is rebuilt at start by replaying the history — catalog
//! versions, customer versions and events — in the order it happened, so it ends exactly as it
//! was when the last acknowledged change was made.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::store::{
    CatalogRow, Changes, CustomerChange, CustomerRow, DeadLetterRow, EventRow, InvoiceRow, LeaseId, LeaseRow, Loaded,
    Record, Store, StoreError, TopUpRow,
};
use tollgate::billing::InvoiceKind;
use tollgate::catalog::Catalog;
use tollgate::customer::{migrate, Customer, PriceChanges};
use tollgate::engine::{Engine, Options, Verdict};
use tollgate::entitlements::{Decision, Reason};
use tollgate::error::{Code, Error};
use tollgate::json::{parse, Fields};
use tollgate::metering::Event;
use tollgate::money::{add, parse_decimal, plain, Currency};
use tollgate::sync::escrow::{Holder, Lease, Reporter};
use tollgate::sync::signed::KeyPair;
use tollgate::sync::{Escrow, LeaseGrant, LeaseKey, LeaseReport, Mode, Policy, SyncRequest, SyncResponse, Terms};
use tollgate::time::Timestamp;
use tollgate::Decimal;

/// The edge id under which the hub's own engine holds leases (server-side ingestion draws on
/// the same escrow as the edges). Edges may not use it.
pub const HUB_EDGE: &str = "hub";

/// The `meta` entry listing the revoked edges (a JSON array of edge ids).
const REVOKED_META: &str = "revoked_edges";

/// How long a lease that expired without a final report is kept apart before it is settled as
/// fully used (its edge is gone): a day.
const UNREPORTED_GRACE_MS: i64 = 86_400_000;

/// Ids the hub's engine remembers (an older resend is looked up in the ledger).
const HUB_DEDUPE_ENTRIES: usize = 1_000_000;

/// How often the leases are collected (ms).
const COLLECT_EVERY_MS: i64 = 60_000;

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
        Code::Conflict | Code::PeriodOpen => 409,
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
        let total = errors.len();
        ApiError::counted(errors, total)
    }

    /// [`ApiError::list`] of the first problems of `total` (the rest are counted).
    pub fn counted(errors: Vec<Error>, total: usize) -> ApiError {
        let status = errors.first().map_or(400, |e| status_of(e.code));
        let mut body = json!({ "errors": listed(&errors) });
        let shown = errors.len().min(MAX_LISTED);
        if total > shown {
            body["errorsOmitted"] = json!(total - shown);
        }
        ApiError { status, body }
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
    /// Start of the signing window it was made in (see [`HubState::signed`]).
    pub window: Timestamp,
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
    /// How far (ms) an edge's event may be dated after the hub's clock (`--max-future-ms`).
    pub max_future_ms: i64,
    /// How long a signed snapshot stays valid (`--snapshot-ttl-ms`).
    pub snapshot_ttl_ms: i64,
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
    /// Edge events recorded in batches not yet durable, by (source, id), with their batch's
    /// ticket: with these and the store's unique key, the hub's dedupe has no window.
    late: HashMap<(String, String), u64>,
    seq: i64,
    max_future_ms: i64,
    snapshot_ttl_ms: i64,
    /// Edges whose leases an admin revoked: none is granted until the revocation is lifted.
    revoked: BTreeSet<String>,
    /// When leases were last collected.
    collected_at: Timestamp,
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

fn lease_id(key: &LeaseKey, h: &Holder) -> LeaseId {
    LeaseId {
        customer_id: key.customer_id.clone(),
        key: key.key.clone(),
        period: key.period.0,
        edge_id: h.edge_id.clone(),
        boot_id: h.boot_id.clone(),
        epoch: i64::from(h.epoch),
    }
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

/// Most problems a reply lists (the rest are counted).
pub const MAX_LISTED: usize = 100;

/// The first [`MAX_LISTED`] problems as JSON.
pub fn listed(problems: &[Error]) -> Value {
    Value::Array(problems.iter().take(MAX_LISTED).map(error_json).collect())
}

/// A dead letter as `GET /v1/dead-letters` lists it.
pub fn dead_letter_json(r: &DeadLetterRow) -> Value {
    json!({
        "seq": r.seq,
        "source": r.source,
        "id": r.id,
        "customerId": r.customer_id,
        "edgeId": r.edge_id,
        "error": { "code": r.code, "path": r.path, "message": r.message },
        "receivedAt": Timestamp(r.received_at).to_rfc3339(),
        "event": parse(&r.json).unwrap_or(Value::Null),
    })
}

/// The dead letter of an event the hub could not apply.
fn dead_letter(value: &Value, event: Option<&Event>, edge_id: &str, e: &Error, now: Timestamp) -> DeadLetterRow {
    // An event that did not decode is still kept under whatever source and id it carried.
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    DeadLetterRow {
        seq: 0,
        source: event.map_or_else(|| field("source"), |e| e.source.clone()),
        id: event.map_or_else(|| field("id"), |e| e.id.clone()),
        customer_id: event.map_or_else(|| field("subject"), |e| e.subject.clone()),
        edge_id: edge_id.to_string(),
        code: e.code.as_str().to_string(),
        path: e.path.clone(),
        message: e.message.clone(),
        json: text(value),
        received_at: now.0,
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
            late: HashMap::new(),
            seq: 0,
            max_future_ms: setup.max_future_ms,
            snapshot_ttl_ms: setup.snapshot_ttl_ms,
            revoked: BTreeSet::new(),
            collected_at: now,
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

        if let Some(stored) = loaded.meta.get(REVOKED_META) {
            state.revoked = serde_json::from_str(stored).map_err(|e| format!("stored revoked edges: {e}"))?;
        }

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
        // Closed invoices, in the order they closed: the engine takes back what each billed,
        // so late usage is billed as the difference after a restart too.
        let mut invoices = loaded.invoices;
        invoices.sort_by_key(|row| row.closed_at);
        for row in invoices {
            if let (Some(engine), Ok(doc)) = (state.engine.as_mut(), serde_json::from_str::<Value>(&row.json)) {
                engine.restore_closed(&row.customer_id, &doc);
            }
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
                // The pins this change wrote follow as customer records; applied here too, so
                // the catalog loads with the customers it was accepted with.
                let pinned = self.pins_for(&catalog, Timestamp(row.created_at));
                self.install_pinned(&catalog, sv, &pinned).map_err(|errors| {
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
        let seed = tollgate::sync::signed::open_value(seed, None).map_err(|e| format!("--seed: {e}"))?;
        tollgate::engine::Snapshot::from_value(&seed)
            .map_err(|errors| format!("--seed: {}", first_problem(&errors)))?;
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

    /// Forgets the old events recorded in batches that are durable by now (ticket ≤ `durable`):
    /// the store answers for them, so the set holds only what is in flight.
    pub fn forget_durable(&mut self, durable: u64) {
        if !self.late.is_empty() {
            self.late.retain(|_, ticket| *ticket > durable);
        }
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
                // The hub remembers more ids than an edge (it hears every edge) and applies its
                // own bound on future times.
                let options = Options {
                    dedupe_max_entries: HUB_DEDUPE_ENTRIES,
                    max_future_ms: self.max_future_ms,
                    // The ledger answers for every (source, id) first, whatever its age.
                    external_dedupe: true,
                    ..Options::default()
                };
                let mut engine = Engine::from_snapshot(&snapshot, options)?;
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
        self.record_customer(id, customer, kind, now, changes)
    }

    /// Stores a customer definition under the current snapshot version (the pins of a catalog
    /// change share its version: one change, one snapshot).
    fn record_customer(
        &mut self,
        id: &str,
        customer: Value,
        kind: CustomerChange,
        now: Timestamp,
        changes: &mut Changes,
    ) -> CustomerRow {
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

    /// The current snapshot, signed, valid until `expiresAt`. It is signed again (same version,
    /// same `issuedAt`) every half lifetime, so what the hub serves at `now` stays valid for at
    /// least half of `--snapshot-ttl-ms`; the same `(history, now)` always gives the same bytes.
    pub fn signed(&mut self, now: Timestamp) -> Option<Signed> {
        let catalog = self.catalog.as_ref()?;
        let half = (self.snapshot_ttl_ms / 2).max(1);
        let since = now.0.saturating_sub(self.issued_at.0).max(0);
        let window = Timestamp(self.issued_at.0.saturating_add(since - since % half));
        if let Some(s) = &self.signed {
            if s.version == self.snapshot_version && s.window == window {
                return Some(s.clone());
            }
        }
        let mut snapshot = self.snapshot_value(self.snapshot_version, self.issued_at, catalog);
        let expires = Timestamp(window.0.saturating_add(self.snapshot_ttl_ms));
        snapshot["expiresAt"] = Value::String(expires.to_rfc3339());
        let payload = serde_json::to_vec(&snapshot).ok()?;
        let envelope = self.key.seal(&payload);
        let text = serde_json::to_vec(&envelope).ok()?;
        let signed = Signed { version: self.snapshot_version, window, text: Arc::new(text), value: Arc::new(envelope) };
        self.signed = Some(signed.clone());
        Some(signed)
    }

    /// A sync reply signed for the edge run it answers (what an edge with the hub's public key
    /// requires), as the envelope `{ keyId, payload, signature }`.
    pub fn seal_sync_reply(&self, reply: Reply, req: &SyncRequest) -> Result<Reply, ApiError> {
        let body = parse(&String::from_utf8_lossy(&reply.body)).map_err(ApiError::one)?;
        let envelope = tollgate::sync::signed::seal_sync_response(&self.key, body, &req.edge_id, &req.boot_id);
        Reply::json(reply.status, &envelope)
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
        events: &[Result<Event, Error>],
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
        let revoked = self.revoked.contains(&req.edge_id);
        let mut finished = Vec::new();
        for (i, report) in req.leases.iter().enumerate() {
            let holder = Holder { edge_id: req.edge_id.clone(), boot_id: req.boot_id.clone(), epoch: report.epoch };
            let existing = self.escrow.accounts.get(&report.key).and_then(|a| a.leases.get(&holder)).cloned();
            let stale = existing.is_none()
                && (report.is_final || self.escrow.superseded(&report.key, &req.edge_id, &req.boot_id, report.epoch));
            if stale {
                // A report of a lease already settled, or of an epoch this edge run has moved on
                // from (a resend, a late duplicate): it is over, nothing changes.
                grants.push(closed(report, None));
                continue;
            }
            let answered = match judge_report(engine, report, existing.as_ref(), now) {
                Ok(_) if revoked => {
                    Err(Error::new(Code::Forbidden, "", "this edge's leases are revoked: nothing is granted to it"))
                }
                Ok(terms) => {
                    self.escrow.report(req.reporter(), report, terms, &self.policy, now).map_err(|_| overflow(""))
                }
                Err(e) => Err(e),
            };
            match answered {
                Ok((grant, lease)) => {
                    changes.leases.push(lease_row(&report.key, &req.edge_id, &req.boot_id, report.epoch, &lease));
                    grants.push(grant);
                    if lease.closed {
                        finished.push(report.key.clone());
                    }
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
        for key in &finished {
            self.settle(key, now, &mut changes);
        }
        // Then the events, each on its own: recorded once, whatever the limits say (the edge
        // allowed it) and whatever its age (the ledger is the billing truth); one the hub cannot
        // apply is kept as a dead letter with its reason and listed in `problems`. Every event
        // of the request is acknowledged either way: nothing is lost, nothing is sent forever.
        for (i, (value, event)) in req.events.iter().zip(events).enumerate() {
            let path = format!("/events/{i}");
            if let Some(problem) = self.admit(Sent { value, event }, &req.edge_id, now, in_ledger, &mut changes)? {
                problems.push(problem.under(&path));
            }
        }
        let snapshot = if req.catalog_version < self.snapshot_version {
            self.signed(now).map(|s| (*s.value).clone())
        } else {
            None
        };
        let response = SyncResponse { ack_seq: req.seq, leases: grants, snapshot };
        let mut body = serde_json::to_value(&response).map_err(|_| ApiError::new(Code::Overflow, "", "unencodable"))?;
        if !problems.is_empty() {
            body["problems"] = listed(&problems);
            if problems.len() > MAX_LISTED {
                body["problemsOmitted"] = json!(problems.len() - MAX_LISTED);
            }
        }
        Ok((Reply::json(200, &body)?, changes))
    }

    /// Takes one event of an edge into the ledger: `Ok(None)` when recorded or already there,
    /// `Ok(Some(problem))` when the hub cannot apply it (it becomes a dead letter), `Err` only
    /// when the ledger cannot be read.
    fn admit(
        &mut self,
        sent: Sent<'_>,
        edge_id: &str,
        now: Timestamp,
        in_ledger: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
        changes: &mut Changes,
    ) -> Result<Option<Error>, ApiError> {
        let Sent { value, event } = sent;
        let refused = match self.record_event(value, event, now, in_ledger, changes)? {
            None => return Ok(None),
            Some(e) => e,
        };
        changes.dead_letters.push(dead_letter(value, event.as_ref().ok(), edge_id, &refused, now));
        Ok(Some(refused))
    }

    /// Records an event in the engine and queues its ledger row, once per (source, id): the
    /// engine's memory answers for recent events, the store (and what this run recorded) for
    /// older ones. `Some(reason)` when it cannot be applied.
    fn record_event(
        &mut self,
        value: &Value,
        event: &Result<Event, Error>,
        now: Timestamp,
        in_ledger: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
        changes: &mut Changes,
    ) -> Result<Option<Error>, ApiError> {
        let event = match event {
            Ok(e) => e,
            Err(e) => return Ok(Some(e.clone())),
        };
        if event.time.0 > now.0.saturating_add(self.max_future_ms) {
            let message = format!("the event is dated more than {} ms after the hub's clock", self.max_future_ms);
            return Ok(Some(Error::new(Code::InvalidTimestamp, "/time", message)));
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let key = (event.source.clone(), event.id.clone());
        // Whatever its time (a resend may carry another one): the batches in flight and the
        // ledger answer first, the engine's memory (in `record`) for the rest.
        if self.late.contains_key(&key) || in_ledger(&event.source, &event.id).map_err(storage)? {
            return Ok(None);
        }
        if engine.customer(&event.subject).is_none() {
            let message = format!("no customer with id {:?}: replay it once the customer exists", event.subject);
            return Ok(Some(Error::new(Code::UnknownReference, "/subject", message)));
        }
        match engine.record(value, now) {
            Ok(o) if o.duplicate => return Ok(None),
            Ok(_) => {}
            Err(e) => return Ok(Some(e)),
        }
        // Until the batch that writes it is durable (its ticket is the next one).
        self.late.insert(key, self.ticket + 1);
        let seq = self.next_seq();
        changes.events.push(EventRow {
            seq,
            source: event.source.clone(),
            id: event.id.clone(),
            customer_id: event.subject.clone(),
            json: text(value),
            received_at: now.0,
        });
        Ok(None)
    }

    /// `POST /v1/dead-letters/replay`: each dead letter is tried again as if its edge sent it
    /// now (the customer may exist by now); the ones recorded leave the table, the others stay
    /// with their reason.
    pub fn replay_dead_letters(
        &mut self,
        letters: &[DeadLetterRow],
        now: Timestamp,
        in_ledger: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<(Reply, Changes), ApiError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        let mut changes = Changes::default();
        let mut still = Vec::new();
        for letter in letters {
            let value = parse(&letter.json).unwrap_or(Value::Null);
            let event = Event::decode(&value, now);
            match self.record_event(&value, &event, now, in_ledger, &mut changes)? {
                None => changes.dead_letters_removed.push(letter.seq),
                Some(e) => still.push(json!({ "seq": letter.seq, "error": error_json(&e) })),
            }
        }
        let replayed = changes.dead_letters_removed.len();
        let body = json!({ "replayed": replayed, "stillDead": still.len(), "problems": &still[..still.len().min(MAX_LISTED)] });
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
            let hub = Reporter { edge_id: HUB_EDGE, boot_id: &self.boot_id };
            match self.escrow.report(hub, report, terms, &self.policy, now) {
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
        if now.0.saturating_sub(self.collected_at.0) >= COLLECT_EVERY_MS {
            self.collect(now, &mut changes);
        }
        changes
    }

    /// Folds the leases of `key` that are over into its settled lease (see
    /// [`Escrow::settle`]), so lease rows stay bounded however many epochs an edge goes through.
    fn settle(&mut self, key: &LeaseKey, now: Timestamp, changes: &mut Changes) {
        let before = Timestamp(now.0.saturating_sub(UNREPORTED_GRACE_MS));
        match self.escrow.settle(key, before, now) {
            Ok(Some((folded, lease))) => {
                for h in folded {
                    changes.leases.retain(|r| {
                        !(r.customer_id == key.customer_id
                            && r.key == key.key
                            && r.period == key.period.0
                            && r.edge_id == h.edge_id
                            && r.boot_id == h.boot_id
                            && r.epoch == i64::from(h.epoch))
                    });
                    changes.leases_removed.push(lease_id(key, &h));
                }
                let settled = Holder::settled();
                changes.leases.push(lease_row(key, &settled.edge_id, &settled.boot_id, settled.epoch, &lease));
            }
            Ok(None) => {}
            Err(_) => eprintln!("tollgate hub: the settled usage of {key:?} overflowed; its leases are kept apart"),
        }
    }

    /// Collects leases: the accounts of keys that are no longer leased (a period that ended, a
    /// feature or wallet gone) once none of their leases can still be used, and in the others
    /// the leases that are over.
    fn collect(&mut self, now: Timestamp, changes: &mut Changes) {
        self.collected_at = now;
        let keys: Vec<LeaseKey> = self.escrow.accounts.keys().cloned().collect();
        for key in keys {
            let leased = self.engine.as_mut().is_some_and(|e| matches!(e.lease_terms(&key, now), Ok(Some(_))));
            let Some(account) = self.escrow.accounts.get(&key) else { continue };
            let live = account.leases.values().any(|l| !l.closed && l.expires_at >= now);
            if !leased && !live {
                for h in account.leases.keys() {
                    changes.leases_removed.push(lease_id(&key, h));
                }
                self.escrow.accounts.remove(&key);
            } else {
                self.settle(&key, now, changes);
            }
        }
    }

    /// `POST /v1/edges/{id}/revoke`: the edge gets no lease until the revocation is lifted, and
    /// every lease it holds is settled now as fully used (what it may have used of them is
    /// unknown). Its events are still recorded: they are usage that happened.
    pub fn revoke_edge(&mut self, edge_id: &str, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        if edge_id == HUB_EDGE || !super::config::valid_edge_id(edge_id) {
            return Err(ApiError::new(Code::InvalidValue, "", "not an edge id"));
        }
        let mut changes = Changes::default();
        if self.revoked.insert(edge_id.to_string()) {
            changes.meta.push((REVOKED_META.into(), text(&json!(self.revoked))));
        }
        let mut settled = 0usize;
        let keys: Vec<LeaseKey> = self.escrow.accounts.keys().cloned().collect();
        for key in keys {
            let Some(account) = self.escrow.accounts.get_mut(&key) else { continue };
            let mut any = false;
            for (h, l) in &mut account.leases {
                if h.edge_id == edge_id && !l.closed {
                    l.used = l.commitment();
                    l.closed = true;
                    changes.leases.push(lease_row(&key, &h.edge_id, &h.boot_id, h.epoch, l));
                    any = true;
                    settled += 1;
                }
            }
            if any {
                self.settle(&key, now, &mut changes);
            }
        }
        let body = json!({ "edgeId": edge_id, "revoked": true, "leasesSettled": settled });
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `DELETE /v1/edges/{id}/revoke`: the edge may be granted leases again.
    pub fn lift_revocation(&mut self, edge_id: &str) -> Result<(Reply, Changes), ApiError> {
        let mut changes = Changes::default();
        if self.revoked.remove(edge_id) {
            changes.meta.push((REVOKED_META.into(), text(&json!(self.revoked))));
        }
        Ok((Reply::json(200, &json!({ "edgeId": edge_id, "revoked": false }))?, changes))
    }

    /// `POST /v1/events`: server-side ingestion. Each event is ingested by the hub's engine —
    /// hard limits enforced against the shared budget through the hub's own leases — and the
    /// accepted ones are stored. `items` holds each event with its path in the body.
    pub fn ingest(
        &mut self,
        items: &[(Value, String)],
        now: Timestamp,
        in_ledger: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
    ) -> Result<(Reply, Changes), ApiError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        let mut changes = Changes::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut accepted = false;
        for (value, path) in items {
            // An event the ledger holds (or a batch in flight) is a duplicate, whatever its
            // time says; the engine's memory answers for the rest.
            if let (Some(source), Some(id)) =
                (value.get("source").and_then(Value::as_str), value.get("id").and_then(Value::as_str))
            {
                if self.late.contains_key(&(source.to_string(), id.to_string()))
                    || in_ledger(source, id).map_err(storage)?
                {
                    outcomes.push(json!({ "allowed": true, "duplicate": true, "reason": "ok", "decisions": [], "charges": [], "unmatched": false }));
                    continue;
                }
            }
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
                        self.late.insert((event.source.clone(), event.id.clone()), self.ticket + 1);
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
        // Running subscriptions keep the price versions they had (their pins are stored below).
        let pinned = self.pins_for(&catalog, now);
        if let Err(errors) = self.install_pinned(&catalog, version, &pinned) {
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
        let pinned_ids: Vec<String> = pinned.iter().map(|(id, _)| id.clone()).collect();
        for (id, customer) in pinned {
            self.record_customer(&id, customer, CustomerChange::Put, now, &mut changes);
        }
        let mut body = json!({ "catalogVersion": next, "snapshotVersion": self.snapshot_version });
        if !pinned_ids.is_empty() {
            body["pinned"] = json!(pinned_ids);
        }
        Ok((Reply::json(200, &body)?, changes))
    }

    /// The customers whose running subscriptions keep their price versions under `catalog`:
    /// each with `pinnedPrices` added (the rule is the core's, `customer::pins`).
    fn pins_for(&self, catalog: &Value, now: Timestamp) -> Vec<(String, Value)> {
        let Some(old) = &self.catalog else { return Vec::new() };
        let changes = PriceChanges::between(old, catalog);
        if changes.is_empty() {
            return Vec::new();
        }
        self.customers.iter().filter_map(|(id, c)| Some((id.clone(), changes.apply(c, now)?))).collect()
    }

    /// [`HubState::install_catalog`] with `pinned` customer definitions in place; on error the
    /// customers are as before.
    fn install_pinned(&mut self, catalog: &Value, version: u64, pinned: &[(String, Value)]) -> Result<(), Vec<Error>> {
        let saved: Vec<(String, Option<Value>)> =
            pinned.iter().map(|(id, c)| (id.clone(), self.customers.insert(id.clone(), c.clone()))).collect();
        let result = self.install_catalog(catalog, version);
        if result.is_err() {
            for (id, before) in saved {
                match before {
                    Some(v) => self.customers.insert(id, v),
                    None => self.customers.remove(&id),
                };
            }
        }
        result
    }

    /// `POST /v1/customers/{id}/subscriptions/{sub}/migrate`: the subscription drops its pinned
    /// price versions and is billed at the catalog's current prices from now on.
    pub fn migrate_subscription(&mut self, id: &str, sub: &str, now: Timestamp) -> Result<(Reply, Changes), ApiError> {
        let Some(current) = self.customers.get(id) else { return Err(no_customer(id)) };
        let updated = migrate(current, sub).map_err(ApiError::one)?;
        let mut changes = Changes::default();
        if updated != *current {
            let engine = self.engine.as_mut().ok_or_else(no_catalog)?;
            engine.upsert_customer(&updated).map_err(ApiError::list)?;
            self.commit_customer(id, updated, CustomerChange::Put, now, &mut changes);
        }
        let body = json!({ "id": id, "subscriptionId": sub, "snapshotVersion": self.snapshot_version });
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

    /// `GET /v1/customers/{id}/invoices`: every invoice up to `now` (advance and arrears, per
    /// period, oldest first; the latest [`MAX_LISTED`] periods), closed ones as stored.
    pub fn invoice_list(&self, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        if engine.customer(id).is_none() {
            return Err(no_customer(id));
        }
        let docs = engine.invoice_list(id, now, MAX_LISTED).map_err(ApiError::one)?;
        let mut listed = Vec::with_capacity(docs.len());
        for doc in docs {
            let start = Timestamp::parse(&doc.period_start).map_or(0, |t| t.0);
            let key = (id.to_string(), doc.subscription_id.clone(), start);
            let stored = match doc.kind {
                InvoiceKind::Arrears => self.invoices.get(&key).and_then(|b| serde_json::from_slice::<Value>(b).ok()),
                InvoiceKind::Advance => None,
            };
            listed.push(stored.unwrap_or_else(|| serde_json::to_value(&doc).unwrap_or(Value::Null)));
        }
        Reply::json(200, &json!({ "customerId": id, "invoices": listed }))
    }

    /// `POST /v1/invoices/close`: the final arrears invoice of the billing period that contains
    /// `at`, once the period has ended (409 `period_open` before, unless the subscription
    /// ended); the same document every time.
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
        let invoice = engine.close_invoice(&customer, at, now).map_err(ApiError::one)?;
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

/// An event as an edge sent it, and as decoded.
struct Sent<'a> {
    value: &'a Value,
    event: &'a Result<Event, Error>,
}
