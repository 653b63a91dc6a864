//! The engine's id tables spread ids evenly whatever they look like (issue 17, item 1): the
//! 400,000 sequential ids `evt-<n>` that piled into 32 of 2^19 buckets under the old unkeyed
//! hasher, ids that differ only deep inside a long shared prefix, and ids that differ only in
//! the high bits of their last 8-byte word (what an unkeyed multiplicative hash keeps out of its
//! low bits). Buckets are what hashbrown probes first: the low 19 bits of the hash, for a table
//! of 2^19 slots (the size 400,000 keys grow it to).

use std::hash::BuildHasher;

use tollgate::engine::seeded_map;

const IDS: usize = 400_000;
const BITS: u32 = 19;

/// Distinct buckets used and the fullest bucket's load, for `ids` under the table key `seed`.
fn spread(seed: u64, ids: impl Iterator<Item = String>) -> (usize, u32) {
    let map = seeded_map::<String, ()>(seed);
    let mut load = vec![0u32; 1 << BITS];
    for id in ids {
        let bucket = (map.hasher().hash_one(&id) & ((1 << BITS) - 1)) as usize;
        load[bucket] += 1;
    }
    (load.iter().filter(|&&n| n > 0).count(), load.iter().copied().max().unwrap_or(0))
}

/// For n keys in m buckets at random: m·(1 − (1 − 1/m)^n) distinct buckets are expected
/// (279,747 for 400,000 in 2^19), and the fullest holds about 9.
fn assert_even(name: &str, (distinct, fullest): (usize, u32)) {
    assert!(distinct >= 270_000, "{name}: {distinct} of 2^19 buckets used (about 279,700 expected at random)");
    assert!(fullest <= 14, "{name}: a bucket holds {fullest} ids (about 9 expected at random)");
}

#[test]
fn sequential_and_adversarial_ids_spread_evenly() {
    for seed in [0, 0x9e37_79b9_7f4a_7c15, u64::MAX] {
        assert_even("evt-<n>", spread(seed, (0..IDS).map(|n| format!("evt-{n}"))));
        let prefix = "x".repeat(200);
        assert_even("a long shared prefix", spread(seed, (0..IDS).map(|n| format!("cus_{prefix}{n:08}"))));
        // 8-byte ids whose first four bytes are equal: they differ only in bits 32 to 63 of the
        // one word they hash as.
        assert_even(
            "high bits of the last word",
            spread(
                seed,
                (0..IDS as u32).map(|n| {
                    let b = n.to_be_bytes();
                    String::from_utf8_lossy(&[
                        b'e',
                        b'v',
                        b't',
                        b'-',
                        0x30 + b[1] % 64,
                        0x30 + b[2] % 64,
                        0x30 + b[3] % 64,
                        0x30 + (b[3] / 64) + 4 * (b[2] / 64) + 16 * (b[1] / 64),
                    ])
                    .into_owned()
                }),
            ),
        );
    }
}

#[test]
fn the_key_changes_where_ids_land() {
    // The same id lands elsewhere under another key: a set crafted against one key does not
    // carry over to the table of a hub or an isolate that drew another.
    let a = seeded_map::<String, ()>(1);
    let b = seeded_map::<String, ()>(2);
    let moved = (0..1000).filter(|n| {
        let id = format!("evt-{n}");
        a.hasher().hash_one(&id) & ((1 << BITS) - 1) != b.hasher().hash_one(&id) & ((1 << BITS) - 1)
    });
    assert!(moved.count() >= 990);
}
