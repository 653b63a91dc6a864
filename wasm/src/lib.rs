//! WebAssembly bindings: conversions between JS values and the engine, no
//! business logic. The npm package in `pkg-template/` wraps these in its `Engine` class.
//!
//! How values cross (see `docs/npm.md`):
//! - Structured input (snapshots, customers, events, quote requests, catalogs) crosses as JSON
//!   **text** and is parsed here with the core's exact parser, so no number of the input ever
//!   becomes a float. Structured output (quotes, ingest outcomes, problems) crosses back as
//!   JSON text; amounts in it are strings already.
//! - Quantities cross as a `u32` when the caller's number is a whole number that fits, and
//!   otherwise as decimal text (`String(n)` in JS): never as a float.
//! - `now` crosses as a JS number of milliseconds and must be a whole number.
//! - The hot calls (`check`, `consume` and their handle forms) return one `u32` that packs the
//!   decision (see [`encode`]); the four metered figures are written, as exact decimal parts,
//!   into a small buffer of the engine that the JS glue reads through a view of the memory, and
//!   they are turned into text only when a program reads them. The two ids of a hot call are
//!   written by the glue into a scratch buffer of the engine (no allocation per string).
//! - Failures never throw out of Rust: a call that fails returns [`ERROR`] (or `None`) and keeps
//!   the problems for [`take_errors`], which the JS glue turns into a `TollgateError`.
//!
//! Panics: the core returns errors on every input path (SPEC §10). If a panic still happens,
//! the module is built with `panic = "abort"`, so it traps; the hook installed here keeps its
//! message for [`take_panic`], and the JS glue marks that engine as poisoned (every later call
//! on it throws) — wasm-bindgen's borrow flag on the engine, left taken by the trap, enforces the
//! same on the Rust side.

use std::cell::RefCell;
use std::string::String;
use std::vec::Vec;

use rust_decimal::Decimal;
use serde_json::Value;
use wasm_bindgen::prelude::*;

use tollgate::catalog::FeatureType;
use tollgate::engine::{Engine, Handle, Options};
use tollgate::entitlements::{Decision, Reason};
use tollgate::error::{Code, Error};
use tollgate::json::{parse, Fields};
use tollgate::money::{parse_decimal, plain};
use tollgate::time::Timestamp;

/// A JS number carrying a whole count — `now` in ms since the Unix epoch, a snapshot version —
/// checked to be whole where it is read. Never an amount or a quantity: those cross as text.
pub type JsNumber = f64;

/// The value a hot call returns when it failed (see [`take_errors`]).
pub const ERROR: u32 = u32::MAX;

/// The most bytes the scratch buffer grows to; longer ids cross as ordinary strings.
pub const MAX_SCRATCH: usize = 4096;

/// Bits of a packed decision.
pub mod bits {
    /// `allowed`.
    pub const ALLOWED: u32 = 1;
    /// The reason's position in [`super::REASONS`], 4 bits.
    pub const REASON_SHIFT: u32 = 1;
    /// The reason's bits, after the shift.
    pub const REASON_MASK: u32 = 0xf;
    /// The feature type's position in [`super::FEATURE_TYPES`], 2 bits.
    pub const TYPE_SHIFT: u32 = 5;
    /// The feature type's bits, after the shift.
    pub const TYPE_MASK: u32 = 0x3;
    /// The metered figures were written to the figure buffer.
    pub const FIGURES: u32 = 1 << 7;
    /// A static config is waiting for `take_config`.
    pub const CONFIG: u32 = 1 << 8;
    /// `exact`.
    pub const EXACT: u32 = 1 << 9;
    /// `needsSync`.
    pub const NEEDS_SYNC: u32 = 1 << 10;
    /// `resetAt` was written to the figure buffer (words 16 and 17: high and low 32 bits of
    /// its Unix time in ms).
    pub const RESET: u32 = 1 << 11;
    /// The customer's wallet is waiting for `take_config`, as JSON text (a metered decision
    /// never has a config, so the two share the slot).
    pub const WALLET: u32 = 1 << 12;
}

/// Words in the figure buffer: four decimals of four words, then `resetAt`'s two.
pub const FIGURE_WORDS: usize = 18;

/// Every reason, in the order of their packed codes.
pub const REASONS: [Reason; 9] = [
    Reason::Ok,
    Reason::NoEntitlement,
    Reason::NotSubscribed,
    Reason::UnknownCustomer,
    Reason::UnknownFeature,
    Reason::LimitReached,
    Reason::LeaseExhausted,
    Reason::LeaseExpired,
    Reason::Offline,
];

