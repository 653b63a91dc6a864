//! The HTTP API (axum): authorisation, body limits, JSON errors, and the static site.
//!
//! Every handler follows one pattern: check the token (before reading the body), read and parse
//! the body (limited, exact JSON), then run the state operation under the state lock, queue its
//! changes, release the lock, and reply once the changes are durable.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};

use super::config::{Role, Tokens};
use super::state::{self, ApiError, HubState, Reply};
use super::store::{Changes, Store, StoreError};
use super::writer::{Pending, Writer};
use tollgate::error::Code;
use tollgate::metering::Event;
use tollgate::sync::SyncRequest;
use tollgate::time::Timestamp;

/// Largest accepted request body.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Most events, and most lease reports, one sync request may carry (an edge sends pages).
pub const MAX_SYNC_ITEMS: usize = 10_000;

/// Everything the handlers share.
pub struct Hub {
    state: Mutex<HubState>,
    writer: Writer,
    tokens: Tokens,
    reader: Mutex<Box<dyn Store>>,
    www: PathBuf,
}

impl Hub {
    /// The hub over a loaded state, its writer, a second store connection for reads, the tokens
    /// and the static site's directory.
    pub fn new(state: HubState, writer: Writer, reader: Box<dyn Store>, tokens: Tokens, www: PathBuf) -> Hub {
        Hub { state: Mutex::new(state), writer, tokens, reader: Mutex::new(reader), www }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a state operation that changes something, and replies once its changes are durable.
    async fn write<F>(&self, op: F) -> Response
    where
        F: FnOnce(&mut HubState, Timestamp) -> Result<(Reply, Changes), ApiError>,
    {
        let (reply, pending) = {
            let mut state = self.lock();
            if self.writer.progress.failed() {
                return storage_failed();
            }
            match op(&mut state, state::now()) {
                Err(e) if e.status == 500 => {
                    // A storage failure part way: the state may hold changes never queued.
                    self.writer.progress.fail("the ledger could not be read during a write");
                    return error_response(&e);
                }
                Err(e) => return error_response(&e),
                Ok((reply, changes)) => (reply, self.queue(&mut state, changes)),
            }
        };
        match pending.await {
            Ok(Ok(())) => reply_response(&reply),
            _ => storage_failed(),
        }
    }

    /// Runs a state operation that only reads; waits, if writes are still queued, until they are
    /// durable (so no reply ever shows a change a crash could take back).
    async fn read<F>(&self, op: F) -> Response
    where
        F: FnOnce(&mut HubState, Timestamp) -> Result<Reply, ApiError>,
    {
        let (result, pending) = {
            let mut state = self.lock();
            let result = op(&mut state, state::now());
            let behind = state.ticket > self.writer.progress.durable() || self.writer.progress.failed();
            let pending = behind.then(|| self.queue(&mut state, Changes::default()));
            (result, pending)
        };
        if let Some(p) = pending {
            if !matches!(p.await, Ok(Ok(()))) {
                return storage_failed();
            }
        }
        match result {
            Ok(reply) => reply_response(&reply),
            Err(e) => error_response(&e),
        }
    }

    fn queue(&self, state: &mut HubState, changes: Changes) -> Pending {
        state.forget_durable(self.writer.progress.durable());
        state.ticket += 1;
        self.writer.queue(state.ticket, changes)
    }

    /// The periodic in-process sync of the hub's own leases.
    pub async fn tick(&self) {
        let pending = {
            let mut state = self.lock();
            if self.writer.progress.failed() {
                return;
            }
            let changes = state.tick(state::now());
            (!changes.is_empty()).then(|| self.queue(&mut state, changes))
        };
        if let Some(p) = pending {
            let _ = p.await;
        }
    }
}

/// Whether the durable ledger holds an event (source, id), asked through the reading connection.
fn ledger_lookup(hub: &Hub) -> impl FnMut(&str, &str) -> Result<bool, String> + '_ {
    move |source, id| {
        let mut store = hub.reader.lock().unwrap_or_else(PoisonError::into_inner);
        store.has_event(source, id).map_err(|e| e.to_string())
    }
}

