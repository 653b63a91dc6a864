// The scenario in headless Chromium (Debian's, driven by playwright-core), three ways a page
// can load the package: the `browser` entry through an import map, `tollgate/slim` with
// init(fetch(...)), and the classic script (`tollgate/script`) from a <script> tag.
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { report } from "./report.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const pkgDir = join(here, "node_modules", "tollgate");
const exportsMap = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).exports;
const at = (p) => p.replace(/^\.\//, "/pkg/");

const collect = `
  window.__results = null;
  window.addEventListener("error", (e) => { window.__results = [{ name: "page", ok: false, detail: String(e.message) }]; });
  window.addEventListener("unhandledrejection", (e) => { window.__results = [{ name: "page", ok: false, detail: String(e.reason && e.reason.stack || e.reason) }]; });`;
const pages = {
  "/entry.html": `<!doctype html><script>${collect}</script>
<script type="importmap">{ "imports": { "tollgate": "${at(exportsMap["."].browser)}" } }</script>
<script type="module">
  import * as tollgate from "tollgate";
  import { scenario } from "/scenario.mjs";
  const snapshot = await (await fetch("/snapshot.json")).json();
  window.__results = await scenario(tollgate, snapshot);
</script>`,
  "/slim.html": `<!doctype html><script>${collect}</script>
<script type="importmap">{ "imports": { "tollgate/slim": "${at(exportsMap["./slim"].default)}" } }</script>
<script type="module">
  import * as tollgate from "tollgate/slim";
  import { scenario } from "/scenario.mjs";
  let early = null;
  try { tollgate.Engine.fromSnapshot("{}"); } catch (e) { early = e.code; }
  await tollgate.init(fetch("${at(exportsMap["./tollgate.wasm"])}"));
  const snapshot = await (await fetch("/snapshot.json")).json();
  const results = await scenario(tollgate, snapshot);
  results.push({ name: "slim: not_initialized before init(fetch(...))", ok: early === "not_initialized", detail: String(early) });
  window.__results = results;
</script>`,
  "/script.html": `<!doctype html><script>${collect}</script>
<script src="${at(exportsMap["./script"])}"></script>
<script type="module">
  import { scenario } from "/scenario.mjs";
  await tollgate.init("${at(exportsMap["./tollgate.wasm"])}");
  const snapshot = await (await fetch("/snapshot.json")).json();
  window.__results = await scenario(tollgate, snapshot);
</script>`,
};
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

const server = createServer((req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  let body;
  let type = "text/html";
  if (pages[path]) body = pages[path];
  else if (path === "/snapshot.json") body = readFileSync(join(here, "../../examples/llm-snapshot.json"));
  else if (path === "/scenario.mjs") body = readFileSync(join(here, "scenario.mjs"));
  else if (path.startsWith("/pkg/")) {
    const file = normalize(join(pkgDir, path.slice(5)));
    if (file.startsWith(pkgDir)) {
      try {
        body = readFileSync(file);
      } catch {}
    }
  }
  if (body === undefined) {
    res.writeHead(404).end();
    return;
  }
  if (path !== "/" && types[extname(path)]) type = types[extname(path)];
  res.writeHead(200, { "content-type": type }).end(body);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "tollgate-chromium-"));
let failed = 0;
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const version = context.browser()?.version() ?? "chromium";
  for (const name of Object.keys(pages)) {
    const page = await context.newPage();
    let results;
    try {
      await page.goto(origin + name);
      await page.waitForFunction(() => window.__results !== null, null, { timeout: 30000 });
      results = await page.evaluate(() => window.__results);
    } catch (e) {
      results = [{ name: "load the page", ok: false, detail: String(e.stack || e) }];
    }
    failed += report(`chromium ${version} ${name.slice(1, -5)}`, results);
    await page.close();
  }
} catch (e) {
  failed += report("chromium", [{ name: "launch", ok: false, detail: String(e.stack || e) }]);
} finally {
  await context?.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
