//! Sync between edges and the hub (SPEC §7): signed snapshots, quota leases with cumulative
//! grow-only counters, and the messages that carry them.

pub mod signed;
