// The scenario in Node with node:test, plus what only Node can reach: the raw glue module (to
// simulate a trap), memory growth under the figure view, and the shared init of the entries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as tollgate from "tollgate";
import { scenario, NOW } from "./scenario.mjs";

const { Engine, TollgateError } = tollgate;
const snapshot = JSON.parse(readFileSync(new URL("../../examples/llm-snapshot.json", import.meta.url), "utf8"));
const at = { now: NOW };

for (const r of await scenario(tollgate, snapshot)) {
  test(`scenario: ${r.name}`, () => assert.ok(r.ok, r.detail));
}

test('"tollgate" resolves to the node entry, "tollgate/slim" to slim.js, sharing one instance', async () => {
  assert.match(import.meta.resolve("tollgate"), /\/node_modules\/tollgate\/node\.js$/);
  assert.match(import.meta.resolve("tollgate/slim"), /\/node_modules\/tollgate\/slim\.js$/);
  const slim = await import("tollgate/slim");
  assert.equal(slim.isInitialized(), true);
  assert.equal(slim.Engine, Engine);
});

test("figures stay right when the module's memory grows", async () => {
  const raw = await import(new URL("./node_modules/tollgate/tollgate_raw.js", import.meta.url));
  const memory = raw.initSync().memory; // already instantiated: returns the exports
  const engine = Engine.fromSnapshot(snapshot);
  const before = engine.consume("cus_dev", "input-tokens", "0.5", at);
  const size = memory.buffer.byteLength;
  const keep = [];
  while (memory.buffer.byteLength === size) keep.push(Engine.fromSnapshot(snapshot));
  const after = engine.consume("cus_dev", "input-tokens", "0.25", at);
  assert.equal(before.balance, "9999.5");
  assert.equal(after.balance, "9999.25");
  assert.equal(after.usage, "0.75");
  for (const e of keep) e.free();
});

test("a non-ASCII id takes the ordinary string path", () => {
  const engine = Engine.fromSnapshot(snapshot);
  engine.upsertCustomer({ id: "cus_é", grants: [{ id: "g", featureKey: "input-tokens", amount: "5" }] });
  assert.equal(engine.consume("cus_é", "input-tokens", 2, at).balance, "3");
  assert.equal(engine.check("cus_é", "input-tokens", at).balance, "3");
});

test("a trap poisons its engine only, and says so", async () => {
  const raw = await import(new URL("./node_modules/tollgate/tollgate_raw.js", import.meta.url));
  const sick = Engine.fromSnapshot(snapshot);
  const healthy = Engine.fromSnapshot(snapshot);
  const original = raw.RawEngine.prototype.check_ids;
  raw.RawEngine.prototype.check_ids = function () {
    throw new WebAssembly.RuntimeError("unreachable");
  };
  try {
    assert.throws(() => sick.check("cus_acme", "priority-queue", at), (e) => {
      assert.ok(e instanceof TollgateError);
      assert.equal(e.code, "internal_error");
      assert.match(e.message, /unreachable/);
      return true;
    });
  } finally {
    raw.RawEngine.prototype.check_ids = original;
  }
  try {
    sick.check("cus_acme", "priority-queue", at);
    assert.fail("a poisoned engine answered");
  } catch (e) {
    assert.ok(e instanceof TollgateError);
    assert.equal(e.code, "poisoned");
    assert.ok(e.cause instanceof WebAssembly.RuntimeError);
  }
  assert.throws(() => sick.quote({ planId: "plan_developer", usage: {} }), { code: "poisoned" });
  assert.equal(healthy.check("cus_acme", "priority-queue", at).allowed, true);
  assert.equal(Engine.fromSnapshot(snapshot).check("cus_acme", "priority-queue", at).allowed, true);
});

test("free() releases an engine; later calls throw freed", () => {
  const engine = Engine.fromSnapshot(snapshot);
  engine.free();
  engine.free();
  assert.throws(() => engine.check("cus_acme", "priority-queue", at), { name: "TollgateError", code: "freed" });
});

test("Engine and Handle cannot be constructed directly", () => {
  assert.throws(() => new Engine(), TypeError);
  assert.throws(() => new tollgate.Handle(), TypeError);
});

test("now defaults to the host clock, and a Date is accepted", () => {
  const engine = Engine.fromSnapshot(snapshot);
  assert.equal(engine.check("cus_acme", "priority-queue").allowed, true);
  assert.equal(engine.check("cus_acme", "priority-queue", { now: new Date(NOW) }).allowed, true);
  assert.throws(() => engine.check("cus_acme", "priority-queue", { now: "today" }), { code: "invalid_type", path: "/now" });
});

test("long ids cross as ordinary strings", () => {
  const engine = Engine.fromSnapshot(snapshot);
  const id = `cus_${"x".repeat(5000)}`;
  engine.upsertCustomer({ id, grants: [{ id: "g", featureKey: "input-tokens", amount: "5" }] });
  assert.equal(engine.consume(id, "input-tokens", 2, at).balance, "3");
  assert.equal(engine.check(id, "input-tokens", at).reason, "ok");
  assert.equal(engine.check(`${id}y`, "input-tokens", at).reason, "unknown_customer");
});

