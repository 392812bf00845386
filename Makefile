# ct-recorder: every target sets up what it needs, so on a fresh machine `make demo` and
# `make test` each work alone. Set-up steps are skipped when already done (stamps in .stamps/).

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON_BOOT ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
STAMPS      := .stamps
# The Rust test binaries link libpython; point the loader and PyO3 at the venv's interpreter.
export PYO3_PYTHON := $(abspath $(PY))
PY_LIBDIR = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')

.PHONY: help setup build demo test test-rust test-python bench bench-rust lint clean

help:
	@echo "make demo   - set up, build, record the bundled example, print the summary"
	@echo "make test   - set up, build, run the Rust and Python test suites"
	@echo "make bench  - whole-process benchmarks (overhead ratios, peak memory)"
	@echo "make bench-rust - Criterion benches of the Rust internals"
	@echo "make lint   - cargo fmt --check and cargo clippy"

# --- set-up -------------------------------------------------------------------------------
$(STAMPS)/system: scripts/install-system-deps.sh
	@mkdir -p $(STAMPS)
	bash scripts/install-system-deps.sh
	touch $@

$(STAMPS)/venv: $(STAMPS)/system requirements-dev.txt
	@mkdir -p $(STAMPS)
	[ -x $(PY) ] || $(PYTHON_BOOT) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(STAMPS)/venv

build: setup
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --release --quiet
	$(PY) -c 'import ct_recorder._native'

# --- the two commands ---------------------------------------------------------------------
demo: build
	bash examples/run-demo.sh

# One build for both suites: `build` is a prerequisite of test-python too, and make runs a
# prerequisite once per invocation.
test: build test-rust test-python

test-rust: setup
	export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	# Dev profile: these tests check logic, and the release profile's LTO doubles the build.
	cargo test --workspace --quiet
	# Only the root crate has the `legacy-resolver` feature.
	cargo test -p ct-recorder --quiet --no-default-features

test-python: build
	$(PY) -m pytest -q tests/python

# Benchmarks measure release code with symbols (the `profiling` profile), for perf and
# callgrind; `make build` gives the stripped release a user installs.
bench: setup
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --profile profiling --quiet
	$(PY) bench/run.py

# Criterion benches of the Rust internals (naming engines, filters).
bench-rust: setup
	export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	cargo bench --bench naming --bench naming_sys_modules --bench filters --bench hot_path

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --no-default-features -- -D warnings

clean:
	rm -rf target $(VENV) $(STAMPS) python/ct_recorder/*.so
