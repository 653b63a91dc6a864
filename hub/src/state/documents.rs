//! The stored documents: catalog versions, customer definitions (grants and top-ups included),
//! closed invoices, and the signed snapshot built from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{first_problem, no_catalog, no_customer, text, HubError, HubState, Reply, Signed, HUB_EDGE, MAX_LISTED};
use crate::store::{CatalogRow, Changes, CustomerChange, CustomerRow, InvoiceRow, TopUpRow};
use tollgate::billing::InvoiceKind;
use tollgate::catalog::Catalog;
use tollgate::customer::{migrate, PriceChanges};
use tollgate::engine::{Engine, Options};
use tollgate::error::{Code, Error};
use tollgate::json::{parse, Fields};
use tollgate::money::{parse_decimal, plain};
use tollgate::sync::signed::KeyPair;
use tollgate::sync::SyncRequest;
use tollgate::time::Timestamp;

/// The documents the snapshot is built from, and what was stored besides them.
pub(super) struct Documents {
    /// The current catalog (none before the first).
    pub(super) catalog: Option<Value>,
    pub(super) catalog_version: u64,
    /// Each customer's current definition.
    pub(super) customers: BTreeMap<String, Value>,
    pub(super) snapshot_version: u64,
    /// When the current snapshot version was made.
    pub(super) issued_at: Timestamp,
    /// The signing key and the last snapshot it signed.
    pub(super) key: KeyPair,
    pub(super) signed: Option<Signed>,
    /// How long a signed snapshot stays valid (ms).
    pub(super) snapshot_ttl_ms: i64,
    /// Wallet top-ups by idempotency key.
    pub(super) topups: HashMap<String, TopUpRow>,
    /// Closed invoices (JSON) by (customer, subscription, period start).
    pub(super) invoices: HashMap<(String, String, i64), Arc<Vec<u8>>>,
}

impl Documents {
    /// No documents yet; `key` signs until another is loaded.
    pub(super) fn new(key: KeyPair, snapshot_ttl_ms: i64, now: Timestamp) -> Documents {
        Documents {
            catalog: None,
            catalog_version: 0,
            customers: BTreeMap::new(),
            snapshot_version: 0,
            issued_at: now,
            key,
            signed: None,
            snapshot_ttl_ms,
            topups: HashMap::new(),
            invoices: HashMap::new(),
        }
    }
}

/// Ids the hub's engine remembers (an older resend is looked up in the ledger).
const HUB_DEDUPE_ENTRIES: usize = 1_000_000;

/// Longest accepted idempotency key of a wallet top-up.
const MAX_IDEMPOTENCY_KEY: usize = 256;

fn topup_body(t: &TopUpRow, duplicate: bool) -> Value {
    json!({
        "customerId": t.customer_id,
        "idempotencyKey": t.idempotency_key,
        "amount": money_text(&t.amount, &t.currency),
        "currency": t.currency,
        "balance": money_text(&t.balance, &t.currency),
        "duplicate": duplicate,
    })
}

/// A stored amount (plain decimal text) written the one way wallet money is (decision 106).
pub(super) fn money_text(amount: &str, currency: &str) -> String {
    match (parse_decimal(amount), tollgate::money::Currency::from_code(currency)) {
        (Some(d), Some(c)) => c.format(d),
        _ => amount.to_string(),
    }
}

impl HubState {
    /// The snapshot as a value: version, issue time, catalog, customers.
    fn snapshot_value(&self, version: u64, issued_at: Timestamp, catalog: &Value) -> Value {
        let mut map = Map::new();
        map.insert("snapshotVersion".into(), json!(version));
        map.insert("issuedAt".into(), Value::String(issued_at.to_rfc3339()));
        map.insert("catalog".into(), catalog.clone());
        map.insert("customers".into(), Value::Array(self.docs.customers.values().cloned().collect()));
        Value::Object(map)
    }

    /// Loads `catalog` (with the current customers) into the engine; nothing changes on error.
    fn install_catalog(&mut self, catalog: &Value, version: u64) -> Result<(), Vec<Error>> {
        let snapshot = self.snapshot_value(version, self.docs.issued_at, catalog);
        match self.engine.as_mut() {
            Some(engine) => engine.apply_snapshot(&snapshot),
            None => {
                // The hub remembers more ids than an edge (it hears every edge) and applies its
                // own bound on future times.
                let options = Options {
                    dedupe_max_entries: HUB_DEDUPE_ENTRIES,
                    max_future_ms: self.max_future_ms,
                    // The ledger answers for every (source, id) first, whatever its age.
                    external_dedupe: true,
                    // Edges and the back office pick event and customer ids: a secret key.
                    hash_seed: self.hash_seed,
                    ..Options::default()
                };
                let mut engine = Engine::from_snapshot(&snapshot, options)?;
                engine.enable_leases(HUB_EDGE, self.leases.boot_id());
                engine.keep_wallets_of_record();
                self.engine = Some(engine);
                Ok(())
            }
        }
    }