test("an id reused for another request throws idempotency_mismatch and changes nothing", () => {
  const engine = Engine.fromSnapshot(snapshot);
  engine.upsertCustomer({ id: "cus_idem", grants: [{ id: "g", featureKey: "input-tokens", amount: "100" }] });
  const first = engine.consume("cus_idem", "input-tokens", 5, { ...at, id: "req-1" });
  assert.equal(first.balance, "95");
  assert.equal(engine.consume("cus_idem", "input-tokens", 5, { ...at, id: "req-1" }).balance, "95", "the same request: the first decision");
  assert.throws(() => engine.consume("cus_idem", "input-tokens", 6, { ...at, id: "req-1" }),
    (e) => e instanceof TollgateError && e.code === "idempotency_mismatch" && e.path === "/id");
  assert.equal(engine.check("cus_idem", "input-tokens", at).balance, "95", "nothing applied");
  const event = { id: "ev-1", source: "app", type: "llm.completion", subject: "cus_dev", time: new Date(NOW).toISOString(),
    data: { model: "small", input_tokens: 10, output_tokens: 1 } };
  assert.equal(engine.ingest(event, at).duplicate, false);
  assert.equal(engine.ingest(event, at).duplicate, true);
  assert.throws(() => engine.ingest({ ...event, data: { ...event.data, input_tokens: 11 } }, at),
    (e) => e instanceof TollgateError && e.code === "idempotency_mismatch" && e.path === "/id");
});

test("a consume the wallet pays carries the wallet, allowed or denied", () => {
  const paid = JSON.parse(readFileSync(new URL("../data/wallet-leased-snapshot.json", import.meta.url), "utf8"));
  const engine = Engine.fromSnapshot(paid);
  const when = { now: Date.parse("2026-11-10T00:00:00Z") };
  const d = engine.consume("cus_acme", "api-calls", 5, when);
  assert.equal(d.allowed, true);
  assert.deepEqual(d.wallet, { currency: "USD", balance: "1.95" }, "2.00 − 5 × 0.01");
  assert.deepEqual(JSON.parse(JSON.stringify(d)).wallet, { currency: "USD", balance: "1.95" });
  const h = engine.handle("cus_acme", "api-calls");
  assert.equal(engine.consumeHandle(h, 195, when).wallet.balance, "0.00", "through a handle");
  const denied = engine.consume("cus_acme", "api-calls", 1, when);
  assert.deepEqual([denied.allowed, denied.reason, denied.wallet.balance], [false, "limit_reached", "0.00"]);
  assert.equal(engine.check("cus_acme", "api-calls", when).wallet, undefined, "a check does not price a use");
});

test("the id tables' key: random by default, or given as hashSeed (0 to 2^64 − 1)", () => {
  for (const hashSeed of [undefined, 0, "18446744073709551615", 2n ** 63n]) {
    const engine = Engine.fromSnapshot(snapshot, hashSeed === undefined ? {} : { hashSeed });
    assert.equal(engine.check("cus_acme", "priority-queue", at).allowed, true, String(hashSeed));
  }
  for (const hashSeed of ["18446744073709551616", -1, 1.5]) {
    assert.throws(() => Engine.fromSnapshot(snapshot, { hashSeed }),
      (e) => e instanceof TollgateError && e.code === "invalid_value" && e.path === "/options/hashSeed", String(hashSeed));
  }
});

test("figures of every size come out exact", () => {
  const engine = Engine.fromSnapshot(snapshot);
  for (const [id, amount, use, left] of [
    ["c1", "3000000000", "1", "2999999999"], // above 2^31: the int32 view reads it negative
    ["c2", "4294967296", "0", "4294967296"], // 2^32: past the low word
    ["c3", "12345678901234567890.123456", "0.000001", "12345678901234567890.123455"], // all three words and a scale
    ["c4", "0.000001", "0.0000005", "0.0000005"],
  ]) {
    engine.upsertCustomer({ id, grants: [{ id: "g", featureKey: "input-tokens", amount }] });
    const d = engine.consume(id, "input-tokens", use, at);
    assert.deepEqual([d.allowed, d.balance, d.limit], [true, left, amount], id);
  }
});

// HubClient's failures carry a code: a hub that cannot be reached, one that does not answer in
// time, one that refuses (with its own code and the HTTP status). Real sockets on loopback.
test("HubClient errors say why: network, timeout, the hub's code", async () => {
  const { createServer } = await import("node:http");
  const listen = (handler) =>
    new Promise((resolve) => {
      const server = createServer(handler);
      server.listen(0, "127.0.0.1", () => resolve(server));
    });
  const leased = () => {
    const engine = Engine.fromSnapshot(snapshot, { edgeId: "edge-1", leases: true });
    engine.consume("cus_dev", "input-tokens", 1, at);
    return engine;
  };
  const url = (server) => `http://127.0.0.1:${server.address().port}`;

  // Nothing listens on the port any more.
  const closed = await listen(() => {});
  const deadUrl = url(closed);
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(new tollgate.HubClient({ url: deadUrl, token: "t", retries: 1, backoffMs: 1 }).sync(leased(), at), (e) => {
    assert.ok(e instanceof TollgateError, String(e));
    assert.equal(e.code, "network");
    return true;
  });

  // Accepts the request and never answers.
  const silent = await listen(() => {});
  await assert.rejects(
    new tollgate.HubClient({ url: url(silent), token: "t", retries: 0, timeoutMs: 200 }).sync(leased(), at),
    (e) => e instanceof TollgateError && e.code === "timeout",
  );
  silent.closeAllConnections();
  silent.close();

  // Refuses the token: the hub's code and status.
  const refusing = await listen((_, res) => {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "unauthorized", path: "", message: "no such token" } }));
  });
  await assert.rejects(new tollgate.HubClient({ url: url(refusing), token: "t" }).sync(leased(), at), (e) => {
    assert.equal(e.code, "unauthorized");
    assert.equal(e.status, 401);
    return true;
  });
  refusing.close();
});
