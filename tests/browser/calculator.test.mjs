// The pricing calculator (www/) in headless Chromium, driven by playwright-core, against the
// CLI: every total (and line, and tier) the page shows must be what `tollgate quote --json`
// prints for the same usage; every crossover it states must hold on both sides of its
// threshold; a broken catalog must list the problems `tollgate validate --json` finds.
// Prints one line per check and `browser: N passed, N failed`; exits 1 on any failure.
//   node tests/browser/calculator.test.mjs   (tests/browser/run.sh builds what it needs first)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "./server.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const require = createRequire(join(root, "tests/js/package.json"));
const { chromium } = require("playwright-core");

const cli = process.env.TOLLGATE_CLI ?? ["debug", "release"].map((p) => join(root, "target", p, "tollgate")).find((p) => existsSync(p));
const artifacts = join(root, "target/artifacts");
mkdirSync(artifacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "tollgate-www-"));
const catalogs = {
  llm: join(root, "examples/llm-provider.catalog.json"),
  cloud: join(root, "examples/cloud-analytics.catalog.json"),
};

// ---------------------------------------------------------------------------------------------
// Checks and their report

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
  if (!ok && detail) console.log(`     ${String(detail).split("\n").join("\n     ")}`);
  return ok;
}
async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.stack || e);
  }
}

// ---------------------------------------------------------------------------------------------
// Exact decimals, independent of the page's own code

