// Types of the tollgate npm package: the JavaScript API (SPEC §8) and the JSON it takes and
// returns (SPEC §3–§6.1). Amounts are decimal strings; quantities may be numbers, decimal
// strings or bigints on the way in and are decimal strings on the way out.
//
// The JSON the API returns (decisions, ingest outcomes, quotes, invoices, problems, sync
// messages) is declared in types.d.ts, generated from the Rust types (tests/types.rs, `make
// types`); this file declares the inputs and the classes by hand and re-exports those.

import type {
  DecimalString,
  DecisionJSON,
  FeatureType,
  IngestOutcome,
  Invoice,
  JsonValue,
  Problem,
  Quote,
  Reason,
  SyncRequest,
  SyncResponse as SyncResponseBody,
  Timestamp,
  WalletView,
} from "./types.js";

export type {
  Adjusts,
  Charge,
  DecimalString,
  DecisionJSON,
  FeatureType,
  IngestOutcome,
  Invoice,
  InvoiceKind,
  InvoiceStatus,
  JsonValue,
  LeaseGrant,
  LeaseReport,
  Line,
  LineType,
  Mode,
  Problem,
  Quote,
  Reason,
  SyncRequest,
  TierLine,
  Timestamp,
  WalletView,
} from "./types.js";

/** A quantity as the API accepts it: a number, a decimal string or a bigint. */
export type Quantity = number | string | bigint;
/** An ISO-8601 duration of one unit: `P1D`, `P1W`, `P1M`, `P3M`, `P1Y` (`P0D`: one-time fee). */
export type Cadence = string;

// ---------------------------------------------------------------------------------------------
// Catalog (SPEC §3)

export interface Catalog {
  schemaVersion: 1;
  catalogVersion?: number;
  products: Product[];
  features: Feature[];
  billableMetrics?: BillableMetric[];
  fees?: Fee[];
  /** Market rates for `dynamic` prices, by name. */
  rates?: Record<string, DecimalString>;
  plans: Plan[];
}

export interface Product {
  id: string;
  name: string;
  description?: string;
}

export interface Feature {
  id: string;
  productId: string;
  /** kebab-case, unique within the product. */
  key: string;
  type: FeatureType;
  name?: string;
  description?: string;
}

export type Aggregation = "SUM" | "COUNT" | "AVG" | "MIN" | "MAX" | "UNIQUE_COUNT" | "LATEST" | "WEIGHTED_SUM";

export interface BillableMetric {
  id: string;
  productId: string;
  name: string;
  unit?: string;
  description?: string;
  eventType: string;
  aggregation: Aggregation;
  /** A dotted JSONPath (`$.input_tokens`); required for every aggregation but `COUNT`. */
  valueProperty?: string;
  /** Dimensions: name → JSONPath. */
  groupBy?: Record<string, string>;
  /** Only events whose property matches: JSONPath → value or allowed values. */
  filter?: Record<string, string | number | boolean | Array<string | number | boolean>>;
}

export interface Fee {
  id: string;
  productId: string;
  name: string;
  description?: string;
}

export interface Plan {
  id: string;
  productId: string;
  name: string;
  description?: string;
  /** ISO-4217 code. */
  currency: string;
  billingCadence: Cadence;
  minimumCommitment?: DecimalString;
  prices: Price[];
}

export type PaymentTerm = "in_advance" | "in_arrears" | "instant";

export interface Price {
  id: string;
  name?: string;
  /** Exactly one of `metricId` and `feeId`. */
  metricId?: string;
  feeId?: string;
  paymentTerm: PaymentTerm;
  model: PriceModel;
  /** Fee prices: billed quantity per period (seats). */
  quantity?: Quantity;
  billingCadence?: Cadence;
  minimumQuantity?: Quantity;
  maximumQuantity?: Quantity | null;
  /** Units covered by grants of the linked metered feature are free. */
  grantDiscount?: boolean;
  /** Subscribing to this price grants this entitlement. */
  feature?: { featureId: string; entitlement: EntitlementTemplate };
}

export interface Tier {
  /** Inclusive upper bound; `null` for the last tier. */
  upTo: Quantity | null;
  unitPrice?: DecimalString;
  rate?: DecimalString;
  flatPrice?: DecimalString;
}

export type PriceModel =
  | { type: "flat"; amount: DecimalString }
  | { type: "per_unit"; unitPrice: DecimalString }
  | {
      type: "package";
      packageSize: Quantity;
      packagePrice: DecimalString;
      freeUnits?: Quantity;
      rounding?: "up" | "down";
    }
  | { type: "graduated"; tiers: Tier[] }
  | { type: "volume"; tiers: Tier[] }
  | {
      type: "percentage";
      rate: DecimalString;
      fixedFee?: DecimalString;
      minPerEvent?: DecimalString;
      maxPerEvent?: DecimalString;
      freeEvents?: Quantity;
      freeAmount?: DecimalString;
    }
  | { type: "graduated_percentage"; tiers: Tier[] }
  | {
      type: "dynamic";
      source: { eventProperty: string } | { rate: string };
      minPrice?: DecimalString;
      maxPrice?: DecimalString;
    }
  | { type: "matrix"; dimension: string; cells: Record<string, PriceModel>; default?: PriceModel };

