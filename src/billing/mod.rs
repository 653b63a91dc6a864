//! Billing: invoice lines, totals and quotes (SPEC §6).

mod line;
mod quote;

pub use line::{close_lines, Line, LineType, TierLine, Totals};
pub use quote::{clamp_quantity, quote, MetricUsage, Quote, QuoteRequest};
