import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tracecheck  # noqa: E402


def pytest_sessionstart(session):
    # The suite tests the installed command: without it every test would fail for one
    # reason, so say that reason once, loudly (never skip).
    if not os.access(tracecheck.CT_RECORD, os.X_OK):
        raise pytest.UsageError(
            f"{tracecheck.CT_RECORD} not found: run `make build` and use .venv/bin/python -m pytest"
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
