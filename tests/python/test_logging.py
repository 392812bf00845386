"""The recorder's own log, as a user sees it: `--log-level`, `CODETRACER_LOG_LEVEL` and
`RUST_LOG` in their documented precedence (docs/logging.md), always on stderr (or the log
file), never on the program's stdout, coloured only on a terminal and never with NO_COLOR."""

import os
import pty
import subprocess
import sys
import threading

import pytest

BIN = os.path.dirname(sys.executable)
CT_RECORD = os.path.join(BIN, "ct-record")

# The module body runs in globals without `__name__`: the globals engine falls back.
PROGRAM = """\
import helper
src = open(helper.__file__.replace("helper.py", "nameless.py")).read()
exec(compile(src, helper.__file__.replace("helper.py", "nameless.py"), "exec"), {})
print("program output", helper.twice(21))
"""


def env_for(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODETRACER_", "PYTHON")) and k not in ("RUST_LOG", "NO_COLOR")}
    env.update(extra)
    return env


@pytest.fixture
def proj(tmp_path):
    p = tmp_path / "proj"
    p.mkdir()
    (p / "main.py").write_text(PROGRAM)
    (p / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (p / "nameless.py").write_text("value = 1\n")
    return p


def record(proj, *opts, env=None, stderr=subprocess.PIPE):
    return subprocess.run(
        [CT_RECORD, "--shadow-compare", "--module-name-from-globals", "--quiet",
         "--trace-dir", str(proj.parent / "trace"), *opts, "main.py"],
        cwd=proj, env=env or env_for(), stdout=subprocess.PIPE, stderr=stderr,
        text=True, timeout=60)


INFO = [
    "filter loaded",
    "primary naming engine chosen",
    "shadow comparison on",
    "recording session started",
    "module name fell back to <module>",
    "trace writer: events file closed",
    "recording session stopped",
]
DEBUG = ["trace writer: batch written"]
TRACE = ["shadow: compared"]


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug", "trace"])
@pytest.mark.legacy_engine
def test_each_level_shows_its_events_and_no_more(proj, level):
    run = record(proj, "--log-level", level)
    assert run.returncode == 0, run.stderr
    # The program's stdout is its own, at every level.
    assert run.stdout == "program output 42\n"
    shown = {
        "error": [], "warn": [], "info": INFO, "debug": INFO + DEBUG,
        "trace": INFO + DEBUG + TRACE,
    }[level]
    for msg in INFO + DEBUG + TRACE:
        assert (msg in run.stderr) == (msg in shown), f"{level}: {msg!r}\n{run.stderr}"
    if level in ("info", "debug", "trace"):
        line = next(l for l in run.stderr.splitlines() if "fell back" in l)
        assert "reason=\"globals_missing\"" in line and "nameless.py" in line, line
        closed = next(l for l in run.stderr.splitlines() if "events file closed" in l)
        size = os.path.getsize(proj.parent / "trace" / "trace.ctc")  # the default format
        assert f"bytes={size}" in closed, closed


@pytest.mark.legacy_engine
def test_precedence_cli_then_codetracer_then_rust_log(proj):
    # RUST_LOG alone is honoured, directives included.
    alone = record(proj, env=env_for(RUST_LOG="ct_recorder=info"))
    assert "recording session started" in alone.stderr, alone.stderr
    assert "shadow budget" not in alone.stderr
    # CODETRACER_LOG_LEVEL beats RUST_LOG ...
    quiet = record(proj, env=env_for(RUST_LOG="info", CODETRACER_LOG_LEVEL="error"))
    assert "recording session started" not in quiet.stderr, quiet.stderr
    # ... and --log-level beats both.
    loud = record(proj, "--log-level", "info",
                  env=env_for(RUST_LOG="error", CODETRACER_LOG_LEVEL="error"))
    assert "recording session started" in loud.stderr, loud.stderr
    # Nothing set: warn, so a normal run prints no log lines.
    plain = record(proj)
    assert plain.stderr == "", plain.stderr


def test_a_bad_rust_log_is_a_usage_error_before_the_program_runs(proj):
    run = record(proj, env=env_for(RUST_LOG="ct_recorder=loud"))
    assert run.returncode == 2
    assert "RUST_LOG" in run.stderr and "not a valid log filter" in run.stderr, run.stderr
    assert run.stdout == ""


@pytest.mark.legacy_engine
def test_no_colour_when_stderr_is_redirected(proj):
    run = record(proj, "--log-level", "info")
    assert "recording session started" in run.stderr
    assert "\x1b[" not in run.stderr


def on_a_terminal(proj, env):
    """Runs with stderr on a pseudo-terminal and returns what the terminal got."""
    master, slave = pty.openpty()
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        run = record(proj, "--log-level", "info", env=env, stderr=slave)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    assert run.returncode == 0
    assert run.stdout == "program output 42\n"
    return b"".join(chunks).decode()


@pytest.mark.legacy_engine
def test_colour_on_a_terminal_unless_no_color(proj):
    coloured = on_a_terminal(proj, env_for())
    assert "recording session started" in coloured
    assert "\x1b[" in coloured, coloured
    plain = on_a_terminal(proj, env_for(NO_COLOR="1"))
    assert "recording session started" in plain
    assert "\x1b[" not in plain, plain
    # An empty NO_COLOR does not count (no-color.org).
    assert "\x1b[" in on_a_terminal(proj, env_for(NO_COLOR=""))
