//! Snapshots (SPEC §7): `{ snapshotVersion, issuedAt, expiresAt?, catalog, customers, leases }`
//! decoded and validated as one unit, so a bad one changes nothing; and how an engine takes one
//! in: never an older one (`stale_snapshot` at `/snapshotVersion`), never one already expired
//! when a time is given (`stale_snapshot` at `/expiresAt`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use serde_json::Value;

use super::hash::Map;
use super::{instant_metrics, CustomerState, Engine, Options};
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
    /// The first instant at which the snapshot may no longer be applied (`expiresAt`); `None`:
    /// it never expires (a snapshot without the field, or with `null`).
    pub expires_at: Option<Timestamp>,
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
        let expires_at = f.opt_timestamp("expiresAt");
        if let (Some(issued), Some(expires)) = (issued_at, expires_at) {
            if expires <= issued {
                f.fail("expiresAt", Code::InvalidValue, "expiresAt must be later than issuedAt");
            }
        }
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
            Some(catalog) if problems.is_empty() => {
                Ok(Snapshot { snapshot_version, issued_at, expires_at, catalog, customers })
            }
            _ => Err(problems),
        }
    }

    /// Whether the snapshot has expired at `now` (`expiresAt` ≤ `now`; never without one).
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// `stale_snapshot` at `/expiresAt` when the snapshot has expired at `now`.
    pub fn check_unexpired(&self, now: Timestamp) -> Result<(), Error> {
        match self.expires_at {
            Some(t) if t <= now => {
                let message = alloc::format!(
                    "the snapshot expired at {}, at or before now ({}): fetch a newer one",
                    t.to_rfc3339(),
                    now.to_rfc3339()
                );
                Err(Error::new(Code::StaleSnapshot, "/expiresAt", message))
            }
            _ => Ok(()),
        }
    }
}

impl Engine {
    /// [`Engine::from_snapshot`] at `now`: also refuses a snapshot that has expired by then
    /// (`stale_snapshot` at `/expiresAt`). A snapshot without `expiresAt` never expires.
    pub fn from_snapshot_at(value: &Value, options: Options, now: Timestamp) -> Result<Engine, Vec<Error>> {
        let snap = Snapshot::open(value, options.hub_public_key.as_ref())?;
        snap.check_unexpired(now).map_err(|e| alloc::vec![e])?;
        Ok(Engine::from_opened(snap, options))
    }

    /// [`Engine::apply_snapshot`] at `now`: also refuses, changing nothing, a snapshot that has
    /// expired by then (`stale_snapshot` at `/expiresAt`). A snapshot without `expiresAt` never
    /// expires. What the engine already holds is never torn down when its own expiry passes: it
    /// goes on deciding until the host gives it a newer snapshot.
    pub fn apply_snapshot_at(&mut self, value: &Value, now: Timestamp) -> Result<(), Vec<Error>> {
        let snap = Snapshot::open(value, self.hub_public_key.as_ref())?;
        self.install_snapshot(snap, Some(now))
    }

    /// The `expiresAt` of the snapshot the engine holds (`None`: it never expires). Only for the
    /// host to see: the engine goes on deciding after it passes, and it is checked only when a
    /// snapshot is taken in with a time ([`Engine::apply_snapshot_at`], [`Engine::apply_sync`],
    /// [`Engine::from_snapshot_at`]). A host that wants to stop serving on an expired snapshot
    /// compares it with its clock and fetches a newer one.
    pub fn snapshot_expires_at(&self) -> Option<Timestamp> {
        self.snapshot_expires_at
    }

    /// An engine over a decoded snapshot.
    pub(super) fn from_opened(snap: Snapshot, options: Options) -> Engine {
        let mut engine = Engine::new(snap.catalog, options);
        engine.snapshot_version = snap.snapshot_version;
        engine.snapshot_expires_at = snap.expires_at;
        for c in snap.customers {
            engine.put_customer(c);
        }
        engine
    }

    /// Takes a decoded snapshot in place of the catalog and customers, keeping what happened so
    /// far, unless it is older than the one held (`stale_snapshot` at `/snapshotVersion`) or,
    /// given `now`, expired (`stale_snapshot` at `/expiresAt`); then nothing changes.
    pub(super) fn install_snapshot(&mut self, snap: Snapshot, now: Option<Timestamp>) -> Result<(), Vec<Error>> {
        // Snapshots only move forward: an older one (validly signed or not) would roll back
        // catalogs and customers — an ended subscription could come back.
        if snap.snapshot_version < self.snapshot_version {
            let message = alloc::format!(
                "snapshot version {} is older than the version {} this engine holds",
                snap.snapshot_version,
                self.snapshot_version
            );
            return Err(alloc::vec![Error::new(Code::StaleSnapshot, "/snapshotVersion", message)]);
        }
        if let Some(now) = now {
            snap.check_unexpired(now).map_err(|e| alloc::vec![e])?;
        }
        self.instant = instant_metrics(&snap.catalog);
        self.data_priced = super::data_priced_metrics(&snap.catalog);
        let old_catalog = core::mem::replace(&mut self.catalog, Arc::new(snap.catalog));
        self.feature_types = super::hash::seeded(self.hash_seed);
        for f in &self.catalog.features {
            self.feature_types.entry(Arc::from(f.key.as_str())).or_insert(f.kind);
        }
        let mut old: Map<alloc::string::String, CustomerState> = super::hash::seeded(self.hash_seed);
        old.extend(self.customers.drain(..).map(|s| (s.customer.id.clone(), s)));
        self.by_id.clear();
        for customer in snap.customers {
            let generation = self.next_generation();
            let state = match old.remove(&customer.id) {
                Some(prev) => prev.redefine(&old_catalog, &self.catalog, customer, generation),
                None => CustomerState::new(&self.catalog, customer, generation),
            };
            self.by_id.insert(state.customer.id.clone(), self.customers.len());
            self.customers.push(state);
        }
        self.snapshot_version = snap.snapshot_version;
        self.snapshot_expires_at = snap.expires_at;
        Ok(())
    }
}
