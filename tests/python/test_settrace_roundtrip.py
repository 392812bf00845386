"""`sys.gettrace()` / `sys.settrace(old)` under ct-record on 3.11 (issue #13, D8): the
round trip keeps recording, and whatever is lost anyway is written down."""

import json
import sys

import pytest

from ct_recorder.trace_reader import load_events
from tracecheck import PYTHON, clean_env, run, CT_RECORD

ROUND_TRIP = """\
import sys, threading
seen = []
def tracer(frame, event, arg):
    seen.append(event)
    return None
def before():
    return 1
def hidden():
    return 2
def after():
    return 3
before()
old = sys.gettrace()
print("gettrace is None:", old is None)
sys.settrace(tracer)
hidden()
sys.settrace(old)
after()
print("tracer saw", sorted(set(seen)))
def in_thread():
    after()
t = threading.Thread(target=in_thread)
t.start(); t.join()
if "--lose" in sys.argv:
    sys.settrace(None)
    def never_recorded():
        return 4
    never_recorded()
"""


def functions(trace_dir):
    events = load_events(trace_dir)
    names = [e["Function"]["name"] for e in events if "Function" in e]
    calls = [names[e["Call"]["function_id"]] for e in events if "Call" in e]
    return calls


pytestmark = pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the 3.11 settrace back end")


def test_handing_the_hook_back_keeps_recording(tmp_path):
    (tmp_path / "prog.py").write_text(ROUND_TRIP)
    py = run([PYTHON, "prog.py"], tmp_path)
    r = run([CT_RECORD, "-q", "--trace-dir", "t", "prog.py"], tmp_path)
    assert r.returncode == py.returncode == 0, r.describe()
    # gettrace() is not None under the recorder (it is None under plain python).
    assert py.stdout.startswith(b"gettrace is None: True")
    assert r.stdout.replace(b"False", b"True", 1) == py.stdout, (r.stdout, py.stdout)
    calls = functions(tmp_path / "t")
    assert "before" in calls and "after" in calls, calls
    assert calls.count("after") == 2  # main thread and the thread started later
    assert "hidden" not in calls  # the program's own tracer had it
    meta = json.loads((tmp_path / "t" / "trace_metadata.json").read_text())
    gaps = meta["summary"]["recording_gaps"]
    assert [g["state"] for g in gaps] == ["resumed"], gaps
    assert gaps[0]["thread"] == 1 and gaps[0]["at"].endswith("prog.py:10"), gaps
    warnings = [l for l in r.stderr.decode().splitlines() if "warning" in l]
    assert len(warnings) == 1 and "recording_gaps" in warnings[0], r.stderr


def test_a_trace_function_never_handed_back_is_noted_with_one_warning(tmp_path):
    (tmp_path / "prog.py").write_text(ROUND_TRIP)
    r = run([CT_RECORD, "-q", "--trace-dir", "t", "prog.py", "--lose"], tmp_path)
    assert r.returncode == 0, r.describe()
    assert "never_recorded" not in functions(tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "trace_metadata.json").read_text())
    gaps = meta["summary"]["recording_gaps"]
    assert [g["state"] for g in gaps] == ["resumed", "lost"], gaps
    assert gaps[1]["thread"] == 1 and "<module>" in gaps[1]["at"] and "sys.settrace" in gaps[1]["why"]
    warnings = [l for l in r.stderr.decode().splitlines() if "warning" in l]
    assert len(warnings) == 1 and "2 stretch(es)" in warnings[0], r.stderr


THREAD_LOSES_HOOK = """\
import sys, threading
def recorded_in_thread():
    return 1
def lost_in_thread():
    return 2
def worker():
    recorded_in_thread()
    sys.settrace(None)
    lost_in_thread()
t = threading.Thread(target=worker)
t.start(); t.join()
def main_goes_on():
    return 3
main_goes_on()
print("done")
"""


def test_a_thread_that_lost_the_hook_and_ended_before_stop_is_listed(tmp_path):
    (tmp_path / "prog.py").write_text(THREAD_LOSES_HOOK)
    py = run([PYTHON, "prog.py"], tmp_path)
    r = run([CT_RECORD, "-q", "--trace-dir", "t", "prog.py"], tmp_path)
    assert r.returncode == py.returncode == 0 and r.stdout == py.stdout == b"done\n", r.describe()
    calls = functions(tmp_path / "t")
    assert "recorded_in_thread" in calls and "main_goes_on" in calls, calls
    assert "lost_in_thread" not in calls
    gaps = json.loads((tmp_path / "t" / "trace_metadata.json").read_text())["summary"]["recording_gaps"]
    assert len(gaps) == 1, gaps
    assert gaps[0]["state"] == "lost" and gaps[0]["thread"] != 1, gaps
    assert gaps[0]["at"].startswith("worker (") and "ended" in gaps[0]["why"], gaps
    warnings = [l for l in r.stderr.decode().splitlines() if "warning" in l]
    assert len(warnings) == 1 and "recording_gaps" in warnings[0], r.stderr
