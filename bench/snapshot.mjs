// A large snapshot for the load benchmark: the LLM-provider catalog of examples/llm-snapshot.json
// with `n` customers shaped like its three (a developer with a grant, an enterprise customer with
// a price override, a discount, a commitment and a wallet, a business customer, a trial grant).

export function bigSnapshot(example, n) {
  const customers = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = `cus_${String(i).padStart(5, "0")}`;
    const sub = (planId, extra) => [{ id: `sub_${i}`, planId, startedAt: "2026-11-01T00:00:00Z", ...extra }];
    switch (i % 4) {
      case 0:
        customers[i] = {
          id, externalId: `ext-${i}`, subscriptions: sub("plan_developer"),
          grants: [{ id: `grt_${i}`, featureKey: "input-tokens", amount: "500000", priority: 0,
            effectiveAt: "2026-11-10T00:00:00Z", expiresAt: "2027-02-01T00:00:00Z" }],
        };
        break;
      case 1:
        customers[i] = {
          id, externalId: `ext-${i}`,
          subscriptions: sub("plan_enterprise", {
            priceOverrides: { price_ent_input: { type: "per_unit", unitPrice: "0.0000008" } },
            percentageDiscount: "0.10", minimumCommitment: "5000",
          }),
          wallet: { currency: "USD", balance: "25.00" },
        };
        break;
      case 2:
        customers[i] = { id, externalId: `ext-${i}`, subscriptions: sub("plan_business") };
        break;
      default:
        customers[i] = { id, grants: [{ id: `grt_${i}`, featureKey: "input-tokens", amount: "1000" }] };
    }
  }
  return { snapshotVersion: 2, issuedAt: "2026-11-28T00:00:00Z", catalog: example.catalog, customers };
}

/** `n` distinct LLM usage events of one customer, in time order within the hour before `now`. */
export function events(customer, n, nowMs, prefix) {
  const out = new Array(n);
  const start = nowMs - 3_600_000;
  for (let i = 0; i < n; i++) {
    out[i] = {
      id: `${prefix}-${i}`,
      source: "bench",
      type: "llm.completion",
      subject: customer,
      time: new Date(start + Math.floor((i * 3_600_000) / n)).toISOString(),
      data: { input_tokens: 1000 + (i % 700), output_tokens: 200 + (i % 90), model: i % 3 === 0 ? "large" : "small" },
    };
  }
  return out;
}
