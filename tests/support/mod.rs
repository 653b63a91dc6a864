//! Code shared by the integration tests (a directory module, so cargo does not build it as a
//! test crate of its own). Each test crate uses part of it: `#[allow(dead_code)] mod support;`.

pub mod hub_harness;
