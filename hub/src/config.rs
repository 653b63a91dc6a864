//! How the hub is configured: the command-line settings, and the random bytes it needs.

use std::io::Read;
use std::path::PathBuf;

use crate::store::Database;

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
    /// History records between two checkpoints (`--checkpoint-every`; 0: none).
    pub checkpoint_every: u64,
    /// Ignore the stored checkpoint, replay the whole history (`--full-replay`).
    pub full_replay: bool,
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
            checkpoint_every: crate::state::DEFAULT_CHECKPOINT_EVERY,
            full_replay: false,
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
