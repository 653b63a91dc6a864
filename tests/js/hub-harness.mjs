// What the end-to-end tests against the real hub share (e2e-hub.mjs, e2e-wallet.mjs): start the
// hub binary on loopback, and run workerd workers (through Miniflare) that import the built
// package from a copy of tests/js/node_modules/tollgate.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const here = fileURLToPath(new URL(".", import.meta.url));
export const root = join(here, "../..");
export const bin = process.env.TOLLGATE_HUB_BIN ?? join(root, "target/debug/tollgate");
export const pkgDir = join(here, "node_modules", "tollgate");
/** The package's `workerd` entry, as a module path relative to a worker in the same directory. */
export const workerdEntry = `./tollgate/${JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"))
  .exports["."].workerd.replace(/^\.\//, "")}`;

/** Databases of this run on PostgreSQL, by the file path they stand for. */
const created = new Map();

/**
 * What `--db` says for the file `db`: the file itself, or, when `TOLLGATE_TEST_POSTGRES` names a
 * server (a `postgres://…/` URL; tests/js/run.sh sets it for its PostgreSQL runs), a fresh
 * database of that server for this file, created at its first use (a restart reuses it).
 */
function database(db) {
  const server = process.env.TOLLGATE_TEST_POSTGRES;
  if (!server) return db;
  if (!created.has(db)) {
    const name = `js_${createHash("sha256").update(db).digest("hex").slice(0, 20)}`;
    for (const sql of [`DROP DATABASE IF EXISTS ${name}`, `CREATE DATABASE ${name}`]) {
      execFileSync("psql", ["-q", "-v", "ON_ERROR_STOP=1", `${server}postgres`, "-c", sql], { stdio: "pipe" });
    }
    created.set(db, `${server}${name}`);
  }
  return created.get(db);
}

/**
 * Starts `tollgate hub` on 127.0.0.1 (a free port) and resolves, once it prints its
 * `listening on` line, to `{ child, url, publicKey }`. `seed` is only given for a new database;
 * `ttlMs` sets `--ttl-ms`.
 */
export function startHub({ db, seed, ttlMs, adminToken, edgeTokens }) {
  const args = ["hub", "--db", database(db), "--listen", "127.0.0.1:0", "--www", join(root, "www")];
  if (seed !== undefined) args.push("--seed", seed);
  if (ttlMs !== undefined) args.push("--ttl-ms", String(ttlMs));
  const child = spawn(bin, args, {
    env: { ...process.env, TOLLGATE_ADMIN_TOKEN: adminToken, TOLLGATE_EDGE_TOKENS: edgeTokens.join(",") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the hub did not start: ${out}`)), 20000);
    const onData = (chunk) => {
      out += chunk;
      const url = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (url) {
        clearTimeout(timer);
        const key = out.match(/public key[^A-Za-z0-9+/]*([A-Za-z0-9+/]{43}=)/i);
        resolve({ child, url: url[1], publicKey: key ? key[1] : undefined });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`the hub exited (${code}): ${out}`)));
  });
}

/** Kills a hub with SIGKILL (no chance to flush anything) and waits until it is gone. */
export function killHub(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  return gone;
}

/**
 * One Miniflare (workerd) instance per edge, all running `script` (an ES module written into
 * `dir` next to a copy of the package). `edges` is a list of `{ name, bindings }`.
 */
export function startWorkers(dir, script, edges) {
  cpSync(pkgDir, join(dir, "tollgate"), { recursive: true });
  writeFileSync(join(dir, "worker.mjs"), script);
  return edges.map(
    ({ name, bindings }) =>
      new Miniflare({
        name,
        modules: true,
        scriptPath: join(dir, "worker.mjs"),
        modulesRoot: dir,
        modulesRules: [
          { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        compatibilityDate: "2026-04-26",
        bindings,
      }),
  );
}
