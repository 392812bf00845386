"""In-process API misuse and failures: what raises, and a block that ends by an exception."""
import sys

import ct_recorder


def failing_step(x):
    raise ValueError(f"step {x} failed")


def attempt(label, func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except Exception as exc:
        print(label, "->", type(exc).__name__)
    else:
        print(label, "-> ok")


def main(trace_dir, blocker):
    attempt("bad format", ct_recorder.start, trace_dir, format="xml")
    attempt("bad on_error", ct_recorder.start, trace_dir, on_error="sometimes")
    attempt("dir under a file", ct_recorder.start, blocker + "/sub")
    print("recording after failed starts:", ct_recorder.is_recording())
    try:
        with ct_recorder.recording(trace_dir):
            attempt("second start", ct_recorder.start, trace_dir)
            failing_step(1)
    except ValueError as exc:
        print("block ended by", repr(exc))
    print("recording after the block:", ct_recorder.is_recording())


main(sys.argv[1], sys.argv[2])
