"""Runs a script under the cheapest hook evidence-only mode could be built on (the
benchmark floor of `bench/run.py --evidence-only`):

- CPython 3.11: a no-op C profile function (`PyEval_SetProfile`), called for every call
  and return, doing nothing;
- CPython 3.12+: a C-level (`METH_FASTCALL`) `sys.monitoring` `PY_START` callback that
  returns `DISABLE` at once: one callback per code object, doing nothing.
"""
import runpy
import sys

from ct_recorder import _native

script = sys.argv[1]
sys.argv = sys.argv[1:]
if sys.version_info >= (3, 12):
    mon = sys.monitoring
    mon.use_tool_id(4, "ct-bench-floor")
    mon.register_callback(4, mon.events.PY_START, _native._bench_c_callback_returning(mon.DISABLE))
    mon.set_events(4, mon.events.PY_START)
else:
    _native._bench_install_noop_profile()
runpy.run_path(script, run_name="__main__")
