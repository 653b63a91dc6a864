//! JSON plumbing shared by every decoder: a path-tracking field reader and dotted JSONPaths.

mod path;
mod read;
mod spelled;

pub use path::JsonPath;
pub use read::{child, decimal, decimal_map, index, json_path, parse, scalar_text, string, Fields, Problems};
pub(crate) use spelled::spelled;
pub use spelled::Spelled;