/// The router of every route.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/sync", post(sync))
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/catalog", put(put_catalog))
        .route("/v1/customers/{id}", put(put_customer))
        .route("/v1/customers/{id}/grants", post(add_grant))
        .route("/v1/customers/{id}/wallet", post(top_up).get(wallet))
        .route("/v1/customers/{id}/entitlements", get(entitlements))
        .route("/v1/customers/{id}/invoice", get(invoice))
        .route("/v1/customers/{id}/invoices", get(invoices))
        .route("/v1/customers/{id}/subscriptions/{sub}/migrate", post(migrate_subscription))
        .route("/v1/events", post(ingest).get(list_events))
        .route("/v1/invoices/close", post(close_invoice))
        .route("/v1/edges/{id}/revoke", post(revoke_edge).delete(lift_revocation))
        .route("/v1/dead-letters", get(list_dead_letters))
        .route("/v1/dead-letters/replay", post(replay_dead_letters))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub)
}

// ---------------------------------------------------------------------------------------------
// replies

fn respond(status: u16, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(status: u16, body: &Value) -> Response {
    respond(status, serde_json::to_vec(body).unwrap_or_default(), "application/json")
}

fn reply_response(reply: &Reply) -> Response {
    let mut response = respond(reply.status, reply.body.to_vec(), "application/json");
    if let Some(tag) = reply.etag.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

fn error_response(e: &ApiError) -> Response {
    let mut response = json_response(e.status, &e.body);
    if e.status == 401 {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn error(code: Code, path: &str, message: impl Into<String>) -> Response {
    error_response(&ApiError::new(code, path, message))
}

fn storage_failed() -> Response {
    error(Code::Storage, "", "the hub's database failed: nothing of this request was acknowledged")
}

// ---------------------------------------------------------------------------------------------
// authorisation: a guard extractor runs before the body is read

/// Admin token required.
struct Admin;
/// Edge token required; the edge id the token is bound to, when it is.
struct EdgeOnly(Option<String>);
/// Admin or edge token.
struct Anyone;

fn authorise(hub: &Hub, headers: &HeaderMap, allowed: &[Role]) -> Result<(), Box<Response>> {
    let refusal = match hub.tokens.role(headers) {
        None => {
            ApiError::new(Code::Unauthorized, "", "a valid bearer token is required (Authorization: Bearer <token>)")
        }
        Some(role) if allowed.contains(&role) => return Ok(()),
        Some(Role::Edge) => {
            ApiError::new(Code::Forbidden, "", "this route needs the admin token; an edge token was given")
        }
        Some(Role::Admin) => {
            ApiError::new(Code::Forbidden, "", "this route needs an edge token; the admin token was given")
        }
    };
    Err(Box::new(error_response(&refusal)))
}

/// The guards run before the body is read: a token, then a declared length within the limit
/// (a body without a declared length is cut at the limit as it is read).
fn admit(hub: &Hub, parts: &Parts, allowed: &[Role]) -> Result<(), Box<Response>> {
    authorise(hub, &parts.headers, allowed)?;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Box::new(error(Code::PayloadTooLarge, "", format!("the request body is over {MAX_BODY} bytes"))));
    }
    Ok(())
}

impl FromRequestParts<Arc<Hub>> for Admin {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        admit(hub, parts, &[Role::Admin]).map(|()| Admin).map_err(|r| *r)
    }
}

impl FromRequestParts<Arc<Hub>> for EdgeOnly {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        admit(hub, parts, &[Role::Edge]).map_err(|r| *r)?;
        let bound = hub.tokens.caller(&parts.headers).and_then(|(_, id)| id.map(String::from));
        Ok(EdgeOnly(bound))
    }
}

impl FromRequestParts<Arc<Hub>> for Anyone {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        admit(hub, parts, &[Role::Admin, Role::Edge]).map(|()| Anyone).map_err(|r| *r)
    }
}

// ---------------------------------------------------------------------------------------------
// inputs

