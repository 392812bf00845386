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

# The interpreters `make test` runs the whole Python suite on, each with its own venv and
# build (per-interpreter wheels: the recorder uses the version-specific C API, so no abi3).
# 3.11 is the system Python (.venv, also used by the Rust suites, `make demo` and `make lint`);
# the others come from pyenv on these machines (scripts/find-python.sh says where it looks).
# A missing interpreter fails the run; leave one out by name with SKIP_PYTHONS=3.13 (the
# run says so), or choose the set with PYTHONS="3.11 3.12".
SUPPORTED_PYTHONS := 3.11 3.12 3.13
PYTHONS      ?= $(SUPPORTED_PYTHONS)
SKIP_PYTHONS ?=
BENCH_ARGS   ?=
PYTEST_ARGS  ?=
# The Python suite runs on two workers (pytest-xdist), a test file per worker at a time
# (`loadfile`: the tests of one file share fixtures and servers); PYTEST_JOBS= runs it in
# one process.
PYTEST_JOBS  ?= -n 2 --dist loadfile
BUILD_PROFILE ?= suite
venv_of      = $(if $(filter 3.11,$(1)),$(VENV),$(VENV)-$(1))
# Where `make test` builds for interpreter $(1) other than 3.11: its own target dir by
# default, so that switching interpreters rebuilds nothing (PyO3's build script reruns when
# PYO3_PYTHON changes, and everything above it is rebuilt in place). SHARE_TARGET_DIR=1
# (.ci/run) builds every interpreter in target/ instead: on a fresh machine each one then
# compiles only PyO3 and the workspace again, not every dependency; a second `make test`
# with it rebuilds those for each interpreter in turn.
SHARE_TARGET_DIR ?=
target_of    = $(if $(filter 1,$(SHARE_TARGET_DIR)),$(abspath target),$(abspath target)/py$(1))

.PHONY: help setup build build-3.11 demo test test-rust test-python test-pythons pythons bench bench-rust bench-formats lint clean pytest-3.11

help:
	@echo "make demo   - set up, build, record the bundled example, print the summary"
	@echo "make test   - set up, build, run the Rust suites once and the Python suite on every"
	@echo "              interpreter in PYTHONS (default: $(PYTHONS); SKIP_PYTHONS=3.13 leaves one out)"
	@echo "make bench  - whole-process benchmarks (overhead ratios, peak memory) on 3.11;"
	@echo "              make bench-3.12 / bench-3.13 on the others (BENCH_ARGS=--naming-only ...)"
	@echo "make bench-rust - Criterion benches of the Rust internals"
	@echo "make bench-evidence - evidence-only mode per interpreter (EVIDENCE_BENCH_PYTHONS)"
	@echo "make bench-formats - the format crate's writer (codetracer_trace_writer) beside ours"
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

# Stamps made through pattern rules are kept (make would delete them as intermediate files
# and set the venv up again in the next sub-make).
.PRECIOUS: $(STAMPS)/venv-% $(STAMPS)/bench-venv-%

# The venv of another supported interpreter (3.11's is $(VENV), above).
$(STAMPS)/venv-%: $(STAMPS)/system requirements-dev.txt
	@mkdir -p $(STAMPS)
	py=$$(bash scripts/find-python.sh $*)
	[ -x $(VENV)-$*/bin/python ] || "$$py" -m venv $(VENV)-$*
	$(VENV)-$*/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

build: setup
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --release --quiet
	$(PY) -c 'import ct_recorder._native'

# --- the two commands ---------------------------------------------------------------------
demo: build
	bash examples/run-demo.sh

# One build for both suites: `build-3.11` (the extension, with the `suite` profile) is a
# prerequisite of test-pythons too, and make runs a prerequisite once per invocation. The
# Rust suites build with the same profile into the same target dir, so 3.11's dependencies
# are compiled once.
test: build-3.11 test-rust test-pythons

# The whole Python suite on each interpreter of PYTHONS, in order; a skip is said out loud,
# at the start and again at the end of the run.
test-pythons: build-3.11
	for v in $(PYTHONS) $(SKIP_PYTHONS); do
	  if [[ " $(SUPPORTED_PYTHONS) " != *" $$v "* ]]; then
	    echo "make test: CPython $$v is not a supported interpreter (supported: $(SUPPORTED_PYTHONS))" >&2
	    exit 2
	  fi
	done
	skipped=""
	for v in $(PYTHONS); do
	  if [[ " $(SKIP_PYTHONS) " == *" $$v "* ]]; then
	    echo "make test: the Python suite on CPython $$v is SKIPPED (SKIP_PYTHONS=$(SKIP_PYTHONS))"
	    skipped="$$skipped $$v"
	    continue
	  fi
	  echo "make test: the Python suite on CPython $$v"
	  if [ "$$v" = 3.11 ]; then
	    $(MAKE) --no-print-directory pytest-3.11
	  else
	    echo "make test: on CPython $$v the clone-build lifecycle tests (-m clone_build) are left out: they test the repository tooling and run on 3.11"
	    $(MAKE) --no-print-directory build-$$v test-naming-$$v
	    $(MAKE) --no-print-directory pytest-$$v PYTEST_ARGS='-m "not clone_build"'
	  fi
	done
	if [ -n "$$skipped" ]; then
	  echo "make test: NOT run on CPython$$skipped (SKIP_PYTHONS)"
	fi

# The interpreters `make test` runs the Python suite on (PYTHONS less SKIP_PYTHONS).
pythons:
	@echo $(filter-out $(SKIP_PYTHONS),$(PYTHONS))

