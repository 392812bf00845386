"""The run directory as a user meets it (issue #13): it belongs to one run, says whether
that run finished, survives a broken stderr, and is not touched by a run that cannot start.
Every test runs ct-record (and ct-rollout) as a user would and inspects the files."""

import json
import os
import signal
import subprocess

import pytest

from ct_recorder.trace_reader import load_events
from tracecheck import CT_RECORD, PYTHON, clean_env, run

BIN = os.path.dirname(CT_RECORD)
CT_ROLLOUT = os.path.join(BIN, "ct-rollout")

OWNED = ["trace.json", "trace.bin", "trace.ctc", "trace_metadata.json", "trace_paths.json"]
# What a run in the default format leaves: its events file, metadata and paths.
DEFAULT_TRACE = ["trace.ctc", "trace_metadata.json", "trace_paths.json"]
OWNED_SHADOW = ["summary.json", "divergences.ndjson", "roots.json", "metrics.prom"]

PROGRAM = """\
import json
def double(x):
    return x * 2
print(double(21))
"""

KILLED = """\
import os, signal
def step():
    return 1
step()
os.kill(os.getpid(), signal.SIGKILL)
"""


def ct(cwd, *args, env=None):
    return run([CT_RECORD, *args], cwd, env=env)


def rollout(cwd, *args):
    return subprocess.run([CT_ROLLOUT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def marker(d):
    return json.loads((d / "run.json").read_text())


def write(dirpath, name, text):
    (dirpath / name).write_text(text)
    return dirpath / name


@pytest.fixture
def prog(tmp_path):
    write(tmp_path, "prog.py", PROGRAM)
    write(tmp_path, "killed.py", KILLED)
    return tmp_path


# --- D1: one run per directory --------------------------------------------------------------


@pytest.mark.legacy_engine
def test_a_killed_run_in_a_reused_directory_leaves_no_stale_artifacts(prog):
    first = ct(prog, "-q", "--shadow-compare", "--trace-dir", "mix", "prog.py")
    assert first.returncode == 0, first.describe()
    d = prog / "mix"
    assert marker(d)["state"] == "finished"
    first_id = marker(d)["run_id"]
    for name in DEFAULT_TRACE:  # the default format's trace.ctc, metadata, paths
        assert (d / name).is_file(), name
    for name in OWNED_SHADOW:
        assert (d / "shadow" / name).is_file(), name
    (d / "trace.json").write_text("[an old JSON trace")  # left by an older run
    foreign = write(d, "notes.txt", "mine\n")
    foreign_in_shadow = write(d / "shadow", "mine.txt", "also mine\n")

    second = ct(prog, "-q", "--trace-dir", "mix", "killed.py")
    assert second.returncode == -signal.SIGKILL, second.describe()
    m = marker(d)
    assert m["state"] == "running" and m["run_id"] != first_id, m
    assert m["program"].endswith("killed.py")
    # Nothing of the first run is left to be taken for the second (whose own trace.ctc,
    # written as it ran, is all the trace there is).
    for name in ["trace.json", "trace_metadata.json", "trace_paths.json"]:
        assert not (d / name).exists(), name
    for name in OWNED_SHADOW:
        assert not (d / "shadow" / name).exists(), name
    # Foreign files are never touched (and keep shadow/ in place).
    assert foreign.read_text() == "mine\n"
    assert foreign_in_shadow.read_text() == "also mine\n"

    report = rollout(prog, "report", "mix")
    assert report.returncode == 2, report
    assert "did not finish" in report.stderr and m["run_id"] in report.stderr, report.stderr
    assert first_id not in report.stdout + report.stderr


@pytest.mark.legacy_engine
def test_a_plain_run_in_a_former_shadow_directory_drops_the_old_evidence(prog):
    assert ct(prog, "-q", "--shadow-compare", "--trace-dir", "d", "prog.py").returncode == 0
    assert rollout(prog, "report", "d").returncode == 0
    again = ct(prog, "-q", "--trace-dir", "d", "prog.py")
    assert again.returncode == 0, again.describe()
    d = prog / "d"
    assert marker(d)["state"] == "finished" and marker(d)["shadow_compare"] is False
    assert not (d / "shadow").exists()
    report = rollout(prog, "report", "d")
    assert report.returncode == 2 and "no shadow/summary.json" in report.stderr, report


def test_the_marker_of_a_finished_run(prog):
    r = ct(prog, "-q", "--format", "json", "--trace-dir", "t", "prog.py")
    assert r.returncode == 0, r.describe()
    m = marker(prog / "t")
    assert m["schema"] == 1 and m["state"] == "finished"
    secs, pid = m["run_id"].split("-")
    assert int(secs) == int(m["started_unix"]) and int(pid) == m["pid"]
    assert m["events_file"] == "trace.json" and (prog / "t" / "trace.json").is_file()
    assert m["exit_code"] == 0 and m["stop_errors"] == []
    assert m["finished_unix"] >= m["started_unix"]
    # The next run, in the default (compact) format, removes the JSON trace.
    assert ct(prog, "-q", "--trace-dir", "t", "prog.py").returncode == 0
    assert not (prog / "t" / "trace.json").exists() and (prog / "t" / "trace.ctc").is_file()
    assert marker(prog / "t")["events_file"] == "trace.ctc"


def test_a_trace_file_name_taken_by_a_directory_is_refused_before_the_program_runs(prog):
    assert ct(prog, "-q", "--trace-dir", "t", "prog.py").returncode == 0
    before = {n: (prog / "t" / n).read_bytes() for n in ["trace.ctc", "run.json", "trace_paths.json"]}
    (prog / "t" / "trace_metadata.json").unlink()
    (prog / "t" / "trace_metadata.json").mkdir()
    write(prog, "side.py", "open('ran.txt', 'w').write('x')\n")
    r = ct(prog, "-q", "--trace-dir", "t", "side.py")
    assert r.returncode == 2, r.describe()
    assert b"trace_metadata.json is a directory" in r.stderr, r.stderr
    assert not (prog / "ran.txt").exists()
    assert {n: (prog / "t" / n).read_bytes() for n in before} == before


def test_no_temporary_file_is_left_when_an_artifact_cannot_be_written(prog):
    # The program takes the metadata file's name while it runs: the write at stop fails.
    write(prog, "squat.py", "import os, sys\nos.mkdir(os.path.join(sys.argv[1], 'trace_metadata.json'))\n")
    (prog / "p").mkdir()
    py = run([PYTHON, "squat.py", str(prog / "p")], prog)
    (prog / "t").mkdir()
    r = ct(prog, "-q", "--trace-dir", "t", "squat.py", str(prog / "t"))
    assert r.returncode == py.returncode == 0, r.describe()
    assert b"trace_metadata.json" in r.stderr and b"error" in r.stderr, r.stderr
    names = os.listdir(prog / "t")
    assert not [n for n in names if ".tmp." in n], names
    m = marker(prog / "t")
    assert m["state"] == "finished"
    assert any("trace_metadata.json" in e for e in m["stop_errors"]), m
    assert (prog / "t" / "trace_paths.json").is_file()  # the other steps still ran


@pytest.mark.parametrize("program_status", [0, 3])
def test_a_failed_stop_step_exits_70_with_abort(prog, program_status):
    # As documented for --on-recorder-error abort: a recorder failure, here the metadata
    # write at stop, ends the run with status 70; the program's output is untouched and
    # every other stop step still ran.
    write(prog, "squat.py", "import os, sys\nprint('program output')\n"
          "os.mkdir(os.path.join(sys.argv[1], 'trace_metadata.json'))\n"
          f"sys.exit({program_status})\n")
    (prog / "t").mkdir()
    r = ct(prog, "-q", "--on-recorder-error", "abort", "--trace-dir", "t", "squat.py", str(prog / "t"))
    assert r.returncode == 70, r.describe()
    assert r.stdout == b"program output\n"
    assert b"ct-record: error: writing the trace failed" in r.stderr, r.stderr
    m = marker(prog / "t")
    assert m["state"] == "finished" and m["exit_code"] == program_status, m
    assert any("trace_metadata.json" in e for e in m["stop_errors"]), m
    # The default (disable) keeps the program's status.
    (prog / "t2").mkdir()
    r = ct(prog, "-q", "--trace-dir", "t2", "squat.py", str(prog / "t2"))
    assert r.returncode == program_status, r.describe()


def test_report_on_a_file_says_not_a_directory(prog):
    r = rollout(prog, "report", "prog.py")
    assert r.returncode == 2
    assert "not a directory" in r.stderr and "no such directory" not in r.stderr, r.stderr
    r = rollout(prog, "report", "nowhere")
    assert r.returncode == 2 and "no such directory" in r.stderr, r.stderr


def _more_divergences_than_comparisons(s):
    s["comparisons"] = s["divergences"]["total"] = s["divergences"]["unexpected"] = 3
    s["divergences"]["expected"] = 0
    for c in s["divergences"]["by_kind"].values():
        c["expected"] = c["unexpected"] = 0
    next(iter(s["divergences"]["by_kind"].values()))["unexpected"] = 3
    s["comparisons"] = 2


def _parts_do_not_add_up(s):
    s["divergences"]["total"] = s["divergences"]["expected"] + s["divergences"]["unexpected"] + 5


def _overflow(s):
    s["comparisons"] = 2**64 - 1


@pytest.mark.parametrize(
    "change, says",
    [
        (_more_divergences_than_comparisons, "3 divergences but only 2 comparisons"),
        (_parts_do_not_add_up, "is not the total"),
        (_overflow, "beyond any real run"),
    ],
    ids=["more-divergences-than-comparisons", "parts-do-not-add-up", "overflow"],
)
@pytest.mark.legacy_engine
def test_impossible_summary_counts_are_a_broken_run(prog, change, says):
    assert ct(prog, "-q", "--shadow-compare", "--trace-dir", "d", "prog.py").returncode == 0
    assert rollout(prog, "report", "d").returncode == 0
    path = prog / "d" / "shadow" / "summary.json"
    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))
    r = rollout(prog, "report", "d")
    assert r.returncode == 2, r
    assert "a broken run" in r.stderr and says in r.stderr, r.stderr


