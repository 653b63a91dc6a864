//! Reading JSON objects field by field while collecting every problem with its path.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::JsonPath;
use crate::error::{Code, Error, Result};
use crate::money::parse_decimal;
use crate::time::Timestamp;

/// Every problem found so far, in the order found.
pub type Problems = Vec<Error>;

/// Parses JSON text. Numbers keep their exact text (no float is involved).
#[inline(never)]
pub fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::new(Code::InvalidJson, "", format!("{e}")))
}

/// The pointer of `key` under `path` (RFC 6901 escaping).
#[inline(never)]
pub fn child(path: &str, key: &str) -> String {
    let mut out = String::with_capacity(path.len() + key.len() + 1);
    out.push_str(path);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// The pointer of element `i` under `path`.
#[inline(never)]
pub fn index(path: &str, i: usize) -> String {
    format!("{path}/{i}")
}

#[inline(never)]
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A decimal from a JSON string or number, exactly.
#[inline(never)]
pub fn decimal(v: &Value, path: &str) -> Result<Decimal> {
    let text = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return parse_decimal(&n.to_string()).ok_or_else(|| bad_decimal(path, &n.to_string())),
        other => {
            return Err(Error::new(
                Code::InvalidType,
                path,
                format!("expected a decimal string or number, got {}", type_name(other)),
            ))
        }
    };
    parse_decimal(text).ok_or_else(|| bad_decimal(path, text))
}

#[inline(never)]
fn bad_decimal(path: &str, text: &str) -> Error {
    Error::new(Code::InvalidDecimal, path, format!("{text:?} is not a decimal number"))
}

/// The fields of one JSON object, read one by one; [`Fields::finish`] reports the fields that
/// were never read as `unknown_field`. Every problem goes to the shared [`Problems`] list and the
/// reader returns `None` for that field, so decoding goes on and finds the other problems too.
pub struct Fields<'v, 'p> {
    map: &'v Map<String, Value>,
    path: String,
    problems: &'p mut Problems,
    read: Vec<&'v str>,
}

impl<'v, 'p> Fields<'v, 'p> {
    /// Opens `value` as an object, or records `invalid_type`.
    #[inline(never)]
    pub fn open(value: &'v Value, path: &str, problems: &'p mut Problems) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Fields { map, path: path.to_string(), problems, read: Vec::new() }),
            other => {
                problems.push(Error::new(
                    Code::InvalidType,
                    path,
                    format!("expected an object, got {}", type_name(other)),
                ));
                None
            }
        }
    }

    /// The object's own path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The shared problem list, for nested decoders.
    pub fn problems(&mut self) -> &mut Problems {
        self.problems
    }

    /// Records a problem at `key` of this object.
    #[inline(never)]
    pub fn fail(&mut self, key: &str, code: Code, message: impl Into<String>) {
        let path = child(&self.path, key);
        self.problems.push(Error::new(code, path, message));
    }

    /// Records a ready-made error.
    #[inline(never)]
    pub fn push(&mut self, error: Error) {
        self.problems.push(error);
    }

    /// The raw value of `key` and its path, `None` if absent or null.
    #[inline(never)]
    pub fn opt(&mut self, key: &str) -> Option<(&'v Value, String)> {
        let (k, v) = self.map.get_key_value(key)?;
        self.read.push(k.as_str());
        (!v.is_null()).then(|| (v, child(&self.path, key)))
    }

    /// True when `key` is present and not null (reading it is still up to the caller).
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The raw value of `key`, null included, without checks.
    #[inline(never)]
    pub fn raw(&mut self, key: &str) -> Option<&'v Value> {
        let (k, v) = self.map.get_key_value(key)?;
        self.read.push(k.as_str());
        Some(v)
    }

    /// Like [`Fields::opt`] but records `missing_field` when absent or null.
    #[inline(never)]
    pub fn req(&mut self, key: &str) -> Option<(&'v Value, String)> {
        let found = self.opt(key);
        if found.is_none() {
            self.fail(key, Code::MissingField, format!("{key:?} is required"));
        }
        found
    }

    fn typed<T>(&mut self, key: &str, required: bool, f: impl FnOnce(&'v Value, &str) -> Result<T>) -> Option<T> {
        let (v, path) = if required { self.req(key)? } else { self.opt(key)? };
        f(v, &path).map_err(|e| self.problems.push(e)).ok()
    }

    /// A required string.
    #[inline(never)]
    pub fn str(&mut self, key: &str) -> Option<String> {
        self.typed(key, true, string)
    }

    /// An optional string.
    #[inline(never)]
    pub fn opt_str(&mut self, key: &str) -> Option<String> {
        self.typed(key, false, string)
    }

    /// A required decimal (string or number).
    #[inline(never)]
    pub fn decimal(&mut self, key: &str) -> Option<Decimal> {
        self.typed(key, true, decimal)
    }

    /// An optional decimal.
    #[inline(never)]
    pub fn opt_decimal(&mut self, key: &str) -> Option<Decimal> {
        self.typed(key, false, decimal)
    }

    /// An optional boolean.
    #[inline(never)]
    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        self.typed(key, false, |v, p| {
            v.as_bool()
                .ok_or_else(|| Error::new(Code::InvalidType, p, format!("expected a boolean, got {}", type_name(v))))
        })
    }

    /// A required RFC 3339 timestamp.
    #[inline(never)]
    pub fn timestamp(&mut self, key: &str) -> Option<Timestamp> {
        self.typed(key, true, timestamp)
    }

    /// An optional RFC 3339 timestamp.
    #[inline(never)]
    pub fn opt_timestamp(&mut self, key: &str) -> Option<Timestamp> {
        self.typed(key, false, timestamp)
    }

    /// An optional non-negative integer (a JSON number without fraction or exponent).
    #[inline(never)]
    pub fn opt_u64(&mut self, key: &str) -> Option<u64> {
        self.typed(key, false, |v, p| {
            v.as_u64().ok_or_else(|| {
                Error::new(Code::InvalidType, p, format!("expected a non-negative integer, got {}", type_name(v)))
            })
        })
    }

    /// An optional dotted JSONPath.
    #[inline(never)]
    pub fn opt_json_path(&mut self, key: &str) -> Option<JsonPath> {
        self.typed(key, false, json_path)
    }

    /// A required array: its items with their paths.
    #[inline(never)]
    pub fn array(&mut self, key: &str) -> Option<Vec<(&'v Value, String)>> {
        self.typed(key, true, items)
    }

    /// An optional array.
    #[inline(never)]
    pub fn opt_array(&mut self, key: &str) -> Option<Vec<(&'v Value, String)>> {
        self.typed(key, false, items)
    }

    /// An optional object: its entries with their paths, in key order.
    #[inline(never)]
    pub fn opt_object(&mut self, key: &str) -> Option<Vec<(&'v str, &'v Value, String)>> {
        self.typed(key, false, entries)
    }

    /// An optional string that must be one of `allowed`; returns its index in `allowed`.
    #[inline(never)]
    pub fn opt_choice(&mut self, key: &str, allowed: &[&str]) -> Option<usize> {
        self.typed(key, false, |v, p| choice(v, p, allowed))
    }

    /// A required string that must be one of `allowed`.
    #[inline(never)]
    pub fn choice(&mut self, key: &str, allowed: &[&str]) -> Option<usize> {
        self.typed(key, true, |v, p| choice(v, p, allowed))
    }

    /// Ends reading: every field never asked for is an `unknown_field`.
    #[inline(never)]
    pub fn finish(self) {
        for key in self.map.keys() {
            if !self.read.contains(&key.as_str()) {
                let path = child(&self.path, key);
                self.problems.push(Error::new(Code::UnknownField, path, format!("unknown field {key:?}")));
            }
        }
    }
}

