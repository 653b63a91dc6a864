//! Reads: entitlements, the wallet and the running invoice, as the hub's engine has them.

use serde_json::{json, Value};

use super::documents::money_text;
use super::leases::overflow;
use super::{no_customer, HubError, HubState, Reply, MAX_LISTED};
use crate::store::TopUpRow;
use tollgate::engine::WalletState;
use tollgate::error::Code;
use tollgate::money::{add, plain};
use tollgate::time::Timestamp;

impl HubState {
    /// `GET /v1/customers/{id}/entitlements`: a decision for every feature the customer has.
    ///
    /// A hard-limit metered feature is judged on the hub's ledger (balance > 0), not on the
    /// hub's own lease: a read must not take a lease (see `Engine::entitlements_of_record`).
    pub fn entitlements(&mut self, id: &str, now: Timestamp) -> Result<Reply, HubError> {
        let Some(engine) = self.engine.as_mut() else { return Err(no_customer(id)) };
        if engine.customer(id).is_none() {
            return Err(no_customer(id));
        }
        let out = engine.entitlements_of_record(id, now)?;
        Reply::json(200, &json!({ "customerId": id, "entitlements": out }))
    }

    /// `GET /v1/customers/{id}`: the customer as stored (the definition last put, top-ups
    /// folded in), their wallet's figures, and what each of their grants has left.
    pub fn customer(&self, id: &str) -> Result<Reply, HubError> {
        let (Some(engine), Some(definition)) = (self.engine.as_ref(), self.docs.customers.get(id)) else {
            return Err(no_customer(id));
        };
        let Some(state) = engine.customer(id) else { return Err(no_customer(id)) };
        let wallet = state.wallet.as_ref().map(wallet_figures).transpose()?;
        let grants: Vec<Value> = state
            .access
            .iter()
            .filter_map(|a| Some((a.key.clone(), a.meter.as_ref()?)))
            .flat_map(|(key, meter)| {
                meter.buckets.iter().filter_map(move |b| {
                    let grant = b.id.strip_prefix("grant:")?;
                    Some(json!({ "id": grant, "featureKey": &*key, "amount": plain(b.amount), "remaining": plain(b.remaining) }))
                })
            })
            .collect();
        Reply::json(200, &json!({ "customer": definition, "wallet": wallet, "grants": grants }))
    }

    /// `GET /v1/customers/{id}/wallet`: the wallet as the hub's ledger has it: balance = funded
    /// − debited (every real-time charge recorded so far, from edges and the hub alike), the
    /// latest top-ups and what real-time prices debited, per price and period (newest first,
    /// [`MAX_LISTED`] of each at most, with their counts).
    pub fn wallet(&self, id: &str) -> Result<Reply, HubError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        let Some(state) = engine.customer(id) else { return Err(no_customer(id)) };
        let Some(w) = &state.wallet else {
            return Err(HubError::new(Code::UnknownReference, "/customerId", "the customer has no wallet"));
        };
        let mut body = wallet_figures(w)?;
        let mut topups: Vec<&TopUpRow> = self.docs.topups.values().filter(|t| t.customer_id == id).collect();
        topups.sort_by_key(|t| std::cmp::Reverse(t.seq));
        let mut debits: Vec<_> = state.instant.iter().filter(|(_, run)| !run.charged.is_zero()).collect();
        debits.sort_by_key(|((sub, price, start), _)| (std::cmp::Reverse(*start), sub.clone(), price.clone()));
        if let Some(map) = body.as_object_mut() {
            map.insert("customerId".into(), json!(id));
            map.insert("topUpCount".into(), json!(topups.len()));
            map.insert(
                "topUps".into(),
                topups
                    .iter()
                    .take(MAX_LISTED)
                    .map(|t| {
                        json!({ "idempotencyKey": t.idempotency_key, "amount": money_text(&t.amount, &t.currency),
                                "balance": money_text(&t.balance, &t.currency), "at": Timestamp(t.created_at).to_rfc3339() })
                    })
                    .collect(),
            );
            map.insert("debitCount".into(), json!(debits.len()));
            map.insert(
                "debits".into(),
                debits
                    .iter()
                    .take(MAX_LISTED)
                    .map(|((sub, price, start), run)| {
                        json!({ "subscriptionId": sub, "priceId": price, "periodStart": start.to_rfc3339(),
                                "events": run.events, "amount": w.currency.format(run.charged) })
                    })
                    .collect(),
            );
        }
        Reply::json(200, &body)
    }

    /// `GET /v1/customers/{id}/invoice`: the running bill at `at`.
    pub fn invoice_preview(&self, id: &str, at: Timestamp) -> Result<Reply, HubError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        if engine.customer(id).is_none() {
            return Err(no_customer(id));
        }
        let invoice = engine.invoice_preview(id, at).map_err(HubError::One)?;
        Reply::json(200, &invoice)
    }
}

/// A wallet's figures: `{ currency, balance, creditLimit, funded, debited }`.
fn wallet_figures(w: &WalletState) -> Result<Value, HubError> {
    let funded = add(w.balance, w.debited).map_err(|_| HubError::One(overflow("")))?;
    let c = w.currency;
    Ok(json!({ "currency": c.code(), "balance": c.format(w.balance), "creditLimit": c.format(w.credit_limit),
               "funded": c.format(funded), "debited": c.format(w.debited) }))
}
