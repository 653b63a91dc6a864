//! Start-up: the history replayed into a new engine, the escrow and the documents loaded, a
//! seed put into an empty hub.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{first_problem, text, Documents, HubState, Leases, Setup, StartReport};
use crate::store::{CatalogRow, Changes, CustomerChange, CustomerRow, Loaded, Record, Replay, Store, StoreError};
use tollgate::error::{Code, Error};
use tollgate::json::parse;
use tollgate::sync::signed::KeyPair;
use tollgate::time::Timestamp;

/// Why a start failed.
enum Unusable {
    /// The stored checkpoint does not fit this build's engine: replay the whole history.
    Checkpoint(String),
    /// Anything else.
    Other(String),
}

impl From<String> for Unusable {
    fn from(why: String) -> Self {
        Unusable::Other(why)
    }
}

impl From<Unusable> for String {
    fn from(u: Unusable) -> Self {
        match u {
            Unusable::Checkpoint(why) | Unusable::Other(why) => why,
        }
    }
}

fn parse_stored(json: &str, what: &str) -> Result<Value, String> {
    parse(json).map_err(|e| format!("stored {what} is not JSON: {e}"))
}

impl HubState {
    /// Loads the state from `store`: the definitions, the latest checkpoint and the history
    /// after it (all of it with [`Replay::Full`], or when the checkpoint does not fit) go into a
    /// new engine, leases into the escrow. Returns the state and the changes start-up itself
    /// makes (a generated key, a seed, the closing of the hub's leases of earlier runs, a
    /// checkpoint when one is due), which the caller applies before serving.
    pub fn load(
        store: &mut dyn Store,
        setup: Setup,
        now: Timestamp,
    ) -> Result<(HubState, Changes, StartReport), String> {
        match Self::load_from(store, setup.clone(), setup.replay, now) {
            Err(Unusable::Checkpoint(why)) => {
                eprintln!("tollgate hub: {why}; replaying the whole history instead");
                let (state, changes, mut report) =
                    Self::load_from(store, setup, Replay::Full, now).map_err(String::from)?;
                report.checkpoint_refused = Some(why);
                Ok((state, changes, report))
            }
            loaded => loaded.map_err(String::from),
        }
    }

    fn load_from(
        store: &mut dyn Store,
        setup: Setup,
        replay: Replay,
        now: Timestamp,
    ) -> Result<(HubState, Changes, StartReport), Unusable> {
        let placeholder = KeyPair::from_seed(&setup.key_seed, None).map_err(|e| e.to_string())?;
        let mut state = HubState {
            engine: None,
            leases: Leases::new(setup.policy, setup.boot_id.clone(), now),
            docs: Documents::new(placeholder.clone(), setup.snapshot_ttl_ms, now),
            late: HashMap::new(),
            seq: 0,
            max_future_ms: setup.max_future_ms,
            hash_seed: setup.hash_seed,
            tokens: BTreeMap::new(),
            keyring: setup.keyring.clone(),
            ticket: 0,
            checkpoint_every: setup.checkpoint_every,
            checkpoint_seq: 0,
        };
        let mut report = StartReport::default();
        let mut refused = None;
        let loaded: Loaded = store
            .load(replay, &mut |record| match record {
                Record::Checkpoint(row) => {
                    state.restore_checkpoint(&row).inspect_err(|why| refused = Some(why.clone()))
                }
                record => state.replay(record, &mut report),
            })
            .map_err(|e: StoreError| match refused.take() {
                Some(why) => Unusable::Checkpoint(why),
                None => Unusable::Other(format!("cannot read the database: {e}")),
            })?;
        report.checkpoint = (state.checkpoint_seq > 0).then_some(state.checkpoint_seq);
        state.seq = loaded.last_seq;
        report.position = loaded.position;
        let mut changes = Changes::default();

        // The signing key: --key, else the stored one, else a new one (kept).
        state.docs.key = match (setup.key, loaded.meta.get("signing_key")) {
            (Some(k), _) => k,
            (None, Some(stored)) => {
                let v = parse_stored(stored, "signing key")?;
                KeyPair::from_value(&v).map_err(|e| format!("the stored signing key is unusable: {e}"))?
            }
            (None, None) => {
                report.key_generated = true;
                changes.meta.push(("signing_key".into(), text(&placeholder.to_value())));
                placeholder
            }
        };

        // The escrow, from the stored leases.
        state.leases.restore(&loaded, setup.shared, &mut changes)?;
        state.restore_tokens(loaded.tokens)?;
        for row in loaded.topups {
            state.docs.topups.insert(row.idempotency_key.clone(), row);
        }
        // Closed invoices, in the order they closed: the engine takes back what each billed,
        // so late usage is billed as the difference after a restart too.
        let mut invoices = loaded.invoices;
        invoices.sort_by_key(|row| row.closed_at);
        for row in invoices {
            if let (Some(engine), Ok(doc)) = (state.engine.as_mut(), serde_json::from_str::<Value>(&row.json)) {
                engine.restore_closed(&row.customer_id, &doc);
            }
            let key = (row.customer_id, row.subscription_id, row.period_start);
            state.docs.invoices.insert(key, Arc::new(row.json.into_bytes()));
        }

        // A seed goes into an empty hub only.
        if let Some(seed) = setup.seed {
            if state.docs.catalog.is_none() && state.docs.customers.is_empty() {
                state.seed(seed, now, &mut changes, &mut report)?;
                report.seeded = true;
            }
        }
        state.add_checkpoint_if_due(&mut changes, now);
        Ok((state, changes, report))
    }