# --- D2: every stop step runs ----------------------------------------------------------------


def _stop_artifacts_complete(d):
    for name in DEFAULT_TRACE:
        assert (d / name).is_file(), name
    for name in OWNED_SHADOW:
        assert (d / "shadow" / name).is_file(), name
    assert marker(d)["state"] == "finished"
    json.loads((d / "trace_metadata.json").read_text())


@pytest.mark.legacy_engine
def test_a_full_stderr_loses_nothing(prog):
    py = subprocess.run([PYTHON, "prog.py"], cwd=prog, capture_output=True, env=clean_env())
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [CT_RECORD, "--shadow-compare", "--trace-dir", "t", "prog.py"],
            cwd=prog, stdout=subprocess.PIPE, stderr=full, env=clean_env(), timeout=60,
        )
    assert r.returncode == py.returncode == 0
    assert r.stdout == py.stdout
    _stop_artifacts_complete(prog / "t")


@pytest.mark.legacy_engine
def test_a_closed_stderr_pipe_loses_nothing_and_the_summary_goes_to_the_log_file(prog):
    p = subprocess.Popen(
        [CT_RECORD, "--shadow-compare", "--trace-dir", "t", "--log-file", "rec.log", "prog.py"],
        cwd=prog, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )
    p.stderr.close()  # `2>&1 | head -1`: nobody reads stderr any more
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and out == b"42\n"
    _stop_artifacts_complete(prog / "t")
    log = (prog / "rec.log").read_text()
    assert "could not write to stderr" in log and "ct-record shadow summary" in log, log


