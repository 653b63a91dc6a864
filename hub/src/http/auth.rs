//! Authorisation: guard extractors that check the bearer token (and the declared body length)
//! before the body is read.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::error::{error, error_response, ApiError};
use super::{Hub, MAX_BODY};
use crate::tokens::Role;
use tollgate::error::Code;

/// Admin token required.
pub(super) struct Admin;
/// Edge token required; the edge id the token is bound to, when it is.
pub(super) struct EdgeOnly(pub(super) Option<String>);
/// Admin or edge token.
pub(super) struct Anyone;

pub(super) fn authorise(hub: &Hub, headers: &HeaderMap, allowed: &[Role]) -> Result<(), Box<Response>> {
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
pub(super) fn admit(hub: &Hub, parts: &Parts, allowed: &[Role]) -> Result<(), Box<Response>> {
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
        let bound = hub.tokens.caller(&parts.headers).and_then(|(_, id)| id);
        Ok(EdgeOnly(bound))
    }
}

impl FromRequestParts<Arc<Hub>> for Anyone {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        admit(hub, parts, &[Role::Admin, Role::Edge]).map(|()| Anyone).map_err(|r| *r)
    }
}
