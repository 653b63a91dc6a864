//! Reads: entitlements, the wallet and the running invoice, as the hub's engine has them.

use serde_json::json;

use super::leases::overflow;
use super::{no_customer, HubError, HubState, Reply};
use tollgate::error::Code;
use tollgate::money::add;
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

    /// `GET /v1/customers/{id}/wallet`: the wallet as the hub's ledger has it: balance = funded
    /// − debited (every real-time charge recorded so far, from edges and the hub alike).
    pub fn wallet(&self, id: &str) -> Result<Reply, HubError> {
        let Some(engine) = self.engine.as_ref() else { return Err(no_customer(id)) };
        let Some(state) = engine.customer(id) else { return Err(no_customer(id)) };
        let Some(w) = &state.wallet else {
            return Err(HubError::new(Code::UnknownReference, "/customerId", "the customer has no wallet"));
        };
        let funded = add(w.balance, w.debited).map_err(|_| HubError::One(overflow("")))?;
        Reply::json(
            200,
            &json!({ "customerId": id, "currency": w.currency.code(), "balance": w.currency.format(w.balance),
                "creditLimit": w.currency.format(w.credit_limit), "funded": w.currency.format(funded),
                "debited": w.currency.format(w.debited) }),
        )
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
