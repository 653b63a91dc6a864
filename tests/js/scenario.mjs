// The one scenario every runtime runs against the built package (tests/js/run-*.mjs).
// `tollgate` is the package's namespace as the runtime imported it, `snapshot` the parsed
// examples/llm-snapshot.json. Returns [{ name, ok, detail }]; throws nothing.
// No imports and nothing but `export` in front of declarations: run-edge.mjs turns this file
// into a classic script by removing that word.

export const NOW = Date.parse("2026-11-05T10:00:00Z"); // November's period, before cus_dev's welcome grant

export async function scenario(tollgate, snapshot) {
  const { Engine, TollgateError, validateCatalog } = tollgate;
  const at = { now: NOW };
  const results = [];
  const step = async (name, body) => {
    try {
      await body();
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, detail: String((e && e.stack) || e) });
    }
  };
  const eq = (actual, expected, what) => {
    const a = JSON.stringify(actual);
    const b = JSON.stringify(expected);
    if (a !== b) throw new Error(`${what}: got ${a}, want ${b}`);
  };
  const figures = (d) => [d.allowed, d.reason, d.balance, d.usage, d.overage, d.limit];
  const throwsTollgate = (body, code, path) => {
    try {
      body();
    } catch (e) {
      if (!(e instanceof TollgateError)) throw new Error(`threw ${e && e.name}: ${e && e.message}, not a TollgateError`);
      if (!(e instanceof Error)) throw new Error("a TollgateError is an Error");
      eq([e.name, e.code, e.path], ["TollgateError", code, path], "error");
      if (!Array.isArray(e.problems) || e.problems.length < 1) throw new Error("no problems list");
      return e;
    }
    throw new Error(`did not throw ${code}`);
  };

  let engine;
  await step("load the LLM-provider snapshot", () => {
    engine = Engine.fromSnapshot(snapshot);
    eq(engine.snapshotVersion, 1, "snapshotVersion");
    eq(Engine.fromSnapshot(JSON.stringify(snapshot)).snapshotVersion, 1, "from JSON text");
  });

  await step("check a boolean feature", () => {
    const d = engine.check("cus_acme", "priority-queue", at);
    eq([d.allowed, d.reason, d.featureKey, d.featureType, d.balance, d.config, d.exact, d.needsSync],
      [true, "ok", "priority-queue", "boolean", null, null, true, false], "decision");
    eq(Object.keys(d.toJSON()),
      ["allowed", "reason", "featureKey", "featureType", "balance", "usage", "overage", "limit", "resetAt", "config", "exact", "needsSync"],
      "the SPEC §5 shape");
    eq(JSON.parse(JSON.stringify(d)).allowed, true, "JSON.stringify");
  });

  await step("check a static feature's config", () => {
    const d = engine.check("cus_acme", "sla", at);
    eq([d.allowed, d.featureType, d.config], [true, "static", { responseHours: 1, uptime: "99.95" }], "decision");
  });

  await step("a denial is returned, not thrown", () => {
    eq(figures(engine.check("cus_dev", "priority-queue", at)).slice(0, 2), [false, "no_entitlement"], "not in the plan");
    eq(figures(engine.check("cus_nobody", "priority-queue", at)).slice(0, 2), [false, "unknown_customer"], "unknown customer");
    const d = engine.check("cus_dev", "no-such-feature", at);
    eq([d.allowed, d.reason, d.featureType], [false, "unknown_feature", null], "unknown feature");
  });

  await step("check and consume a soft-limited metered feature", () => {
    eq(figures(engine.check("cus_dev", "input-tokens", at)), [true, "ok", "10000", "0", "0", "10000"], "check");
    // The usage period (P1M from the subscription's start, Nov 1) ends Dec 1: the reset time.
    eq(engine.check("cus_dev", "input-tokens", at).resetAt, "2026-12-01T00:00:00Z", "resetAt");
    eq(JSON.parse(JSON.stringify(engine.check("cus_dev", "input-tokens", at))).resetAt, "2026-12-01T00:00:00Z", "resetAt in JSON");
    eq(engine.check("cus_acme", "priority-queue", at).resetAt, null, "no resetAt without a meter");
    eq(figures(engine.consume("cus_dev", "input-tokens", 1500, at)), [true, "ok", "8500", "1500", "0", "10000"], "consume");
    eq(figures(engine.consume("cus_dev", "input-tokens", "10000", at)), [true, "ok", "0", "11500", "1500", "10000"],
      "past the balance: overage");
  });

  await step("consume to a hard limit: all or nothing, exact decimals, idempotent ids", () => {
    // A customer with a grant and no plan: a hard limit of 1000 (decision 28).
    const hard = Engine.fromSnapshot({
      ...snapshot,
      customers: [{ id: "cus_hard", grants: [{ id: "grt_hard", featureKey: "input-tokens", amount: "1000" }] }],
    });
    eq(figures(hard.consume("cus_hard", "input-tokens", 400, at)), [true, "ok", "600", "400", "0", "1000"], "number");
    eq(hard.check("cus_hard", "input-tokens", at).resetAt, null, "a grant alone never resets: no resetAt");
    eq(figures(hard.consume("cus_hard", "input-tokens", "399.9", { ...at, id: "req-1" })),
      [true, "ok", "200.1", "799.9", "0", "1000"], "decimal string");
    eq(figures(hard.consume("cus_hard", "input-tokens", "399.9", { ...at, id: "req-1" })),
      [true, "ok", "200.1", "799.9", "0", "1000"], "a repeated id changes nothing");
    eq(figures(hard.consume("cus_hard", "input-tokens", 300n, at)), [false, "limit_reached", "200.1", "799.9", "0", "1000"],
      "bigint, over the balance: denied, nothing used");
    for (let i = 0; i < 3; i++) hard.consume("cus_hard", "input-tokens", 0.1, at);
    eq(hard.check("cus_hard", "input-tokens", at).balance, "199.8", "0.1 three times is exactly 0.3");
    eq(figures(hard.consume("cus_hard", "input-tokens", "199.8", at)), [true, "ok", "0", "1000", "0", "1000"],
      "the exact balance is allowed");
    eq(figures(hard.check("cus_hard", "input-tokens", at)), [false, "limit_reached", "0", "1000", "0", "1000"], "at zero");
    eq(figures(hard.consume("cus_hard", "input-tokens", 1, at)).slice(0, 2), [false, "limit_reached"], "nothing more");
  });

  await step("pre-resolved handles", () => {
    const hard = Engine.fromSnapshot({
      ...snapshot,
      customers: [{ id: "cus_hard", grants: [{ id: "grt_hard", featureKey: "input-tokens", amount: "10" }] }],
    });
    const h = hard.handle("cus_hard", "input-tokens");
    eq([h.customer, h.featureKey], ["cus_hard", "input-tokens"], "handle");
    eq(hard.handle("cus_hard", "priority-queue"), null, "no access: no handle");
    eq(figures(hard.consumeHandle(h, 6, at)), [true, "ok", "4", "6", "0", "10"], "consumeHandle");
    eq(engine.checkHandle(engine.handle("cus_dev", "input-tokens"), at).resetAt, "2026-12-01T00:00:00Z", "resetAt through a handle");
    eq(figures(hard.consumeHandle(h, "4.5", at)), [false, "limit_reached", "4", "6", "0", "10"], "over the balance");
    eq(figures(hard.checkHandle(h, at)), [true, "ok", "4", "6", "0", "10"], "checkHandle");
    throwsTollgate(() => engine.checkHandle(h, at), "stale_handle", "/handle");
  });

  await step("quote plan_developer for 2,000,000 input and 500,000 output tokens", () => {
    const q = engine.quote({ planId: "plan_developer", usage: { bm_input: 2_000_000, bm_output: 500_000n } });
    eq([q.planId, q.currency, q.subtotal, q.total], ["plan_developer", "USD", "6.98", "6.98"], "quote");
    eq(q.lines.map((l) => [l.priceId, l.quantity, l.amount]),
      [["price_dev_input", "1990000", "3.98"], ["price_dev_output", "500000", "3.00"], ["price_dev_calls", "0", "0.00"]],
      "lines (10,000 tokens granted free)");
  });

  await step("ingest an event, then the same event again", () => {
    const event = {
      id: "evt_1", source: "edge-test", type: "llm.completion", subject: "cus_acme",
      time: "2026-11-05T09:00:00Z", data: { input_tokens: 1200, output_tokens: 300, model: "small" },
    };
    const first = engine.ingest(event, at);
    eq([first.allowed, first.reason, first.duplicate, first.unmatched], [true, "ok", false, false], "first");
    const again = engine.ingest(JSON.stringify(event), at);
    eq(again.duplicate, true, "duplicate");
    eq(engine.ingest({ ...event, id: "evt_2", type: "other" }, at).unmatched, true, "unmatched");
  });

  await step("applySnapshot keeps usage; a bad one changes nothing", () => {
    const e = Engine.fromSnapshot(snapshot);
    e.consume("cus_trial", "input-tokens", 600, at);
    const next = structuredClone(snapshot);
    next.snapshotVersion = 2;
    next.customers[2].grants[0].amount = "1500";
    e.applySnapshot(next);
    eq([e.snapshotVersion, e.check("cus_trial", "input-tokens", at).balance], [2, "900"], "1,500 granted − 600 used");
    const bad = structuredClone(next);
    bad.catalog.plans[0].currency = "XXX";
    throwsTollgate(() => e.applySnapshot(bad), "unknown_currency", "/catalog/plans/0/currency");
    eq(e.check("cus_trial", "input-tokens", at).balance, "900", "unchanged");
    e.free();
  });

  await step("invoicePreview: the running bill", () => {
    const inv = engine.invoicePreview("cus_acme", at);
    eq([inv.customerId, inv.status, inv.periodStart, inv.periodEnd], ["cus_acme", "draft", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"], "invoice");
    const sum = inv.lines.reduce((acc, l) => acc + BigInt(l.amount.replace(".", "")), 0n);
    eq(String(sum), String(BigInt(inv.total.replace(".", ""))), "lines sum to the total");
    throwsTollgate(() => engine.invoicePreview("cus_nobody", at), "unknown_reference", "/customerId");
  });

  await step("bad input throws a TollgateError with code and path", () => {
    const broken = structuredClone(snapshot);
    broken.catalog.plans[1].currency = "XXX";
    broken.catalog.plans[0].prices[0].model = { type: "graduated", tiers: [{ upTo: "10", unitPrice: "1" }, { upTo: "5", unitPrice: "1" }, { upTo: null }] };
    const e = throwsTollgate(() => Engine.fromSnapshot(broken), "tiers_not_ascending", "/catalog/plans/0/prices/0/model/tiers/1/upTo");
    if (!e.problems.some((p) => p.code === "unknown_currency" && p.path === "/catalog/plans/1/currency")) {
      throw new Error(`every problem is listed: ${JSON.stringify(e.problems)}`);
    }
    throwsTollgate(() => engine.consume("cus_dev", "input-tokens", -1, at), "invalid_value", "/quantity");
    throwsTollgate(() => engine.consume("cus_dev", "input-tokens", "ten", at), "invalid_decimal", "/quantity");
    throwsTollgate(() => engine.check("cus_dev", "input-tokens", { now: 1.5 }), "invalid_value", "/now");
    throwsTollgate(() => engine.check(42, "input-tokens", at), "invalid_type", "/customer");
    throwsTollgate(() => engine.ingest({ id: "e", source: "s", type: "llm.completion" }, at), "missing_field", "/subject");
    throwsTollgate(() => Engine.fromSnapshot(snapshot, { hubPublicKey: "k" }), "invalid_value", "/options/hubPublicKey");
    // A 32-byte key that did not sign this plain snapshot: refused, as any unsigned one.
    const key = "6RRKGBteqhMQm41FnCH0SWElx2GAMfUo0mbM4aUYBxw=";
    throwsTollgate(() => Engine.fromSnapshot(snapshot, { hubPublicKey: key }), "unsigned_snapshot", "");
    throwsTollgate(() => Engine.fromSnapshot(snapshot, { edgeld: "typo" }), "unknown_field", "/options/edgeld");
    Engine.fromSnapshot(snapshot, { edgeId: "fra-1", leases: false }).free();
    const edge = Engine.fromSnapshot(snapshot, { edgeId: "fra-1", leases: true });
    const request = edge.pendingSync(at);
    eq([request.edgeId, request.seq, typeof request.bootId], ["fra-1", 1, "string"], "a sync request");
    const copy = Engine.fromSnapshot(snapshot);
    copy.importState(edge.exportState());
    eq(copy.exportState(), edge.exportState(), "the exported sync state comes back whole");
    eq(Engine.fromSnapshot(snapshot).pendingSync(at), null, "no sync without leases");
    edge.free();
    copy.free();
    throwsTollgate(() => Engine.fromSnapshot("{"), "invalid_json", "");
  });

  await step("validateCatalog returns every problem", () => {
    eq(validateCatalog(snapshot.catalog), [], "valid");
    const bad = structuredClone(snapshot.catalog);
    bad.plans[0].currency = "XXX";
    bad.features[0].key = "Not Kebab";
    const problems = validateCatalog(JSON.stringify(bad));
    eq(problems.map((p) => [p.code, p.path]).sort(),
      [["invalid_feature_key", "/features/0/key"], ["unknown_currency", "/plans/0/currency"]], "problems");
  });

  return results;
}
