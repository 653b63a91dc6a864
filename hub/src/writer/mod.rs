//! Group commit: one thread owns the store's write connection and applies, in one transaction,
//! every batch that queued up while the previous transaction was being made durable.
//!
//! A request asks for a [`Permit`], changes the in-memory state and submits its batch while it
//! holds the state's lock, so batches reach the writer in the order their changes were made; it
//! then waits for its batch to be durable before replying. A reply therefore never rests on a
//! change that a crash could take back: the database always holds a prefix of the hub's
//! history, and everything a reply was computed from lies in that prefix (see `docs/hub.md`,
//! "Durability").
//!
//! On SQLite (one hub per file) a permit is granted at once. On a store several hubs share
//! ([`shared`]), permits are granted by the writer while it holds the store's commit lock, after
//! it has applied what the other hubs committed: every decision is made on the state of all hubs.
//!
//! If a transaction fails, the writer stops accepting writes for good (every later batch fails
//! too) rather than let the database and the memory disagree; the hub reports it at `/healthz`
//! and must be restarted, which reloads the last durable state.

mod shared;

pub use shared::{write_start, FOLLOW_EVERY};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

use super::state::HubState;
use super::store::{Changes, Store, StoreError};

/// Most batches written in one transaction.
const MAX_GROUP: usize = 1024;

/// A batch handed to the writer (`done: None`: a permit given back unused).
struct Job {
    ticket: u64,
    changes: Changes,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
}

/// What the writer and the request handlers share.
pub struct Progress {
    /// Highest ticket made durable.
    durable: AtomicU64,
    /// The same, for those who wait on it.
    watch: watch::Sender<u64>,
    /// A transaction failed: no more writes.
    failed: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { durable: AtomicU64::new(0), watch: watch::Sender::new(0), failed: AtomicBool::new(false) }
    }
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
            eprintln!(
                "tollgate hub: {why}; writes are refused until the state is reloaded from the database \
                 (on SQLite: restart the hub; on PostgreSQL it happens once the database answers)"
            );
        }
        self.watch.send_modify(|_| {});
    }

    /// Writes are accepted again (a shared store's state was reloaded).
    fn recover(&self) {
        self.failed.store(false, Ordering::Release);
        self.watch.send_modify(|_| {});
    }

    /// Highest ticket made durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn advance(&self, top: u64) {
        self.durable.fetch_max(top, Ordering::AcqRel);
        self.watch.send_modify(|d| *d = (*d).max(top));
    }

    /// Waits until `ticket` is durable; false if the writer failed first.
    pub async fn wait(&self, ticket: u64) -> bool {
        let mut rx = self.watch.subscribe();
        let reached = rx.wait_for(|d| *d >= ticket || self.failed()).await;
        reached.is_ok() && !self.failed()
    }
}

/// Rebuilds a hub's state from a shared store after a failure: the state, and the change log
/// position it is at.
pub type Reload = Box<dyn FnMut(&mut dyn Store) -> Result<(HubState, i64), String> + Send>;

/// How permits are granted.
enum Mode {
    /// At once: batches go straight to the writer thread (SQLite).
    Local(mpsc::Sender<Job>),
    /// By the writer thread, under the shared store's commit lock.
    Shared(mpsc::Sender<oneshot::Sender<Permit>>),
}

/// The handle of the writer thread.
pub struct Writer {
    mode: Mode,
    /// Shared progress.
    pub progress: Arc<Progress>,
}

/// A queued batch: await it to know it is durable.
pub type Pending = oneshot::Receiver<Result<(), StoreError>>;

/// The right to submit one batch in the writer's next transaction. Dropped unused (the request
/// failed, or its client went away), it is given back, and the transaction goes on without it.
pub struct Permit {
    to_writer: mpsc::Sender<Job>,
    used: bool,
}

impl Permit {
    /// Submits `changes` under `ticket` (tickets grow with every call; the caller holds the state
    /// lock, which orders them).
    pub fn submit(mut self, ticket: u64, changes: Changes) -> Pending {
        self.used = true;
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.to_writer.send(Job { ticket, changes, done: Some(done) }) {
            if let Some(done) = job.done {
                let _ = done.send(Err(StoreError("the writer thread has stopped".into())));
            }
        }
        wait
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.used {
            let _ = self.to_writer.send(Job { ticket: 0, changes: Changes::default(), done: None });
        }
    }
}

fn stopped() -> StoreError {
    StoreError("the writer thread has stopped".into())
}

impl Writer {
    /// Starts the writer thread over `store`, the only writer of its database.
    pub fn start(mut store: Box<dyn Store>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let progress = Arc::new(Progress::default());
        let shared = progress.clone();
        std::thread::Builder::new()
            .name("tollgate-hub-writer".into())
            .spawn(move || run(&mut *store, &rx, &shared))
            .map_err(|e| StoreError(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { mode: Mode::Local(tx), progress })
    }

    /// Starts the writer thread over a `store` other hubs write too, for `state` (loaded at
    /// `position` of the store's change log): it follows their changes and orders its own.
    /// After a failure (the database unreachable), the writer rebuilds the state with `reload`
    /// as soon as the database answers, and writes are accepted again.
    pub fn start_shared(
        mut store: Box<dyn Store>,
        state: Arc<Mutex<HubState>>,
        position: i64,
        mut reload: Reload,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(Progress::default());
        let shared = progress.clone();
        std::thread::Builder::new()
            .name("tollgate-hub-writer".into())
            .spawn(move || shared::run(&mut *store, &state, &rx, &shared, position, &mut reload))
            .map_err(|e| StoreError(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { mode: Mode::Shared(tx), progress })
    }

    /// A permit to write: at once on a store of one hub; on a shared store, once the writer has
    /// the commit lock and this hub's state holds every other hub's changes.
    pub async fn admit(&self) -> Result<Permit, StoreError> {
        match &self.mode {
            Mode::Local(tx) => Ok(Permit { to_writer: tx.clone(), used: false }),
            Mode::Shared(tx) => {
                let (ask, answer) = oneshot::channel();
                tx.send(ask).map_err(|_| stopped())?;
                answer.await.map_err(|_| stopped())
            }
        }
    }
}

/// Answers every job of a group with the transaction's result.
fn finish(jobs: Vec<Job>, result: &Result<(), StoreError>, progress: &Progress) {
    match result {
        Ok(()) => progress.advance(jobs.iter().map(|j| j.ticket).max().unwrap_or(0)),
        Err(e) => progress.fail(&format!("storage failed: {e}")),
    }
    for job in jobs {
        if let Some(done) = job.done {
            let _ = done.send(result.clone());
        }
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
            let batches: Vec<&Changes> = jobs.iter().filter(|j| j.done.is_some()).map(|j| &j.changes).collect();
            store.apply(&batches)
        };
        finish(jobs, &result, progress);
    }
}
