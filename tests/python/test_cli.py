"""The ct-record command line: bad input is refused before the program starts (status 2,
a clear message, nothing written), options and environment variables do what --help says."""

import os
import re
import sys

import pytest

import ct_recorder
from tracecheck import (
    CT_RECORD,
    PYTHON,
    Trace,
    assert_same_behaviour,
    check_lines,
    check_metadata,
    clean_env,
    run,
    run_pair,
)


def ct(work, *args, env=None, stdin=b""):
    return run([CT_RECORD, *args], work, stdin=stdin, env=env)


def assert_not_started(work, result, trace_dirs=("trace-out",)):
    """The program (side_effect.py) did not run and the recorder wrote nothing."""
    assert not (work / "side-effect.txt").exists(), "the program ran"
    assert result.stdout == b"", result.describe()
    for d in trace_dirs:
        assert not (work / d).exists(), f"{d} was created"


def after_first_colon(text):
    return text.split(b": ", 1)[1]


# --- the target does not exist ------------------------------------------------------------


@pytest.mark.parametrize("with_trace_dir", [False, True], ids=["default-dir", "given-dir"])
def test_missing_script(work, with_trace_dir):
    opts = ["--trace-dir", "given"] if with_trace_dir else []
    r = ct(work, *opts, "nosuch.py", "arg")
    py = run([PYTHON, "nosuch.py", "arg"], work)
    path = os.path.join(work, "nosuch.py")
    assert r.returncode == 2 == py.returncode
    assert r.stderr == f"ct-record: can't open file '{path}': [Errno 2] No such file or directory\n".encode()
    assert after_first_colon(r.stderr) == after_first_colon(py.stderr)
    assert r.stdout == b""
    assert not (work / "trace-out").exists() and not (work / "given").exists()


@pytest.mark.parametrize("module", ["nosuch", "nosuch.sub", "pkgdemo.nosuch"])
def test_missing_module(work, module):
    r = ct(work, "--trace-dir", "given", "-m", module)
    py = run([PYTHON, "-m", module], work)
    assert py.returncode == 1 and b"No module named" in py.stderr, py.describe()
    assert r.returncode == py.returncode
    assert r.stdout == py.stdout == b""
    assert after_first_colon(r.stderr) == after_first_colon(py.stderr)
    if not module.startswith("pkgdemo"):  # pkgdemo's __init__ does run before the failure
        assert not (work / "given").exists()


# --- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus", "side_effect.py"], rb"unexpected argument '--bogus'"),
        (["--format", "xml", "side_effect.py"], rb"invalid value 'xml' for '--format"),
        (["--format=", "side_effect.py"], rb"a value is required for '--format"),
        (["--on-recorder-error", "ignore", "side_effect.py"], rb"invalid value 'ignore' for '--on-recorder-error"),
        (["--log-level", "loud", "side_effect.py"], rb"invalid value 'loud' for '--log-level"),
        (["--trace-dir"], rb"a value is required for '--trace-dir"),
        ([], rb"required arguments were not provided"),
        (["-m"], rb"a value is required for '-m"),
    ],
)
def test_usage_errors(work, args, message):
    r = ct(work, *args)
    assert r.returncode == 2, r.describe()
    assert re.search(rb"^error: ", r.stderr), r.stderr
    assert re.search(message, r.stderr), r.stderr
    assert b"Usage: ct-record" in r.stderr or b"--help" in r.stderr
    assert_not_started(work, r)


@pytest.mark.parametrize(
    "var, value",
    [
        ("CODETRACER_TRACE_FORMAT", "bogus"),
        ("CODETRACER_ON_RECORDER_ERROR", "sometimes"),
        ("CODETRACER_LOG_LEVEL", "chatty"),
    ],
)
def test_bad_environment_values(work, var, value):
    r = ct(work, "side_effect.py", env=clean_env(**{var: value}))
    assert r.returncode == 2, r.describe()
    assert f"invalid value '{value}'".encode() in r.stderr, r.stderr
    assert_not_started(work, r)


# --- where the trace goes -----------------------------------------------------------------


def test_trace_dir_under_a_regular_file(work):
    (work / "plain-file").write_text("not a directory")
    r = ct(work, "--trace-dir", "plain-file/trace", "side_effect.py")
    assert r.returncode == 2, r.describe()
    assert r.stderr.startswith(b"ct-record: error: cannot create the trace directory 'plain-file/trace'"), r.stderr
    assert b"Not a directory" in r.stderr
    assert_not_started(work, r)
    assert (work / "plain-file").read_text() == "not a directory"


def test_trace_dir_is_a_regular_file(work):
    (work / "plain-file").write_text("not a directory")
    r = ct(work, "--trace-dir", "plain-file", "side_effect.py")
    assert r.returncode == 2, r.describe()
    assert r.stderr.startswith(b"ct-record: error: cannot create the trace directory 'plain-file'"), r.stderr
    assert_not_started(work, r)
    assert (work / "plain-file").read_text() == "not a directory"


def test_log_file_that_cannot_be_opened(work):
    (work / "plain-file").write_text("x")
    r = ct(work, "--log-file", "plain-file/log", "side_effect.py")
    assert r.returncode == 2, r.describe()
    assert r.stderr.startswith(b"ct-record: cannot open the log file 'plain-file/log'"), r.stderr
    assert_not_started(work, r)