export type EntitlementTemplate =
  | { type: "boolean" }
  | { type: "static"; config: JsonValue }
  | {
      type: "metered";
      /** Omit for a one-time allowance that never refills. */
      usagePeriod?: { interval: Cadence; anchor?: Timestamp };
      issueAfterReset?: Quantity;
      issueAfterResetPriority?: number;
      isSoftLimit?: boolean;
      preserveOverageAtReset?: boolean;
      resetMaxRollover?: Quantity | null;
      resetMinRollover?: Quantity;
      tolerance?: Quantity;
    };

// ---------------------------------------------------------------------------------------------
// Customers and snapshots (SPEC §4, §7)

export interface Customer {
  id: string;
  externalId?: string;
  name?: string;
  subscriptions?: Subscription[];
  grants?: Grant[];
  wallet?: { currency: string; balance: DecimalString };
}

export interface Subscription {
  id: string;
  planId: string;
  startedAt: Timestamp;
  endingAt?: Timestamp | null;
  billingAnchor?: Timestamp | null;
  /** Negotiated models by price id. */
  priceOverrides?: Record<string, PriceModel>;
  percentageDiscount?: DecimalString;
  minimumCommitment?: DecimalString;
}

export interface Grant {
  id: string;
  featureKey: string;
  amount: Quantity;
  priority?: number;
  effectiveAt?: Timestamp;
  expiresAt?: Timestamp | null;
  resetMaxRollover?: Quantity | null;
  resetMinRollover?: Quantity;
}

export interface Snapshot {
  snapshotVersion?: number;
  issuedAt?: Timestamp;
  /**
   * The first instant at which the snapshot may no longer be applied: `applySnapshot` and
   * `applySync` at or after it refuse it (`stale_snapshot` at `/expiresAt`). Absent or `null`:
   * it never expires. An engine already holding it keeps deciding after it passes.
   */
  expiresAt?: Timestamp | null;
  catalog: Catalog;
  customers?: Customer[];
  leases?: JsonValue[];
}

// ---------------------------------------------------------------------------------------------
// Events and decisions (SPEC §5)

/** A usage event with CloudEvents field names; `(source, id)` is its idempotency key. */
export interface UsageEvent {
  id: string;
  source: string;
  type: string;
  /** The customer id. */
  subject: string;
  /** Defaults to `now`. */
  time?: Timestamp;
  data?: { [key: string]: JsonValue };
  specversion?: string;
  datacontenttype?: string;
  dataschema?: string;
}

/** An entitlement decision. Denials are decisions (`allowed: false`), never exceptions. */
export declare class Decision implements Readonly<DecisionJSON> {
  private constructor();
  readonly allowed: boolean;
  readonly reason: Reason;
  readonly featureKey: string;
  readonly featureType: FeatureType | null;
  /** Units left; null unless the feature is metered. Computed when read. */
  readonly balance: DecimalString | null;
  /** Units used this period. */
  readonly usage: DecimalString | null;
  /** Units used past the balance (soft limits). */
  readonly overage: DecimalString | null;
  /** Units issued for this period. */
  readonly limit: DecimalString | null;
  /** When the usage period ends and the balance resets (RFC 3339 UTC); null for a meter that
   * never resets and for features that are not metered. For `Retry-After` / `RateLimit-Reset`. */
  readonly resetAt: string | null;
  /** A static feature's configuration. */
  readonly config: JsonValue | null;
  readonly exact: boolean;
  readonly needsSync: boolean;
  /** On a `consume` the customer's wallet pays (a feature whose metric an instant price
   * charges), allowed or denied: the wallet as this engine knows it. */
  readonly wallet?: WalletView;
  toJSON(): DecisionJSON;
}

// ---------------------------------------------------------------------------------------------
// Quotes (SPEC §6.1)

