//! The writer of a hub that shares its store with other hubs (PostgreSQL).
//!
//! Requests wait for a permit. The writer takes the store's commit lock ([`Store::coordinate`]),
//! applies what other hubs committed since its last position, and only then grants the permits
//! that queued up: each request decides on a state that holds every hub's changes, submits its
//! batch, and the group is committed with its `change_log` row before the lock is released. So
//! two hubs can never together grant beyond a budget, or close one invoice twice. Between
//! writes, the writer follows the other hubs every [`FOLLOW_EVERY`], so what is changed through
//! one hub reaches the others' memory within about that time.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{finish, Job, Permit, Progress, Reload, MAX_GROUP};
use crate::state::HubState;
use crate::store::{Changes, Cycle, Store, StoreError, Tail};

/// How often a hub with nothing to write reads what the others committed.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(200);

fn lock(state: &Mutex<HubState>) -> MutexGuard<'_, HubState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One coordinated write: the permits waiting, then the batches submitted with them.
struct Group<'a> {
    state: &'a Mutex<HubState>,
    waiting: Vec<oneshot::Sender<Permit>>,
    submitted: Vec<Job>,
}

impl Cycle for Group<'_> {
    fn last_seq(&mut self) -> i64 {
        lock(self.state).last_seq()
    }

    fn catch_up(&mut self, tail: Tail) -> Result<(), String> {
        lock(self.state).catch_up(tail)
    }

    fn gather(&mut self) -> (Vec<Changes>, i64) {
        let (tx, rx) = mpsc::channel();
        let mut admitted = 0;
        for ask in self.waiting.drain(..) {
            match ask.send(Permit { to_writer: tx.clone(), used: false }) {
                Ok(()) => admitted += 1,
                // The request went away while it waited: its permit is not counted.
                Err(mut permit) => permit.used = true,
            }
        }
        drop(tx);
        // Every permit granted comes back once: submitted, or given back when dropped.
        for _ in 0..admitted {
            match rx.recv() {
                Ok(job) if job.done.is_some() => self.submitted.push(job),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.submitted.sort_by_key(|j| j.ticket);
        let batches = self.submitted.iter_mut().map(|j| std::mem::take(&mut j.changes)).collect();
        (batches, lock(self.state).last_seq())
    }
}

/// Applies what the other hubs committed after `position`, if anything.
fn follow(store: &mut dyn Store, state: &Mutex<HubState>, progress: &Progress, position: &mut i64) {
    let last_seq = lock(state).last_seq();
    match store.tail(*position, last_seq) {
        Ok(Some(tail)) => {
            let to = tail.position;
            match lock(state).catch_up(tail) {
                Ok(()) => *position = to,
                Err(e) => progress.fail(&format!("another hub's changes could not be applied: {e}")),
            }
        }
        Ok(None) => {}
        // The database unreachable, or this hub behind what the change log keeps: its state may
        // miss changes, so it is reloaded (once the database answers) before it serves again.
        Err(e) => progress.fail(&format!("the other hubs' changes could not be read: {e}")),
    }
}

/// After a failure, how often the state is reloaded (when the database answers again).
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Reloads the state after a failure, if the database answers: what memory held beyond the
/// last commit (a group that failed) is dropped with it, and nothing of that was acknowledged.
fn recover(
    store: &mut dyn Store,
    state: &Mutex<HubState>,
    reload: &mut Reload,
    progress: &Progress,
    position: &mut i64,
) {
    match reload(store) {
        Ok((mut fresh, at)) => {
            let mut current = lock(state);
            // Tickets go on growing: what waits on an older one is answered by the failure.
            fresh.ticket = current.ticket;
            *current = fresh;
            *position = at;
            progress.recover();
            eprintln!("tollgate hub: the database answers again; state reloaded at change {at}, writes accepted");
        }
        Err(e) => eprintln!("tollgate hub: the database is still unavailable: {e}"),
    }
}

pub(super) fn run(
    store: &mut dyn Store,
    state: &Mutex<HubState>,
    asks: &mpsc::Receiver<oneshot::Sender<Permit>>,
    progress: &Progress,
    mut position: i64,
    reload: &mut Reload,
) {
    let mut tried = Instant::now();
    loop {
        if progress.failed() && tried.elapsed() >= RELOAD_EVERY {
            tried = Instant::now();
            recover(store, state, reload, progress, &mut position);
        }
        let first = match asks.recv_timeout(FOLLOW_EVERY) {
            Ok(ask) => ask,
            Err(RecvTimeoutError::Timeout) => {
                if !progress.failed() {
                    follow(store, state, progress, &mut position);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut waiting = vec![first];
        while waiting.len() < MAX_GROUP {
            match asks.try_recv() {
                Ok(ask) => waiting.push(ask),
                Err(_) => break,
            }
        }
        if progress.failed() {
            // Refused: each request sees the writer gone and answers 503.
            continue;
        }
        let mut group = Group { state, waiting, submitted: Vec::new() };
        let result = store.coordinate(position, &mut group).map(|p| position = p);
        let jobs = std::mem::take(&mut group.submitted);
        finish(jobs, &result.map_err(|e: StoreError| e), progress);
    }
}

/// Start-up's own changes (generated tokens, a seed), written in order with the other hubs'
/// after applying what they committed since `state` was loaded at `position`. Returns the new
/// position.
pub fn write_start(
    store: &mut dyn Store,
    state: &mut HubState,
    position: i64,
    changes: Changes,
) -> Result<i64, StoreError> {
    struct Start<'a> {
        state: &'a mut HubState,
        changes: Option<Changes>,
    }
    impl Cycle for Start<'_> {
        fn last_seq(&mut self) -> i64 {
            self.state.last_seq()
        }
        fn catch_up(&mut self, tail: Tail) -> Result<(), String> {
            self.state.catch_up(tail)
        }
        fn gather(&mut self) -> (Vec<Changes>, i64) {
            (self.changes.take().into_iter().collect(), self.state.last_seq())
        }
    }
    store.coordinate(position, &mut Start { state, changes: Some(changes) })
}
