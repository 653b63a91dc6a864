//! The functional suite in one test binary: the core through its public API, the `tollgate`
//! command and the hub binary on loopback (a member of the cli package, whose binary it drives;
//! see ARCHITECTURE.md). The seeded simulations are the other binary, `tests/simulation`.

mod billing_properties;
mod billing_refusals;
mod cli_rate;
mod consume_properties;
mod entitlements;
mod hash_spread;
mod hub;
mod hub_billing;
mod hub_checkpoints;
mod hub_multi;
mod hub_reads;
mod hub_security;
mod hub_tokens;
mod idempotency_bounds;
mod invoice_lifecycle;
mod invoice_totality;
mod invoices;
mod lease_hot_path;
mod leases;
mod metering;
mod price_models;
mod price_properties;
mod price_versions;
mod quote;
mod references;
mod signatures;
mod signed_sync;
mod snapshot_updates;
#[allow(dead_code, reason = "each test module uses part of the shared support")]
mod support;
mod validate_catalogs;
