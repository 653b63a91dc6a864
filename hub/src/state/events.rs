//! The usage ledger: events from edges (`/v1/sync`) and from the back office (`/v1/events`),
//! recorded once per (source, id), and the dead letters of those the hub could not apply.

use serde_json::{json, Value};

use super::leases::lease_reason;
use super::{error_json, listed, no_catalog, text, HubError, HubState, Incoming, Reply, HUB_EDGE, MAX_LISTED};
use crate::store::{Changes, DeadLetterRow, EventRow};
use tollgate::engine::{declared_charges, payload_print};
use tollgate::error::{Code, Error};
use tollgate::json::parse;
use tollgate::metering::Event;
use tollgate::sync::{SyncRequest, SyncResponse};
use tollgate::time::Timestamp;

/// Asks the store for the JSON of `(source, id)` when the ledger holds it (an `Err` when it
/// cannot be read).
pub type InLedger<'a> = dyn FnMut(&str, &str) -> Result<Option<String>, String> + 'a;

/// A dead letter as `GET /v1/dead-letters` lists it.
pub fn dead_letter_json(r: &DeadLetterRow) -> Value {
    json!({
        "seq": r.seq,
        "source": r.source,
        "id": r.id,
        "customerId": r.customer_id,
        "edgeId": r.edge_id,
        "error": { "code": r.code, "path": r.path, "message": r.message },
        "receivedAt": Timestamp(r.received_at).to_rfc3339(),
        "event": parse(&r.json).unwrap_or(Value::Null),
    })
}

/// The dead letter of an event the hub could not apply.
fn dead_letter(value: &Value, event: Option<&Event>, edge_id: &str, e: &Error, now: Timestamp) -> DeadLetterRow {
    // An event that did not decode is still kept under whatever source and id it carried.
    // Such an event may carry U+0000 where a decoded one cannot, which no database's text type
    // stores: written as the JSON escape `\u0000` (the event's own JSON keeps it exactly).
    let storable = |s: &str| s.replace('\0', "\\u0000");
    let field = |name: &str| storable(value.get(name).and_then(Value::as_str).unwrap_or_default());
    DeadLetterRow {
        seq: 0,
        source: event.map_or_else(|| field("source"), |e| e.source.clone()),
        id: event.map_or_else(|| field("id"), |e| e.id.clone()),
        customer_id: event.map_or_else(|| field("subject"), |e| e.subject.clone()),
        edge_id: edge_id.to_string(),
        code: e.code.as_str().to_string(),
        path: storable(&e.path),
        message: storable(&e.message),
        json: text(value),
        received_at: now.0,
    }
}

fn storage(e: String) -> HubError {
    HubError::new(Code::Storage, "", format!("the ledger could not be read: {e}"))
}

impl HubState {
    /// Queues the ledger row of an event the engine took, and keeps it as in flight until the
    /// batch that writes it is durable (its ticket is the next one).
    fn write_event(
        &mut self,
        key: (String, String),
        event: &Event,
        value: &Value,
        now: Timestamp,
        changes: &mut Changes,
    ) {
        self.late.insert(key, self.ticket + 1);
        let seq = self.next_seq();
        changes.events.push(EventRow {
            seq,
            source: event.source.clone(),
            id: event.id.clone(),
            customer_id: event.subject.clone(),
            json: text(value),
            received_at: now.0,
        });
    }

    /// The changes a write to the ledger starts from; `no_catalog` while the hub has no engine.
    fn ledger_changes(&self) -> Result<Changes, HubError> {
        if self.engine.is_none() {
            return Err(no_catalog());
        }
        Ok(Changes::default())
    }

    /// An in-process sync of the hub's own leases (see `Leases::round`).
    fn round(&mut self, now: Timestamp, changes: &mut Changes) {
        if let Some(engine) = self.engine.as_mut() {
            self.leases.round(engine, now, changes);
        }
    }

