//! Checkpoints (feature `checkpoint`): what an engine holds beyond its definitions — usage per
//! meter and metric, wallet balances, per-use rating state — as data. The hub stores one now and
//! then, and at start loads the catalog and customer definitions, puts the checkpoint back and
//! replays only the history after it, instead of every event ever recorded.
//!
//! Left out, because they are rebuilt or restored from elsewhere: the definitions themselves,
//! closed invoices (the hub restores them from its invoice table after the history), the
//! idempotency memories (the hub asks its ledger), leases, and every cache.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Engine, InstantRun};
use crate::entitlements::Meter;
use crate::error::{Code, Error, Result};
use crate::metering::MetricLedger;
use crate::time::Timestamp;

/// The version of the layout below. A checkpoint of another version is not read: the hub
/// replays the whole history instead (and writes a new one).
pub const CHECKPOINT_FORMAT: u32 = 1;

/// An engine's state beyond its definitions. Two are the same state when their JSON is the same
/// (their meters also hold caches, which the JSON leaves out).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`] when written.
    pub format: u32,
    /// The engine's arrival counter (`LATEST` ties).
    pub seq: u64,
    /// Every customer, in id order.
    pub customers: Vec<CustomerImage>,
}

/// One customer's state beyond their definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CustomerImage {
    /// The customer id.
    pub id: String,
    /// The meter of each metered feature, by feature key.
    pub meters: Vec<(String, Meter)>,
    /// Usage of each metric that has some, by metric id.
    pub ledgers: Vec<(String, MetricLedger)>,
    /// Per-use rating state by (subscription, price, period start).
    pub instant: Vec<((String, String, Timestamp), InstantRun)>,
    /// The wallet's running figures.
    pub wallet: Option<WalletImage>,
}

/// A wallet's running figures (its currency and limits come with the definition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletImage {
    /// What is left.
    pub balance: Decimal,
    /// The balance the definition gave.
    pub defined: Decimal,
    /// Everything real-time charges debited so far.
    pub debited: Decimal,
}

fn mismatch(message: String) -> Error {
    Error::new(Code::Conflict, "", message)
}

impl Engine {
    /// This engine's state beyond its definitions.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut order: Vec<&str> = self.by_id.keys().map(String::as_str).collect();
        order.sort_unstable();
        let customers = order
            .into_iter()
            .filter_map(|id| self.customer(id))
            .map(|c| CustomerImage {
                id: c.customer.id.clone(),
                meters: c.access.iter().filter_map(|a| Some((a.key.to_string(), a.meter.clone()?))).collect(),
                ledgers: c
                    .ledgers
                    .iter()
                    .zip(&self.catalog.billable_metrics)
                    .filter(|(ledger, _)| !ledger.is_empty())
                    .map(|(ledger, metric)| (metric.id.clone(), ledger.clone()))
                    .collect(),
                instant: c.instant.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                wallet: c.wallet.as_ref().map(|w| WalletImage {
                    balance: w.balance,
                    defined: w.defined,
                    debited: w.debited,
                }),
            })
            .collect();
        Checkpoint { format: CHECKPOINT_FORMAT, seq: self.seq, customers }
    }

    /// Puts `checkpoint` back into an engine holding the same definitions it was taken under.
    /// All or nothing: an error (another format, a customer, feature or metric the engine does
    /// not hold, a wallet on one side only) leaves the engine as it was.
    pub fn restore_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        if checkpoint.format != CHECKPOINT_FORMAT {
            return Err(mismatch(format!(
                "checkpoint format {} (this build reads {CHECKPOINT_FORMAT})",
                checkpoint.format
            )));
        }
        if checkpoint.customers.len() != self.customers.len() {
            return Err(mismatch(format!(
                "the checkpoint holds {} customers, the definitions {}",
                checkpoint.customers.len(),
                self.customers.len()
            )));
        }
        let mut restored = self.customers.clone();
        for image in &checkpoint.customers {
            let state = self.by_id.get(&image.id).and_then(|&i| restored.get_mut(i)).ok_or_else(|| {
                mismatch(format!("the checkpoint holds customer {:?}, the definitions do not", image.id))
            })?;
            if image.meters.len() != state.access.iter().filter(|a| a.meter.is_some()).count() {
                return Err(mismatch(format!("the metered features of customer {:?} differ", image.id)));
            }
            for (key, meter) in &image.meters {
                let access = state
                    .access_index(key)
                    .and_then(|i| state.access.get_mut(i))
                    .filter(|a| a.meter.is_some())
                    .ok_or_else(|| mismatch(format!("no metered feature {key:?} for customer {:?}", image.id)))?;
                access.meter = Some(meter.clone());
            }
            for (metric, ledger) in &image.ledgers {
                let slot = self
                    .catalog
                    .metric_index(metric)
                    .and_then(|m| state.ledgers.get_mut(m))
                    .ok_or_else(|| mismatch(format!("no metric {metric:?} in the catalog")))?;
                *slot = ledger.clone();
            }
            state.instant = image.instant.iter().cloned().collect::<BTreeMap<_, _>>();
            match (&mut state.wallet, image.wallet) {
                (Some(w), Some(i)) => {
                    w.balance = i.balance;
                    w.defined = i.defined;
                    w.debited = i.debited;
                }
                (None, None) => {}
                _ => {
                    return Err(mismatch(format!(
                        "the wallet of customer {:?} does not match its definition",
                        image.id
                    )))
                }
            }
            state.lease_keys.iter_mut().for_each(|k| *k = None);
        }
        self.customers = restored;
        self.seq = checkpoint.seq;
        Ok(())
    }
}

