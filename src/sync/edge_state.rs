//! Exporting an edge's sync state to durable storage (a Durable Object, a file) and importing it
//! again, so a restarted edge keeps its leases and never drops unacknowledged usage.
//!
//! The format is JSON: `{ "edgeId", "bootId", "seq", "ttlMs", "lastAnswer", "inFlight":
//! [[seq, ms]], "leases": [..], "finished": [..], "events": [{ "seq", "event" }] }`, with
//! decimals as strings and edge times as integer milliseconds.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::edge::{EdgeLease, EdgeLeases, Finished};
use super::message::{LeaseKey, Mode};
use crate::error::{Code, Error};
use crate::json::{Fields, Problems};
use crate::time::Timestamp;

const MODES: [&str; 3] = ["normal", "precise", "closed"];

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Normal => MODES[0],
        Mode::Precise => MODES[1],
        Mode::Closed => MODES[2],
    }
}

fn key_json(k: &LeaseKey) -> (String, String, String) {
    (k.customer_id.clone(), k.key.clone(), k.period.to_rfc3339())
}

impl EdgeLeases {
    /// The whole state as JSON text.
    pub fn export_state(&self) -> Result<String, Error> {
        let leases: Vec<Value> = self
            .leases
            .iter()
            .map(|(k, l)| {
                let (c, key, period) = key_json(k);
                json!({ "customerId": c, "key": key, "period": period, "epoch": l.epoch,
                    "granted": l.granted, "returned": l.returned, "used": l.used,
                    "expiresAt": l.expires_at.map(|t| t.0), "mode": mode_name(l.mode),
                    "othersUsage": l.others_usage, "demand": l.demand, "usedAtRequest": l.used_at_request,
                    "allowance": l.allowance, "budget": (l.budget != Decimal::MAX).then_some(l.budget) })
            })
            .collect();
        let finished: Vec<Value> = self
            .finished
            .iter()
            .map(|((k, epoch), f)| {
                let (c, key, period) = key_json(k);
                json!({ "customerId": c, "key": key, "period": period, "epoch": epoch,
                    "granted": f.granted, "returned": f.returned, "used": f.used, "firstSeq": f.first_seq })
            })
            .collect();
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|(seq, e)| json!({ "seq": seq, "event": e.to_value(&self.edge_id, &self.boot_id) }))
            .collect();
        let in_flight: Vec<Value> = self.in_flight.iter().map(|(s, t)| json!([s, t.0])).collect();
        let state = json!({ "edgeId": self.edge_id, "bootId": self.boot_id, "seq": self.seq,
            "ttlMs": self.ttl_ms, "lastAnswer": self.last_answer.map(|t| t.0), "inFlight": in_flight,
            "leases": leases, "finished": finished, "events": events });
        serde_json::to_string(&state).map_err(|_| Error::new(Code::InvalidValue, "", "state is not serialisable"))
    }

    /// A state exported by [`EdgeLeases::export_state`], validated whole.
    pub fn import_state(value: &Value) -> Result<EdgeLeases, Vec<Error>> {
        let mut problems = Problems::new();
        let state = decode(value, &mut problems);
        match state {
            Some(s) if problems.is_empty() => Ok(s),
            _ if problems.is_empty() => Err(alloc::vec![Error::new(Code::InvalidType, "", "expected an object")]),
            _ => Err(problems),
        }
    }
}

fn millis(f: &mut Fields<'_, '_>, key: &str) -> Option<Option<Timestamp>> {
    match f.raw(key) {
        None | Some(Value::Null) => Some(None),
        Some(v) => match v.as_i64() {
            Some(ms) => Some(Some(Timestamp(ms))),
            None => {
                f.fail(key, Code::InvalidType, "expected integer milliseconds");
                None
            }
        },
    }
}

fn counter(f: &mut Fields<'_, '_>, key: &str) -> Option<Decimal> {
    let d = f.decimal(key)?;
    if d < Decimal::ZERO {
        f.fail(key, Code::InvalidValue, "must not be negative");
        return None;
    }
    Some(d)
}

