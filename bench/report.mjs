// What BENCHMARKS.md needs besides the JS measurements: the machine, criterion's native results,
// the wasm size, and the page itself.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** CPU model (from /proc/cpuinfo where there is one) and core count. */
export function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  let cores = cpus().length;
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const m = info.match(/^model name\s*:\s*(.+)$/m);
    if (m) model = m[1].trim();
    cores = (info.match(/^processor\s*:/gm) ?? []).length || cores;
  } catch {
    // not Linux: os.cpus() it is
  }
  return { model, cores };
}

/**
 * Criterion's results under `dir` (target/criterion): full benchmark id → { ns, at } with the
 * median's point estimate of the last run (`new/estimates.json`) and when it was written.
 */
export function criterionResults(dir) {
  const out = new Map();
  if (!existsSync(dir)) return out;
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (!statSync(p).isDirectory()) continue;
      const est = join(p, "new", "estimates.json");
      const meta = join(p, "new", "benchmark.json");
      if (existsSync(est) && existsSync(meta)) {
        const id = JSON.parse(readFileSync(meta, "utf8")).full_id;
        const ns = JSON.parse(readFileSync(est, "utf8")).median.point_estimate;
        out.set(id, { ns, at: statSync(est).mtime });
      } else if (name !== "report") {
        walk(p);
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * What a Rust benchmark saved with `support::hub::save` (`<target>/bench/<name>.json`):
 * `{ at: Date, figures }`, or null when it has not run.
 */
export function savedResults(dir, name) {
  const file = join(dir, `${name}.json`);
  if (!existsSync(file)) return null;
  const saved = JSON.parse(readFileSync(file, "utf8"));
  return { at: new Date(saved.at), figures: saved.figures };
}

/** Raw and gzip -9 size of the package's wasm module, in bytes. */
export function wasmSize(file) {
  const bytes = readFileSync(file);
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

export const fmt = {
  ns: (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} ms` : x >= 1e3 ? `${(x / 1e3).toFixed(2)} µs` : `${x.toFixed(1)} ns`),
  ratio: (x) => (x >= 10 ? `${x.toFixed(0)}×` : `${x.toFixed(1)}×`),
  count: (x) => Math.round(x).toLocaleString("en-US"),
  date: (d) => d.toISOString().slice(0, 16).replace("T", " ") + " UTC",
};

/** A Markdown table from a header row and rows. */
export function table(header, rows, align) {
  const a = align ?? header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [`| ${header.join(" | ")} |`, `|${a.join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}
