// Exact decimal strings for the calculator: parse, compare, add, subtract, group digits.
// Values are a BigInt `n` and a `scale` (value = n / 10^scale); nothing here ever becomes a
// float. Amounts come out of the engine as strings and are shown from these strings only.

const SHAPE = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/;
const MAX_EXPONENT = 400;

/** Parses "12.50", "-3", "1e6", ".5" into { n, scale }; null when it is not a decimal. */
export function parse(text) {
  const m = SHAPE.exec(String(text).trim());
  if (!m) return null;
  const int = m[2] ?? "";
  const frac = m[3] ?? "";
  if (int === "" && frac === "") return null;
  const exponent = Number(m[4] ?? 0);
  if (Math.abs(exponent) > MAX_EXPONENT) return null;
  let n = BigInt(int + frac || "0");
  let scale = frac.length - exponent;
  if (scale < 0) {
    n *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { n: m[1] === "-" ? -n : n, scale };
}

function need(text) {
  const d = typeof text === "object" && text !== null ? text : parse(text);
  if (!d) throw new TypeError(`not a decimal: ${JSON.stringify(text)}`);
  return d;
}

function aligned(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [a.n * 10n ** BigInt(scale - a.scale), b.n * 10n ** BigInt(scale - b.scale), scale];
}

/** Plain notation without trailing zeros after the point: "1600", "0.0001", "-2.5". */
export function toPlain(d) {
  let { n, scale } = need(d);
  while (scale > 0 && n % 10n === 0n) {
    n /= 10n;
    scale--;
  }
  const negative = n < 0n;
  let digits = (negative ? -n : n).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return negative ? `-${digits}` : digits;
}

/** -1, 0 or 1, exactly. */
export function compare(a, b) {
  const [x, y] = aligned(need(a), need(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

export function add(a, b) {
  const [x, y, scale] = aligned(need(a), need(b));
  return toPlain({ n: x + y, scale });
}

export function sub(a, b) {
  const [x, y, scale] = aligned(need(a), need(b));
  return toPlain({ n: x - y, scale });
}

/** a × an integer (BigInt or whole number). */
export function timesInteger(a, k) {
  const d = need(a);
  return toPlain({ n: d.n * BigInt(k), scale: d.scale });
}

export function isZero(a) {
  return need(a).n === 0n;
}

export function isNegative(a) {
  return need(a).n < 0n;
}

/** Digits after the point as written ("10000.00" → 2). */
export function decimalsOf(text) {
  const dot = String(text).indexOf(".");
  return dot < 0 ? 0 : String(text).length - dot - 1;
}

/**
 * Groups the integer digits of a decimal string in threes ("1234567.5" → "1,234,567.5"),
 * padding the fraction with zeros up to `minDecimals` (which never changes the value). The
 * text is converted to plain notation first; nothing else about it changes.
 */
export function group(text, minDecimals = 0) {
  let plain = String(text);
  if (!/^-?\d+(\.\d+)?$/.test(plain)) plain = toPlain(plain);
  const negative = plain.startsWith("-");
  if (negative) plain = plain.slice(1);
  let [int, frac = ""] = plain.split(".");
  if (frac.length < minDecimals) frac = frac.padEnd(minDecimals, "0");
  int = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative ? "−" : "") + int + (frac ? `.${frac}` : "");
}

const symbols = new Map();

/** The currency's symbol and where it goes, from the browser's locale data (no amount involved). */
function currencyStyle(currency) {
  if (!symbols.has(currency)) {
    let style = { symbol: `${currency} `, before: true };
    try {
      const parts = new Intl.NumberFormat("en-US", { style: "currency", currency }).formatToParts(0);
      const i = parts.findIndex((p) => p.type === "currency");
      const first = parts.findIndex((p) => p.type === "integer");
      if (i >= 0) {
        const sym = parts[i].value;
        style = { symbol: /^[A-Z]{3}$/.test(sym) ? `${sym} ` : sym, before: i < first };
      }
    } catch {
      // an unknown code: keep "XYZ 1.00"
    }
    symbols.set(currency, style);
  }
  return symbols.get(currency);
}

/** "$1,600.00" from the string "1600.00" (the engine's rounded amount) and "USD". */
export function money(amount, currency, minDecimals = 0) {
  const { symbol, before } = currencyStyle(currency);
  const grouped = group(amount, minDecimals);
  const negative = grouped.startsWith("−");
  const body = negative ? grouped.slice(1) : grouped;
  const text = before ? symbol + body : `${body} ${symbol.trim()}`;
  return negative ? `−${text}` : text;
}
