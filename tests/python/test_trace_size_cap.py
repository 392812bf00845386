"""`--max-trace-size` (issue #14): a long recording cannot fill the disk unnoticed. Real
programs run under ct-record with a small cap: the program's output and exit status are
python's, one warning says where the trace stops, the trace reads back whole, and
trace_metadata.json says where it was cut. Bad sizes are usage errors."""

import json
import os
import subprocess
import sys

import pytest

from ct_recorder.trace_reader import TraceEvents
from tracecheck import CT_RECORD, EVENTS_FILE, PYTHON, clean_env, run

# Events per batch handed to the writer thread (src/writer/mod.rs, BATCH_EVENTS): the cap
# is checked after each batch, so the file passes it by at most one batch.
BATCH_EVENTS = 4096

# Varied values, so that the binary format (zstd) does not squeeze a batch to nothing.
PROGRAM = """\
import sys, threading

def work(n, seed):
    total = seed
    for i in range(n):
        total = (total * 1103515245 + 12345) % 2147483648
    return total

def label(x):
    return "k%08x" % x

def background():
    seed = 7
    for _ in range(500):
        seed = work(10, seed)
    return seed

t = threading.Thread(target=background)
t.start()
seed, labels = 1, []
for _ in range(20000):
    seed = work(10, seed)
    labels.append(label(seed))
t.join()
print("last", labels[-1])

def finale():
    print("finale ran")
    sys.stderr.write("program stderr line\\n")
    raise SystemExit(3)

finale()
"""

ROUND = {"json": "2M", "binary": "150K", "compact": "150K"}
LIMIT = {"json": 2_000_000, "binary": 150_000, "compact": 150_000}


def warnings_in(stderr):
    return [line for line in stderr.decode().splitlines() if line.startswith("ct-record: warning:")]


def metadata(trace_dir):
    return json.loads((trace_dir / "trace_metadata.json").read_text())


def recorded_functions(trace_dir):
    names, calls = [], []
    for e in TraceEvents(trace_dir, kinds={"Function", "Call"}):
        if "Function" in e:
            names.append(e["Function"]["name"])
        else:
            calls.append(names[e["Call"]["function_id"]])
    return calls


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "busy.py"
    path.write_text(PROGRAM)
    return path


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_the_cap_stops_recording_and_the_program_runs_on_unchanged(prog, tmp_path, fmt):
    trace = tmp_path / f"trace-{fmt}"
    py = run([PYTHON, str(prog)], tmp_path)
    ct = run([CT_RECORD, "--trace-dir", str(trace), "--format", fmt,
              "--max-trace-size", ROUND[fmt], str(prog)], tmp_path)
    # The program: same output, same exit status, its own stderr line untouched.
    assert py.returncode == 3 and ct.returncode == 3, ct.describe()
    assert ct.stdout == py.stdout, ct.describe()
    assert b"finale ran" in ct.stdout
    others = [l for l in ct.stderr.decode().splitlines(keepends=True)
              if not l.startswith("ct-record: warning:")]
    assert "".join(others) == py.stderr.decode(), ct.describe()
    # Exactly one warning, naming the cap and the cut.
    warned = warnings_in(ct.stderr)
    assert len(warned) == 1, ct.describe()
    cap = metadata(trace)["summary"]["trace_size_cap"]
    assert f"--max-trace-size ({LIMIT[fmt]} bytes)" in warned[0]
    assert f"after event {cap['events_written']}" in warned[0]
    # trace_metadata.json says where the trace stops.
    events_file = trace / EVENTS_FILE[fmt]
    size = events_file.stat().st_size
    assert cap["limit_bytes"] == LIMIT[fmt]
    assert cap["reached"] is True
    assert cap["after_cut"] == "nothing"
    assert cap["bytes_written"] == size
    # The trace is whole: the reader finds a closed file with exactly that many events.
    reader = TraceEvents(trace)
    events = list(reader)
    assert reader.complete is True, reader.end_reason
    assert len(events) == cap["events_written"] == metadata(trace)["summary"]["events"]
    # Recording stopped: the program's last function is not in the trace.
    calls = recorded_functions(trace)
    assert "work" in calls and "label" in calls and "finale" not in calls
    # Past the cap by at most one batch (bounded by the largest event of the file, as JSON).
    largest = max(len(json.dumps(e, separators=(",", ":"))) for e in events)
    assert LIMIT[fmt] <= size <= LIMIT[fmt] + BATCH_EVENTS * (largest + 2) + 1024, (size, largest)
    # The run finished normally, and the trace summary says where it was cut.
    assert json.loads((trace / "run.json").read_text())["state"] == "finished"
    summary = run([PYTHON, "-m", "ct_recorder.summary", str(trace)], tmp_path)
    assert summary.returncode == 0, summary.describe()
    text = summary.stdout.decode()
    assert "status:    complete" in text
    assert (f"cut:       at --max-trace-size ({LIMIT[fmt]} bytes) after "
            f"{cap['events_written']} events") in text, text


