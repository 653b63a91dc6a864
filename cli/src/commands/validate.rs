//! `tollgate validate`: every problem of a catalog.

use serde_json::json;

use crate::fail::{read, Fail};

/// Checks a catalog against every rule and lists all problems, not just the first.
#[derive(clap::Args)]
pub struct Args {
    /// The catalog file
    #[arg(value_name = "CATALOG.json")]
    catalog: String,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Exit status 0 for a valid catalog, 1 otherwise.
    pub fn run(self) -> Result<u8, Fail> {
        let path = &self.catalog;
        let problems = tollgate::validate(&read(path)?);
        if self.json {
            let list: Vec<_> = problems
                .iter()
                .map(|p| json!({ "path": p.path, "code": p.code.as_str(), "message": p.message }))
                .collect();
            println!("{}", json!({ "valid": problems.is_empty(), "problems": list }));
        } else if problems.is_empty() {
            println!("{path}: valid");
        } else {
            for p in &problems {
                println!("{p}");
            }
            eprintln!("tollgate: {path}: {} problem(s)", problems.len());
        }
        Ok(u8::from(!problems.is_empty()))
    }
}
