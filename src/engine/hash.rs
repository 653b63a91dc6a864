//! A fixed, seedless hasher (the Fx multiply-rotate hash) for maps keyed by trusted ids.

use core::hash::{BuildHasherDefault, Hasher};

/// Fx hash: fast on short keys, deterministic (no random seed in the core).
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let (words, rest) = bytes.as_chunks::<8>();
        for word in words {
            self.add(u64::from_le_bytes(*word));
        }
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf.iter_mut().zip(rest).for_each(|(b, r)| *b = *r);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map with [`FxHasher`].
pub type Map<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<FxHasher>>;
