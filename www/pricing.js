// What the calculator reads from a catalog (plans, billable metrics, a sensible range for each
// metric) and the sweeps behind the chart: totals along one metric, and the quantities where
// one plan starts to beat another, found by bisection on quote totals compared as exact
// decimals. No DOM here, so it runs in Node too.

import { compare } from "./decimal.js";

const CADENCES = { P1D: "day", P1W: "week", P1M: "month", P3M: "quarter", P1Y: "year" };

/** "month" for P1M, or the cadence itself when it has no word. */
export function cadenceWord(cadence) {
  return CADENCES[cadence] ?? cadence;
}

/** A unit in the plural, for sentences: token → tokens, GB-month → GB-months, GB → GB. */
export function plural(unit) {
  if (!unit) return "units";
  return /[a-z]$/.test(unit) && !/s$/.test(unit) ? `${unit}s` : unit;
}

function num(x) {
  const n = Number(x);
  return Number.isFinite(n) ? n : 0;
}

/** The powers of ten at or above x (at least 10). */
function ceilPow10(x) {
  let p = 10;
  while (p < x && p < 1e15) p *= 10;
  return p;
}

function unitPrices(model) {
  if (!model || typeof model !== "object") return [];
  switch (model.type) {
    case "per_unit":
      return [num(model.unitPrice)];
    case "package":
      return [num(model.packagePrice) / Math.max(1, num(model.packageSize))];
    case "graduated":
    case "volume":
      return (model.tiers ?? []).map((t) => num(t.unitPrice));
    case "percentage":
      return [num(model.rate)];
    case "graduated_percentage":
      return (model.tiers ?? []).map((t) => num(t.rate));
    case "matrix":
      return [...Object.values(model.cells ?? {}), model.default].flatMap(unitPrices);
    default:
      return [];
  }
}

function bounds(model) {
  if (!model || typeof model !== "object") return [];
  const out = [];
  for (const t of model.tiers ?? []) if (t.upTo !== null && t.upTo !== undefined) out.push(num(t.upTo));
  if (model.type === "package") out.push(num(model.packageSize) * 10, num(model.freeUnits));
  if (model.type === "percentage") out.push(num(model.freeAmount));
  if (model.type === "matrix") for (const m of [...Object.values(model.cells ?? {}), model.default]) out.push(...bounds(m));
  return out;
}

/**
 * The calculator's view of a (valid) catalog, parsed by JSON.parse: plans, and the billable
 * metrics some plan prices, each with a slider range. The range only places sliders and the
 * chart's x axis (floats are fine there); it reaches past every tier bound and allowance, and
 * far enough for the metric alone to cost the largest commitment or fee of the catalog.
 */
export function describeCatalog(catalog, initialUsage = {}) {
  const plans = (catalog.plans ?? []).map((p) => ({
    id: p.id,
    name: p.name || p.id,
    currency: p.currency,
    cadence: p.billingCadence,
    per: cadenceWord(p.billingCadence),
  }));
  let scale = 100;
  for (const p of catalog.plans ?? []) {
    scale = Math.max(scale, num(p.minimumCommitment));
    let fees = 0;
    for (const price of p.prices ?? []) if (price.feeId && price.model?.type === "flat") fees += num(price.model.amount) * num(price.quantity ?? 1);
    scale = Math.max(scale, fees);
  }
  const priced = new Set();
  for (const p of catalog.plans ?? []) for (const price of p.prices ?? []) if (price.metricId) priced.add(price.metricId);
  const metrics = [];
  for (const m of catalog.billableMetrics ?? []) {
    if (!priced.has(m.id)) continue;
    const reach = [1000, num(initialUsage[m.id]) * 10];
    for (const p of catalog.plans ?? []) {
      for (const price of p.prices ?? []) {
        if (price.metricId !== m.id) continue;
        for (const b of bounds(price.model)) reach.push(b * 10);
        const e = price.feature?.entitlement;
        if (e?.issueAfterReset !== undefined) reach.push(num(e.issueAfterReset) * 10);
        for (const u of unitPrices(price.model)) if (u > 0) reach.push((scale / u) * 2);
      }
    }
    const max = ceilPow10(Math.max(...reach.filter(Number.isFinite)));
    metrics.push({
      id: m.id,
      name: m.name || m.id,
      unit: m.unit || "",
      aggregation: m.aggregation,
      max,
      log: max > 1000,
      // Counts are whole; other small ranges (hours, GB) are bisected to a hundredth.
      decimals: max > 1000 || m.aggregation === "COUNT" || m.aggregation === "UNIQUE_COUNT" ? 0 : 2,
    });
  }
  return { plans, metrics };
}

// Cadences that divide each other: months and days. A week does not divide a month or a year,
// nor a day a month; plans with such cadences are compared per billing period as they are.
const LENGTHS = [
  { P1M: 1, P3M: 3, P1Y: 12 },
  { P1D: 1, P1W: 7 },
];

/**
 * How to compare plans that bill over different periods: usage is entered per the shortest
 * period (base) and every plan is compared over the longest (target). A plan billed every
 * `months` is quoted with its period's usage — quantities of SUM and COUNT metrics grow with
 * the period (× `usage`), levels (AVG, MIN, MAX, LATEST, UNIQUE_COUNT, WEIGHTED_SUM) do not —
 * and its total is counted `bills` times in the target period. Null when every plan has the
 * same cadence or the cadences do not divide each other.
 */
