#!/usr/bin/env bash
# Installs what `make test` needs beyond a rustup toolchain. Safe to run again.
set -euo pipefail

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
# rustfmt and clippy for the lint step; the std-less target proves the core is no_std.
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target list --installed | grep -qx wasm32v1-none || rustup target add wasm32v1-none
