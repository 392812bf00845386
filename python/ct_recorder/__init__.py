"""ct-recorder: record Python programs as CodeTracer traces.

Command line: ``ct-record [OPTIONS] SCRIPT [ARGS...]`` or ``ct-record [OPTIONS] -m MODULE``.

In-process use::

    import ct_recorder
    with ct_recorder.recording("trace-out"):
        work()

or ``ct_recorder.start("trace-out")`` ... ``ct_recorder.stop()``.
"""

import os

from . import _native
from ._native import ConfigError, RecorderError

__version__ = _native.__version__
__all__ = [
    "start",
    "stop",
    "recording",
    "is_recording",
    "configure_policy",
    "policy_snapshot",
    "RecorderError",
    "ConfigError",
    "__version__",
]

_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def start(trace_dir="trace-out", *, format=None, on_error="disable", max_trace_size=None):
    """Start recording this process (every thread) into ``trace_dir``.

    ``format`` is ``"compact"`` (``trace.ctc``, the default, as for ``ct-record``;
    ``python -m ct_recorder.convert`` turns it into CodeTracer binary or JSON), ``"binary"``
    (``trace.bin``) or ``"json"`` (``trace.json``); ``None`` takes the default. Evidence-only runs
    (``configure_policy(evidence_only=True)``) write no trace and take no format; ``on_error`` is ``"disable"`` (stop recording
    on a recorder failure, never disturb the program) or ``"abort"`` (raise RecorderError).
    ``max_trace_size`` caps the events file as ``ct-record --max-trace-size`` does: a number of
    bytes, a size such as ``"500M"`` or ``"1.5GiB"``, or ``"unlimited"``; ``None`` keeps the
    default (``"5G"``).
    """
    _native.start(
        os.fspath(trace_dir),
        format=format,
        own_dir=_OWN_DIR,
        on_error=on_error,
        max_trace_size=max_trace_size,
    )


def configure_policy(*, module_name_from_globals=None, shadow_compare=None, evidence_only=None):
    """Set policy values at the highest layer ("python-api") for recordings started later in
    this process; ``None`` leaves a value to the lower layers (command line, environment,
    project config, built-in default). ``evidence_only=True`` (with ``shadow_compare``)
    gathers the engines' comparison without writing a trace (docs/shadow-mode.md)."""
    _native.configure_policy(
        module_name_from_globals=module_name_from_globals,
        shadow_compare=shadow_compare,
        evidence_only=evidence_only,
    )


def policy_snapshot(program_dir=None):
    """The effective policy as a dict: each value with the layer that set it and its source."""
    return _native.policy_snapshot(None if program_dir is None else os.fspath(program_dir))


def stop():
    """Stop recording and write the trace files. Returns a summary dict, or None if no
    recording was running."""
    return _native.stop()


def is_recording():
    return _native.is_recording()


class recording:
    """``with ct_recorder.recording(trace_dir):`` records the block; the trace is written when
    the block exits, however it exits. (A class rather than a ``contextlib`` generator: its
    frames are the recorder's own and never show up in the trace.)"""

    def __init__(self, trace_dir="trace-out", **kwargs):
        self._args = (trace_dir, kwargs)

    def __enter__(self):
        trace_dir, kwargs = self._args
        start(trace_dir, **kwargs)
        return self

    def __exit__(self, *exc_info):
        stop()
        return False