export interface QuoteRequest {
  planId: string;
  /** Usage per metric id; a matrix metric may give it per dimension value. */
  usage: Record<string, Quantity | Record<string, Quantity>>;
  /** Events per metric id, or one count for every metric (percentage fixed fees). */
  eventCount?: Quantity | Record<string, Quantity>;
  period?: JsonValue;
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Thrown for bad input (never for a denial). `code` and `path` are those of the first problem;
 * `problems` holds every one. Also thrown with code `internal_error` if the core traps (then the
 * engine is `poisoned`: every later call on it throws), `not_initialized` before the module is
 * loaded (tollgate/slim), and `freed` after `engine.free()`.
 */
export declare class TollgateError extends Error {
  readonly name: "TollgateError";
  readonly code: string;
  readonly path: string;
  readonly problems: Problem[];
  /** On a `HubClient` error the hub answered: its HTTP status. */
  readonly status?: number;
}

// ---------------------------------------------------------------------------------------------
// The engine (SPEC §8)

export interface EngineOptions {
  /** How long (ms of event time before `now`) idempotency keys are remembered (default 35 days). */
  dedupeWindowMs?: number;
  /**
   * How many idempotency keys are remembered at most (default 100,000, whole, ≥ 1; per memory:
   * events, and `consume` ids). Past it the oldest by event time are forgotten, and `ingest`
   * refuses an event dated at or before the newest forgotten one as `event_too_old` rather than
   * risk counting it twice.
   */
  dedupeMaxEntries?: number;
  /**
   * The key of the engine's hash tables of customer, event and `consume` ids, a whole number from
   * 0 to 2^64 − 1 (a decimal string or a bigint beyond 2^53). By default a random one from
   * `crypto.getRandomValues`, so ids chosen by an attacker cannot pile into a few buckets; give
   * one only to reproduce a run.
   */
  hashSeed?: string | number | bigint;
  /**
   * How far (ms) after `now` an ingested event may be dated (default 300,000: 5 minutes of clock
   * skew); later is refused as `invalid_timestamp` at `/time`.
   */
  maxFutureMs?: number;
  /** This edge's name in sync messages. */
  edgeId?: string;
  /** This run of the edge (default: a fresh random id when `leases` is on). */
  bootId?: string;
  /**
   * Enforce hub leases (§7): hard-limit metered features also need this edge's lease, and
   * every use is queued for the hub (`HubClient.sync`). Default `false`: the snapshot's own
   * balances are enforced locally.
   */
  leases?: boolean;
  /** The hub's Ed25519 public key (base64 of 32 bytes): only signed snapshots are accepted. */
  hubPublicKey?: string;
}

/**
 * A signed snapshot or sync response (SPEC §7): `payload` is the base64 of the exact JSON bytes
 * the hub signed, `signature` the base64 of their Ed25519 signature.
 */
export interface SignedEnvelope {
  payload: string;
  signature: string;
  keyId?: string;
}

/**
 * The hub's answer to a sync request: the core's response (`ackSeq`, `leases`, `snapshot`) and
 * what the hub adds. A hub with a signing key sends it as a `SignedEnvelope` whose payload is
 * this object, with `edgeId` and `bootId` naming the edge run it answers.
 */
export interface SyncResponse extends SyncResponseBody {
  /** The edge answered (always in a signed response; when present, it must be this engine's). */
  edgeId?: string;
  /** The run of that edge answered (always in a signed response; when present, it must be this engine's). */
  bootId?: string;
  /** Leases and events the hub refused (events are kept at the hub as dead letters). */
  problems?: Problem[];
  /** How many problems were not listed (over 100). */
  problemsOmitted?: number;
}

/** Syncs an engine with the hub: pages of round trips per call, each retried with backoff. */
export declare class HubClient {
  constructor(options: {
    /** The hub's base URL, or several hubs' on one database (a failed request goes to the next). */
    url: string | string[];
    token: string;
    /** The fetch to use (default: the global one). */
    fetch?: (url: string, init: { method: string; headers: Record<string, string>; body: string }) => Promise<{ status: number; ok: boolean; text(): Promise<string> }>;
    retries?: number;
    backoffMs?: number;
    /** Most pages one `sync` call sends (default 1,000). */
    maxPages?: number;
    /** How long one request may take before it counts as failed and is retried (default 10,000). */
    timeoutMs?: number;
  });
  /**
   * Sends pending usage and lease counters, page after page until `engine.syncBacklog()` is 0,
   * merging each answer (asked signed: an engine with `hubPublicKey` takes only those). Resolves
   * to the last page's answer, opened, with the `problems` of every page; `null` when leases are
   * off.
   *
   * Rejects with a `TollgateError` whose `code` says why: `network` (the hub could not be
   * reached), `timeout` (no answer within `timeoutMs`), after the retries; the hub's own code
   * (`unauthorized`, `forbidden`, …, with `status`) when it refused; `hub_unavailable` when it
   * kept answering 5xx or 429 without a body that names one.
   */
  sync(engine: Engine, options?: At): Promise<SyncResponse | null>;
  /**
   * `engine.consume`, and when the denial says a sync would help now (`needsSync`:
   * `lease_exhausted`, `lease_expired`; a new isolate holds no lease yet), one sync and one
   * retry, waiting at most `waitMs` (default 1,000) for the sync. Costs one round trip to the hub
   * on a cold start instead of a denial. When the sync fails (`network`, `timeout`,
   * `hub_unavailable`) or is late, resolves to the first decision; other sync errors reject.
   */
  consume(engine: Engine, customer: string, featureKey: string, n: Quantity, options?: ConsumeOptions & { waitMs?: number }): Promise<Decision>;
  /** `engine.ingest` with the same one sync and one retry as `consume`. */
  ingest(engine: Engine, event: UsageEvent | string, options?: At & { waitMs?: number }): Promise<IngestOutcome>;
}

/** When it is, for a call: ms since the Unix epoch or a Date; defaults to `Date.now()`. */
export interface At {
  now?: number | Date;
}

export interface ConsumeOptions extends At {
  /** Idempotency key (per customer): a repeat returns the first decision and changes nothing. */
  id?: string;
}

/** A customer's access to one feature, resolved once (see `Engine.handle`). */
export declare class Handle {
  private constructor();
  readonly customer: string;
  readonly featureKey: string;
}

export declare class Engine {
  private constructor();
  /** An engine over a snapshot (object or JSON text). Throws TollgateError on bad input. */
  static fromSnapshot(snapshot: Snapshot | SignedEnvelope | string, options?: EngineOptions & At): Engine;
  /** May `customer` use `featureKey`? */
  check(customer: string, featureKey: string, options?: At): Decision;
  /** Uses `n` units: all or nothing on a hard limit, overage on a soft one. */
  consume(customer: string, featureKey: string, n: Quantity, options?: ConsumeOptions): Decision;
  /** A pre-resolved handle for the hot path, or null when the customer has no such access (use `check` for why). */
  handle(customer: string, featureKey: string): Handle | null;
  /** `check` through a handle; throws `stale_handle` after the customer was redefined. */
  checkHandle(handle: Handle, options?: At): Decision;
  /** `consume` (without an idempotency id) through a handle. */
  consumeHandle(handle: Handle, n: Quantity, options?: At): Decision;
  /** Meters a usage event for every matching metric, all or nothing. */
  ingest(event: UsageEvent | string, options?: At): IngestOutcome;
  /** The invoice a new subscriber of the plan would get for this usage. */
  quote(request: QuoteRequest | string): Quote;
  /** The running bill: the draft arrears invoice of the customer's current billing period. */
  invoicePreview(customer: string, options?: At): Invoice;
  /** Adds or replaces a customer; usage recorded so far is kept. */
  upsertCustomer(customer: Customer | string): void;
  /**
   * Replaces catalog and customers with a newer snapshot, keeping usage, used balances, wallet
   * debits and the idempotency memory. A bad snapshot throws and changes nothing; so does one
   * older than the engine's (`stale_snapshot` at `/snapshotVersion`: snapshots only move
   * forward) and one whose `expiresAt` is at or before `now` (`stale_snapshot` at `/expiresAt`).
   * Handles made before become stale.
   */
  applySnapshot(snapshot: Snapshot | SignedEnvelope | string, options?: At): void;
  /** The next sync request (`null` when leases are off); nothing is dropped until acknowledged. */
  pendingSync(options?: At): SyncRequest | null;
  /** `pendingSync` as JSON text. */
  pendingSyncText(options?: At): string | null;
  /**
   * Merges the hub's response (grants, a newer snapshot), plain or signed. With `hubPublicKey`,
   * only a signed response whose signature checks (`unsigned_snapshot`, `bad_signature`) and that
   * names this edge and run is taken (`invalid_value` at `/payload/edgeId` or `/payload/bootId`
   * for another's); without it both forms are. A snapshot in it is applied as by
   * `applySnapshot` at `now`. All or nothing: a response that throws changes nothing.
   */
  applySync(response: SyncResponse | SignedEnvelope | string, options?: At): void;
  /** True when this edge should sync soon. */
  needsSync(options?: At): boolean;
  /** Queued events no sync request has carried yet: send another page while it is not 0. */
  syncBacklog(): number;
  /** The sync state (leases, unacknowledged usage) as JSON text, for durable storage. */
  exportState(): string | null;
  /** Restores a state from `exportState`. */
  importState(state: string): void;
  /** The version of the snapshot loaded. */
  readonly snapshotVersion: number;
  /**
   * The `expiresAt` of the snapshot held, or `null` when it never expires. Informational: the
   * engine goes on deciding after it passes; compare it with your clock to fetch a newer one.
   */
  readonly snapshotExpiresAt: Timestamp | null;
  /** Releases the engine's memory now (otherwise when it is garbage-collected). */
  free(): void;
}

/** Every problem of a catalog (object or JSON text); empty when it is valid. */
export declare function validateCatalog(catalog: Catalog | string): Problem[];

/** True once the WebAssembly module is loaded (always, through the package's main entry). */
export declare function isInitialized(): boolean;
