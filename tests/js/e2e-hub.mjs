// End to end (SPEC §7, issue #6): the real hub binary on loopback, two workerd workers (through
// Miniflare) importing the npm package and syncing through HubClient, both hammering one hard
// limit of 1,000 units. At most 1,000 uses are allowed in all, every allowed use reaches the
// hub's ledger, and the hub's invoice preview bills exactly those.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine, HubClient } from "tollgate";
import { report } from "./report.mjs";
import { root, startHub as startHubAt, startWorkers, workerdEntry } from "./hub-harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "tollgate-e2e-"));
const ADMIN = "admin-e2e-token-0123456789";
const EDGES = ["edge-token-fra-0123456789", "edge-token-iad-0123456789"];
const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: ok ? undefined : detail });

const startHub = () =>
  startHubAt({ db: join(dir, "hub.db"), seed: join(root, "tests/data/leased-snapshot.json"), adminToken: ADMIN, edgeTokens: EDGES });

const worker = `import { Engine, HubClient } from ${JSON.stringify(workerdEntry)};
let engine;
let hub;
const LEASE = new Set(["lease_exhausted", "lease_expired", "offline"]);
export default {
  async fetch(request, env) {
    const n = Number(new URL(request.url).searchParams.get("n"));
    if (!engine) {
      const options = { edgeId: env.EDGE_ID, leases: true };
      if (env.HUB_KEY) options.hubPublicKey = env.HUB_KEY;
      engine = Engine.fromSnapshot(env.SNAPSHOT, options);
      hub = new HubClient({ url: env.HUB_URL, token: env.TOKEN, backoffMs: 20 });
    }
    let allowed = 0, denied = 0, syncs = 0;
    for (let i = 0; i < n; i++) {
      let d = engine.consume("cus_acme", "api-calls", 1);
      if (!d.allowed && LEASE.has(d.reason)) {
        await hub.sync(engine);
        syncs++;
        d = engine.consume("cus_acme", "api-calls", 1);
      }
      if (d.allowed) allowed++; else denied++;
    }
    await hub.sync(engine); // hand in the last uses
    return Response.json({ allowed, denied, syncs, pending: engine.pendingSync().events.length });
  },
};
`;

