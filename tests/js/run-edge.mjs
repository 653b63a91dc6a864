// The scenario in Vercel's edge-runtime. Its VM runs classic scripts, so it loads the package's
// classic-script build (the `tollgate/script` export, which defines globalThis.tollgate) and
// the module's bytes, handed into the VM (a WebAssembly.Module from this realm would fail the
// glue's instanceof check there).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EdgeRuntime } from "edge-runtime";
import { report } from "./report.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const pkgDir = join(here, "node_modules", "tollgate");
const exportsMap = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).exports;
const script = readFileSync(join(pkgDir, exportsMap["./script"]), "utf8");
const scenario = readFileSync(join(here, "scenario.mjs"), "utf8").replace(/^export /gm, "");

let results = [];
try {
  const runtime = new EdgeRuntime({ initialCode: `${script}\n${scenario}` });
  runtime.context.WASM_BYTES = new Uint8Array(readFileSync(join(pkgDir, exportsMap["./tollgate.wasm"])));
  runtime.context.SNAPSHOT_TEXT = readFileSync(join(here, "../../examples/llm-snapshot.json"), "utf8");
  const out = await runtime.evaluate(`(async () => {
    const before = tollgate.isInitialized();
    let early = null;
    try { tollgate.Engine.fromSnapshot(SNAPSHOT_TEXT); } catch (e) { early = e.code; }
    tollgate.initSync(WASM_BYTES);
    const results = await scenario(tollgate, JSON.parse(SNAPSHOT_TEXT));
    results.push({ name: "before init: not_initialized, then loaded from bytes", ok: before === false && early === "not_initialized" && tollgate.isInitialized(), detail: String(early) });
    return JSON.stringify(results);
  })()`);
  results = JSON.parse(out);
} catch (e) {
  results.push({ name: "run in edge-runtime", ok: false, detail: String(e.stack || e) });
}
process.exit(report("edge-runtime", results) ? 1 : 0);
