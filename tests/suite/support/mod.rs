//! Code shared by the integration tests (a directory module, so cargo does not build it as a
//! test crate of its own). Each test module uses part of it.

pub mod hub_harness;

/// The repository root: the working directory of every `tollgate` run by the suite, so paths
/// such as `examples/llm-snapshot.json` read as in the docs.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
