//! Hash maps keyed by ids that come from outside (customer ids, event ids, `consume` ids):
//! foldhash, keyed with a seed the caller gives (the core draws no randomness: the hub seeds
//! from the OS, the npm package from the host's `crypto.getRandomValues`). Without a seed the
//! key is fixed, which is fine for keys the engine makes itself, not for ids an attacker picks.

use core::hash::{BuildHasher, Hash};

pub use foldhash::fast::FixedState;

/// A hash map hashed by foldhash with the state it was made with.
pub type Map<K, V> = hashbrown::HashMap<K, V, FixedState>;

/// An empty map keyed with `seed`.
pub fn seeded<K, V>(seed: u64) -> Map<K, V> {
    Map::with_hasher(FixedState::with_seed(seed))
}

/// A 64-bit print of `value` (foldhash's quality variant, fixed key): for telling requests
/// apart, not for a table an attacker could fill.
pub fn print<T: Hash + ?Sized>(value: &T) -> u64 {
    foldhash::quality::FixedState::default().hash_one(value)
}