    /// Applies one record of the stored history.
    pub(super) fn replay(&mut self, record: Record, report: &mut StartReport) -> Result<(), String> {
        match record {
            Record::Catalog(row) => {
                let catalog = parse_stored(&row.json, "catalog")?;
                let sv = u64::try_from(row.snapshot_version).unwrap_or(0);
                // The pins this change wrote follow as customer records; applied here too, so
                // the catalog loads with the customers it was accepted with.
                let pinned = self.pins_for(&catalog, Timestamp(row.created_at));
                self.install_pinned(&catalog, sv, &pinned).map_err(|errors| {
                    format!("stored catalog version {} no longer loads: {}", row.version, first_problem(&errors))
                })?;
                self.docs.catalog = Some(catalog);
                self.docs.catalog_version = u64::try_from(row.version).unwrap_or(0);
                self.docs.snapshot_version = sv;
                self.docs.issued_at = Timestamp(row.created_at);
            }
            Record::Customer(row) => {
                let customer = parse_stored(&row.json, "customer")?;
                self.define_customer(&customer, row.kind).map_err(|errors| {
                    format!(
                        "stored customer {:?} (seq {}) no longer loads: {}",
                        row.id,
                        row.seq,
                        first_problem(&errors)
                    )
                })?;
                self.docs.customers.insert(row.id, customer);
                self.docs.snapshot_version = u64::try_from(row.snapshot_version).unwrap_or(0);
                self.docs.issued_at = Timestamp(row.created_at);
            }
            Record::Checkpoint(row) => self.restore_checkpoint(&row)?,
            Record::Event(row) => {
                let event = parse_stored(&row.json, "event")?;
                report.events += 1;
                let recorded = match self.engine.as_mut() {
                    Some(engine) => engine.record(&event, Timestamp(row.received_at)).map(|_| ()),
                    None => Err(Error::new(Code::Conflict, "", "no catalog")),
                };
                if let Err(e) = recorded {
                    report.skipped_events += 1;
                    eprintln!("tollgate hub: stored event {}/{} not recorded: {e}", row.source, row.id);
                }
            }
        }
        Ok(())
    }

    fn seed(
        &mut self,
        seed: Value,
        now: Timestamp,
        changes: &mut Changes,
        report: &mut StartReport,
    ) -> Result<(), String> {
        let seed = tollgate::sync::signed::open_value(seed, None).map_err(|e| format!("--seed: {e}"))?;
        tollgate::engine::Snapshot::from_value(&seed)
            .map_err(|errors| format!("--seed: {}", first_problem(&errors)))?;
        let mut catalog = seed.get("catalog").cloned().unwrap_or(Value::Null);
        if let Value::Object(map) = &mut catalog {
            map.insert("catalogVersion".into(), json!(1));
        }
        let seq = self.next_seq();
        let row = CatalogRow { version: 1, json: text(&catalog), created_at: now.0, seq, snapshot_version: 1 };
        self.replay(Record::Catalog(row.clone()), report)?;
        changes.catalogs.push(row);
        for customer in seed.get("customers").and_then(Value::as_array).into_iter().flatten() {
            let id = customer.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let seq = self.next_seq();
            let row = CustomerRow {
                id,
                kind: CustomerChange::Put,
                json: text(customer),
                created_at: now.0,
                seq,
                snapshot_version: 1,
            };
            self.replay(Record::Customer(row.clone()), report)?;
            changes.customers.push(row);
        }
        Ok(())
    }
}