    /// Gives the engine a customer's definition. A top-up sets the wallet to the definition's
    /// figure whatever it was before (the engine keeps a running balance when the figure does
    /// not change); what was debited so far stays debited, so the wallet's lease budget grows
    /// by exactly the top-up.
    pub(super) fn define_customer(&mut self, customer: &Value, kind: CustomerChange) -> Result<(), Vec<Error>> {
        let Some(engine) = self.engine.as_mut() else {
            return Err(vec![Error::new(Code::Conflict, "", "a customer was stored before any catalog")]);
        };
        engine.upsert_customer(customer)?;
        if kind == CustomerChange::TopUp {
            if let Some(id) = customer.get("id").and_then(Value::as_str) {
                engine.adopt_wallet_definition(id);
            }
        }
        Ok(())
    }

    /// Records a validated customer definition: a new snapshot version and its row (the
    /// arguments of [`Self::record_customer`], which it calls after opening that version).
    fn commit_customer(
        &mut self,
        id: &str,
        customer: Value,
        kind: CustomerChange,
        now: Timestamp,
        changes: &mut Changes,
    ) -> CustomerRow {
        self.docs.snapshot_version += 1;
        self.docs.issued_at = now;
        self.record_customer(id, customer, kind, now, changes)
    }

    /// Stores a customer definition under the current snapshot version (the pins of a catalog
    /// change share its version: one change, one snapshot).
    fn record_customer(
        &mut self,
        id: &str,
        customer: Value,
        kind: CustomerChange,
        now: Timestamp,
        changes: &mut Changes,
    ) -> CustomerRow {
        let seq = self.next_seq();
        let row = CustomerRow {
            id: id.into(),
            kind,
            json: text(&customer),
            created_at: now.0,
            seq,
            snapshot_version: i64::try_from(self.docs.snapshot_version).unwrap_or(i64::MAX),
        };
        self.docs.customers.insert(id.into(), customer);
        changes.customers.push(row.clone());
        row
    }

    /// The current snapshot, signed, valid until `expiresAt`. It is signed again (same version,
    /// same `issuedAt`) every half lifetime, so what the hub serves at `now` stays valid for at
    /// least half of `--snapshot-ttl-ms`; the same `(history, now)` always gives the same bytes.
    pub fn signed(&mut self, now: Timestamp) -> Option<Signed> {
        let catalog = self.docs.catalog.as_ref()?;
        let half = (self.docs.snapshot_ttl_ms / 2).max(1);
        let since = now.0.saturating_sub(self.docs.issued_at.0).max(0);
        let window = Timestamp(self.docs.issued_at.0.saturating_add(since - since % half));
        if let Some(s) = &self.docs.signed {
            if s.version == self.docs.snapshot_version && s.window == window {
                return Some(s.clone());
            }
        }
        let mut snapshot = self.snapshot_value(self.docs.snapshot_version, self.docs.issued_at, catalog);
        let expires = Timestamp(window.0.saturating_add(self.docs.snapshot_ttl_ms));
        snapshot["expiresAt"] = Value::String(expires.to_rfc3339());
        let payload = serde_json::to_vec(&snapshot).ok()?;
        let envelope = self.docs.key.seal(&payload);
        let text = serde_json::to_vec(&envelope).ok()?;
        let signed =
            Signed { version: self.docs.snapshot_version, window, text: Arc::new(text), value: Arc::new(envelope) };
        self.docs.signed = Some(signed.clone());
        Some(signed)
    }

    /// A sync reply signed for the edge run it answers (what an edge with the hub's public key
    /// requires), as the envelope `{ keyId, payload, signature }`.
    pub fn seal_sync_reply(&self, reply: Reply, req: &SyncRequest) -> Result<Reply, HubError> {
        let body = parse(&String::from_utf8_lossy(&reply.body)).map_err(HubError::One)?;
        let envelope = tollgate::sync::signed::seal_sync_response(&self.docs.key, body, &req.edge_id, &req.boot_id);
        Reply::json(reply.status, &envelope)
    }

