"""Read a recorded trace back, streaming, whether the run finished or was killed.

Events are plain Python data, each a dict with one key naming the event kind
(``{"Step": {...}}``, ``{"Call": {...}}``...), exactly as the CodeTracer format's serde
representation has it, whatever the events file's format (``trace.json``, ``trace.bin`` or ``trace.ctc``).
The Rust side builds them a chunk at a time straight from the decoded records (no JSON
text in between; Python's cyclic collector is paused while a chunk is built); the result is
what ``json.loads`` of the format's JSON gives, non-finite floats included (``None``).

- ``TraceEvents(path)``: iterate over the events; memory stays flat (the file is decoded a
  chunk of events at a time). After the loop, ``complete`` says whether the recorder closed
  the events file, and ``end_reason`` why not.
- ``load_events(path)``: all events as a list (small traces, tests).
- ``run_status(trace_dir)``: ``(finished, reason)`` from the trace itself (a closed events
  file, ``trace_metadata.json``) and the run marker ``run.json`` when there is one.
- ``load_paths(trace_dir)``: the path table; rebuilt from the events when the run died
  before writing ``trace_paths.json``.
"""

import itertools
import json
import os

from . import _native

INCOMPLETE = "incomplete: the run did not finish"

# Events built per chunk. A chunk's dicts are made, handed out and freed together; 256
# events' worth (about 100 KB) stays in the CPU's caches between those steps, where 4,096
# (1.5 MB) did not: in perf, CPython's dict allocation and deallocation and the list
# iteration were then mostly waiting for memory, and 256 reads 1.5-2x faster (see
# docs/performance.md, "Readers (streaming)").
CHUNK = 256


class TraceEvents:
    """The events of the trace in ``path`` (a trace directory, ``trace.json``,
    ``trace.bin`` or ``trace.ctc``), read streaming."""

    def __init__(self, path, chunk=CHUNK, kinds=None):
        """``kinds``: only events of these kinds (e.g. ``{"Function", "Call"}``); the others
        are skipped without being decoded, which is much faster than filtering in Python.
        ``chunk``: how many events are built at a time (see ``CHUNK``)."""
        self._chunks = _native.EventChunks(os.fspath(path), chunk, sorted(kinds) if kinds else None)

    def __iter__(self):
        # Each chunk is a list of events, built in Rust from the decoded records; chain
        # hands them out from C (a generator's `yield from` costs a frame resume per event).
        return itertools.chain.from_iterable(self._chunks)

    @property
    def complete(self):
        """None until the last event is read; then whether the events file was closed."""
        return self._chunks.complete

    @property
    def end_reason(self):
        return self._chunks.end_reason

    @property
    def events_file(self):
        return self._chunks.path

    @property
    def format(self):
        return self._chunks.format


def iter_events(path, kinds=None):
    return iter(TraceEvents(path, kinds=kinds))


def load_events(path):
    """Events of the trace in ``path`` as a list."""
    return list(TraceEvents(path))


def load_metadata(trace_dir):
    with open(os.path.join(trace_dir, "trace_metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def load_run_marker(trace_dir):
    """``run.json`` (the run directory marker), or None when the recorder wrote none."""
    try:
        with open(os.path.join(trace_dir, "run.json"), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_status(trace_dir, events_complete=None):
    """``(True, None)`` for a finished run, else ``(False, why)``.

    ``events_complete`` is what a pass over the events found (``TraceEvents.complete``);
    without it the events file is read once."""
    reasons = []
    if events_complete is None:
        events_complete = _native.scan_trace(os.fspath(trace_dir))["complete"]
    if not events_complete:
        reasons.append("the events file was not closed")
    if not os.path.exists(os.path.join(trace_dir, "trace_metadata.json")):
        reasons.append("no trace_metadata.json")
    marker = load_run_marker(trace_dir)
    if marker is not None and marker.get("state") != "finished":
        reasons.append(f"run.json says {marker.get('state')!r}")
    return (not reasons, "; ".join(reasons) or None)


def load_paths(trace_dir):
    """The path table (``trace_paths.json``; from the ``Path`` events if it is missing)."""
    try:
        with open(os.path.join(trace_dir, "trace_paths.json"), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return _native.scan_trace(os.fspath(trace_dir))["paths"]
