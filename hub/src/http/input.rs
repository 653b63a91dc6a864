//! Inputs: the body as exact JSON, the route's ids, the query string.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use serde_json::Value;

use super::error::ApiError;
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

/// The `{id}` of the route.
pub(super) fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.is_empty() => Ok(id),
        Ok(_) => Err(ApiError::new(Code::InvalidValue, "", "the id in the URL is empty")),
        Err(r) => Err(ApiError::new(Code::InvalidValue, "", format!("the URL's id is unusable: {}", r.body_text()))),
    }
}

/// `%XX` escapes of a URL part decoded (`+` is left as it is: it is a time zone sign in the
/// timestamps the query strings carry).
pub(super) fn percent_decode(s: &str) -> Option<String> {
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
pub(super) fn query(uri: &Uri) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || ApiError::new(Code::InvalidValue, "", "the query string has a bad %-escape");
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

/// The customer id of the URL and its `?now=` (absent: the hub's clock).
pub(super) fn id_and_now(
    id: Result<Path<String>, PathRejection>,
    uri: &Uri,
) -> Result<(String, Option<Timestamp>), ApiError> {
    let id = path_id(id)?;
    let at = query(uri).and_then(|q| timestamp_param(&q, "now"))?;
    Ok((id, at))
}