/// The body as exact JSON: 413 past the byte limit or the JSON value budget, `invalid_json` if
/// it does not parse.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(Code::PayloadTooLarge, "", format!("the request body is over {MAX_BODY} bytes"))
        } else {
            ApiError::new(Code::InvalidValue, "", format!("the request body could not be read: {}", r.body_text()))
        }
    })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::new(Code::InvalidJson, "", "the body is not UTF-8"))?;
    if super::budget::over_budget(&bytes, super::budget::MAX_JSON_NODES) {
        let message = format!("the request body holds more than {} JSON values", super::budget::MAX_JSON_NODES);
        return Err(ApiError::new(Code::PayloadTooLarge, "", message));
    }
    tollgate::json::parse(text).map_err(|e| ApiError::new(e.code, "", e.message))
}

/// The `{id}` of the route.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.is_empty() => Ok(id),
        Ok(_) => Err(ApiError::new(Code::InvalidValue, "", "the id in the URL is empty")),
        Err(r) => Err(ApiError::new(Code::InvalidValue, "", format!("the URL's id is unusable: {}", r.body_text()))),
    }
}

/// `%XX` escapes of a URL part decoded (`+` is left as it is: it is a time zone sign in the
/// timestamps the query strings carry).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = char::from(hex[0]).to_digit(16)?;
            let lo = char::from(hex[1]).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query string's parameters (the last of a repeated name wins).
fn query(uri: &Uri) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || ApiError::new(Code::InvalidValue, "", "the query string has a bad %-escape");
        out.insert(percent_decode(k).ok_or_else(bad)?, percent_decode(v).ok_or_else(bad)?);
    }
    Ok(out)
}

fn timestamp_param(
    params: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<Option<Timestamp>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(t) => Timestamp::parse(t).map(Some).ok_or_else(|| {
            ApiError::new(Code::InvalidTimestamp, &format!("/{name}"), format!("{t:?} is not an RFC 3339 timestamp"))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// handlers

async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    let version = hub.lock().snapshot_version();
    let ok = !hub.writer.progress.failed();
    json_response(if ok { 200 } else { 503 }, &json!({ "ok": ok, "snapshotVersion": version }))
}

async fn sync(
    State(hub): State<Arc<Hub>>,
    edge: EdgeOnly,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let value = match json_body(body) {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let request = match SyncRequest::from_value(&value) {
        Ok(r) => r,
        Err(errors) => return error_response(&ApiError::list(errors)),
    };
    // The identity is the token's: a body may not speak for another edge.
    if let Some(bound) = &edge.0 {
        if request.edge_id != *bound {
            let message = format!("this token belongs to edge {bound:?}, not {:?}", request.edge_id);
            return error_response(&ApiError::new(Code::Forbidden, "/edgeId", message));
        }
    }
    if !crate::config::valid_edge_id(&request.edge_id) || request.boot_id.is_empty() || request.boot_id.len() > 128 {
        let (path, message) = if crate::config::valid_edge_id(&request.edge_id) {
            ("/bootId", "bootId has 1 to 128 bytes")
        } else {
            ("/edgeId", "edgeId has 1 to 64 of A-Z a-z 0-9 . _ -")
        };
        return error_response(&ApiError::new(Code::InvalidValue, path, message));
    }
    if request.events.len() > MAX_SYNC_ITEMS || request.leases.len() > MAX_SYNC_ITEMS {
        let message = format!("a sync carries at most {MAX_SYNC_ITEMS} events and {MAX_SYNC_ITEMS} leases: send pages");
        return error_response(&ApiError::new(Code::PayloadTooLarge, "", message));
    }
    // Decoded here, outside the state's lock; one that does not decode is answered on its own.
    let now = state::now();
    let events: Vec<_> = request.events.iter().map(|e| Event::decode(e, now)).collect();
    let mut in_ledger = ledger_lookup(&hub);
    // An edge that checks the hub's signature asks for a signed answer.
    let signed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with(SIGNED_JSON)));
    let answer = hub
        .write(|state, now| {
            let (reply, changes) = state.sync(&request, &events, now, &mut in_ledger)?;
            let reply = if signed { state.seal_sync_reply(reply, &request)? } else { reply };
            Ok((reply, changes))
        })
        .await;
    if signed && answer.status() == StatusCode::OK {
        let mut answer = answer;
        answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SIGNED_JSON));
        return answer;
    }
    answer
}

