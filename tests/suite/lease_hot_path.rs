//! The hot path of an edge allocates nothing: `consume` on a hard limit with `leases: true`
//! (the lease check, the use taken from the lease, the use queued for the hub) counted by a
//! global allocator that tallies the allocations of each thread (the suite's other tests run on
//! other threads of the same binary at the same time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::json;
use tollgate::engine::{Engine, Options};
use tollgate::time::Timestamp;
use tollgate::Decimal;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a const-initialised `Cell`: counting allocates nothing).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down still allocates; it is simply not counted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn consume_with_leases_allocates_nothing_once_warm() {
    let snapshot: serde_json::Value = serde_json::from_str(include_str!("../data/leased-snapshot.json")).unwrap();
    let now = Timestamp::parse("2026-11-10T00:00:00Z").unwrap();
    let mut e = Engine::from_snapshot(&snapshot, Options::default()).unwrap();
    e.enable_leases("fra-1", "boot-1");
    let sync = |e: &mut Engine| {
        let request = e.sync_request(now).unwrap().unwrap();
        let response = json!({ "ackSeq": request.seq, "leases": [{ "customerId": "cus_acme", "key": "api-calls",
            "period": "2026-11-01T00:00:00Z", "granted": "1000", "ttlMs": 3_600_000, "mode": "normal" }] });
        e.apply_sync(&response, now).unwrap();
    };
    let _ = e.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
    sync(&mut e);
    // Warm: the queue grows to its working size once, then a sync empties it (keeping capacity).
    for _ in 0..300 {
        assert!(e.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap().allowed);
    }
    sync(&mut e);
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..300 {
        let d = e.consume("cus_acme", "api-calls", Decimal::ONE, None, now).unwrap();
        assert!(d.allowed);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(allocations, 0, "consume with leases allocated {allocations} times in 300 calls");
}
