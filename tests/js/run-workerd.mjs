// The scenario in workerd (Cloudflare Workers' runtime) through Miniflare: a real worker module
// that imports the package's `workerd` entry, which imports the `.wasm` as a compiled module.
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorkers, workerdEntry } from "./hub-harness.mjs";
import { report } from "./report.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
// The entry the way wrangler's bundler resolves it for Workers: the `workerd` condition.
const entry = workerdEntry.replace(/^\.\/tollgate\//, "./");

const dir = mkdtempSync(join(tmpdir(), "tollgate-workerd-"));
let results = [];
let mf;
try {
  cpSync(join(here, "scenario.mjs"), join(dir, "scenario.mjs"));
  const script = `import * as tollgate from ${JSON.stringify(workerdEntry)};
import { scenario } from "./scenario.mjs";
export default {
  async fetch(request, env) {
    return Response.json(await scenario(tollgate, JSON.parse(env.SNAPSHOT)));
  },
};
`;
  const snapshot = readFileSync(join(here, "../../examples/llm-snapshot.json"), "utf8");
  [mf] = startWorkers(dir, script, [{ name: "scenario", bindings: { SNAPSHOT: snapshot } }]);
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
