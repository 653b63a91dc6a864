//! Dotted JSONPath (`$.a.b`): the only form the catalog uses to point into event data.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

/// A parsed `$.a.b` path: the keys to follow from the root object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JsonPath {
    text: String,
    keys: Vec<String>,
}

impl JsonPath {
    /// Parses `$.key(.key)*`; keys are non-empty and hold no `.`, `[`, `]` or spaces.
    pub fn parse(text: &str) -> Option<JsonPath> {
        let rest = text.strip_prefix("$.")?;
        let keys: Vec<String> = rest.split('.').map(ToString::to_string).collect();
        let ok = keys
            .iter()
            .all(|k| !k.is_empty() && !k.chars().any(|c| matches!(c, '[' | ']' | '*' | '$') || c.is_whitespace()));
        ok.then(|| JsonPath { text: text.to_string(), keys })
    }

    /// The value at this path in `data`, if every step exists.
    pub fn lookup<'v>(&self, data: &'v Value) -> Option<&'v Value> {
        self.keys.iter().try_fold(data, |v, k| v.as_object()?.get(k))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The keys, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_looks_up() {
        let p = JsonPath::parse("$.usage.input_tokens").unwrap();
        assert_eq!(p.keys(), ["usage", "input_tokens"]);
        let data = json!({"usage": {"input_tokens": 7}});
        assert_eq!(p.lookup(&data).unwrap().to_string(), "7");
        assert!(JsonPath::parse("$.missing").unwrap().lookup(&data).is_none());
        for bad in ["", "$", "$.", "a.b", "$.a..b", "$.a[0]", "$.*", "$. a"] {
            assert!(JsonPath::parse(bad).is_none(), "{bad:?}");
        }
    }
}