/// An RFC 3339 timestamp value.
#[inline(never)]
pub fn timestamp(v: &Value, path: &str) -> Result<Timestamp> {
    let text = string(v, path)?;
    Timestamp::parse(&text)
        .ok_or_else(|| Error::new(Code::InvalidTimestamp, path, format!("{text:?} is not an RFC 3339 timestamp")))
}

/// A string value.
#[inline(never)]
pub fn string(v: &Value, path: &str) -> Result<String> {
    match v.as_str() {
        // No database's text type holds U+0000 (PostgreSQL refuses it): refused at the door,
        // so nothing accepted can later fail to be stored.
        Some(s) if s.contains('\0') => Err(Error::new(Code::InvalidValue, path, "a string may not contain U+0000")),
        Some(s) => Ok(s.to_string()),
        None => Err(Error::new(Code::InvalidType, path, format!("expected a string, got {}", type_name(v)))),
    }
}

/// A dotted JSONPath value.
#[inline(never)]
pub fn json_path(v: &Value, path: &str) -> Result<JsonPath> {
    let text = string(v, path)?;
    JsonPath::parse(&text).ok_or_else(|| {
        Error::new(Code::InvalidJsonPath, path, format!("{text:?} is not a dotted JSONPath like \"$.a.b\""))
    })
}

#[inline(never)]
fn items<'v>(v: &'v Value, path: &str) -> Result<Vec<(&'v Value, String)>> {
    match v {
        Value::Array(a) => Ok(a.iter().enumerate().map(|(i, item)| (item, index(path, i))).collect()),
        other => Err(Error::new(Code::InvalidType, path, format!("expected an array, got {}", type_name(other)))),
    }
}

#[inline(never)]
fn entries<'v>(v: &'v Value, path: &str) -> Result<Vec<(&'v str, &'v Value, String)>> {
    match v {
        Value::Object(m) => Ok(m.iter().map(|(k, item)| (k.as_str(), item, child(path, k))).collect()),
        other => Err(Error::new(Code::InvalidType, path, format!("expected an object, got {}", type_name(other)))),
    }
}

#[inline(never)]
fn choice(v: &Value, path: &str, allowed: &[&str]) -> Result<usize> {
    let s = string(v, path)?;
    allowed
        .iter()
        .position(|a| *a == s)
        .ok_or_else(|| Error::new(Code::InvalidValue, path, format!("{s:?} is not one of {}", allowed.join(", "))))
}

/// A map of string keys to decimals (e.g. the catalog's `rates`).
#[inline(never)]
pub fn decimal_map(v: &Value, path: &str, problems: &mut Problems) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    match entries(v, path) {
        Ok(list) => {
            for (k, item, p) in list {
                match decimal(item, &p) {
                    Ok(d) => {
                        out.insert(k.to_string(), d);
                    }
                    Err(e) => problems.push(e),
                }
            }
        }
        Err(e) => problems.push(e),
    }
    out
}

/// The text of a scalar: strings as they are, numbers and booleans as their JSON text; `None`
/// for null, arrays and objects. One rule for every place a value becomes a key (a unique-count
/// observation, a `groupBy` group, a matrix cell).
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}