/// A map as a list of pairs, for maps whose keys JSON objects cannot hold.
pub(crate) mod pairs {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the pairs in key order.
    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    /// Reads the pairs back.
    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Options;
    use serde_json::{json, Value};

    fn engine(file: &str) -> Engine {
        let snapshot = crate::json::parse(file).unwrap();
        Engine::from_snapshot(&snapshot, Options::default()).unwrap()
    }

    fn leased() -> Engine {
        engine(include_str!("../../tests/data/leased-snapshot.json"))
    }

    fn wallet() -> Engine {
        engine(include_str!("../../tests/data/wallet-snapshot.json"))
    }

    fn at(day: u32) -> Timestamp {
        Timestamp::parse(&format!("2026-11-{day:02}T00:00:00Z")).unwrap()
    }

    fn call(id: u32, day: u32) -> Value {
        json!({ "specversion": "1.0", "source": "test", "id": format!("e{id}"), "type": "api.call",
                "subject": "cus_acme", "time": format!("2026-11-{day:02}T00:00:00Z"), "data": {} })
    }

    /// As the hub stores it.
    fn text(c: &Checkpoint) -> String {
        serde_json::to_string(c).unwrap()
    }

    fn stored(c: &Checkpoint) -> Checkpoint {
        serde_json::from_str(&text(c)).unwrap()
    }

    #[test]
    fn a_restored_engine_goes_on_as_the_original() {
        for (mut original, mut restored) in [(leased(), leased()), (wallet(), wallet())] {
            for i in 0..40 {
                let _ = original.ingest(&call(i, 2 + i % 5), at(8)).unwrap();
            }
            let taken = original.checkpoint();
            restored.restore_checkpoint(&stored(&taken)).unwrap();
            assert_eq!(text(&restored.checkpoint()), text(&taken));
            // The same further usage gives the same answers and the same state.
            for i in 40..60 {
                let a = original.ingest(&call(i, 9), at(9)).unwrap();
                let b = restored.ingest(&call(i, 9), at(9)).unwrap();
                assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
            }
            assert_eq!(text(&restored.checkpoint()), text(&original.checkpoint()));
            assert_eq!(restored.wallet_balance("cus_acme"), original.wallet_balance("cus_acme"));
        }
    }

    #[test]
    fn the_figures_are_the_ones_used() {
        let mut e = leased();
        for i in 0..40 {
            e.ingest(&call(i, 2), at(8)).unwrap();
        }
        // 40 calls of 1,000 this month: 960 left, kept as exact text.
        let written = text(&e.checkpoint());
        assert!(written.contains("\"usage\":\"40\""), "{written}");
        assert!(written.contains("\"remaining\":\"960\""), "{written}");
        let mut w = wallet();
        for i in 0..40 {
            w.ingest(&call(i, 2), at(8)).unwrap();
        }
        // 1.00 less 40 calls at 0.01.
        let image = w.checkpoint();
        let wallet = image.customers[0].wallet.unwrap();
        assert_eq!((wallet.balance.to_string(), wallet.debited.to_string()), ("0.60".into(), "0.40".into()));
    }

    #[test]
    fn a_checkpoint_that_does_not_fit_changes_nothing() {
        let mut used = leased();
        used.ingest(&call(1, 2), at(8)).unwrap();
        let good = used.checkpoint();
        let mut e = leased();
        let before = text(&e.checkpoint());
        let mut other_format = good.clone();
        other_format.format += 1;
        let mut stranger = good.clone();
        stranger.customers[0].id = "cus_nobody".into();
        let mut no_feature = good.clone();
        no_feature.customers[0].meters[0].0 = "nothing".into();
        let mut no_metric = good.clone();
        no_metric.customers[0].ledgers[0].0 = "bm_nothing".into();
        let mut a_wallet = good.clone();
        a_wallet.customers[0].wallet =
            Some(WalletImage { balance: Decimal::ONE, defined: Decimal::ONE, debited: Decimal::ZERO });
        for bad in [other_format, stranger, no_feature, no_metric, a_wallet] {
            assert_eq!(e.restore_checkpoint(&bad).unwrap_err().code, Code::Conflict);
            assert_eq!(text(&e.checkpoint()), before);
        }
        e.restore_checkpoint(&good).unwrap();
        assert_eq!(text(&e.checkpoint()), text(&good));
    }
}
