"""Bounded fork stress (issue #13): hundreds of fork/exit cycles under
`ct-record -q --shadow-compare`, each run with a timeout, so a lock held across fork by the
writer, metrics or shadow side (a hang seen once in ~350 runs) fails the suite instead of
hanging it. The child exits through `sys.exit(0)` (interpreter shutdown, atexit, the
recorder's stop) right after fork, and after some work; the parent keeps recording."""

import json

import pytest

from ct_recorder.trace_reader import load_events
from tracecheck import CT_RECORD, run

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

FORKS = """\
import os, sys, threading
def work(n):
    return sum(range(n))
def worker():
    for _ in range(200):
        work(50)
# Another recording thread runs while the main thread forks.
t = threading.Thread(target=worker)
t.start()
statuses = []
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        if i % 2:
            sys.exit(0)
        work(100)
        sys.exit(0)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    work(10)
t.join()
print("children", len(statuses), "failed", sum(1 for s in statuses if s))
"""

RUNS = 25
FORKS_PER_RUN = 12  # 300 fork/exit cycles in all


def test_hundreds_of_fork_exit_cycles_never_hang(tmp_path):
    (tmp_path / "forks.py").write_text(FORKS)
    for n in range(RUNS):
        trace = tmp_path / f"t{n}"
        r = run([CT_RECORD, "-q", "--shadow-compare", "--trace-dir", str(trace), "forks.py", str(FORKS_PER_RUN)],
                tmp_path, timeout=60)
        assert r.returncode == 0, r.describe()
        assert r.stdout == f"children {FORKS_PER_RUN} failed 0\n".encode(), r.describe()
        marker = json.loads((trace / "run.json").read_text())
        assert marker["state"] == "finished" and marker["stop_errors"] == [], marker
        # The parent's trace is whole: its own work() calls (one per fork, 200 in the other
        # thread) are all there, and none of the children's.
        events = load_events(trace)
        names = [e["Function"]["name"] for e in events if "Function" in e]
        calls = [names[e["Call"]["function_id"]] for e in events if "Call" in e]
        assert calls.count("work") == FORKS_PER_RUN + 200, calls.count("work")
