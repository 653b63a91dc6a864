//! Following the other hubs of a shared store: what they committed after this hub's position,
//! applied to its memory — their history replayed as at start, their other changes (leases,
//! top-ups, closed invoices, tokens, revoked edges) applied as they stand.

use std::sync::Arc;

use serde_json::Value;

use super::{HubState, StartReport};
use crate::store::Tail;

impl HubState {
    /// The history's last `seq` in memory.
    pub fn last_seq(&self) -> i64 {
        self.seq
    }

    /// Applies what other hubs committed (a [`Tail`] of the shared store), in their order.
    pub fn catch_up(&mut self, tail: Tail) -> Result<(), String> {
        let mut report = StartReport::default();
        for record in tail.records {
            self.seq = self.seq.max(record.seq());
            self.replay(record, &mut report)?;
        }
        self.seq = self.seq.max(tail.last_seq);
        for logged in tail.logged {
            for (key, value) in &logged.meta {
                self.leases.follow_meta(key, value)?;
            }
            for row in &logged.leases {
                self.leases.follow_row(row)?;
            }
            for id in &logged.leases_removed {
                self.leases.follow_removal(id);
            }
            for row in logged.topups {
                self.docs.topups.insert(row.idempotency_key.clone(), row);
            }
            for row in logged.invoices {
                if let (Some(engine), Ok(doc)) = (self.engine.as_mut(), serde_json::from_str::<Value>(&row.json)) {
                    engine.restore_closed(&row.customer_id, &doc);
                }
                let key = (row.customer_id, row.subscription_id, row.period_start);
                self.docs.invoices.insert(key, Arc::new(row.json.into_bytes()));
            }
            self.follow_tokens(logged.tokens)?;
        }
        Ok(())
    }
}