let hubProcess;
const workers = [];
try {
  const hub = await startHub();
  hubProcess = hub.child;
  check("the hub prints its public key", hub.publicKey, "no base64 key in the start-up output");
  const snapshotResponse = await fetch(`${hub.url}/v1/snapshot`, { headers: { authorization: `Bearer ${EDGES[0]}` } });
  const snapshot = await snapshotResponse.text();
  check("GET /v1/snapshot answers 200", snapshotResponse.status === 200, `${snapshotResponse.status} ${snapshot}`);

  workers.push(
    ...startWorkers(
      dir,
      worker,
      EDGES.map((token, i) => ({
        name: `edge-${i}`,
        bindings: { SNAPSHOT: snapshot, HUB_URL: hub.url, TOKEN: token, EDGE_ID: `edge-${i}`, HUB_KEY: hub.publicKey ?? "" },
      })),
    ),
  );
  // Both edges hammer the same limit at once, in rounds, 1,600 attempts for 1,000 units.
  const totals = [
    { allowed: 0, denied: 0, syncs: 0, pending: 0 },
    { allowed: 0, denied: 0, syncs: 0, pending: 0 },
  ];
  for (let round = 0; round < 4; round++) {
    const answers = await Promise.all(workers.map((mf) => mf.dispatchFetch("http://edge/hammer?n=200")));
    for (const [i, a] of answers.entries()) {
      if (!a.ok) throw new Error(`worker ${i} answered ${a.status}: ${await a.text()}`);
      const r = await a.json();
      for (const k of Object.keys(r)) totals[i][k] = k === "pending" ? r[k] : totals[i][k] + r[k];
    }
  }
  const allowed = totals[0].allowed + totals[1].allowed;
  console.log(`edges: ${JSON.stringify(totals)}; allowed in all ${allowed} of 1600 attempts`);
  check("at most 1,000 uses are allowed across both edges", allowed <= 1000, `${allowed} allowed`);
  check("the limit is used (≥ 950 of 1,000 allowed)", allowed >= 950, `${allowed} allowed`);
  check("both edges got some of it", totals[0].allowed > 0 && totals[1].allowed > 0, JSON.stringify(totals));
  check("no usage is left unsent", totals[0].pending === 0 && totals[1].pending === 0, JSON.stringify(totals));

  const invoice = await (await fetch(`${hub.url}/v1/customers/cus_acme/invoice`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  const line = (invoice.lines ?? []).find((l) => l.priceId === "price_calls");
  check("every allowed use is in the hub's ledger", line && String(line.quantity) === String(allowed), JSON.stringify(invoice));
  const cents = allowed; // 0.01 per call
  const expected = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
  check(`the invoice preview bills them (${expected} USD)`, String(invoice.total) === expected, JSON.stringify(invoice));

  // Paged and signed: an edge in Node that queued 2,500 events while the hub was away sends
  // them in pages through one HubClient.sync, and takes only answers the hub signed for it.
  const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
  const seeded = JSON.parse(readFileSync(join(root, "tests/data/leased-snapshot.json"), "utf8"));
  const catalog = structuredClone(seeded.catalog);
  catalog.plans.push({ id: "plan_open", productId: "prod_api", name: "Open", currency: "USD", billingCadence: "P1M",
    prices: [{ id: "price_open", metricId: "bm_calls", paymentTerm: "in_arrears", model: { type: "per_unit", unitPrice: "0.01" } }] });
  const put = async (path, body) => (await fetch(`${hub.url}${path}`, { method: "PUT", headers: admin, body: JSON.stringify(body) })).status;
  check("a catalog with an open plan is taken", (await put("/v1/catalog", catalog)) === 200, "PUT /v1/catalog");
  const opened = { id: "cus_open", subscriptions: [{ id: "sub_open", planId: "plan_open", startedAt: "2026-01-01T00:00:00Z" }] };
  check("a customer on it is taken", [200, 201].includes(await put("/v1/customers/cus_open", opened)), "PUT customer");
  const current = await (await fetch(`${hub.url}/v1/snapshot`, { headers: { authorization: `Bearer ${EDGES[1]}` } })).text();
  const edge = Engine.fromSnapshot(current, { edgeId: "edge-pages", leases: true, hubPublicKey: hub.publicKey });
  const at = new Date().toISOString();
  for (let i = 0; i < 2500; i++) {
    edge.ingest({ id: `p${i}`, source: "edge-pages", type: "api.call", subject: "cus_open", time: at });
  }
  check("2,500 events wait to be sent", edge.syncBacklog() === 2500, String(edge.syncBacklog()));
  // Given a list of hubs whose first one is down (nothing listens on port 9), the client's
  // failed attempt goes to the next one.
  const answer = await new HubClient({ url: ["http://127.0.0.1:9", hub.url], token: EDGES[1], backoffMs: 20 }).sync(edge);
  check("one sync call sends every page", edge.syncBacklog() === 0 && edge.pendingSync().events.length === 0,
    `${edge.syncBacklog()} unsent, ${edge.pendingSync().events.length} pending`);
  check("the answer is opened for the caller", answer && answer.edgeId === "edge-pages" && Array.isArray(answer.leases), JSON.stringify(answer));
  const listed = await (await fetch(`${hub.url}/v1/events?source=edge-pages&limit=10000`, { headers: admin })).json();
  check("the hub holds all 2,500, once", listed.events.length === 2500, String(listed.events.length));
  const plain = await fetch(`${hub.url}/v1/sync`, { method: "POST", headers: { authorization: `Bearer ${EDGES[1]}`, "content-type": "application/json" },
    body: JSON.stringify({ edgeId: "edge-pages", bootId: "other", seq: 1, catalogVersion: 0, leases: [], events: [] }) });
  const plainBody = await plain.json();
  check("a client that does not ask gets a plain answer", plain.status === 200 && plainBody.ackSeq === 1 && !plainBody.payload, JSON.stringify(plainBody));

  // The first hour (issue 20): two Node edges use up a fresh customer's limit of 1,000 through
  // `hub.consume` (consume, and on "a sync would help" one sync and one retry); then a third,
  // fresh edge answers `limit_reached` after one sync, with the hub's figures; and a fresh edge's
  // first request on a key with room is allowed (no cold-start denial).
  for (const id of ["cus_spent", "cus_cold"]) {
    const body = { id, subscriptions: [{ id: `sub_${id}`, planId: "plan_api", startedAt: "2026-11-01T00:00:00Z" }] };
    check(`customer ${id} is taken`, [200, 201].includes(await put(`/v1/customers/${id}`, body)), "PUT customer");
  }
  const fresh = async (edgeId) => {
    const text = await (await fetch(`${hub.url}/v1/snapshot`, { headers: { authorization: `Bearer ${EDGES[0]}` } })).text();
    return Engine.fromSnapshot(text, { edgeId, leases: true, hubPublicKey: hub.publicKey });
  };
  const client = new HubClient({ url: hub.url, token: EDGES[0], backoffMs: 20 });
  const pair = [await fresh("edge-a"), await fresh("edge-b")];
  let used = 0;
  const last = [null, null];
  for (let i = 0; i < 3000 && !last.every((d) => d?.reason === "limit_reached"); i++) {
    const k = i % 2;
    last[k] = await client.consume(pair[k], "cus_spent", "api-calls", 1);
    if (last[k].allowed) used++;
  }
  await Promise.all(pair.map((e) => client.sync(e)));
  check("two edges use exactly the limit of 1,000 through hub.consume", used === 1000, `${used} used`);
  check("both end on limit_reached, no sync asked", last.every((d) => d.reason === "limit_reached" && !d.needsSync),
    JSON.stringify(last));
  const third = await fresh("edge-c");
  const cold = third.consume("cus_spent", "api-calls", 1);
  check("a fresh edge holds no lease: lease_exhausted asks for a sync", cold.reason === "lease_exhausted" && cold.needsSync,
    JSON.stringify(cold));
  await client.sync(third);
  const spent = third.consume("cus_spent", "api-calls", 1);
  // The usage period is monthly from Nov 1: it resets on the first of next month (UTC).
  const today = new Date();
  const nextMonth = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 1, 1)).toISOString().replace(".000Z", "Z");
  check("after one sync the fresh edge answers limit_reached, balance 0, usage 1000, no sync asked",
    !spent.allowed && spent.reason === "limit_reached" && spent.balance === "0" && spent.usage === "1000" &&
      spent.needsSync === false && spent.resetAt === nextMonth,
    JSON.stringify(spent));
  const first = await client.consume(await fresh("edge-d"), "cus_cold", "api-calls", 1);
  check("a fresh edge's first request on a key with room is allowed through hub.consume", first.allowed && first.reason === "ok",
    JSON.stringify(first));
} catch (e) {
  results.push({ name: "run the hub and two workers", ok: false, detail: String(e.stack || e) });
} finally {
  await Promise.all(workers.map((mf) => mf.dispose()));
  hubProcess?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
process.exit(report("hub + two workerd edges", results) ? 1 : 0);