    /// `PUT /v1/catalog`: a new catalog version, validated; the engine takes it with the current
    /// customers (a catalog that would invalidate a customer is refused: 409).
    pub fn put_catalog(&mut self, mut catalog: Value, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        let next = self.docs.catalog_version + 1;
        let Value::Object(map) = &mut catalog else {
            return Err(HubError::new(Code::InvalidType, "", "a catalog is a JSON object"));
        };
        // The same catalog again changes nothing (PUT is idempotent).
        if let Some(Value::Object(current)) = &self.docs.catalog {
            let mut a = current.clone();
            let mut b = map.clone();
            a.remove("catalogVersion");
            b.remove("catalogVersion");
            if a == b {
                let body = json!({ "catalogVersion": self.docs.catalog_version, "snapshotVersion": self.docs.snapshot_version });
                return Ok((Reply::json(200, &body)?, Changes::default()));
            }
        }
        map.insert("catalogVersion".into(), json!(next));
        Catalog::from_value(&catalog).map_err(HubError::List)?;
        let version = self.docs.snapshot_version + 1;
        let previous_issue = self.docs.issued_at;
        self.docs.issued_at = now;
        // Running subscriptions keep the price versions they had (their pins are stored below).
        let pinned = self.pins_for(&catalog, now);
        if let Err(errors) = self.install_pinned(&catalog, version, &pinned) {
            self.docs.issued_at = previous_issue;
            let ids: Vec<&String> = self.docs.customers.keys().collect();
            let problems = errors
                .iter()
                .map(|e| {
                    // /customers/<i>/… names the customer by position; say which.
                    let index =
                        e.path.strip_prefix("/customers/").and_then(|r| r.split('/').next()?.parse::<usize>().ok());
                    (e.clone(), index.and_then(|i| ids.get(i)).map(|id| (*id).clone()))
                })
                .collect();
            let conflict = Error::new(
                Code::Conflict,
                "",
                format!("the catalog is valid but would invalidate stored customers: {}", first_problem(&errors)),
            );
            return Err(HubError::Invalidates { conflict, problems });
        }
        self.docs.snapshot_version = version;
        self.docs.catalog_version = next;
        let seq = self.next_seq();
        let json = text(&catalog);
        self.docs.catalog = Some(catalog);
        let mut changes = Changes::default();
        changes.catalogs.push(CatalogRow {
            version: i64::try_from(next).unwrap_or(i64::MAX),
            json,
            created_at: now.0,
            seq,
            snapshot_version: i64::try_from(version).unwrap_or(i64::MAX),
        });
        let pinned_ids: Vec<String> = pinned.iter().map(|(id, _)| id.clone()).collect();
        for (id, customer) in pinned {
            self.record_customer(&id, customer, CustomerChange::Put, now, &mut changes);
        }
        let mut body = json!({ "catalogVersion": next, "snapshotVersion": self.docs.snapshot_version });
        if !pinned_ids.is_empty() {
            body["pinned"] = json!(pinned_ids);
        }
        Ok((Reply::json(200, &body)?, changes))
    }

    /// The customers whose running subscriptions keep their price versions under `catalog`:
    /// each with `pinnedPrices` added (the rule is the core's, `customer::pins`).
    pub(super) fn pins_for(&self, catalog: &Value, now: Timestamp) -> Vec<(String, Value)> {
        let Some(old) = &self.docs.catalog else { return Vec::new() };
        let changes = PriceChanges::between(old, catalog);
        if changes.is_empty() {
            return Vec::new();
        }
        self.docs.customers.iter().filter_map(|(id, c)| Some((id.clone(), changes.apply(c, now)?))).collect()
    }

    /// [`HubState::install_catalog`] with `pinned` customer definitions in place; on error the
    /// customers are as before.
    pub(super) fn install_pinned(
        &mut self,
        catalog: &Value,
        version: u64,
        pinned: &[(String, Value)],
    ) -> Result<(), Vec<Error>> {
        let saved: Vec<(String, Option<Value>)> =
            pinned.iter().map(|(id, c)| (id.clone(), self.docs.customers.insert(id.clone(), c.clone()))).collect();
        let result = self.install_catalog(catalog, version);
        if result.is_err() {
            for (id, before) in saved {
                match before {
                    Some(v) => self.docs.customers.insert(id, v),
                    None => self.docs.customers.remove(&id),
                };
            }
        }
        result
    }

