// The scenario in workerd (Cloudflare Workers' runtime) through Miniflare: a real worker module
// that imports the package's `workerd` entry, which imports the `.wasm` as a compiled module.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { report } from "./report.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const pkgDir = join(here, "node_modules", "tollgate");
// Resolve the entry the way wrangler's bundler does for Workers: the `workerd` condition.
const entry = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).exports["."].workerd;

const dir = mkdtempSync(join(tmpdir(), "tollgate-workerd-"));
let results = [];
let mf;
try {
  cpSync(pkgDir, join(dir, "tollgate"), { recursive: true });
  cpSync(join(here, "scenario.mjs"), join(dir, "scenario.mjs"));
  writeFileSync(
    join(dir, "worker.mjs"),
    `import * as tollgate from ${JSON.stringify(`./tollgate/${entry.replace(/^\.\//, "")}`)};
import { scenario } from "./scenario.mjs";
export default {
  async fetch(request, env) {
    return Response.json(await scenario(tollgate, JSON.parse(env.SNAPSHOT)));
  },
};
`,
  );
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "worker.mjs"),
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-26",
    bindings: { SNAPSHOT: readFileSync(join(here, "../../examples/llm-snapshot.json"), "utf8") },
  });
  const response = await mf.dispatchFetch("http://localhost/");
  if (!response.ok) throw new Error(`worker answered ${response.status}: ${await response.text()}`);
  results = await response.json();
  results.push({ name: `the worker imports the package's workerd entry (${entry})`, ok: entry === "./workerd.js", detail: entry });
} catch (e) {
  results.push({ name: "run the worker", ok: false, detail: String(e.stack || e) });
} finally {
  await mf?.dispose();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(report("workerd (miniflare)", results) ? 1 : 0);
