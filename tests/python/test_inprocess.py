"""The in-process API (ct_recorder.start/stop/recording) used by a program run by plain
python: only what runs while recording is recorded, on every thread, and the trace reads
back."""

import sys

from tracecheck import PYTHON, Trace, check_metadata, line_of, lines_stepped, run


def in_file(trace, name, file):
    return trace.call_count(name, file)


def test_recording_block(work, trace_dir):
    prog = work / "inproc_recording.py"
    r = run([PYTHON, "inproc_recording.py", str(trace_dir)], work)
    assert r.returncode == 0 and r.stderr == b"", r.describe()
    # inside_block(x) = (x - 3) * 2; before_block(1) = 2; after_block(2) = 200.
    assert r.stdout.decode().splitlines() == [
        "stop() when not recording: None",
        "recording before: False",
        "before 2",
        "recording inside: True",
        "inside 4",
        "recording after: False",
        "thread result [14]",
        "after 200",
        "stop() after the block: None",
    ]
    # recording() without format= writes the default format, as ct-record does.
    assert (trace_dir / "trace.ctc").is_file() and not (trace_dir / "trace.json").exists()
    trace = Trace(trace_dir)
    check_metadata(trace, program="inproc_recording.py", args=[], workdir=work)
    # Called inside the block (once on the main thread, once on the worker), or not at all.
    assert in_file(trace, "inside_block", prog) == 2
    assert in_file(trace, "helper", prog) == 2
    assert in_file(trace, "thread_worker", prog) == 1
    assert in_file(trace, "before_block", prog) == 0
    assert in_file(trace, "after_block", prog) == 0
    # The thread started inside the block is recorded as a thread of its own.
    main_thread = trace.thread_ids[0]
    worker_threads = {t for t, name, _ in trace.calls if name == "thread_worker"}
    assert len(worker_threads) == 1 and main_thread not in worker_threads
    assert {t for t, name, _ in trace.calls if name == "inside_block"} == {main_thread} | worker_threads
    results = trace.calls_with_results("inside_block", prog)
    assert sorted((args["x"], ret) for args, ret in results) == [(5, 4), (10, 14)]
    # Lines: the block's body, the `with` line again when the block exits, and the bodies of
    # the functions called in the block. Nothing before or after it.
    expected = {
        line_of(prog, snippet)
        for snippet in (
            "with ct_recorder.recording(trace_dir):",
            'print("recording inside:"',
            'print("inside", inside_block(5))',
            "worker = threading.Thread(",
            "worker.start()",
            "worker.join()",
            "return helper(x) * 2",
            "return x - 3",
            "results.append(inside_block(10))",
        )
    }
    assert lines_stepped(trace, prog) == expected
    trace.check_balanced()


def test_start_stop(work, tmp_path):
    prog = work / "inproc_start_stop.py"
    tdir = tmp_path / "json-trace"
    r = run([PYTHON, "inproc_start_stop.py", str(tdir), "json"], work)
    assert r.returncode == 0 and r.stderr == b"", r.describe()
    assert r.stdout.decode().splitlines() == [
        "squares [1, 4, 9]",
        "summary is a dict: True",
        "summary keys: ['counts', 'events', 'recorder_errors']",
        "second stop: None",
    ]
    assert (tdir / "trace.json").is_file() and not (tdir / "trace.bin").exists()
    trace = Trace(tdir)
    check_metadata(trace, program="inproc_start_stop.py", args=[], workdir=work, fmt="json")
    trace.check_balanced()
    assert in_file(trace, "square_all", prog) == 1
    # 3.12+ inlines the comprehension into square_all (PEP 709): no call of its own.
    comprehension_calls = 1 if sys.version_info < (3, 12) else 0
    assert in_file(trace, "square_all.<locals>.<listcomp>", prog) == comprehension_calls
    assert in_file(trace, "outside", prog) == 0
    assert trace.calls_with_results("square_all", prog) == [({"values": [1, 2, 3]}, [1, 4, 9])]
    assert lines_stepped(trace, prog) == {
        line_of(prog, "squares = square_all([1, 2, 3])"),
        line_of(prog, "summary = ct_recorder.stop()"),
        line_of(prog, "return [v * v for v in values]"),
    }


def test_misuse_and_a_block_ended_by_an_exception(work, trace_dir):
    prog = work / "inproc_errors.py"
    (work / "plain-file").write_text("x")
    r = run([PYTHON, "inproc_errors.py", str(trace_dir), "plain-file"], work)
    assert r.returncode == 0 and r.stderr == b"", r.describe()
    assert r.stdout.decode().splitlines() == [
        "bad format -> ValueError",
        "bad on_error -> ValueError",
        "dir under a file -> OSError",
        "recording after failed starts: False",
        "second start -> RuntimeError",
        "block ended by ValueError('step 1 failed')",
        "recording after the block: False",
    ]
    trace = Trace(trace_dir)  # written although the block ended by an exception
    check_metadata(trace, program="inproc_errors.py", args=[], workdir=work)
    assert in_file(trace, "failing_step", prog) == 1
    assert "ValueError: step 1 failed" in trace.exceptions
    trace.check_balanced()
