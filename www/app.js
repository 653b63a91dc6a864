// The pricing calculator: loads the npm package's browser entry, builds an engine over the
// chosen catalog, and prices every plan with `engine.quote` as the usage changes. Amounts are
// the engine's decimal strings, shown as given (digits grouped by string manipulation).

import { compare, decimalsOf, group, isZero, money, parse, sub, timesInteger, toPlain } from "./decimal.js";
import { drawChart } from "./chart.js";
import {
  STEPS,
  additive,
  comparisonPeriods,
  crossovers,
  describeCatalog,
  plural,
  positionOf,
  quantityAt,
  samplePoints,
  sweep,
} from "./pricing.js";

const BUILTIN = {
  llm: { label: "LLM provider", catalog: "/examples/llm-provider.catalog.json", usage: "/examples/llm-usage.json" },
  cloud: { label: "Cloud analytics", catalog: "/examples/cloud-analytics.catalog.json", usage: "/examples/cloud-analytics-usage.json" },
};
const COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#0b7285", "#5c677d", "#c92a2a", "#a07d00"];
const DASHES = ["", "7 4", "2 4", "10 4 2 4", "4 3", "12 3", "1 3", "6 2 2 2"];

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

const state = {
  tollgate: null,
  builtins: {}, // key → { text, usage } once fetched
  source: null, // "llm" | "cloud" | "custom"
  label: "",
  catalog: null, // JSON.parse of the catalog (names, ids and units only)
  view: null, // describeCatalog(...)
  engine: null,
  usage: {}, // metric id → decimal string
  chartMetric: null,
  quotes: new Map(),
  chartKey: null,
  chartData: null,
  priceMetric: new Map(), // price id → metric
  periods: null, // comparisonPeriods(...) when plans bill over different periods
};

// ------------------------------------------------------------------------------------------
// Quotes

function usageKey(usage) {
  return Object.keys(usage)
    .sort()
    .map((k) => `${k}=${usage[k]}`)
    .join("&");
}

/** The quote of a plan for a usage (cached; throws TollgateError on bad input). */
function quote(planId, usage) {
  const key = `${planId}?${usageKey(usage)}`;
  let q = state.quotes.get(key);
  if (!q) {
    if (state.quotes.size > 50000) state.quotes.clear();
    q = state.engine.quote({ planId, usage });
    state.quotes.set(key, q);
  }
  return q;
}

/** The usage a plan's own billing period gets: sums and counts × the period's length in base periods. */
function planUsage(planId, usage) {
  const f = state.periods?.factors.get(planId);
  if (!f || f.usage === 1) return usage;
  const out = { ...usage };
  for (const m of state.view.metrics) if (additive(m) && out[m.id] !== undefined) out[m.id] = timesInteger(out[m.id], f.usage);
  return out;
}

/** The plan's quote for the usage set (per base period), over its own billing period. */
function planQuote(planId, usage) {
  return quote(planId, planUsage(planId, usage));
}

/** What plans are compared by: the total over the comparison period (its billing period when
 *  every plan bills alike), an exact multiple of the quote's total. */
function comparedTotal(planId, q) {
  const bills = state.periods?.factors.get(planId)?.bills ?? 1;
  return bills === 1 ? q.total : timesInteger(q.total, bills);
}

const total = (planId, usage) => comparedTotal(planId, planQuote(planId, usage));

function comparedPer(plan) {
  return state.periods ? state.periods.target : plan.per;
}

// ------------------------------------------------------------------------------------------
// Loading catalogs

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

async function fetchBuiltins() {
  await Promise.all(
    Object.entries(BUILTIN).map(async ([key, b]) => {
      try {
        const [text, usageText] = await Promise.all([fetchText(b.catalog), fetchText(b.usage).catch(() => "{}")]);
        let usage = {};
        try {
          usage = JSON.parse(usageText, (k, v, ctx) => (typeof v === "number" && ctx?.source ? ctx.source : v));
          if (usage && typeof usage.usage === "object") usage = usage.usage;
        } catch {
          usage = {};
        }
        state.builtins[key] = { text, usage };
      } catch (e) {
        state.builtins[key] = { error: String(e.message || e) };
      }
    }),
  );
}

