//! `tollgate hub`: the HTTP hub over its SQLite or PostgreSQL database (docs/hub.md). Runs
//! until stopped.

use std::path::PathBuf;

use tollgate::sync::signed::KeyPair;
use tollgate_hub::store::Database;
use tollgate_hub::Config;

use crate::fail::{read_json, Fail};

/// Runs the hub server until the process is stopped.
#[derive(clap::Args)]
#[command(after_help = "Tokens come from the environment: TOLLGATE_ADMIN_TOKEN, and TOLLGATE_EDGE_TOKENS \
(edgeId:token,...); unset, they are generated and printed once. Without --db, TOLLGATE_DATABASE_URL \
is used when set, else tollgate.db.")]
pub struct Args {
    /// The database: a SQLite file, or a postgres:// URL
    #[arg(long, value_name = "FILE|URL")]
    db: Option<String>,
    /// Address to listen on (port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value_t = Config::new().listen)]
    listen: String,
    /// The static site to serve
    #[arg(long, value_name = "DIR", default_value_os_t = Config::new().www)]
    www: PathBuf,
    /// The signing key (a keygen file); default: the one stored in the database
    #[arg(long, value_name = "KEY.json")]
    key: Option<String>,
    /// A snapshot to load into an empty database
    #[arg(long, value_name = "SNAPSHOT.json")]
    seed: Option<String>,
    /// Lease lifetime told to edges, in ms
    #[arg(long, value_name = "MS", default_value_t = Config::new().ttl_ms, value_parser = positive)]
    ttl_ms: u64,
    /// How long a request's headers may take, and a connection may idle, in ms
    #[arg(long, value_name = "MS", default_value_t = Config::new().header_timeout_ms, value_parser = positive)]
    header_timeout_ms: u64,
    /// How long a request's body may take, in ms
    #[arg(long, value_name = "MS", default_value_t = Config::new().body_timeout_ms, value_parser = positive)]
    body_timeout_ms: u64,
    /// Open connections at most
    #[arg(long, value_name = "N", default_value_t = Config::new().max_connections as u64, value_parser = positive)]
    max_connections: u64,
    /// How far an event may be dated after the hub's clock, in ms
    #[arg(long, value_name = "MS", default_value_t = Config::new().max_future_ms, value_parser = positive)]
    max_future_ms: u64,
    /// Most of a key's budget one edge's lease may hold unused, in percent (1 to 100)
    #[arg(long, value_name = "PERCENT", default_value_t = Config::new().edge_share_percent, value_parser = percent)]
    max_edge_share: u32,
    /// How long a signed snapshot stays valid, in ms
    #[arg(long, value_name = "MS", default_value_t = Config::new().snapshot_ttl_ms, value_parser = positive)]
    snapshot_ttl_ms: u64,
    /// History records (events, customer and catalog changes) between two checkpoints of the
    /// state, which a restart reads instead of replaying them; 0: none
    #[arg(long, value_name = "N", default_value_t = Config::new().checkpoint_every)]
    checkpoint_every: u64,
    /// Ignore the stored checkpoint and replay the whole history (to check it, or after a
    /// change of the engine's rules)
    #[arg(long)]
    full_replay: bool,
}

impl Args {
    /// Loads the key and the seed, then serves.
    pub fn run(self) -> Result<u8, Fail> {
        let key = match &self.key {
            Some(path) => Some(KeyPair::from_value(&read_json(path)?).map_err(|e| Fail::file(path, &e))?),
            None => None,
        };
        let seed = self.seed.as_deref().map(read_json).transpose()?;
        let db = match self.db.or_else(|| std::env::var("TOLLGATE_DATABASE_URL").ok().filter(|v| !v.is_empty())) {
            Some(text) => Database::parse(&text),
            None => Config::new().db,
        };
        let config = Config {
            db,
            listen: self.listen,
            www: self.www,
            key,
            seed,
            ttl_ms: self.ttl_ms,
            header_timeout_ms: self.header_timeout_ms,
            body_timeout_ms: self.body_timeout_ms,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_future_ms: self.max_future_ms,
            edge_share_percent: self.max_edge_share,
            snapshot_ttl_ms: self.snapshot_ttl_ms,
            checkpoint_every: self.checkpoint_every,
            full_replay: self.full_replay,
        };
        tollgate_hub::run(config).map_err(Fail::input)?;
        Ok(0)
    }
}

/// A whole number above zero.
fn positive(text: &str) -> Result<u64, String> {
    text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| "not a positive whole number".into())
}

/// A percentage from 1 to 100.
fn percent(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| "not a whole percentage from 1 to 100".into())
}
