//! How the hub is configured and who may call it: the command-line settings, the bearer tokens
//! (admin and edge, from the environment or generated), and the random bytes it needs.

use std::io::Read;
use std::path::PathBuf;

use crate::store::Database;

use axum::http::HeaderMap;

use tollgate::sync::signed::KeyPair;

/// Settings of `tollgate hub`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the state is kept (`--db`: a SQLite file or a `postgres://` URL).
    pub db: Database,
    /// Address to listen on (`--listen`; port 0 picks a free one).
    pub listen: String,
    /// The static site (`--www`); `pkg/` and `examples/` are its siblings.
    pub www: PathBuf,
    /// The signing key (`--key`, a `tollgate keygen` file); else the one stored in the database.
    pub key: Option<KeyPair>,
    /// A snapshot to load into an empty database (`--seed`).
    pub seed: Option<serde_json::Value>,
    /// Lease lifetime told to edges, in ms (`--ttl-ms`).
    pub ttl_ms: u64,
    /// How long a connection may take to send a request's headers, and may sit idle between
    /// requests, in ms (`--header-timeout-ms`).
    pub header_timeout_ms: u64,
    /// How long a request's body may take to arrive, in ms (`--body-timeout-ms`).
    pub body_timeout_ms: u64,
    /// Open connections at most (`--max-connections`); more are closed as they arrive.
    pub max_connections: usize,
    /// How far an event may be dated after the hub's clock, in ms (`--max-future-ms`).
    pub max_future_ms: u64,
    /// Most of a key's budget one edge's lease may hold unused, in percent (`--max-edge-share`).
    pub edge_share_percent: u32,
    /// How long a signed snapshot stays valid, in ms (`--snapshot-ttl-ms`).
    pub snapshot_ttl_ms: u64,
}

impl Config {
    /// The defaults: `tollgate.db`, `127.0.0.1:8787`, `www`, 30 s leases.
    pub fn new() -> Config {
        Config {
            db: Database::Sqlite(PathBuf::from("tollgate.db")),
            listen: "127.0.0.1:8787".into(),
            www: PathBuf::from("www"),
            key: None,
            seed: None,
            ttl_ms: 30_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 4_096,
            max_future_ms: 300_000,
            edge_share_percent: 50,
            snapshot_ttl_ms: 7 * 86_400_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// `n` bytes from `/dev/urandom`.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read random bytes from /dev/urandom: {e}"))?;
    Ok(buf)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a token lets its bearer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: catalog, customers, events, invoices.
    Admin,
    /// Sync, and the reads an edge needs (snapshot, entitlements, invoice preview).
    Edge,
}

/// The bearer tokens the hub accepts.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    /// Each edge token with the edge id it names (`None`: a bare token, any id; development only).
    edges: Vec<(Option<String>, String)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens(1 admin, {} edge)", self.edges.len())
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

impl Tokens {
    /// The tokens of `TOLLGATE_ADMIN_TOKEN` and `TOLLGATE_EDGE_TOKENS` (comma-separated, each
    /// `edgeId:token`, which binds the token to that edge, or a bare `token`, which may speak
    /// for any edge and is for local development only). An unset (or empty) variable gets a
    /// generated token (edge `edge-1`); the second value lists what was generated, to print once.
    pub fn from_env(admin: Option<String>, edges: Option<String>) -> Result<(Tokens, Vec<(Role, String)>), String> {
        let mut generated = Vec::new();
        let admin = match admin.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(t) => t,
            None => {
                let t = format!("tga_{}", hex(&random_bytes::<24>()?));
                generated.push((Role::Admin, t.clone()));
                t
            }
        };
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
        if edge_list.is_empty() {
            let t = format!("tge_{}", hex(&random_bytes::<24>()?));
            generated.push((Role::Edge, t.clone()));
            edge_list.push((Some("edge-1".into()), t));
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
        for t in std::iter::once(&admin).chain(edge_list.iter().map(|(_, t)| t)) {
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("a token must be printable ASCII without spaces".into());
            }
            if t.len() < MIN_TOKEN_LEN {
                // Accepted (a test setup may use short ones), but said out loud.
                eprintln!("tollgate hub: warning: a token shorter than {MIN_TOKEN_LEN} characters is easy to guess");
            }
        }
        if edge_list.iter().any(|(_, e)| e == &admin) {
            return Err("TOLLGATE_ADMIN_TOKEN must differ from every TOLLGATE_EDGE_TOKENS entry".into());
        }
        Ok((Tokens { admin, edges: edge_list }, generated))
    }

    /// The role of the request's `Authorization: Bearer <token>`, if it carries a known token.
    pub fn role(&self, headers: &HeaderMap) -> Option<Role> {
        self.caller(headers).map(|(role, _)| role)
    }

    /// The role of the request's token and, for an edge token bound to one, the edge it names.
    pub fn caller(&self, headers: &HeaderMap) -> Option<(Role, Option<&str>)> {
        let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim().as_bytes();
        if same(token, self.admin.as_bytes()) {
            return Some((Role::Admin, None));
        }
        // Every edge token is compared, so timing does not tell which one matched.
        let mut found = None;
        for (id, t) in &self.edges {
            if same(token, t.as_bytes()) {
                found = Some((Role::Edge, id.as_deref()));
            }
        }
        found
    }
}