/** Loads a catalog given as JSON text; returns the problems ([] on success). */
function loadCatalog(text, initialUsage, source, label) {
  const { Engine, validateCatalog } = state.tollgate;
  let problems;
  try {
    problems = validateCatalog(text);
  } catch (e) {
    return [{ code: e.code || "error", path: e.path ?? "", message: String(e.message || e) }];
  }
  if (problems.length) return problems;
  let catalog;
  try {
    catalog = JSON.parse(text);
  } catch (e) {
    return [{ code: "invalid_json", path: "", message: String(e.message) }];
  }
  if (!Array.isArray(catalog.plans) || catalog.plans.length === 0) {
    return [{ code: "no_plans", path: "/plans", message: "the catalog has no plans to compare" }];
  }
  let engine;
  try {
    engine = Engine.fromSnapshot(`{"catalog":${text},"customers":[]}`);
  } catch (e) {
    const list = e.problems?.length ? e.problems : [{ code: e.code || "error", path: e.path ?? "", message: e.message }];
    return list.map((p) => ({ ...p, path: String(p.path).replace(/^\/catalog(?=\/|$)/, "") }));
  }
  state.engine?.free();
  state.engine = engine;
  state.catalog = catalog;
  state.source = source;
  state.label = label;
  state.quotes.clear();
  state.chartKey = null;
  state.view = describeCatalog(catalog, initialUsage);
  state.periods = comparisonPeriods(state.view.plans);
  $("usage-h").textContent = state.periods ? `Usage per ${state.periods.base}` : "Usage per billing period";
  state.priceMetric = new Map();
  const metricsById = new Map(state.view.metrics.map((m) => [m.id, m]));
  for (const p of catalog.plans) for (const price of p.prices ?? []) if (price.metricId) state.priceMetric.set(price.id, metricsById.get(price.metricId));
  state.usage = {};
  for (const m of state.view.metrics) {
    const given = initialUsage[m.id];
    const d = given !== undefined ? parse(String(given)) : null;
    state.usage[m.id] = d && d.n >= 0n ? toPlain(d) : defaultQuantity(m);
  }
  if (!state.view.metrics.some((m) => m.id === state.chartMetric)) state.chartMetric = preferredChartMetric();
  buildMetricControls();
  buildChartSelect();
  updateCatalogInfo();
  render();
  return [];
}

function defaultQuantity(m) {
  if (!m.log) return String(Math.round(m.max / 10));
  return quantityAt(m, Math.round(STEPS / 2));
}

/** The chart's first x axis: the first metric that more than one plan charges for (a non-zero
 *  price), where plans can cross; else the first metric. */
