//! The bearer tokens the hub made: generated at a first start when the environment names none
//! of a role, or made through `POST /v1/tokens`; listed and revoked through `/v1/tokens`. Each
//! is kept as the SHA-256 of its text (the text is shown once, in the reply that makes it).

use std::sync::PoisonError;

use serde_json::{json, Value};

use super::{HubError, HubState, Reply};
use crate::store::{Changes, TokenRow};
use crate::tokens::{hash, valid_edge_id, EnvTokens, Role, MAX_EDGE_ID};
use tollgate::error::Code;
use tollgate::json::Fields;
use tollgate::time::Timestamp;

/// Most tokens the hub keeps (made and revoked): a bound on what one admin can make it store.
pub const MAX_TOKENS: usize = 10_000;

/// A token as the routes show it (never its text, which only the reply that made it carries).
fn token_json(row: &TokenRow) -> Value {
    json!({
        "id": row.id,
        "role": row.role,
        "edgeId": (!row.edge_id.is_empty()).then_some(&row.edge_id),
        "createdAt": Timestamp(row.created_at).to_rfc3339(),
        "revokedAt": (row.revoked_at != 0).then(|| Timestamp(row.revoked_at).to_rfc3339()),
    })
}

/// The role and bound edge of a stored row (an unknown role is refused at start).
fn role_of(row: &TokenRow) -> Result<(Role, Option<String>), String> {
    let role =
        Role::parse(&row.role).ok_or_else(|| format!("stored token {} has an unknown role {:?}", row.id, row.role))?;
    Ok((role, (!row.edge_id.is_empty()).then(|| row.edge_id.clone())))
}

