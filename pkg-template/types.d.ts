// Generated from the Rust types by ts-rs (tests/types.rs): do not edit. `make types` rewrites it;
// `make test-rust` fails when it is stale. The JSON values the API returns (SPEC §5–§7);
// index.d.ts re-exports them next to the hand-written API and input types.

/** A decimal number written as a string, e.g. `"0.000002"` (exact; never a float). */
export type DecimalString = string;
/** An RFC 3339 timestamp, e.g. `"2026-11-28T10:00:00Z"`. */
export type Timestamp = string;
/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// ---------------------------------------------------------------------------------------------
// Decisions and ingest outcomes (SPEC §5)

/** Why a decision came out as it did. */
export type Reason = "ok" | "no_entitlement" | "not_subscribed" | "unknown_customer" | "unknown_feature" | "limit_reached" | "lease_exhausted" | "lease_expired" | "offline";

/** What kind of entitlement a feature is. */
export type FeatureType = "boolean" | "static" | "metered";

/** A decision as JSON (`JSON.stringify(decision)`, `decision.toJSON()`, and inside `ingest`'s outcome). */
export type DecisionJSON = {
  /** May the customer go ahead. */
  allowed: boolean;
  /** Why. */
  reason: Reason;
  /** The feature asked about. */
  featureKey: string;
  /** Its type, when the feature exists. */
  featureType: FeatureType | null;
  /** Units left (Σ remaining of active grants). */
  balance: DecimalString | null;
  /** Units used this period. */
  usage: DecimalString | null;
  /** Units used past the balance (soft limits). */
  overage: DecimalString | null;
  /** Units issued for this period. */
  limit: DecimalString | null;
  /**
   * When the usage period ends and the balance resets (RFC 3339); null for a meter that
   * never resets, and for decisions without figures.
   */
  resetAt: string | null;
  /** Static configuration. */
  config: JsonValue | null;
  /** False when the answer rests on a lease or a stale snapshot rather than the full balance. */
  exact: boolean;
  /** True when the edge should sync soon (lease low or expired). */
  needsSync: boolean;
  /**
   * The customer's wallet as this engine knows it, on a `consume` its wallet pays (a feature
   * whose metric an instant price charges): allowed or denied, the balance is there.
   */
  wallet?: WalletView;
};

/** A real-time charge reported by `ingest`. */
export type Charge = {
  /** The subscription. */
  subscriptionId: string;
  /** The instant price. */
  priceId: string;
  /** Exact amount debited. */
  amount: DecimalString;
  /** ISO-4217 code. */
  currency: string;
  /**
   * Wallet balance after the debit (`null` when the customer has no wallet: only a free
   * charge gets that far).
   */
  walletBalance: DecimalString | null;
};

/** A wallet as an engine knows it. */
export type WalletView = {
  /** ISO-4217 code. */
  currency: string;
  /**
   * The balance: with leases, the hub's last word less what this edge spent since (others'
   * spending since then is not known yet); without, the engine's own.
   */
  balance: DecimalString;
  /** With leases: money of the current wallet lease still usable while it is valid. */
  leased?: DecimalString;
  /** With leases: money spent under the current wallet lease. */
  spent?: DecimalString;
};

/** The result of ingesting one event. */
export type IngestOutcome = {
  /** False when the event was denied and nothing of it was applied. */
  allowed: boolean;
  /** `ok`, `unknown_customer` or `limit_reached`. */
  reason: Reason;
  /** A decision per metered feature the event consumes (the denials, when denied). */
  decisions: Array<DecisionJSON>;
  /** Real-time charges of instant prices, debited from the wallet. */
  charges: Array<Charge>;
  /** True when the denial is the wallet's: the real-time charges did not fit its balance. */
  walletDenied?: boolean;
  /** True when this `(source, id)` was seen before: the first result is returned. */
  duplicate: boolean;
  /** True when no metric counts the event. */
  unmatched: boolean;
  /** The customer's wallet as this engine knows it, when they have one. */
  wallet?: WalletView;
};

// ---------------------------------------------------------------------------------------------
// Quotes and invoices (SPEC §6)

/** What a line is for. */
export type LineType = "fee" | "usage" | "discount" | "commitment" | "credit" | "adjustment";

/** One tier's part of a line. */
export type TierLine = {
  /** The tier's inclusive upper bound; `null` for the open tier. */
  upTo: DecimalString | null;
  /** Units inside the tier. */
  quantity: DecimalString;
  /** Their unrounded amount, flat price included. */
  amount: DecimalString;
};

/** The closed invoice an adjustment line belongs to. */
export type Adjusts = {
  /** Its subscription. */
  subscriptionId: string;
  /** Its period start (RFC 3339). */
  periodStart: string;
  /** Its period end (RFC 3339, exclusive). */
  periodEnd: string;
  /** The description of the line adjusted. */
  description: string;
};

/** An invoice or quote line (SPEC §6.2). */
export type Line = {
  /** Fee, usage, discount, commitment or credit. */
  type: LineType;
  /** The price behind the line, if any. */
  priceId: string | null;
  /** What the customer reads. */
  description: string;
  /** Billed quantity (after allowances and clamps). */
  quantity: DecimalString;
  /** Quantity as metered, before allowances and clamps. */
  meteredQuantity: DecimalString;
  /** The single unit price, where there is one. */
  unitPrice?: DecimalString;
  /** Per-tier breakdown of tiered models. */
  tiers?: Array<TierLine>;
  /** The exact amount. */
  preciseAmount: DecimalString;
  /** The amount rounded half away from zero to the currency's exponent. */
  amount: DecimalString;
  /** On an adjustment line: the closed invoice and line it adjusts. */
  adjusts?: Adjusts;
};

