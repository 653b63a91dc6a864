//! The `tollgate` command line (SPEC §9). Reads files, calls the library, prints JSON or text.
//! Bad input exits non-zero with one line on stderr.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;
use tollgate::billing::{quote, QuoteRequest};
use tollgate::engine::Snapshot;
use tollgate::json::{decimal, parse};
use tollgate::money::{plain, round_half_away};
use tollgate::pricing::{Context, DataEvent, Model};
use tollgate::sync::signed::{self, KeyPair, Opened, PublicKey, KEY_LEN};
use tollgate::{Catalog, Currency, Decimal, Error};

const USAGE: &str = "usage:
  tollgate validate CATALOG.json [--json]
  tollgate quote --catalog CATALOG.json --plan PLAN_ID --usage USAGE.json [--json]
  tollgate rate --model MODEL.json (--quantity Q [--event-count N] | --events EVENTS.json)
                [--rates RATES.json] [--currency USD] [--json]
  tollgate invoice --snapshot SNAPSHOT.json --events EVENTS.jsonl --customer ID --at TIME [--json]
  tollgate keygen [--out KEY.json] [--key-id ID]
  tollgate sign --key KEY.json SNAPSHOT.json
  tollgate verify --public-key BASE64 SIGNED.json [--json]
  tollgate hub [--db tollgate.db] [--listen 127.0.0.1:8787] [--www www] [--key KEY.json]
               [--seed SNAPSHOT.json] [--ttl-ms 30000] [--header-timeout-ms 10000]
               [--body-timeout-ms 30000] [--max-connections 4096] [--max-future-ms 300000]
               [--max-edge-share 50] [--snapshot-ttl-ms 604800000]    (builds with --features hub)";

/// A failure to report: one line, and the exit code.
struct Fail(String, u8);

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail(e.to_string(), 1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(msg, code)) => {
            eprintln!("tollgate: {}", msg.replace('\n', " "));
            ExitCode::from(code)
        }
    }
}

fn run(args: &[String]) -> Result<u8, Fail> {
    let (command, rest) = args.split_first().ok_or_else(|| Fail(USAGE.replace('\n', " "), 2))?;
    let opts = Opts::parse(rest)?;
    match command.as_str() {
        "validate" => validate(&opts.allow(&[], 1)?),
        "quote" => quote_cmd(&opts.allow(&["catalog", "plan", "usage"], 0)?),
        "rate" => rate(&opts.allow(&["model", "quantity", "event-count", "events", "rates", "currency"], 0)?),
        "invoice" => invoice_cmd(&opts.allow(&["snapshot", "events", "customer", "at"], 0)?),
        "keygen" => keygen(&opts.allow(&["out", "key-id"], 0)?),
        "sign" => sign_cmd(&opts.allow(&["key"], 1)?),
        "verify" => verify_cmd(&opts.allow(&["public-key"], 1)?),
        "hub" => hub_cmd(&opts.allow(
            &[
                "db",
                "listen",
                "www",
                "key",
                "seed",
                "ttl-ms",
                "header-timeout-ms",
                "body-timeout-ms",
                "max-connections",
                "max-future-ms",
                "max-edge-share",
                "snapshot-ttl-ms",
            ],
            0,
        )?),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(Fail(format!("unknown command {other:?}; try `tollgate help`"), 2)),
    }
}

/// `--flag value` pairs, `--json`, and positional arguments.
struct Opts {
    flags: BTreeMap<String, String>,
    positional: Vec<String>,
    json: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, Fail> {
        let mut opts = Opts { flags: BTreeMap::new(), positional: Vec::new(), json: false };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--json" {
                opts.json = true;
            } else if let Some(name) = a.strip_prefix("--") {
                let value = it.next().ok_or_else(|| Fail(format!("--{name} needs a value"), 2))?;
                opts.flags.insert(name.to_string(), value.clone());
            } else {
                opts.positional.push(a.clone());
            }
        }
        Ok(opts)
    }

    /// Rejects flags a command does not know and extra positional arguments.
    fn allow(self, flags: &[&str], positional: usize) -> Result<Opts, Fail> {
        if let Some(unknown) = self.flags.keys().find(|k| !flags.contains(&k.as_str())) {
            return Err(Fail(format!("unknown option --{unknown}; try `tollgate help`"), 2));
        }
        if self.positional.len() > positional {
            return Err(Fail(format!("unexpected argument {:?}; try `tollgate help`", self.positional[positional]), 2));
        }
        Ok(self)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    fn need(&self, name: &str) -> Result<&str, Fail> {
        self.get(name).ok_or_else(|| Fail(format!("--{name} is required"), 2))
    }
}