impl HubState {
    /// Loads the stored tokens; the valid ones go into the keyring.
    pub(super) fn restore_tokens(&mut self, rows: Vec<TokenRow>) -> Result<(), String> {
        let mut keyring = self.keyring.write().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            let (role, edge) = role_of(&row)?;
            if row.revoked_at == 0 {
                keyring.insert(row.hash.clone(), role, edge);
            }
            self.tokens.insert(row.id.clone(), row);
        }
        Ok(())
    }

    /// Tokens another hub made or revoked, as they now stand.
    pub(super) fn follow_tokens(&mut self, rows: Vec<TokenRow>) -> Result<(), String> {
        for row in rows {
            let (role, edge) = role_of(&row)?;
            let mut keyring = self.keyring.write().unwrap_or_else(PoisonError::into_inner);
            if row.revoked_at == 0 {
                keyring.insert(row.hash.clone(), role, edge);
            } else {
                keyring.remove(&row.hash);
            }
            drop(keyring);
            self.tokens.insert(row.id.clone(), row);
        }
        Ok(())
    }

    /// Hands this state's valid tokens to `shared` (the keyring the guards read) and keeps
    /// that one: how a state rebuilt after a failure takes over without a moment when a valid
    /// token is refused.
    pub fn adopt_keyring(&mut self, shared: &crate::tokens::SharedKeyring) {
        let mine = self.keyring.read().unwrap_or_else(PoisonError::into_inner).clone();
        *shared.write().unwrap_or_else(PoisonError::into_inner) = mine;
        self.keyring = shared.clone();
    }

    /// True when a valid token of `role` was made.
    fn has_valid(&self, role: Role) -> bool {
        self.tokens.values().any(|t| t.revoked_at == 0 && t.role == role.as_str())
    }

    /// At start: for each role that neither the environment nor a stored token covers, a token
    /// is generated (an edge one for edge `edge-1`) and stored. Returns each with its text, to
    /// print once.
    pub fn first_tokens(
        &mut self,
        env: &EnvTokens,
        now: Timestamp,
        changes: &mut Changes,
    ) -> Result<Vec<(Role, String)>, String> {
        let mut generated = Vec::new();
        for role in [Role::Admin, Role::Edge] {
            if env.has(role) || self.has_valid(role) {
                continue;
            }
            let text = crate::tokens::generate(role)?;
            let edge = (role == Role::Edge).then(|| "edge-1".to_string());
            let row = self.make_token(crate::tokens::new_id()?, role, edge, &text, now);
            changes.tokens.push(row);
            generated.push((role, text));
        }
        Ok(generated)
    }

    /// Stores a token and lets it in.
    fn make_token(&mut self, id: String, role: Role, edge: Option<String>, text: &str, now: Timestamp) -> TokenRow {
        let row = TokenRow {
            id: id.clone(),
            role: role.as_str().into(),
            edge_id: edge.clone().unwrap_or_default(),
            hash: hash(text),
            created_at: now.0,
            revoked_at: 0,
        };
        self.keyring.write().unwrap_or_else(PoisonError::into_inner).insert(row.hash.clone(), role, edge);
        self.tokens.insert(id, row.clone());
        row
    }

    /// `POST /v1/tokens`: `{ "role": "admin" }` or `{ "role": "edge", "edgeId": "…" }` (an edge
    /// token is always bound to its edge). `id` and `text` are drawn by the caller (the HTTP
    /// layer reads the random bytes); the reply is the only place the text ever appears.
    pub fn create_token(
        &mut self,
        body: &Value,
        id: String,
        text: &str,
        now: Timestamp,
    ) -> Result<(Reply, Changes), HubError> {
        let mut problems = Vec::new();
        let (role, edge) = match Fields::open(body, "", &mut problems) {
            Some(mut f) => {
                let role = f.str("role");
                let edge = f.opt_str("edgeId");
                f.finish();
                (role, edge)
            }
            None => (None, None),
        };
        if !problems.is_empty() {
            return Err(HubError::List(problems));
        }
        let Some(role) = role else { return Err(HubError::new(Code::MissingField, "/role", "role is required")) };
        let role = Role::parse(&role)
            .ok_or_else(|| HubError::new(Code::InvalidValue, "/role", "role is \"admin\" or \"edge\""))?;
        match (role, &edge) {
            (Role::Edge, None) => {
                return Err(HubError::new(Code::MissingField, "/edgeId", "an edge token names its edge: edgeId"))
            }
            (Role::Edge, Some(e)) if !valid_edge_id(e) || e == super::HUB_EDGE => {
                let message = format!("edgeId has 1 to {MAX_EDGE_ID} of A-Z a-z 0-9 . _ - (and is not \"hub\")");
                return Err(HubError::new(Code::InvalidValue, "/edgeId", message));
            }
            (Role::Admin, Some(_)) => {
                return Err(HubError::new(Code::InvalidValue, "/edgeId", "an admin token names no edge"))
            }
            _ => {}
        }
        if self.tokens.len() >= MAX_TOKENS {
            let message = format!("the hub keeps at most {MAX_TOKENS} tokens");
            return Err(HubError::new(Code::Conflict, "", message));
        }
        let mut changes = Changes::default();
        let row = self.make_token(id, role, edge, text, now);
        let mut body = token_json(&row);
        body["token"] = json!(text);
        changes.tokens.push(row);
        Ok((Reply::json(201, &body)?, changes))
    }

    /// `GET /v1/tokens`: every token the hub made, oldest first, without their texts.
    pub fn list_tokens(&self) -> Result<Reply, HubError> {
        let mut rows: Vec<&TokenRow> = self.tokens.values().collect();
        rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Reply::json(200, &json!({ "tokens": rows.into_iter().map(token_json).collect::<Vec<_>>() }))
    }

    /// `DELETE /v1/tokens/{id}`: the token stops working at once (again: the same answer). The
    /// last valid admin token is kept when the environment gives none, so the hub is never left
    /// without an administrator.
    pub fn revoke_token(&mut self, id: &str, env_admin: bool, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        let Some(row) = self.tokens.get(id) else {
            return Err(HubError::new(Code::NotFound, "", format!("no token with id {id:?}")));
        };
        if row.revoked_at != 0 {
            return Ok((Reply::json(200, &token_json(row))?, Changes::default()));
        }
        let admins = self.tokens.values().filter(|t| t.revoked_at == 0 && t.role == Role::Admin.as_str()).count();
        if row.role == Role::Admin.as_str() && admins == 1 && !env_admin {
            let message = "this is the last admin token and TOLLGATE_ADMIN_TOKEN is unset: make another first";
            return Err(HubError::new(Code::Conflict, "", message));
        }
        let mut row = row.clone();
        row.revoked_at = now.0.max(1);
        self.keyring.write().unwrap_or_else(PoisonError::into_inner).remove(&row.hash);
        self.tokens.insert(row.id.clone(), row.clone());
        let body = token_json(&row);
        Ok((Reply::json(200, &body)?, Changes { tokens: vec![row], ..Changes::default() }))
    }
}