/** The priced result: lines, subtotal, discount, total, in the plan's currency. */
export type Quote = {
  /** The plan priced. */
  planId: string;
  /** ISO-4217 code. */
  currency: string;
  /** Fee, usage and commitment lines. */
  lines: Array<Line>;
  /** Σ fee and usage lines. */
  subtotal: DecimalString;
  /** Σ discounts (none on a plain quote). */
  discount: DecimalString;
  /** What the period would cost. */
  total: DecimalString;
};

/** Which of a period's two invoices. */
export type InvoiceKind = "advance" | "arrears";

/** Draft (the running bill) or final (issued: it will not change). */
export type InvoiceStatus = "draft" | "final";

/** An invoice. */
export type Invoice = {
  /** Stable id: `<subscription>-<period start, basic ISO 8601>-<kind>`. */
  id: string;
  /** Advance (upfront fees) or arrears (the period's bill). */
  kind: InvoiceKind;
  /** The customer. */
  customerId: string;
  /** The subscription billed. */
  subscriptionId: string;
  /** Its plan. */
  planId: string;
  /** Period start (RFC 3339). */
  periodStart: string;
  /** Period end (RFC 3339, exclusive): the subscription's end when it ended inside the period. */
  periodEnd: string;
  /**
   * When it falls due (RFC 3339): the period's start (or the subscription's, if later) for
   * an advance invoice, the period's end (or the subscription's, if earlier) for arrears.
   */
  issuedAt: string;
  /** ISO-4217 code. */
  currency: string;
  /** Draft or final. */
  status: InvoiceStatus;
  /** Fee, usage, discount, commitment, credit and adjustment lines. */
  lines: Array<Line>;
  /** Σ fee and usage lines. */
  subtotal: DecimalString;
  /** Σ discounts (positive). */
  discount: DecimalString;
  /** Σ every line: what is owed. */
  total: DecimalString;
};

// ---------------------------------------------------------------------------------------------
// Sync messages (SPEC §7)

/** One lease in an edge's request: its counters as the edge knows them. */
export type LeaseReport = {
  /** Which lease of this key (an edge opens a new epoch after one expires). Absent = 0. */
  epoch: number;
  /** Units used so far under this lease (cumulative). */
  used: DecimalString;
  /** Units given back to the hub (cumulative). */
  returned: DecimalString;
  /** The highest `granted` the edge has seen. */
  grantedSeen: DecimalString;
  /** More units the edge would like granted. */
  want: DecimalString;
  /** The edge will never use this lease again: `used` is final. */
  final: boolean;
  /** The customer. */
  customerId: string;
  /** A metered feature key, or `WALLET_KEY`. */
  key: string;
  /** Start of the usage period (the epoch for one-time entitlements and wallets). */
  period: Timestamp;
};

/** An edge's sync request. */
export type SyncRequest = {
  /** The edge. */
  edgeId: string;
  /** This run of the edge; counters restart with a new boot. */
  bootId: string;
  /** Grows with every request of a boot. */
  seq: number;
  /** The snapshot version the edge holds. */
  catalogVersion: number;
  /** Every lease the edge holds or has yet to report final. */
  leases: Array<LeaseReport>;
  /** Usage events accepted at the edge and not yet acknowledged. */
  events: Array<JsonValue>;
};

/** How the hub is granting a key. */
export type Mode = "normal" | "precise" | "closed";

/** The hub's answer for one lease. */
export type LeaseGrant = {
  /** Which lease of this key. */
  epoch: number;
  /** Units granted so far (cumulative). */
  granted: DecimalString;
  /**
   * How long the lease is valid, timed by the edge from when it sent the request; 0 = not
   * renewed.
   */
  ttlMs: number;
  /** How the hub is granting. */
  mode: Mode;
  /** When set, the edge should give back units until at most this many are unused. */
  shrinkTo: DecimalString | null;
  /**
   * Units of this key used by everyone but this lease, as far as the hub knows: the edge's
   * view of the key's usage is this plus its own `used` (an extension of SPEC §7).
   */
  othersUsage: DecimalString;
  /**
   * Of `granted`, the units reserved for use while the hub is unreachable (offline mode
   * `allowance`; an extension of SPEC §7).
   */
  allowance: DecimalString;
  /**
   * The key's whole budget (limit + tolerance; a wallet's funded money + credit limit), so
   * the edge can tell a spent key from a lease to renew (an extension of SPEC §7).
   */
  budget: DecimalString;
  /** The customer. */
  customerId: string;
  /** A metered feature key, or `WALLET_KEY`. */
  key: string;
  /** Start of the usage period (the epoch for one-time entitlements and wallets). */
  period: Timestamp;
};

/** The hub's sync response. */
export type SyncResponse = {
  /** The request answered (its `seq`); its events are in the hub's ledger. */
  ackSeq: number;
  /** One answer per lease of the request. */
  leases: Array<LeaseGrant>;
  /** A signed snapshot when the edge's `catalogVersion` is stale. */
  snapshot: JsonValue | null;
};

// ---------------------------------------------------------------------------------------------
// Errors

/** One problem of an input: a stable code and the JSON pointer of the offending value. */
export type Problem = {
  /** What went wrong. */
  code: string;
  /** JSON pointer into the offending input, e.g. `/plans/0/prices/2/model/tiers/1/upTo`. */
  path: string;
  /** A one-line explanation. */
  message: string;
};
