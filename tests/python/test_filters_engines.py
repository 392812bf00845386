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


RUN_PATH = {
    "app.py": """
        import os
        import runpy

        here = os.path.dirname(os.path.abspath(__file__))
        runpy.run_path(os.path.join(here, "scripts", "tool.py"), run_name="<run_path>")
        runpy.run_path(os.path.join(here, "my-scripts", "tool2.py"), run_name="<run_path>")
    """,
    "scripts/tool.py": """
        def tool_fn():
            return "tool"


        tool_fn()
    """,
    "my-scripts/tool2.py": """
        def tool2_fn():
            return "tool2"


        tool2_fn()
    """,
}


@pytest.mark.parametrize(
    "selector, skipped",
    [
        # N5.2: `<run_path>` is not a valid dotted name; the project-relative name is.
        ("pkg:literal:scripts.tool", {"tool_fn"}),
        # N5.3: `my-scripts.tool2` is not valid either; the `__init__.py` walk gives `tool2`.
        ("pkg:literal:tool2", {"tool2_fn"}),
        ("pkg:literal:my-scripts.tool2", set()),
        ("obj:literal:tool2.tool2_fn", {"tool2_fn"}),
    ],
)
def test_globals_engine_fallback_names(tmp_path, selector, skipped):
    write_files(tmp_path, RUN_PATH)
    project_filter(tmp_path, "rp", [{"selector": selector, "exec": "skip"}])
    t = record(tmp_path / "app.py", ENGINE_FLAGS["globals"], trace_dir=tmp_path / "t").trace
    assert {"tool_fn", "tool2_fn"} - t.called_names() == skipped


TIE = {
    "app.py": """
        import sub.mod


        sub.mod.f()
    """,
    "sub/__init__.py": "",
    "sub/mod.py": """
        def f():
            return "f"
    """,
}


@pytest.mark.parametrize(
    "selector, engine, skipped",
    [
        # F4.2: the relative path comes from the root that leaves the fewest components. A
        # --trace-filter file in `sub/` has root `sub/`, so sub/mod.py is `mod.py` there.
        ("file:mod.py", "legacy", True),
        ("file:mod.py", "globals", True),
        ("file:sub/mod.py", "legacy", False),
        ("file:sub/mod.py", "globals", False),
        # F4.3: the legacy name is then `mod` (valid, kept); globals uses `__name__`.
        ("pkg:literal:mod", "legacy", True),
        ("pkg:literal:sub.mod", "legacy", False),
        ("pkg:literal:sub.mod", "globals", True),
        ("pkg:literal:mod", "globals", False),
    ],
)
def test_relative_path_uses_the_deepest_project_root(tmp_path, selector, engine, skipped):
    write_files(tmp_path, TIE)
    project_filter(tmp_path, "p", [{"selector": selector, "exec": "skip"}])
    from filters_support import write_filter

    deeper = write_filter(tmp_path / "sub" / "extra.toml", "extra", [])
    t = record(tmp_path / "app.py", ENGINE_FLAGS[engine], "--trace-filter", str(deeper),
               trace_dir=tmp_path / "t").trace
    assert ("f" not in t.called_names()) == skipped


SELF_IMPORT = {
    "app.py": """
        def f():
            return __name__


        if __name__ == "__main__":
            f()
            import app

            app.f()
    """,
}


@pytest.mark.parametrize(
    "selector, engine, kept_names",
    [
        # globals: the script's f runs with __name__ `__main__`, the imported copy's with `app`.
        ("pkg:literal:app", "globals", ["__main__"]),
        ("pkg:literal:__main__", "globals", ["app"]),
        # legacy (F4.3 + L5): the file's name is found through sys.modules as `__main__` and
        # cached for the path; the imported copy's first name `app` has no dot, so that
        # cached `__main__` replaces it too: both copies are `__main__` for the filters.
        ("pkg:literal:app", "legacy", ["__main__", "app"]),
        ("pkg:literal:__main__", "legacy", []),
    ],
)
def test_script_that_imports_itself(tmp_path, selector, engine, kept_names):
    write_files(tmp_path, SELF_IMPORT)
    project_filter(tmp_path, "self", [{"selector": selector, "exec": "skip"}])
    t = record(tmp_path / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert [c.return_value for c in t.calls_of("f")] == kept_names


DASHED = {
    "app.py": """
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "my-tools"))
        import run_helper

        run_helper.g()
    """,
    "my-tools/run_helper.py": "def g():\n    return 'g'\n",
}


@pytest.mark.parametrize("engine", ["legacy", "globals"])
def test_invalid_path_shaped_name_falls_through_to_the_module_name(tmp_path, engine):
    """Legacy (F4.3): `my-tools.run_helper` is not a valid dotted name, so the resolver's
    answer (`run_helper`, from sys.modules) replaces it. Globals: `__name__`."""
    write_files(tmp_path, DASHED)
    project_filter(tmp_path, "d", [{"selector": "pkg:literal:run_helper", "exec": "skip"}])
    t = record(tmp_path / "app.py", ENGINE_FLAGS[engine], trace_dir=tmp_path / "t").trace
    assert "g" not in t.called_names()
