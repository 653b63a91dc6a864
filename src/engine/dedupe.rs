//! Idempotency memory: the first result of each `(source, id)`, kept for a window of event time
//! so that memory stays bounded.

use alloc::collections::BTreeSet;
use alloc::string::String;

use super::hash::Map;
use crate::time::Timestamp;

/// How long (in event time, before `now`) results are remembered by default: 35 days, which
/// covers the current and the previous monthly period.
pub const DEFAULT_WINDOW_MS: i64 = 35 * 86_400_000;

/// Remembered results by idempotency key.
#[derive(Clone, Debug)]
pub struct Dedupe<V> {
    window_ms: i64,
    seen: Map<String, (Timestamp, V)>,
    by_time: BTreeSet<(Timestamp, String)>,
}

impl<V> Dedupe<V> {
    /// An empty memory keeping `window_ms` of event time.
    pub fn new(window_ms: i64) -> Self {
        Dedupe { window_ms, seen: Map::default(), by_time: BTreeSet::new() }
    }

    /// The key of `(source, id)`.
    pub fn key(source: &str, id: &str) -> String {
        let mut k = String::with_capacity(source.len() + id.len() + 1);
        k.push_str(source);
        k.push('\u{1f}');
        k.push_str(id);
        k
    }

    /// The oldest event time still remembered at `now`; older events cannot be deduplicated.
    pub fn horizon(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.0.saturating_sub(self.window_ms))
    }

    /// The first result for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.seen.get(key).map(|(_, v)| v)
    }

    /// Remembers `value` for `key`, and forgets what fell out of the window.
    pub fn insert(&mut self, key: String, time: Timestamp, value: V, now: Timestamp) {
        self.by_time.insert((time, key.clone()));
        self.seen.insert(key, (time, value));
        let horizon = self.horizon(now);
        while let Some((t, _)) = self.by_time.first() {
            if *t >= horizon {
                break;
            }
            if let Some((_, k)) = self.by_time.pop_first() {
                self.seen.remove(&k);
            }
        }
    }

    /// Number of remembered keys.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