# --- D3: numbers and durations ------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--metrics-linger", "1e20"),
        ("--metrics-linger", "-1"),
        ("--metrics-linger", "nan"),
        ("--metrics-linger", "inf"),
        ("--metrics-linger", "0x10"),
        ("--metrics-linger", "3600.5"),
        ("--metrics-linger", "1e400"),
        ("--metrics-linger", "5s"),
        ("--shadow-sample", "2"),
        ("--shadow-sample", "-0.1"),
        ("--shadow-sample", "nan"),
        ("--shadow-sample", "0x1"),
        ("--shadow-sample", "150%"),
        ("--shadow-budget", "0"),
        ("--shadow-budget", "2"),
        ("--shadow-budget", "inf"),
        ("--shadow-budget", "1e-400"),
    ],
)
@pytest.mark.parametrize("source", ["flag", "env"])
def test_out_of_range_numbers_are_usage_errors_before_the_program_starts(prog, flag, value, source):
    write(prog, "side.py", "open('ran.txt', 'w').write('x')\n")
    var = {
        "--metrics-linger": "CODETRACER_METRICS_LINGER",
        "--shadow-sample": "CODETRACER_SHADOW_SAMPLE",
        "--shadow-budget": "CODETRACER_SHADOW_BUDGET",
    }[flag]
    if source == "flag":
        r = ct(prog, "--shadow-compare", f"{flag}={value}", "--trace-dir", "t", "side.py")
    else:
        r = ct(prog, "--shadow-compare", "--trace-dir", "t", "side.py", env=clean_env(**{var: value}))
    assert r.returncode == 2, r.describe()
    assert f"invalid value '{value}'".encode() in r.stderr, r.stderr
    named = var if source == "env" else flag
    assert named.encode() in r.stderr, r.stderr
    assert not (prog / "ran.txt").exists() and not (prog / "t").exists()


