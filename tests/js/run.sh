#!/usr/bin/env bash
# Runs the built package (pkg/) in every runtime, the wasm-bindgen tests of the bindings, the
# lint of the `wasm` feature and tsc on the declarations; prints a summary; exits 1 if any
# failed. `make test-js` runs scripts/setup-js.sh and scripts/build-wasm.sh first.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"
bin=$here/node_modules/.bin
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 NO_COLOR=1

./install-pkg.sh || exit 1

names=()
codes=()
run() {
  local name=$1
  shift
  echo "== $name"
  local start=$SECONDS
  timeout 600 "$@"
  local code=$?
  names+=("$name ($((SECONDS - start)) s)")
  codes+=("$code")
}

run "node $(node --version) (node:test)" node --test --test-reporter=spec node.test.mjs
run "workerd via miniflare" node run-workerd.mjs
run "workers example: bundled by wrangler, run in workerd" node run-wrangler.mjs
run "deno" "$bin/deno" run --no-prompt cli.mjs
run "bun" "$bin/bun" cli.mjs
run "vercel edge-runtime" node run-edge.mjs
run "chromium (playwright-core)" node run-browser.mjs
run "hub + two workerd edges (real hub binary, HubClient)" bash -c "
  cargo build --quiet --manifest-path '$root/Cargo.toml' -p tollgate-cli && node e2e-hub.mjs"
run "hub wallet leases + two workerd edges (top-up, outage with allowance)" bash -c "
  cargo build --quiet --manifest-path '$root/Cargo.toml' -p tollgate-cli && node e2e-wallet.mjs"
# The same two, every hub on a throwaway PostgreSQL server (scripts/postgres.sh).
run "the hub end-to-end tests again, on PostgreSQL" bash -c "
  '$root/scripts/postgres.sh' start > /dev/null &&
  export TOLLGATE_TEST_POSTGRES=\$('$root/scripts/postgres.sh' url) &&
  node e2e-hub.mjs && node e2e-wallet.mjs; status=\$?; '$root/scripts/postgres.sh' stop; exit \$status"
run "docs/npm.md's module size within 1 % of the build" python3 -c '
import gzip, re, sys
built = len(gzip.compress(open(sys.argv[1], "rb").read(), 9))
doc = re.search(r"\*\*\d+ KB gzip\*\* \(([\d,]+) B", open(sys.argv[2]).read())
said = int(doc.group(1).replace(",", "")) if doc else 0
print(f"built {built} B gzip, docs/npm.md says {said} B")
sys.exit(0 if abs(built - said) <= built // 100 else 1)' "$root/pkg/tollgate.wasm" "$root/docs/npm.md"
run "tsc --noEmit (declarations + typed example)" "$bin/tsc" -p tsconfig.json
run "tsc --noEmit (main entry without DOM types)" "$bin/tsc" -p tsconfig.nodom.json
run "wasm-bindgen-test (bindings, in node)" env -C "$root" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$root/.tools/bin/wasm-bindgen-test-runner" \
  cargo test -p tollgate-wasm --target wasm32-unknown-unknown
run "clippy (the bindings and their tests, wasm32)" env -C "$root" \
  cargo clippy --quiet -p tollgate-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings

echo
echo "JS and wasm tests:"
passed=0
failed=0
for i in "${!names[@]}"; do
  if [[ ${codes[$i]} == 0 ]]; then
    echo "  pass  ${names[$i]}"
    passed=$((passed + 1))
  else
    echo "  FAIL  ${names[$i]} (exit ${codes[$i]})"
    failed=$((failed + 1))
  fi
done
echo "js: $passed passed, $failed failed"
[[ $failed == 0 ]]
