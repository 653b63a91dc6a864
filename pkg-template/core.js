// Tollgate's JavaScript API over the wasm-bindgen exports of the Rust core (wasm/src/lib.rs).
// This layer converts values and decides nothing: every answer comes from the engine.
// The entry points (node.js, workerd.js, deno.js, browser.js, slim.js) load the module and
// re-export this file. scripts/build-wasm.sh also turns it into the classic script script.js.
import * as raw from "./tollgate_raw.js";

// The packed decision's layout and names, read once from the module at init (wasm/src/lib.rs:
// `decision_layout`, `decision_names`), so Rust owns the only copy; plain module constants after.
let ERROR = 0; // what a hot call returns when it failed
let ALLOWED = 0;
let REASON_SHIFT = 0;
let REASON_MASK = 0;
let TYPE_SHIFT = 0;
let TYPE_MASK = 0;
let FIGURES = 0;
let CONFIG = 0;
let EXACT = 0;
let NEEDS_SYNC = 0;
let RESET = 0;
let WALLET = 0;
let MAX_SCRATCH = 0; // longer ids cross as ordinary strings
let TYPES = null; // feature type names by code (null: none)
let REASONS = null;

let memory = null; // the module's WebAssembly.Memory
let heap = new Int32Array(0); // views of it, renewed after the memory grows (int32 reads stay small integers in V8)
let bytes = new Uint8Array(0);

function ready(exports) {
  const l = JSON.parse(raw.decision_layout());
  ERROR = l.error;
  ALLOWED = l.allowed;
  REASON_SHIFT = l.reasonShift;
  REASON_MASK = l.reasonMask;
  TYPE_SHIFT = l.typeShift;
  TYPE_MASK = l.typeMask;
  FIGURES = l.figures;
  CONFIG = l.config;
  EXACT = l.exact;
  NEEDS_SYNC = l.needsSync;
  RESET = l.reset;
  WALLET = l.wallet;
  MAX_SCRATCH = l.maxScratch;
  const names = raw.decision_names().split(",");
  REASONS = names.slice(0, l.reasons);
  TYPES = names.slice(l.reasons).map((t) => t || null);
  memory = exports.memory;
  heap = new Int32Array(memory.buffer);
  bytes = new Uint8Array(memory.buffer);
}

/** Instantiates the module synchronously from a `WebAssembly.Module` or its bytes. */
export function initSync(module) {
  if (memory === null) ready(raw.initSync({ module }));
}

/** Instantiates the module from a Module, bytes, a URL, a Response, or a promise of one. */
export async function init(input) {
  if (memory === null) ready(await raw.default({ module_or_path: await input }));
}

/** True once the module is instantiated. */
export function isInitialized() {
  return memory !== null;
}

function needInit() {
  if (memory === null) {
    throw new TollgateError(
      "not_initialized",
      "",
      "the WebAssembly module is not loaded: call init() or initSync() of tollgate/slim first",
    );
  }
}

/** Bad input: `code` is a stable snake_case code, `path` a JSON pointer into the input. */
export class TollgateError extends Error {
  constructor(code, path, message, problems, options) {
    super(message, options);
    this.name = "TollgateError";
    this.code = code;
    this.path = path;
    this.problems = problems ?? [{ code, path, message }];
  }
}

/** The hub's error answer as a TollgateError (its own `code` when the body carries one). */
function hubError(status, text, fallback) {
  let problem = { code: fallback, path: "", message: `hub answered ${status}` };
  try {
    const parsed = JSON.parse(text);
    problem = parsed.error ?? (parsed.errors && parsed.errors[0]) ?? problem;
  } catch {
    // not JSON: keep the status line
  }
  const error = new TollgateError(problem.code ?? fallback, problem.path ?? "", problem.message ?? "", undefined, {});
  error.status = status;
  return error;
}

/** An abort signal that fires after `ms` (none where the runtime lacks AbortSignal.timeout). */
function timeoutSignal(ms) {
  return typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function" && ms > 0
    ? AbortSignal.timeout(ms)
    : undefined;
}

