// End to end, wallet leases: the real hub binary on loopback and two workerd workers (through
// Miniflare) importing the npm package with `leases: true`, syncing through HubClient, both
// spending one prepaid wallet through an `instant` price of 0.01 USD per `api.call` event.
//
// 1. deny (tests/data/wallet-snapshot.json: 1.00 USD, creditLimit 0, offlineMode "deny"): both
//    edges spend until the hub says the wallet is spent — at most 100 calls, at least 95 — then
//    an admin top-up of 0.50 lets exactly what the new money (plus what was left) allows through,
//    without reloading the snapshot. The hub's wallet (GET /v1/customers/{id}/wallet) never goes
//    below zero, ends at 1.50 − 0.01 × allowed, and the invoice preview bills the instant usage
//    and credits it as paid from the wallet (total 0.00).
// 2. allowance (same catalog, offlineMode "allowance", offlineAllowance 0.05, --ttl-ms 2000):
//    both edges take a lease, the hub is killed with SIGKILL, the edges go on from their leases
//    and, once those expired, from their 0.05 allowance only (then `offline`); the hub restarts on
//    the same database (new port), the edges hand in everything, and the wallet was never
//    overspent: 0.01 × allowed ≤ 1.00, balance = 1.00 − 0.01 × allowed ≥ 0, invoiced exactly.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { report } from "./report.mjs";
import { killHub, root, startHub, startWorkers, workerdEntry } from "./hub-harness.mjs";

const ADMIN = "admin-wallet-token-0123456789";
const EDGES = ["edge-token-fra-0123456789", "edge-token-iad-0123456789"];
const CUSTOMER = "cus_acme";
const INSTANT_PRICE = "price_calls_instant";
const WALLET_KEY = "$wallet";
const WALLET_PERIOD = "1970-01-01T00:00:00Z";
const TTL_MS = 2000;
const seedPath = join(root, "tests/data/wallet-snapshot.json");
const top = mkdtempSync(join(tmpdir(), "tollgate-e2e-wallet-"));
const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: ok ? undefined : detail });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Money as an exact BigInt in units of 1e-8 (null when `s` is not a plain decimal), so that
// "1.5", "1.50" and "1.500000" compare equal and nothing goes through a float. Also injected
// into the worker.
function money(s) {
  if (typeof s !== "string" && typeof s !== "number") return null;
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(s));
  if (!m) return null;
  const frac = m[3] ?? "";
  if (frac.length > 8 && /[^0]/.test(frac.slice(8))) return null;
  const v = BigInt(m[2]) * 100000000n + BigInt(frac.slice(0, 8).padEnd(8, "0"));
  return m[1] === "-" ? -v : v;
}
const CENT = 1000000n; // 0.01 in money() units
const cents = (n) => BigInt(n) * CENT;
const usd = (c) => `${c < 0 ? "-" : ""}${Math.floor(Math.abs(c) / 100)}.${String(Math.abs(c) % 100).padStart(2, "0")}`;
const show = (x) => JSON.stringify(x, (_, v) => (typeof v === "bigint" ? String(v) : v));

