"""Read a recorded trace back with the trace format's own reader (``runtime_tracing``).

``load_events(path)`` returns the list of events as plain Python data, each a dict with one
key naming the event kind (``{"Step": {...}}``, ``{"Call": {...}}``...), exactly as the
format's serde representation has it.
"""

import json
import os

from . import _native


def load_events(path):
    """Events of the trace in ``path`` (a trace directory, ``trace.json`` or ``trace.bin``)."""
    return json.loads(_native.read_trace_json(os.fspath(path)))


def load_metadata(trace_dir):
    with open(os.path.join(trace_dir, "trace_metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def load_paths(trace_dir):
    with open(os.path.join(trace_dir, "trace_paths.json"), encoding="utf-8") as f:
        return json.load(f)
