#!/usr/bin/env bash
# The demo: validate the two example catalogs and quote every plan for a month of usage.
set -euo pipefail
bin=${1:-target/release/tollgate}
cd "$(dirname "$0")/.."

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

show "$bin" validate examples/llm-provider.catalog.json
show "$bin" validate examples/cloud-analytics.catalog.json

echo; echo "Usage for a month: $(cat examples/llm-usage.json)"
for plan in plan_developer plan_business plan_enterprise; do
  show "$bin" quote --catalog examples/llm-provider.catalog.json --plan "$plan" --usage examples/llm-usage.json
done

echo; echo "Usage for a month: $(cat examples/cloud-analytics-usage.json)"
for plan in plan_on_demand plan_reserved plan_committed; do
  show "$bin" quote --catalog examples/cloud-analytics.catalog.json --plan "$plan" --usage examples/cloud-analytics-usage.json
done

echo; echo "A month of events (examples/llm-events.jsonl) replayed and invoiced:"
for customer in cus_dev cus_acme; do
  show "$bin" invoice --snapshot examples/llm-snapshot.json --events examples/llm-events.jsonl --customer "$customer" --at 2026-11-28T00:00:00Z
done

echo; echo "One price model on its own (graduated egress tiers, 12,000 GB):"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cat > "$tmp" <<'JSON'
{ "type": "graduated", "tiers": [
  { "upTo": "100", "unitPrice": "0" },
  { "upTo": "10240", "unitPrice": "0.09" },
  { "upTo": null, "unitPrice": "0.07" } ] }
JSON
show "$bin" rate --model "$tmp" --quantity 12000 --json
