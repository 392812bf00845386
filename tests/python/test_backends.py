"""The two back ends (docs/recording.md): what each interpreter version's callbacks cost and
allow, on real programs run under ct-record.

- 3.11 (`PyEval_SetTrace`): skipped code's lines cost no callback, its calls do; threads of
  `_thread.start_new_thread` and a program's own `sys.settrace` are outside the recording.
- 3.12+ (`sys.monitoring`): skipped code costs one callback per code object and then none;
  every thread is recorded; the program's own `sys.settrace` / `sys.setprofile` and other
  monitoring tools coexist with the recorder.

Callback costs are counted (`counts.callbacks` in trace_metadata.json), never timed.
"""

import sys

import pytest

from filters_support import project_filter, record, write_files
from hot_support import HOT_PY

MONITORING = sys.version_info >= (3, 12)

SKIPPED = {
    "app.py": """
        import sys

        import hot


        def recorded(n):
            return n + 1


        def main(n):
            hot.spin(n)
            hot.many_calls(n)
            return recorded(n)


        print(main(int(sys.argv[1])))
    """,
    "hot.py": HOT_PY,
}


def skipped_app(tmp_path):
    proj = tmp_path / "proj"
    write_files(proj, SKIPPED)
    project_filter(proj, "skip-hot", [{"selector": "pkg:hot", "exec": "skip"}])
    return proj


def callbacks_for(proj, tmp_path, n):
    run = record(proj / "app.py", trace_dir=tmp_path / f"trace-{n}", cwd=proj, args=(str(n),))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(n + 1)
    trace = run.trace
    # The skipped module leaves nothing in the trace; the rest is recorded.
    assert not any(c.path.endswith("hot.py") for c in trace.calls)
    assert not any(s[0].endswith("hot.py") for s in trace.steps)
    assert trace.only_call("recorded", "app.py").return_value == n + 1
    return run.metadata["summary"]["counts"]["callbacks"]


def test_skipped_code_costs_no_callbacks_per_line_or_call(tmp_path):
    """In the second run the skipped module runs 3 * 2,000 more loop lines and 2,000 more
    calls; the recorded code runs exactly the same events. The skipped lines cost no callback
    on either back end. The skipped calls cost none on 3.12+ (each code object's PY_START is
    disabled after its first); on 3.11 each still costs its call and return events."""
    proj = skipped_app(tmp_path)
    small = callbacks_for(proj, tmp_path, 10)
    large = callbacks_for(proj, tmp_path, 2010)
    assert small > 0
    if MONITORING:
        assert large == small
    else:
        assert large - small == 2 * 2000


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring exists from CPython 3.12")
def test_restart_events_by_another_tool_keeps_the_recording_right(tmp_path):
    """Another tool's `sys.monitoring.restart_events()` re-enables the recorder's DISABLEd
    locations too: skipped code then reaches the recorder again, which disables it again,
    and the recording is as without the restart."""
    proj = skipped_app(tmp_path)
    (proj / "app.py").write_text(
        (proj / "app.py").read_text().replace(
            "            return recorded(n)",
            "            sys.monitoring.restart_events()\n"
            "            hot.spin(n)\n"
            "            hot.tiny(0)\n"
            "            return recorded(n)",
        )
    )
    run = record(proj / "app.py", trace_dir=tmp_path / "trace", cwd=proj, args=("50",))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "51"
    trace = run.trace
    assert not any(c.path.endswith("hot.py") for c in trace.calls)
    assert trace.only_call("main", "app.py").return_value == 51
    assert trace.only_call("recorded", "app.py").arg("n") == 50


THREADS = """
    import _thread
    import threading


    def low_level(box, done):
        box.append(sum(range(10)))
        done.release()


    def main():
        box = []
        done = _thread.allocate_lock()
        done.acquire()
        _thread.start_new_thread(low_level, (box, done))
        done.acquire()
        t = threading.Thread(target=box.append, args=(7,))
        t.start()
        t.join()
        return box


    print(main())
"""