@pytest.mark.parametrize("value", ["0", "0.0", "1e-300", "0.05", "+0.1"])
def test_in_range_lingers_are_accepted(prog, value):
    r = ct(prog, "-q", "--metrics-addr", "127.0.0.1:0", "--metrics-linger", value, "--trace-dir", "t", "prog.py")
    assert r.returncode == 0, r.describe()
    assert marker(prog / "t")["state"] == "finished"


def test_blank_environment_values_count_as_unset(prog):
    blank = {
        v: ""
        for v in [
            "CODETRACER_TRACE_DIR", "CODETRACER_TRACE_FORMAT", "CODETRACER_ON_RECORDER_ERROR",
            "CODETRACER_LOG_LEVEL", "CODETRACER_LOG_FILE", "CODETRACER_SHADOW_SAMPLE",
            "CODETRACER_SHADOW_BUDGET", "CODETRACER_METRICS_ADDR", "CODETRACER_METRICS_ON_ERROR",
            "CODETRACER_METRICS_LINGER", "CODETRACER_METRICS_PUSH", "CODETRACER_TRACE_FILTER",
            "CODETRACER_MODULE_NAME_FROM_GLOBALS", "CODETRACER_SHADOW_COMPARE", "CODETRACER_MAX_TRACE_SIZE",
        ]
    }
    blank["CODETRACER_METRICS_LINGER"] = "  "
    r = ct(prog, "-q", "prog.py", env=clean_env(**blank))
    assert r.returncode == 0 and r.stdout == b"42\n", r.describe()
    assert (prog / "trace-out" / "trace.ctc").is_file()  # the default directory and format
    assert marker(prog / "trace-out")["shadow_compare"] is False


def test_an_environment_error_names_the_variable_not_the_flag(prog):
    r = ct(prog, "prog.py", env=clean_env(CODETRACER_TRACE_FORMAT="xml"))
    assert r.returncode == 2
    assert b"CODETRACER_TRACE_FORMAT" in r.stderr and b"json, binary" in r.stderr, r.stderr
    assert b"for '--format" not in r.stderr, r.stderr