function dec(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a plain decimal: ${text}`);
  const frac = m[3] ?? "";
  const n = BigInt(m[2] + frac);
  return { n: m[1] ? -n : n, scale: frac.length };
}
function cmp(a, b) {
  const x = dec(a);
  const y = dec(b);
  const s = Math.max(x.scale, y.scale);
  const l = x.n * 10n ** BigInt(s - x.scale);
  const r = y.n * 10n ** BigInt(s - y.scale);
  return l < r ? -1 : l > r ? 1 : 0;
}
/** "1447.30" × 12 → equal as a decimal to the page's figure? */
function equalsTimes(shown, amount, k) {
  const a = dec(amount);
  return cmp(shown, fromScaled(a.n * BigInt(k), a.scale)) === 0;
}
function fromScaled(n, scale) {
  const neg = n < 0n;
  let digits = (neg ? -n : n).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? "-" : "") + digits;
}
/** Adds a whole number to a decimal string (quantities near a crossover). */
function plusUnits(text, units, decimals) {
  const d = dec(text);
  const scale = Math.max(d.scale, decimals);
  const n = d.n * 10n ** BigInt(scale - d.scale) + BigInt(units) * 10n ** BigInt(scale - decimals);
  return fromScaled(n, scale);
}
function usdText(amount) {
  const [int, frac] = amount.split(".");
  return `$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${frac !== undefined ? `.${frac}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// The CLI

let usageFiles = 0;
function cliQuote(catalog, planId, usage) {
  const file = join(work, `usage-${usageFiles++}.json`);
  writeFileSync(file, JSON.stringify(usage));
  return JSON.parse(execFileSync(cli, ["quote", "--catalog", catalog, "--plan", planId, "--usage", file, "--json"], { encoding: "utf8" }));
}
function cliValidate(file) {
  try {
    return JSON.parse(execFileSync(cli, ["validate", file, "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  } catch (e) {
    return JSON.parse(e.stdout);
  }
}

// The comparison the page makes when plans bill over different periods (docs/www.md): usage is
// per the shortest period, sums and counts scale to each plan's period, totals to the longest.
const MONTHS = { P1M: 1, P3M: 3, P1Y: 12 };
function periodFactors(catalog) {
  const cadences = new Set(catalog.plans.map((p) => p.billingCadence));
  const factors = new Map(catalog.plans.map((p) => [p.id, { usage: 1, bills: 1 }]));
  if (cadences.size > 1 && [...cadences].every((c) => c in MONTHS)) {
    const lengths = [...cadences].map((c) => MONTHS[c]);
    const base = Math.min(...lengths);
    const target = Math.max(...lengths);
    for (const p of catalog.plans) factors.set(p.id, { usage: MONTHS[p.billingCadence] / base, bills: target / MONTHS[p.billingCadence] });
  }
  return factors;
}
function scaledUsage(catalog, usage, factor) {
  const additive = new Set((catalog.billableMetrics ?? []).filter((m) => m.aggregation === "SUM" || m.aggregation === "COUNT").map((m) => m.id));
  const out = {};
  for (const [k, v] of Object.entries(usage)) {
    if (factor === 1 || !additive.has(k)) out[k] = v;
    else {
      const d = dec(v);
      out[k] = fromScaled(d.n * BigInt(factor), d.scale);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The page

async function renders(page) {
  return Number(await page.evaluate(() => document.documentElement.dataset.renders ?? 0));
}
/** Runs an action and waits until the page has rendered after it. */
async function settled(page, action) {
  const before = await renders(page);
  await action();
  await page.waitForFunction((b) => Number(document.documentElement.dataset.renders ?? 0) > b, before, { timeout: 15000 });
}
async function readUsage(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll(".metric")].map((m) => [m.dataset.metricId, m.querySelector("input[type=number]").value])));
}
async function readCards(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#plans article.plan")].map((card) => {
      const lines = [];
      for (const tr of card.querySelectorAll("table.lines tbody tr")) {
        if (tr.classList.contains("line")) lines.push({ priceId: tr.dataset.priceId, type: tr.dataset.type, amount: tr.querySelector("td").dataset.amount, tiers: [] });
        else if (tr.classList.contains("tier")) lines.at(-1).tiers.push(tr.querySelector("td").dataset.tierAmount);
      }
      return {
        planId: card.dataset.planId,
        periodTotal: card.dataset.periodTotal,
        bills: Number(card.dataset.bills),
        usageFactor: Number(card.dataset.usageFactor),
        total: card.querySelector(".amount")?.dataset.total,
        totalText: card.querySelector(".amount")?.textContent,
        subtotal: card.querySelector("[data-subtotal]")?.dataset.subtotal,
        lines,
      };
    }),
  );
}

/** Every card against the CLI for the usage the page shows. */
async function compareWithCli(page, key, label) {
  const catalog = JSON.parse(readFileSync(catalogs[key], "utf8"));
  const usage = await readUsage(page);
  const cards = await readCards(page);
  const factors = periodFactors(catalog);
  check(`${label}: one card per plan, in catalog order`, JSON.stringify(cards.map((c) => c.planId)) === JSON.stringify(catalog.plans.map((p) => p.id)), JSON.stringify(cards.map((c) => c.planId)));
  for (const card of cards) {
    const f = factors.get(card.planId);
    const q = cliQuote(catalogs[key], card.planId, scaledUsage(catalog, usage, f.usage));
    const lines = q.lines.map((l) => ({ priceId: l.priceId ?? "", type: l.type, amount: l.amount, tiers: (l.tiers ?? []).map((t) => t.amount) }));
    const same =
      card.periodTotal === q.total && card.subtotal === q.subtotal && JSON.stringify(card.lines) === JSON.stringify(lines) && card.usageFactor === f.usage && card.bills === f.bills && equalsTimes(card.total, q.total, f.bills);
    check(
      `${label}: ${card.planId} shows the CLI's quote (total ${q.total}${f.bills > 1 ? ` × ${f.bills}` : ""}${f.usage > 1 ? `, usage of sums × ${f.usage}` : ""}; ${q.lines.length} lines)`,
      same,
      `usage ${JSON.stringify(usage)}\npage ${JSON.stringify(card)}\ncli  ${JSON.stringify({ total: q.total, subtotal: q.subtotal, lines })}`,
    );
    if (f.bills === 1) check(`${label}: ${card.planId} total displayed as ${usdText(q.total)}`, card.totalText === usdText(q.total), card.totalText);
  }
  return { usage, cards };
}

// ---------------------------------------------------------------------------------------------

