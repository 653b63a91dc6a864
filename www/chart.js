// The cost chart as plain SVG: total per plan (y) against one metric (x). Totals arrive as exact
// decimal strings; they become numbers only to place pixels. Axis labels for money are built
// from exact decimal strings (tick = step × i), never from a float.

import { money, timesInteger } from "./decimal.js";

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const SUFFIXES = ["", "K", "M", "B", "T", "Q"];

/** 0, 10, 1K, 25M…: a compact quantity label for an axis (not a money amount). */
export function compact(q) {
  if (q === 0) return "0";
  let k = 0;
  let v = q;
  while (Math.abs(v) >= 1000 && k < SUFFIXES.length - 1) {
    v /= 1000;
    k++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0).replace(/\.0$/, "");
  return text + SUFFIXES[k];
}

/**
 * A money axis label from an exact decimal string, shortened by moving the point in the text:
 * "2500000" → "$2.5M", "0.05" → "$0.05". No float is involved.
 */
export function compactMoney(text, currency) {
  const m = /^(\d+)$/.exec(text);
  if (!m || text.length < 4) return money(text, currency);
  const k = Math.min(Math.floor((text.length - 1) / 3), SUFFIXES.length - 1);
  const head = text.slice(0, text.length - 3 * k);
  const tail = text.slice(text.length - 3 * k).replace(/0+$/, "");
  return money(tail ? `${head}.${tail}` : head, currency) + SUFFIXES[k];
}

/** A round step (1, 2 or 5 × 10^e) as an exact decimal string, and its size for pixels. */
function niceStep(rough) {
  const e = Math.floor(Math.log10(rough));
  const f = rough / 10 ** e;
  const m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  const mantissa = m === 10 ? 1 : m;
  const exp = m === 10 ? e + 1 : e;
  const text = exp >= 0 ? String(mantissa) + "0".repeat(exp) : `0.${"0".repeat(-exp - 1)}${mantissa}`;
  return { text, size: mantissa * 10 ** exp };
}

/**
 * Draws into `svg` (emptied first). `series`: [{ plan, color, dash, values: (string|null)[] }]
 * over `xs` (numbers, the metric's quantities); `marks`: crossovers { x, total, n, label };
 * `current`: the metric's current quantity.
 */
