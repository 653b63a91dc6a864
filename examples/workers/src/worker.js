// A Worker that gates an API with Tollgate: each request names a customer and consumes
// `units` (default 1) of a feature; the decision says whether it may go ahead (SPEC §5). With a hub
// configured, quota leases keep one global limit across every edge; without, the snapshot
// bundled here is the truth.
import { Engine, HubClient } from "tollgate";
// The example catalog and customers (examples/llm-snapshot.json); in production, the hub's
// signed snapshot (`GET /v1/snapshot`), bundled at deploy time or fetched from KV.
import snapshot from "../../llm-snapshot.json";

// One engine per isolate, built on its first request and reused by the next ones.
let engine;
let hub;

function setUp(env) {
  if (env.TOLLGATE_HUB_URL) {
    engine = Engine.fromSnapshot(snapshot, { edgeId: env.TOLLGATE_EDGE_ID, leases: true });
    hub = new HubClient({ url: env.TOLLGATE_HUB_URL, token: env.TOLLGATE_EDGE_TOKEN });
  } else {
    engine = Engine.fromSnapshot(snapshot);
  }
}

export default {
  async fetch(request, env, ctx) {
    if (!engine) setUp(env);
    const url = new URL(request.url);
    const customer = url.searchParams.get("customer") ?? "";
    const feature = url.searchParams.get("feature") ?? "";
    const units = url.searchParams.get("units") ?? "1"; // decimal text: exact, never a float
    const decision = hub
      ? await hub.consume(engine, customer, feature, units) // one sync on a cold start, then local
      : engine.consume(customer, feature, units);
    if (hub) ctx.waitUntil(hub.sync(engine)); // hand the use to the hub after the response
    const headers = { "content-type": "application/json" };
    if (!decision.allowed && decision.resetAt) {
      const seconds = Math.max(0, Math.ceil((Date.parse(decision.resetAt) - Date.now()) / 1000));
      headers["retry-after"] = String(seconds);
    }
    // Allowed: 200. Credits that cannot pay: 402. A quota used up: 429 (Retry-After until the
    // period resets). Not entitled, unknown customer or feature: 403.
    const status = decision.allowed ? 200 : decision.wallet ? 402 : decision.featureType === "metered" ? 429 : 403;
    return new Response(JSON.stringify(decision), { status, headers });
  },
};