// The worker: one engine per isolate, built on the first request from the hub's signed snapshot.
// `?op=ingest&n=N&hub=URL[&until=MS][&final=0]`: N api.call events (fewer if the clock passes
// `until`), each retried once after a sync when denied for a lease reason (as e2e-hub.mjs), then a
// last sync to hand in the events; a sync that fails (the hub is down) is caught and counted. `?op=sync&hub=URL`: one sync. Both answer with what the
// test checks, including the engine's `$wallet` lease report from pendingSync().
const worker = `import { Engine, HubClient } from ${JSON.stringify(workerdEntry)};
${money.toString()}
const LEASE = new Set(["lease_exhausted", "lease_expired", "offline"]);
const WALLET_KEY = ${JSON.stringify(WALLET_KEY)};
const INSTANT_PRICE = ${JSON.stringify(INSTANT_PRICE)};
let engine;
let hub;
let hubUrl;
let seq = 0;
let first = null; // the outcome of this engine's very first ingest

function client(env, url) {
  if (url !== hubUrl) {
    hub = new HubClient({ url, token: env.TOKEN, retries: 1, backoffMs: 20 });
    hubUrl = url;
  }
  return hub;
}

async function trySync() {
  try {
    await hub.sync(engine);
    return null;
  } catch (e) {
    return String((e && (e.code ? e.code + ": " + e.message : e.message)) || e);
  }
}

function state() {
  const request = engine.pendingSync();
  return {
    pending: request.events.length,
    walletLease: request.leases.find((l) => l.key === WALLET_KEY) ?? null,
  };
}

export default {
  async fetch(request, env) {
    try {
      const params = new URL(request.url).searchParams;
      if (!engine) {
        const options = { edgeId: env.EDGE_ID, leases: true };
        if (env.HUB_KEY) options.hubPublicKey = env.HUB_KEY;
        engine = Engine.fromSnapshot(env.SNAPSHOT, options);
      }
      client(env, params.get("hub"));
      if (params.get("op") === "sync") {
        const error = await trySync();
        return Response.json({ syncError: error, ...state() });
      }
      const n = Number(params.get("n"));
      const r = {
        allowed: 0, denied: 0, syncs: 0, syncErrors: 0, lastSyncError: null, reasons: {},
        notWalletDenied: 0, lastNotWalletDenied: null, duplicates: 0, badCharges: 0, lastBadCharge: null,
        firstAllowed: null, missingWallet: 0, badWallet: null, wallet: null,
      };
      const until = params.has("until") ? Number(params.get("until")) : Infinity;
      for (let i = 0; i < n && Date.now() < until; i++) {
        const event = { id: env.EDGE_ID + "-call-" + ++seq, source: env.EDGE_ID, type: "api.call",
                        subject: "cus_acme", time: new Date().toISOString() };
        let out = engine.ingest(event);
        first ??= out;
        if (!out.allowed && LEASE.has(out.reason)) {
          r.syncs++;
          const error = await trySync();
          if (error !== null) {
            r.syncErrors++;
            r.lastSyncError = error;
          }
          out = engine.ingest(event);
        }
        if (out.duplicate) r.duplicates++;
        if (out.allowed) {
          r.allowed++;
          r.firstAllowed ??= out;
          const c = out.charges ?? [];
          if (!(c.length === 1 && c[0].priceId === INSTANT_PRICE && money(c[0].amount) === 1000000n && c[0].currency === "USD")) {
            r.badCharges++;
            r.lastBadCharge = out;
          }
        } else {
          r.denied++;
          r.reasons[out.reason] = (r.reasons[out.reason] ?? 0) + 1;
          if (out.walletDenied !== true) {
            r.notWalletDenied++;
            r.lastNotWalletDenied = out;
          }
        }
        const w = out.wallet;
        if (w == null) r.missingWallet++;
        else {
          r.wallet = w;
          const ok = w.currency === "USD" && [w.balance, w.leased, w.spent].every((s) => typeof s === "string" && money(s) !== null && money(s) >= 0n);
          if (!ok) r.badWallet ??= w;
        }
      }
      if (params.get("final") !== "0") {
        const error = await trySync(); // hand in the last events
        if (error !== null) {
          r.syncErrors++;
          r.lastSyncError = error;
        }
      }
      return Response.json({ ...r, first, ...state() });
    } catch (e) {
      return Response.json({ error: String((e && e.stack) || e) }, { status: 500 });
    }
  },
};
`;