// The page's pure modules in Node: exact decimals, axis labels, periods, the bisection.
await step("modules", async () => {
  const d = await import("../../www/decimal.js");
  const { compactMoney } = await import("../../www/chart.js");
  const p = await import("../../www/pricing.js");
  const cases = [
    [d.compare("10.125", "10.13"), -1],
    [d.compare("1e3", "1000.000"), 0],
    [d.add("0.1", "0.2"), "0.3"],
    [d.sub("1447.30", "1557.30"), "-110"],
    [d.timesInteger("1447.30", 12), "17367.6"],
    [d.group("1234567.5", 2), "1,234,567.50"],
    [d.money("-3.00", "USD"), "−$3.00"],
    [d.money("1024", "JPY"), "¥1,024"],
    [d.money("0.000002", "USD"), "$0.000002"],
    [compactMoney("2500000", "USD"), "$2.5M"],
    [compactMoney("1000", "USD"), "$1K"],
    [compactMoney("0.05", "USD"), "$0.05"],
    [p.plural("GB-month") + p.plural("GB") + p.plural("token"), "GB-monthsGBtokens"],
  ];
  const bad = cases.filter(([got, want]) => got !== want);
  check(`decimal strings: compare, add, subtract, group, money (${cases.length} cases)`, bad.length === 0, JSON.stringify(bad));
  const periods = p.comparisonPeriods([
    { id: "m", cadence: "P1M" },
    { id: "y", cadence: "P1Y" },
  ]);
  check(
    "a monthly and a yearly plan are compared per year, usage per month",
    periods?.base === "month" && periods.target === "year" && periods.factors.get("m").bills === 12 && periods.factors.get("y").usage === 12 &&
      p.comparisonPeriods([{ id: "w", cadence: "P1W" }, { id: "m", cadence: "P1M" }]) === null,
    JSON.stringify(periods && [...periods.factors]),
  );
  // A: 10 + 0.002 q; B: 0.003 q, each rounded to cents. Exactly equal at 10,000; the rounded
  // totals stay equal up to 10,004 (30.008 and 30.012 are both 30.01); A is cheaper from 10,005.
  const cents = (x) => {
    const v = d.parse(x);
    const n = v.n * 100n;
    const s = 10n ** BigInt(v.scale);
    return d.toPlain({ n: (n + s / 2n) / s, scale: 2 });
  };
  const total = (plan, usage) => cents(plan === "a" ? d.add("10", d.timesInteger("0.002", BigInt(usage.q))) : d.timesInteger("0.003", BigInt(usage.q)));
  const plans = [{ id: "a", currency: "USD" }, { id: "b", currency: "USD" }];
  const metric = { id: "q", log: true, max: 1e6, decimals: 0 };
  const xs = p.samplePoints(metric, metric.max);
  const found = p.crossovers(total, plans, metric, {}, xs, p.sweep(total, plans, metric, {}, xs));
  check("bisection finds where one plan starts to beat another", found.length === 1 && found[0].winner === "a" && found[0].threshold === "10004" && found[0].at === "10005", JSON.stringify(found, (k, v) => (typeof v === "bigint" ? String(v) : v)));
  const m = { max: 1e11, log: true };
  check("log slider: positions and quantities round-trip", p.positionOf(m, p.quantityAt(m, 500)) === 500 && p.quantityAt(m, 0) === "0" && p.quantityAt(m, 1000) === "100000000000");
});