/// The media type of a signed sync answer (the envelope `{ keyId, payload, signature }`).
const SIGNED_JSON: &str = "application/vnd.tollgate.signed+json";

async fn snapshot(State(hub): State<Arc<Hub>>, _: Anyone, headers: HeaderMap) -> Response {
    let wanted = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut not_modified = None;
    let response = hub
        .read(|state, now| {
            let signed =
                state.signed(now).ok_or_else(|| ApiError::new(Code::NotFound, "", "the hub has no catalog yet"))?;
            let tag = format!("\"{}.{}\"", signed.version, signed.window.0);
            let matches = wanted
                .as_deref()
                .is_some_and(|w| w.trim() == "*" || w.split(',').any(|t| t.trim().trim_start_matches("W/") == tag));
            if matches {
                not_modified = Some(tag.clone());
            }
            Ok(Reply { status: 200, body: signed.text.clone(), etag: Some(tag) })
        })
        .await;
    match not_modified {
        Some(tag) if response.status() == StatusCode::OK => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            if let Ok(v) = HeaderValue::from_str(&tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            r
        }
        _ => response,
    }
}

async fn put_catalog(State(hub): State<Arc<Hub>>, _: Admin, body: Result<Bytes, BytesRejection>) -> Response {
    match json_body(body) {
        Ok(v) => hub.write(|state, now| state.put_catalog(v, now)).await,
        Err(e) => error_response(&e),
    }
}

