import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tracecheck  # noqa: E402


LEGACY_MARK = "legacy_engine"
# Set at session start: None while the build has the legacy engine, else why it has none.
_NO_LEGACY = {"reason": None}


def pytest_configure(config):
    # A shell starts background jobs (`make test &`, a CI runner's detached step) with SIGINT
    # ignored, and an ignored signal stays ignored in every child: Python then installs no
    # KeyboardInterrupt handler, so the tests of Ctrl-C (test_programs.py) would see programs
    # that cannot be interrupted, under python as under ct-record. The programs are started
    # as from a terminal: SIGINT handled, so their children start with the default action.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        f"{LEGACY_MARK}: needs the legacy resolver (cargo feature `legacy-resolver`): "
        "after `ct-rollout delete-legacy` the test is skipped with the reason, and is deleted with the engine",
    )
    config.addinivalue_line(
        "markers",
        "clone_build: builds a recorder from a scratch clone of the repository (minutes of "
        "compiling); `make test` runs these on 3.11 only and says so on the other interpreters",
    )


def _legacy_engine_absent():
    """Why the installed recorder has no legacy engine, or None when it has one. Asked of the
    recorder as a user would: `--print-policy --no-module-name-from-globals` is refused
    (status 2, naming why) by a build without it."""
    done = subprocess.run(
        [tracecheck.CT_RECORD, "--print-policy", "--no-module-name-from-globals"],
        capture_output=True, text=True, timeout=60, env=tracecheck.clean_env(),
    )
    if done.returncode == 0:
        return None
    if done.returncode == 2 and "no legacy engine" in done.stderr:
        # "... but this build has no legacy engine: it was deleted (rollout phase ...)"
        return "this build has " + done.stderr.strip().splitlines()[-1].split("this build has ", 1)[-1]
    raise pytest.UsageError(f"cannot tell whether {tracecheck.CT_RECORD} has the legacy engine:\n{done.stderr}")


def pytest_sessionstart(session):
    # The suite tests the installed command: without it every test would fail for one
    # reason, so say that reason once, loudly (never skip).
    if not os.access(tracecheck.CT_RECORD, os.X_OK):
        raise pytest.UsageError(
            f"{tracecheck.CT_RECORD} not found: run `make build` and use .venv/bin/python -m pytest"
        )
    _NO_LEGACY["reason"] = _legacy_engine_absent()


def pytest_report_header(config):
    reason = _NO_LEGACY["reason"]
    return f"legacy engine: {'built' if reason is None else 'NOT built (' + reason + ')'}"


def _needs_legacy(item):
    """Marked `legacy_engine`, or one case of a test parametrized over `engine` whose
    `engine` is "legacy" (the suite's convention, naming_support.ENGINES)."""
    if item.get_closest_marker(LEGACY_MARK):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("engine") == "legacy"


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the marks added here
def pytest_collection_modifyitems(config, items):
    """Tests of the legacy engine cannot run on a build without it: they carry the
    `legacy_engine` mark (so `-m legacy_engine` lists them) and, on such a build, are
    skipped with the recorder's own reason, never silently (see the terminal summary)."""
    reason = _NO_LEGACY["reason"]
    skip = pytest.mark.skip(reason=f"needs the legacy engine: {reason}")
    for item in items:
        if not _needs_legacy(item):
            continue
        if not item.get_closest_marker(LEGACY_MARK):
            item.add_marker(LEGACY_MARK)
        if reason is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    reason = _NO_LEGACY["reason"]
    if reason is None:
        return
    marked = [r for r in terminalreporter.stats.get("skipped", []) if LEGACY_MARK in r.keywords]
    terminalreporter.write_sep("=", "legacy engine not built", yellow=True)
    terminalreporter.write_line(
        f"{len(marked)} test(s) marked `{LEGACY_MARK}` were SKIPPED: {reason}. They test the deleted "
        f"engine; list them with `pytest -m {LEGACY_MARK} --collect-only -q` and delete them."
    )


@pytest.fixture
def work(tmp_path):
    """A private copy of tests/python/programs; tests run the programs from here."""
    return tracecheck.copy_programs(tmp_path / "work")


@pytest.fixture
def trace_dir(tmp_path):
    """Where ct-record writes the trace (not created in advance)."""
    return tmp_path / "trace"


@pytest.fixture
def programs():
    return Path(tracecheck.PROGRAMS)
