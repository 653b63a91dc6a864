//! Wallet top-ups: money added to a customer's prepaid wallet, written into their definition so
//! that whoever stores definitions (the hub) replays it as it was.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::Engine;
use crate::customer::Customer;
use crate::error::{Code, Error, Result};
use crate::money::{add, Currency};

/// A top-up that [`Engine::top_up`] applied.
#[derive(Clone, Debug, PartialEq)]
pub struct TopUp {
    /// The customer's new definition: the one given, with the wallet's balance (and currency)
    /// set. Storing it and giving it back to an engine (with
    /// [`Engine::adopt_wallet_definition`]) restores the wallet.
    pub customer: Value,
    /// The wallet's currency.
    pub currency: Currency,
    /// The running balance after the top-up.
    pub balance: Decimal,
}

/// A top-up amount, checked: it must be positive (`invalid_value` at `/amount`).
pub fn top_up_amount(amount: Decimal) -> Result<Decimal> {
    if amount <= Decimal::ZERO {
        return Err(Error::new(Code::InvalidValue, "/amount", "a top-up amount must be positive"));
    }
    Ok(amount)
}

impl Engine {
    /// Adds `amount` to the running balance of the wallet of the customer whose current
    /// definition (JSON) is `definition`; a customer without a wallet gets one in `currency`.
    /// The credit limit and offline mode stay as defined, and what was debited so far stays
    /// debited, so the wallet's lease budget grows by exactly `amount`. Nothing changes on
    /// error: `invalid_value` (`/amount` not positive, `/currency` not the wallet's),
    /// `missing_field` (`/currency` for a customer without a wallet), `unknown_currency`,
    /// `overflow`, `unknown_reference` (`/customerId` not in the engine).
    pub fn top_up(&mut self, definition: &Value, amount: Decimal, currency: Option<&str>) -> Result<TopUp> {
        let amount = top_up_amount(amount)?;
        let id = definition.get("id").and_then(Value::as_str).unwrap_or_default();
        if !self.by_id.contains_key(id) {
            return Err(Error::new(Code::UnknownReference, "/customerId", "no customer with this id"));
        }
        let defined = definition.get("wallet").and_then(|w| w.get("currency")).and_then(Value::as_str);
        let code = match (defined, currency) {
            (Some(w), Some(given)) if w != given => {
                return Err(Error::new(Code::InvalidValue, "/currency", format!("the wallet is in {w}, not {given}")));
            }
            (Some(w), _) => w,
            (None, Some(given)) => given,
            (None, None) => {
                let message = "the customer has no wallet yet: give the currency to open one";
                return Err(Error::new(Code::MissingField, "/currency", message));
            }
        };
        let Some(wallet_currency) = Currency::from_code(code) else {
            return Err(Error::new(Code::UnknownCurrency, "/currency", format!("{code:?} is not an ISO-4217 code")));
        };
        let running = self.wallet_balance(id).unwrap_or(Decimal::ZERO);
        let balance = add(running, amount)
            .map_err(|_| Error::new(Code::Overflow, "/amount", "the balance would be too large"))?;
        let mut customer = definition.clone();
        let mut wallet = match definition.get("wallet") {
            Some(Value::Object(w)) => w.clone(),
            _ => Map::new(),
        };
        wallet.insert("currency".into(), Value::String(code.to_string()));
        wallet.insert("balance".into(), Value::String(wallet_currency.format(balance)));
        if let Value::Object(map) = &mut customer {
            map.insert("wallet".into(), Value::Object(wallet));
        }
        let mut problems = Vec::new();
        let decoded = Customer::decode(&customer, "", &self.catalog, &mut problems);
        let decoded = match (decoded, problems.into_iter().next()) {
            (Some(c), None) => c,
            (_, Some(first)) => return Err(first),
            (None, None) => return Err(Error::new(Code::InvalidType, "", "a customer is a JSON object")),
        };
        self.put_customer(decoded);
        self.adopt_wallet_definition(id);
        Ok(TopUp { customer, currency: wallet_currency, balance })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Options;
    use crate::time::Timestamp;

    /// A prepaid plan (calls at 0.01 each, paid from the wallet) and `cus_acme` with 2.00.
    fn snapshot() -> Value {
        crate::json::parse(include_str!("../../tests/data/wallet-leased-snapshot.json")).unwrap()
    }

    fn engine() -> Engine {
        Engine::from_snapshot(&snapshot(), Options::default()).unwrap()
    }

    fn definition() -> Value {
        snapshot()["customers"][0].clone()
    }

    fn dec(s: &str) -> Decimal {
        crate::money::parse_decimal(s).unwrap()
    }

    #[test]
    fn a_top_up_adds_to_the_running_balance() {
        let now = Timestamp::parse("2026-11-10T00:00:00Z").unwrap();
        let mut engine = engine();
        // 2.00 defined; 5 calls at 0.01 debit 0.05: 1.95 left.
        assert!(engine.consume("cus_acme", "api-calls", Decimal::from(5), None, now).unwrap().allowed);
        assert_eq!(engine.wallet_balance("cus_acme"), Some(dec("1.95")));
        let done = engine.top_up(&definition(), dec("10.50"), Some("USD")).unwrap();
        // 1.95 + 10.50 = 12.45; funded 2.00 + 10.50 = 12.50, of which 0.05 debited.
        assert_eq!((done.balance, done.currency.code()), (dec("12.45"), "USD"));
        assert_eq!(done.customer["wallet"]["balance"], Value::String("12.45".into()));
        let wallet = engine.customer("cus_acme").unwrap().wallet.clone().unwrap();
        assert_eq!((wallet.balance, wallet.debited, wallet.budget()), (dec("12.45"), dec("0.05"), dec("12.50")));
        // The stored definition restores it in a new engine that saw the same usage.
        let mut replayed = engine_with_usage(now);
        replayed.upsert_customer(&done.customer).unwrap();
        replayed.adopt_wallet_definition("cus_acme");
        assert_eq!(replayed.wallet_balance("cus_acme"), Some(dec("12.45")));
    }

    fn engine_with_usage(now: Timestamp) -> Engine {
        let mut engine = engine();
        engine.consume("cus_acme", "api-calls", Decimal::from(5), None, now).unwrap();
        engine
    }

    #[test]
    fn a_refused_top_up_changes_nothing() {
        let mut engine = engine();
        let def = definition();
        let code = |r: Result<TopUp>| r.map(|_| ()).unwrap_err();
        let e = code(engine.top_up(&def, Decimal::ZERO, None));
        assert_eq!((e.code, e.path.as_str()), (Code::InvalidValue, "/amount"));
        let e = code(engine.top_up(&def, Decimal::ONE, Some("EUR")));
        assert_eq!((e.code, e.path.as_str()), (Code::InvalidValue, "/currency"));
        let mut bare = def.clone();
        bare.as_object_mut().unwrap().remove("wallet");
        let e = code(engine.top_up(&bare, Decimal::ONE, None));
        assert_eq!((e.code, e.path.as_str()), (Code::MissingField, "/currency"));
        let e = code(engine.top_up(&bare, Decimal::ONE, Some("XYZ")));
        assert_eq!(e.code, Code::UnknownCurrency);
        let mut stranger = def.clone();
        stranger["id"] = Value::String("cus_nobody".into());
        let e = code(engine.top_up(&stranger, Decimal::ONE, None));
        assert_eq!(e.code, Code::UnknownReference);
        assert_eq!(engine.wallet_balance("cus_acme"), Some(dec("2.00")));
    }

    #[test]
    fn a_top_up_opens_a_wallet() {
        let mut engine = engine();
        let mut bare = definition();
        bare.as_object_mut().unwrap().remove("wallet");
        engine.upsert_customer(&bare).unwrap();
        let done = engine.top_up(&bare, dec("3"), Some("USD")).unwrap();
        assert_eq!(done.customer["wallet"], serde_json::json!({ "currency": "USD", "balance": "3.00" }));
        assert_eq!(engine.wallet_balance("cus_acme"), Some(dec("3")));
    }
}