function problemError(problems) {
  const first = problems[0] ?? { code: "internal_error", path: "", message: "failed without a reason" };
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : "";
  return new TollgateError(first.code, first.path, `${first.path || "/"}: ${first.message} (${first.code})${more}`, problems);
}

function lastError() {
  return problemError(JSON.parse(raw.take_errors()));
}

/** A fresh id for this run of an edge (`bootId`). */
// A random 64-bit key for the engine's id tables, as decimal text (ids come from outside: with a
// known key, chosen ids could pile into a few buckets).
function newHashSeed() {
  const c = globalThis.crypto;
  const w = new Uint32Array(2);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(w);
  else for (let i = 0; i < 2; i++) w[i] = Math.floor(Math.random() * 2 ** 32);
  return ((BigInt(w[0]) << 32n) | BigInt(w[1])).toString();
}

function newBootId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `boot-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// bigint quantities become decimal strings, which the core reads exactly.
const bigints = (_key, v) => (typeof v === "bigint" ? v.toString() : v);

function text(value, path) {
  if (typeof value === "string") return value;
  let out;
  try {
    out = JSON.stringify(value, bigints);
  } catch (e) {
    throw new TollgateError("invalid_json", path, `${path || "/"}: not serialisable as JSON: ${e.message}`, undefined, {
      cause: e,
    });
  }
  if (out === undefined) throw new TollgateError("invalid_type", path, `${path || "/"}: expected a JSON object`);
  return out;
}

function id(value, path) {
  if (typeof value !== "string") throw new TollgateError("invalid_type", path, `${path}: expected a string`);
  return value;
}

// `now` in ms: options.now (a number or a Date), or the host's clock. The core checks it.
function timeOf(options) {
  const now = options == null ? undefined : options.now;
  if (now === undefined) return Date.now();
  if (typeof now === "number") return now;
  if (now instanceof Date) return now.getTime();
  throw new TollgateError("invalid_type", "/now", "/now: expected milliseconds since the Unix epoch or a Date");
}

// A quantity crosses as a u32 when it is a whole number that fits, otherwise as decimal text.
// Never as a float: `String(n)` is the exact text of the JS number, parsed exactly by the core.
function units(n) {
  switch (typeof n) {
    case "number":
      return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : String(n);
    case "bigint":
      return n >= 0n && n <= 0xffffffffn ? Number(n) : String(n);
    case "string":
      return n;
    default:
      throw new TollgateError("invalid_type", "/quantity", "/quantity: expected a number, a decimal string or a bigint");
  }
}

// A figure from its exact parts [scale | sign << 31, lo, mid, hi] (as int32): whole numbers
// below 2^32 are their own text; everything else is written by the core.
function figure(f, k) {
  if (f === null) return null;
  const flags = f[k];
  const lo = f[k + 1];
  if (flags === 0 && f[k + 2] === 0 && f[k + 3] === 0) return String(lo >>> 0);
  return raw.format_decimal(flags, lo, f[k + 2], f[k + 3]);
}

// Unix ms as RFC 3339 the way the engine writes it: no fraction when the milliseconds are 0.
function rfc3339(ms) {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}

/** An entitlement decision (SPEC §5). The figures become strings only when read. */
export class Decision {
  #f;
  #reset;
  constructor(code, featureKey, figures, config, reset, wallet) {
    this.allowed = (code & ALLOWED) !== 0;
    this.reason = REASONS[(code >>> REASON_SHIFT) & REASON_MASK];
    this.featureKey = featureKey;
    this.featureType = TYPES[(code >>> TYPE_SHIFT) & TYPE_MASK];
    this.config = config;
    this.exact = (code & EXACT) !== 0;
    this.needsSync = (code & NEEDS_SYNC) !== 0;
    this.#f = figures;
    this.#reset = reset;
    // The wallet that pays this use, on a consume of a feature an instant price charges.
    if (wallet !== null) this.wallet = wallet;
  }
  get balance() {
    return figure(this.#f, 0);
  }
  get usage() {
    return figure(this.#f, 4);
  }
  get overage() {
    return figure(this.#f, 8);
  }
  get limit() {
    return figure(this.#f, 12);
  }
  /** When the usage period ends and the balance resets (RFC 3339), or null. */
  get resetAt() {
    return this.#reset === null ? null : rfc3339(this.#reset);
  }
  /** The SPEC §5 JSON shape, fields in their documented order. */
  toJSON() {
    return {
      allowed: this.allowed,
      reason: this.reason,
      featureKey: this.featureKey,
      featureType: this.featureType,
      balance: this.balance,
      usage: this.usage,
      overage: this.overage,
      limit: this.limit,
      resetAt: this.resetAt,
      config: this.config,
      exact: this.exact,
      needsSync: this.needsSync,
      ...(this.wallet === undefined ? {} : { wallet: this.wallet }),
    };
  }
  [Symbol.for("nodejs.util.inspect.custom")]() {
    return this.toJSON();
  }
  [Symbol.for("Deno.customInspect")]() {
    return JSON.stringify(this.toJSON(), null, 2);
  }
}

const TOKEN = Symbol("tollgate.engine");

/** A customer's access to one feature, resolved once by `engine.handle(customer, featureKey)`. */
export class Handle {
  #owner;
  #number;
  constructor(token, owner, number, customer, featureKey) {
    if (token !== TOKEN) throw new TypeError("use engine.handle(customer, featureKey)");
    this.#owner = owner;
    this.#number = number;
    this.customer = customer;
    this.featureKey = featureKey;
    Object.freeze(this);
  }
  // The handle's number in `owner`, or -1 when it is not a handle of that engine.
  static numberIn(h, owner) {
    return h instanceof Handle && h.#owner === owner ? h.#number : -1;
  }
}

/** The entitlement and pricing engine over one snapshot (SPEC §8). */
export class Engine {
  #raw;
  #figs; // index of the figure buffer in `heap`
  #scratch; // byte address and length of the buffer hot calls write their ids into
  #scratchLen;
  #dead = null; // a TollgateError once a call trapped

  constructor(token, rawEngine) {
    if (token !== TOKEN) throw new TypeError("use Engine.fromSnapshot(snapshot, options)");
    this.#raw = rawEngine;
    this.#figs = rawEngine.figures_ptr() >>> 2; // index in `heap`
    this.#scratch = rawEngine.scratch_ptr(0);
    this.#scratchLen = rawEngine.scratch_len();
  }

  // Writes two ASCII ids into the scratch buffer (one copy, no allocation); false when an id
  // is not ASCII, and the caller passes the strings the ordinary way.
  #ids(c, k) {
    const a = c.length;
    const b = k.length;
    if (a + b > MAX_SCRATCH) return false;
    if (a + b > this.#scratchLen) {
      this.#scratch = this.#raw.scratch_ptr(a + b);
      this.#scratchLen = this.#raw.scratch_len();
    }
    let m = bytes;
    if (m.byteLength === 0) m = bytes = new Uint8Array(memory.buffer);
    const p = this.#scratch;
    let all = 0; // every char code OR-ed: ASCII when below 0x80
    for (let i = 0; i < a; i++) {
      const x = c.charCodeAt(i);
      all |= x;
      m[p + i] = x;
    }
    for (let i = 0; i < b; i++) {
      const x = k.charCodeAt(i);
      all |= x;
      m[p + a + i] = x;
    }
    return all < 0x80;
  }

  /** An engine from a snapshot (an object or its JSON text). Throws TollgateError on bad input. */
  static fromSnapshot(snapshot, options) {
    needInit();
    const snap = text(snapshot, "");
    let given = options ?? {};
    if (typeof given === "object" && given !== null && given.hashSeed === undefined) {
      given = { ...given, hashSeed: newHashSeed() };
    }
    if (typeof given === "object" && given !== null && given.leases === true) {
      // A new run of this edge: lease counters restart under a new boot id. An engine given no
      // edge id gets a unique one, so two engines never share ids by default.
      if (given.bootId === undefined) given = { ...given, bootId: newBootId() };
      if (given.edgeId === undefined) given = { ...given, edgeId: `edge-${newBootId()}` };
    }
    // A snapshot already expired (its `expiresAt`, at `now`) is refused.
    const now = timeOf(given);
    if (typeof given === "object" && given !== null && "now" in given) {
      const { now: _, ...rest } = given;
      given = rest;
    }
    const opts = text(given, "/options");
    let r;
    try {
      r = raw.RawEngine.from_snapshot_at(snap, opts, now);
    } catch (e) {
      throw trapped(e);
    }
    if (r === undefined) throw lastError();
    return new Engine(TOKEN, r);
  }

  #live() {
    if (this.#dead !== null) throw this.#dead;
    return this.#raw;
  }

  // A call trapped (a panic in the core, which should not happen): this engine's state can no
  // longer be trusted, so every later call on it throws. Other engines are not affected.
  #trap(e) {
    this.#dead = new TollgateError(
      "poisoned",
      "",
      "this engine stopped at an internal error; build a new one with Engine.fromSnapshot",
      undefined,
      { cause: e },
    );
    return trapped(e);
  }

  #decide(code, featureKey) {
    if (code === ERROR) throw lastError();
    let f = null;
    let config = null;
    let reset = null;
    if ((code & FIGURES) !== 0) {
      let h = heap;
      if (h.byteLength === 0) h = heap = new Int32Array(memory.buffer);
      const p = this.#figs;
      f = [
        h[p], h[p + 1], h[p + 2], h[p + 3], h[p + 4], h[p + 5], h[p + 6], h[p + 7],
        h[p + 8], h[p + 9], h[p + 10], h[p + 11], h[p + 12], h[p + 13], h[p + 14], h[p + 15],
      ];
      // A time in ms, not an amount: exact as a number up to 2^53.
      if ((code & RESET) !== 0) reset = h[p + 16] * 2 ** 32 + (h[p + 17] >>> 0);
    }
    let wallet = null;
    if ((code & CONFIG) !== 0) config = JSON.parse(this.#raw.take_config());
    else if ((code & WALLET) !== 0) wallet = JSON.parse(this.#raw.take_config());
    return new Decision(code, featureKey, f, config, reset, wallet);
  }

  /** May `customer` use `featureKey`? A denial is a returned Decision, never an exception. */
  check(customer, featureKey, options) {
    const r = this.#live();
    const c = id(customer, "/customer");
    const k = id(featureKey, "/featureKey");
    const now = timeOf(options);
    let code;
    try {
      code = this.#ids(c, k) ? r.check_ids(c.length, k.length, now) : r.check(c, k, now);
    } catch (e) {
      throw this.#trap(e);
    }
    return this.#decide(code, k);
  }

  /** Uses `n` units (number | decimal string | bigint); `options.id` makes it idempotent. */
  consume(customer, featureKey, n, options) {
    const r = this.#live();
    const c = id(customer, "/customer");
    const k = id(featureKey, "/featureKey");
    const q = units(n);
    const now = timeOf(options);
    const key = options == null ? undefined : options.id;
    if (key !== undefined && typeof key !== "string") throw new TollgateError("invalid_type", "/id", "/id: expected a string");
    let code;
    try {
      if (typeof q !== "number" || key !== undefined) code = r.consume_text(c, k, String(q), key, now);
      else code = this.#ids(c, k) ? r.consume_ids(c.length, k.length, q, now) : r.consume(c, k, q, now);
    } catch (e) {
      throw this.#trap(e);
    }
    return this.#decide(code, k);
  }

  /** A pre-resolved handle on the customer's access to the feature, or null if they have none. */
  handle(customer, featureKey) {
    const r = this.#live();
    const c = id(customer, "/customer");
    const k = id(featureKey, "/featureKey");
    let n;
    try {
      n = r.handle(c, k);
    } catch (e) {
      throw this.#trap(e);
    }
    return n < 0 ? null : new Handle(TOKEN, r, n, c, k);
  }

  #number(h) {
    const n = Handle.numberIn(h, this.#raw);
    if (n < 0) throw new TollgateError("stale_handle", "/handle", "/handle: not a handle of this engine");
    return n;
  }

  /** `check` through a handle. */
  checkHandle(h, options) {
    const r = this.#live();
    const n = this.#number(h);
    const now = timeOf(options);
    let code;
    try {
      code = r.check_handle(n, now);
    } catch (e) {
      throw this.#trap(e);
    }
    return this.#decide(code, h.featureKey);
  }

  /** `consume` (without an idempotency id) through a handle. */
  consumeHandle(h, n, options) {
    const r = this.#live();
    const num = this.#number(h);
    const q = units(n);
    const now = timeOf(options);
    let code;
    try {
      code = typeof q === "number" ? r.consume_handle(num, q, now) : r.consume_handle_text(num, q, now);
    } catch (e) {
      throw this.#trap(e);
    }
    return this.#decide(code, h.featureKey);
  }

  // Runs `call` on the live engine; a trap poisons it, a failure (`undefined` or `false`)
  // throws the kept problems as a TollgateError.
  #run(call) {
    const r = this.#live();
    let out;
    try {
      out = call(r);
    } catch (e) {
      throw this.#trap(e);
    }
    if (out === undefined || out === false) throw lastError();
    return out;
  }

  /** Meters a usage event (CloudEvents fields); all or nothing. */
  ingest(event, options) {
    const body = text(event, "");
    const now = timeOf(options);
    return JSON.parse(this.#run((r) => r.ingest(body, now)));
  }

  /** The running bill of SPEC §6.2: the draft invoice of the customer's current period. */
  invoicePreview(customer, options) {
    if (typeof customer !== "string") throw new TollgateError("invalid_type", "/customer", "/customer: expected a string");
    const now = timeOf(options);
    return JSON.parse(this.#run((r) => r.invoice_preview(customer, now)));
  }

  /** The quote of SPEC §6.1: `{ planId, usage: { metricId: quantity }, eventCount? }`. */
  quote(request) {
    const body = text(request, "");
    return JSON.parse(this.#run((r) => r.quote(body)));
  }

  /**
   * Replaces catalog and customers with a newer snapshot (SPEC §7), keeping usage so far; one
   * older than the engine's, or expired at `now`, is refused (`stale_snapshot`).
   */
  applySnapshot(snapshot, options) {
    const body = text(snapshot, "");
    const now = timeOf(options);
    this.#run((r) => r.apply_snapshot_at(body, now));
  }

  /** When the snapshot held stops being loadable (RFC 3339), or null; the engine keeps deciding. */
  get snapshotExpiresAt() {
    return this.#live().snapshot_expires_at() ?? null;
  }

  /**
   * The next sync request for the hub (SPEC §7), or `null` when leases are off. Call it as
   * often as you like: nothing is dropped until a response acknowledges it.
   */
  pendingSync(options) {
    const t = this.pendingSyncText(options);
    return t === null ? null : JSON.parse(t);
  }

  /** `pendingSync` as JSON text (event numbers keep their exact digits). */
  pendingSyncText(options) {
    const now = timeOf(options);
    return this.#textOrNull((r) => r.sync_request(now));
  }

  // Runs `call`, whose `undefined` means "nothing" unless the call kept problems (then thrown).
  #textOrNull(call) {
    const r = this.#live();
    let out;
    try {
      out = call(r);
    } catch (e) {
      throw this.#trap(e);
    }
    if (out === undefined) {
      const problems = raw.take_errors();
      if (problems !== "[]") throw problemError(JSON.parse(problems));
      return null;
    }
    return out;
  }

  /** Merges the hub's sync response (object or JSON text), with a snapshot if it carries one. */
  applySync(response, options) {
    const body = text(response, "");
    const now = timeOf(options);
    this.#run((r) => r.apply_sync(body, now));
  }

  /** Queued events no sync request has carried yet: another page to send when not 0. */
  syncBacklog() {
    return this.#run((r) => r.sync_backlog());
  }

  /** True when this edge should sync soon (usage to send, a lease running low or expiring). */
  needsSync(options) {
    const now = timeOf(options);
    return this.#run((r) => (r.needs_sync(now) ? 1 : 2)) === 1;
  }

  /** The edge's sync state (leases, unacknowledged usage) as JSON text for durable storage. */
  exportState() {
    return this.#textOrNull((r) => r.export_state());
  }

  /** Restores a state from `exportState` (turns leases on). */
  importState(state) {
    const body = text(state, "");
    this.#run((r) => r.import_state(body));
  }

  /** Adds or replaces a customer (SPEC §4); usage recorded so far is kept. */
  upsertCustomer(customer) {
    const body = text(customer, "");
    this.#run((r) => r.upsert_customer(body));
  }

  /** The version of the snapshot loaded. */
  get snapshotVersion() {
    return this.#live().snapshot_version();
  }

  /** Releases the engine's memory now instead of when it is garbage-collected. */
  free() {
    if (this.#dead === null) {
      this.#dead = new TollgateError("freed", "", "this engine was freed");
      this.#raw.free();
    }
  }
}

// A trap (a panic in the core, or the module itself failing): a TollgateError that says so,
// with the panic's message when the core recorded one.
function trapped(e) {
  let message;
  try {
    message = raw.take_panic();
  } catch {
    message = undefined;
  }
  return new TollgateError("internal_error", "", `internal error: ${message ?? (e && e.message) ?? e}`, undefined, {
    cause: e,
  });
}

/** Every problem of a catalog (an object or its JSON text); an empty array when it is valid. */
export function validateCatalog(catalog) {
  needInit();
  const body = text(catalog, "");
  let out;
  try {
    out = raw.validate_catalog(body);
  } catch (e) {
    throw trapped(e);
  }
  return JSON.parse(out);
}

// HubClient: one sync round trip per call (SPEC §7), safe to hand to `ctx.waitUntil`.
// Calls on one client are serialised, so two overlapping `sync` calls never race; failures are
// retried with exponential backoff, and nothing is lost when all attempts fail: the engine keeps
// every unacknowledged event and lease report for the next call.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The hub signs a sync answer for the edge run it answers when asked to: an engine with
// `hubPublicKey` takes only such answers (the engine checks the signature, not this code).
const SIGNED_JSON = "application/vnd.tollgate.signed+json";

// A signed answer's payload, for the caller to read (the engine already checked and applied it).
function openedResponse(value) {
  if (value === null || typeof value !== "object" || typeof value.payload !== "string") return value;
  const bytes = Uint8Array.from(atob(value.payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export class HubClient {
  #urls;
  #at = 0;
  #token;
  #fetch;
  #retries;
  #backoffMs;
  #maxPages;
  #timeoutMs;
  #queue = Promise.resolve();

  /**
   * `url` is the hub's base URL, or several hubs' (on one database: any may answer); a request
   * that fails on one (network, timeout, 5xx, 429) is retried on the next.
   * @param {{ url: string | string[], token: string, fetch?: typeof fetch, retries?: number, backoffMs?: number, maxPages?: number, timeoutMs?: number }} options
   */
  constructor(options) {
    const urls = options == null ? [] : Array.isArray(options.url) ? options.url : [options.url];
    if (urls.length === 0 || !urls.every((u) => typeof u === "string")) {
      throw new TollgateError("invalid_type", "/url", "/url: expected the hub's base URL, or a list of them");
    }
    if (typeof options.token !== "string") {
      throw new TollgateError("invalid_type", "/token", "/token: expected the edge token");
    }
    this.#urls = urls.map((u) => u.replace(/\/+$/, ""));
    this.#token = options.token;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#retries = options.retries ?? 3;
    this.#backoffMs = options.backoffMs ?? 100;
    this.#maxPages = options.maxPages ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 10000;
  }

  /**
   * Sends the engine's pending usage and lease counters, merges the answer (grants, a newer
   * snapshot), page after page until no event is left unsent (at most `maxPages`, 1,000 by
   * default, per call). Resolves to the last page's response, with the `problems` of every page
   * (leases and events the hub refused: events become dead letters at the hub, never resent), or
   * `null` when the engine does not use leases.
   */
  sync(engine, options) {
    const run = this.#queue.then(() => this.#syncPages(engine, options));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * `engine.consume`, and when the denial says a sync would help now (`needsSync`:
   * `lease_exhausted`, `lease_expired` — a new isolate holds no lease yet), one sync and one
   * retry, waiting at most `options.waitMs` (default 1,000) for the sync. A new isolate's first
   * request thus costs one round trip to the hub instead of a denial. When the sync fails or
   * takes longer, the first decision is returned (the sync goes on in the background); a hub
   * that refuses the token still rejects.
   */
  async consume(engine, customer, featureKey, n, options) {
    const first = engine.consume(customer, featureKey, n, options);
    if (first.allowed || !first.needsSync) return first;
    return (await this.#syncWithin(engine, options)) ? engine.consume(customer, featureKey, n, options) : first;
  }

  /** `engine.ingest` with the same one sync and one retry as `consume`. */
  async ingest(engine, event, options) {
    const first = engine.ingest(event, options);
    if (first.allowed || !first.decisions.some((d) => d.needsSync)) return first;
    return (await this.#syncWithin(engine, options)) ? engine.ingest(event, options) : first;
  }

  // Syncs, waiting at most `options.waitMs`: true when the sync answered in time.
  async #syncWithin(engine, options) {
    const waitMs = options?.waitMs ?? 1000;
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    const at = options?.now === undefined ? undefined : { now: options.now };
    const synced = this.sync(engine, at).then(
      () => true,
      (e) => {
        if (e instanceof TollgateError && ["network", "timeout", "hub_unavailable"].includes(e.code)) return false;
        throw e;
      },
    );
    try {
      return await Promise.race([synced, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #syncPages(engine, options) {
    const problems = [];
    let last = null;
    for (let page = 0; page < this.#maxPages; page++) {
      last = await this.#syncOnce(engine, options);
      if (last === null) return null;
      if (Array.isArray(last.problems)) problems.push(...last.problems);
      if (engine.syncBacklog() === 0) break;
    }
    if (problems.length > 0) last.problems = problems;
    return last;
  }

  /** The hub asked now: the last one that answered. */
  get #url() {
    return this.#urls[this.#at];
  }

  /** After a failure, the next hub of the list is asked. */
  #next() {
    this.#at = (this.#at + 1) % this.#urls.length;
  }

  async #syncOnce(engine, options) {
    let lastError;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0) await sleep(this.#backoffMs * 2 ** (attempt - 1));
      // A new request each attempt: lease expiry is timed from when it is sent.
      const body = engine.pendingSyncText(options?.now === undefined ? undefined : { now: options.now });
      if (body === null) return null;
      let response;
      try {
        response = await this.#fetch(`${this.#url}/v1/sync`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: `${SIGNED_JSON}, application/json`,
            authorization: `Bearer ${this.#token}`,
          },
          body,
          signal: timeoutSignal(this.#timeoutMs),
        });
      } catch (e) {
        // The network failed or the hub did not answer in time: retry.
        const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError";
        lastError = timedOut
          ? new TollgateError("timeout", "", `the hub at ${this.#url} did not answer within ${this.#timeoutMs} ms`, undefined, { cause: e })
          : new TollgateError("network", "", `the hub at ${this.#url} could not be reached: ${e?.message ?? e}`, undefined, { cause: e });
        this.#next();
        continue;
      }
      const text = await response.text();
      if (response.status >= 500 || response.status === 429) {
        lastError = hubError(response.status, text, "hub_unavailable");
        this.#next();
        continue;
      }
      if (!response.ok) {
        throw hubError(response.status, text, "sync_refused");
      }
      engine.applySync(text);
      return openedResponse(JSON.parse(text));
    }
    throw lastError ?? new TollgateError("network", "", "sync failed");
  }
}