@pytest.mark.parametrize("url", ["notaurl", "127.0.0.1:1", "localhost:9091/x"])
def test_a_push_url_without_a_scheme_is_refused_before_the_program_starts(prog, url):
    write(prog, "side.py", "open('ran.txt', 'w').write('x')\n")
    r = ct(prog, "--metrics-push", url, "--trace-dir", "t", "side.py")
    assert r.returncode == 2, r.describe()
    assert b"no scheme" in r.stderr and url.encode() in r.stderr, r.stderr
    assert not (prog / "ran.txt").exists() and not (prog / "t").exists()


def test_a_pyproject_toml_that_is_a_directory_is_an_error(prog):
    (prog / "app").mkdir()
    write(prog / "app", "side.py", "open('ran.txt', 'w').write('x')\n")
    (prog / "app" / "pyproject.toml").mkdir()
    r = ct(prog / "app", "--trace-dir", "t", "side.py")
    assert r.returncode == 2, r.describe()
    assert b"pyproject.toml" in r.stderr and b"directory" in r.stderr, r.stderr
    assert not (prog / "app" / "ran.txt").exists()


# --- D5: a failed -m writes nothing ---------------------------------------------------------


@pytest.mark.parametrize("module", ["json.nope", "", "nomain", "nomain.sub", "plain.sub", "ns.nope"])
def test_a_module_that_cannot_run_writes_nothing(prog, module):
    (prog / "nomain").mkdir()
    write(prog / "nomain", "__init__.py", "")
    write(prog, "plain.py", "")
    (prog / "ns" / "inner").mkdir(parents=True)
    assert ct(prog, "-q", "--trace-dir", "t", "prog.py").returncode == 0
    before = {n: (prog / "t" / n).read_bytes() for n in os.listdir(prog / "t") if (prog / "t" / n).is_file()}
    py = run([PYTHON, "-m", module], prog)
    r = ct(prog, "-q", "--trace-dir", "t", "-m", module)
    assert r.returncode == py.returncode == 1, r.describe()
    assert r.stderr.split(b": ", 1)[1] == py.stderr.split(b": ", 1)[1]
    after = {n: (prog / "t" / n).read_bytes() for n in os.listdir(prog / "t") if (prog / "t" / n).is_file()}
    assert after == before
    r = ct(prog, "-q", "--trace-dir", "fresh", "-m", module)
    assert r.returncode == 1 and not (prog / "fresh").exists()


@pytest.mark.parametrize("module", ["ns.inner.mod", "withmain", "plain"])
def test_modules_that_can_run_are_recorded(prog, module):
    (prog / "ns" / "inner").mkdir(parents=True)
    write(prog / "ns" / "inner", "mod.py", "print('ran')\n")
    (prog / "withmain").mkdir()
    write(prog / "withmain", "__main__.py", "print('ran')\n")
    write(prog, "plain.py", "print('ran')\n")
    r = ct(prog, "-q", "--trace-dir", "t", "-m", module)
    assert r.returncode == 0 and r.stdout == b"ran\n", r.describe()
    assert marker(prog / "t")["state"] == "finished"


# --- non-UTF-8 file names --------------------------------------------------------------------


def test_a_non_utf8_script_path_is_one_readable_path(tmp_path):
    d = os.fsencode(tmp_path)
    script = d + b"/caf\xe9.py"
    with open(script, "w") as f:
        f.write("def f():\n    return 1\nf()\n")
    r = subprocess.run([os.fsencode(CT_RECORD), b"-q", b"--trace-dir", d + b"/t", script],
                       cwd=tmp_path, capture_output=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, r
    paths = json.loads((tmp_path / "t" / "trace_paths.json").read_text())
    expected = os.fsdecode(d) + "/caf\\xe9.py"
    assert paths == [expected], paths
    meta = json.loads((tmp_path / "t" / "trace_metadata.json").read_text())
    assert meta["program"] == expected
    events = load_events(tmp_path / "t")
    names = [e["Function"]["name"] for e in events if "Function" in e]
    assert "\ufffd" not in "".join(names) and "f" in names, names