fn lease_key(f: &mut Fields<'_, '_>) -> Option<(LeaseKey, u32)> {
    let customer_id = f.str("customerId");
    let key = f.str("key");
    let period = f.timestamp("period");
    // Absent = 0, as on the wire; one out of range is an error, never a lease dropped.
    let epoch = match f.opt_u64("epoch") {
        None => matches!(f.raw("epoch"), None | Some(Value::Null)).then_some(0),
        Some(e) => u32::try_from(e).ok().or_else(|| {
            f.fail("epoch", Code::InvalidValue, "epoch must be at most 4294967295");
            None
        }),
    };
    Some((LeaseKey { customer_id: customer_id?, key: key?, period: period? }, epoch?))
}

fn decode(value: &Value, problems: &mut Problems) -> Option<EdgeLeases> {
    let mut f = Fields::open(value, "", problems)?;
    let edge_id = f.str("edgeId");
    let boot_id = f.str("bootId");
    let seq = f.opt_u64("seq").unwrap_or(0);
    let ttl_ms = f.opt_u64("ttlMs").unwrap_or(0);
    let last_answer = millis(&mut f, "lastAnswer");
    let mut in_flight = BTreeMap::new();
    for (v, path) in f.opt_array("inFlight").unwrap_or_default() {
        match (v.get(0).and_then(Value::as_u64), v.get(1).and_then(Value::as_i64)) {
            (Some(s), Some(t)) => {
                in_flight.insert(s, Timestamp(t));
            }
            _ => f.push(Error::new(Code::InvalidValue, path, "expected [seq, milliseconds]")),
        }
    }
    let mut leases = BTreeMap::new();
    for (v, path) in f.opt_array("leases").unwrap_or_default() {
        let Some(mut l) = Fields::open(v, &path, f.problems()) else { continue };
        let key = lease_key(&mut l);
        let granted = counter(&mut l, "granted");
        let returned = counter(&mut l, "returned");
        let used = counter(&mut l, "used");
        let expires_at = millis(&mut l, "expiresAt");
        let mode = l.choice("mode", &MODES).and_then(|i| [Mode::Normal, Mode::Precise, Mode::Closed].get(i).copied());
        let others_usage = counter(&mut l, "othersUsage");
        let demand = counter(&mut l, "demand");
        let used_at_request = counter(&mut l, "usedAtRequest");
        let allowance = l.opt_decimal("allowance").unwrap_or_default();
        let budget = l.opt_decimal("budget").unwrap_or(Decimal::MAX);
        l.finish();
        if let (Some((key, epoch)), Some(granted), Some(returned), Some(used), Some(expires_at), Some(mode)) =
            (key, granted, returned, used, expires_at, mode)
        {
            let lease = EdgeLease {
                epoch,
                granted,
                returned,
                used,
                expires_at,
                mode,
                others_usage: others_usage.unwrap_or_default(),
                demand: demand.unwrap_or_default(),
                used_at_request: used_at_request.unwrap_or_default(),
                allowance,
                budget,
            };
            leases.insert(key, lease);
        }
    }
    let mut finished = BTreeMap::new();
    for (v, path) in f.opt_array("finished").unwrap_or_default() {
        let Some(mut l) = Fields::open(v, &path, f.problems()) else { continue };
        let key = lease_key(&mut l);
        let granted = counter(&mut l, "granted");
        let returned = counter(&mut l, "returned");
        let used = counter(&mut l, "used");
        let first_seq = l.opt_u64("firstSeq").unwrap_or(0);
        l.finish();
        if let (Some(key), Some(granted), Some(returned), Some(used)) = (key, granted, returned, used) {
            finished.insert(key, Finished { granted, returned, used, first_seq });
        }
    }
    let mut events = Vec::new();
    for (v, path) in f.opt_array("events").unwrap_or_default() {
        let Some(mut e) = Fields::open(v, &path, f.problems()) else { continue };
        let seq = e.opt_u64("seq").unwrap_or(0);
        let event = e.req("event").map(|(v, _)| v.clone());
        e.finish();
        events.extend(event.map(|ev| (seq, super::edge::Queued::Event(ev))));
    }
    f.finish();
    Some(EdgeLeases {
        edge_id: edge_id?,
        boot_id: boot_id?,
        seq,
        in_flight,
        leases,
        finished,
        events,
        last_answer: last_answer?,
        ttl_ms,
    })
}
