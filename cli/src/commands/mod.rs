//! One module per subcommand: its options (a clap `Args` struct) and what it does.

pub mod hub;
pub mod invoice;
pub mod keys;
pub mod quote;
pub mod rate;
pub mod validate;
