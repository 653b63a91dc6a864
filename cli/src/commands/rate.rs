//! `tollgate rate`: one price model applied to a quantity or to events. The request is decoded by
//! the core's `pricing::rate_request` (shared with the `rate` fuzz target); this reads the files.

use std::collections::BTreeMap;

use tollgate::money::{plain, round_half_away};
use tollgate::pricing::rate_request::{self, RateInput};

use crate::fail::{read_json, Fail};

/// Applies one price model to a quantity or to events.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["quantity", "events"])))]
pub struct Args {
    /// A price model, or a price object that carries one under "model"
    #[arg(long, value_name = "MODEL.json")]
    model: String,
    /// The period's total quantity: a decimal, plain (2500, -3, 0.5) or scientific (1e6)
    #[arg(long, value_name = "Q", allow_negative_numbers = true)]
    quantity: Option<String>,
    /// With --quantity: the number of events, for a percentage model's fixed fee
    #[arg(long, value_name = "N", allow_negative_numbers = true, conflicts_with = "events")]
    event_count: Option<String>,
    /// A JSON array of events: bare values, or {"value": V, "data": {...}}
    #[arg(long, value_name = "EVENTS.json")]
    events: Option<String>,
    /// Market rates for dynamic prices: {"gpu-spot": "3.50"}, or the same under "rates"
    #[arg(long, value_name = "RATES.json")]
    rates: Option<String>,
    /// The ISO-4217 currency that decides the rounding
    #[arg(long, value_name = "CODE", default_value = "USD")]
    currency: String,
    /// Print the amounts as JSON
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Prints the exact amount and the amount rounded to the currency's minor unit.
    pub fn run(self) -> Result<u8, Fail> {
        let model = rate_request::model(&read_json(&self.model)?).map_err(|e| Fail::file(&self.model, &e))?;
        let currency = rate_request::currency(&self.currency).map_err(|e| Fail::flag("currency", &e))?;
        let rates = match &self.rates {
            Some(path) => rate_request::rates(&read_json(path)?).map_err(|e| Fail::file(path, &e))?,
            None => BTreeMap::new(),
        };
        let rated = match (&self.quantity, &self.events) {
            (Some(q), _) => {
                let quantity = rate_request::number(q).map_err(|e| Fail::flag("quantity", &e))?;
                let event_count = self.event_count.as_deref().map(rate_request::number).transpose();
                let event_count = event_count.map_err(|e| Fail::flag("event-count", &e))?;
                RateInput::Total { quantity, event_count }.rate(&model, &rates)?
            }
            (None, Some(path)) => {
                let events = rate_request::events(&read_json(path)?).map_err(|e| Fail::file(path, &e))?;
                RateInput::Events(events).rate(&model, &rates).map_err(|e| Fail::file(path, &e))?
            }
            // clap's "input" group requires exactly one of the two.
            (None, None) => return Err(Fail::usage("rate needs exactly one of --quantity and --events")),
        };
        let precise = plain(rated.amount);
        let amount = round_half_away(rated.amount, currency.exponent())?;
        let code = currency.code();
        if self.json {
            println!("{{\"preciseAmount\": \"{precise}\", \"amount\": \"{amount}\", \"currency\": \"{code}\"}}");
        } else {
            println!("{amount} {code} (precise {precise})");
        }
        Ok(0)
    }
}
