//! Usage events in CloudEvents shape: `{ id, source, type, subject, time, data }`.

use alloc::format;
use alloc::string::String;
use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};
use crate::json::Fields;
use crate::time::Timestamp;

/// A usage event. `(source, id)` is its idempotency key; `subject` is the customer id.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Id, unique per source.
    pub id: String,
    /// Who produced it (`edge-fra`).
    pub source: String,
    /// CloudEvents `type`, matched against metrics' `eventType`.
    pub kind: String,
    /// The customer id.
    pub subject: String,
    /// When it happened.
    pub time: Timestamp,
    /// The payload metrics read from.
    pub data: Value,
}

impl Event {
    /// Decodes an event; `time` defaults to `now` when absent. Returns the first problem.
    pub fn decode(value: &Value, now: Timestamp) -> Result<Event> {
        let mut problems = alloc::vec::Vec::new();
        let event = decode_into(value, now, &mut problems);
        match (event, problems.into_iter().next()) {
            (Some(e), None) => Ok(e),
            (_, Some(first)) => Err(first),
            (None, None) => Err(Error::new(Code::InvalidType, "", "expected an event object")),
        }
    }
}

fn decode_into(value: &Value, now: Timestamp, problems: &mut crate::json::Problems) -> Option<Event> {
    let mut f = Fields::open(value, "", problems)?;
    let id = nonempty(&mut f, "id");
    let source = nonempty(&mut f, "source");
    let kind = nonempty(&mut f, "type");
    let subject = nonempty(&mut f, "subject");
    let time = match f.raw("time") {
        None | Some(Value::Null) => Some(now),
        Some(_) => f.opt_timestamp("time"),
    };
    let data = match f.opt("data") {
        Some((v @ Value::Object(_), _)) => Some(v.clone()),
        Some(_) => {
            f.fail("data", Code::InvalidType, "data must be an object");
            None
        }
        None => Some(Value::Object(Map::new())),
    };
    // CloudEvents attributes that carry no meaning here but are legal; `tollgatecharges` is
    // what an edge debited for the event, read by the hub only (`Engine::record`).
    for key in ["specversion", "datacontenttype", "dataschema", "tollgatecharges"] {
        f.opt(key);
    }
    f.finish();
    Some(Event { id: id?, source: source?, kind: kind?, subject: subject?, time: time?, data: data? })
}

fn nonempty(f: &mut Fields<'_, '_>, key: &str) -> Option<String> {
    let s = f.str(key)?;
    if s.is_empty() {
        f.fail(key, Code::InvalidValue, format!("{key} must not be empty"));
        return None;
    }
    Some(s)
}