def test_below_the_cap_nothing_changes_and_the_default_is_recorded(prog, tmp_path):
    trace = tmp_path / "trace"
    ct = run([CT_RECORD, "--trace-dir", str(trace), str(prog)], tmp_path)
    assert ct.returncode == 3, ct.describe()
    assert warnings_in(ct.stderr) == [], ct.describe()
    cap = metadata(trace)["summary"]["trace_size_cap"]
    assert cap == {"limit_bytes": 5_000_000_000, "reached": False, "events_written": None,
                   "bytes_written": None, "after_cut": None}
    assert "finale" in recorded_functions(trace)


@pytest.mark.parametrize("how", [["--max-trace-size", "unlimited"], ["--max-trace-size=none"], "env"])
def test_unlimited_means_no_cap(prog, tmp_path, how):
    trace = tmp_path / "trace"
    env = clean_env(CODETRACER_MAX_TRACE_SIZE="unlimited") if how == "env" else clean_env()
    opts = [] if how == "env" else how
    ct = run([CT_RECORD, "--trace-dir", str(trace), *opts, str(prog)], tmp_path, env=env)
    assert ct.returncode == 3, ct.describe()
    assert metadata(trace)["summary"]["trace_size_cap"]["limit_bytes"] is None


def test_the_environment_variable_sets_the_cap(prog, tmp_path):
    trace = tmp_path / "trace"
    # JSON: the program's trace is sized to pass 1.5 MiB in that format.
    ct = run([CT_RECORD, "--trace-dir", str(trace), "--format", "json", str(prog)], tmp_path,
             env=clean_env(CODETRACER_MAX_TRACE_SIZE="1.5MiB"))
    cap = metadata(trace)["summary"]["trace_size_cap"]
    assert cap["limit_bytes"] == 1_572_864 and cap["reached"] is True, ct.describe()


@pytest.mark.parametrize("value", ["0", "0K", "-5M", "lots", "5X", "1e30", "inf", "nan", "0x100", ""])
def test_bad_sizes_are_usage_errors_before_anything_runs(prog, tmp_path, value):
    trace = tmp_path / "trace"
    ct = run([CT_RECORD, "--trace-dir", str(trace), f"--max-trace-size={value}", str(prog)], tmp_path)
    assert ct.returncode == 2, ct.describe()
    err = ct.stderr.decode()
    assert "--max-trace-size" in err and ("500M" in err or "unlimited" in err or "too large" in err), err
    assert ct.stdout == b""
    assert not trace.exists()


def test_a_bad_environment_value_names_the_variable(prog, tmp_path):
    trace = tmp_path / "trace"
    ct = run([CT_RECORD, "--trace-dir", str(trace), str(prog)], tmp_path,
             env=clean_env(CODETRACER_MAX_TRACE_SIZE="12 parsecs"))
    assert ct.returncode == 2, ct.describe()
    assert "CODETRACER_MAX_TRACE_SIZE" in ct.stderr.decode()
    assert not trace.exists()


