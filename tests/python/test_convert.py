"""`python -m ct_recorder.convert` as a user runs it: a real recording in the default
(compact) format becomes CodeTracer binary or JSON holding the events that recording in that
format writes; a killed run converts up to its last event and stays unfinished; bad input is
a clear error that writes nothing."""

import json
import re
import signal
import subprocess
import time

import pytest

from ct_recorder.trace_reader import TraceEvents, load_events, run_status
from test_schemas import validator
from tracecheck import CT_RECORD, PYTHON, TIMEOUT, clean_env

PROGRAM = '''\
import sys

def scale(x, k=2.5, tag=None):
    return {"x": x, "scaled": x * k, "tag": tag, "ok": x % 2 == 0}

def walk(n):
    out = []
    for i in range(n):
        out.append(scale(i, tag=f"t{i}"))
    return len(out)

print(walk(int(sys.argv[1])))
if len(sys.argv) > 2:
    print("waiting", flush=True)
    sys.stdin.readline()
'''


def convert(*args):
    return subprocess.run([PYTHON, "-m", "ct_recorder.convert", *map(str, args)],
                          capture_output=True, text=True, env=clean_env(), timeout=TIMEOUT)


def record(work, trace, *opts, n=300):
    r = subprocess.run([CT_RECORD, "--trace-dir", str(trace), *opts, "prog.py", str(n)], cwd=work,
                       capture_output=True, env=clean_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    return trace


def comparable(events):
    """Thread ids differ between two runs of the program; nothing else does."""
    return [re.sub(r'"Thread(Start|Switch)": \d+', r'"Thread\1": ?', json.dumps(e)) for e in events]


@pytest.fixture
def work(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    return tmp_path


@pytest.mark.parametrize("fmt,events_file", [("binary", "trace.bin"), ("json", "trace.json")])
def test_a_compact_trace_converts_to_what_recording_in_that_format_writes(work, fmt, events_file):
    compact = record(work, work / "compact")
    assert (compact / "trace.ctc").is_file()
    direct = record(work, work / "direct", "--format", fmt)
    out = work / "converted"
    done = convert(compact, out, "--format", fmt)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    events = load_events(out)
    assert done.stdout == f"{out / events_file}: {len(events)} events ({fmt})\n"
    assert sorted(p.name for p in out.iterdir()) == sorted([events_file, "trace_metadata.json",
                                                           "trace_paths.json"])
    # The same events as the compact trace, and as a recording made in that format.
    assert events == load_events(compact)
    assert comparable(events) == comparable(load_events(direct))
    reader = TraceEvents(out)
    assert sum(1 for _ in reader) == len(events) and reader.complete is True
    assert run_status(out) == (True, None)
    # The metadata says what the trace now is, and where it came from.
    meta = json.loads((out / "trace_metadata.json").read_text())
    assert meta["format"] == fmt
    assert meta["summary"]["events_file"] == str(out / events_file)
    assert meta["converted_from"] == {"format": "compact", "events_file": str(compact / "trace.ctc")}
    validator("trace-metadata").validate(meta)
    assert (out / "trace_paths.json").read_text() == (compact / "trace_paths.json").read_text()
    # The summary reads the converted trace like any other.
    s = subprocess.run([PYTHON, "-m", "ct_recorder.summary", str(out)], capture_output=True,
                       text=True, env=clean_env(), timeout=TIMEOUT)
    assert s.returncode == 0 and "scale x300" in s.stdout, s.stdout + s.stderr


def test_the_default_output_format_is_codetracer_binary(work):
    compact = record(work, work / "compact", n=20)
    done = convert(compact, work / "out")
    assert done.returncode == 0, done.stderr
    assert (work / "out" / "trace.bin").is_file()
    assert (work / "out" / "trace.bin").read_bytes()[:8] == bytes.fromhex("c0de72ace2010000")


def test_a_killed_run_converts_up_to_its_last_event_and_stays_unfinished(work):
    trace = work / "killed"
    proc = subprocess.Popen([CT_RECORD, "--trace-dir", str(trace), "prog.py", "2000", "wait"],
                            cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        assert proc.stdout.readline() == b"2000\n"
        assert proc.stdout.readline() == b"waiting\n"
        # The writer hands events to the file at least every 200 ms.
        deadline = time.monotonic() + TIMEOUT
        while sum(1 for e in TraceEvents(trace, kinds={"Call"})) < 2000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    src = load_events(trace)
    done = convert(trace, work / "out")
    assert done.returncode == 0, done.stderr
    assert "incomplete: the run did not finish" in done.stderr
    assert "the source has no trace_metadata.json; not copied" in done.stderr
    reader = TraceEvents(work / "out")
    got = list(reader)
    assert got == src and len([e for e in got if "Call" in e]) >= 2000
    assert reader.complete is False and reader.end_reason


@pytest.mark.parametrize("case", ["missing source", "not a trace", "output holds a trace",
                                  "output is the source", "unknown format", "malformed event"])
def test_bad_input_is_a_clear_error_and_writes_nothing(work, case):
    compact = record(work, work / "compact", n=5)
    out = work / "out"
    if case == "missing source":
        args, want = [work / "nope", out], "No such file"
    elif case == "not a trace":
        (work / "junk.ctc").write_bytes(b"not a trace at all")
        args, want = [work / "junk.ctc", out], "not a compact trace (trace.ctc) (wrong header)"
    elif case == "output holds a trace":
        out.mkdir()
        (out / "trace.bin").write_bytes(b"keep me")
        args, want = [compact, out], "already holds trace.bin"
    elif case == "output is the source":
        args, want = [compact, compact], "the output directory is the source's"
    elif case == "malformed event":
        # Found only once the output directory is made and half the events are written.
        json_trace = record(work, work / "json", "--format", "json")
        events = json_trace / "trace.json"
        data = events.read_bytes()
        at = data.index(b'"path_id"', len(data) // 2)  # a step without its path: valid JSON
        events.write_bytes(data[:at] + b'"path_xx"' + data[at + len(b'"path_id"'):])
        compact = json_trace
        args, want = [json_trace, out], "a malformed event"
    else:
        args, want = [compact, out, "--format", "yaml"], "invalid choice: 'yaml'"
    before = sorted(p.name for p in compact.iterdir())
    done = convert(*args)
    assert done.returncode != 0 and want in done.stderr, done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in compact.iterdir()) == before
    if case == "output holds a trace":
        assert sorted(p.name for p in out.iterdir()) == ["trace.bin"]
        assert (out / "trace.bin").read_bytes() == b"keep me"
    elif case != "output is the source":
        assert not out.exists(), sorted(p.name for p in out.iterdir())