async fn put_customer(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (id, value) = match (path_id(id), json_body(body)) {
        (Ok(id), Ok(v)) => (id, v),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    hub.write(|state, now| state.put_customer(&id, value, now)).await
}

async fn add_grant(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (id, value) = match (path_id(id), json_body(body)) {
        (Ok(id), Ok(v)) => (id, v),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    hub.write(|state, now| state.add_grant(&id, value, now)).await
}

/// `POST /v1/customers/{id}/subscriptions/{sub}/migrate` (admin): the subscription leaves its
/// pinned price versions for the catalog's current prices.
async fn migrate_subscription(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (id, sub) = match ids {
        Ok(Path((id, sub))) if !id.is_empty() && !sub.is_empty() => (id, sub),
        Ok(_) => return error_response(&ApiError::new(Code::InvalidValue, "", "an id in the URL is empty")),
        Err(r) => {
            let message = format!("the URL's ids are unusable: {}", r.body_text());
            return error_response(&ApiError::new(Code::InvalidValue, "", message));
        }
    };
    hub.write(|state, now| state.migrate_subscription(&id, &sub, now)).await
}

async fn top_up(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (id, value) = match (path_id(id), json_body(body)) {
        (Ok(id), Ok(v)) => (id, v),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    hub.write(|state, now| state.top_up(&id, &value, now)).await
}

async fn wallet(State(hub): State<Arc<Hub>>, _: Admin, id: Result<Path<String>, PathRejection>) -> Response {
    match path_id(id) {
        Ok(id) => hub.read(|state, _| state.wallet(&id)).await,
        Err(e) => error_response(&e),
    }
}

async fn revoke_edge(State(hub): State<Arc<Hub>>, _: Admin, id: Result<Path<String>, PathRejection>) -> Response {
    match path_id(id) {
        Ok(id) => hub.write(|state, now| state.revoke_edge(&id, now)).await,
        Err(e) => error_response(&e),
    }
}

async fn lift_revocation(State(hub): State<Arc<Hub>>, _: Admin, id: Result<Path<String>, PathRejection>) -> Response {
    match path_id(id) {
        Ok(id) => hub.write(|state, _| state.lift_revocation(&id)).await,
        Err(e) => error_response(&e),
    }
}

async fn entitlements(State(hub): State<Arc<Hub>>, _: Anyone, id: Result<Path<String>, PathRejection>) -> Response {
    match path_id(id) {
        Ok(id) => hub.read(|state, now| state.entitlements(&id, now)).await,
        Err(e) => error_response(&e),
    }
}

/// `GET /v1/customers/{id}/invoices[?now=T]`: the customer's invoices up to now (admin).
async fn invoices(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    match id_and_now(id, &uri) {
        Ok((id, at)) => hub.read(|state, now| state.invoice_list(&id, at.unwrap_or(now))).await,
        Err(e) => error_response(&e),
    }
}

async fn invoice(
    State(hub): State<Arc<Hub>>,
    _: Anyone,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    match id_and_now(id, &uri) {
        Ok((id, at)) => hub.read(|state, now| state.invoice_preview(&id, at.unwrap_or(now))).await,
        Err(e) => error_response(&e),
    }
}

/// The customer id of the URL and its `?now=` (absent: the hub's clock).
fn id_and_now(id: Result<Path<String>, PathRejection>, uri: &Uri) -> Result<(String, Option<Timestamp>), ApiError> {
    let id = path_id(id)?;
    let at = query(uri).and_then(|q| timestamp_param(&q, "now"))?;
    Ok((id, at))
}

async fn ingest(State(hub): State<Arc<Hub>>, _: Admin, body: Result<Bytes, BytesRejection>) -> Response {
    let value = match json_body(body) {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let (list, prefix) = match &value {
        Value::Array(items) => (items, ""),
        Value::Object(map) => match map.get("events") {
            Some(Value::Array(items)) if map.len() == 1 => (items, "/events"),
            Some(Value::Array(_)) => {
                let extra = map.keys().find(|k| *k != "events").cloned().unwrap_or_default();
                return error(Code::UnknownField, &format!("/{extra}"), format!("unknown field {extra:?}"));
            }
            Some(_) => return error(Code::InvalidType, "/events", "events must be an array"),
            None => return error(Code::MissingField, "/events", "\"events\" is required"),
        },
        _ => return error(Code::InvalidType, "", "expected an array of events or { \"events\": [...] }"),
    };
    // Every event's shape is checked before anything is applied; the first problems are kept,
    // the rest counted (a body of bad events costs no more than the body).
    let now = state::now();
    let mut problems = Vec::new();
    let mut failed = 0usize;
    for (i, e) in list.iter().enumerate() {
        if let Err(err) = Event::decode(e, now) {
            failed += 1;
            if problems.len() < state::MAX_LISTED {
                problems.push(err.under(&format!("{prefix}/{i}")));
            }
        }
    }
    if failed > 0 {
        return error_response(&ApiError::counted(problems, failed));
    }
    let items: Vec<(Value, String)> =
        list.iter().enumerate().map(|(i, e)| (e.clone(), format!("{prefix}/{i}"))).collect();
    let mut in_ledger = ledger_lookup(&hub);
    hub.write(|state, now| state.ingest(&items, now, &mut in_ledger)).await
}

/// A page of a listing: `after` (a cursor, 0 by default) and `limit` (1,000 by default, at most
/// 10,000) from the query string.
fn page(params: &std::collections::BTreeMap<String, String>) -> Result<(i64, u32), ApiError> {
    let number = |name: &str, default: i64, max: i64| -> Result<i64, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(t) => t.parse::<i64>().ok().filter(|n| (0..=max).contains(n)).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidValue,
                    &format!("/{name}"),
                    format!("{name} must be a whole number from 0 to {max}"),
                )
            }),
        }
    };
    Ok((number("after", 0, i64::MAX)?, u32::try_from(number("limit", 1000, 10_000)?).unwrap_or(1000)))
}

/// Reads from the store on a blocking thread (not under the state's lock).
async fn read_store<T: Send + 'static>(
    hub: &Arc<Hub>,
    what: &'static str,
    op: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let reader = hub.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let mut store = reader.reader.lock().unwrap_or_else(PoisonError::into_inner);
        op(&mut **store)
    })
    .await;
    match rows {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(error(Code::Storage, "", format!("the {what} could not be read: {e}"))),
        Err(_) => Err(error(Code::Storage, "", format!("the {what} could not be read"))),
    }
}

