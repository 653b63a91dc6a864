//! Error replies: the status and JSON body of each error (see `docs/errors.md`), and the
//! responses every route builds.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::state::{error_json, listed, HubError, Reply, MAX_LISTED};
use tollgate::error::{Code, Error};

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
        Code::Conflict | Code::PeriodOpen | Code::IdempotencyMismatch => 409,
        Code::PayloadTooLarge => 413,
        Code::Unencodable => 500,
        // The database failed or cannot be reached: nothing was acknowledged, try again later.
        Code::Storage => 503,
        _ => 400,
    }
}

impl ApiError {
    /// One error, its status from its code.
    pub fn one(e: &Error) -> ApiError {
        ApiError { status: status_of(e.code), body: json!({ "error": error_json(e) }) }
    }

    /// A validation failure listing every problem (its status from the first).
    pub fn list(errors: &[Error]) -> ApiError {
        ApiError::counted(errors, errors.len())
    }

    /// [`ApiError::list`] of the first problems of `total` (the rest are counted).
    pub fn counted(errors: &[Error], total: usize) -> ApiError {
        let status = errors.first().map_or(400, |e| status_of(e.code));
        let mut body = json!({ "errors": listed(errors) });
        let shown = errors.len().min(MAX_LISTED);
        if total > shown {
            body["errorsOmitted"] = json!(total - shown);
        }
        ApiError { status, body }
    }

    /// A new error of `code` at `path`.
    pub fn new(code: Code, path: &str, message: impl Into<String>) -> ApiError {
        ApiError::one(&Error::new(code, path, message))
    }
}

impl From<&HubError> for ApiError {
    fn from(e: &HubError) -> ApiError {
        match e {
            HubError::One(e) => ApiError::one(e),
            HubError::List(errors) => ApiError::list(errors),
            HubError::Invalidates { conflict, problems } => {
                let mut body = ApiError::one(conflict).body;
                let details = problems
                    .iter()
                    .map(|(e, customer)| {
                        let mut v = error_json(e);
                        if let Some(id) = customer {
                            v["customerId"] = json!(id);
                        }
                        v
                    })
                    .collect();
                body["errors"] = Value::Array(details);
                ApiError { status: 409, body }
            }
        }
    }
}

pub(super) fn respond(status: u16, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn json_response(status: u16, body: &Value) -> Response {
    respond(status, serde_json::to_vec(body).unwrap_or_default(), "application/json")
}

pub(super) fn reply_response(reply: &Reply) -> Response {
    let mut response = respond(reply.status, reply.body.to_vec(), "application/json");
    if let Some(tag) = reply.etag.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

pub(super) fn error_response(e: &ApiError) -> Response {
    let mut response = json_response(e.status, &e.body);
    if e.status == 401 {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

pub(super) fn error(code: Code, path: &str, message: impl Into<String>) -> Response {
    error_response(&ApiError::new(code, path, message))
}

pub(super) fn storage_failed() -> Response {
    error(Code::Storage, "", "the hub's database failed: nothing of this request was acknowledged")
}
