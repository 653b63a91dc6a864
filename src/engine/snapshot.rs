//! Snapshots (SPEC §7): `{ snapshotVersion, issuedAt, catalog, customers, leases }` decoded
//! and validated as one unit, so a bad one changes nothing.

use alloc::vec::Vec;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::customer::Customer;
use crate::error::{Code, Error};
use crate::json::{Fields, Problems};
use crate::sync::signed::{self, Opened, PublicKey};
use crate::time::Timestamp;

/// A decoded, valid snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Version set by the hub.
    pub snapshot_version: u64,
    /// When the hub issued it.
    pub issued_at: Option<Timestamp>,
    /// The catalog.
    pub catalog: Catalog,
    /// Customers.
    pub customers: Vec<Customer>,
}

impl Snapshot {
    /// Decodes a snapshot received in either form, plain or signed (SPEC §7). With the hub's
    /// `key`, only a signed envelope whose signature matches is accepted.
    pub fn open(value: &Value, key: Option<&PublicKey>) -> Result<Snapshot, Vec<Error>> {
        match signed::open(value, key).map_err(|e| alloc::vec![e])? {
            Opened::Plain(v) => Snapshot::from_value(v),
            Opened::Signed { envelope, .. } => {
                let v = signed::parse_payload(&envelope.payload).map_err(|e| alloc::vec![e])?;
                Snapshot::from_value(&v).map_err(|errs| errs.into_iter().map(|e| e.under("/payload")).collect())
            }
        }
    }

    /// Decodes and validates; every problem has its path (`/customers/3/grants/0/amount`).
    pub fn from_value(value: &Value) -> Result<Snapshot, Vec<Error>> {
        let mut problems: Problems = Vec::new();
        let Some(mut f) = Fields::open(value, "", &mut problems) else { return Err(problems) };
        let snapshot_version = f.opt_decimal("snapshotVersion").and_then(|d| u64::try_from(d).ok()).unwrap_or(0);
        let issued_at = f.opt_str("issuedAt").and_then(|s| {
            let t = Timestamp::parse(&s);
            if t.is_none() {
                f.fail("issuedAt", Code::InvalidTimestamp, "issuedAt is not an RFC 3339 timestamp");
            }
            t
        });
        let catalog = f.req("catalog").and_then(|(v, _)| match Catalog::from_value(v) {
            Ok(c) => Some(c),
            Err(errs) => {
                for e in errs {
                    f.push(e.under("/catalog"));
                }
                None
            }
        });
        let mut customers = Vec::new();
        let mut ids = alloc::collections::BTreeSet::new();
        if let (Some(items), Some(catalog)) = (f.opt_array("customers"), catalog.as_ref()) {
            for (v, path) in items {
                if let Some(c) = Customer::decode(v, &path, catalog, f.problems()) {
                    if !ids.insert(c.id.clone()) {
                        f.push(Error::new(Code::DuplicateId, alloc::format!("{path}/id"), "customer id is used twice"));
                    }
                    customers.push(c);
                }
            }
        }
        // SPEC §7 allows an edge's opening leases here; this version hands leases out through
        // sync only, so the field is accepted and not read.
        f.opt("leases");
        f.finish();
        match catalog {
            Some(catalog) if problems.is_empty() => Ok(Snapshot { snapshot_version, issued_at, catalog, customers }),
            _ => Err(problems),
        }
    }
}
