//! JSON plumbing shared by every decoder: a path-tracking field reader and dotted JSONPaths.

mod path;
mod read;

pub use path::JsonPath;
pub use read::{child, decimal, decimal_map, index, json_path, parse, scalar_text, string, Fields, Problems};