/// Every feature type, in the order of their packed codes (`None`: no such feature).
pub const FEATURE_TYPES: [Option<FeatureType>; 4] =
    [None, Some(FeatureType::Boolean), Some(FeatureType::Static), Some(FeatureType::Metered)];

const _: () = assert!(REASONS.len() <= bits::REASON_MASK as usize + 1);
const _: () = assert!(FEATURE_TYPES.len() <= bits::TYPE_MASK as usize + 1);

fn reason_code(r: Reason) -> u32 {
    match r {
        Reason::Ok => 0,
        Reason::NoEntitlement => 1,
        Reason::NotSubscribed => 2,
        Reason::UnknownCustomer => 3,
        Reason::UnknownFeature => 4,
        Reason::LimitReached => 5,
        Reason::LeaseExhausted => 6,
        Reason::LeaseExpired => 7,
        Reason::Offline => 8,
    }
}

fn type_code(t: Option<FeatureType>) -> u32 {
    match t {
        None => 0,
        Some(FeatureType::Boolean) => 1,
        Some(FeatureType::Static) => 2,
        Some(FeatureType::Metered) => 3,
    }
}

/// How a packed decision is laid out, as JSON text the JS glue reads once at load (with
/// [`decision_names`]), so that it copies none of [`bits`], [`ERROR`] or [`MAX_SCRATCH`]:
/// `{ allowed, reasonShift, reasonMask, typeShift, typeMask, figures, config, exact, needsSync,
/// error, maxScratch, reasons }`, `reasons` being how many reason names come first in
/// [`decision_names`]. Written at compile time ([`LAYOUT`]): the same text built with `format!`
/// at run time made the module about 500 B (gzip) larger.
#[wasm_bindgen]
pub fn decision_layout() -> String {
    String::from(LAYOUT)
}

/// The reason names in code order, then the feature type names in code order (an empty name for
/// no feature type), comma-separated; `reasons` of [`decision_layout`] says where the first end.
#[wasm_bindgen]
pub fn decision_names() -> String {
    REASONS
        .iter()
        .map(|r| r.as_str())
        .chain(FEATURE_TYPES.iter().map(|t| t.map_or("", FeatureType::as_str)))
        .collect::<Vec<_>>()
        .join(",")
}

/// What [`decision_layout`] tells the JS glue: each name with its value.
const LAYOUT_FIELDS: [(&str, u32); 14] = [
    ("allowed", bits::ALLOWED),
    ("reasonShift", bits::REASON_SHIFT),
    ("reasonMask", bits::REASON_MASK),
    ("typeShift", bits::TYPE_SHIFT),
    ("typeMask", bits::TYPE_MASK),
    ("figures", bits::FIGURES),
    ("config", bits::CONFIG),
    ("exact", bits::EXACT),
    ("needsSync", bits::NEEDS_SYNC),
    ("reset", bits::RESET),
    ("wallet", bits::WALLET),
    ("error", ERROR),
    ("maxScratch", MAX_SCRATCH as u32),
    ("reasons", REASONS.len() as u32),
];

/// [`decision_layout`]'s text: `{"allowed":1,…,"reasons":9}`.
const LAYOUT: &str = {
    const FIELDS: [(&str, u32); 14] = LAYOUT_FIELDS;
    const TEXT: ([u8; 256], usize) = {
        let mut out = [0u8; 256];
        let mut n = 0;
        let mut i = 0;
        while i < FIELDS.len() {
            out[n] = if i == 0 { b'{' } else { b',' };
            out[n + 1] = b'"';
            n += 2;
            let name = FIELDS[i].0.as_bytes();
            let mut j = 0;
            while j < name.len() {
                out[n] = name[j];
                n += 1;
                j += 1;
            }
            out[n] = b'"';
            out[n + 1] = b':';
            n += 2;
            let mut digits = [0u8; 10];
            let mut d = 0;
            let mut x = FIELDS[i].1;
            loop {
                digits[d] = b'0' + (x % 10) as u8;
                d += 1;
                x /= 10;
                if x == 0 {
                    break;
                }
            }
            while d > 0 {
                d -= 1;
                out[n] = digits[d];
                n += 1;
            }
            i += 1;
        }
        out[n] = b'}';
        (out, n + 1)
    };
    // Only the written bytes go into the module, not the whole buffer.
    const BYTES: [u8; TEXT.1] = {
        let mut out = [0u8; TEXT.1];
        let mut i = 0;
        while i < TEXT.1 {
            out[i] = TEXT.0[i];
            i += 1;
        }
        out
    };
    match core::str::from_utf8(&BYTES) {
        Ok(text) => text,
        Err(_) => panic!("the layout is ASCII"),
    }
};

