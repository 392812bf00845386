"""Scope rules on real recordings: `pkg:`, `file:` and `obj:` skips, and the builtin filter's
standard-library skip switched off by `--no-default-filter` (docs/trace-filters.md, spec F3,
F5, F7)."""

import pytest

from filters_support import ENGINE_FLAGS, project_filter, record, write_files

APP = {
    "app.py": """
        import mylib.helpers
        import mylib.other
        from mylib.helpers import Greeter


        def local_work(n):
            return n + 1


        def main():
            a = mylib.helpers.double(2)
            b = mylib.other.triple(3)
            g = Greeter()
            g.hello("ann")
            g.bye("bob")
            return local_work(a + b)


        main()
    """,
    "mylib/__init__.py": """
        VERSION = 1


        def version():
            return VERSION


        version()
    """,
    "mylib/helpers.py": """
        def double(x):
            return x * 2


        class Greeter:
            def hello(self, who):
                return "hi " + who

            def bye(self, who):
                return "bye " + who
    """,
    "mylib/other.py": """
        def triple(x):
            return x * 3
    """,
}


def make_app(tmp_path, rules):
    proj = tmp_path / "proj"
    write_files(proj, APP)
    project_filter(proj, "scope-test", rules)
    return proj


def in_file(trace, suffix):
    """Everything the trace has about one source file: functions, calls, steps."""
    return (
        [f for f in trace.functions if f["path"].endswith(suffix)],
        [c for c in trace.calls if c.path.endswith(suffix)],
        [s for s in trace.steps if s[0].endswith(suffix)],
    )


def test_without_rules_everything_in_the_project_is_recorded(tmp_path):
    proj = make_app(tmp_path, [])
    t = record(proj / "app.py", trace_dir=tmp_path / "trace").trace
    # Function names are qualnames.
    for name in ("main", "local_work", "double", "triple", "Greeter.hello", "Greeter.bye",
                 "version"):
        assert len(t.calls_of(name)) == 1, name
    assert t.only_call("local_work").return_value == 2 * 2 + 3 * 3 + 1


@pytest.mark.parametrize("engine", ["legacy", "globals"])
def test_pkg_rule_skips_every_module_below_the_package(tmp_path, engine):
    proj = make_app(tmp_path, [{"selector": "pkg:mylib.*", "exec": "skip"}])
    t = record(proj / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "trace").trace
    for suffix in ("mylib/helpers.py", "mylib/other.py"):
        assert in_file(t, suffix) == ([], [], []), suffix
    assert t.called_names().isdisjoint({"double", "triple", "Greeter.hello", "Greeter.bye"})
    # The rest runs and is recorded; the program's results are unchanged.
    assert t.only_call("main", "app.py").returned
    assert t.only_call("local_work", "app.py").arg("n") == 13
    # `mylib.*` does not match the package `mylib` itself (docs: "add pkg:app for the package").
    assert t.only_call("version", "mylib/__init__.py").return_value == 1


def test_file_rule_skips_one_file(tmp_path):
    proj = make_app(tmp_path, [{"selector": "file:mylib/other.py", "exec": "skip"}])
    t = record(proj / "app.py", trace_dir=tmp_path / "trace").trace
    assert in_file(t, "mylib/other.py") == ([], [], [])
    assert "triple" not in t.called_names()
    assert t.only_call("double", "mylib/helpers.py").return_value == 4
    assert t.only_call("Greeter.hello").return_value == "hi ann"


def test_file_glob_rule_with_double_star(tmp_path):
    proj = make_app(tmp_path, [{"selector": "file:glob:**/helpers.py", "exec": "skip"}])
    t = record(proj / "app.py", trace_dir=tmp_path / "trace").trace
    assert in_file(t, "mylib/helpers.py") == ([], [], [])
    assert t.only_call("triple").return_value == 9


@pytest.mark.parametrize("engine", ["legacy", "globals"])
def test_obj_rule_skips_one_method(tmp_path, engine):
    proj = make_app(
        tmp_path, [{"selector": "obj:mylib.helpers.Greeter.hello", "exec": "skip"}]
    )
    t = record(proj / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "trace").trace
    assert "Greeter.hello" not in t.called_names()
    assert not t.has_function("Greeter.hello")
    # Its neighbours in the same class and module are still there.
    assert t.only_call("Greeter.bye", "mylib/helpers.py").return_value == "bye bob"
    assert t.only_call("double", "mylib/helpers.py").return_value == 4
    # No line of hello's body (line 7 of helpers.py) was stepped.
    assert ("helpers.py", 7) not in {(p.rsplit("/", 1)[-1], l) for p, l in t.steps}
    assert ("helpers.py", 10) in {(p.rsplit("/", 1)[-1], l) for p, l in t.steps}


