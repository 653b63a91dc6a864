//! `tollgate invoice`: the invoices of a billing period, replayed from a snapshot and events.

use tollgate::billing::{Invoice, InvoiceKind, Totals};
use tollgate::engine::Engine;
use tollgate::metering::Event;
use tollgate::time::Timestamp;
use tollgate::Error;

use crate::fail::{read, read_json, Fail};
use crate::table;

/// The invoices of the period that contains `--at`, as they are when the period closes.
#[derive(clap::Args)]
pub struct Args {
    /// The snapshot (catalog and customers) the engine starts from
    #[arg(long, value_name = "SNAPSHOT.json")]
    snapshot: String,
    /// Usage events, one JSON object per line
    #[arg(long, value_name = "EVENTS.jsonl")]
    events: String,
    /// The customer's id
    #[arg(long, value_name = "ID")]
    customer: String,
    /// A time inside the billing period (RFC 3339)
    #[arg(long, value_name = "TIME")]
    at: String,
    /// Print the invoices as JSON
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Replays the events (in time order, each at its own time) into an engine loaded from the
    /// snapshot, then prints the advance invoice (upfront fees), if any, and the arrears invoice.
    /// An event the engine refuses is listed on stderr (and under `rejected` with `--json`); it
    /// changes nothing, and the invoices are printed all the same.
    pub fn run(self) -> Result<u8, Fail> {
        let mut engine = Engine::from_snapshot(&read_json(&self.snapshot)?, Default::default())
            .map_err(|problems| Fail::snapshot(&self.snapshot, &problems))?;
        let at = Timestamp::parse(&self.at).ok_or_else(|| {
            Fail::input(format!("--at: invalid_timestamp ({:?} is not an RFC 3339 timestamp)", self.at))
        })?;
        let mut rejected = Vec::new();
        let mut events = Vec::new();
        for (i, line) in read(&self.events)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match tollgate::json::parse(line).and_then(|v| Event::decode(&v, at)) {
                Ok(event) => events.push((i + 1, event)),
                Err(e) => rejected.push(Rejected::new(i + 1, None, &e)),
            }
        }
        events.sort_by_key(|(_, e)| e.time);
        for (line, event) in &events {
            if let Err(e) = engine.ingest_event(event, event.time) {
                rejected.push(Rejected::new(*line, Some(&event.id), &e));
            }
        }
        rejected.sort_by_key(|r| r.line);
        for r in &rejected {
            eprintln!("{}:{}: rejected: {} at {} ({})", self.events, r.line, r.code, r.path, r.message);
        }
        let customer = self.customer.as_str();
        let fail = |e: Error| Fail::input(format!("--customer {customer}: {e}"));
        // As it closes: whatever the clock says, the period is taken as over.
        let end_of_time = Timestamp(i64::MAX);
        let doc = engine.close_invoice(customer, at, end_of_time).map_err(fail)?;
        let invoices = engine.invoices_at(customer, at, end_of_time).map_err(fail)?;
        let advance = invoices.into_iter().find(|i| i.kind == InvoiceKind::Advance);
        if self.json {
            let mut out = serde_json::to_value(&doc)?;
            if let Some(a) = &advance {
                out["advance"] = serde_json::to_value(a)?;
            }
            out["rejected"] = serde_json::to_value(&rejected)?;
            println!("{out}");
            return Ok(0);
        }
        if let Some(a) = &advance {
            print_invoice("Advance invoice", a);
        }
        print_invoice("Invoice", &doc);
        Ok(0)
    }
}

/// An event `invoice` could not apply.
#[derive(serde::Serialize)]
struct Rejected {
    /// Line in the events file.
    line: usize,
    /// The event's id, when it decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    code: &'static str,
    path: String,
    message: String,
}

impl Rejected {
    fn new(line: usize, id: Option<&str>, e: &Error) -> Rejected {
        Rejected {
            line,
            id: id.map(String::from),
            code: e.code.as_str(),
            path: e.path.clone(),
            message: e.message.clone(),
        }
    }
}

fn print_invoice(title: &str, doc: &Invoice) {
    println!(
        "{title} for {} ({}, plan {}) {} → {} ({})",
        doc.customer_id, doc.subscription_id, doc.plan_id, doc.period_start, doc.period_end, doc.currency
    );
    table::print(&doc.lines, Totals { subtotal: doc.subtotal, discount: doc.discount, total: doc.total });
}