thread_local! {
    static ERRORS: RefCell<Vec<Error>> = const { RefCell::new(Vec::new()) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn fail(errors: Vec<Error>) {
    ERRORS.with(|e| *e.borrow_mut() = errors);
}

/// The problems of the last call that failed, as JSON text: `[{ code, path, message }]`.
#[wasm_bindgen]
pub fn take_errors() -> String {
    problems_json(&ERRORS.with(|e| core::mem::take(&mut *e.borrow_mut())))
}

fn problems_json(errors: &[Error]) -> String {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| serde_json::json!({ "code": e.code.as_str(), "path": e.path, "message": e.message }))
        .collect();
    Value::Array(list).to_string()
}

/// The message of the last panic, if one happened (the call that panicked trapped).
#[wasm_bindgen]
pub fn take_panic() -> Option<String> {
    PANIC.with(|p| p.borrow_mut().take())
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let text = info.to_string();
            PANIC.with(|p| *p.borrow_mut() = Some(text));
        }))
    });
}

/// Every problem of a catalog given as JSON text, as JSON text `[{ code, path, message }]`
/// (empty when the catalog is valid).
#[wasm_bindgen]
pub fn validate_catalog(text: &str) -> String {
    install_panic_hook();
    problems_json(&tollgate::catalog::validate(text))
}

/// The exact text of a decimal written by the figure buffer (`[scale | sign << 31, lo, mid, hi]`).
#[wasm_bindgen]
pub fn format_decimal(flags: u32, lo: u32, mid: u32, hi: u32) -> String {
    let negative = flags >> 31 == 1;
    let scale = (flags & 0xff).min(28);
    plain(Decimal::from_parts(lo, mid, hi, negative, scale))
}

fn write_decimal(out: &mut [u32], d: Decimal) {
    let m = d.mantissa().unsigned_abs();
    out[0] = d.scale() | (u32::from(d.is_sign_negative()) << 31);
    out[1] = m as u32;
    out[2] = (m >> 32) as u32;
    out[3] = (m >> 64) as u32;
}

/// `now` from a JS number of milliseconds: a whole number inside the range of a JS `Date`.
fn timestamp(now: JsNumber) -> Result<Timestamp, Error> {
    if now.is_finite() && now.fract() == 0.0 && now.abs() <= 8.64e15 {
        Ok(Timestamp(now as i64))
    } else {
        Err(Error::new(Code::InvalidValue, "/now", "now must be a whole number of milliseconds since the Unix epoch"))
    }
}

/// The two ids a hot call wrote into the scratch buffer.
fn ids(scratch: &[u8], a: u32, b: u32) -> Result<(&str, &str), Error> {
    let bad = || Error::new(Code::InvalidValue, "", "ids in the scratch buffer are out of bounds or not UTF-8");
    let (a, b) = (a as usize, b as usize);
    let bytes = scratch.get(..a.checked_add(b).ok_or_else(bad)?).ok_or_else(bad)?;
    let (c, k) = bytes.split_at(a);
    Ok((core::str::from_utf8(c).map_err(|_| bad())?, core::str::from_utf8(k).map_err(|_| bad())?))
}

fn quantity(text: &str) -> Result<Decimal, Error> {
    parse_decimal(text)
        .ok_or_else(|| Error::new(Code::InvalidDecimal, "/quantity", "the quantity is not a decimal number"))
}

fn json(text: &str, path: &str) -> Result<Value, Vec<Error>> {
    parse(text).map_err(|e| vec![e.under(path)])
}

/// An [`Engine`] as seen from JS (the package's `Engine` class wraps it).
#[wasm_bindgen]
pub struct RawEngine {
    inner: Engine,
    /// Balance, usage, overage and limit of the last metered decision, 4 × `u32` each.
    figures: [u32; FIGURE_WORDS],
    /// The static config of the last decision that had one, as JSON text.
    config: Option<String>,
    /// Where the JS glue writes the ids of a hot call (ASCII), so they cross without a
    /// per-string allocation: `[customer][feature key]`, lengths passed with the call.
    scratch: Vec<u8>,
    /// Handles given out, by number; the same handle always gets the same number.
    handles: Vec<Handle>,
    handle_numbers: tollgate::engine::IdMap<Handle, u32>,
}

