"""Runs a script under a no-op C-level trace hook (the benchmark floor)."""
import runpy
import sys

from ct_recorder import _native

script = sys.argv[1]
sys.argv = sys.argv[1:]
_native._bench_install_noop_hook()
runpy.run_path(script, run_name="__main__")