def test_help_shows_the_default_and_the_variable(tmp_path):
    out = subprocess.run([CT_RECORD, "--help"], capture_output=True, text=True, env=clean_env())
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "--max-trace-size <SIZE>" in text
    assert "[env: CODETRACER_MAX_TRACE_SIZE=]" in text
    assert "[default: 5G]" in text


LATE_IMPORTS = """\
import sys
sys.path.insert(0, {mods!r})

def work(n):
    total = 0
    for i in range(n):
        total += i % 7
    return total

results = [work(200) for _ in range(800)]
import late_one, late_two   # first seen after the cap
print("late", late_one.VALUE + late_two.VALUE)
"""


@pytest.mark.legacy_engine
def test_shadow_comparisons_and_metrics_go_on_after_the_cap(tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "late_one.py").write_text("VALUE = 1\n")
    (mods / "late_two.py").write_text("VALUE = 2\n")
    prog = tmp_path / "late.py"
    prog.write_text(LATE_IMPORTS.format(mods=str(mods)))
    full, capped = tmp_path / "full", tmp_path / "capped"
    a = run([CT_RECORD, "--shadow-compare", "--trace-dir", str(full), str(prog)], tmp_path)
    # JSON: the program's trace is sized to pass 200K in that format.
    b = run([CT_RECORD, "--shadow-compare", "--trace-dir", str(capped), "--format", "json",
             "--max-trace-size", "200K", str(prog)], tmp_path)
    assert a.returncode == b.returncode == 0, b.describe()
    assert a.stdout == b.stdout == b"late 3\n"
    cap = metadata(capped)["summary"]["trace_size_cap"]
    assert cap["reached"] is True and cap["after_cut"] == "naming", b.describe()
    # The modules first seen after the cut are not in the trace...
    assert "<late_one>" not in recorded_functions(capped)
    assert "<late_one>" in recorded_functions(full)
    # ...but they were still compared: the evidence is that of the whole run.
    s_full = json.loads((full / "shadow" / "summary.json").read_text())
    s_cap = json.loads((capped / "shadow" / "summary.json").read_text())
    assert s_cap["comparisons"] == s_full["comparisons"] > 0
    assert s_cap["divergences"]["total"] == s_full["divergences"]["total"]
    assert s_cap["run"]["trace_cut"] == {"limit_bytes": 200_000, "events": cap["events_written"],
                                         "bytes": cap["bytes_written"]}
    assert "trace_cut" not in s_full["run"]
    # One warning, saying that the evidence goes on; the end-of-run summary says it too.
    warned = warnings_in(b.stderr)
    assert len(warned) == 1 and "shadow comparisons and metrics go on" in warned[0], b.describe()
    assert "trace cut at --max-trace-size (200000 bytes)" in b.stderr.decode()
    # The report notes the capped run, and only that one.
    rollout = str(CT_RECORD).replace("ct-record", "ct-rollout")
    rep = subprocess.run([rollout, "report", str(full), str(capped)], capture_output=True,
                         text=True, env=clean_env(COLUMNS="200"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.count("cut at --max-trace-size") == 1, rep.stdout


INPROC = """\
import sys, ct_recorder
def work(n):
    return sum(i % 7 for i in range(n))
ct_recorder.start(sys.argv[1], max_trace_size=sys.argv[2], format="json")  # sized for JSON
print(sum(work(100) for _ in range(2000)))
summary = ct_recorder.stop()
print(summary["trace_size_cap"]["reached"], summary["trace_size_cap"]["limit_bytes"])
"""


def test_the_python_api_takes_the_same_sizes(tmp_path):
    prog = tmp_path / "inproc.py"
    prog.write_text(INPROC)
    ok = run([PYTHON, str(prog), str(tmp_path / "t1"), "100K"], tmp_path)
    assert ok.returncode == 0, ok.describe()
    assert ok.stdout.decode().splitlines()[-1] == "True 100000"
    assert len(warnings_in(ok.stderr)) == 1, ok.describe()
    bad = run([PYTHON, str(prog), str(tmp_path / "t2"), "0"], tmp_path)
    assert bad.returncode == 1
    assert "ConfigError: max_trace_size: a cap of 0 bytes would record nothing" in bad.stderr.decode()
