# The commands people type. `make demo` runs the main job; `make test` runs every test and
# installs what it needs first (a Rust toolchain from rustup is the only thing assumed).

CARGO ?= cargo
BIN := target/release/tollgate

.PHONY: demo test setup build lint test-rust test-nostd test-docs clean

## demo: build the CLI, validate both example catalogs and quote every plan of each.
demo: build
	@scripts/demo.sh $(BIN)

build:
	$(CARGO) build --release --bin tollgate

## setup: toolchain pieces the tests need (idempotent, quick when already there).
setup:
	@scripts/setup.sh

## test: every test, from a fresh machine.
test: setup lint test-rust test-nostd test-docs

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust:
	$(CARGO) test --all-targets

## test-nostd: the core builds for a target that has no `std` at all.
test-nostd:
	$(CARGO) rustc --lib --no-default-features --target wasm32v1-none --crate-type rlib

## test-docs: every console example in docs/ and the README runs and prints what it shows.
test-docs:
	$(CARGO) build --bin tollgate
	python3 scripts/check-docs.py

clean:
	$(CARGO) clean
