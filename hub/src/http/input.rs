//! Inputs: the body as exact JSON, the route's ids, the query string.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::error::{error_response, ApiError};
use super::MAX_BODY;
use tollgate::error::Code;
use tollgate::time::Timestamp;

/// The body as exact JSON: 413 past the byte limit or the JSON value budget, `invalid_json` if
/// it does not parse.
pub(super) fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(Code::PayloadTooLarge, "", format!("the request body is over {MAX_BODY} bytes"))
        } else {
            ApiError::new(Code::InvalidValue, "", format!("the request body could not be read: {}", r.body_text()))
        }
    })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::new(Code::InvalidJson, "", "the body is not UTF-8"))?;
    if crate::budget::over_budget(&bytes, crate::budget::MAX_JSON_NODES) {
        let message = format!("the request body holds more than {} JSON values", crate::budget::MAX_JSON_NODES);
        return Err(ApiError::new(Code::PayloadTooLarge, "", message));
    }
    tollgate::json::parse(text).map_err(|e| ApiError::new(e.code, "", e.message))
}

/// The body as exact JSON ([`json_body`]): an extractor that answers its errors itself.
pub(super) struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        json_body(Bytes::from_request(req, state).await).map(JsonBody).map_err(|e| error_response(&e))
    }
}

/// The `{id}` of the route, not empty: an extractor that answers `invalid_value` itself.
pub(super) struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let id = Path::<String>::from_request_parts(parts, state).await;
        path_id(id).map(Id).map_err(|e| error_response(&e))
    }
}

/// The `{id}` of the route.
pub(super) fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.is_empty() && !id.contains('\0') => Ok(id),
        Ok(Path(id)) if id.is_empty() => Err(ApiError::new(Code::InvalidValue, "", "the id in the URL is empty")),
        Ok(_) => Err(ApiError::new(Code::InvalidValue, "", "the id in the URL contains U+0000")),
        Err(r) => Err(ApiError::new(Code::InvalidValue, "", format!("the URL's id is unusable: {}", r.body_text()))),
    }
}

/// `%XX` escapes of a URL part decoded (`+` is left as it is: it is a time zone sign in the
/// timestamps the query strings carry). A `%` not followed by two hex digits stays as it is, as
/// URL parsers do; `None` when the bytes are not UTF-8 or hold U+0000 (which no database's text
/// type stores).
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let text = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    (!text.contains('\0')).then(|| text.into_owned())
}

/// The query string's parameters (the last of a repeated name wins).
pub(super) fn query(uri: &Uri) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || ApiError::new(Code::InvalidValue, "", "the query string's %-escapes are not UTF-8");
        out.insert(percent_decode(k).ok_or_else(bad)?, percent_decode(v).ok_or_else(bad)?);
    }
    Ok(out)
}

pub(super) fn timestamp_param(params: &BTreeMap<String, String>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(t) => Timestamp::parse(t).map(Some).ok_or_else(|| {
            ApiError::new(Code::InvalidTimestamp, &format!("/{name}"), format!("{t:?} is not an RFC 3339 timestamp"))
        }),
    }
}

/// A page of a listing: `after` (a cursor, 0 by default) and `limit` (1,000 by default, at most
/// 10,000) from the query string.
pub(super) fn page(params: &BTreeMap<String, String>) -> Result<(i64, u32), ApiError> {
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

/// The `?now=` of the query string (absent: the hub's clock).
pub(super) fn now_param(uri: &Uri) -> Result<Option<Timestamp>, ApiError> {
    query(uri).and_then(|q| timestamp_param(&q, "now"))
}
