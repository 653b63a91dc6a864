// A small static server with the hub's layout: the repo's www/ at /, the built package pkg/ at
// /pkg/, examples/ at /examples/. Loopback only. Run on its own to try the calculator:
//   node tests/browser/server.mjs [port]      (default 8080; 0 picks a free port)
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MOUNTS = [
  ["/pkg/", join(root, "pkg")],
  ["/examples/", join(root, "examples")],
  ["/", join(root, "www")],
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

async function resolveFile(pathname) {
  for (const [prefix, dir] of MOUNTS) {
    if (!pathname.startsWith(prefix)) continue;
    let file = resolve(dir, `.${sep}${decodeURIComponent(pathname.slice(prefix.length))}`);
    if (file !== dir && !file.startsWith(dir + sep)) return null;
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      return file;
    } catch {
      return null;
    }
  }
  return null;
}

/** Starts the server on 127.0.0.1:port (0: any free port); resolves to { server, origin }. */
export async function serve(port = 0) {
  const server = createServer(async (req, res) => {
    let pathname;
    try {
      pathname = new URL(req.url, "http://localhost").pathname;
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
      return;
    }
    const file = await resolveFile(pathname).catch(() => null);
    let body;
    try {
      body = file && (await readFile(file));
    } catch {
      body = null;
    }
    if (!body) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", ok);
  });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { origin } = await serve(Number(process.argv[2] ?? 8080));
  console.log(`calculator: ${origin}/  (www/, pkg/ at /pkg/, examples/ at /examples/; Ctrl-C stops)`);
}