    /// `POST /v1/sync`: records the edge's events, answers its lease reports against the
    /// escrow, and sends the snapshot when the edge's is older. `in_ledger` tells whether an
    /// event (source, id) is already in the durable ledger; it is asked only about events older
    /// than the engine's idempotency memory.
    pub fn sync(
        &mut self,
        req: &SyncRequest,
        events: &[Result<Event, Error>],
        now: Timestamp,
        in_ledger: &mut InLedger<'_>,
    ) -> Result<(Reply, Changes), HubError> {
        if req.edge_id == HUB_EDGE {
            return Err(HubError::new(Code::InvalidValue, "/edgeId", "the edge id \"hub\" is the hub's own"));
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let mut changes = Changes::default();
        let mut problems = Vec::new();
        let grants = self.leases.answer(engine, req, now, &mut changes, &mut problems);
        // Then the events, each on its own: recorded once, whatever the limits say (the edge
        // allowed it) and whatever its age (the ledger is the billing truth); one the hub cannot
        // apply is kept as a dead letter with its reason and listed in `problems`. Every event
        // of the request is acknowledged either way: nothing is lost, nothing is sent forever.
        for (i, (value, event)) in req.events.iter().zip(events).enumerate() {
            let path = format!("/events/{i}");
            if let Some(problem) = self.admit(Sent { value, event }, &req.edge_id, now, in_ledger, &mut changes)? {
                problems.push(problem.under(&path));
            }
        }
        let snapshot = if req.catalog_version < self.docs.snapshot_version {
            self.signed(now).map(|s| (*s.value).clone())
        } else {
            None
        };
        let response = SyncResponse { ack_seq: req.seq, leases: grants, snapshot };
        let mut body = serde_json::to_value(&response)
            .map_err(|_| HubError::new(Code::Unencodable, "", "the sync answer cannot be written as JSON"))?;
        if !problems.is_empty() {
            body["problems"] = listed(&problems);
            if problems.len() > MAX_LISTED {
                body["problemsOmitted"] = json!(problems.len() - MAX_LISTED);
            }
        }
        Ok((Reply::json(200, &body)?, changes))
    }

    /// Takes one event of an edge into the ledger: `Ok(None)` when recorded or already there,
    /// `Ok(Some(problem))` when the hub cannot apply it (it becomes a dead letter), `Err` only
    /// when the ledger cannot be read.
    fn admit(
        &mut self,
        sent: Sent<'_>,
        edge_id: &str,
        now: Timestamp,
        in_ledger: &mut InLedger<'_>,
        changes: &mut Changes,
    ) -> Result<Option<Error>, HubError> {
        let Sent { value, event } = sent;
        let refused = match self.record_event(value, event, now, in_ledger, changes)? {
            None => return Ok(None),
            Some(e) => e,
        };
        changes.dead_letters.push(dead_letter(value, event.as_ref().ok(), edge_id, &refused, now));
        Ok(Some(refused))
    }

    /// Records an event in the engine and queues its ledger row, once per (source, id): the
    /// engine's memory answers for recent events, the store (and what this run recorded) for
    /// older ones. `Some(reason)` when it cannot be applied.
    fn record_event(
        &mut self,
        value: &Value,
        event: &Result<Event, Error>,
        now: Timestamp,
        in_ledger: &mut InLedger<'_>,
        changes: &mut Changes,
    ) -> Result<Option<Error>, HubError> {
        let event = match event {
            Ok(e) => e,
            Err(e) => return Ok(Some(e.clone())),
        };
        if event.time.0 > now.0.saturating_add(self.max_future_ms) {
            let message = format!("the event is dated more than {} ms after the hub's clock", self.max_future_ms);
            return Ok(Some(Error::new(Code::InvalidTimestamp, "/time", message)));
        }
        let Some(engine) = self.engine.as_mut() else { return Err(no_catalog()) };
        let key = (event.source.clone(), event.id.clone());
        // Whatever its time (a resend may carry another one): the batches in flight and the
        // ledger answer first, the engine's memory (in `record`) for the rest.
        if self.late.contains_key(&key) || in_ledger(&event.source, &event.id).map_err(storage)?.is_some() {
            return Ok(None);
        }
        if engine.customer(&event.subject).is_none() {
            let message = format!("no customer with id {:?}: replay it once the customer exists", event.subject);
            return Ok(Some(Error::new(Code::UnknownReference, "/subject", message)));
        }
        let declared = match declared_charges(value) {
            Ok(d) => d,
            Err(e) => return Ok(Some(e)),
        };
        match engine.record_event(event, &declared, now) {
            Ok(o) if o.duplicate => return Ok(None),
            Ok(_) => {}
            Err(e) => return Ok(Some(e)),
        }
        self.write_event(key, event, value, now, changes);
        Ok(None)
    }

    /// `POST /v1/dead-letters/replay`: each dead letter is tried again as if its edge sent it
    /// now (the customer may exist by now); the ones recorded leave the table, the others stay
    /// with their reason.
    pub fn replay_dead_letters(
        &mut self,
        letters: &[DeadLetterRow],
        now: Timestamp,
        in_ledger: &mut InLedger<'_>,
    ) -> Result<(Reply, Changes), HubError> {
        let mut changes = self.ledger_changes()?;
        let mut still = Vec::new();
        for letter in letters {
            let value = parse(&letter.json).unwrap_or(Value::Null);
            let event = Event::decode(&value, now);
            match self.record_event(&value, &event, now, in_ledger, &mut changes)? {
                None => changes.dead_letters_removed.push(letter.seq),
                Some(e) => still.push(json!({ "seq": letter.seq, "error": error_json(&e) })),
            }
        }
        let replayed = changes.dead_letters_removed.len();
        let body = json!({ "replayed": replayed, "stillDead": still.len(), "problems": &still[..still.len().min(MAX_LISTED)] });
        Ok((Reply::json(200, &body)?, changes))
    }

    /// `POST /v1/events`: server-side ingestion. Each event is ingested by the hub's engine —
    /// hard limits enforced against the shared budget through the hub's own leases — and the
    /// accepted ones are stored. Each event comes decoded, with its JSON and its path in the body.
    pub fn ingest(
        &mut self,
        items: &[Incoming],
        now: Timestamp,
        in_ledger: &mut InLedger<'_>,
    ) -> Result<(Reply, Changes), HubError> {
        let mut changes = self.ledger_changes()?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut accepted = false;
        for Incoming { event, value, path } in items {
            // An event the ledger holds (or a batch in flight) is a duplicate, whatever its
            // time says; the engine's memory answers for the rest.
            let key = (event.source.clone(), event.id.clone());
            let stored = if self.late.contains_key(&key) {
                Some(None)
            } else {
                in_ledger(&event.source, &event.id).map_err(storage)?.map(Some)
            };
            if let Some(stored) = stored {
                // The same id again: the same request is a duplicate, another one a mismatch.
                if stored.is_some_and(|json| !same_payload(&json, event, now)) {
                    let message = "this (source, id) was used for an event with another subject, type or data";
                    let e = Error::new(Code::IdempotencyMismatch, "/id", message);
                    outcomes.push(json!({ "error": error_json(&e.under(path)) }));
                    continue;
                }
                outcomes.push(json!({ "allowed": true, "duplicate": true, "reason": "ok", "decisions": [], "charges": [], "unmatched": false }));
                continue;
            }
            let mut result = self.engine.as_mut().map(|e| e.ingest_event(event, now));
            if matches!(&result, Some(Ok(o)) if !o.allowed && lease_reason(o.reason)) {
                self.round(now, &mut changes);
                result = self.engine.as_mut().map(|e| e.ingest_event(event, now));
            }
            match result {
                Some(Ok(outcome)) => {
                    if outcome.allowed && !outcome.duplicate {
                        accepted = true;
                        self.write_event(key, event, value, now, &mut changes);
                    }
                    outcomes.push(serde_json::to_value(&outcome).unwrap_or(Value::Null));
                }
                Some(Err(e)) => outcomes.push(json!({ "error": error_json(&e.under(path)) })),
                None => return Err(no_catalog()),
            }
        }
        // Report the hub's use to the escrow in the same transaction as the events it covers.
        if accepted || self.engine.as_ref().is_some_and(|e| e.needs_sync(now)) {
            self.round(now, &mut changes);
        }
        let counts = counts(&outcomes);
        Ok((Reply::json(200, &json!({ "outcomes": outcomes, "counts": counts }))?, changes))
    }
}

/// How a batch went, at a glance: events `accepted` (new and allowed, `unmatched` among them:
/// nothing of the customer's prices or features covers them), `duplicate`, `denied` and
/// `rejected` (refused with an error).
fn counts(outcomes: &[Value]) -> Value {
    let is = |o: &Value, k: &str| o.get(k) == Some(&Value::Bool(true));
    let (mut accepted, mut unmatched, mut duplicate, mut denied, mut rejected) = (0u32, 0u32, 0u32, 0u32, 0u32);
    for o in outcomes {
        if o.get("error").is_some() {
            rejected += 1;
        } else if is(o, "duplicate") {
            duplicate += 1;
        } else if is(o, "allowed") {
            accepted += 1;
            unmatched += u32::from(is(o, "unmatched"));
        } else {
            denied += 1;
        }
    }
    json!({ "accepted": accepted, "unmatched": unmatched, "duplicate": duplicate, "denied": denied, "rejected": rejected })
}

/// Whether the ledger's `stored` JSON of an event carries the same subject, type and data as
/// `event` (a stored event that no longer decodes counts as the same: the ledger's copy stands).
fn same_payload(stored: &str, event: &Event, now: Timestamp) -> bool {
    let first = serde_json::from_str::<Value>(stored).ok().and_then(|v| Event::decode(&v, now).ok());
    first.is_none_or(|first| payload_print(&first) == payload_print(event))
}

/// An event as an edge sent it, and as decoded.
struct Sent<'a> {
    value: &'a Value,
    event: &'a Result<Event, Error>,
}
