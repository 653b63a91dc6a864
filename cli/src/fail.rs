//! Failures as the command line reports them: one line on stderr, and the exit status (1 for bad
//! input, 2 for a wrong use of the command line). Also the file readers every command uses.

use serde_json::Value;
use tollgate::Error;

/// A failure to report: one line, and the exit status.
pub struct Fail(pub String, pub u8);

impl Fail {
    /// Bad input (exit status 1).
    pub fn input(msg: impl Into<String>) -> Fail {
        Fail(msg.into(), 1)
    }

    /// A wrong use of the command line (exit status 2).
    pub fn usage(msg: impl Into<String>) -> Fail {
        Fail(msg.into(), 2)
    }

    /// A library error about a command-line value: `--name: code (message)`.
    pub fn flag(name: &str, e: &Error) -> Fail {
        Fail::input(format!("--{name}: {} ({})", e.code, e.message))
    }

    /// A library error inside a file: `FILE: path: code (message)`.
    pub fn file(path: &str, e: &Error) -> Fail {
        Fail::input(format!("{path}: {e}"))
    }

    /// Problems of a snapshot file as one line: the count and the first.
    pub fn snapshot(path: &str, problems: &[Error]) -> Fail {
        let first = problems.first().map(ToString::to_string).unwrap_or_default();
        Fail::input(format!("{path} is not a valid snapshot ({} problem(s)); first: {first}", problems.len()))
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::input(e.to_string())
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Self {
        Fail::input(e.to_string())
    }
}

/// A UTF-8 file's text.
pub fn read(path: &str) -> Result<String, Fail> {
    std::fs::read_to_string(path).map_err(|e| Fail::input(format!("cannot read {path}: {e}")))
}

/// A JSON file, numbers kept exact.
pub fn read_json(path: &str) -> Result<Value, Fail> {
    tollgate::json::parse(&read(path)?).map_err(|e| Fail::file(path, &e))
}