fn tollgate_key(text: &str) -> Result<tollgate::sync::signed::PublicKey, Error> {
    tollgate::sync::signed::PublicKey::parse(text)
}

/// Engine options, and the (edge, boot) ids when leases are on.
type Lease = Option<(String, String)>;

fn options(text: &str) -> Result<(Options, Lease), Vec<Error>> {
    let value = json(text, "/options")?;
    let mut problems = Vec::new();
    let mut opts = Options::default();
    let mut lease = None;
    if let Some(mut f) = Fields::open(&value, "/options", &mut problems) {
        if let Some(ms) = f.opt_decimal("dedupeWindowMs") {
            match i64::try_from(ms) {
                Ok(whole) if whole >= 0 && ms.fract().is_zero() => opts.dedupe_window_ms = whole,
                _ => f.fail("dedupeWindowMs", Code::InvalidValue, "dedupeWindowMs must be a whole number ≥ 0"),
            }
        }
        if let Some(n) = f.opt_decimal("dedupeMaxEntries") {
            match usize::try_from(n) {
                Ok(whole) if whole >= 1 && n.fract().is_zero() => opts.dedupe_max_entries = whole,
                _ => f.fail("dedupeMaxEntries", Code::InvalidValue, "dedupeMaxEntries must be a whole number ≥ 1"),
            }
        }
        if let Some(ms) = f.opt_decimal("maxFutureMs") {
            match i64::try_from(ms) {
                Ok(whole) if whole >= 0 && ms.fract().is_zero() => opts.max_future_ms = whole,
                _ => f.fail("maxFutureMs", Code::InvalidValue, "maxFutureMs must be a whole number ≥ 0"),
            }
        }
        // The key of the engine's id tables: the JS layer draws one from `crypto.getRandomValues`
        // when the caller gives none (the core draws no randomness).
        if let Some(seed) = f.opt_decimal("hashSeed") {
            match u64::try_from(seed) {
                Ok(whole) if seed.fract().is_zero() => opts.hash_seed = whole,
                _ => f.fail("hashSeed", Code::InvalidValue, "hashSeed must be a whole number from 0 to 2^64 − 1"),
            }
        }
        // SPEC §8 options of the sync layer: with `leases: true` hard limits also need the
        // edge's lease (`edgeId`, `bootId` name this edge and run); `hubPublicKey` makes the
        // engine take only snapshots the hub signed.
        let edge_id = f.opt_str("edgeId");
        let boot_id = f.opt_str("bootId");
        if f.opt_bool("leases") == Some(true) {
            // No default: two engines on one default would share ids (the JS layer generates
            // unique ones when the caller gives none).
            match (edge_id, boot_id) {
                (Some(edge), Some(boot)) if !edge.is_empty() && !boot.is_empty() => lease = Some((edge, boot)),
                _ => f.fail("edgeId", Code::MissingField, "leases need a non-empty edgeId and bootId"),
            }
        }
        if let Some(text) = f.opt_str("hubPublicKey") {
            match tollgate_key(&text) {
                Ok(k) => opts.hub_public_key = Some(k),
                Err(e) => f.push(e.under("/options/hubPublicKey")),
            }
        }
        f.finish();
    }
    if problems.is_empty() {
        Ok((opts, lease))
    } else {
        Err(problems)
    }
}

#[wasm_bindgen]
impl RawEngine {
    /// An engine from snapshot JSON text and options JSON text (`{ dedupeWindowMs?, dedupeMaxEntries?, maxFutureMs?, … }`), or
    /// `None` with the problems kept for [`take_errors`].
    pub fn from_snapshot(snapshot: &str, options_json: &str) -> Option<RawEngine> {
        RawEngine::build(snapshot, options_json, None)
    }

    /// [`RawEngine::from_snapshot`] at `now` (ms): a snapshot whose `expiresAt` is at or before
    /// `now` is refused (`stale_snapshot` at `/expiresAt`).
    pub fn from_snapshot_at(snapshot: &str, options_json: &str, now: JsNumber) -> Option<RawEngine> {
        RawEngine::build(snapshot, options_json, Some(now))
    }

