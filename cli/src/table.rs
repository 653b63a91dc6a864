//! The text table of a quote or an invoice: description, billed quantity and amount per line,
//! then subtotal, discount (when not zero) and total.

use tollgate::billing::{Line, Totals};
use tollgate::money::plain;

/// Prints the lines and the totals, indented under a heading printed by the caller.
pub fn print(lines: &[Line], totals: Totals) {
    for line in lines {
        row(&line.description, &plain(line.quantity), &line.amount.to_string());
    }
    row("Subtotal", "", &totals.subtotal.to_string());
    if !totals.discount.is_zero() {
        row("Discount", "", &totals.discount.to_string());
    }
    row("Total", "", &totals.total.to_string());
}

fn row(description: &str, quantity: &str, amount: &str) {
    println!("  {description:<44} {quantity:>16} {amount:>14}");
}
