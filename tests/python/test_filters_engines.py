"""How module names reach `pkg:` selectors under each naming engine (docs/trace-filters.md
"How module names reach pkg and obj selectors"; spec F4.2, F4.3, N5, N6 and the Decisions
section: legacy filter decisions use the F4.3 name, so an src-layout module is
`src.mypkg.core` for filters)."""

import pytest

from filters_support import ENGINE_FLAGS, project_filter, record, write_files

SRC_LAYOUT = {
    "run.py": """
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

        import mypkg.core


        def main():
            return mypkg.core.work(3)


        main()
    """,
    "src/mypkg/__init__.py": """
        def init_hook():
            return "init"


        init_hook()
    """,
    "src/mypkg/core.py": """
        def work(n):
            return n * 2
    """,
}


@pytest.mark.parametrize(
    "selector, engine, skipped",
    [
        # globals: __name__ is `mypkg.core` (N5 step 1), which `mypkg.*` matches.
        ("pkg:glob:mypkg.*", "globals", True),
        # legacy: the relative path src/mypkg/core.py gives `src.mypkg.core` (F4.3 step 1),
        # a valid dotted name with a dot, so the resolver's `mypkg.core` does not replace it.
        ("pkg:glob:mypkg.*", "legacy", False),
        ("pkg:glob:src.mypkg.*", "legacy", True),
        ("pkg:glob:src.mypkg.*", "globals", False),
    ],
)
def test_src_layout_module_names_per_engine(tmp_path, selector, engine, skipped):
    proj = tmp_path / "proj"
    write_files(proj, SRC_LAYOUT)
    project_filter(proj, "src-layout", [{"selector": selector, "exec": "skip"}])
    t = record(proj / "run.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert t.only_call("main").return_value == 6
    if skipped:
        assert "work" not in t.called_names()
        assert not any(p.endswith("src/mypkg/core.py") for p in t.stepped_paths())
    else:
        assert t.only_call("work", "src/mypkg/core.py").return_value == 6
    # The package itself (`mypkg` / `src.mypkg`) is matched by neither `.*` glob.
    assert t.only_call("init_hook").return_value == "init"


SCRIPT = {
    "app.py": """
        import lib


        def main():
            return lib.helper(2)


        main()
    """,
    "lib.py": """
        def helper(v):
            return v + 40
    """,
    "tools/run.py": """
        def tool_main():
            return "tool"


        tool_main()
    """,
}


@pytest.mark.parametrize("engine", ["legacy", "globals"])
def test_pkg_literal_main_matches_a_top_level_script_under_both_engines(tmp_path, engine):
    """Globals: `__name__` is `__main__`. Legacy (F4.3): the relative path `app.py` gives
    `app`, a first name without a dot, and the resolver's answer `__main__` replaces it."""
    write_files(tmp_path, SCRIPT)
    project_filter(tmp_path, "main", [{"selector": "pkg:literal:__main__", "exec": "skip"}])
    t = record(tmp_path / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert "main" not in t.called_names()
    assert not any(p.endswith("/app.py") for p in t.stepped_paths())
    # The imported module is `lib` under both engines: recorded.
    h = t.only_call("helper", "/lib.py")
    assert h.arg("v") == 2 and h.return_value == 42


@pytest.mark.parametrize(
    "selector, engine, skipped",
    [
        # A script in a sub-directory: legacy keeps the path-shaped name `tools.run` (it has
        # a dot, so `__main__` does not replace it); globals names it `__main__`.
        ("pkg:literal:__main__", "legacy", False),
        ("pkg:literal:__main__", "globals", True),
        ("pkg:literal:tools.run", "legacy", True),
        ("pkg:literal:tools.run", "globals", False),
        # `file:` rules behave the same under both engines.
        ("file:tools/run.py", "legacy", True),
        ("file:tools/run.py", "globals", True),
    ],
)
def test_script_in_a_subdirectory(tmp_path, selector, engine, skipped):
    write_files(tmp_path, SCRIPT)
    project_filter(tmp_path, "sub", [{"selector": selector, "exec": "skip"}])
    t = record(tmp_path / "tools" / "run.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    if skipped:
        assert "tool_main" not in t.called_names()
        assert t.steps == []
    else:
        assert t.only_call("tool_main").return_value == "tool"


@pytest.mark.parametrize("engine, skipped", [("globals", True), ("legacy", False)])
def test_obj_rule_on_main_function(tmp_path, engine, skipped):
    write_files(tmp_path, SCRIPT)
    project_filter(tmp_path, "o", [{"selector": "obj:__main__.tool_main", "exec": "skip"}])
    t = record(tmp_path / "tools" / "run.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert ("tool_main" not in t.called_names()) == skipped
    # The module code itself is not matched by the obj rule (its object name ends in <module>).
    assert any(p.endswith("tools/run.py") for p in t.stepped_paths())


RENAMED = {
    "app.py": """
        import renamed


        renamed.f(1)
        renamed.g(2)
    """,
    "renamed.py": """
        def g(v):
            return v


        __name__ = "custom.name"


        def f(v):
            return v
    """,
}


@pytest.mark.parametrize("engine, skipped", [("globals", True), ("legacy", False)])
def test_module_that_reassigns_dunder_name_renames_its_functions_for_filters(
    tmp_path, engine, skipped
):
    """N6 as documented: a function's filter name comes from the `__name__` of the globals it
    first runs with; the legacy engine names by path (`renamed`)."""
    write_files(tmp_path, RENAMED)
    project_filter(tmp_path, "r", [{"selector": "pkg:glob:custom.*", "exec": "skip"}])
    t = record(tmp_path / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert ("f" not in t.called_names()) == skipped
    assert ("g" not in t.called_names()) == skipped  # g also first runs after the rename
    # The module body started while `__name__` was still `renamed`: recorded either way.
    assert any(p.endswith("/renamed.py") for p in t.stepped_paths())