    /// Where the figure buffer lives in the module's memory (a byte address).
    pub fn figures_ptr(&self) -> u32 {
        self.figures.as_ptr() as usize as u32
    }

    /// Makes the scratch buffer at least `len` bytes long and returns its byte address (it
    /// stays valid until the next call of this function).
    pub fn scratch_ptr(&mut self, len: u32) -> u32 {
        let len = (len as usize).min(MAX_SCRATCH);
        if self.scratch.len() < len {
            self.scratch.resize(len.next_power_of_two(), 0);
        }
        self.scratch.as_ptr() as usize as u32
    }

    /// The scratch buffer's length in bytes.
    pub fn scratch_len(&self) -> u32 {
        self.scratch.len() as u32
    }

    /// `check` of the ids in the scratch buffer (`a` bytes of customer, then `b` of key), packed.
    pub fn check_ids(&mut self, a: u32, b: u32, now: JsNumber) -> u32 {
        let result = ids(&self.scratch, a, b).and_then(|(c, k)| self.inner.check(c, k, timestamp(now)?));
        self.pack(result)
    }

    /// `consume` of a whole number of units for the ids in the scratch buffer, packed.
    pub fn consume_ids(&mut self, a: u32, b: u32, n: u32, now: JsNumber) -> u32 {
        let result = ids(&self.scratch, a, b)
            .and_then(|(c, k)| self.inner.consume(c, k, Decimal::from(n), None, timestamp(now)?));
        self.pack(result)
    }

    /// The version of the snapshot loaded.
    pub fn snapshot_version(&self) -> JsNumber {
        self.inner.snapshot_version() as JsNumber
    }

    /// The `expiresAt` of the snapshot held, as RFC 3339 text (`None`: it never expires).
    pub fn snapshot_expires_at(&self) -> Option<String> {
        self.inner.snapshot_expires_at().map(|t| t.to_rfc3339())
    }

    /// Replaces catalog and customers with a snapshot given as JSON text, keeping usage so far;
    /// false (and nothing changed) on bad input.
    pub fn apply_snapshot(&mut self, snapshot: &str) -> bool {
        done(json(snapshot, "").and_then(|v| self.inner.apply_snapshot(&v)))
    }

    /// [`RawEngine::apply_snapshot`] at `now` (ms): a snapshot whose `expiresAt` is at or before
    /// `now` is refused too (`stale_snapshot` at `/expiresAt`), and nothing changes.
    pub fn apply_snapshot_at(&mut self, snapshot: &str, now: JsNumber) -> bool {
        let now = match timestamp(now) {
            Ok(now) => now,
            Err(e) => return done(Err(vec![e])),
        };
        done(json(snapshot, "").and_then(|v| self.inner.apply_snapshot_at(&v, now)))
    }

    /// Adds or replaces a customer given as JSON text; false on bad input.
    pub fn upsert_customer(&mut self, customer: &str) -> bool {
        match json(customer, "").and_then(|v| self.inner.upsert_customer(&v)) {
            Ok(()) => true,
            Err(errors) => {
                fail(errors);
                false
            }
        }
    }

    /// `check`, packed.
    pub fn check(&mut self, customer: &str, key: &str, now: JsNumber) -> u32 {
        let result = timestamp(now).and_then(|now| self.inner.check(customer, key, now));
        self.pack(result)
    }

    /// `consume` of a whole number of units, packed.
    pub fn consume(&mut self, customer: &str, key: &str, n: u32, now: JsNumber) -> u32 {
        let result = timestamp(now).and_then(|now| self.inner.consume(customer, key, Decimal::from(n), None, now));
        self.pack(result)
    }

    /// `consume` of a quantity given as decimal text, with an optional idempotency id, packed.
    pub fn consume_text(&mut self, customer: &str, key: &str, n: &str, id: Option<String>, now: JsNumber) -> u32 {
        let result = quantity(n)
            .and_then(|n| timestamp(now).map(|now| (n, now)))
            .and_then(|(n, now)| self.inner.consume(customer, key, n, id.as_deref(), now));
        self.pack(result)
    }

    /// The number of a pre-resolved handle on `customer`'s access to `key`, or -1 when they
    /// have no such access at all.
    pub fn handle(&mut self, customer: &str, key: &str) -> i32 {
        let Some(h) = self.inner.handle(customer, key) else { return -1 };
        let next = self.handles.len() as u32;
        let n = *self.handle_numbers.entry(h).or_insert(next);
        if n == next {
            self.handles.push(h);
        }
        n as i32
    }