const { server, origin } = await serve(0);
const profile = mkdtempSync(join(tmpdir(), "tollgate-chromium-"));
let context;
const pageErrors = [];
try {
  if (!cli) throw new Error("no target/{release,debug}/tollgate: run `cargo build --bin tollgate` (tests/browser/run.sh does)");
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
    colorScheme: "light",
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(`console: ${m.text()}`));

  await step("load", async () => {
    await page.goto(`${origin}/`);
    await page.waitForSelector("html[data-ready][data-renders]", { timeout: 30000 });
    check(`page loads the package from /pkg/ and renders (chromium ${context.browser()?.version() ?? ""})`, true);
  });

  await step("accessibility", async () => {
    const a11y = await page.evaluate(() => {
      const unlabelled = [...document.querySelectorAll("input, select, textarea, button")]
        .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent.trim())))
        .map((el) => el.id || el.outerHTML.slice(0, 60));
      const headings = [...document.querySelectorAll("h1, h2, h3, h4")].map((h) => Number(h.tagName[1]));
      let skips = 0;
      for (let i = 1; i < headings.length; i++) if (headings[i] > headings[i - 1] + 1) skips++;
      return { unlabelled, h1: headings.filter((l) => l === 1).length, skips, svg: document.querySelector("#chart").getAttribute("role") };
    });
    check("every control has a label", a11y.unlabelled.length === 0, a11y.unlabelled.join(", "));
    check("one h1, no skipped heading level", a11y.h1 === 1 && a11y.skips === 0, JSON.stringify(a11y));
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(() => ({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle }));
    check("keyboard: the first Tab reaches the skip link, with a visible focus outline", /Skip/.test(focus.text) && focus.outline !== "none", JSON.stringify(focus));
  });

  await step("llm usage", async () => {
    // The number input…
    await settled(page, () => page.fill('.metric[data-metric-id="bm_input"] input[type=number]', "3500000"));
    const afterFill = await readUsage(page);
    const slider = await page.$eval('.metric[data-metric-id="bm_input"] input[type=range]', (r) => ({ value: Number(r.value), text: r.getAttribute("aria-valuetext") }));
    check("typing a quantity moves its slider", afterFill.bm_input === "3500000" && slider.value > 0 && slider.text === "3,500,000 tokens", JSON.stringify(slider));
    // …a slider by keyboard…
    const before = (await readUsage(page)).bm_output;
    await page.focus('.metric[data-metric-id="bm_output"] input[type=range]');
    for (let i = 0; i < 40; i++) await page.keyboard.press("ArrowRight");
    await settled(page, () => page.keyboard.press("PageUp"));
    const afterKeys = (await readUsage(page)).bm_output;
    check("arrow keys and PageUp on a slider change its quantity", afterKeys !== before && Number(afterKeys) > Number(before), `${before} → ${afterKeys}`);
    // …and a slider by mouse.
    const box = await page.locator('.metric[data-metric-id="bm_finetune"] input[type=range]').boundingBox();
    const beforeMouse = (await readUsage(page)).bm_finetune;
    await settled(page, () => page.mouse.click(box.x + box.width * 0.8, box.y + box.height / 2));
    const afterMouse = (await readUsage(page)).bm_finetune;
    check("clicking a slider's track changes its quantity", afterMouse !== beforeMouse, `${beforeMouse} → ${afterMouse}`);
    await compareWithCli(page, "llm", "llm");
  });

  await step("llm crossovers", async () => {
    const metric = await page.$eval("#chart-metric", (s) => s.value);
    const found = await page.$$eval("#crossovers li[data-winner]", (lis) => lis.map((li) => ({ ...li.dataset, text: li.lastElementChild.textContent })));
    const chart = await page.evaluate(() => ({ paths: document.querySelectorAll("#chart path[data-plan-id]").length, marks: document.querySelectorAll("#chart .crossover").length }));
    check(`chart: one line per plan and one mark per stated crossover (${found.length})`, chart.paths === 3 && chart.marks === found.length && found.length > 0, JSON.stringify(chart));
    const usage = await readUsage(page);
    for (const c of found) {
      const total = (plan, q) => cliQuote(catalogs.llm, plan, { ...usage, [metric]: q }).total;
      const atT = cmp(total(c.winner, c.threshold), total(c.loser, c.threshold));
      const next = plusUnits(c.threshold, 1, 0);
      const atNext = cmp(total(c.winner, next), total(c.loser, next));
      check(`crossover "${c.text}" holds: not cheaper at ${c.threshold}, cheaper at ${next} (CLI)`, atT >= 0 && atNext < 0, `at threshold ${atT}, at next ${atNext}`);
    }
    check("crossovers are stated in words", found.length > 0 && found.every((c) => /^.+ beats .+ above [\d,]+ tokens\.$/.test(c.text)), found.map((c) => c.text).join("\n"));
  });

  await step("screenshot", async () => {
    // Back to the example's fine-tuning hours, so the picture shows a typical month.
    await settled(page, () => page.fill('.metric[data-metric-id="bm_finetune"] input[type=number]', "10"));
    await page.evaluate(() => {
      document.activeElement?.blur();
      window.scrollTo(0, 0);
    });
    await page.screenshot({ path: join(artifacts, "calculator.png"), fullPage: true });
    check("screenshot saved to target/artifacts/calculator.png", existsSync(join(artifacts, "calculator.png")));
  });

  await step("cloud offline", async () => {
    // From here on the network is gone: everything the page needs came with the first load.
    let blocked = 0;
    await page.route("**/*", (route) => {
      blocked++;
      return route.abort();
    });
    await settled(page, () => page.click("label[for=catalog-cloud]"));
    await settled(page, () => page.fill('.metric[data-metric-id="bm_compute"] input[type=number]', "48000000"));
    await page.focus('.metric[data-metric-id="bm_egress"] input[type=range]');
    await settled(page, () => page.keyboard.press("PageDown"));
    check("switching catalogs needs no network", blocked === 0, `${blocked} requests`);
    const heading = await page.textContent("#usage-h");
    check("plans billed per month and per year are compared per year, usage per month", heading === "Usage per month", heading);
    await compareWithCli(page, "cloud", "cloud");
  });

  await step("broken catalog", async () => {
    await page.click("label[for=catalog-custom]");
    const broken = JSON.parse(readFileSync(catalogs.llm, "utf8"));
    broken.plans[0].currency = "usd";
    broken.plans[1].prices[0].metricId = "bm_missing";
    broken.plans[2].prices[1].model.tiers = [{ upTo: "1000", unitPrice: "0.1" }, { upTo: "500", unitPrice: "0.05" }, { upTo: null, unitPrice: "0.01" }];
    const text = JSON.stringify(broken, null, 2);
    const file = join(work, "broken.catalog.json");
    writeFileSync(file, text);
    const expected = cliValidate(file).problems.map((p) => `${p.path} ${p.code}`).sort();
    await page.fill("#custom-json", text);
    await page.click("#custom-load");
    await page.waitForSelector("#custom-result li", { timeout: 10000 });
    const shown = await page.$$eval("#custom-result li", (lis) => lis.map((li) => ({ path: li.querySelector(".path").textContent, code: li.querySelector(".code").textContent, message: li.querySelector(".message").textContent })));
    const got = shown.map((p) => `${p.path} ${p.code}`).sort();
    check(`a broken catalog lists the CLI's ${expected.length} problems with paths and codes`, expected.length >= 3 && JSON.stringify(got) === JSON.stringify(expected), `page ${JSON.stringify(got)}\ncli  ${JSON.stringify(expected)}`);
    check("each problem has a message", shown.every((p) => p.message.length > 0));
    const still = await readCards(page);
    check("the calculator keeps the catalog it had", still.length === 3 && still[0].planId === "plan_on_demand", JSON.stringify(still.map((c) => c.planId)));

    await page.fill("#custom-json", '{"schemaVersion": 1, "plans": [');
    await page.click("#custom-load");
    await page.waitForFunction(() => document.querySelector("#custom-result li")?.dataset.code === "invalid_json", null, { timeout: 10000 });
    const bad = await page.$eval("#custom-result li", (li) => li.textContent);
    check("text that is not JSON is reported, not thrown", /invalid_json/.test(bad) && /whole document/.test(bad), bad);
  });

  await step("upload", async () => {
    const mine = JSON.parse(readFileSync(catalogs.llm, "utf8"));
    mine.plans = mine.plans.slice(0, 2);
    mine.plans[1].name = "Scale";
    await settled(page, () => page.setInputFiles("#custom-file", { name: "mine.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(mine)) }));
    const cards = await readCards(page);
    const ok = await page.textContent("#custom-result");
    check("an uploaded catalog is validated and priced", cards.length === 2 && /Loaded/.test(ok) && cards.every((c) => /^\d+\.\d\d$/.test(c.total)), `${ok} ${JSON.stringify(cards.map((c) => c.total))}`);
  });

  await step("mobile", async () => {
    await settled(page, () => page.click("label[for=catalog-llm]"));
    await settled(page, () => page.setViewportSize({ width: 375, height: 812 }));
    await page.waitForTimeout(200);
    const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, chart: document.querySelector("#chart").getBoundingClientRect().right }));
    check("at 375 px wide nothing overflows sideways", widths.doc <= 375 && widths.chart <= 375, JSON.stringify(widths));
    await page.screenshot({ path: join(artifacts, "calculator-mobile.png"), fullPage: true });
  });

  check("no uncaught error or console error in the page", pageErrors.length === 0, pageErrors.join("\n"));
} catch (e) {
  check("browser run", false, e.stack || e);
} finally {
  await context?.close().catch(() => {});
  server.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
