//! The HTTP API (axum): authorisation, body limits, JSON errors, and the static site.
//!
//! Every handler follows one pattern: check the token (before reading the body), read and parse
//! the body (limited, exact JSON), then run the state operation under the state lock, queue its
//! changes, release the lock, and reply once the changes are durable.

pub mod error;

mod auth;
mod input;
mod routes;
mod static_files;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;

use super::state::{self, HubError, HubState, Reply};
use super::store::{Changes, Store};
use super::tokens::Tokens;
use super::writer::{Pending, Permit, Writer};
use error::{error_response, reply_response, storage_failed, ApiError};
use tollgate::time::Timestamp;

/// Largest accepted request body.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Most events, and most lease reports, one sync request may carry (an edge sends pages).
pub const MAX_SYNC_ITEMS: usize = 10_000;

/// Everything the handlers share.
pub struct Hub {
    state: Arc<Mutex<HubState>>,
    writer: Writer,
    tokens: Tokens,
    reader: Mutex<Box<dyn Store>>,
    www: PathBuf,
}

impl Hub {
    /// The hub over a loaded state (shared with its writer when the store is shared), its
    /// writer, a second store connection for reads, the tokens and the static site's directory.
    pub fn new(
        state: Arc<Mutex<HubState>>,
        writer: Writer,
        reader: Box<dyn Store>,
        tokens: Tokens,
        www: PathBuf,
    ) -> Hub {
        Hub { state, writer, tokens, reader: Mutex::new(reader), www }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a state operation that changes something, and replies once its changes are durable.
    async fn write<F>(&self, op: F) -> Response
    where
        F: FnOnce(&mut HubState, Timestamp) -> Result<(Reply, Changes), HubError>,
    {
        // On a shared store, granted once this hub's state holds every hub's changes.
        let Ok(permit) = self.writer.admit().await else { return storage_failed() };
        let (reply, pending) = {
            let mut state = self.lock();
            if self.writer.progress.failed() {
                return storage_failed();
            }
            match op(&mut state, state::now()) {
                Err(e) if e.is_storage() => {
                    // A storage failure part way: the state may hold changes never queued.
                    self.writer.progress.fail("the ledger could not be read during a write");
                    return error_response(&ApiError::from(&e));
                }
                Err(e) => return error_response(&ApiError::from(&e)),
                Ok((reply, changes)) => (reply, self.submit(&mut state, permit, changes)),
            }
        };
        match pending.await {
            Ok(Ok(())) => reply_response(&reply),
            _ => storage_failed(),
        }
    }

    /// Runs a state operation that only reads; waits, if writes are still queued, until they are
    /// durable (so no reply ever shows a change a crash could take back).
    async fn read<F>(&self, op: F) -> Response
    where
        F: FnOnce(&mut HubState, Timestamp) -> Result<Reply, HubError>,
    {
        let (result, ticket) = {
            let mut state = self.lock();
            (op(&mut state, state::now()), state.ticket)
        };
        if (ticket > self.writer.progress.durable() || self.writer.progress.failed())
            && !self.writer.progress.wait(ticket).await
        {
            return storage_failed();
        }
        match result {
            Ok(reply) => reply_response(&reply),
            Err(e) => error_response(&ApiError::from(&e)),
        }
    }

    fn submit(&self, state: &mut HubState, permit: Permit, mut changes: Changes) -> Pending {
        state.forget_durable(self.writer.progress.durable());
        state.add_checkpoint_if_due(&mut changes, state::now());
        state.ticket += 1;
        permit.submit(state.ticket, changes)
    }

    /// The periodic in-process sync of the hub's own leases.
    pub async fn tick(&self) {
        if self.writer.progress.failed() {
            return;
        }
        let Ok(permit) = self.writer.admit().await else { return };
        let pending = {
            let mut state = self.lock();
            let changes = state.tick(state::now());
            (!changes.is_empty()).then(|| self.submit(&mut state, permit, changes))
        };
        if let Some(p) = pending {
            let _ = p.await;
        }
    }
}

/// The event (source, id) as the durable ledger holds it (its JSON), asked through the reading
/// connection. Called from a handler, under the state's lock: the blocking read tells the
/// scheduler first (the PostgreSQL client also runs a runtime of its own, which may only be
/// entered that way).
fn ledger_lookup(hub: &Hub) -> impl FnMut(&str, &str) -> Result<Option<String>, String> + '_ {
    move |source, id| {
        tokio::task::block_in_place(|| {
            let mut store = hub.reader.lock().unwrap_or_else(PoisonError::into_inner);
            store.event_json(source, id).map_err(|e| e.to_string())
        })
    }
}

/// The router of every route.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/v1/sync", post(routes::sync))
        .route("/v1/snapshot", get(routes::snapshot))
        .route("/v1/catalog", put(routes::put_catalog))
        .route("/v1/customers/{id}", put(routes::put_customer).get(routes::customer))
        .route("/v1/customers/{id}/grants", post(routes::add_grant))
        .route("/v1/customers/{id}/wallet", post(routes::top_up).get(routes::wallet))
        .route("/v1/customers/{id}/entitlements", get(routes::entitlements))
        .route("/v1/customers/{id}/invoice", get(routes::invoice))
        .route("/v1/customers/{id}/invoices", get(routes::invoices))
        .route("/v1/customers/{id}/subscriptions/{sub}/migrate", post(routes::migrate_subscription))
        .route("/v1/events", post(routes::ingest).get(routes::list_events))
        .route("/v1/invoices/close", post(routes::close_invoice))
        .route("/v1/edges/{id}/revoke", post(routes::revoke_edge).delete(routes::lift_revocation))
        .route("/v1/dead-letters", get(routes::list_dead_letters))
        .route("/v1/dead-letters/replay", post(routes::replay_dead_letters))
        .route("/v1/tokens", post(routes::create_token).get(routes::list_tokens))
        .route("/v1/tokens/{id}", delete(routes::revoke_token))
        .fallback(static_files::fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub)
}