    /// `check` through a handle number, packed.
    pub fn check_handle(&mut self, h: u32, now: JsNumber) -> u32 {
        let result = self.handle_of(h).and_then(|h| {
            let now = timestamp(now)?;
            let verdict = self.inner.check_handle(h, now)?;
            self.inner.decision(h, verdict, now)
        });
        self.pack(result)
    }

    /// `consume` of a whole number of units through a handle number, packed.
    pub fn consume_handle(&mut self, h: u32, n: u32, now: JsNumber) -> u32 {
        let result = self.handle_of(h).and_then(|h| self.use_handle(h, Decimal::from(n), now));
        self.pack(result)
    }

    /// `consume` of a decimal-text quantity through a handle number, packed.
    pub fn consume_handle_text(&mut self, h: u32, n: &str, now: JsNumber) -> u32 {
        let result = self.handle_of(h).and_then(|h| self.use_handle(h, quantity(n)?, now));
        self.pack(result)
    }

    /// The static config of the last packed decision that carried one, as JSON text.
    pub fn take_config(&mut self) -> Option<String> {
        self.config.take()
    }

    /// `ingest` of an event given as JSON text: the outcome as JSON text, or `None` on bad input.
    pub fn ingest(&mut self, event: &str, now: JsNumber) -> Option<String> {
        let result = timestamp(now)
            .map_err(|e| vec![e])
            .and_then(|now| json(event, "").and_then(|v| self.inner.ingest(&v, now).map_err(|e| vec![e])));
        text_or_fail(result.and_then(|o| to_json(&o)))
    }

    /// The running invoice of a customer at `now`, as JSON text, or `None` on bad input.
    pub fn invoice_preview(&self, customer: &str, now: JsNumber) -> Option<String> {
        let result = timestamp(now).and_then(|now| self.inner.invoice_preview(customer, now)).map_err(|e| vec![e]);
        text_or_fail(result.and_then(|i| to_json(&i)))
    }

    /// The next sync request as JSON text (`None`: leases are off, or an error for
    /// [`take_errors`]).
    pub fn sync_request(&mut self, now: JsNumber) -> Option<String> {
        let result = timestamp(now).and_then(|now| self.inner.sync_request(now)).map_err(|e| vec![e]);
        match result {
            Ok(Some(request)) => text_or_fail(to_json(&request)),
            Ok(None) => None,
            Err(errors) => {
                fail(errors);
                None
            }
        }
    }

    /// Merges the hub's response (JSON text: the plain response, or its signed envelope); false
    /// with the problems for [`take_errors`]. A snapshot in it is applied at `now` (an expired
    /// one is refused) and makes earlier handles stale, as [`RawEngine::apply_snapshot_at`] does.
    pub fn apply_sync(&mut self, response: &str, now: JsNumber) -> bool {
        let done = timestamp(now)
            .map_err(|e| vec![e])
            .and_then(|now| json(response, "").and_then(|v| self.inner.apply_sync(&v, now)));
        match done {
            Ok(()) => true,
            Err(errors) => {
                fail(errors);
                false
            }
        }
    }

    /// True when this edge should sync soon.
    pub fn needs_sync(&self, now: JsNumber) -> bool {
        timestamp(now).is_ok_and(|now| self.inner.needs_sync(now))
    }

    /// Queued events no sync request has carried yet (`syncBacklog`).
    pub fn sync_backlog(&self) -> u32 {
        u32::try_from(self.inner.sync_backlog()).unwrap_or(u32::MAX)
    }

    /// The edge's sync state as JSON text (`None` when leases are off).
    pub fn export_state(&self) -> Option<String> {
        match self.inner.export_sync_state() {
            Ok(state) => state,
            Err(e) => {
                fail(vec![e]);
                None
            }
        }
    }

    /// Restores an exported sync state; false with the problems for [`take_errors`].
    pub fn import_state(&mut self, state: &str) -> bool {
        match json(state, "").and_then(|v| self.inner.import_sync_state(&v)) {
            Ok(()) => true,
            Err(errors) => {
                fail(errors);
                false
            }
        }
    }

