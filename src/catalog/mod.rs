//! The catalog (SPEC §3): its model, decoding from JSON and validation. A catalog value exists
//! only if it is valid: both constructors return every problem instead.

mod decode;
mod model;
mod validate;

pub use decode::is_kebab;
pub(crate) use decode::{offline, price as decode_price};
pub use model::*;
pub(crate) use validate::price_references;

use alloc::vec::Vec;
use serde_json::Value;

use crate::error::Error;
use crate::json::parse;

impl Catalog {
    /// Parses and validates catalog JSON text.
    pub fn from_json(text: &str) -> Result<Catalog, Vec<Error>> {
        let value = parse(text).map_err(|e| alloc::vec![e])?;
        Catalog::from_value(&value)
    }

    /// Validates a parsed JSON value as a catalog.
    pub fn from_value(value: &Value) -> Result<Catalog, Vec<Error>> {
        let mut problems = Vec::new();
        match decode::catalog(value, &mut problems) {
            Some((c, positions)) => {
                let declared = decode::declared_ids(value);
                validate::check(&c, &positions, &declared, &mut problems);
                if problems.is_empty() {
                    Ok(c)
                } else {
                    Err(problems)
                }
            }
            None => Err(problems),
        }
    }
}

/// Every problem of a catalog's JSON text (empty = valid), each with its path and code.
pub fn validate(text: &str) -> Vec<Error> {
    Catalog::from_json(text).err().unwrap_or_default()
}
