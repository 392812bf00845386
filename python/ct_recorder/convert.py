"""``python -m ct_recorder.convert TRACE OUT_DIR [--format binary|json|compact]``.

Converts a recorded trace into another events format, above all the compact ``trace.ctc``
into CodeTracer binary (``trace.bin``, the default) or JSON (``trace.json``), which
CodeTracer's own tools read. ``OUT_DIR`` receives the events file and copies of
``trace_metadata.json`` and ``trace_paths.json``; it must not hold a trace already. The
conversion streams (flat memory) and writes what recording in that format would have
written, event for event. A trace whose run did not finish converts up to its last
written event and stays marked as unfinished.
"""

import argparse
import os
import sys

from . import _native

FORMATS = ("binary", "json", "compact")


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m ct_recorder.convert",
        description="Convert a ct-record trace into another events format (default: CodeTracer binary).",
    )
    p.add_argument("trace", help="a trace directory, or an events file (trace.ctc, trace.bin, trace.json)")
    p.add_argument("out_dir", help="directory for the converted trace (created; must not hold a trace)")
    p.add_argument("--format", choices=FORMATS, default="binary",
                   help="events format to write (default: %(default)s)")
    return p


def main(argv=None):
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        done = _native.convert_trace(os.fspath(args.trace), os.fspath(args.out_dir), args.format)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"ct_recorder.convert: {exc}\n")
        return 1
    print(f"{done['events_file']}: {done['events']} events ({done['format']})")
    if not done["complete"]:
        sys.stderr.write(
            f"ct_recorder.convert: incomplete: the run did not finish ({done['end_reason']}); "
            "converted up to its last written event, and the output says so too\n"
        )
    for name in done["missing"]:
        sys.stderr.write(f"ct_recorder.convert: the source has no {name}; not copied\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
