//! Load benchmark of the hub's `/v1/sync` (written next).
fn main() {}