function preferredChartMetric() {
  const metrics = state.view.metrics;
  for (const m of metrics) {
    let n = 0;
    for (const p of state.catalog.plans) {
      if ((p.prices ?? []).some((pr) => pr.metricId === m.id && JSON.stringify(pr.model ?? {}).match(/"(unitPrice|rate|packagePrice)":"?0*[1-9.]/))) n++;
    }
    if (n > 1) return m.id;
  }
  return metrics[0]?.id ?? null;
}

function updateCatalogInfo() {
  const products = (state.catalog.products ?? []).map((p) => p.name).filter(Boolean);
  const n = state.view.plans.length;
  $("catalog-info").textContent = `Showing ${state.label}${products.length ? ` — ${products.join(", ")}` : ""}: ${n} plan${n === 1 ? "" : "s"}, ${state.view.metrics.length} billable metric${state.view.metrics.length === 1 ? "" : "s"}.`;
}

// ------------------------------------------------------------------------------------------
// Usage controls

function scaleText(m) {
  return `${m.log ? "Log scale" : "Scale"}, 0 to ${group(String(m.max))}`;
}

function buildMetricControls() {
  const box = $("metrics");
  box.replaceChildren();
  if (state.view.metrics.length === 0) {
    box.append(h("p", { class: "muted small", text: "No plan of this catalog prices a billable metric: the totals below are fees only." }));
    return;
  }
  state.view.metrics.forEach((m, i) => {
    const unit = plural(m.unit);
    const label = h("label", { for: `qty-${i}`, id: `lbl-${i}`, class: "metric-name", text: m.name });
    const range = h("input", {
      type: "range",
      id: `rng-${i}`,
      min: 0,
      max: STEPS,
      step: 1,
      "aria-labelledby": `lbl-${i}`,
      "aria-describedby": `scale-${i}`,
      class: "slider",
    });
    const number = h("input", {
      type: "number",
      id: `qty-${i}`,
      min: 0,
      step: "any",
      inputmode: "decimal",
      "aria-describedby": `unit-${i} err-${i}`,
      class: "qty",
    });
    const error = h("p", { id: `err-${i}`, class: "field-error", hidden: true });
    const row = h(
      "div",
      { class: "metric", dataset: { metricId: m.id } },
      h("div", { class: "metric-head" }, label, h("span", { id: `unit-${i}`, class: "unit", text: unit })),
      h("div", { class: "metric-inputs" }, range, number),
      h("p", { id: `scale-${i}`, class: "scale muted", text: scaleText(m) }),
      error,
    );
    number.value = state.usage[m.id];
    syncSlider(m, range, state.usage[m.id]);
    range.addEventListener("input", () => {
      const q = quantityAt(m, Number(range.value));
      number.value = q;
      setUsage(m, q, range, number, error, true);
    });
    number.addEventListener("input", () => setUsage(m, number.value, range, number, error, false));
    box.append(row);
  });
}

function syncSlider(m, range, q) {
  range.value = String(positionOf(m, q));
  range.setAttribute("aria-valuetext", `${group(q)} ${plural(m.unit)}`);
}

function setUsage(m, text, range, number, error, fromSlider) {
  const raw = String(text).trim();
  const d = raw === "" ? parse("0") : parse(raw);
  if (!d || d.n < 0n) {
    number.setAttribute("aria-invalid", "true");
    error.hidden = false;
    error.textContent = "Enter a quantity of 0 or more.";
    return;
  }
  number.removeAttribute("aria-invalid");
  error.hidden = true;
  const q = toPlain(d);
  state.usage[m.id] = q;
  if (fromSlider) range.setAttribute("aria-valuetext", `${group(q)} ${plural(m.unit)}`);
  else syncSlider(m, range, q);
  render();
}

// ------------------------------------------------------------------------------------------
// Plan cards

let scheduled = false;
let renders = 0;
function render() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    try {
      renderPlans();
    } catch (e) {
      showFatal(e);
    }
    try {
      renderChart();
    } catch (e) {
      $("chart-desc").textContent = `The chart could not be drawn: ${e.message}`;
    }
    // A counter tests (and anyone curious) can wait on: the page has caught up with its input.
    document.documentElement.dataset.renders = String(++renders);
  });
}

function planColor(i) {
  return COLORS[i % COLORS.length];
}

function tierLabel(tiers, k) {
  const t = tiers[k];
  if (t.upTo === null) return k === 0 ? "All" : `Above ${group(tiers[k - 1].upTo)}`;
  return k === 0 ? `Up to ${group(t.upTo)}` : `${group(tiers[k - 1].upTo)} to ${group(t.upTo)}`;
}

function tierUnit(line) {
  const m = line.priceId ? state.priceMetric.get(line.priceId) : null;
  return m?.unit ? ` ${plural(m.unit)}` : "";
}

function lineDetail(line, currency, exp) {
  const m = line.priceId ? state.priceMetric.get(line.priceId) : null;
  const unit = m ? plural(m.unit) : line.type === "fee" ? "" : "";
  const parts = [];
  if (line.type === "usage" || (line.type === "fee" && line.quantity !== "1")) {
    let q = `${group(line.quantity)}${unit ? ` ${unit}` : ""}`;
    if (line.unitPrice !== undefined && !line.tiers) q += ` × ${money(line.unitPrice, currency)}`;
    parts.push(q);
  }
  if (line.type === "usage" && compare(line.meteredQuantity, line.quantity) > 0) {
    parts.push(`${group(sub(line.meteredQuantity, line.quantity))} included`);
  }
  if (compare(line.preciseAmount, line.amount) !== 0) parts.push(`exact ${money(line.preciseAmount, currency, exp)}`);
  return parts.join(" · ");
}

