"""Runs the shop package's __main__ through runpy, as task runners do."""

import os
import runpy
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
runpy.run_module("shop", run_name="__main__", alter_sys=True)
