//! Billing: invoice lines, totals, the invoice lifecycle and quotes (SPEC §6, §13).

mod adjust;
mod fees;
mod invoice;
mod line;
mod price_line;
mod quote;

pub use adjust::{billed_from_json, Billed};
pub use invoice::{
    billing_period, invoice, invoice_id, Billing, InstantUsage, Invoice, InvoiceKind, InvoiceStatus, UsageSource,
};
pub use line::{close_lines, Adjustments, Adjusts, Line, LineType, TierLine, Totals};
pub use price_line::{clamp_quantity, fee_line, MetricUsage, UsageLine};
pub use quote::{quote, Quote, QuoteRequest};