function planCard(plan, i, q, error, cheapest) {
  const color = planColor(i);
  const head = h(
    "div",
    { class: "plan-head" },
    h("span", { class: "swatch", style: `--c:${color}`, "aria-hidden": "true" }),
    h("h3", { text: plan.name }),
    cheapest?.best ? h("span", { class: "badge", text: "Lowest total" }) : null,
  );
  const meta = h("p", { class: "plan-meta muted small", text: `${plan.id} · billed per ${plan.per} · ${plan.currency}` });
  if (error) {
    return h(
      "article",
      { class: "plan", dataset: { planId: plan.id }, "aria-labelledby": `plan-${i}-h` },
      head,
      meta,
      h("p", { class: "plan-error" }, h("strong", { text: "No quote for this usage. " }), String(error.message ?? error)),
    );
  }
  const exp = decimalsOf(q.total);
  const compared = comparedTotal(plan.id, q);
  const f = state.periods?.factors.get(plan.id) ?? { usage: 1, bills: 1 };
  const totalEl = h(
    "p",
    { class: "total" },
    h("span", { class: "amount", dataset: { total: compared }, text: money(compared, q.currency, exp) }),
    h("span", { class: "per", text: ` per ${comparedPer(plan)}` }),
  );
  const notes = [];
  if (f.bills > 1) notes.push(h("p", { class: "delta small", text: `${f.bills} × ${money(q.total, q.currency)} per ${plan.per}` }));
  if (cheapest && !cheapest.best && cheapest.diff) notes.push(h("p", { class: "delta small", text: `+${money(cheapest.diff, q.currency, exp)} more than ${cheapest.name}` }));
  const invoiceHead = state.periods
    ? h("p", { class: "invoice-head small", text: `Invoice for one ${plan.per}${f.usage > 1 ? ` (sums and counts × ${f.usage})` : ""}` })
    : null;

  const rows = [];
  for (const line of q.lines) {
    const detail = lineDetail(line, q.currency, exp);
    rows.push(
      h(
        "tr",
        { class: `line line-${line.type}`, dataset: { priceId: line.priceId ?? "", type: line.type } },
        h("th", { scope: "row" }, h("span", { class: "desc", text: line.description }), detail ? h("span", { class: "detail", text: detail }) : null),
        h("td", { class: "num", dataset: { amount: line.amount }, text: money(line.amount, q.currency) }),
      ),
    );
    if (line.tiers && line.tiers.length) {
      line.tiers.forEach((t, k) => {
        rows.push(
          h(
            "tr",
            { class: "tier" },
            h("th", { scope: "row" }, h("span", { class: "detail", text: `${tierLabel(line.tiers, k)}: ${group(t.quantity)}${tierUnit(line)}` })),
            h("td", { class: "num detail", dataset: { tierAmount: t.amount }, text: money(t.amount, q.currency, exp) }),
          ),
        );
      });
    }
  }
  const foot = [h("tr", { class: "subtotal" }, h("th", { scope: "row", text: "Subtotal" }), h("td", { class: "num", dataset: { subtotal: q.subtotal }, text: money(q.subtotal, q.currency) }))];
  if (!isZero(q.discount)) foot.push(h("tr", {}, h("th", { scope: "row", text: "Discount" }), h("td", { class: "num", text: `−${money(q.discount, q.currency)}` })));
  foot.push(h("tr", { class: "grand" }, h("th", { scope: "row", text: "Total" }), h("td", { class: "num", text: money(q.total, q.currency) })));
  const table = h(
    "table",
    { class: "lines" },
    h("caption", { class: "visually-hidden", text: `Invoice lines of ${plan.name}` }),
    h("thead", { class: "visually-hidden" }, h("tr", {}, h("th", { scope: "col", text: "Item" }), h("th", { scope: "col", text: "Amount" }))),
    h("tbody", {}, rows),
    h("tfoot", {}, foot),
  );
  return h(
    "article",
    {
      class: `plan${cheapest?.best ? " best" : ""}`,
      style: `--c:${color}`,
      dataset: { planId: plan.id, periodTotal: q.total, bills: f.bills, usageFactor: f.usage },
      "aria-labelledby": `plan-${i}-h`,
    },
    head,
    meta,
    totalEl,
    notes,
    invoiceHead,
    table,
  );
}

