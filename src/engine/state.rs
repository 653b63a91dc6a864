//! What the engine keeps per customer: their definition, their access per feature (indexed so
//! handles can point at it) and their usage per metric.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rust_decimal::Decimal;

use super::hash::Map;
use crate::billing::Invoice;
use crate::catalog::Catalog;
use crate::customer::Customer;
use crate::entitlements::{resolve, Access};
use crate::metering::MetricLedger;
use crate::money::Currency;
use crate::pricing::PercentageState;
use crate::time::Timestamp;

/// A customer with the state the engine keeps for them.
#[derive(Clone, Debug)]
pub struct CustomerState {
    /// As given.
    pub customer: Customer,
    /// Access per feature, in key order.
    pub access: Vec<Access>,
    /// Position in `access` by feature key.
    pub by_key: Map<Arc<str>, usize>,
    /// Usage per metric, by the metric's position in the catalog.
    pub ledgers: Vec<MetricLedger>,
    /// Unique within the engine for each state built, so handles to an older state are caught.
    pub generation: u32,
    /// Per-use rating state per (subscription, price, billing period start): instant prices
    /// and per-event prices in arrears.
    pub instant: BTreeMap<(String, String, Timestamp), InstantRun>,
    /// The prepaid wallet.
    pub wallet: Option<WalletState>,
    /// Closed invoices per (subscription, period start).
    pub closed: BTreeMap<(String, Timestamp), Invoice>,
    /// What each closed period billed so far (its invoice and later adjustments), per
    /// (subscription, period start): late usage is billed as the difference.
    pub billed: BTreeMap<(String, Timestamp), crate::billing::Billed>,
    /// The customer id, shared (queued uses hold it without copying).
    pub shared_id: Arc<str>,
    /// Per access (same positions): its lease key as last built, so the hot path of an edge
    /// does not build one per call (rebuilt when the usage period moves).
    pub lease_keys: Vec<Option<crate::sync::LeaseKey>>,
}

impl CustomerState {
    /// The state of a new customer (`generation` as the engine numbers it).
    pub fn new(catalog: &Catalog, customer: Customer, generation: u32) -> CustomerState {
        let access: Vec<Access> = resolve(catalog, &customer).into_values().collect();
        let by_key = access.iter().enumerate().map(|(i, a)| (a.key.clone(), i)).collect();
        let ledgers = alloc::vec![MetricLedger::default(); catalog.billable_metrics.len()];
        let wallet = customer.wallet.as_ref().map(|w| WalletState {
            currency: w.currency,
            balance: w.balance,
            defined: w.balance,
            debited: rust_decimal::Decimal::ZERO,
            credit_limit: w.credit_limit,
            offline_allowance: w.offline_allowance,
        });
        let shared_id = Arc::from(customer.id.as_str());
        let lease_keys = alloc::vec![None; access.len()];
        CustomerState {
            shared_id,
            lease_keys,
            customer,
            access,
            by_key,
            ledgers,
            generation,
            instant: BTreeMap::new(),
            wallet,
            closed: BTreeMap::new(),
            billed: BTreeMap::new(),
        }
    }

    /// The state for a redefined customer (under `catalog`, which replaces `old_catalog`): the
    /// usage so far survives — ledgers follow their metric by id, balances are rebuilt from the
    /// new grants minus what was already used of each.
    pub fn redefine(
        self,
        old_catalog: &Catalog,
        catalog: &Catalog,
        customer: Customer,
        generation: u32,
    ) -> CustomerState {
        let mut next = CustomerState::new(catalog, customer, generation);
        for new in &mut next.access {
            let old = self.by_key.get(&new.key).and_then(|&i| self.access.get(i)?.meter.as_ref());
            if let (Some(m), Some(old_m)) = (&mut new.meter, old) {
                m.carry_over(old_m);
            }
        }
        let mut old_ledgers = self.ledgers;
        for (ledger, metric) in next.ledgers.iter_mut().zip(&catalog.billable_metrics) {
            if let Some(old) = old_catalog.metric_index(&metric.id).and_then(|i| old_ledgers.get_mut(i)) {
                *ledger = core::mem::take(old);
            }
        }
        next.instant = self.instant;
        next.closed = self.closed;
        next.billed = self.billed;
        // The running wallet balance survives unless the definition itself changed the figure
        // (a top-up or an adjustment made where the customer is defined).
        if let (Some(new), Some(old)) = (&mut next.wallet, self.wallet) {
            if new.currency == old.currency {
                new.debited = old.debited;
                if new.defined == old.defined {
                    new.balance = old.balance;
                }
            }
        }
        // Periods depend on subscriptions, which may have changed.
        next.ledgers.iter_mut().for_each(MetricLedger::forget_period);
        next
    }

    /// Access to `key`, by position.
    pub fn access_index(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Access to `key`, with its position.
    #[inline]
    pub fn access_entry(&self, key: &str) -> Option<(usize, &Access)> {
        let &a = self.by_key.get(key)?;
        Some((a, self.access.get(a)?))
    }

    /// True when some subscription is active at `t`.
    pub fn subscribed(&self, t: crate::time::Timestamp) -> bool {
        self.customer.subscriptions.iter().any(|s| s.is_active(t))
    }
}

/// Running state of one price rated per use in one billing period: an `instant` price (each
/// use debited from the wallet), or an `in_arrears` price whose model prices each event on its
/// own (`percentage`, `dynamic`, a matrix with such cells), billed at the period's end as the
/// sum of its events' amounts, in the order they were recorded.
#[cfg_attr(feature = "checkpoint", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstantRun {
    /// Events charged.
    pub events: u64,
    /// Cumulative quantity (per matrix dimension value; `""` without a matrix).
    pub quantity: BTreeMap<String, Decimal>,
    /// Per-event allowance state of `percentage` models, per dimension value.
    pub percentage: BTreeMap<String, PercentageState>,
    /// Exact amount debited from the wallet so far.
    pub charged: Decimal,
    /// Exact amount the prices give for the events in the order this engine saw them. Equal to
    /// `charged` except at a hub, where edges debit what they rated with the usage they knew;
    /// the invoice settles the difference on a line of its own.
    pub rated: Decimal,
}

/// The prepaid wallet as the engine runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct WalletState {
    /// Its currency.
    pub currency: Currency,
    /// What is left, at full precision.
    pub balance: Decimal,
    /// The balance the customer definition gave (a redefinition with another figure resets it).
    pub defined: Decimal,
    /// Everything real-time charges have debited so far (survives redefinitions): with the
    /// balance, what was ever funded.
    pub debited: Decimal,
    /// How far below zero charges may take the balance.
    pub credit_limit: Decimal,
    /// Money of each edge's wallet lease usable only while the hub is unreachable.
    pub offline_allowance: Decimal,
}

impl WalletState {
    /// Money charges may still take here, ignoring leases: balance + credit limit.
    pub fn spendable(&self) -> Decimal {
        self.balance.saturating_add(self.credit_limit)
    }

    /// The wallet's budget as a lease key (SPEC §7): everything funded plus the credit limit,
    /// of which every debit so far is part.
    pub fn budget(&self) -> Decimal {
        self.balance.saturating_add(self.debited).saturating_add(self.credit_limit)
    }
}