    /// The quote of a request given as JSON text, as JSON text, or `None` on bad input.
    pub fn quote(&self, request: &str) -> Option<String> {
        text_or_fail(json(request, "").and_then(|v| self.inner.quote(&v)).and_then(|q| to_json(&q)))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Vec<Error>> {
    serde_json::to_string(value).map_err(|e| vec![Error::new(Code::Unencodable, "", e.to_string())])
}

/// True when `result` is `Ok`; otherwise false, with the problems kept for [`take_errors`].
fn done(result: Result<(), Vec<Error>>) -> bool {
    match result {
        Ok(()) => true,
        Err(errors) => {
            fail(errors);
            false
        }
    }
}

fn text_or_fail(result: Result<String, Vec<Error>>) -> Option<String> {
    match result {
        Ok(text) => Some(text),
        Err(errors) => {
            fail(errors);
            None
        }
    }
}

impl RawEngine {
    /// An engine from snapshot and options JSON text, checked for expiry at `now` when given.
    fn build(snapshot: &str, options_json: &str, now: Option<JsNumber>) -> Option<RawEngine> {
        install_panic_hook();
        let built = options(options_json).and_then(|(o, lease)| {
            let v = json(snapshot, "")?;
            let mut engine = match now {
                Some(now) => Engine::from_snapshot_at(&v, o, timestamp(now).map_err(|e| vec![e])?)?,
                None => Engine::from_snapshot(&v, o)?,
            };
            if let Some((edge, boot)) = lease {
                engine.enable_leases(&edge, &boot);
            }
            Ok(engine)
        });
        match built {
            Ok(inner) => Some(RawEngine {
                inner,
                figures: [0; FIGURE_WORDS],
                config: None,
                scratch: vec![0; 256],
                handles: Vec::new(),
                handle_numbers: tollgate::engine::IdMap::default(),
            }),
            Err(errors) => {
                fail(errors);
                None
            }
        }
    }

    /// The figure buffer as the last packed decision left it (for the binding tests).
    pub fn last_figures(&self) -> [u32; FIGURE_WORDS] {
        self.figures
    }

    /// The engine inside (for the binding tests and Rust callers).
    pub fn engine(&self) -> &Engine {
        &self.inner
    }

    fn handle_of(&self, n: u32) -> Result<Handle, Error> {
        self.handles
            .get(n as usize)
            .copied()
            .ok_or_else(|| Error::new(Code::StaleHandle, "/handle", "no such handle in this engine"))
    }

    fn use_handle(&mut self, h: Handle, n: Decimal, now: JsNumber) -> Result<Decision, Error> {
        let now = timestamp(now)?;
        let verdict = self.inner.consume_handle(h, n, now)?;
        self.inner.decision(h, verdict, now)
    }

    /// Packs a decision into a `u32` (figures to the buffer, config to `config`), or keeps the
    /// error and returns [`ERROR`].
    fn pack(&mut self, result: Result<Decision, Error>) -> u32 {
        match result {
            Ok(d) => encode(&d, &mut self.figures, &mut self.config),
            Err(e) => {
                fail(vec![e]);
                ERROR
            }
        }
    }
}

/// The packed form of a decision (bits in [`bits`]); writes its figures to `figures` and its
/// config to `config` when it has them.
pub fn encode(d: &Decision, figures: &mut [u32; FIGURE_WORDS], config: &mut Option<String>) -> u32 {
    let mut code = u32::from(d.allowed)
        | reason_code(d.reason) << bits::REASON_SHIFT
        | type_code(d.feature_type) << bits::TYPE_SHIFT;
    if let Some(f) = &d.figures {
        for (i, v) in [f.balance, f.usage, f.overage, f.limit].into_iter().enumerate() {
            write_decimal(&mut figures[i * 4..i * 4 + 4], v);
        }
        code |= bits::FIGURES;
        if let Some(at) = f.reset_at {
            let ms = at.0 as u64;
            figures[16] = (ms >> 32) as u32;
            figures[17] = ms as u32;
            code |= bits::RESET;
        }
    }
    if let Some(c) = &d.config {
        *config = Some(c.to_string());
        code |= bits::CONFIG;
    } else if let Some(w) = d.wallet.as_ref().and_then(|w| serde_json::to_string(w).ok()) {
        *config = Some(w);
        code |= bits::WALLET;
    }
    if d.exact {
        code |= bits::EXACT;
    }
    if d.needs_sync {
        code |= bits::NEEDS_SYNC;
    }
    code
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests;