function renderPlans() {
  const results = state.view.plans.map((plan) => {
    try {
      const q = planQuote(plan.id, state.usage);
      return { plan, q, total: comparedTotal(plan.id, q) };
    } catch (e) {
      return { plan, error: e };
    }
  });
  // The lowest total per currency, compared exactly.
  const best = new Map();
  for (const r of results) {
    if (!r.q) continue;
    const b = best.get(r.q.currency);
    if (!b || compare(r.total, b.total) < 0) best.set(r.q.currency, r);
  }
  const grid = $("plans");
  grid.replaceChildren(
    ...results.map((r, i) => {
      let cheapest = null;
      if (r.q) {
        const b = best.get(r.q.currency);
        const peers = results.filter((x) => x.q && x.q.currency === r.q.currency);
        const allEqual = peers.every((x) => compare(x.total, b.total) === 0);
        const isBest = compare(r.total, b.total) === 0 && !allEqual && peers.length > 1;
        cheapest = { best: isBest, name: b.plan.name, diff: compare(r.total, b.total) > 0 ? sub(r.total, b.total) : null };
      }
      const card = planCard(r.plan, i, r.q, r.error, cheapest);
      card.querySelector("h3").id = `plan-${i}-h`;
      return card;
    }),
  );
  const summary = [];
  for (const [, b] of best) {
    const peers = results.filter((x) => x.q && x.q.currency === b.q.currency);
    if (peers.length > 1 && !peers.every((x) => compare(x.total, b.total) === 0)) {
      summary.push(`Lowest for this usage: ${b.plan.name}, ${money(b.total, b.q.currency, decimalsOf(b.q.total))} per ${comparedPer(b.plan)}.`);
    } else if (peers.length > 1) summary.push(`All plans cost ${money(b.total, b.q.currency, decimalsOf(b.q.total))} per ${comparedPer(b.plan)} for this usage.`);
  }
  const text = summary.join(" ");
  if ($("summary").textContent !== text) $("summary").textContent = text;
}

// ------------------------------------------------------------------------------------------
// Chart

function buildChartSelect() {
  const select = $("chart-metric");
  select.replaceChildren(...state.view.metrics.map((m) => h("option", { value: m.id, text: m.name })));
  select.disabled = state.view.metrics.length === 0;
  if (state.chartMetric) select.value = state.chartMetric;
  const legend = $("legend");
  legend.replaceChildren(
    ...state.view.plans.map((p, i) =>
      h(
        "li",
        {},
        svgSwatch(planColor(i), DASHES[i % DASHES.length]),
        h("span", { text: p.name }),
        h("span", { class: "muted small", text: state.periods ? ` ${p.per === state.periods.target ? `per ${p.per}` : `${state.periods.factors.get(p.id).bills} ${p.per}s`}` : ` per ${p.per}` }),
      ),
    ),
  );
  const pers = new Set(state.view.plans.map((p) => p.per));
  const currencies = new Set(state.view.plans.map((p) => p.currency));
  const notes = [];
  if (state.periods) {
    const { base, target } = state.periods;
    notes.push(
      `Plans bill per ${[...pers].join(" and per ")}: usage is set per ${base} and every plan is compared over a ${target} — ` +
        `a plan billed per ${base} is counted once for each ${base}, a plan billed per ${target} gets a whole ${target} of usage ` +
        `(sums and counts grow with the period; levels such as averages and maxima do not).`,
    );
  } else if (pers.size > 1) notes.push(`Plans bill over different periods (${[...pers].join(", ")}) that do not divide each other: each is shown for one of its own billing periods with the usage set here.`);
  if (currencies.size > 1) notes.push(`Plans are in different currencies (${[...currencies].join(", ")}); only plans of one currency are compared.`);
  $("chart-note").textContent = notes.join(" ");
}

