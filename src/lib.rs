//! Tollgate: an entitlement and pricing engine for the edge.
//!
//! The core is `#![no_std]` + `alloc` when the `std` feature is off, and never does I/O, reads a
//! clock or draws random numbers: time and ids come from the caller. Data flows one way:
//! catalog → pricing → billing (see `ARCHITECTURE.md`).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod billing;
pub mod catalog;
pub mod customer;
pub mod engine;
pub mod entitlements;
pub mod error;
pub mod json;
pub mod metering;
pub mod money;
pub mod pricing;
pub mod sync;
pub mod time;

pub use catalog::{validate, Catalog};
pub use error::{Code, Error, Result};
pub use money::{Currency, Decimal};
