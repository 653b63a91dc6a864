#!/usr/bin/env bash
# Installs what building the npm package and running its JS tests need, from the registries.
# Safe to run again, and quick when everything is there.
#   scripts/setup-js.sh build   what `make pkg` needs: the wasm32 target, wasm-bindgen-cli (into
#                               .tools/), the npm tools of tests/js (binaryen's wasm-opt among them)
#   scripts/setup-js.sh         the same, plus Debian's chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

say() { echo "setup-js: $*"; }

command -v cargo >/dev/null || { say "cargo not found; install Rust with rustup first (https://rustup.rs)" >&2; exit 1; }
command -v node >/dev/null || { say "node not found; install Node.js 20 or later" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { say "Node.js 20 or later is needed (found $(node --version))" >&2; exit 1; }

# 1. The Rust target of the module.
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# 2. wasm-bindgen's CLI at exactly the version of the crate in Cargo.lock, in .tools/ (ignored).
#    Not --locked: one of its locked dependencies is gone from the registry (TOOLING.md).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [[ "$(.tools/bin/wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]]; then
  say "installing wasm-bindgen-cli $want into .tools/ (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "=$want" --root .tools --quiet
fi

# 3. The JS tools, pinned by tests/js/package-lock.json: typescript, miniflare (workerd), wrangler, deno,
#    bun, edge-runtime, playwright-core, binaryen (wasm-opt), @flipt-io/flipt-client-js. Install
#    scripts run only for the three runtimes that need theirs (they put the binary of their
#    platform package in place); the others' (e.g. sharp's, a miniflare dependency) are skipped.
stamp=tests/js/node_modules/.tollgate-lock
if ! cmp -s tests/js/package-lock.json "$stamp" 2>/dev/null; then
  say "installing the JS tools into tests/js/node_modules"
  (cd tests/js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error &&
    npm rebuild bun deno workerd --no-audit --no-fund --loglevel=error)
  cp tests/js/package-lock.json "$stamp"
fi

[[ $mode == build ]] && exit 0

# 4. Chromium for the browser test: Debian's package (playwright-core drives it).
if ! command -v chromium >/dev/null; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  say "installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq chromium chromium-driver >/dev/null ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi
