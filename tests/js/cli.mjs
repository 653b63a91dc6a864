// The scenario in Deno and Bun (and Node), importing the installed package by its name so that
// the runtime's own export condition picks the entry point; the entry is checked too.
import * as tollgate from "tollgate";
import snapshot from "../../examples/llm-snapshot.json" with { type: "json" };
import { scenario } from "./scenario.mjs";
import { report } from "./report.mjs";

const [runtime, entry] = globalThis.Deno
  ? [`deno ${Deno.version.deno}`, "deno.js"]
  : globalThis.Bun
    ? [`bun ${Bun.version}`, "node.js"]
    : [`node ${process.version}`, "node.js"];
const results = await scenario(tollgate, snapshot);
const resolved = import.meta.resolve("tollgate");
results.push({
  name: `"tollgate" resolves to ${entry}`,
  ok: resolved.endsWith(`/node_modules/tollgate/${entry}`),
  detail: resolved,
});
const failed = report(runtime, results);
if (globalThis.Deno) Deno.exit(failed ? 1 : 0);
else process.exit(failed ? 1 : 0);
