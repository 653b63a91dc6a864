//! Billing: invoice lines, totals and quotes (SPEC §6).

mod invoice;
mod line;
mod price_line;
mod quote;

pub use invoice::{billing_period, invoice, InstantUsage, Invoice, InvoiceStatus, UsageSource};
pub use line::{close_lines, Adjustments, Line, LineType, TierLine, Totals};
pub use price_line::{clamp_quantity, fee_line, UsageLine};
pub use quote::{quote, MetricUsage, Quote, QuoteRequest};