export function drawChart(svg, { width, height, xs, series, log, ylog, xMax, current, marks, currency, xLabel, yLabel }) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const narrow = width < 520;
  const pad = { top: 30, right: narrow ? 14 : 24, bottom: 52, left: narrow ? 52 : 64 };
  const W = width - pad.left - pad.right;
  const H = height - pad.top - pad.bottom;

  let yMax = 0;
  for (const s of series) for (const v of s.values) if (v !== null) yMax = Math.max(yMax, Number(v));
  if (yMax <= 0) yMax = 1;

  const lx = (q) => (log ? Math.log10(1 + q) / Math.log10(1 + xMax) : q / xMax);
  const X = (q) => pad.left + Math.min(1, Math.max(0, lx(q))) * W;

  // y ticks: exact decimal strings (money labels), with their size for pixels.
  const yTicks = [];
  let yTop;
  if (ylog) {
    let e = 0;
    while (10 ** e < yMax) e++;
    yTop = 10 ** e;
    const every = Math.ceil(e / (narrow ? 4 : 7));
    yTicks.push({ text: "0", size: 0 });
    for (let k = e % every; k <= e; k += every) if (k > 0 || e <= 3) yTicks.push({ text: `1${"0".repeat(k)}`, size: 10 ** k });
  } else {
    const step = niceStep(yMax / (narrow ? 4 : 5));
    const ticks = Math.max(1, Math.ceil(yMax / step.size - 1e-9));
    yTop = ticks * step.size;
    for (let i = 0; i <= ticks; i++) yTicks.push({ text: timesInteger(step.text, i), size: i * step.size });
  }
  const ly = (v) => (ylog ? Math.log10(1 + Math.max(0, v)) / Math.log10(1 + yTop) : Math.max(0, v) / yTop);
  const Y = (v) => pad.top + H - Math.min(1, ly(v)) * H;

  const grid = el("g", { class: "grid" });
  const axes = el("g", { class: "axis" });
  for (const t of yTicks) {
    const y = Y(t.size);
    grid.append(el("line", { x1: pad.left, x2: pad.left + W, y1: y, y2: y }));
    axes.append(el("text", { x: pad.left - 8, y: y + 4, "text-anchor": "end" }, compactMoney(t.text, currency)));
  }
  const xTicks = [];
  if (log) {
    const top = Math.round(Math.log10(xMax));
    const every = Math.ceil((top + 1) / (narrow ? 4 : 8));
    xTicks.push(0);
    for (let e = 1; e <= top; e++) if ((top - e) % every === 0) xTicks.push(10 ** e);
  } else {
    const s = niceStep(xMax / (narrow ? 4 : 6)).size;
    for (let q = 0; q <= xMax + s / 1e6; q += s) xTicks.push(Number(q.toPrecision(12)));
  }
  for (const q of xTicks) {
    const x = X(q);
    grid.append(el("line", { x1: x, x2: x, y1: pad.top, y2: pad.top + H }));
    axes.append(el("text", { x, y: pad.top + H + 18, "text-anchor": "middle" }, compact(q)));
  }
  axes.append(el("line", { class: "baseline", x1: pad.left, x2: pad.left + W, y1: pad.top + H, y2: pad.top + H }));
  axes.append(el("text", { class: "title", x: pad.left + W / 2, y: height - 8, "text-anchor": "middle" }, xLabel));
  axes.append(el("text", { class: "title", x: 4, y: 14, "text-anchor": "start" }, yLabel));
  svg.append(grid, axes);

  const lines = el("g", { class: "series" });
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${X(xs[i]).toFixed(1)},${Y(Number(v)).toFixed(1)}`;
      pen = true;
    });
    lines.append(
      el("path", {
        d,
        fill: "none",
        stroke: s.color,
        "stroke-width": 2.25,
        "stroke-dasharray": s.dash || undefined,
        "stroke-linejoin": "round",
        "stroke-linecap": "round",
        "data-plan-id": s.plan.id,
      }),
    );
  }
  svg.append(lines);

  if (current !== null && Number.isFinite(current)) {
    const x = X(current);
    const g = el("g", { class: "current" });
    g.append(el("line", { x1: x, x2: x, y1: pad.top, y2: pad.top + H }));
    const right = x > pad.left + W * 0.7;
    g.append(el("text", { x: right ? x - 6 : x + 6, y: pad.top + 12, "text-anchor": right ? "end" : "start" }, `now: ${compact(current)}`));
    svg.append(g);
  }

  // Each crossover: a dot where the lines meet and a numbered badge above it, lifted clear of
  // the badges to its left when crossovers sit close together (joined to its dot by a stalk).
  const dots = el("g", { class: "crossovers" });
  const placed = [];
  for (const m of [...marks].sort((p, q) => p.x - q.x)) {
    if (m.total === null) continue;
    const x = X(m.x);
    const y = Y(Number(m.total));
    let by = Math.max(pad.top + 10, y - 20);
    for (let moved = true; moved; ) {
      moved = false;
      for (const p of placed) {
        if (Math.abs(p.x - x) < 20 && Math.abs(p.y - by) < 20) {
          by = p.y - 20;
          moved = true;
        }
      }
    }
    if (by < pad.top + 10) by = y + 20;
    placed.push({ x, y: by });
    const g = el("g", { class: "crossover", "data-n": m.n });
    g.append(el("title", {}, m.label));
    g.append(el("line", { class: "stalk", x1: x, y1: y, x2: x, y2: by }));
    g.append(el("circle", { class: "dot", cx: x, cy: y, r: 3.5 }));
    g.append(el("circle", { class: "badge", cx: x, cy: by, r: 9 }));
    g.append(el("text", { x, y: by + 3.8, "text-anchor": "middle" }, String(m.n)));
    dots.append(g);
  }
  svg.append(dots);
}
