// A typed usage example, checked by `tsc --noEmit` (never run): what a TypeScript user writes.
import {
  Engine,
  HubClient,
  type SyncRequest,
  TollgateError,
  validateCatalog,
  type Decision,
  type DecisionJSON,
  type Handle,
  type IngestOutcome,
  type Invoice,
  type Line,
  type Problem,
  type Quote,
  type Reason,
  type Snapshot,
  type WalletView,
} from "tollgate";

declare const snapshot: Snapshot;
declare function log(...args: unknown[]): void;

const engine: Engine = Engine.fromSnapshot(snapshot, { dedupeWindowMs: 86_400_000 });
const now = Date.now();

// Gate a feature: a denial is a value.
const gate: Decision = engine.check("cus_acme", "priority-queue", { now });
if (!gate.allowed) {
  const why: Reason = gate.reason;
  log(`denied: ${why}`);
}

// Meter a request: quantities are numbers, decimal strings or bigints; figures are strings.
const used: Decision = engine.consume("cus_acme", "input-tokens", 1500, { id: "req-9", now });
const left: string | null = used.balance;
engine.consume("cus_acme", "input-tokens", "0.5");
engine.consume("cus_acme", "input-tokens", 10n, { now: new Date() });
const json: DecisionJSON = used.toJSON();

// The hot path: resolve once, then check and consume by handle.
const h: Handle | null = engine.handle("cus_acme", "input-tokens");
if (h !== null) {
  engine.checkHandle(h, { now });
  engine.consumeHandle(h, 1);
}

const outcome: IngestOutcome = engine.ingest(
  { id: "evt_1", source: "edge-fra", type: "llm.completion", subject: "cus_acme", data: { input_tokens: 1200, model: "small" } },
  { now },
);
const charged: string[] = outcome.charges.map((c) => c.amount);
const wallet: WalletView | undefined = outcome.wallet;

// The running bill (types generated from the Rust types): amounts are strings.
const bill: Invoice = engine.invoicePreview("cus_acme", { now });
const usageLines: Line[] = bill.lines.filter((l) => l.type === "usage" || l.adjusts !== undefined);
const billed: string = bill.kind === "arrears" && bill.status === "draft" ? bill.total : "0";

const quote: Quote = engine.quote({ planId: "plan_developer", usage: { bm_input: 2_000_000, bm_output: "500000" } });
const total: string = quote.total;

const problems: Problem[] = validateCatalog(snapshot.catalog);
for (const p of problems) log(`${p.path}: ${p.code}`);

try {
  engine.consume("cus_acme", "input-tokens", -1);
} catch (e) {
  if (e instanceof TollgateError) log(e.code, e.path, e.problems.length);
}

// An edge that shares hard limits through the hub.
const edge = Engine.fromSnapshot(snapshot, { edgeId: "fra-1", leases: true });
const hubClient = new HubClient({ url: "http://127.0.0.1:8787", token: "edge-token-0123456789" });
const pending: SyncRequest | null = edge.pendingSync({ now: 0 });
const saved: string | null = edge.exportState();
void hubClient.sync(edge).then((answer) => answer?.leases.map((l) => l.granted));

// Mistakes the types catch.
// @ts-expect-error customer ids are strings
engine.check(42, "priority-queue");
// @ts-expect-error quantities are not booleans
engine.consume("cus_acme", "input-tokens", true);
// @ts-expect-error figures are strings, not numbers
const wrong: number = used.balance;
// @ts-expect-error unknown reasons do not type-check
const notAReason: Reason = "maybe";
// @ts-expect-error sync responses are objects or JSON text
engine.applySync(42);
// @ts-expect-error engines come from Engine.fromSnapshot
new Engine();
// @ts-expect-error invoice totals are strings, not numbers
const badTotal: number = bill.total;
// @ts-expect-error line types are a closed set
const badLine: Line["type"] = "tax";

export { left, json, charged, wallet, usageLines, billed, total, wrong, notAReason, badTotal, badLine, pending, saved };