fn read(path: &str) -> Result<String, Fail> {
    std::fs::read_to_string(path).map_err(|e| Fail(format!("cannot read {path}: {e}"), 1))
}

fn read_json(path: &str) -> Result<Value, Fail> {
    parse(&read(path)?).map_err(|e| Fail(format!("{path}: {e}"), 1))
}

fn validate(opts: &Opts) -> Result<u8, Fail> {
    let path = opts.positional.first().ok_or_else(|| Fail("validate needs a catalog file".into(), 2))?;
    let problems = tollgate::validate(&read(path)?);
    if opts.json {
        let list: Vec<Value> = problems
            .iter()
            .map(|p| serde_json::json!({ "path": p.path, "code": p.code.as_str(), "message": p.message }))
            .collect();
        println!("{}", serde_json::json!({ "valid": problems.is_empty(), "problems": list }));
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

fn load_catalog(path: &str) -> Result<Catalog, Fail> {
    Catalog::from_json(&read(path)?).map_err(|problems| {
        let first = problems.first().map(ToString::to_string).unwrap_or_default();
        Fail(format!("{path} is not a valid catalog ({} problem(s)); first: {first}", problems.len()), 1)
    })
}

fn quote_cmd(opts: &Opts) -> Result<u8, Fail> {
    let catalog = load_catalog(opts.need("catalog")?)?;
    let usage_path = opts.need("usage")?;
    let plan = opts.need("plan")?;
    let request = QuoteRequest::from_value(&read_json(usage_path)?, Some(plan)).map_err(|problems| {
        Fail(format!("{usage_path}: {}", problems.first().map(ToString::to_string).unwrap_or_default()), 1)
    })?;
    if request.plan_id != plan {
        let msg = format!("{usage_path} names plan {:?} but --plan is {plan:?}", request.plan_id);
        return Err(Fail(msg, 1));
    }
    let q = quote(&catalog, &request).map_err(|e| Fail(format!("{usage_path}: {e}"), 1))?;
    if opts.json {
        println!("{}", serde_json::to_string(&q).map_err(|e| Fail(e.to_string(), 1))?);
        return Ok(0);
    }
    println!("Quote for plan {} ({})", q.plan_id, q.currency);
    for line in &q.lines {
        println!("  {:<44} {:>16} {:>14}", line.description, plain(line.quantity), line.amount.to_string());
    }
    println!("  {:<44} {:>16} {:>14}", "Subtotal", "", q.subtotal.to_string());
    if !q.discount.is_zero() {
        println!("  {:<44} {:>16} {:>14}", "Discount", "", q.discount.to_string());
    }
    println!("  {:<44} {:>16} {:>14}", "Total", "", q.total.to_string());
    Ok(0)
}

/// `invoice`: replays the events (in time order, each at its own time) into an engine loaded
/// from the snapshot, then prints the invoices of the billing period that contains `--at` as
/// it closes: the advance invoice (upfront fees), if any, and the arrears invoice. An event
/// the engine refuses is listed on stderr (and under `rejected` with `--json`); it changes
/// nothing, and the invoice is printed all the same.
fn invoice_cmd(opts: &Opts) -> Result<u8, Fail> {
    let snapshot_path = opts.need("snapshot")?;
    let mut engine = tollgate::engine::Engine::from_snapshot(&read_json(snapshot_path)?, Default::default())
        .map_err(|problems| snapshot_problems(snapshot_path, &problems))?;
    let at_text = opts.need("at")?;
    let at = tollgate::time::Timestamp::parse(at_text)
        .ok_or_else(|| Fail(format!("--at: invalid_timestamp ({at_text:?} is not an RFC 3339 timestamp)"), 1))?;
    let events_path = opts.need("events")?;
    let mut rejected = Vec::new();
    let mut events = Vec::new();
    for (i, line) in read(events_path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let decoded = parse(line).and_then(|v| tollgate::metering::Event::decode(&v, at));
        match decoded {
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
        eprintln!("{events_path}:{}: rejected: {} at {} ({})", r.line, r.code, r.path, r.message);
    }
    let customer = opts.need("customer")?;
    let fail = |e: Error| Fail(format!("--customer {customer}: {e}"), 1);
    // As it closes: whatever the clock says, the period is taken as over.
    let end_of_time = tollgate::time::Timestamp(i64::MAX);
    let doc = engine.close_invoice(customer, at, end_of_time).map_err(fail)?;
    let invoices = engine.invoices_at(customer, at, end_of_time).map_err(fail)?;
    let advance = invoices.into_iter().find(|i| i.kind == tollgate::billing::InvoiceKind::Advance);
    if opts.json {
        let mut out = serde_json::to_value(&doc).map_err(|e| Fail(e.to_string(), 1))?;
        if let Some(a) = &advance {
            out["advance"] = serde_json::to_value(a).map_err(|e| Fail(e.to_string(), 1))?;
        }
        out["rejected"] = serde_json::to_value(&rejected).map_err(|e| Fail(e.to_string(), 1))?;
        println!("{out}");
        return Ok(0);
    }
    if let Some(a) = &advance {
        print_invoice("Advance invoice", a);
    }
    print_invoice("Invoice", &doc);
    Ok(0)
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

fn print_invoice(title: &str, doc: &tollgate::billing::Invoice) {
    println!(
        "{title} for {} ({}, plan {}) {} → {} ({})",
        doc.customer_id, doc.subscription_id, doc.plan_id, doc.period_start, doc.period_end, doc.currency
    );
    for line in &doc.lines {
        println!("  {:<44} {:>16} {:>14}", line.description, plain(line.quantity), line.amount.to_string());
    }
    println!("  {:<44} {:>16} {:>14}", "Subtotal", "", doc.subtotal.to_string());
    if !doc.discount.is_zero() {
        println!("  {:<44} {:>16} {:>14}", "Discount", "", doc.discount.to_string());
    }
    println!("  {:<44} {:>16} {:>14}", "Total", "", doc.total.to_string());
}

/// A library error about a command-line value: `--name: code (message)`.
fn flag_error(name: &str, e: &Error) -> Fail {
    Fail(format!("--{name}: {} ({})", e.code, e.message), 1)
}

/// Problems of a snapshot file as one line: the count and the first.
fn snapshot_problems(path: &str, problems: &[Error]) -> Fail {
    let first = problems.first().map(ToString::to_string).unwrap_or_default();
    Fail(format!("{path} is not a valid snapshot ({} problem(s)); first: {first}", problems.len()), 1)
}

/// `keygen`: a new Ed25519 key pair from 32 bytes of `/dev/urandom`. Without `--out` the key
/// file's JSON goes to stdout; with it, the file is created (never overwritten; mode 0600 on
/// Unix) and only the public half is printed.
fn keygen(opts: &Opts) -> Result<u8, Fail> {
    use std::io::{Read, Write};
    let mut seed = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Fail(format!("cannot read 32 random bytes from /dev/urandom: {e}"), 1))?;
    let pair = KeyPair::from_seed(&seed, opts.get("key-id")).map_err(|e| flag_error("key-id", &e))?;
    let text = serde_json::to_string_pretty(&pair.to_value()).map_err(|e| Fail(e.to_string(), 1))?;
    let Some(out) = opts.get("out") else {
        println!("{text}");
        return Ok(0);
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Fail(format!("{out} already exists; keygen never overwrites a key"), 1),
        _ => Fail(format!("cannot create {out}: {e}"), 1),
    })?;
    file.write_all(format!("{text}\n").as_bytes()).map_err(|e| Fail(format!("cannot write {out}: {e}"), 1))?;
    let public = serde_json::json!({ "keyId": pair.key_id, "publicKey": pair.public_key().to_base64() });
    println!("{}", serde_json::to_string_pretty(&public).map_err(|e| Fail(e.to_string(), 1))?);
    Ok(0)
}

/// `sign`: checks that the file is a valid snapshot, then prints the signed envelope of its
/// exact bytes.
fn sign_cmd(opts: &Opts) -> Result<u8, Fail> {
    let key_path = opts.need("key")?;
    let pair = KeyPair::from_value(&read_json(key_path)?).map_err(|e| Fail(format!("{key_path}: {e}"), 1))?;
    let path = opts.positional.first().ok_or_else(|| Fail("sign needs a snapshot file".into(), 2))?;
    let text = read(path)?;
    let value = parse(&text).map_err(|e| Fail(format!("{path}: {e}"), 1))?;
    if signed::is_envelope(&value) {
        return Err(Fail(format!("{path} is a signed envelope already; sign the snapshot itself"), 1));
    }
    Snapshot::from_value(&value).map_err(|problems| snapshot_problems(path, &problems))?;
    println!("{}", pair.seal(text.as_bytes()));
    Ok(0)
}

/// `verify`: checks a signed envelope against a public key and decodes its snapshot.
fn verify_cmd(opts: &Opts) -> Result<u8, Fail> {
    let key = PublicKey::parse(opts.need("public-key")?).map_err(|e| flag_error("public-key", &e))?;
    let path = opts.positional.first().ok_or_else(|| Fail("verify needs a signed snapshot file".into(), 2))?;
    let value = read_json(path)?;
    let Opened::Signed { envelope, .. } =
        signed::open(&value, Some(&key)).map_err(|e| Fail(format!("{path}: {e}"), 1))?
    else {
        return Err(Fail(format!("{path}: a signed snapshot was expected"), 1));
    };
    let payload = signed::parse_payload(&envelope.payload).map_err(|e| Fail(format!("{path}: {e}"), 1))?;
    let snapshot = Snapshot::from_value(&payload)
        .map_err(|problems| snapshot_problems(&format!("the payload of {path}"), &problems))?;
    if opts.json {
        let out = serde_json::json!({ "keyId": envelope.key_id, "snapshotVersion": snapshot.snapshot_version });
        println!("{out}");
    } else {
        let by = envelope.key_id.map(|id| format!(" by key {id}")).unwrap_or_default();
        println!("{path}: valid signature{by}, snapshotVersion {}", snapshot.snapshot_version);
    }
    Ok(0)
}

/// `hub`: the HTTP hub over its SQLite database (docs/hub.md). Runs until stopped.
fn hub_cmd(opts: &Opts) -> Result<u8, Fail> {
    let mut config = tollgate_hub::Config::new();
    if let Some(db) = opts.get("db") {
        config.db = db.into();
    }
    if let Some(listen) = opts.get("listen") {
        config.listen = listen.into();
    }
    if let Some(www) = opts.get("www") {
        config.www = www.into();
    }
    if let Some(path) = opts.get("key") {
        let pair = KeyPair::from_value(&read_json(path)?).map_err(|e| Fail(format!("{path}: {e}"), 1))?;
        config.key = Some(pair);
    }
    if let Some(path) = opts.get("seed") {
        config.seed = Some(read_json(path)?);
    }
    let positive = |name: &str| -> Result<Option<u64>, Fail> {
        let Some(text) = opts.get(name) else { return Ok(None) };
        let n = text.parse::<u64>().ok().filter(|t| *t > 0);
        n.map(Some).ok_or_else(|| Fail(format!("--{name}: {text:?} is not a positive whole number"), 2))
    };
    if let Some(ms) = positive("ttl-ms")? {
        config.ttl_ms = ms;
    }
    if let Some(ms) = positive("header-timeout-ms")? {
        config.header_timeout_ms = ms;
    }
    if let Some(ms) = positive("body-timeout-ms")? {
        config.body_timeout_ms = ms;
    }
    if let Some(n) = positive("max-connections")? {
        config.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(ms) = positive("max-future-ms")? {
        config.max_future_ms = ms;
    }
    if let Some(ms) = positive("snapshot-ttl-ms")? {
        config.snapshot_ttl_ms = ms;
    }
    if let Some(p) = positive("max-edge-share")? {
        if p > 100 {
            return Err(Fail(format!("--max-edge-share: {p} is over 100 (percent of a key's budget)"), 2));
        }
        config.edge_share_percent = u32::try_from(p).unwrap_or(100);
    }
    tollgate_hub::run(config).map_err(|e| Fail(e, 1))?;
    Ok(0)
}

/// The events of `rate --events`: each a bare value, or `{ "value": V, "data": {...} }`.
fn events(value: &Value) -> Result<Vec<DataEvent>, Error> {
    let items =
        value.as_array().ok_or_else(|| Error::new(tollgate::Code::InvalidType, "", "events must be a JSON array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("/{i}");
            match item {
                Value::Object(obj) => {
                    if let Some(k) = obj.keys().find(|k| *k != "value" && *k != "data") {
                        return Err(Error::new(
                            tollgate::Code::UnknownField,
                            format!("{at}/{k}"),
                            format!("unknown field {k:?}"),
                        ));
                    }
                    let v = obj.get("value").ok_or_else(|| {
                        Error::new(tollgate::Code::MissingField, format!("{at}/value"), "\"value\" is required")
                    })?;
                    let data = obj.get("data").cloned().unwrap_or(Value::Object(Default::default()));
                    if !data.is_object() {
                        return Err(Error::new(
                            tollgate::Code::InvalidType,
                            format!("{at}/data"),
                            "data must be an object",
                        ));
                    }
                    Ok(DataEvent { value: decimal(v, &format!("{at}/value"))?, data })
                }
                other => Ok(DataEvent { value: decimal(other, &at)?, data: Value::Object(Default::default()) }),
            }
        })
        .collect()
}

/// A decimal command-line value.
fn number_flag(name: &str, text: &str) -> Result<Decimal, Fail> {
    tollgate::money::parse_decimal(text).ok_or_else(|| {
        Fail(format!("--{name}: invalid_decimal ({text:?} is not a decimal within ±7.9e28 and 28 places)"), 1)
    })
}

fn rate(opts: &Opts) -> Result<u8, Fail> {
    let model_path = opts.need("model")?;
    let mut model_json = read_json(model_path)?;
    if model_json.get("type").is_none() {
        if let Some(inner) = model_json.get_mut("model") {
            model_json = inner.take();
        }
    }
    let mut problems = Vec::new();
    let model = Model::decode(&model_json, "", &mut problems);
    let model = match (model, problems.first()) {
        (Some(m), None) => m,
        (_, first) => {
            let first = first.map(ToString::to_string).unwrap_or_default();
            return Err(Fail(format!("{model_path}: {first}"), 1));
        }
    };
    let currency_code = opts.get("currency").unwrap_or("USD");
    let currency = Currency::from_code(currency_code).ok_or_else(|| {
        Fail(format!("--currency: unknown_currency ({currency_code:?} is not an ISO-4217 currency code)"), 1)
    })?;
    let rates = match opts.get("rates") {
        Some(path) => {
            let v = read_json(path)?;
            let v = v.get("rates").cloned().unwrap_or(v);
            let mut problems = Vec::new();
            let map = tollgate::json::decimal_map(&v, "", &mut problems);
            if let Some(p) = problems.first() {
                return Err(Fail(format!("{path}: {p}"), 1));
            }
            map
        }
        None => BTreeMap::new(),
    };
    let ctx = Context::of(&rates);
    let rated = match (opts.get("quantity"), opts.get("events")) {
        (Some(q), None) => {
            let q = number_flag("quantity", q)?;
            let count = opts.get("event-count").map(|n| number_flag("event-count", n)).transpose()?;
            model.rate_quantity(q, count, ctx)?
        }
        (None, Some(_)) if opts.get("event-count").is_some() => {
            return Err(Fail("--event-count goes with --quantity; with --events the events are counted".into(), 2))
        }
        (None, Some(path)) => {
            let list = events(&read_json(path)?).map_err(|e| Fail(format!("{path}: {e}"), 1))?;
            model.rate_events(&list, ctx).map_err(|e| Fail(format!("{path}: {e}"), 1))?
        }
        _ => return Err(Fail("rate needs exactly one of --quantity and --events".into(), 2)),
    };
    let precise = plain(rated.amount);
    let amount = round_half_away(rated.amount, currency.exponent())?;
    if opts.json {
        println!(
            "{{\"preciseAmount\": \"{precise}\", \"amount\": \"{amount}\", \"currency\": \"{}\"}}",
            currency.code()
        );
    } else {
        println!("{amount} {} (precise {precise})", currency.code());
    }
    Ok(0)
}