    /// `POST /v1/customers/{id}/subscriptions/{sub}/migrate`: the subscription drops its pinned
    /// price versions and is billed at the catalog's current prices from now on.
    pub fn migrate_subscription(&mut self, id: &str, sub: &str, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        let Some(current) = self.docs.customers.get(id) else { return Err(no_customer(id)) };
        let updated = migrate(current, sub).map_err(HubError::One)?;
        let mut changes = Changes::default();
        if updated != *current {
            let engine = self.engine.as_mut().ok_or_else(no_catalog)?;
            engine.upsert_customer(&updated).map_err(HubError::List)?;
            self.commit_customer(id, updated, CustomerChange::Put, now, &mut changes);
        }
        let body = json!({ "id": id, "subscriptionId": sub, "snapshotVersion": self.docs.snapshot_version });
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `PUT /v1/customers/{id}`: defines or redefines a customer (usage so far is kept).
    pub fn put_customer(&mut self, id: &str, customer: Value, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        if !customer.is_object() {
            return Err(HubError::new(Code::InvalidType, "", "a customer is a JSON object"));
        }
        if let Some(Value::String(body_id)) = customer.get("id") {
            if body_id != id {
                return Err(HubError::new(
                    Code::InvalidValue,
                    "/id",
                    format!("the body's id {body_id:?} differs from the URL's {id:?}"),
                ));
            }
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let created = !self.docs.customers.contains_key(id);
        if self.docs.customers.get(id) == Some(&customer) {
            let body = json!({ "id": id, "created": false, "snapshotVersion": self.docs.snapshot_version });
            return Ok((Reply::json(200, &body)?, Changes::default()));
        }
        engine.upsert_customer(&customer).map_err(HubError::List)?;
        let mut changes = Changes::default();
        self.commit_customer(id, customer, CustomerChange::Put, now, &mut changes);
        let body = json!({ "id": id, "created": created, "snapshotVersion": self.docs.snapshot_version });
        Ok((Reply::json(if created { 201 } else { 200 }, &body)?, changes))
    }

    /// `POST /v1/customers/{id}/grants`: appends a grant to the customer's definition.
    pub fn add_grant(&mut self, id: &str, grant: Value, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        let Some(current) = self.docs.customers.get(id) else { return Err(no_customer(id)) };
        if !grant.is_object() {
            return Err(HubError::new(Code::InvalidType, "", "a grant is a JSON object"));
        }
        let grants = current.get("grants").and_then(Value::as_array);
        if let Some(grant_id) = grant.get("id").and_then(Value::as_str) {
            if grants.into_iter().flatten().any(|g| g.get("id").and_then(Value::as_str) == Some(grant_id)) {
                return Err(HubError::new(
                    Code::Conflict,
                    "/id",
                    format!("customer {id:?} already has a grant {grant_id:?}"),
                ));
            }
        }
        let index = grants.map_or(0, Vec::len);
        let mut customer = current.clone();
        match customer.get_mut("grants") {
            Some(Value::Array(list)) => list.push(grant.clone()),
            _ => customer["grants"] = json!([grant.clone()]),
        }
        let prefix = format!("/grants/{index}");
        let engine = self.engine.as_mut().ok_or_else(no_catalog)?;
        engine.upsert_customer(&customer).map_err(|errors| {
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    if let Some(rest) = e.path.strip_prefix(&prefix) {
                        if rest.is_empty() || rest.starts_with('/') {
                            e.path = rest.to_string();
                        }
                    }
                    e
                })
                .collect();
            HubError::List(errors)
        })?;
        let mut changes = Changes::default();
        self.commit_customer(id, customer, CustomerChange::Grant, now, &mut changes);
        let body = json!({ "customerId": id, "grant": grant, "snapshotVersion": self.docs.snapshot_version });
        Ok((Reply::json(201, &body)?, changes))
    }

