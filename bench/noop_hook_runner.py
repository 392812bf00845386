"""Runs a script under the cheapest hook a recorder of every event could be built on (the
floor of `bench/run.py`'s recording rows):

- CPython 3.11: a no-op C-level trace hook (`PyEval_SetTrace`), called for every call, line,
  return and exception, doing nothing;
- CPython 3.12+: a no-op C-level (`METH_FASTCALL`) `sys.monitoring` callback registered for
  every event the recorder's `sys.monitoring` back end uses (PY_START, PY_RESUME, PY_RETURN,
  PY_YIELD, LINE, PY_THROW, PY_UNWIND, RAISE), switched on for all code, returning `None`
  (never `DISABLE`): one callback per event, doing nothing.
"""
import runpy
import sys

from ct_recorder import _native

script = sys.argv[1]
sys.argv = sys.argv[1:]
if sys.version_info >= (3, 12):
    mon = sys.monitoring
    E = mon.events
    TOOL = 4
    mon.use_tool_id(TOOL, "ct-bench-floor")
    noop = _native._bench_c_callback_returning(None)
    events = 0
    for event in (E.PY_START, E.PY_RESUME, E.PY_RETURN, E.PY_YIELD, E.LINE, E.PY_THROW,
                  E.PY_UNWIND, E.RAISE):
        mon.register_callback(TOOL, event, noop)
        events |= event
    mon.set_events(TOOL, events)
else:
    _native._bench_install_noop_hook()
runpy.run_path(script, run_name="__main__")
