// The Workers guide (docs/workers.md) runs: examples/workers is bundled by the real wrangler
// (`wrangler deploy --dry-run`, offline) with the package built here, and the bundle it wrote
// answers in workerd through Miniflare: allowed, a quota used up (429), not entitled (403).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { report } from "./report.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const dir = join(root, "target/wrangler");
const app = join(dir, "app");
const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: ok ? undefined : detail });

// The guide quotes the example's files: each block after `<!-- file: PATH -->` is that file.
const guide = readFileSync(join(root, "docs/workers.md"), "utf8");
const quoted = [...guide.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)```/g)];
check("docs/workers.md quotes three files of the example", quoted.length === 3, `${quoted.length} quoted`);
for (const [, path, text] of quoted) {
  check(`docs/workers.md quotes ${path} as it is`, readFileSync(join(root, path), "utf8") === text, `${path} differs from the guide`);
}

let mf;
try {
  // The example as a user has it: its files, the snapshot it imports (../../llm-snapshot.json),
  // and the package in its node_modules (installed from pkg/ by install-pkg.sh).
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(app, "node_modules"), { recursive: true });
  cpSync(join(root, "examples/workers"), app, { recursive: true });
  cpSync(join(root, "examples/llm-snapshot.json"), join(dir, "llm-snapshot.json"));
  cpSync(join(here, "node_modules/tollgate"), join(app, "node_modules/tollgate"), { recursive: true });
  const wrangler = spawnSync(join(here, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", "../dist"], {
    cwd: app,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  const out = `${wrangler.stdout}${wrangler.stderr}`;
  check("wrangler bundles the example (deploy --dry-run)", wrangler.status === 0 && existsSync(join(dir, "dist/worker.js")), out);
  check("the bundle keeps the .wasm as a module of its own", /Total Upload/.test(out) && !/ERR_MODULE_RULE|Could not resolve/.test(out), out);

  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist/worker.js"),
    modulesRoot: join(dir, "dist"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-26",
    bindings: { TOLLGATE_HUB_URL: "", TOLLGATE_EDGE_ID: "edge-example" },
  });
  const ask = async (query) => {
    const r = await mf.dispatchFetch(`http://worker/?${query}`);
    return { status: r.status, retryAfter: r.headers.get("retry-after"), body: await r.json() };
  };
  const ok = await ask("customer=cus_acme&feature=priority-queue");
  check("an entitled request answers 200 with the decision", ok.status === 200 && ok.body.allowed === true && ok.body.reason === "ok",
    JSON.stringify(ok));
  // cus_trial holds a grant of 1,000 input tokens (a hard limit that never resets).
  const most = await ask("customer=cus_trial&feature=input-tokens&units=999");
  check("999 of a 1,000-token grant: 200, balance 1", most.status === 200 && most.body.balance === "1" && most.body.usage === "999",
    JSON.stringify(most));
  const over = await ask("customer=cus_trial&feature=input-tokens&units=2");
  check("2 more: 429 limit_reached, balance 1, nothing used, no Retry-After (a grant never resets)",
    over.status === 429 && over.body.reason === "limit_reached" && over.body.balance === "1" && over.body.resetAt === null &&
      over.retryAfter === null,
    JSON.stringify(over));
  const denied = await ask("customer=cus_dev&feature=priority-queue");
  check("a feature outside the plan: 403 no_entitlement", denied.status === 403 && denied.body.reason === "no_entitlement",
    JSON.stringify(denied));
} catch (e) {
  results.push({ name: "bundle the example with wrangler and run it in workerd", ok: false, detail: String(e.stack || e) });
} finally {
  await mf?.dispose();
}
process.exit(report("workers example (wrangler + workerd)", results) ? 1 : 0);
