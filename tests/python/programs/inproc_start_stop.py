"""In-process API: ct_recorder.start()/stop() around a computation; stop() returns a summary."""
import sys

import ct_recorder


def square_all(values):
    return [v * v for v in values]


def outside(values):
    return len(values)


def main(trace_dir, fmt):
    outside([1])
    ct_recorder.start(trace_dir, format=fmt)
    squares = square_all([1, 2, 3])
    summary = ct_recorder.stop()
    outside(squares)
    print("squares", squares)
    print("summary is a dict:", isinstance(summary, dict))
    print("summary keys:", sorted(k for k in ("events", "counts", "recorder_errors") if k in summary))
    print("second stop:", ct_recorder.stop())


main(sys.argv[1], sys.argv[2])