    /// `POST /v1/customers/{id}/wallet`: adds `amount` to the wallet's running balance, once per
    /// idempotency key.
    pub fn top_up(&mut self, id: &str, body: &Value, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        let mut problems = Vec::new();
        let (amount, key, currency) = match Fields::open(body, "", &mut problems) {
            Some(mut f) => {
                let amount = f.decimal("amount");
                let key = f.str("idempotencyKey");
                let currency = f.opt_str("currency");
                f.finish();
                (amount, key, currency)
            }
            None => (None, None, None),
        };
        if !problems.is_empty() {
            return Err(HubError::List(problems));
        }
        let (Some(amount), Some(key)) = (amount, key) else {
            return Err(HubError::new(Code::MissingField, "", "amount and idempotencyKey are required"));
        };
        // Checked before the key, so a bad amount is reported first, whatever the key.
        let amount = tollgate::engine::top_up_amount(amount)?;
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(HubError::new(
                Code::InvalidValue,
                "/idempotencyKey",
                format!("an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} bytes"),
            ));
        }
        if let Some(done) = self.docs.topups.get(&key) {
            let same_currency = currency.as_deref().is_none_or(|c| c == done.currency);
            if done.customer_id == id && parse_decimal(&done.amount) == Some(amount) && same_currency {
                let body = topup_body(done, true);
                return Ok((Reply::json(200, &body)?, Changes::default()));
            }
            return Err(HubError::new(
                Code::IdempotencyMismatch,
                "/idempotencyKey",
                "this idempotency key was used for another top-up",
            ));
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let Some(current) = self.docs.customers.get(id) else { return Err(no_customer(id)) };
        let done = engine.top_up(current, amount, currency.as_deref())?;
        let mut changes = Changes::default();
        let row = self.commit_customer(id, done.customer, CustomerChange::TopUp, now, &mut changes);
        let topup = TopUpRow {
            idempotency_key: key.clone(),
            customer_id: id.into(),
            amount: plain(amount),
            currency: done.currency.code().to_string(),
            balance: plain(done.balance),
            created_at: now.0,
            seq: row.seq,
        };
        let body = topup_body(&topup, false);
        changes.topups.push(topup.clone());
        self.docs.topups.insert(key, topup);
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `GET /v1/customers/{id}/invoices`: every invoice up to `now` (advance and arrears, per
    /// period, oldest first; the latest [`MAX_LISTED`] periods), closed ones as stored.
    pub fn invoice_list(&self, id: &str, now: Timestamp) -> Result<Reply, HubError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        if engine.customer(id).is_none() {
            return Err(no_customer(id));
        }
        let docs = engine.invoice_list(id, now, MAX_LISTED).map_err(HubError::One)?;
        let mut listed = Vec::with_capacity(docs.len());
        for doc in docs {
            let start = Timestamp::parse(&doc.period_start).map_or(0, |t| t.0);
            let key = (id.to_string(), doc.subscription_id.clone(), start);
            let stored = match doc.kind {
                InvoiceKind::Arrears => {
                    self.docs.invoices.get(&key).and_then(|b| serde_json::from_slice::<Value>(b).ok())
                }
                InvoiceKind::Advance => None,
            };
            listed.push(stored.unwrap_or_else(|| serde_json::to_value(&doc).unwrap_or(Value::Null)));
        }
        Reply::json(200, &json!({ "customerId": id, "invoices": listed }))
    }

    /// `POST /v1/invoices/close`: the final arrears invoice of the billing period that contains
    /// `at`, once the period has ended (409 `period_open` before, unless the subscription
    /// ended); the same document every time.
    pub fn close_invoice(&mut self, body: &Value, now: Timestamp) -> Result<(Reply, Changes), HubError> {
        let mut problems = Vec::new();
        let (customer, at) = match Fields::open(body, "", &mut problems) {
            Some(mut f) => {
                let customer = f.str("customerId");
                let at = f.timestamp("at");
                f.finish();
                (customer, at)
            }
            None => (None, None),
        };
        if !problems.is_empty() {
            return Err(HubError::List(problems));
        }
        let (Some(customer), Some(at)) = (customer, at) else {
            return Err(HubError::new(Code::MissingField, "", "customerId and at are required"));
        };
        let Some(engine) = self.engine.as_mut() else { return Err(no_customer(&customer)) };
        if engine.customer(&customer).is_none() {
            return Err(no_customer(&customer));
        }
        let draft = engine.invoice_preview(&customer, at).map_err(HubError::One)?;
        let start = Timestamp::parse(&draft.period_start).map_or(0, |t| t.0);
        let key = (customer.clone(), draft.subscription_id.clone(), start);
        if let Some(done) = self.docs.invoices.get(&key) {
            return Ok((Reply { status: 200, body: done.clone(), etag: None }, Changes::default()));
        }
        let invoice = engine.close_invoice(&customer, at, now).map_err(HubError::One)?;
        let reply = Reply::json(200, &invoice)?;
        self.docs.invoices.insert(key.clone(), reply.body.clone());
        let mut changes = Changes::default();
        changes.invoices.push(InvoiceRow {
            customer_id: key.0,
            subscription_id: key.1,
            period_start: key.2,
            json: String::from_utf8_lossy(&reply.body).into_owned(),
            closed_at: now.0,
        });
        Ok((reply, changes))
    }
}