export function comparisonPeriods(plans) {
  const cadences = new Set(plans.map((p) => p.cadence));
  if (cadences.size < 2) return null;
  const table = LENGTHS.find((t) => [...cadences].every((c) => c in t));
  if (!table) return null;
  const lengths = [...cadences].map((c) => table[c]);
  const base = Math.min(...lengths);
  const target = Math.max(...lengths);
  const word = (n) => cadenceWord(Object.keys(table).find((c) => table[c] === n));
  const factors = new Map(plans.map((p) => [p.id, { usage: table[p.cadence] / base, bills: target / table[p.cadence] }]));
  return { base: word(base), target: word(target), factors };
}

/** Whether a metric's quantity for a longer period is the sum of its shorter periods'. */
export function additive(metric) {
  return metric.aggregation === "SUM" || metric.aggregation === "COUNT";
}

/** A quantity in units of 10^-decimals (BigInt) as a decimal string. */
export function fromUnits(units, decimals) {
  if (decimals === 0) return units.toString();
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, "0");
  const text = `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`.replace(/\.?0+$/, "");
  return (negative ? "-" : "") + text;
}

/** A decimal string as units of 10^-decimals, truncated; null when it is not a number. */
export function toUnits(text, decimals) {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!m || (m[2] === "" && !m[3])) return null;
  const frac = (m[3] ?? "").slice(0, decimals).padEnd(decimals, "0");
  const units = BigInt((m[2] || "0") + frac);
  return m[1] ? -units : units;
}

/** Where the slider sits (0…1000) for a quantity, and back; log sliders use log10(1 + q). */
export const STEPS = 1000;

export function positionOf(metric, quantity) {
  const q = Math.max(0, Number(quantity) || 0);
  const t = metric.log ? Math.log10(1 + q) / Math.log10(1 + metric.max) : q / metric.max;
  return Math.round(Math.min(1, t) * STEPS);
}

/** Two significant digits (a slider's values are round numbers: 2,400,000 rather than 2,398,833). */
function roundNice(q) {
  if (q < 100) return Math.round(q);
  const p = 10 ** (Math.floor(Math.log10(q)) - 1);
  return Math.round(q / p) * p;
}

export function quantityAt(metric, position) {
  const t = Math.min(STEPS, Math.max(0, position)) / STEPS;
  if (!metric.log) {
    const q = t * metric.max;
    return metric.decimals ? String(Math.round(q * 100) / 100) : String(Math.round(q));
  }
  return String(roundNice(10 ** (t * Math.log10(1 + metric.max)) - 1));
}

/** The x positions of a sweep, in units: 0, then evenly spaced (on the log scale when log). */
export function samplePoints(metric, max, count = 160) {
  const top = Math.max(1, max);
  const points = new Set([0n]);
  for (let i = 1; i <= count; i++) {
    const t = i / count;
    const q = metric.log ? 10 ** (t * Math.log10(1 + top)) - 1 : t * top;
    points.add(BigInt(Math.round(q * 10 ** metric.decimals)));
  }
  return [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Totals of every plan along one metric, the others held at `usage`. `total(planId, usage)`
 * returns the quote's total (a decimal string) or throws; a point that throws is null.
 */
export function sweep(total, plans, metric, usage, xs) {
  const out = new Map();
  for (const plan of plans) {
    out.set(
      plan.id,
      xs.map((x) => {
        try {
          return total(plan.id, { ...usage, [metric.id]: fromUnits(x, metric.decimals) });
        } catch {
          return null;
        }
      }),
    );
  }
  return out;
}

/**
 * Every place along the sweep where one plan becomes strictly cheaper than another of the same
 * currency. A change of order between two samples is narrowed by bisection down to one unit of
 * the metric (0.01 for small ranges): `threshold` is the largest quantity where the winner is
 * not yet cheaper, so "winner beats loser above threshold". Ties (equal rounded totals) are not
 * an order: a change is only counted from one strict order to the other.
 */
export function crossovers(total, plans, metric, usage, xs, totals) {
  const found = [];
  const at = (planId, x) => {
    try {
      return total(planId, { ...usage, [metric.id]: fromUnits(x, metric.decimals) });
    } catch {
      return null;
    }
  };
  for (let i = 0; i < plans.length; i++) {
    for (let j = i + 1; j < plans.length; j++) {
      const a = plans[i];
      const b = plans[j];
      if (a.currency !== b.currency) continue;
      const ta = totals.get(a.id);
      const tb = totals.get(b.id);
      let last = null; // { sign, x } of the last sample with a strict order
      for (let k = 0; k < xs.length; k++) {
        if (ta[k] === null || tb[k] === null) continue;
        const sign = compare(ta[k], tb[k]);
        if (sign === 0) continue;
        if (last && sign !== last.sign) {
          // P(x): the order at x is the new one. P(lo) is false, P(hi) is true.
          let lo = last.x;
          let hi = xs[k];
          while (hi - lo > 1n) {
            const mid = (lo + hi) / 2n;
            const va = at(a.id, mid);
            const vb = at(b.id, mid);
            if (va !== null && vb !== null && compare(va, vb) === sign) hi = mid;
            else lo = mid;
          }
          const winner = sign < 0 ? a : b;
          const loser = sign < 0 ? b : a;
          found.push({
            winner: winner.id,
            loser: loser.id,
            threshold: fromUnits(lo, metric.decimals),
            at: fromUnits(hi, metric.decimals),
            atUnits: hi,
            total: at(winner.id, hi),
          });
        }
        last = { sign, x: xs[k] };
      }
    }
  }
  found.sort((p, q) => (p.atUnits < q.atUnits ? -1 : p.atUnits > q.atUnits ? 1 : 0));
  return found;
}
