//! Group commit: one thread owns the store's write connection and applies, in one transaction,
//! every batch that queued up while the previous transaction was being made durable.
//!
//! A request changes the in-memory state and queues its batch while it holds the state's lock,
//! so batches reach the writer in the order their changes were made; it then waits for its
//! batch to be durable before replying. A reply therefore never rests on a change that a crash
//! could take back: the database always holds a prefix of the hub's history, and everything a
//! reply was computed from lies in that prefix (see `docs/hub.md`, "Durability").
//!
//! If a transaction fails, the writer stops accepting writes for good (every later batch fails
//! too) rather than let the database and the memory disagree; the hub reports it at `/healthz`
//! and must be restarted, which reloads the last durable state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::store::{Changes, Store, StoreError};

/// Most batches written in one transaction.
const MAX_GROUP: usize = 1024;

struct Job {
    ticket: u64,
    changes: Changes,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// What the writer and the request handlers share.
#[derive(Default)]
pub struct Progress {
    /// Highest ticket made durable.
    durable: AtomicU64,
    /// A transaction failed: no more writes.
    failed: AtomicBool,
}

impl Progress {
    /// True once a write has failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Stops all writes: the memory may be ahead of the database (an operation failed half
    /// way on a read of the store); a restart reloads the last durable state.
    pub fn fail(&self, why: &str) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            eprintln!("tollgate hub: {why}; no further writes are accepted, restart the hub");
        }
    }

    /// Highest ticket made durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

/// The handle of the writer thread.
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Shared progress.
    pub progress: Arc<Progress>,
}

/// A queued batch: await it to know it is durable.
pub type Pending = oneshot::Receiver<Result<(), StoreError>>;

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn start(mut store: Box<dyn Store>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let progress = Arc::new(Progress::default());
        let shared = progress.clone();
        std::thread::Builder::new()
            .name("tollgate-hub-writer".into())
            .spawn(move || run(&mut *store, &rx, &shared))
            .map_err(|e| StoreError(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx, progress })
    }

    /// Queues `changes` under `ticket` (tickets grow with every call; the caller holds the state
    /// lock, which orders them).
    pub fn queue(&self, ticket: u64, changes: Changes) -> Pending {
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.tx.send(Job { ticket, changes, done }) {
            let _ = job.done.send(Err(StoreError("the writer thread has stopped".into())));
        }
        wait
    }
}

fn run(store: &mut dyn Store, rx: &mpsc::Receiver<Job>, progress: &Progress) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let result = if progress.failed() {
            Err(StoreError("an earlier write failed; restart the hub".into()))
        } else {
            let batches: Vec<&Changes> = jobs.iter().map(|j| &j.changes).collect();
            store.apply(&batches)
        };
        match &result {
            Ok(()) => {
                let top = jobs.iter().map(|j| j.ticket).max().unwrap_or(0);
                progress.durable.fetch_max(top, Ordering::AcqRel);
            }
            Err(e) => {
                if !progress.failed.swap(true, Ordering::AcqRel) {
                    eprintln!("tollgate hub: storage failed, no further writes are accepted: {e}");
                }
            }
        }
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}
