//! Idempotency memory: the first result of each `(source, id)`, kept for a window of event time
//! and up to a number of entries, so that memory stays bounded.
//!
//! The memory is honest about what it forgot: [`Dedupe::horizon`] is the oldest event time it
//! still answers for. A key absent from the memory whose time is at or after the horizon was
//! never inserted; at an older time, it may have been inserted and forgotten (by the window or
//! by the size cap), so a caller must not treat it as new (the edge refuses it as
//! `event_too_old`, the hub asks its ledger).

use alloc::collections::BTreeSet;
use alloc::string::String;
use core::hash::{Hash, Hasher};
use serde_json::Value;

use super::hash::Map;
use crate::metering::Event;
use crate::time::Timestamp;

/// What a repeat of an event must carry to be the same request: its `subject`, `type` and
/// `data`, hashed (its `time` may differ: an event without one takes the time it arrives).
pub fn payload_print(event: &Event) -> u64 {
    super::hash::print(&Payload(event))
}

/// An event's payload, hashed as [`payload_print`] says.
struct Payload<'a>(&'a Event);

impl Hash for Payload<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.subject.hash(h);
        self.0.kind.hash(h);
        hash_value(&self.0.data, h);
    }
}

/// Hashes a JSON value by its structure: object keys in their (sorted) order, numbers by their
/// exact text.
fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(1 + u8::from(*b)),
        Value::Number(n) => {
            h.write_u8(3);
            n.as_str().hash(h);
        }
        Value::String(s) => {
            h.write_u8(4);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(5);
            h.write_usize(items.len());
            items.iter().for_each(|x| hash_value(x, h));
        }
        Value::Object(map) => {
            h.write_u8(6);
            h.write_usize(map.len());
            for (k, x) in map {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

/// How long (in event time, before `now`) results are remembered by default: 35 days, which
/// covers the current and the previous monthly period.
pub const DEFAULT_WINDOW_MS: i64 = 35 * 86_400_000;

/// How many results are remembered at most by default (per memory: events, and `consume` ids):
/// 100,000, about 28 MB at the ~280 B per entry measured (an edge isolate may have 128 MB).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Remembered results by idempotency key.
#[derive(Clone, Debug)]
pub struct Dedupe<V> {
    window_ms: i64,
    max_entries: usize,
    /// The event time just above the newest entry forgotten so far (`Timestamp(i64::MIN)` while
    /// nothing was): every forgotten entry is older than this.
    forgotten_below: Timestamp,
    seen: Map<String, (Timestamp, V)>,
    by_time: BTreeSet<(Timestamp, String)>,
}

impl<V> Dedupe<V> {
    /// An empty memory keeping `window_ms` of event time and at most [`DEFAULT_MAX_ENTRIES`].
    pub fn new(window_ms: i64) -> Self {
        Self::bounded(window_ms, DEFAULT_MAX_ENTRIES)
    }

    /// An empty memory keeping `window_ms` of event time and at most `max_entries` keys (the
    /// oldest by event time are forgotten first; with 0, nothing is kept), its table keyed with
    /// a fixed seed.
    pub fn bounded(window_ms: i64, max_entries: usize) -> Self {
        Self::seeded(window_ms, max_entries, 0)
    }

    /// [`Dedupe::bounded`] with its table keyed with `seed` (ids come from outside).
    pub fn seeded(window_ms: i64, max_entries: usize, seed: u64) -> Self {
        Dedupe {
            window_ms,
            max_entries,
            forgotten_below: Timestamp(i64::MIN),
            seen: super::hash::seeded(seed),
            by_time: BTreeSet::new(),
        }
    }

    /// The key of `(source, id)`.
    pub fn key(source: &str, id: &str) -> String {
        let mut k = String::with_capacity(source.len() + id.len() + 1);
        k.push_str(source);
        k.push('\u{1f}');
        k.push_str(id);
        k
    }

    /// The oldest event time still remembered at `now`: `max(now − window, t + 1)` where `t` is
    /// the time of the newest entry forgotten so far (by the window or the size cap). A key
    /// inserted at a time at or after the horizon is still here; an older event cannot be
    /// deduplicated (it may have been forgotten).
    pub fn horizon(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.0.saturating_sub(self.window_ms)).max(self.forgotten_below)
    }

    /// The first result for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.seen.get(key).map(|(_, v)| v)
    }

    /// Remembers `value` for `key` (replacing what `key` had), then forgets what fell out of the
    /// window at `now` and, while more than the cap are kept, the oldest entries by event time.
    pub fn insert(&mut self, key: String, time: Timestamp, value: V, now: Timestamp) {
        if let Some((before, _)) = self.seen.insert(key.clone(), (time, value)) {
            // Rare (callers look a key up before inserting it): drop its old position.
            self.by_time.remove(&(before, key.clone()));
        }
        self.by_time.insert((time, key));
        let window = Timestamp(now.0.saturating_sub(self.window_ms));
        while let Some((t, _)) = self.by_time.first() {
            if *t >= window && self.by_time.len() <= self.max_entries {
                break;
            }
            if let Some((t, k)) = self.by_time.pop_first() {
                self.seen.remove(&k);
                self.forgotten_below = self.forgotten_below.max(Timestamp(t.0.saturating_add(1)));
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