# The naming differential test against the real sys.modules of another interpreter (3.11's
# runs in test-rust). An embedded interpreter: the test binary built for it, with the
# profile and in the target dir of that interpreter's extension (build-%), whose
# dependencies it reuses.
test-naming-%: $(STAMPS)/venv-%
	py=$(abspath $(VENV)-$*)/bin/python
	export LD_LIBRARY_PATH="$$($$py -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	CARGO_TARGET_DIR=$(call target_of,$*) PYO3_PYTHON=$$py \
	  cargo test -p ct-recorder --quiet --profile $(BUILD_PROFILE) --test naming_pysys

test-rust: setup
	export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	# The `suite` profile of the 3.11 extension (build-3.11), whose dependencies these reuse.
	cargo test --workspace --quiet --profile $(BUILD_PROFILE)
	# Only the root crate has the `legacy-resolver` feature.
	cargo test -p ct-recorder --quiet --profile $(BUILD_PROFILE) --no-default-features

test-python: test-python-3.11

test-python-3.11: build-3.11 pytest-3.11

test-python-%: build-% pytest-%
	@true

# The suite alone, on a build made before.
pytest-3.11:
	$(PY) -m pytest -q $(PYTEST_JOBS) tests/python $(PYTEST_ARGS)

pytest-%:
	$(VENV)-$*/bin/python -m pytest -q $(PYTEST_JOBS) tests/python $(PYTEST_ARGS)

# The 3.11 extension the suites run on: the `suite` profile, in target/ (beside the Rust
# suites' build). `make build` installs the release build instead.
build-3.11: setup
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --profile $(BUILD_PROFILE) --quiet
	$(PY) -c 'import ct_recorder._native'

# The extension for another interpreter, in its own target dir (switching PYO3_PYTHON in
# one target dir would rebuild everything each time). The `suite` profile (Cargo.toml) is
# also the one its naming differential test (test-naming-%) builds with, so the two share
# every dependency: one compilation per interpreter. BUILD_PROFILE=release builds what a
# wheel ships.
build-%: $(STAMPS)/venv-%
	VIRTUAL_ENV=$(abspath $(VENV)-$*) PATH=$(abspath $(VENV)-$*)/bin:$$PATH \
	  CARGO_TARGET_DIR=$(call target_of,$*) PYO3_PYTHON=$(abspath $(VENV)-$*)/bin/python \
	  $(VENV)-$*/bin/maturin develop --profile $(BUILD_PROFILE) --quiet
	$(VENV)-$*/bin/python -c 'import ct_recorder._native'

# coverage.py is one of the baselines; it goes into the venv only for the benchmarks.
$(STAMPS)/bench-venv: $(STAMPS)/venv bench/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# Benchmarks measure release code with symbols (the `profiling` profile), for perf and
# callgrind; `make build` gives the stripped release a user installs.
bench: setup $(STAMPS)/bench-venv
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --profile profiling --quiet
	$(PY) bench/run.py $(BENCH_ARGS)

# The same benchmarks on another interpreter (`make bench-3.12`, `make bench-3.13
# BENCH_ARGS=--naming-only`): its own venv and target dir, the `profiling` profile. Like
# `make bench`, this leaves the profiling build installed; `make test` reinstalls the release.
bench-3.11: bench

$(STAMPS)/bench-venv-%: $(STAMPS)/venv-% bench/requirements.txt
	$(VENV)-$*/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench-%: $(STAMPS)/bench-venv-%
	VIRTUAL_ENV=$(abspath $(VENV)-$*) PATH=$(abspath $(VENV)-$*)/bin:$$PATH \
	  CARGO_TARGET_DIR=$(abspath target)/py$* PYO3_PYTHON=$(abspath $(VENV)-$*)/bin/python \
	  $(VENV)-$*/bin/maturin develop --profile profiling --quiet
	$(VENV)-$*/bin/python bench/run.py $(BENCH_ARGS)

# Evidence-only mode (`--shadow-compare --evidence-only`) per interpreter: wall times against
# untraced python and the no-op floor, callgrind counts (bench/run.py --evidence-only). The
# 3.11 rows also end `make bench`; this runs them on each of EVIDENCE_BENCH_PYTHONS.
EVIDENCE_BENCH_PYTHONS ?= 3.11 3.12 3.13
.PHONY: bench-evidence
bench-evidence:
	for v in $(EVIDENCE_BENCH_PYTHONS); do
	  echo "make bench-evidence: CPython $$v"
	  $(MAKE) --no-print-directory bench-evidence-$$v
	done

bench-evidence-3.11: setup $(STAMPS)/bench-venv
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin develop --profile profiling --quiet
	$(PY) bench/run.py --evidence-only

bench-evidence-%: $(STAMPS)/venv-% bench/requirements.txt
	$(VENV)-$*/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	VIRTUAL_ENV=$(abspath $(VENV)-$*) PATH=$(abspath $(VENV)-$*)/bin:$$PATH \
	  CARGO_TARGET_DIR=$(abspath target)/py$* PYO3_PYTHON=$(abspath $(VENV)-$*)/bin/python \
	  $(VENV)-$*/bin/maturin develop --profile profiling --quiet
	$(VENV)-$*/bin/python bench/run.py --evidence-only

# Criterion benches of the Rust internals (naming engines, filters).
bench-rust: setup
	export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	cargo bench --bench naming --bench naming_sys_modules --bench filters --bench hot_path

# The CodeTracer format's own writer crate beside ours on the call-heavy event stream (wall,
# CPU, bytes per event, callgrind instructions); the crate is built only for this.
bench-formats: setup
	export LD_LIBRARY_PATH="$(PY_LIBDIR)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"
	cargo bench --features format-crates-bench --bench format_writers -- --callgrind

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --no-default-features -- -D warnings

clean:
	rm -rf target $(VENV) $(VENV)-3.* $(STAMPS) python/ct_recorder/*.so
