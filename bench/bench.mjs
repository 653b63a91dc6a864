// JS benchmark (not a test): check and consume ns/call from Node, against the peer edge engine
// @flipt-io/flipt-client-js (evaluateBoolean on an equivalent flag) and a plain JS Map lookup
// (the floor), in the same run. Run with `make bench-js` (it builds pkg/ and installs the tools).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const root = new URL("../", import.meta.url);
const { Engine } = await import(new URL("pkg/node.js", root));
const tools = createRequire(new URL("tests/js/package.json", root));
const { FliptClient } = await import(tools.resolve("@flipt-io/flipt-client-js"));

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
const BATCH = Number(process.env.BENCH_BATCH ?? 20000);

// The median over ROUNDS batches of BATCH calls, in ns per call, after a warm-up.
function measure(fn) {
  let sink = 0;
  for (let i = 0; i < BATCH * 5; i++) sink += fn();
  const per = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink += fn();
    per.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  per.sort((a, b) => a - b);
  if (sink < 0) console.log(sink);
  return per[per.length >> 1];
}

// ---- tollgate on the LLM-provider example, plus a hard-limited customer with a grant so large
// that consuming never runs out during the run (the allowed path is what is measured).
const snapshot = JSON.parse(readFileSync(new URL("examples/llm-snapshot.json", root), "utf8"));
const engine = Engine.fromSnapshot(snapshot);
engine.upsertCustomer({
  id: "cus_big",
  subscriptions: [{ id: "sub_big", planId: "plan_business", startedAt: "2026-11-01T00:00:00Z" }],
  grants: [{ id: "grt_big", featureKey: "input-tokens", amount: "1000000000000" }],
});
const at = { now: Date.parse("2026-11-28T10:00:00Z") };
const bigHandle = engine.handle("cus_big", "input-tokens");
const acmeHandle = engine.handle("cus_acme", "priority-queue");

// ---- Flipt: a boolean flag on for customers of the enterprise plan, the same question.
const state = {
  namespace: { key: "default", name: "Default" },
  flags: [
    {
      key: "priority-queue",
      name: "priority-queue",
      description: "",
      enabled: false,
      type: "BOOLEAN_FLAG_TYPE",
      rules: [],
      rollouts: [
        {
          type: "SEGMENT_ROLLOUT_TYPE",
          rank: 1,
          segment: {
            value: true,
            segmentOperator: "OR_SEGMENT_OPERATOR",
            segments: [
              {
                key: "enterprise",
                matchType: "ALL_SEGMENT_MATCH_TYPE",
                constraints: [
                  { type: "STRING_CONSTRAINT_COMPARISON_TYPE", property: "plan", operator: "eq", value: "plan_enterprise" },
                ],
              },
            ],
          },
        },
      ],
    },
  ],
};
const fetcher = async () => ({ ok: true, status: 200, statusText: "OK", headers: { get: () => null }, json: async () => state });
const warn = console.warn;
console.warn = () => {}; // Flipt's glue warns about its own deprecated init parameters
const flipt = await FliptClient.init({ namespace: "default", fetcher, updateInterval: 0 });
console.warn = warn;
const fliptRequest = { flagKey: "priority-queue", entityId: "cus_acme", context: { plan: "plan_enterprise" } };
if (!flipt.evaluateBoolean(fliptRequest).enabled) throw new Error("the Flipt flag is not on for cus_acme");

// ---- the floor: a two-level Map from customer to feature to a prepared answer.
const floor = new Map([["cus_acme", new Map([["priority-queue", { allowed: true }]])]]);

if (!engine.check("cus_acme", "priority-queue", at).allowed) throw new Error("cus_acme has no priority-queue");
if (!engine.consume("cus_big", "input-tokens", 1, at).allowed) throw new Error("cus_big cannot consume");

const rows = [
  ["Map lookup (floor)", () => (floor.get("cus_acme").get("priority-queue").allowed ? 1 : 0)],
  ["flipt evaluateBoolean", () => (flipt.evaluateBoolean(fliptRequest).enabled ? 1 : 0)],
  ["tollgate check (boolean)", () => (engine.check("cus_acme", "priority-queue", at).allowed ? 1 : 0)],
  ["tollgate check (metered)", () => (engine.check("cus_dev", "input-tokens", at).allowed ? 1 : 0)],
  ["tollgate check + read balance", () => engine.check("cus_dev", "input-tokens", at).balance.length],
  ["tollgate consume 1 (hard)", () => (engine.consume("cus_big", "input-tokens", 1, at).allowed ? 1 : 0)],
  ["tollgate consume '1.5' (hard)", () => (engine.consume("cus_big", "input-tokens", "1.5", at).allowed ? 1 : 0)],
  ["tollgate checkHandle (boolean)", () => (engine.checkHandle(acmeHandle, at).allowed ? 1 : 0)],
  ["tollgate consumeHandle 1 (hard)", () => (engine.consumeHandle(bigHandle, 1, at).allowed ? 1 : 0)],
];

const results = rows.map(([name, fn]) => [name, measure(fn)]);
const fliptNs = results[1][1];
const floorNs = results[0][1];
console.log(`node ${process.version}; median of ${ROUNDS} batches of ${BATCH} calls\n`);
console.log("| call | ns/call | × faster than Flipt | × the Map floor |");
console.log("|---|---:|---:|---:|");
for (const [name, ns] of results) {
  console.log(`| ${name} | ${ns.toFixed(1)} | ${(fliptNs / ns).toFixed(1)} | ${(ns / floorNs).toFixed(1)} |`);
}
flipt.close?.();
