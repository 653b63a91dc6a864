#!/usr/bin/env bash
# The pricing calculator's browser test, from a fresh machine: installs what it needs
# (scripts/setup-js.sh: the wasm32 target, wasm-bindgen, the JS tools with playwright-core,
# Debian's chromium), builds the npm package into pkg/ (scripts/build-wasm.sh, as `make pkg`)
# and the CLI (target/debug/tollgate), then runs calculator.test.mjs in headless Chromium.
# The last line is `browser: N passed, N failed`; the exit status is 1 if anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

give_up() {
  echo "browser: 0 passed, 1 failed ($1)"
  exit 1
}

scripts/setup-js.sh || give_up "scripts/setup-js.sh failed"
scripts/build-wasm.sh || give_up "building the package into pkg/ failed"
cargo build --quiet --bin tollgate || give_up "cargo build --bin tollgate failed"

TOLLGATE_CLI=$root/target/debug/tollgate timeout 900 node tests/browser/calculator.test.mjs
code=$?
if ((code == 124)); then
  echo "browser: 0 passed, 1 failed (timed out after 900 s)"
fi
exit $code