function svgSwatch(color, dash) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "28");
  svg.setAttribute("height", "10");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS(ns, "line");
  for (const [k, v] of Object.entries({ x1: 1, x2: 27, y1: 5, y2: 5, stroke: color, "stroke-width": 3, "stroke-linecap": "round" })) line.setAttribute(k, v);
  if (dash) line.setAttribute("stroke-dasharray", dash);
  svg.append(line);
  return svg;
}

function chartRange(m) {
  const current = Number(state.usage[m.id]) || 0;
  let max = m.max;
  while (current > max && max < 1e18) max *= 10;
  return max;
}

function renderChart() {
  const svg = $("chart");
  const m = state.view.metrics.find((x) => x.id === state.chartMetric);
  const box = $("chart-box");
  const width = Math.max(300, Math.floor(box.clientWidth || 640));
  const height = width < 520 ? 260 : 340;
  if (!m) {
    svg.replaceChildren();
    $("chart-desc").textContent = "No billable metric to vary.";
    $("crossovers").replaceChildren();
    return;
  }
  const max = chartRange(m);
  const others = { ...state.usage };
  delete others[m.id];
  const key = `${m.id}|${max}|${usageKey(others)}`;
  if (state.chartKey !== key) {
    const xs = samplePoints(m, max);
    const totals = sweep(total, state.view.plans, m, others, xs);
    const found = crossovers(total, state.view.plans, m, others, xs, totals);
    state.chartData = { xs, totals, found, max };
    state.chartKey = key;
  }
  const { xs, totals, found } = state.chartData;
  const scale = 10 ** m.decimals;
  const planName = new Map(state.view.plans.map((p) => [p.id, p.name]));
  const unit = plural(m.unit);
  const statements = found.map((c, i) => ({
    ...c,
    n: i + 1,
    text: `${planName.get(c.winner)} beats ${planName.get(c.loser)} above ${group(c.threshold)} ${unit}${state.periods ? ` per ${state.periods.base}` : ""}`,
  }));
  const currency = state.view.plans[0]?.currency ?? "USD";
  drawChart(svg, {
    width,
    height,
    xs: xs.map((x) => Number(x) / scale),
    series: state.view.plans.map((p, i) => ({ plan: p, color: planColor(i), dash: DASHES[i % DASHES.length], values: totals.get(p.id) })),
    log: m.log,
    ylog: $("chart-ylog").checked,
    xMax: max,
    current: Number(state.usage[m.id]) || 0,
    marks: statements.map((s) => ({ x: Number(s.atUnits) / scale, total: s.total, n: s.n, label: s.text })),
    currency,
    xLabel: `${m.name} (${unit}${state.periods ? ` per ${state.periods.base}` : ""}${m.log ? ", log scale" : ""})`,
    yLabel: `Total per ${state.periods ? state.periods.target : "billing period"} (${currency}${$("chart-ylog").checked ? ", log scale" : ""})`,
  });
  const others2 = state.view.metrics.filter((x) => x.id !== m.id);
  $("chart-desc").textContent =
    `Total of each plan as ${m.name} goes from 0 to ${group(String(max))} ${unit}` +
    (others2.length ? `, with ${others2.map((o) => `${o.name} at ${group(state.usage[o.id])}`).join(", ")}.` : ".") +
    " The dashed vertical line is the current usage; numbered circles are crossovers.";
  const list = $("crossovers");
  if (statements.length === 0) {
    list.replaceChildren(h("li", { class: "none muted", text: `No crossovers from 0 to ${group(String(max))} ${unit}: the order of the plans does not change.` }));
  } else {
    list.replaceChildren(
      ...statements.map((s) =>
        h(
          "li",
          { dataset: { winner: s.winner, loser: s.loser, threshold: s.threshold } },
          h("span", { class: "marker", "aria-hidden": "true", text: String(s.n) }),
          h("span", { text: `${s.text}.` }),
        ),
      ),
    );
  }
}

