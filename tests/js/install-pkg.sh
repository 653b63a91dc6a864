#!/usr/bin/env bash
# Installs the built package (pkg/) into tests/js/node_modules/tollgate the way npm would ship
# it: `npm pack` (which applies package.json's `files`), then the tarball's contents.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[[ -f $root/pkg/package.json ]] || { echo "install-pkg: build pkg/ first (make pkg)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root/pkg" && npm pack --silent --pack-destination "$tmp" >/dev/null)
rm -rf "$here/node_modules/tollgate"
mkdir -p "$here/node_modules/tollgate"
tar -xzf "$tmp"/tollgate-*.tgz -C "$here/node_modules/tollgate" --strip-components=1
