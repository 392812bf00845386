"""``python -m ct_recorder.summary TRACE_DIR``: a short summary of a recorded trace.

The events are read back with the trace format's own reader, so this also checks that the
trace is readable.
"""

import collections
import os
import sys

from .trace_reader import load_events, load_metadata


def summarize(trace_dir):
    meta = load_metadata(trace_dir)
    events = load_events(trace_dir)
    kinds = collections.Counter(next(iter(e)) if isinstance(e, dict) else e for e in events)
    functions = [e["Function"]["name"] for e in events if isinstance(e, dict) and "Function" in e]
    calls = collections.Counter()
    for e in events:
        if isinstance(e, dict) and "Call" in e:
            calls[functions[e["Call"]["function_id"]]] += 1
    events_file = meta["summary"]["events_file"]
    lines = [
        f"trace:     {os.path.abspath(trace_dir)}",
        f"events:    {events_file} ({os.path.getsize(events_file)} bytes, {len(events)} events)",
        f"program:   {meta['program']} {' '.join(meta['args'])}",
        f"recorder:  {meta['recorder']['name']} {meta['recorder']['version']}, format {meta['format']}",
        "counts:    " + ", ".join(f"{k} {kinds[k]}" for k in ("Call", "Return", "Step", "Event") if kinds[k]),
        f"threads:   {kinds['ThreadStart']}",
        "most called: " + ", ".join(f"{name} x{n}" for name, n in calls.most_common(6)),
    ]
    errors = meta["summary"].get("recorder_error_count", 0)
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