// ------------------------------------------------------------------------------------------
// Custom catalogs

function showProblems(problems) {
  const box = $("custom-result");
  box.replaceChildren(
    h("p", { class: "problems-title", text: `${problems.length} problem${problems.length === 1 ? "" : "s"} found — the catalog was not loaded.` }),
    h(
      "ul",
      { class: "problems" },
      problems.map((p) =>
        h(
          "li",
          { dataset: { path: p.path, code: p.code } },
          h("code", { class: "path", text: p.path === "" ? "(whole document)" : p.path }),
          h("span", { class: "code", text: p.code }),
          h("span", { class: "message", text: p.message }),
        ),
      ),
    ),
  );
  box.className = "result error";
}

function loadCustom() {
  const text = $("custom-json").value;
  if (text.trim() === "") {
    showProblems([{ code: "empty", path: "", message: "paste a catalog or upload a file first" }]);
    return;
  }
  const problems = loadCatalog(text, {}, "custom", "Your catalog");
  if (problems.length) {
    showProblems(problems);
    return;
  }
  const box = $("custom-result");
  box.className = "result ok";
  box.replaceChildren(h("p", { text: `Loaded: ${state.view.plans.length} plan${state.view.plans.length === 1 ? "" : "s"} to compare.` }));
}

function selectSource(key) {
  const custom = key === "custom";
  $("custom").hidden = !custom;
  if (custom) return;
  const b = state.builtins[key];
  if (!b || b.error) {
    $("catalog-info").textContent = `${BUILTIN[key].label} could not be loaded: ${b?.error ?? "not fetched"}.`;
    return;
  }
  const problems = loadCatalog(b.text, b.usage, key, BUILTIN[key].label);
  if (problems.length) $("catalog-info").textContent = `${BUILTIN[key].label}: ${problems.length} problem(s), first ${problems[0].path} ${problems[0].code}.`;
}

function showFatal(e) {
  const box = $("plans");
  box.replaceChildren(h("p", { class: "plan-error", role: "alert", text: `Something went wrong: ${e && e.message ? e.message : e}` }));
}

// ------------------------------------------------------------------------------------------
// Start

async function start() {
  try {
    state.tollgate = await import("/pkg/browser.js");
  } catch (e) {
    $("metrics").replaceChildren(h("p", { class: "plan-error", role: "alert", text: `The pricing engine could not be loaded (${e.message}). Is the package built into /pkg/?` }));
    return;
  }
  await fetchBuiltins();
  for (const input of document.querySelectorAll('input[name="catalog"]')) {
    input.addEventListener("change", () => input.checked && selectSource(input.value));
  }
  $("chart-metric").addEventListener("change", (e) => {
    state.chartMetric = e.target.value;
    render();
  });
  $("chart-ylog").addEventListener("change", render);
  $("custom-load").addEventListener("click", loadCustom);
  $("custom-file").addEventListener("change", async (e) => {
    const file = e.target.files?.[0];
    if (!file) return;
    try {
      $("custom-json").value = await file.text();
      loadCustom();
    } catch (err) {
      showProblems([{ code: "unreadable_file", path: "", message: String(err.message || err) }]);
    }
    e.target.value = "";
  });
  $("custom-example").addEventListener("click", () => {
    $("custom-json").value = state.builtins.llm?.text ?? "";
    $("custom-json").focus();
  });
  let lastWidth = 0;
  new ResizeObserver((entries) => {
    const w = Math.floor(entries[0].contentRect.width);
    if (w !== lastWidth) {
      lastWidth = w;
      if (state.view) render();
    }
  }).observe($("chart-box"));

  const first = Object.keys(BUILTIN).find((k) => state.builtins[k] && !state.builtins[k].error);
  if (first) {
    document.getElementById(`catalog-${first}`).checked = true;
    selectSource(first);
  } else {
    document.getElementById("catalog-custom").checked = true;
    selectSource("custom");
    $("metrics").replaceChildren(h("p", { class: "muted small", text: "The example catalogs could not be fetched; load your own." }));
  }
  document.documentElement.dataset.ready = "true";
}

start().catch(showFatal);
