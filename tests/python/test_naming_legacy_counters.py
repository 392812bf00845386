"""The legacy resolvers' counters in trace_metadata.json, from real recordings.

They are what a user reads to see what the legacy engine cost, and they show that the
incremental scan does what docs/module-naming.md says: each imported module is read once
(not once per lookup), importlib's pop and re-insert keeps what was read, a module body
that only defines things is settled by a deep check, and the label and filter resolvers
share one scan per code object.
"""

import os

import pytest

from naming_support import record, write_tree

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

N = 40


def package_tree(root):
    files = {"pkg/__init__.py": ""}
    for i in range(N):
        files[f"pkg/m{i}.py"] = f"""
            def f{i}(x):
                return x + {i}

            VALUE = f{i}(1)
        """
    files["main.py"] = f"""
        import importlib
        import sys

        print(len(sys.modules))
        total = 0
        for i in range({N}):
            total += importlib.import_module("pkg.m%d" % i).VALUE
        print(total)
    """
    return write_tree(root, files)


def counters(run):
    return run.metadata["summary"]["naming"].get("legacy_resolvers")


def test_legacy_primary_reads_each_module_once_and_shares_scans(tmp_path):
    proj = package_tree(tmp_path / "proj")
    run = record(os.path.join(proj, "main.py"), cwd=proj, engine="legacy",
                 trace_dir=tmp_path / "trace").check()
    loaded_at_start, total = map(int, run.stdout.split())
    assert total == sum(range(1, N + 1))
    c = counters(run)
    labels, filters = c["labels"], c["filters"]
    files = N + 2  # pkg/m*.py, pkg/__init__.py, main.py
    # One label lookup per module code object; each new file scanned once, by the label
    # resolver, and the filter resolver got the same answer from that scan.
    assert labels["lookups"] >= files
    assert labels["scan"]["scans"] >= files
    assert filters["scan"]["shared_answers"] >= files
    assert filters["scan"]["scans"] <= 2
    # Each module is read about once (the first scan reads what was loaded at start),
    # although every scan walks all loaded modules.
    assert labels["scan"]["entries_read"] <= loaded_at_start + files + 10, labels
    assert labels["scan"]["moved"] >= N  # importlib pops and re-inserts every module
    assert labels["scan"]["deep_checks"] >= N  # bodies and spec flags changed dicts only
    assert labels["scan"]["scan_ns"] > 0
    assert labels["scan"]["non_str_key_aborts"] == 0


def test_legacy_shadow_reports_its_counters_and_globals_alone_reports_none(tmp_path):
    proj = package_tree(tmp_path / "proj")
    shadow = record(os.path.join(proj, "main.py"), cwd=proj, engine="globals",
                    trace_dir=tmp_path / "shadow", flags=["--shadow-compare"]).check()
    labels = counters(shadow)["labels"]
    assert labels["scan"]["scans"] >= N + 2
    alone = record(os.path.join(proj, "main.py"), cwd=proj, engine="globals",
                   trace_dir=tmp_path / "alone", flags=["--no-shadow-compare"]).check()
    assert counters(alone) is None
