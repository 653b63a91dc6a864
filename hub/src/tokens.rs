//! Who may call the hub: bearer tokens from the environment (`TOLLGATE_ADMIN_TOKEN`,
//! `TOLLGATE_EDGE_TOKENS`), and the tokens the hub made itself — generated at a first start
//! without those variables, or made through `POST /v1/tokens` — which are stored as the SHA-256
//! of their text, so they keep working across restarts and can be revoked without one.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::{hex, random_bytes};

/// What a token lets its bearer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: catalog, customers, events, invoices, tokens.
    Admin,
    /// Sync, and the reads an edge needs (snapshot, entitlements, invoice preview).
    Edge,
}

impl Role {
    /// `admin` or `edge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Edge => "edge",
        }
    }

    /// The role named `text`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "edge" => Some(Role::Edge),
            _ => None,
        }
    }
}

/// Longest edge id.
pub const MAX_EDGE_ID: usize = 64;

/// An edge id: 1 to [`MAX_EDGE_ID`] bytes of letters, digits, `.`, `_` and `-`.
pub fn valid_edge_id(id: &str) -> bool {
    (1..=MAX_EDGE_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Shortest accepted token, so a typo'd empty or trivial variable is refused.
const MIN_TOKEN_LEN: usize = 16;

/// Equality that takes the same time wherever the texts differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The SHA-256 of a token's text, lowercase hex: what the database keeps of it.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new token of `role`: `tga_` (admin) or `tge_` (edge) and 48 random hex digits.
pub fn generate(role: Role) -> Result<String, String> {
    let prefix = match role {
        Role::Admin => "tga",
        Role::Edge => "tge",
    };
    Ok(format!("{prefix}_{}", hex(&random_bytes::<24>()?)))
}

/// A new token id (`tok_` and 16 random hex digits): public, for listing and revoking.
pub fn new_id() -> Result<String, String> {
    Ok(format!("tok_{}", hex(&random_bytes::<8>()?)))
}

/// The tokens of the environment.
#[derive(Clone, Default)]
pub struct EnvTokens {
    admin: Option<String>,
    /// Each edge token with the edge id it names (`None`: a bare token, any id; development only).
    edges: Vec<(Option<String>, String)>,
}

impl EnvTokens {
    /// The tokens of `TOLLGATE_ADMIN_TOKEN` and `TOLLGATE_EDGE_TOKENS` (comma-separated, each
    /// `edgeId:token`, which binds the token to that edge, or a bare `token`, which may speak
    /// for any edge and is for local development only). Unset or empty, a variable gives none.
    pub fn from_env(admin: Option<String>, edges: Option<String>) -> Result<EnvTokens, String> {
        let admin = admin.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let mut edge_list: Vec<(Option<String>, String)> = Vec::new();
        for entry in edges.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match entry.split_once(':') {
                Some((id, token)) => {
                    if !valid_edge_id(id) {
                        return Err(format!(
                            "TOLLGATE_EDGE_TOKENS: {id:?} is not an edge id (1 to {MAX_EDGE_ID} of A-Z a-z 0-9 . _ -)"
                        ));
                    }
                    edge_list.push((Some(id.to_string()), token.to_string()));
                }
                None => edge_list.push((None, entry.to_string())),
            }
        }
        if edge_list.iter().any(|(id, _)| id.is_none()) {
            eprintln!(
                "tollgate hub: warning: an edge token without an edge id may act as any edge; \
                 give TOLLGATE_EDGE_TOKENS as edgeId:token outside local development"
            );
        }
        let mut ids = std::collections::HashSet::new();
        if edge_list.iter().filter_map(|(id, _)| id.as_deref()).any(|id| !ids.insert(id)) {
            return Err("TOLLGATE_EDGE_TOKENS names one edge id twice".into());
        }
        for t in admin.iter().chain(edge_list.iter().map(|(_, t)| t)) {
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("a token must be printable ASCII without spaces".into());
            }
            if t.len() < MIN_TOKEN_LEN {
                // Accepted (a test setup may use short ones), but said out loud.
                eprintln!("tollgate hub: warning: a token shorter than {MIN_TOKEN_LEN} characters is easy to guess");
            }
        }
        if edge_list.iter().any(|(_, e)| Some(e) == admin.as_ref()) {
            return Err("TOLLGATE_ADMIN_TOKEN must differ from every TOLLGATE_EDGE_TOKENS entry".into());
        }
        Ok(EnvTokens { admin, edges: edge_list })
    }

    /// True when the environment gives a token of `role`.
    pub fn has(&self, role: Role) -> bool {
        match role {
            Role::Admin => self.admin.is_some(),
            Role::Edge => !self.edges.is_empty(),
        }
    }
}

/// The valid tokens the hub made, by the hash of their text: shared between the state (which
/// changes them) and the requests' guards (which read them).
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    by_hash: HashMap<String, (Role, Option<String>)>,
}

impl Keyring {
    /// Accepts the token whose hash is `hash` as `role` (bound to `edge_id`, for an edge).
    pub fn insert(&mut self, hash: String, role: Role, edge_id: Option<String>) {
        self.by_hash.insert(hash, (role, edge_id));
    }

    /// Stops accepting the token whose hash is `hash`.
    pub fn remove(&mut self, hash: &str) {
        self.by_hash.remove(hash);
    }
}

/// The keyring as the state and the guards share it.
pub type SharedKeyring = Arc<RwLock<Keyring>>;

/// Every token the hub accepts.
#[derive(Clone)]
pub struct Tokens {
    env: EnvTokens,
    made: SharedKeyring,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self.made.read().unwrap_or_else(PoisonError::into_inner).by_hash.len();
        write!(
            f,
            "Tokens({} admin, {} edge from the environment, {made} made)",
            u8::from(self.env.admin.is_some()),
            self.env.edges.len()
        )
    }
}

impl Tokens {
    /// The environment's tokens and the keyring of those the hub made.
    pub fn new(env: EnvTokens, made: SharedKeyring) -> Tokens {
        Tokens { env, made }
    }

    /// True when the environment gives a token of `role`.
    pub fn env_has(&self, role: Role) -> bool {
        self.env.has(role)
    }

    /// The role of the request's `Authorization: Bearer <token>`, if it carries a known token.
    pub fn role(&self, headers: &HeaderMap) -> Option<Role> {
        self.caller(headers).map(|(role, _)| role)
    }

    /// The role of the request's token and, for an edge token bound to one, the edge it names.
    pub fn caller(&self, headers: &HeaderMap) -> Option<(Role, Option<String>)> {
        let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if self.env.admin.as_deref().is_some_and(|admin| same(token.as_bytes(), admin.as_bytes())) {
            return Some((Role::Admin, None));
        }
        // Every edge token is compared, so timing does not tell which one matched.
        let mut found = None;
        for (id, t) in &self.env.edges {
            if same(token.as_bytes(), t.as_bytes()) {
                found = Some((Role::Edge, id.clone()));
            }
        }
        if found.is_some() {
            return found;
        }
        // A made token is looked up by its hash: what the lookup's timing could tell is about
        // the hash, which the caller cannot steer toward a stored one.
        let made = self.made.read().unwrap_or_else(PoisonError::into_inner);
        made.by_hash.get(&hash(token)).cloned()
    }
}
