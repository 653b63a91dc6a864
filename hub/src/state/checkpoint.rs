//! Checkpoints: every so many history records, the engine's state beyond its definitions goes
//! into the batch being written, so a start reads the definitions, that checkpoint and only the
//! events after it (`startup`). The escrow needs none: its leases are rows of their own.

use super::HubState;
use crate::store::{Changes, CheckpointRow};
use tollgate::engine::checkpoint::Checkpoint;
use tollgate::time::Timestamp;

/// History records between two checkpoints by default (`--checkpoint-every`).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 100_000;

impl HubState {
    /// Adds a checkpoint of the state to `changes` once `checkpoint_every` history records have
    /// passed since the last one (read or written). Called as the batch is queued, under the
    /// state's lock: the state is then exactly the history up to `seq`, all of it in this batch or
    /// in batches before it.
    pub fn add_checkpoint_if_due(&mut self, changes: &mut Changes, now: Timestamp) {
        let due = self.checkpoint_every > 0
            && u64::try_from(self.seq - self.checkpoint_seq).is_ok_and(|n| n >= self.checkpoint_every);
        let Some(engine) = self.engine.as_ref().filter(|_| due) else { return };
        match serde_json::to_string(&engine.checkpoint()) {
            Ok(json) => {
                changes.checkpoint = Some(CheckpointRow { seq: self.seq, json, created_at: now.0 });
                self.checkpoint_seq = self.seq;
            }
            Err(e) => eprintln!("tollgate hub: no checkpoint at seq {}: {e}", self.seq),
        }
    }

    /// Puts a stored checkpoint back into the engine built from the definitions up to its `seq`.
    pub(super) fn restore_checkpoint(&mut self, row: &CheckpointRow) -> Result<(), String> {
        let checkpoint: Checkpoint = serde_json::from_str(&row.json)
            .map_err(|e| format!("the checkpoint at seq {} is unreadable: {e}", row.seq))?;
        let engine = self
            .engine
            .as_mut()
            .ok_or_else(|| format!("the checkpoint at seq {} has no catalog before it", row.seq))?;
        engine
            .restore_checkpoint(&checkpoint)
            .map_err(|e| format!("the checkpoint at seq {} does not fit: {e}", row.seq))?;
        self.checkpoint_seq = row.seq;
        Ok(())
    }
}