def test_default_trace_dir_is_trace_out_in_the_cwd(work):
    py = run([PYTHON, "fib_recursion.py", "5"], work)
    r = ct(work, "fib_recursion.py", "5")
    assert_same_behaviour(py, r)
    trace = Trace(work / "trace-out")
    # The default format: compact, trace.ctc.
    assert (work / "trace-out" / "trace.ctc").is_file()
    assert not (work / "trace-out" / "trace.json").exists()
    assert not (work / "trace-out" / "trace.bin").exists()
    check_metadata(trace, program=str(work / "fib_recursion.py"), args=["5"], workdir=work)
    check_lines(trace, work / "fib_recursion.py")


def test_help_says_the_default_format_is_compact(work):
    help_text = ct(work, "--help").stdout.decode()
    section = help_text.split("--format", 1)[1].split("--max-trace-size", 1)[0]
    assert "[default: compact]" in section, section
    assert "- compact:" in section and "- binary:" in section and "- json:" in section, section
    assert "ct_recorder.convert" in section, section
    assert "[env: CODETRACER_TRACE_FORMAT=]" in section, section


def test_trace_dir_and_format_from_the_environment(work, tmp_path):
    # JSON, the format that is not the default, so the variable is what chose it.
    env = clean_env(CODETRACER_TRACE_DIR=str(tmp_path / "from-env"), CODETRACER_TRACE_FORMAT="json")
    py = run([PYTHON, "fib_recursion.py", "5"], work, env=env)
    r = run([CT_RECORD, "fib_recursion.py", "5"], work, env=env)
    assert_same_behaviour(py, r)
    assert (tmp_path / "from-env" / "trace.json").is_file()
    assert not (tmp_path / "from-env" / "trace.ctc").exists()
    assert not (work / "trace-out").exists()
    trace = Trace(tmp_path / "from-env")
    check_metadata(trace, program=str(work / "fib_recursion.py"), args=["5"], workdir=work, fmt="json")
    # An option on the command line wins over the environment.
    r = run([CT_RECORD, "--format", "binary", "--trace-dir", "cli", "fib_recursion.py", "5"], work, env=env)
    assert_same_behaviour(py, r)
    assert (work / "cli" / "trace.bin").is_file() and not (work / "cli" / "trace.json").exists()


def test_existing_trace_dir_is_reused(work, trace_dir):
    for n in ("6", "5"):
        py, r = run_pair(["fib_recursion.py", n], work, trace_dir)
        assert_same_behaviour(py, r)
    trace = Trace(trace_dir)
    assert trace.metadata["args"] == ["5"]
    assert trace.call_count("fib", work / "fib_recursion.py") == 15  # 2*F(6)-1: the second run


# --- version, help, logging ---------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(work, flag):
    r = ct(work, flag)
    assert r.returncode == 0, r.describe()
    assert r.stdout == f"ct-record {ct_recorder.__version__}\n".encode()
    assert r.stderr == b""
    assert not (work / "trace-out").exists()


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(work, flag):
    r = ct(work, flag)
    assert r.returncode == 0, r.describe()
    out = r.stdout.decode()
    assert "Usage: ct-record [OPTIONS] SCRIPT [ARGS]..." in out
    assert "ct-record [OPTIONS] -m MODULE [ARGS]..." in out
    for option in ("--trace-dir", "--format", "--on-recorder-error", "--log-level", "--log-file", "-m"):
        assert option in out
    assert r.stderr == b""
    assert not (work / "trace-out").exists()


def test_help_after_the_script_goes_to_the_script(work, trace_dir):
    py, r = run_pair(["argv_echo.py", "--help"], work, trace_dir)
    assert_same_behaviour(py, r)
    assert b"argv ['argv_echo.py', '--help']" in r.stdout


def test_log_file_and_level_do_not_touch_the_program_output(work, trace_dir):
    log = work / "rec.log"
    py, r = run_pair(
        ["exception_uncaught.py"], work, trace_dir, ct_opts=["--log-level", "debug", "--log-file", str(log)]
    )
    assert_same_behaviour(py, r)
    assert log.is_file()
    trace = Trace(trace_dir)
    trace.check_balanced()


def test_python_dash_m_ct_recorder_is_the_same_command(work, trace_dir):
    py = run([PYTHON, "exception_uncaught.py"], work)
    r = run([PYTHON, "-m", "ct_recorder", "--trace-dir", str(trace_dir), "exception_uncaught.py"], work)
    assert_same_behaviour(py, r)
    trace = Trace(trace_dir)
    trace.check_balanced()
    check_lines(trace, work / "exception_uncaught.py")


# --- --on-recorder-error ------------------------------------------------------------------


def test_on_recorder_error_defaults_to_disable(work):
    help_text = ct(work, "--help").stdout.decode()
    section = help_text.split("--on-recorder-error", 1)[1].split("--log-level", 1)[0]
    assert "[default: disable]" in section
    assert "[env: CODETRACER_ON_RECORDER_ERROR=]" in section


@pytest.mark.parametrize("policy", [None, "disable", "abort"])
def test_normal_run_reports_no_recorder_errors(work, trace_dir, policy):
    opts = [] if policy is None else ["--on-recorder-error", policy]
    py, r = run_pair(["threads_basic.py"], work, trace_dir, ct_opts=opts)
    assert_same_behaviour(py, r)
    trace = Trace(trace_dir)
    summary = trace.summary
    assert summary["recorder_error_count"] == 0 and summary["recorder_errors"] == []
    assert summary["dropped_reentrant_events"] == 0
    assert not any(e.get("metadata") == "recorder-error" for e in trace.other_events)
    trace.check_balanced()
    check_lines(trace, work / "threads_basic.py")
