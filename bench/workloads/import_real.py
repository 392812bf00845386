"""Import-heavy workload over real packages: imports every module named in the list file
argv[1] (one dotted name a line, made by `bench/run.py` from the packages the bench venv
installs, see bench/requirements.txt), in order. A module that fails to import (an optional
dependency missing) is counted and skipped, the same way in every run. Prints how many
modules imported and how many failed."""
import importlib
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    names = [line.strip() for line in f if line.strip()]
ok = failed = 0
for name in names:
    try:
        importlib.import_module(name)
        ok += 1
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a missing optional dependency (pytest's
        failed += 1  # importorskip raises a BaseException) is part of the workload
print(ok, failed)
