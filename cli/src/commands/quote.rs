//! `tollgate quote`: a plan priced for a period's usage.

use tollgate::billing::{quote, QuoteRequest, Totals};
use tollgate::Catalog;

use crate::fail::{read, read_json, Fail};
use crate::table;

/// Prices one plan of a catalog for a period's usage: the first invoice a new subscriber would get.
#[derive(clap::Args)]
pub struct Args {
    /// The catalog (it must be valid)
    #[arg(long, value_name = "CATALOG.json")]
    catalog: String,
    /// The plan's id
    #[arg(long, value_name = "PLAN_ID")]
    plan: String,
    /// Usage: a map of metric id to quantity, or a request object
    #[arg(long, value_name = "USAGE.json")]
    usage: String,
    /// Print the quote as JSON
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Prints the quote.
    pub fn run(self) -> Result<u8, Fail> {
        let catalog = load_catalog(&self.catalog)?;
        let (usage_path, plan) = (&self.usage, self.plan.as_str());
        let request = QuoteRequest::from_value(&read_json(usage_path)?, Some(plan)).map_err(|problems| {
            Fail::input(format!("{usage_path}: {}", problems.first().map(ToString::to_string).unwrap_or_default()))
        })?;
        if request.plan_id != plan {
            return Err(Fail::input(format!("{usage_path} names plan {:?} but --plan is {plan:?}", request.plan_id)));
        }
        let q = quote(&catalog, &request).map_err(|e| Fail::file(usage_path, &e))?;
        if self.json {
            println!("{}", serde_json::to_string(&q)?);
            return Ok(0);
        }
        println!("Quote for plan {} ({})", q.plan_id, q.currency);
        table::print(&q.lines, Totals { subtotal: q.subtotal, discount: q.discount, total: q.total });
        Ok(0)
    }
}

fn load_catalog(path: &str) -> Result<Catalog, Fail> {
    Catalog::from_json(&read(path)?).map_err(|problems| {
        let first = problems.first().map(ToString::to_string).unwrap_or_default();
        Fail::input(format!("{path} is not a valid catalog ({} problem(s)); first: {first}", problems.len()))
    })
}
