#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: a cluster of its own under target/postgres,
# listening on a Unix socket only (no TCP port to collide with), trust authentication.
#
#   scripts/postgres.sh start   installs Debian's `postgresql` when no server is installed,
#                               creates the cluster (initdb, as the `postgres` user when run
#                               as root: initdb refuses root) and starts it; quick when running
#   scripts/postgres.sh url     prints the URL the tests append a database name to
#   scripts/postgres.sh stop    stops the server and deletes the cluster
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/postgres"
data="$dir/data"
port=5432
# A socket path is limited to 107 bytes: a deep checkout keeps its socket in /tmp instead.
run="$dir/run"
if [ $(( ${#run} + 20 )) -gt 107 ]; then
  run="/tmp/tollgate-pg-$(printf '%s' "$root" | sha256sum | cut -c1-12)"
fi

server_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  if [ -z "$(server_bin)" ]; then
    echo "Installing PostgreSQL (Debian's postgresql)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
  fi
  local bin
  bin=$(server_bin)
  mkdir -p "$dir" "$run"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir" "$run"
  fi
  if as_owner "$bin/pg_ctl" -D "$data" status > /dev/null 2>&1; then
    return 0
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale > "$dir/initdb.log"
  fi
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $run -p $port -c max_connections=300" start > /dev/null
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $run (port $port), cluster $data"
}

stop() {
  local bin
  bin=$(server_bin)
  if [ -n "$bin" ] && [ -f "$data/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl" -D "$data" -m immediate -w stop > /dev/null 2>&1 || true
  fi
  rm -rf "$dir" "$run"
}

url() {
  # The socket's directory as the URL's host, percent-encoded.
  local host
  host=$(printf '%s' "$run" | sed 's|/|%2F|g')
  echo "postgres://postgres@$host:$port/"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 start|url|stop" >&2; exit 2 ;;
esac
