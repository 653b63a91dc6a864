//! Sync between edges and the hub (SPEC §7): signed snapshots, quota leases with cumulative
//! grow-only counters, and the messages that carry them.

pub mod signed;

pub mod edge;
mod edge_state;
pub mod escrow;
pub mod message;

pub use edge::{EdgeLeases, Queued, QueuedUse, Refusal};
pub use escrow::{Escrow, Policy, Reporter, Terms};
pub use message::{LeaseGrant, LeaseKey, LeaseReport, Mode, SyncRequest, SyncResponse, CONSUME_EVENT, WALLET_KEY};