def test_skip_is_per_code_object_not_per_call_tree(tmp_path):
    """A skipped function's callees keep their own decision (F7: skip disables the code
    object)."""
    proj = tmp_path / "proj"
    write_files(proj, {
        "app.py": """
            def leaf(v):
                return v - 1


            def outer(v):
                return leaf(v) * 10


            outer(5)
        """,
    })
    project_filter(proj, "t", [{"selector": "obj:regex:\\.outer$", "exec": "skip"}])
    t = record(proj / "app.py", trace_dir=tmp_path / "trace").trace
    assert "outer" not in t.called_names()
    assert t.only_call("leaf").arg("v") == 5
    assert t.only_call("leaf").return_value == 4


STDLIB_APP = {
    "app.py": """
        import json


        def encode(obj):
            return json.dumps(obj, sort_keys=True)


        encode({"b": 2, "a": 1})
    """,
}


def test_builtin_filter_skips_the_standard_library(tmp_path):
    write_files(tmp_path, STDLIB_APP)
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "trace").trace
    assert t.only_call("encode").return_value == '{"a": 1, "b": 2}'
    assert "dumps" not in t.called_names()
    assert not any("/json/" in p for p in t.stepped_paths())


def test_no_default_filter_records_the_standard_library(tmp_path):
    write_files(tmp_path, STDLIB_APP)
    t = record(tmp_path / "app.py", "--no-default-filter", trace_dir=tmp_path / "trace").trace
    dumps = t.only_call("dumps", "/json/__init__.py")
    assert dumps.arg("sort_keys") is True
    assert dumps.return_value == '{"a": 1, "b": 2}'
    assert any(p.endswith("/json/encoder.py") for p in t.stepped_paths())
    assert t.only_call("encode").return_value == '{"a": 1, "b": 2}'


def test_builtin_rules_on_lib_python_and_site_packages_paths(tmp_path):
    """Builtin rules 1-3 by path: `/lib/pythonX.Y/` skipped, `site-packages` below it traced
    again, `site-packages/_virtualenv.py` skipped; `mylib/python3.11/` has no separator
    before `lib` and is not the standard library."""
    write_files(tmp_path, {
        "app.py": """
            import sys

            base = sys.argv[1]
            for d in ("env/lib/python3.11", "env/lib/python3.11/site-packages", "mylib/python3.11"):
                sys.path.insert(0, base + "/" + d)

            import fakestd
            import thirdparty
            import _virtualenv
            import notstd

            fakestd.f()
            thirdparty.f()
            _virtualenv.f()
            notstd.f()
        """,
        "env/lib/python3.11/fakestd.py": "def f():\n    return 'fakestd'\n",
        "env/lib/python3.11/site-packages/thirdparty.py": "def f():\n    return 'thirdparty'\n",
        "env/lib/python3.11/site-packages/_virtualenv.py": "def f():\n    return 'venv'\n",
        "mylib/python3.11/notstd.py": "def f():\n    return 'notstd'\n",
    })
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t", args=(str(tmp_path),)).trace
    assert {c.path.rsplit("/", 1)[-1] for c in t.calls_of("f")} == {"thirdparty.py", "notstd.py"}
    assert t.only_call("f", "thirdparty.py").return_value == "thirdparty"
    # With --no-default-filter all four are recorded.
    t = record(tmp_path / "app.py", "--no-default-filter", trace_dir=tmp_path / "t2",
               args=(str(tmp_path),)).trace
    assert len(t.calls_of("f")) == 4


def test_decisions_and_value_policies_hold_in_threads(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            import threading


            def worker(token, n):
                return n * 2


            def other(n):
                return n


            threads = [threading.Thread(target=worker, args=("tk", i)) for i in range(3)]
            threads.append(threading.Thread(target=other, args=(9,)))
            for th in threads:
                th.start()
                th.join()
        """,
    })
    project_filter(tmp_path, "thr", [{"selector": "obj:regex:\\.other$", "exec": "skip"}])
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "t")
    t = run.trace
    workers = t.calls_of("worker")
    assert sorted(c.arg("n") for c in workers) == [0, 1, 2]
    assert all(c.arg("token") == ("Raw", "<redacted>") for c in workers)  # builtin pattern
    assert sorted(c.return_value for c in workers) == [0, 2, 4]
    assert len({c.thread for c in workers}) == 3
    assert "other" not in t.called_names()
    assert run.metadata["summary"]["filters"]["values"]["redacted"].get("arg") == 3
