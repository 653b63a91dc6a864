//! The handlers, one per route.

use std::sync::{Arc, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::auth::{Admin, Anyone, EdgeOnly};
use super::error::{error, error_response, json_response, ApiError};
use super::input::{json_body, now_param, page, query, Id, JsonBody};
use super::{ledger_lookup, Hub, MAX_SYNC_ITEMS};
use crate::state::{self, HubError, Incoming, Reply};
use crate::store::{Store, StoreError};
use crate::tokens::Role;
use tollgate::error::Code;
use tollgate::metering::Event;
use tollgate::sync::SyncRequest;
use tollgate::time::Timestamp;

pub(super) async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    let version = hub.lock().snapshot_version();
    let ok = !hub.writer.progress.failed();
    json_response(if ok { 200 } else { 503 }, &json!({ "ok": ok, "snapshotVersion": version }))
}

pub(super) async fn sync(
    State(hub): State<Arc<Hub>>,
    edge: EdgeOnly,
    headers: HeaderMap,
    JsonBody(value): JsonBody,
) -> Response {
    let request = match SyncRequest::from_value(&value) {
        Ok(r) => r,
        Err(errors) => return error_response(&ApiError::list(&errors)),
    };
    // The identity is the token's: a body may not speak for another edge.
    if let Some(bound) = &edge.0 {
        if request.edge_id != *bound {
            let message = format!("this token belongs to edge {bound:?}, not {:?}", request.edge_id);
            return error_response(&ApiError::new(Code::Forbidden, "/edgeId", message));
        }
    }
    if !crate::tokens::valid_edge_id(&request.edge_id) || request.boot_id.is_empty() || request.boot_id.len() > 128 {
        let (path, message) = if crate::tokens::valid_edge_id(&request.edge_id) {
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
pub(super) const SIGNED_JSON: &str = "application/vnd.tollgate.signed+json";

pub(super) async fn snapshot(State(hub): State<Arc<Hub>>, _: Anyone, headers: HeaderMap) -> Response {
    let wanted = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut not_modified = None;
    let response = hub
        .read(|state, now| {
            let signed =
                state.signed(now).ok_or_else(|| HubError::new(Code::NotFound, "", "the hub has no catalog yet"))?;
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

pub(super) async fn put_catalog(State(hub): State<Arc<Hub>>, _: Admin, JsonBody(v): JsonBody) -> Response {
    hub.write(|state, now| state.put_catalog(v, now)).await
}

pub(super) async fn put_customer(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    Id(id): Id,
    JsonBody(value): JsonBody,
) -> Response {
    hub.write(|state, now| state.put_customer(&id, value, now)).await
}

pub(super) async fn add_grant(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    Id(id): Id,
    JsonBody(value): JsonBody,
) -> Response {
    hub.write(|state, now| state.add_grant(&id, value, now)).await
}

/// `POST /v1/customers/{id}/subscriptions/{sub}/migrate` (admin): the subscription leaves its
/// pinned price versions for the catalog's current prices.
pub(super) async fn migrate_subscription(
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

pub(super) async fn top_up(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id, JsonBody(value): JsonBody) -> Response {
    hub.write(|state, now| state.top_up(&id, &value, now)).await
}

pub(super) async fn customer(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id) -> Response {
    hub.read(|state, _| state.customer(&id)).await
}

pub(super) async fn wallet(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id) -> Response {
    hub.read(|state, _| state.wallet(&id)).await
}

pub(super) async fn create_token(State(hub): State<Arc<Hub>>, _: Admin, JsonBody(value): JsonBody) -> Response {
    // The random id and text are drawn here (the state does no I/O); a body the state refuses
    // wastes them, nothing else. The text's prefix follows the role asked for.
    let role = value.get("role").and_then(Value::as_str).and_then(Role::parse).unwrap_or(Role::Admin);
    let (id, text) = match crate::tokens::new_id().and_then(|id| Ok((id, crate::tokens::generate(role)?))) {
        Ok(made) => made,
        Err(e) => return error(Code::Storage, "", e),
    };
    hub.write(|state, now| state.create_token(&value, id, &text, now)).await
}

pub(super) async fn list_tokens(State(hub): State<Arc<Hub>>, _: Admin) -> Response {
    hub.read(|state, _| state.list_tokens()).await
}

pub(super) async fn revoke_token(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id) -> Response {
    let env_admin = hub.tokens.env_has(Role::Admin);
    hub.write(|state, now| state.revoke_token(&id, env_admin, now)).await
}

pub(super) async fn revoke_edge(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id) -> Response {
    hub.write(|state, now| state.revoke_edge(&id, now)).await
}

pub(super) async fn lift_revocation(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id) -> Response {
    hub.write(|state, _| state.lift_revocation(&id)).await
}

pub(super) async fn entitlements(State(hub): State<Arc<Hub>>, _: Anyone, Id(id): Id) -> Response {
    hub.read(|state, now| state.entitlements(&id, now)).await
}

/// `GET /v1/customers/{id}/invoices[?now=T]`: the customer's invoices up to now (admin).
pub(super) async fn invoices(State(hub): State<Arc<Hub>>, _: Admin, Id(id): Id, uri: Uri) -> Response {
    match now_param(&uri) {
        Ok(at) => hub.read(|state, now| state.invoice_list(&id, at.unwrap_or(now))).await,
        Err(e) => error_response(&e),
    }
}

pub(super) async fn invoice(State(hub): State<Arc<Hub>>, _: Anyone, Id(id): Id, uri: Uri) -> Response {
    match now_param(&uri) {
        Ok(at) => hub.read(|state, now| state.invoice_preview(&id, at.unwrap_or(now))).await,
        Err(e) => error_response(&e),
    }
}

pub(super) async fn ingest(State(hub): State<Arc<Hub>>, _: Admin, JsonBody(value): JsonBody) -> Response {
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
    // Every event is decoded (once: the state takes it decoded) before anything is applied; the
    // first problems are kept, the rest counted (a body of bad events costs no more than the
    // body).
    let now = state::now();
    let mut items = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    let mut failed = 0usize;
    for (i, value) in list.iter().enumerate() {
        let path = format!("{prefix}/{i}");
        match Event::decode(value, now) {
            Ok(event) => items.push(Incoming { event, value: value.clone(), path }),
            Err(err) => {
                failed += 1;
                if problems.len() < state::MAX_LISTED {
                    problems.push(err.under(&path));
                }
            }
        }
    }
    if failed > 0 {
        return error_response(&ApiError::counted(&problems, failed));
    }
    let mut in_ledger = ledger_lookup(&hub);
    hub.write(|state, now| state.ingest(&items, now, &mut in_ledger)).await
}

/// Reads from the store on a blocking thread (not under the state's lock).
pub(super) async fn read_store<T: Send + 'static>(
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

pub(super) async fn list_dead_letters(State(hub): State<Arc<Hub>>, _: Admin, uri: Uri) -> Response {
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

pub(super) async fn replay_dead_letters(
    State(hub): State<Arc<Hub>>,
    _: Admin,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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

pub(super) async fn list_events(State(hub): State<Arc<Hub>>, _: Admin, uri: Uri) -> Response {
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

pub(super) async fn close_invoice(State(hub): State<Arc<Hub>>, _: Admin, JsonBody(v): JsonBody) -> Response {
    hub.write(|state, now| state.close_invoice(&v, now)).await
}
