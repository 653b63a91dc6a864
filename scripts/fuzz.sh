#!/usr/bin/env bash
# Fuzzes every decoder and entry point that takes outside input (SPEC §10), with cargo-fuzz and
# libFuzzer, on the stable toolchain (RUSTC_BOOTSTRAP=1 lets stable take cargo-fuzz's -Z flags).
#
#   scripts/fuzz.sh smoke                  every target for FUZZ_SMOKE_SECONDS (25) each, FUZZ_JOBS
#                                          (the number of cores) at a time: for CI
#   scripts/fuzz.sh long [SECONDS]         every target for SECONDS (600) each, one after another
#   scripts/fuzz.sh run TARGET [SECONDS]   one target (default 600 s)
#   scripts/fuzz.sh repro TARGET FILE      run one input through a target (a crash prints its panic)
#   scripts/fuzz.sh tmin TARGET FILE       minimise a crashing input (cargo fuzz tmin)
#   scripts/fuzz.sh list                   the targets
#
# Targets run one at a time (in smoke mode one per core), niced, in one process each (-jobs=1). Each prints its execs,
# execs/s and corpus size; the exit status is non-zero if any target found a crash (the input is
# kept in fuzz/artifacts/TARGET/). The corpus grows in fuzz/corpus/TARGET (not committed); the
# committed seeds are fuzz/seeds/TARGET (rebuilt by fuzz/make-seeds.py). Environment:
# FUZZ_SANITIZER=address|none (default address; falls back to none if the ASan build fails),
# FUZZ_NICE (10), CARGO_TARGET_DIR (fuzz/target, so the main target dir is never locked).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FUZZ/target}"
NICE="${FUZZ_NICE:-10}"
SANITIZER="${FUZZ_SANITIZER:-address}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"

targets() {
  awk '/^\[\[bin\]\]/ { bin = 1; next } bin && /^name/ { gsub(/^name = "|"$/, ""); print; bin = 0 }' "$FUZZ/Cargo.toml"
}

ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io (once)" >&2
    cargo install cargo-fuzz --locked
  fi
}

build() {
  ensure_cargo_fuzz
  cd "$ROOT"
  # -O: optimised; -a: debug assertions on (overflow checks included), so a silent wrap panics;
  # --features hub: the hub_requests target (the hub's SQLite is compiled in, as for `make test`).
  if ! nice -n "$NICE" cargo fuzz build -O -a --features hub --sanitizer "$SANITIZER"; then
    if [ "$SANITIZER" != none ]; then
      echo "fuzz: the $SANITIZER build failed; building without a sanitizer" >&2
      SANITIZER=none
      nice -n "$NICE" cargo fuzz build -O -a --features hub --sanitizer none
    else
      exit 1
    fi
  fi
}

# run_target TARGET SECONDS: fuzzes one target, appends "target secs execs execs/s corpus status"
# to $SUMMARY.
run_target() {
  local t="$1" secs="$2"
  local corpus="$FUZZ/corpus/$t" seeds="$FUZZ/seeds/$t" artifacts="$FUZZ/artifacts/$t"
  # A log directory per run, so that two runs at once never share a log file.
  local logs="$FUZZ/logs/$t/$(date -u +%Y%m%dT%H%M%SZ)-$$"
  mkdir -p "$corpus" "$artifacts" "$logs"
  [ -d "$seeds" ] || mkdir -p "$seeds"
  local log="$logs/fuzz-0.log" status=ok
  echo "fuzz: $t for ${secs}s (sanitizer $SANITIZER)" >&2
  # With -jobs=1 libFuzzer runs the fuzzing in one child process and writes its output to
  # fuzz-0.log in the working directory.
  if ! (cd "$logs" && nice -n "$NICE" "$BIN_DIR/$t" "$corpus" "$seeds" \
    -jobs=1 -workers=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -dict="$FUZZ/tollgate.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 >/dev/null 2>&1); then
    status=CRASH
  fi
  if grep -qE '^==[0-9]+==|panicked at|SUMMARY: libFuzzer' "$log" 2>/dev/null; then status=CRASH; fi
  local last execs runs_secs rate units
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  [ -n "$execs" ] || execs="$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')"
  runs_secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
  [ -n "$runs_secs" ] || runs_secs="$secs"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  [ -n "$rate" ] || rate="$(( ${execs:-0} / (runs_secs > 0 ? runs_secs : 1) ))"
  units="$(echo "$last" | sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p')"
  if [ "$status" = CRASH ]; then
    echo "fuzz: $t CRASHED; input(s) in $artifacts/, log $log:" >&2
    grep -E 'panicked at|^==[0-9]+==|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  fi
  printf '%s %s %s %s %s %s\n' "$t" "$runs_secs" "${execs:-0}" "${rate:-0}" "${units:-?}" "$status" >>"$SUMMARY"
}

report() {
  echo
  echo "| target | seconds | execs | execs/s | corpus (units) | result |"
  echo "|---|---:|---:|---:|---:|---|"
  local failed=0
  while read -r t s e r u st; do
    echo "| $t | $s | $e | $r | $u | $st |"
    [ "$st" = ok ] || failed=1
  done <"$SUMMARY"
  echo
  echo "corpus: fuzz/corpus/TARGET; crashes: fuzz/artifacts/TARGET; logs: fuzz/logs/TARGET/<run>/fuzz-0.log"
  return "$failed"
}

# all SECONDS [JOBS]: every target for SECONDS, JOBS targets at a time (each one process).
all() {
  local secs="$1" jobs="${2:-1}" running=0
  build
  SUMMARY="$(mktemp)"
  trap 'rm -f "$SUMMARY"' EXIT
  for t in $(targets); do
    run_target "$t" "$secs" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
  wait
  sort -o "$SUMMARY" "$SUMMARY"
  report
}

case "${1:-}" in
  smoke) all "${FUZZ_SMOKE_SECONDS:-25}" "${FUZZ_JOBS:-$(nproc)}" ;;
  long) all "${2:-600}" ;;
  run)
    [ -n "${2:-}" ] || { echo "usage: scripts/fuzz.sh run TARGET [SECONDS]" >&2; exit 2; }
    targets | grep -qx "$2" || { echo "fuzz: no target $2 (scripts/fuzz.sh list)" >&2; exit 2; }
    build
    SUMMARY="$(mktemp)"
    trap 'rm -f "$SUMMARY"' EXIT
    run_target "$2" "${3:-600}"
    report
    ;;
  repro)
    [ -n "${3:-}" ] || { echo "usage: scripts/fuzz.sh repro TARGET FILE" >&2; exit 2; }
    build
    "$BIN_DIR/$2" "$3"
    ;;
  tmin)
    [ -n "${3:-}" ] || { echo "usage: scripts/fuzz.sh tmin TARGET FILE" >&2; exit 2; }
    ensure_cargo_fuzz
    cd "$ROOT"
    nice -n "$NICE" cargo fuzz tmin -O -a --features hub --sanitizer "$SANITIZER" "$2" "$3"
    ;;
  list) targets ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