async function admin(url, path, init = {}) {
  const response = await fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

const getWallet = (url) => admin(url, `/v1/customers/${CUSTOMER}/wallet`);

// Polls the hub's wallet and keeps what it saw, to check later that it was never overspent.
async function pollWallet(url, trace, when) {
  const { status, body } = await getWallet(url);
  trace.push({ when, status, body });
  return body;
}

// Every poll: 200, balance ≥ 0, balance = funded − debited, debited ≤ funded + creditLimit.
function walletTraceProblems(trace) {
  return trace.filter(({ status, body }) => {
    if (status !== 200) return true;
    const [b, f, d, l] = [body.balance, body.funded, body.debited, body.creditLimit].map(money);
    return b === null || f === null || d === null || l === null || b < 0n || b !== f - d || d > f + l;
  });
}

// Stored events of one source in the hub's ledger.
async function ledgerCount(url, source) {
  let n = 0;
  let after = null;
  for (let page = 0; page < 100; page++) {
    const { status, body } = await admin(url, `/v1/events?source=${source}&limit=10000${after === null ? "" : `&after=${after}`}`);
    if (status !== 200) throw new Error(`GET /v1/events?source=${source} answered ${status}: ${show(body)}`);
    n += body.events.length;
    if (body.next == null) return n;
    after = body.next;
  }
  throw new Error("the ledger did not end after 100 pages");
}

async function ask(mf, query) {
  const response = await mf.dispatchFetch(`http://edge/?${query}`);
  const body = await response.json();
  if (!response.ok) throw new Error(`worker answered ${response.status}: ${body.error ?? show(body)}`);
  return body;
}

// One ingest round on every edge at once.
const ingestRound = (workers, url, n, until) =>
  Promise.all(workers.map((mf) => ask(mf, `op=ingest&n=${n}&hub=${encodeURIComponent(url)}${until === undefined ? "" : `&until=${until}`}`)));
const syncAll = (workers, url) => Promise.all(workers.map((mf) => ask(mf, `op=sync&hub=${encodeURIComponent(url)}`)));

// Per-edge totals over rounds.
function newTotals() {
  return { allowed: 0, denied: 0, syncs: 0, syncErrors: 0, notWalletDenied: 0, duplicates: 0, badCharges: 0,
           missingWallet: 0, reasons: {}, samples: {} };
}
function add(t, r) {
  for (const k of ["allowed", "denied", "syncs", "syncErrors", "notWalletDenied", "duplicates", "badCharges", "missingWallet"]) t[k] += r[k];
  for (const [k, v] of Object.entries(r.reasons)) t.reasons[k] = (t.reasons[k] ?? 0) + v;
  for (const k of ["lastSyncError", "lastNotWalletDenied", "lastBadCharge", "badWallet", "firstAllowed"]) if (r[k] != null) t.samples[k] ??= r[k];
  t.first ??= r.first;
  t.wallet = r.wallet ?? t.wallet;
  t.pending = r.pending;
  t.walletLease = r.walletLease;
  return t;
}
const sum = (ts, k) => ts.reduce((a, t) => a + t[k], 0);
const brief = (ts) => show(ts.map(({ samples, first, ...rest }) => rest));

// Ingest rounds of `n` per edge until a round in which no edge was allowed anything (the wallet
// is spent), at most `maxRounds`; the hub's wallet is polled after each round.
async function spendUntilEmpty(workers, url, trace, label, n = 30, maxRounds = 12) {
  const totals = workers.map(newTotals);
  let last = null;
  for (let round = 0; round < maxRounds; round++) {
    const answers = await ingestRound(workers, url, n);
    answers.forEach((r, i) => add(totals[i], r));
    await pollWallet(url, trace, `${label}, round ${round}`);
    if (answers.every((r) => r.allowed === 0)) {
      last = answers;
      break;
    }
  }
  return { totals, last };
}

// The hub's invoice preview: the instant line bills 0.01 × allowed and the wallet credit pays it.
async function checkInvoice(prefix, url, allowed) {
  const { status, body: invoice } = await admin(url, `/v1/customers/${CUSTOMER}/invoice`);
  check(`${prefix}: GET /v1/customers/${CUSTOMER}/invoice answers 200`, status === 200, `${status} ${show(invoice)}`);
  const lines = invoice.lines ?? [];
  const usage = lines.find((l) => l.priceId === INSTANT_PRICE && l.type === "usage");
  const credit = lines.find((l) => l.type === "credit");
  check(
    `${prefix}: the invoice's instant usage line bills ${allowed} calls, ${usd(allowed)} USD (0.01 × allowed)`,
    usage && money(usage.amount) === cents(allowed) && money(usage.quantity) === BigInt(allowed) * 100000000n,
    show(invoice),
  );
  check(
    `${prefix}: the invoice has a wallet credit line of the same ${usd(allowed)} USD (paid from the wallet)`,
    credit && money(credit.amount) !== null && money(credit.amount) === -cents(allowed),
    show(invoice),
  );
  check(`${prefix}: the invoice total is "0.00" (instant usage nets to zero)`, invoice.total === "0.00", show(invoice));
  check(`${prefix}: the invoice has no other lines (the plan has only the instant price)`, lines.length === 2, show(lines));
}

async function checkLedger(prefix, url, totals) {
  const counts = [];
  for (const i of totals.keys()) counts.push(await ledgerCount(url, `edge-${i}`));
  check(
    `${prefix}: every allowed call is in the hub's ledger exactly once (${sum(totals, "allowed")} events)`,
    counts.every((c, i) => c === totals[i].allowed),
    `ledger ${show(counts)}, allowed ${show(totals.map((t) => t.allowed))}`,
  );
}

const walletView = (hubWallet) =>
  hubWallet ? ["balance", "funded", "debited", "creditLimit"].map((k) => `${k} ${hubWallet[k]}`).join(", ") : "none";

// A $wallet lease's money still usable at the edge: grantedSeen − returned − used.
const leaseLeft = (l) => (l ? money(l.grantedSeen) - money(l.returned) - money(l.used) : null);

// ---------------------------------------------------------------------------------------------
// 1. deny: spend the wallet from two edges, top it up, spend again.

async function scenarioDeny() {
  const P = "deny";
  const dir = join(top, "deny");
  mkdirSync(dir);
  let hubProcess;
  let workers = [];
  try {
    const hub = await startHub({ db: join(dir, "hub.db"), seed: seedPath, adminToken: ADMIN, edgeTokens: EDGES });
    hubProcess = hub.child;
    const snapshotResponse = await fetch(`${hub.url}/v1/snapshot`, { headers: { authorization: `Bearer ${EDGES[0]}` } });
    const snapshot = await snapshotResponse.text();
    check(`${P}: the hub seeded with tests/data/wallet-snapshot.json serves GET /v1/snapshot (200)`, snapshotResponse.status === 200, `${snapshotResponse.status} ${snapshot}`);

    const trace = [];
    const w0 = await pollWallet(hub.url, trace, "before any call");
    check(
      `${P}: GET /v1/customers/${CUSTOMER}/wallet answers the seeded wallet (USD, balance 1.00 = funded 1.00 − debited 0, creditLimit 0)`,
      trace[0].status === 200 && w0.customerId === CUSTOMER && w0.currency === "USD" && money(w0.balance) === cents(100) &&
        money(w0.funded) === cents(100) && money(w0.debited) === 0n && money(w0.creditLimit) === 0n,
      `${trace[0].status} ${show(w0)}`,
    );

    workers = startWorkers(
      dir,
      worker,
      EDGES.map((token, i) => ({
        name: `wallet-deny-edge-${i}`,
        bindings: { SNAPSHOT: snapshot, TOKEN: token, EDGE_ID: `edge-${i}`, HUB_KEY: hub.publicKey ?? "" },
      })),
    );

    // Before top-up: spend 1.00 from both edges.
    const before = await spendUntilEmpty(workers, hub.url, trace, "before the top-up");
    const t1 = before.totals;
    const allowed1 = sum(t1, "allowed");
    console.log(`${P}, before the top-up: ${brief(t1)}; allowed in all ${allowed1}`);
    check(
      `${P}: before its first sync an edge denies the call (allowed false, walletDenied, lease_exhausted)`,
      t1.every((t) => t.first && t.first.allowed === false && t.first.walletDenied === true && t.first.reason === "lease_exhausted"),
      show(t1.map((t) => t.first)),
    );
    check(`${P}: the edges reach a round in which the wallet is spent (nothing allowed)`, before.last !== null, brief(t1));
    check(`${P}: at most 100 calls of 0.01 are allowed from the 1.00 wallet across both edges`, allowed1 <= 100, `${allowed1} allowed`);
    check(`${P}: the wallet is used (≥ 95 of 100 calls allowed)`, allowed1 >= 95, `${allowed1} allowed`);
    check(`${P}: both edges got some of the wallet`, t1.every((t) => t.allowed > 0), brief(t1));
    check(
      `${P}: every allowed call was charged once 0.01 USD by ${INSTANT_PRICE}`,
      sum(t1, "badCharges") === 0 && t1.every((t) => t.samples.firstAllowed),
      show(t1.map((t) => t.samples.lastBadCharge ?? t.samples.firstAllowed ?? null)),
    );
    check(
      `${P}: every denied call is a wallet denial (walletDenied: true)`,
      sum(t1, "notWalletDenied") === 0,
      show(t1.map((t) => t.samples.lastNotWalletDenied ?? null)),
    );
    check(`${P}: no call was answered as a duplicate`, sum(t1, "duplicates") === 0, brief(t1));
    check(
      `${P}: every outcome carries the edge's wallet view { currency USD, balance, leased, spent } as decimal strings ≥ 0`,
      sum(t1, "missingWallet") === 0 && t1.every((t) => !t.samples.badWallet && t.wallet),
      show(t1.map((t) => ({ missing: t.missingWallet, bad: t.samples.badWallet ?? null, last: t.wallet }))),
    );
    check(
      `${P}: each edge holds a ${WALLET_KEY} lease for period ${WALLET_PERIOD} (in pendingSync)`,
      t1.every((t) => t.walletLease && t.walletLease.customerId === CUSTOMER && t.walletLease.period === WALLET_PERIOD),
      show(t1.map((t) => t.walletLease)),
    );
    const lastReasons = before.last ? before.last.map((r) => r.reasons) : null;
    check(
      `${P}: once the hub has said the wallet is spent, the edges deny with limit_reached`,
      before.last && before.last.every((r) => r.denied > 0 && Object.keys(r.reasons).every((k) => k === "limit_reached")),
      show(lastReasons),
    );
    check(`${P}: no event is left unsent after the last sync`, t1.every((t) => t.pending === 0), brief(t1));
    check(
      `${P}: once the wallet is spent, each edge's wallet view shows balance 0 and nothing leased`,
      t1.every((t) => t.wallet && money(t.wallet.balance) === 0n && money(t.wallet.leased) === 0n),
      show(t1.map((t) => t.wallet)),
    );
    check(
      `${P}: no edge's wallet.spent is more than it was charged (0.01 × its allowed calls)`,
      t1.every((t) => t.wallet && money(t.wallet.spent) !== null && money(t.wallet.spent) <= cents(t.allowed)),
      show(t1.map((t) => ({ allowed: t.allowed, wallet: t.wallet }))),
    );

    const wBefore = await pollWallet(hub.url, trace, "after the first spending");
    check(
      `${P}: the hub's wallet after the first spending: balance = 1.00 − 0.01 × ${allowed1} = ${usd(100 - allowed1)}, debited ${usd(allowed1)}`,
      money(wBefore.balance) === cents(100 - allowed1) && money(wBefore.debited) === cents(allowed1) && money(wBefore.funded) === cents(100),
      walletView(wBefore),
    );

    // Top-up of 0.50, idempotent by key.
    const topupBody = JSON.stringify({ amount: "0.50", idempotencyKey: "topup-1" });
    const topup = await admin(hub.url, `/v1/customers/${CUSTOMER}/wallet`, { method: "POST", body: topupBody });
    check(
      `${P}: POST /v1/customers/${CUSTOMER}/wallet tops up 0.50 (200, duplicate false)`,
      topup.status === 200 && topup.body.duplicate === false && money(topup.body.amount) === cents(50),
      `${topup.status} ${show(topup.body)}`,
    );
    const again = await admin(hub.url, `/v1/customers/${CUSTOMER}/wallet`, { method: "POST", body: topupBody });
    check(
      `${P}: the same top-up again (same idempotencyKey) is a duplicate and adds nothing`,
      again.status === 200 && again.body.duplicate === true,
      `${again.status} ${show(again.body)}`,
    );
    const wTopped = await pollWallet(hub.url, trace, "after the top-up");
    const left = money(wBefore.balance);
    check(
      `${P}: after the top-up the hub's wallet is funded 1.50 and its balance grew by exactly 0.50`,
      money(wTopped.funded) === cents(150) && left !== null && money(wTopped.balance) === left + cents(50),
      `${walletView(wTopped)}; before: ${walletView(wBefore)}`,
    );

    // After the top-up: the same edges, same engines (the test reloads no snapshot), sync once
    // (their next sync leases from the new balance) and spend again.
    const resynced = await syncAll(workers, hub.url);
    check(`${P}: after the top-up both edges sync`, resynced.every((s) => s.syncError === null), show(resynced));
    const after = await spendUntilEmpty(workers, hub.url, trace, "after the top-up");
    const t2 = after.totals;
    const allowed2 = sum(t2, "allowed");
    const allowed = allowed1 + allowed2;
    console.log(`${P}, after the top-up: ${brief(t2)}; allowed ${allowed2} more, ${allowed} in all`);
    const expected2 = left === null ? null : Number((left + cents(50)) / CENT);
    check(
      `${P}: after the top-up exactly what the new money allows gets through (${expected2} = (left ${wBefore.balance} + 0.50) / 0.01 more calls)`,
      allowed2 === expected2,
      `${allowed2} more allowed; ${brief(t2)}`,
    );
    check(`${P}: at most 150 calls are allowed in all (1.00 + 0.50 at 0.01)`, allowed <= 150, `${allowed} allowed`);
    check(`${P}: the edges reach a round in which the topped-up wallet is spent`, after.last !== null, brief(t2));
    check(
      `${P}: after the top-up too, every allowed call is charged 0.01 and every denial is a wallet denial`,
      sum(t2, "badCharges") === 0 && sum(t2, "notWalletDenied") === 0,
      show(t2.map((t) => t.samples)),
    );
    check(`${P}: no event is left unsent at the end`, t2.every((t) => t.pending === 0), brief(t2));

    const wEnd = await pollWallet(hub.url, trace, "at the end");
    check(
      `${P}: the hub's wallet at the end: balance = 1.50 − 0.01 × ${allowed} = ${usd(150 - allowed)} (funded 1.50, debited ${usd(allowed)})`,
      money(wEnd.balance) === cents(150 - allowed) && money(wEnd.funded) === cents(150) && money(wEnd.debited) === cents(allowed),
      walletView(wEnd),
    );
    const bad = walletTraceProblems(trace);
    check(
      `${P}: the hub's wallet balance was never below zero nor debited past funded + creditLimit (${trace.length} polls)`,
      bad.length === 0,
      show(bad),
    );
    await checkLedger(P, hub.url, t1.map((t, i) => ({ allowed: t.allowed + t2[i].allowed })));
    await checkInvoice(P, hub.url, allowed);
  } catch (e) {
    results.push({ name: `${P}: run the hub and two workers`, ok: false, detail: String(e.stack || e) });
  } finally {
    await Promise.all(workers.map((mf) => mf.dispose()));
    if (hubProcess) await killHub(hubProcess);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. allowance: a hub outage with offlineMode "allowance".

async function scenarioAllowance() {
  const P = "allowance";
  const dir = join(top, "allowance");
  mkdirSync(dir);
  const db = join(dir, "hub.db");
  const seed = JSON.parse(readFileSync(seedPath, "utf8"));
  const customer = seed.customers.find((c) => c.id === CUSTOMER);
  customer.wallet = { currency: "USD", balance: "1.00", creditLimit: "0", offlineMode: "allowance", offlineAllowance: "0.05" };
  writeFileSync(join(dir, "seed.json"), JSON.stringify(seed, null, 2));
  let hubProcess;
  let workers = [];
  try {
    let hub = await startHub({ db, seed: join(dir, "seed.json"), ttlMs: TTL_MS, adminToken: ADMIN, edgeTokens: EDGES });
    hubProcess = hub.child;
    const snapshotResponse = await fetch(`${hub.url}/v1/snapshot`, { headers: { authorization: `Bearer ${EDGES[0]}` } });
    const snapshot = await snapshotResponse.text();
    check(`${P}: the hub (--ttl-ms ${TTL_MS}) seeded with an allowance wallet serves GET /v1/snapshot (200)`, snapshotResponse.status === 200, `${snapshotResponse.status} ${snapshot}`);
    const trace = [];
    await pollWallet(hub.url, trace, "before any call");
    check(`${P}: GET /v1/customers/${CUSTOMER}/wallet answers 200`, trace[0].status === 200, `${trace[0].status} ${show(trace[0].body)}`);

    workers = startWorkers(
      dir,
      worker,
      EDGES.map((token, i) => ({
        name: `wallet-allowance-edge-${i}`,
        bindings: { SNAPSHOT: snapshot, TOKEN: token, EDGE_ID: `edge-${i}`, HUB_KEY: hub.publicKey ?? "" },
      })),
    );
    const totals = workers.map(newTotals);

    // A. Both edges consume a bit and sync: each holds a wallet lease (and its allowance).
    (await ingestRound(workers, hub.url, 10)).forEach((r, i) => add(totals[i], r));
    const tSyncSent = Date.now(); // the leases expire TTL_MS after their request was sent: after this
    const synced = await syncAll(workers, hub.url);
    const tSynced = Date.now(); // ... and before this plus TTL_MS
    await pollWallet(hub.url, trace, "before the outage");
    const allowedA = sum(totals, "allowed");
    const leftAtKill = synced.map((s) => leaseLeft(s.walletLease));
    console.log(`${P}, before the outage: ${brief(totals)}; leases ${show(synced.map((s) => s.walletLease))}`);
    check(`${P}: both edges are served before the outage`, totals.every((t) => t.allowed > 0), brief(totals));
    check(
      `${P}: before the outage each edge has synced and holds a ${WALLET_KEY} lease`,
      synced.every((s) => s.syncError === null && s.walletLease && s.walletLease.period === WALLET_PERIOD && s.pending === 0),
      show(synced),
    );

    // The hub dies.
    await killHub(hubProcess);
    check(`${P}: the hub is killed with SIGKILL`, hubProcess.signalCode === "SIGKILL", `exit ${hubProcess.exitCode} ${hubProcess.signalCode}`);

    // B1. Right after: the leases are still valid (the round stops well before they expire).
    const b1 = await ingestRound(workers, hub.url, 20, tSyncSent + TTL_MS - 600);
    b1.forEach((r, i) => add(totals[i], r));
    // B2. Once the leases expired (and the hub has not answered for a whole lifetime): only the
    // allowance, then `offline`.
    const wait = tSynced + TTL_MS + 1500 - Date.now();
    if (wait > 0) await sleep(wait);
    const b2 = await ingestRound(workers, hub.url, 20);
    b2.forEach((r, i) => add(totals[i], r));
    const outage = b1.map((r, i) => r.allowed + b2[i].allowed);
    console.log(
      `${P}, hub down: lease still valid: served ${show(b1.map((r) => r.allowed))}, denials ${show(b1.map((r) => r.reasons))}, ` +
        `lease then ${show(b1.map((r) => r.walletLease))}; after expiry: served ${show(b2.map((r) => r.allowed))}, ` +
        `denials ${show(b2.map((r) => r.reasons))}, lease then ${show(b2.map((r) => r.walletLease))}`,
    );
    check(`${P}: the edges served at least one call while the hub was down`, outage[0] + outage[1] > 0, show(outage));
    check(
      `${P}: HubClient.sync throws while the hub is down (the worker catches it)`,
      b2.every((r) => r.syncErrors > 0),
      show(b2.map((r) => ({ syncErrors: r.syncErrors, lastSyncError: r.lastSyncError }))),
    );
    check(
      `${P}: after its lease expired, the offline allowance served calls`,
      b2.some((r) => r.allowed > 0),
      show(b2.map(({ first, ...r }) => r)),
    );
    check(
      `${P}: after its lease expired, each edge served at most its 0.05 allowance (5 calls)`,
      b2.every((r) => r.allowed <= 5),
      show(b2.map((r) => r.allowed)),
    );
    check(
      `${P}: during the outage no edge served more than its lease had left plus its 0.05 allowance`,
      leftAtKill.every((l) => l !== null) && outage.every((n, i) => cents(n) <= leftAtKill[i] + cents(5)),
      `served ${show(outage)}, lease left at the kill ${show(leftAtKill)} (1e-8 USD)`,
    );
    check(
      `${P}: with the allowance spent and the hub down, the edges deny with offline (walletDenied)`,
      b2.every((r) => r.denied > 0 && Object.keys(r.reasons).every((k) => k === "offline") && r.notWalletDenied === 0),
      show(b2.map((r) => ({ reasons: r.reasons, notWalletDenied: r.lastNotWalletDenied }))),
    );
    check(
      `${P}: every call served during the outage is queued for the hub`,
      b2.every((r, i) => r.pending === outage[i]),
      `pending ${show(b2.map((r) => r.pending))}, served ${show(outage)}`,
    );

    // C. The hub comes back on the same database (on a new port); the edges hand in everything.
    const firstKey = hub.publicKey;
    hub = await startHub({ db, ttlMs: TTL_MS, adminToken: ADMIN, edgeTokens: EDGES });
    hubProcess = hub.child;
    check(`${P}: the hub restarts on the same database with the same key`, hub.publicKey === firstKey, `${firstKey} then ${hub.publicKey}`);
    let states = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      states = await syncAll(workers, hub.url);
      if (states.every((s) => s.syncError === null && s.pending === 0)) break;
      await sleep(200);
    }
    check(
      `${P}: after the restart both edges sync until nothing is pending`,
      states.every((s) => s.syncError === null && s.pending === 0),
      show(states),
    );
    await pollWallet(hub.url, trace, "after the restart");
    const c = await ingestRound(workers, hub.url, 5);
    c.forEach((r, i) => add(totals[i], r));
    check(`${P}: after the restart the edges lease from the hub again and are served`, c.some((r) => r.allowed > 0), show(c.map(({ first, ...r }) => r)));
    for (let attempt = 0; attempt < 10 && totals.some((t) => t.pending !== 0); attempt++) {
      (await syncAll(workers, hub.url)).forEach((s, i) => (totals[i].pending = s.pending));
    }
    check(`${P}: no event is left unsent at the end`, totals.every((t) => t.pending === 0), brief(totals));

    const allowed = sum(totals, "allowed");
    console.log(`${P}: ${brief(totals)}; allowed in all ${allowed} (${allowedA} before the outage, ${outage[0] + outage[1]} during it)`);
    check(`${P}: the calls served, 0.01 × ${allowed} = ${usd(allowed)} USD, stay within the 1.00 wallet (overspend 0)`, allowed <= 100, `${allowed} allowed`);
    check(
      `${P}: every allowed call was charged 0.01 USD once and every denial was a wallet denial`,
      sum(totals, "badCharges") === 0 && sum(totals, "notWalletDenied") === 0 && sum(totals, "duplicates") === 0,
      show(totals.map((t) => t.samples)),
    );
    const spent = totals.map((t) => (t.wallet ? money(t.wallet.spent) : null));
    check(
      `${P}: the edges' own wallet.spent adds up to at most 1.00`,
      spent.every((s) => s !== null) && spent.reduce((a, s) => a + s, 0n) <= cents(100),
      show(totals.map((t) => t.wallet)),
    );
    const wEnd = await pollWallet(hub.url, trace, "at the end");
    check(
      `${P}: the hub's wallet at the end: balance = 1.00 − 0.01 × ${allowed} = ${usd(100 - allowed)} ≥ 0, debited ${usd(allowed)} ≤ 1.00`,
      money(wEnd.balance) === cents(100 - allowed) && money(wEnd.balance) >= 0n && money(wEnd.debited) === cents(allowed) && money(wEnd.debited) <= cents(100),
      walletView(wEnd),
    );
    const bad = walletTraceProblems(trace);
    check(`${P}: the hub's wallet balance was never below zero (${trace.length} polls)`, bad.length === 0, show(bad));
    await checkLedger(P, hub.url, totals);
    await checkInvoice(P, hub.url, allowed);
  } catch (e) {
    results.push({ name: `${P}: run the hub, two workers, the outage and the restart`, ok: false, detail: String(e.stack || e) });
  } finally {
    await Promise.all(workers.map((mf) => mf.dispose()));
    if (hubProcess) await killHub(hubProcess);
  }
}

try {
  await scenarioDeny();
  await scenarioAllowance();
} finally {
  rmSync(top, { recursive: true, force: true });
}
process.exit(report("hub wallet + two workerd edges", results) ? 1 : 0);
