//! The `tollgate` command line (SPEC §9): parses the arguments (clap) and runs one subcommand,
//! which reads files, calls the library and prints JSON or text. A failure prints one line on
//! stderr: exit status 1 for bad input, 2 for a wrong use of the command line.

mod commands;
mod fail;
mod table;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use commands::{hub, invoice, keys, quote, rate, validate};
use fail::Fail;

/// Entitlement and pricing engine: exact-decimal pricing, quotas and billing.
#[derive(Parser)]
#[command(name = "tollgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a catalog and lists every problem
    Validate(validate::Args),
    /// Prices a plan for a period's usage
    Quote(quote::Args),
    /// Applies one price model to a quantity or to events
    Rate(rate::Args),
    /// The invoices of a billing period, from a snapshot and events
    Invoice(invoice::Args),
    /// Makes an Ed25519 key pair for signing snapshots
    Keygen(keys::Keygen),
    /// Signs a snapshot: prints its signed envelope
    Sign(keys::Sign),
    /// Checks a signed snapshot against a public key
    Verify(keys::Verify),
    /// Runs the hub server
    Hub(hub::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let outcome = match cli.command {
        Command::Validate(args) => args.run(),
        Command::Quote(args) => args.run(),
        Command::Rate(args) => args.run(),
        Command::Invoice(args) => args.run(),
        Command::Keygen(args) => args.run(),
        Command::Sign(args) => args.run(),
        Command::Verify(args) => args.run(),
        Command::Hub(args) => args.run(),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Fail(msg, code)) => {
            eprintln!("tollgate: {}", msg.replace('\n', " "));
            ExitCode::from(code)
        }
    }
}

/// Help and version go to stdout (exit 0); `tollgate` alone prints the help on stderr (exit 2);
/// any other clap error becomes the usual one line on stderr (exit 2).
fn clap_exit(e: &clap::Error) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
    } else {
        // The subcommand whose help to point at, if the arguments got that far.
        let sub = std::env::args().nth(1).filter(|a| Cli::command().find_subcommand(a).is_some());
        let help = match sub {
            Some(name) => format!("tollgate {name} --help"),
            None => "tollgate --help".into(),
        };
        eprintln!("tollgate: {}; try `{help}`", one_line(&e.render().to_string()));
    }
    ExitCode::from(code)
}

/// clap's error message and tips as one line (without its usage and "For more information"
/// lines), e.g. "unexpected argument '--curency' found; tip: a similar argument exists:
/// '--currency'"; an indented list after a colon is joined with commas.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut in_list = false;
    for raw in rendered.lines() {
        let line = raw.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            in_list = false;
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        match parts.last_mut() {
            Some(last) if raw.starts_with("  ") && (in_list || last.ends_with(':')) => {
                last.push_str(if in_list { ", " } else { " " });
                last.push_str(line);
                in_list = true;
            }
            _ => parts.push(line.to_string()),
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --plan <PLAN_ID>\n  \
                        --usage <USAGE.json>\n\nUsage: tollgate quote --catalog <CATALOG.json> --plan <PLAN_ID>\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: --plan <PLAN_ID>, --usage <USAGE.json>"
        );
        let rendered = "error: unexpected argument '--curency' found\n\n  tip: a similar argument exists: \
                        '--currency'\n\nUsage: tollgate rate [OPTIONS]\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--curency' found; tip: a similar argument exists: '--currency'"
        );
    }
}
