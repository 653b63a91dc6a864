//! What the fuzz targets share: the example engine, a fixed `now`, and splitting one input into
//! several texts. Every target only asserts that nothing panics: the library answers bad input
//! with typed errors (SPEC §10), so any panic is a bug.

use std::sync::OnceLock;

use serde_json::Value;
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::Catalog;

/// The example snapshot of the LLM provider (three customers), as the CLI and the JS tests use it.
pub const LLM_SNAPSHOT: &str = include_str!("../../examples/llm-snapshot.json");
/// The two example catalogs.
pub const CATALOGS: [&str; 2] = [
    include_str!("../../examples/llm-provider.catalog.json"),
    include_str!("../../examples/cloud-analytics.catalog.json"),
];

/// 2026-11-28T10:00:00Z, inside the example customers' subscriptions.
pub fn now() -> Timestamp {
    Timestamp::parse("2026-11-28T10:00:00Z").expect("a valid timestamp")
}

/// An engine loaded from the example snapshot (built once, cloned for every input so that no
/// input sees another's state).
pub fn example_engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let value = tollgate::json::parse(LLM_SNAPSHOT).expect("the example snapshot is JSON");
            Engine::from_snapshot(&value, Options::default()).expect("the example snapshot is valid")
        })
        .clone()
}

/// The example catalogs, decoded once.
pub fn example_catalogs() -> &'static [Catalog] {
    static CATS: OnceLock<Vec<Catalog>> = OnceLock::new();
    CATS.get_or_init(|| CATALOGS.iter().map(|t| Catalog::from_json(t).expect("a valid example catalog")).collect())
}

/// The input as text: the CLI reads files with `read_to_string` and the wasm layer takes `&str`,
/// so bytes that are not UTF-8 never reach the library.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The input split into at most `n` parts at NUL characters (which JSON text never holds raw);
/// missing parts are empty.
pub fn parts(text: &str, n: usize) -> Vec<&str> {
    let mut out: Vec<&str> = text.splitn(n, '\0').collect();
    out.resize(n, "");
    out
}

/// Parses JSON the way every entry point does (exact numbers); `None` when it is not JSON.
pub fn json(text: &str) -> Option<Value> {
    tollgate::json::parse(text).ok()
}

/// The feature keys of an engine's catalog (for checks after a load), at most `max`.
pub fn feature_keys(engine: &Engine, max: usize) -> Vec<String> {
    engine.catalog().features.iter().take(max).map(|f| f.key.clone()).collect()
}

/// Light use of a freshly loaded engine: a check of a few features and the running invoice of
/// a few customers, so that decoded-but-odd states are exercised too. Results are ignored;
/// only a panic fails.
pub fn exercise(engine: &mut Engine, customers: &[String]) {
    let now = now();
    let keys = feature_keys(engine, 6);
    for c in customers.iter().take(4) {
        for k in &keys {
            let _ = engine.check(c, k, now);
        }
        if let Ok(invoice) = engine.invoice_preview(c, now) {
            let _ = serde_json::to_string(&invoice);
        }
    }
}
