"""A run that dies mid-way (SIGKILL, os._exit, a segfault) leaves a trace that reads back
up to the death, and the readers say the run did not finish.

The program makes N calls, prints that it did, and then waits (idle, in input()) for the
test. The test waits until the events file holds those N calls — which the writer thread
must get there on its own clock while the program makes no more events — and then the
program is killed or told to die. Nothing here waits for a fixed time.
"""

import os
import signal
import subprocess
import time

import pytest

from ct_recorder import trace_reader
from ct_recorder.trace_reader import INCOMPLETE, TraceEvents, load_paths, run_status
from tracecheck import CT_RECORD, EVENTS_FILE, PYTHON, TIMEOUT, clean_env

PROGRAM = '''\
import ctypes, os, sys

def leaf(i):
    return i + 1

def work(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total

work(int(sys.argv[1]))
print("did", sys.argv[1], "calls of leaf", flush=True)
how = sys.stdin.readline().strip()
if how == "exit":
    os._exit(3)
elif how == "segfault":
    ctypes.string_at(0)
print("not reached")
'''


def leaf_calls(trace_dir):
    """Calls of `leaf` in the trace, and how the events ended."""
    events = TraceEvents(trace_dir)
    functions, calls = [], 0
    for e in events:
        if "Function" in e:
            functions.append(e["Function"]["name"])
        elif "Call" in e and functions[e["Call"]["function_id"]] == "leaf":
            calls += 1
    return calls, events.complete, events.end_reason


def wait_for_calls(trace_dir, fmt, n, proc):
    """Until the events file holds `n` calls of `leaf` (the program is idle meanwhile)."""
    deadline = time.monotonic() + TIMEOUT
    events_file = trace_dir / EVENTS_FILE[fmt]
    while time.monotonic() < deadline:
        if events_file.exists() and leaf_calls(trace_dir)[0] >= n:
            return
        assert proc.poll() is None, "the program ended before it was told to"
        time.sleep(0.05)
    raise AssertionError(f"the events of {n} calls did not reach {events_file} within {TIMEOUT}s")


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
@pytest.mark.parametrize("death", ["sigkill", "os._exit(3)", "segfault"])
def test_a_killed_run_reads_back_up_to_the_kill(tmp_path, fmt, death):
    n = 20_000
    (tmp_path / "prog.py").write_text(PROGRAM)
    trace_dir = tmp_path / "trace"
    proc = subprocess.Popen(
        [CT_RECORD, "--format", fmt, "--trace-dir", str(trace_dir), "prog.py", str(n)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline() == f"did {n} calls of leaf\n".encode()
        wait_for_calls(trace_dir, fmt, n, proc)
        if death == "sigkill":
            proc.kill()
        else:
            proc.stdin.write(b"exit\n" if death == "os._exit(3)" else b"segfault\n")
            proc.stdin.flush()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    expected = {"sigkill": -signal.SIGKILL, "os._exit(3)": 3, "segfault": -signal.SIGSEGV}[death]
    assert proc.returncode == expected, proc.stderr.read().decode()

    calls, complete, why = leaf_calls(trace_dir)
    assert calls >= n
    assert complete is False and why
    finished, reason = run_status(trace_dir)
    assert not finished and "no trace_metadata.json" in reason
    # What the missing trace_paths.json would have said, rebuilt from the events.
    assert not (trace_dir / "trace_paths.json").exists()
    assert str(tmp_path / "prog.py") in load_paths(trace_dir)

    summary = subprocess.run(
        [PYTHON, "-m", "ct_recorder.summary", str(trace_dir)],
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert summary.returncode == 0, summary.stderr.decode()
    out = summary.stdout.decode()
    assert f"status:    {INCOMPLETE}" in out
    assert "leaf x" in out
    shown = int(out.split("leaf x", 1)[1].split(",")[0].split()[0])
    assert shown >= n


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_a_finished_run_reads_as_complete(tmp_path, fmt):
    (tmp_path / "prog.py").write_text(PROGRAM)
    trace_dir = tmp_path / "trace"
    r = subprocess.run(
        [CT_RECORD, "--format", fmt, "--trace-dir", str(trace_dir), "prog.py", "500"],
        cwd=tmp_path,
        input=b"return\n",
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert r.returncode == 0 and r.stdout.endswith(b"not reached\n"), r.stderr.decode()
    calls, complete, why = leaf_calls(trace_dir)
    assert (calls, complete, why) == (500, True, None)
    assert run_status(trace_dir) == (True, None)
    out = subprocess.run(
        [PYTHON, "-m", "ct_recorder.summary", str(trace_dir)],
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    ).stdout.decode()
    assert "status:    complete" in out and "leaf x500" in out


def cut_copy(trace_dir, dest, keep):
    """A copy of the run directory whose events file keeps `keep` of its bytes."""
    dest.mkdir()
    for name in os.listdir(trace_dir):
        data = (trace_dir / name).read_bytes()
        if name.startswith("trace.") and name != "trace_metadata.json":
            data = data[: int(len(data) * keep)]
        (dest / name).write_bytes(data)


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_an_events_file_cut_anywhere_reads_its_whole_events_and_says_so(tmp_path, fmt):
    (tmp_path / "prog.py").write_text(PROGRAM)
    trace_dir = tmp_path / "trace"
    subprocess.run(
        [CT_RECORD, "--format", fmt, "--trace-dir", str(trace_dir), "prog.py", "30000"],
        cwd=tmp_path,
        input=b"return\n",
        check=True,
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    full = list(TraceEvents(trace_dir))
    last = 0
    for i, keep in enumerate([0.13, 0.5, 0.77, 0.999]):
        cut = tmp_path / f"cut{i}"
        cut_copy(trace_dir, cut, keep)
        events = TraceEvents(cut)
        got = list(events)
        assert events.complete is False and events.end_reason
        # A prefix of the full trace, growing with the bytes kept.
        assert got == full[: len(got)]
        assert len(got) >= last
        last = len(got)
        finished, reason = run_status(cut)
        assert not finished and "not closed" in reason


def test_run_marker_that_says_running_makes_the_run_incomplete(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    trace_dir = tmp_path / "trace"
    subprocess.run(
        [CT_RECORD, "--trace-dir", str(trace_dir), "prog.py", "10"],
        cwd=tmp_path,
        input=b"return\n",
        check=True,
        capture_output=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    (trace_dir / "run.json").write_text('{"schema": 1, "run_id": "1-2", "state": "running"}')
    finished, reason = run_status(trace_dir)
    assert not finished and "running" in reason
    (trace_dir / "run.json").write_text('{"schema": 1, "run_id": "1-2", "state": "finished"}')
    assert trace_reader.run_status(trace_dir) == (True, None)
