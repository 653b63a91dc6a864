# The commands people type. `make demo` runs the main job; `make test` runs every test and
# installs what it needs first (a Rust toolchain from rustup and Node.js 20+ are assumed; see README).

CARGO ?= cargo
BIN := target/release/tollgate

.PHONY: demo test setup build lint test-rust test-sim test-hub test-hub-pg test-fuzz sim-long test-nostd test-docs types clean

## demo: the main job. Builds the CLI with the hub, shows the CLI on both example catalogs, then
## starts the hub on an embedded SQLite database seeded with the LLM fixture, serving the pricing
## calculator, and prints its URL (Ctrl-C stops it). The npm package the calculator runs on is
## built meanwhile, in the background (target/demo/pkg.log), when it is missing: the CLI and the
## hub do not wait for it (on a fresh machine wasm-bindgen-cli alone compiles for ~4.5 min).
## DEMO_LISTEN=127.0.0.1:8787 by default.
DEMO_LISTEN ?= 127.0.0.1:8787
demo: build
	@mkdir -p target/demo
	@if [ -f pkg/tollgate.wasm ]; then :; else \
	  echo "Building the npm package for the calculator in the background (target/demo/pkg.log)"; \
	  (nice scripts/setup-js.sh build && nice scripts/build-wasm.sh && echo "package ready: reload the calculator") \
	    > target/demo/pkg.log 2>&1 & \
	fi
	@scripts/demo.sh $(BIN)
	@echo; echo "Starting the hub: the calculator is at http://$(DEMO_LISTEN)/ (Ctrl-C stops it)"
	@test -f pkg/tollgate.wasm || echo "(its engine, the npm package, is still building: reload the page once target/demo/pkg.log says ready)"
	@$(BIN) hub --db target/demo/tollgate.db --listen $(DEMO_LISTEN) --www www --seed examples/llm-snapshot.json

## build: the CLI with every command, the hub included.
build:
	$(CARGO) build --release --bin tollgate

## setup: toolchain pieces the tests need (idempotent, quick when already there).
setup:
	@scripts/setup.sh

## test: every test, from a fresh machine.
test: setup lint test-rust test-hub-pg test-sim test-nostd test-docs test-js test-www test-fuzz

## lint: rustfmt over the workspace, clippy over the native crates (core, hub, cli; the bindings
## are linted for wasm32 in test-js), and over the core with its `ts` feature (tests/types.rs).
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p tollgate --features ts --all-targets -- -D warnings

## test-rust: the unit tests of every crate and the functional suite (tests/suite: the core, the
## `tollgate` command, the real hub binary on loopback with SQLite on disk, kill -9 mid-burst);
## then that pkg-template/types.d.ts is what the Rust types generate (`make types` rewrites it).
test-rust:
	$(CARGO) test --lib --bins --test suite -- --skip postgres_
	$(CARGO) test -p tollgate --features ts --test types

## test-hub: the hub's part of the suite alone.
test-hub:
	$(CARGO) test -p tollgate-cli --test suite hub

## test-hub-pg: the hub's part of the suite again, every hub on PostgreSQL: a throwaway server
## of its own under target/postgres (Debian's postgresql, installed when missing), started on a
## Unix socket, each test on a fresh database, stopped and deleted afterwards, pass or fail.
## The tests of SQLite's file itself (its lock, its permissions) are SQLite's alone; those of
## several hubs on one database (`postgres_…`, tests/suite/hub_multi.rs) are PostgreSQL's.
test-hub-pg:
	@scripts/postgres.sh start
	@TOLLGATE_TEST_POSTGRES="$$(scripts/postgres.sh url)" $(CARGO) test -p tollgate-cli --test suite -- \
	  hub billing_refusals --skip sqlite; status=$$?; scripts/postgres.sh stop; exit $$status

## test-sim: the seeded simulation of one hub and many edges over a faulty network, 10,000
## schedules (`make sim-long` runs 200,000); and the real hub (state, SQLite, group commit,
## start-up replay) crashed at random points, 2,000 seeds. One optimised test binary (profile sim).
test-sim:
	$(CARGO) test --profile sim -p tollgate-cli --test simulation -- --nocapture

## test-fuzz: a short run of every fuzz target (`scripts/fuzz.sh long` for the long mode).
test-fuzz:
	@scripts/fuzz.sh smoke

sim-long:
	TOLLGATE_SIM_SCHEDULES=200000 $(CARGO) test --profile sim -p tollgate-cli --test simulation sync_simulation -- --nocapture

## test-nostd: the core builds for a target that has no `std` at all.
test-nostd:
	$(CARGO) build -p tollgate --lib --no-default-features --target wasm32v1-none

## test-docs: every console example in docs/ and the README runs and prints what it shows
## (docs/first-hour.md installs the npm package from pkg/, so it is built first).
test-docs: pkg
	$(CARGO) build --bin tollgate
	python3 scripts/check-docs.py

## types: regenerates pkg-template/types.d.ts, the TypeScript declarations of the JSON the npm
## package returns, from the Rust types (ts-rs; tests/types.rs). Commit the result.
types:
	TOLLGATE_WRITE_TYPES=1 $(CARGO) test -p tollgate --features ts --test types

clean:
	$(CARGO) clean

.PHONY: pkg test-js bench-js

## pkg: the npm package, assembled into pkg/ from the wasm build, wasm-bindgen's glue and
## pkg-template/ (prints the module's raw and gzip size).
pkg:
	@scripts/setup-js.sh build
	@scripts/build-wasm.sh

## test-js: the package in Node, workerd (miniflare), Deno, Bun, Vercel's edge-runtime and
## headless Chromium; wasm-bindgen tests of the bindings; tsc on the declarations.
test-js:
	@scripts/setup-js.sh
	@scripts/build-wasm.sh
	@tests/js/run.sh

## bench-js: check and consume from Node against Flipt's evaluateBoolean and a Map (not a test).
bench-js: pkg
	node bench/bench.mjs

.PHONY: test-www

## test-www: the pricing calculator (www/) in headless Chromium, checked against the CLI.
test-www:
	@tests/browser/run.sh

.PHONY: bench bench-hub

## bench: every benchmark (not a test), then BENCHMARKS.md rewritten from this one run:
## criterion on the core's hot paths and invoice close, the hub under sync load and at restart,
## the npm package against its peers in Node.
bench: pkg
	$(CARGO) bench -p tollgate
	$(MAKE) bench-hub
	node bench/bench.mjs --write

## bench-hub: /v1/sync requests per second and latency against the real hub binary (1,000
## customers, 32 clients, 10 leases per request; not a test): on SQLite, then on a throwaway
## PostgreSQL server (scripts/postgres.sh) with one hub and with two hubs on one database; then
## the restart time with 1,000,000 events in the ledger, on both stores.
bench-hub:
	@scripts/postgres.sh start
	@HUB_BENCH_POSTGRES="$$(scripts/postgres.sh url)" $(CARGO) bench -p tollgate-cli --bench hub_sync --bench hub_restart; \
	  status=$$?; scripts/postgres.sh stop; exit $$status
