"""``python -m ct_recorder.summary TRACE_DIR``: a short summary of a recorded trace.

The events are read in one streaming pass (flat memory, no Python object per event). A run
that was killed or crashed is summarised up to its last written event and reported as
"incomplete: the run did not finish"; what its missing metadata would have said is rebuilt
from the events where it can be.
"""

import os
import sys

from . import _native
from .trace_reader import INCOMPLETE, load_metadata, load_run_marker, run_status


def summarize(trace_dir):
    scan = _native.scan_trace(os.fspath(trace_dir))
    finished, why = run_status(trace_dir, events_complete=scan["complete"])
    try:
        meta = load_metadata(trace_dir)
    except FileNotFoundError:
        meta = None
    kinds = dict(scan["kinds"])
    calls = sorted(scan["calls"], key=lambda fc: (-fc[1], fc[0]))
    events_file = scan["events_file"]
    if meta is not None:
        program = f"{meta['program']} {' '.join(meta['args'])}".rstrip()
        recorder = f"{meta['recorder']['name']} {meta['recorder']['version']}, format {meta['format']}"
    else:
        marker = load_run_marker(trace_dir) or {}
        # Path 0 is the program (the format's top-level function lives there).
        program = marker.get("program") or (scan["paths"][0] if scan["paths"] else "?")
        recorder = f"unknown (no trace_metadata.json), format {scan['format']}"
    lines = [
        f"trace:     {os.path.abspath(trace_dir)}",
        f"status:    {'complete' if finished else f'{INCOMPLETE} ({why})'}",
        f"events:    {events_file} ({os.path.getsize(events_file)} bytes, {scan['events']} events)",
        f"program:   {program}",
        f"recorder:  {recorder}",
        "counts:    " + ", ".join(f"{k} {kinds[k]}" for k in ("Call", "Return", "Step", "Event") if kinds.get(k)),
        f"threads:   {kinds.get('ThreadStart', 0)}",
        "most called: " + ", ".join(f"{name} x{n}" for name, n in calls[:6]),
    ]
    cap = meta["summary"].get("trace_size_cap") if meta else None
    if cap and cap.get("reached"):
        lines.insert(3, f"cut:       at --max-trace-size ({cap['limit_bytes']} bytes) after "
                        f"{cap['events_written']} events; the rest of the run was not recorded")
    errors = meta["summary"].get("recorder_error_count", 0) if meta else 0
    if errors:
        lines.append(f"recorder errors: {errors}: {meta['summary']['recorder_errors'][0]}")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m ct_recorder.summary TRACE_DIR\n")
        return 2
    try:
        print(summarize(argv[0]))
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"ct_recorder.summary: cannot read the trace in {argv[0]!r}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
