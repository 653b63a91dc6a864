//! The memory a request may cost, bounded before it is parsed: a JSON body is first walked by
//! serde_json's own parser without building anything, counting its values, and refused (413)
//! past [`MAX_JSON_NODES`]. A 4 MiB body of a million tiny elements would otherwise become a
//! million `Value`s (and a million error objects) before any rule could look at it.

use core::cell::Cell;
use core::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Most JSON values (objects, arrays, strings, numbers, literals, keys) one request may hold:
/// a sync page of 1,000 events is about 20,000; a catalog of 5,000 prices about 100,000.
pub const MAX_JSON_NODES: usize = 250_000;

/// True when `bytes` is JSON with more than `limit` values (a body to refuse unparsed).
pub fn over_budget(bytes: &[u8], limit: usize) -> bool {
    let left = Cell::new(limit);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    matches!(Counter { left: &left }.deserialize(&mut de), Err(e) if e.to_string().starts_with(OVER))
}

const OVER: &str = "over the node budget";

/// Visits one value and everything in it, spending one unit of `left` per value.
#[derive(Clone, Copy)]
struct Counter<'a> {
    left: &'a Cell<usize>,
}

impl Counter<'_> {
    fn spend<E: serde::de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => Err(E::custom(OVER)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.spend()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.spend()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.spend()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.spend()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.spend()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // (With exact numbers, serde_json hands a number over as a one-entry map too.)
        self.spend()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_value_and_stops_at_the_limit() {
        // An object, its key, an array and its five elements: eight values.
        let doc = br#"{"a":["x",true,null,{},[]]}"#;
        assert!(!over_budget(doc, 8));
        assert!(over_budget(doc, 7));
        // Not JSON is not "over": the parse that follows reports it with its position.
        assert!(!over_budget(b"[1,", 10));
        let big = format!("[{}1]", "1,".repeat(300_000));
        assert!(over_budget(big.as_bytes(), MAX_JSON_NODES));
    }
}