async fn list_dead_letters(State(hub): State<Arc<Hub>>, _: Admin, uri: Uri) -> Response {
    let params = match query(&uri) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let (after, limit) = match page(&params) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let customer = params.get("customerId").cloned();
    let rows = match read_store(&hub, "dead letters", move |s| s.dead_letters(after, limit, customer.as_deref())).await
    {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.seq)).flatten();
    let letters: Vec<Value> = rows.iter().map(state::dead_letter_json).collect();
    json_response(200, &json!({ "deadLetters": letters, "next": next }))
}

async fn replay_dead_letters(State(hub): State<Arc<Hub>>, _: Admin, body: Result<Bytes, BytesRejection>) -> Response {
    let value = match body {
        Ok(b) if b.is_empty() => json!({}),
        other => match json_body(other) {
            Ok(v) => v,
            Err(e) => return error_response(&e),
        },
    };
    let customer = match value.get("customerId") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return error(Code::InvalidType, "/customerId", "customerId must be a string"),
    };
    if let Some(extra) = value.as_object().and_then(|m| m.keys().find(|k| *k != "customerId")) {
        return error(Code::UnknownField, &format!("/{extra}"), format!("unknown field {extra:?}"));
    }
    let rows = match read_store(&hub, "dead letters", move |s| s.dead_letters(0, 1000, customer.as_deref())).await {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    let mut in_ledger = ledger_lookup(&hub);
    hub.write(|state, now| state.replay_dead_letters(&rows, now, &mut in_ledger)).await
}

async fn list_events(State(hub): State<Arc<Hub>>, _: Admin, uri: Uri) -> Response {
    let params = match query(&uri) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let Some(source) = params.get("source").cloned() else {
        return error(Code::MissingField, "/source", "the query parameter source is required");
    };
    let (after, limit) = match page(&params) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let rows = match read_store(&hub, "events", move |s| s.events(&source, after, limit)).await {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.seq)).flatten();
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let event = tollgate::json::parse(&r.json).unwrap_or(Value::Null);
            json!({ "seq": r.seq, "receivedAt": Timestamp(r.received_at).to_rfc3339(), "event": event })
        })
        .collect();
    json_response(200, &json!({ "events": events, "next": next }))
}

async fn close_invoice(State(hub): State<Arc<Hub>>, _: Admin, body: Result<Bytes, BytesRejection>) -> Response {
    match json_body(body) {
        Ok(v) => hub.write(|state, now| state.close_invoice(&v, now)).await,
        Err(e) => error_response(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// the static site

fn content_type(path: &FsPath) -> &'static str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "txt" | "ts" | "jsonl" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file a URL path names: `/pkg/…` and `/examples/…` in the siblings of the site's
/// directory, the rest in it. No `..`, no hidden files; a directory serves its `index.html`.
fn static_file(www: &FsPath, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| s.starts_with('.') || s.contains('\\') || s.contains('\0')) {
        return None;
    }
    let parent = www.parent().map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
    let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent };
    let (mut path, rest) = match segments.first() {
        Some(&"pkg") => (parent.join("pkg"), &segments[1..]),
        Some(&"examples") => (parent.join("examples"), &segments[1..]),
        _ => (www.to_path_buf(), &segments[..]),
    };
    for s in rest {
        path.push(s);
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    if path.is_dir() {
        path.push("index.html");
    }
    path.is_file().then_some(path)
}

async fn fallback(State(hub): State<Arc<Hub>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().to_string();
    if path == "/v1" || path.starts_with("/v1/") {
        return error(Code::NotFound, "", format!("no route {method} {path}"));
    }
    if method != Method::GET && method != Method::HEAD {
        return error(Code::NotFound, "", format!("no route {method} {path}"));
    }
    let www = hub.www.clone();
    let found = tokio::task::spawn_blocking(move || {
        let file = static_file(&www, &path)?;
        let bytes = std::fs::read(&file).ok()?;
        Some((content_type(&file), bytes))
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((kind, bytes)) => {
            let mut r = respond(200, bytes, kind);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => error(Code::NotFound, "", format!("no file at {}", uri.path())),
    }
}
