//! The seeded simulations, in one test binary run in release (`make test-sim`): many edges and
//! one hub over a faulty network (`sync_simulation`), and the real hub's state, store and group
//! commit crashed at random points (`hub_simulation`).

mod hub_simulation;
mod sync_simulation;
