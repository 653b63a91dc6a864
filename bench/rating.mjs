// The graduated-tier rating benchmark: Tollgate's `quote` on a one-price plan against the same
// formula written in JS with decimal.js (what JS billing code does), on the same quantities.

/** Tiers of the one price (SPEC §3.2 `graduated`; bounds inclusive above, last one open). */
export const TIERS = [
  { upTo: "1000", unitPrice: "0.10", flatPrice: "0" },
  { upTo: "10000", unitPrice: "0.08", flatPrice: "5" },
  { upTo: "100000", unitPrice: "0.0615", flatPrice: "2.50" },
  { upTo: null, unitPrice: "0.04235", flatPrice: "0" },
];

/** A snapshot whose catalog has one plan with one graduated usage price, and no customers. */
export function ratingSnapshot() {
  return {
    snapshotVersion: 1,
    issuedAt: "2026-11-01T00:00:00Z",
    catalog: {
      schemaVersion: 1,
      catalogVersion: 1,
      products: [{ id: "prod_api", name: "API" }],
      features: [],
      billableMetrics: [
        { id: "bm_units", productId: "prod_api", name: "Units", unit: "unit", eventType: "api.call",
          aggregation: "SUM", valueProperty: "$.units" },
      ],
      plans: [
        { id: "plan_graduated", productId: "prod_api", name: "Graduated", currency: "USD", billingCadence: "P1M",
          prices: [{ id: "price_units", metricId: "bm_units", paymentTerm: "in_arrears",
            model: { type: "graduated", tiers: TIERS } }] },
      ],
    },
    customers: [],
  };
}

/**
 * `n` quantities as decimal strings, spread over every tier (0 to ~500,000, up to three
 * decimals), from a fixed-seed generator so every run rates the same work.
 */
export function quantities(n) {
  let x = 0x2545f491;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const magnitude = 10 ** (next() % 6); // 1 .. 100,000: every tier is reached
    const whole = next() % (magnitude * 5);
    const frac = next() % 1000;
    out[i] = frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(3, "0")}`;
  }
  return out;
}

/**
 * The graduated formula in decimal.js: Σ over the tiers reached of (units inside the tier) ×
 * unitPrice + the tier's flatPrice; tier 1 is always reached. `D` is a Decimal constructor
 * with enough precision to be exact here.
 */
export function graduatedRater(D) {
  const tiers = TIERS.map((t) => ({
    upTo: t.upTo === null ? null : new D(t.upTo),
    unitPrice: new D(t.unitPrice),
    flatPrice: new D(t.flatPrice),
  }));
  const zero = new D(0);
  return (qText) => {
    const q = new D(qText);
    let amount = zero;
    let lower = zero;
    for (let i = 0; i < tiers.length; i++) {
      const t = tiers[i];
      if (i > 0 && q.lte(lower)) break; // tier not reached
      const top = t.upTo === null || q.lt(t.upTo) ? q : t.upTo;
      amount = amount.plus(top.minus(lower).times(t.unitPrice)).plus(t.flatPrice);
      if (t.upTo === null) break;
      lower = t.upTo;
    }
    return amount;
  };
}