def test_start_new_thread_threads(tmp_path):
    """3.12+: monitoring is per interpreter, so a `_thread.start_new_thread` thread is
    recorded, on a thread of its own. 3.11: such a thread never consults
    `threading.settrace` and is not recorded (a documented limitation)."""
    write_files(tmp_path, {"prog.py": THREADS})
    run = record(tmp_path / "prog.py", trace_dir=tmp_path / "trace", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[45, 7]"
    trace = run.trace
    calls = trace.calls_of("low_level", "prog.py")
    main = trace.only_call("main", "prog.py")
    if MONITORING:
        assert len(calls) == 1
        assert calls[0].return_value is None
        assert calls[0].thread != main.thread
    else:
        assert calls == []


SETTRACE = """
    import sys


    def traced_by_program(x):
        return x * 2


    def after(x):
        return x + 1


    seen = []


    def tracer(frame, event, arg):
        if frame.f_code.co_name == "traced_by_program":
            seen.append(event)
        return tracer


    def profiler(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "after":
            seen.append("profiled")


    def main():
        sys.settrace(tracer)
        sys.setprofile(profiler)
        a = traced_by_program(3)
        b = after(a)
        sys.settrace(None)
        sys.setprofile(None)
        return a, b


    print(main(), seen)
"""


def test_program_settrace_and_setprofile(tmp_path):
    """3.12+: the program's own trace and profile functions see their events and the
    recording goes on. 3.11: the program's `sys.settrace` replaces the recorder's hook on
    that thread, so what follows is not recorded (a documented limitation)."""
    write_files(tmp_path, {"prog.py": SETTRACE})
    run = record(tmp_path / "prog.py", trace_dir=tmp_path / "trace", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # The program's own tools work under the recorder on every version.
    assert run.stdout.strip() == "(6, 7) ['call', 'line', 'return', 'profiled']"
    trace = run.trace
    if MONITORING:
        assert trace.only_call("traced_by_program", "prog.py").return_value == 6
        assert trace.only_call("after", "prog.py").return_value == 7
        assert trace.only_call("main", "prog.py").returned
    else:
        assert trace.calls_of("after", "prog.py") == []


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring exists from CPython 3.12")
def test_tool_id_claimed_while_recording_and_freed_at_stop(tmp_path):
    """The recorder holds tool id 4 under its name while recording, and frees it at stop."""
    write_files(
        tmp_path,
        {
            "prog.py": """
                import sys

                import ct_recorder

                before = sys.monitoring.get_tool(4)
                ct_recorder.start(sys.argv[1])
                during = sys.monitoring.get_tool(4)
                ct_recorder.stop()
                print(before, during, sys.monitoring.get_tool(4))
            """
        },
    )
    from tracecheck import PYTHON, clean_env, run as run_cmd

    res = run_cmd([PYTHON, "prog.py", str(tmp_path / "trace")], tmp_path, env=clean_env())
    assert res.returncode == 0, res.describe()
    assert res.stdout.decode().split() == ["None", "ct-recorder", "None"]


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring exists from CPython 3.12")
def test_held_tool_ids_fall_back_then_fail_clearly(tmp_path):
    """With id 4 held by another tool the recorder takes 3; with 3, 4 and 5 all held it
    refuses to start, naming the holders, and the program goes on."""
    write_files(
        tmp_path,
        {
            "prog.py": """
                import sys

                import ct_recorder

                sys.monitoring.use_tool_id(4, "other-a")
                ct_recorder.start(sys.argv[1] + "-1")
                print("fallback:", sys.monitoring.get_tool(3))
                ct_recorder.stop()
                sys.monitoring.use_tool_id(3, "other-b")
                sys.monitoring.use_tool_id(5, "other-c")
                try:
                    ct_recorder.start(sys.argv[1] + "-2")
                except Exception as exc:
                    print("refused:", type(exc).__name__, exc)
                print("recording:", ct_recorder.is_recording())
            """
        },
    )
    from tracecheck import PYTHON, clean_env, run as run_cmd

    res = run_cmd([PYTHON, "prog.py", str(tmp_path / "trace")], tmp_path, env=clean_env())
    assert res.returncode == 0, res.describe()
    out = res.stdout.decode().splitlines()
    assert out[0] == "fallback: ct-recorder"
    assert out[1].startswith("refused: ConfigError ")
    assert "4 (other-a)" in out[1] and "3 (other-b)" in out[1] and "5 (other-c)" in out[1]
    assert out[2] == "recording: False"


FORK_WITH_THREAD = """
    import os
    import threading

    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    release.set()
    worker.join()
    print("forked")
"""


@pytest.mark.parametrize("program_threads", [1, 2])
def test_fork_warning_as_under_python(tmp_path, program_threads):
    """3.12+ warns at os.fork() in a multi-threaded process. The recorder's own threads do
    not count: a single-threaded program gets no warning, a program with a thread of its own
    gets python's warning, under ct-record as under python."""
    from tracecheck import run_pair

    source = FORK_WITH_THREAD
    if program_threads == 1:
        source = source.replace("    worker.start()\n", "").replace("    worker.join()\n", "")
    write_files(tmp_path, {"prog.py": source})
    py, ct = run_pair(["prog.py"], tmp_path, tmp_path / "trace")
    assert py.returncode == ct.returncode == 0, ct.describe()
    assert py.stdout == ct.stdout == b"forked\n"
    warned = b"is multi-threaded, use of fork() may lead to deadlocks" in py.stderr
    assert warned == (MONITORING and program_threads == 2)
    assert ct.stderr == py.stderr.replace(str(py_pid(py)).encode(), str(py_pid(ct)).encode())


def py_pid(run):
    """The pid CPython's fork warning names (None when there is no warning)."""
    import re

    m = re.search(rb"\(pid=(\d+)\)", run.stderr)
    return int(m.group(1)) if m else None


def test_every_in_place_read_is_active_on_this_interpreter(tmp_path):
    """The layout checks at session start pass on every supported version, so the hot path
    reads what it can in place (trace_metadata.json's `summary.fast_paths`). A check that
    fails falls back to the C API and records the same trace, only slower: this test is what
    notices such a fallback, e.g. after a CPython point release moved a field."""
    proj = tmp_path / "proj"
    write_files(proj, {"app.py": """
        import threading


        def add(a, b):
            return a + b


        def work():
            return sum(add(i, 1) for i in range(50))


        t = threading.Thread(target=work)
        t.start()
        t.join()
        print(work())
    """})
    run = record(proj / "app.py", trace_dir=tmp_path / "trace", cwd=proj)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(sum(range(1, 51)))
    assert run.metadata["summary"]["fast_paths"] == {
        "backend": "sys.monitoring" if MONITORING else "settrace",
        "arguments": "frame-getvar" if MONITORING else "fast-locals",
        "frame_fields_in_place": None if MONITORING else True,
        "thread_id_in_place": True,
        "current_thread_in_place": None if MONITORING else True,
        "small_int_in_place": True,
    }
    # And the in-place reads read right, on both threads: small ints as arguments and returns.
    calls = run.trace.calls_of("add", "app.py")
    got = sorted((c.arg("a"), c.arg("b"), c.return_value) for c in calls)
    assert got == sorted([(i, 1, i + 1) for i in range(50)] * 2)
    assert len({c.thread for c in calls}) == 2
