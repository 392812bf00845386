"""Module labels for the ways a program is started: script, -m, runpy.

Expected names are reasoned from shared/spec/legacy-module-resolver.md: Part N for the
globals engine (``__name__`` at the first start of a ``<module>`` code object), Part L for
the legacy engine, which at runtime is "L6 with no hints" (L7), i.e. L5 on the normalised
``co_filename``: path candidate from the session roots (L2/L3), then the ``sys.modules``
scan (L4), whose answer wins and is cached per path (L5).
"""

import os

import pytest

from naming_support import python, record_both, write_tree

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine


def test_plain_script_and_its_import(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import helper
            print("main", __name__, helper.VALUE)
        """,
        "helper.py": """
            VALUE = 41 + 1
        """,
    })
    main, helper = os.path.join(proj, "main.py"), os.path.join(proj, "helper.py")
    runs = record_both(tmp_path, main, cwd=proj)
    for engine, run in runs.items():
        assert run.stdout == "main __main__ 42\n", engine

    # N3: a script runs with __name__ == "__main__".
    assert runs["globals"].labels_of(main) == {"<__main__>"}
    # L4.3/L4.5: sys.modules["__main__"] has __spec__ None and __file__ == co_filename, so the
    # preferred name is its __name__, "__main__" (score 0, L4.6): the scan beats the path
    # candidate "main" from the sys.path[0] root.
    assert runs["legacy"].labels_of(main) == {"<__main__>"}
    for engine in ("globals", "legacy"):
        # N1 / L4.5 (__spec__.name of sys.modules["helper"]).
        assert runs[engine].labels_of(helper) == {"<helper>"}, engine
        assert runs[engine].metadata["module_naming"]["engine"] == engine


def test_script_given_by_relative_path(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "app/run.py": """
            import os
            print(os.path.basename(__file__))
        """,
    })
    runs = record_both(tmp_path, "app/run.py", cwd=proj)
    # __file__ (and co_filename) is the script path joined to the cwd, as python does.
    target = os.path.join(proj, "app", "run.py")
    assert runs["globals"].labels_of(target) == {"<__main__>"}
    # L4.5 via the __main__ entry, as for an absolute script path.
    assert runs["legacy"].labels_of(target) == {"<__main__>"}


def _package_project(tmp_path):
    return write_tree(tmp_path / "proj", {
        "pkg/__init__.py": """
            INIT = True
        """,
        "pkg/mod.py": """
            from pkg import util
            print("mod", __name__, util.X)
        """,
        "pkg/util.py": """
            X = 7
        """,
        "pkg/__main__.py": """
            print("pkg main", __name__, __spec__.name)
        """,
    })


def test_dash_m_submodule(tmp_path):
    proj = _package_project(tmp_path)
    runs = record_both(tmp_path, "pkg.mod", cwd=proj, module=True)
    for run in runs.values():
        assert run.stdout == "mod __main__ 7\n"
    p = lambda rel: os.path.join(proj, "pkg", rel)  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    # N3: python -m runs the module as __main__.
    assert g.labels_of(p("mod.py")) == {"<__main__>"}
    # L4.5 consequence: sys.modules["__main__"] carries __spec__ (name "pkg.mod", origin the
    # file), and __spec__.name is preferred over __name__.
    assert leg.labels_of(p("mod.py")) == {"<pkg.mod>"}
    for run in (g, leg):
        assert run.labels_of(p("__init__.py")) == {"<pkg>"}
        assert run.labels_of(p("util.py")) == {"<pkg.util>"}
        assert p("__main__.py") not in run.module_labels()


def test_dash_m_package_main(tmp_path):
    proj = _package_project(tmp_path)
    runs = record_both(tmp_path, "pkg", cwd=proj, module=True)
    for run in runs.values():
        assert run.stdout == "pkg main __main__ pkg.__main__\n"
    p = lambda rel: os.path.join(proj, "pkg", rel)  # noqa: E731
    # N3: pkg/__main__.py runs as __main__.
    assert runs["globals"].labels_of(p("__main__.py")) == {"<__main__>"}
    # L4.5: the __main__ entry's __spec__.name is "pkg.__main__" (L1.2 keeps "__main__": only
    # "__init__" is dropped, so the path candidate agrees).
    assert runs["legacy"].labels_of(p("__main__.py")) == {"<pkg.__main__>"}
    for run in runs.values():
        assert run.labels_of(p("__init__.py")) == {"<pkg>"}


def _runpy_project(tmp_path, driver):
    files = {"main.py": driver, "pkg/__init__.py": "\n"}
    for name in ("rp_default", "rp_main", "rp_custom", "rp_twice"):
        files[f"scripts/{name}.py"] = f"RESULT = ({name!r}, __name__)\n"
    for name in ("rm_default", "rm_main", "rm_custom", "rm_alter"):
        files[f"pkg/{name}.py"] = f"RESULT = ({name!r}, __name__)\n"
    return write_tree(tmp_path / "proj", files)


def test_runpy_run_path(tmp_path):
    proj = _runpy_project(tmp_path, """
        import os, runpy
        here = os.path.dirname(os.path.abspath(__file__))
        script = lambda n: os.path.join(here, "scripts", n + ".py")
        print(runpy.run_path(script("rp_default"))["RESULT"])
        print(runpy.run_path(script("rp_main"), run_name="__main__")["RESULT"])
        print(runpy.run_path(script("rp_custom"), run_name="rp_custom_name")["RESULT"])
        print(runpy.run_path(script("rp_twice"), run_name="first_name")["RESULT"])
        print(runpy.run_path(script("rp_twice"), run_name="__main__")["RESULT"])
    """)
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    expected_out = (
        "('rp_default', '<run_path>')\n('rp_main', '__main__')\n('rp_custom', 'rp_custom_name')\n"
        "('rp_twice', 'first_name')\n('rp_twice', '__main__')\n"
    )
    s = lambda n: os.path.join(proj, "scripts", n + ".py")  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    assert g.stdout == leg.stdout == expected_out

    # N1: no identifier validation, "<run_path>" passes through.
    assert g.labels_of(s("rp_default")) == {"<<run_path>>"}
    assert g.labels_of(s("rp_main")) == {"<__main__>"}
    assert g.labels_of(s("rp_custom")) == {"<rp_custom_name>"}
    assert g.labels_of(s("rp_twice")) == {"<first_name>", "<__main__>"}

    # run_path puts a temporary module (__spec__ None, __file__ = the file) in
    # sys.modules[run_name] while the code runs, so the scan (L4) matches it by __file__ and
    # prefers its __name__ (L4.5). "<run_path>" scores 1 (not a valid dotted name) but is the
    # only match, so it is returned (L4.6) and the label is not validated (L6.5).
    assert leg.labels_of(s("rp_default")) == {"<<run_path>>"}
    assert leg.labels_of(s("rp_main")) == {"<__main__>"}
    assert leg.labels_of(s("rp_custom")) == {"<rp_custom_name>"}
    # Quirk, L5.1/L5.3: the scan's answer for the first run is cached under the path and
    # never invalidated, so the second run of the same file keeps "first_name".
    assert leg.labels_of(s("rp_twice")) == {"<first_name>"}


def test_runpy_run_module(tmp_path):
    proj = _runpy_project(tmp_path, """
        import runpy
        print(runpy.run_module("pkg.rm_default")["RESULT"])
        print(runpy.run_module("pkg.rm_main", run_name="__main__")["RESULT"])
        print(runpy.run_module("pkg.rm_custom", run_name="rm_custom_name")["RESULT"])
        print(runpy.run_module("pkg.rm_alter", run_name="rm_alter_name", alter_sys=True)["RESULT"])
    """)
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    expected_out = (
        "('rm_default', 'pkg.rm_default')\n('rm_main', '__main__')\n"
        "('rm_custom', 'rm_custom_name')\n('rm_alter', 'rm_alter_name')\n"
    )
    m = lambda n: os.path.join(proj, "pkg", n + ".py")  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    assert g.stdout == leg.stdout == expected_out

    # N1/N3: whatever run_name put in __name__.
    assert g.labels_of(m("rm_default")) == {"<pkg.rm_default>"}
    assert g.labels_of(m("rm_main")) == {"<__main__>"}
    assert g.labels_of(m("rm_custom")) == {"<rm_custom_name>"}
    assert g.labels_of(m("rm_alter")) == {"<rm_alter_name>"}

    # Without alter_sys, run_module runs the code in a fresh dict that is in no sys.modules
    # entry: the scan finds nothing and the path candidate (root = sys.path[0], the project)
    # is returned (L5.4); N3: "the legacy resolver names ... run_module after __spec__.name
    # or the path".
    assert leg.labels_of(m("rm_default")) == {"<pkg.rm_default>"}
    assert leg.labels_of(m("rm_main")) == {"<pkg.rm_main>"}
    assert leg.labels_of(m("rm_custom")) == {"<pkg.rm_custom>"}
    # alter_sys=True: sys.modules["rm_alter_name"] is a temporary module whose __spec__ is
    # the module's spec; L4.5 prefers __spec__.name over __name__.
    assert leg.labels_of(m("rm_alter")) == {"<pkg.rm_alter>"}
    for run in runs.values():
        assert run.labels_of(os.path.join(proj, "pkg", "__init__.py")) == {"<pkg>"}


def test_script_that_imports_itself(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            if __name__ == "__main__":
                import main
                print("outer", main.__name__)
        """,
    })
    main = os.path.join(proj, "main.py")
    runs = record_both(tmp_path, main, cwd=proj)
    for run in runs.values():
        assert run.stdout == "outer main\n"
    # N1: two runs of the file, one per __name__.
    assert runs["globals"].labels_of(main) == {"<__main__>", "<main>"}
    # L5 consequence ("a script that imports itself"): the first lookup cached "__main__"
    # for the path; the second run gets it back.
    assert runs["legacy"].labels_of(main) == {"<__main__>"}


def _directory_program(tmp_path):
    return write_tree(tmp_path / "proj", {
        "app/__main__.py": """
            import os, sys
            from helpers import run_file
            here = os.path.dirname(os.path.abspath(__file__))
            print(__name__, sys.path[0] == here)
            print(run_file(os.path.join(here, "tool.py"), {"__name__": "tool_custom"})["N"])
        """,
        "app/helpers.py": """
            def run_file(path, globs):
                with open(path, encoding="utf-8") as f:
                    exec(compile(f.read(), path, "exec"), globs)
                return globs
        """,
        "app/tool.py": "N = __name__\n",
        # a heuristics marker (L3.4) above the program directory
        "setup.cfg": "",
    })


def test_directory_as_program_runs_as_under_python(tmp_path):
    """``ct-record DIR`` must run DIR/__main__.py exactly like ``python DIR``, which puts the
    absolute directory in sys.path[0]."""
    proj = _directory_program(tmp_path)
    plain = python("app", cwd=proj)
    assert plain.returncode == 0 and plain.stdout == "__main__ True\ntool_custom\n", plain.stderr
    runs = record_both(tmp_path, "app", cwd=proj)
    for engine, run in runs.items():
        assert run.stdout == plain.stdout, engine


def test_directory_as_program_labels(tmp_path):
    """The legacy roots are snapshotted after sys.path[0] is set "the way python would" (spec,
    decisions): for ``DIR`` that is the absolute <proj>/app."""
    proj = _directory_program(tmp_path)
    runs = record_both(tmp_path, "app", cwd=proj)
    app = os.path.join(proj, "app")
    assert runs["globals"].labels_of(os.path.join(app, "__main__.py")) == {"<__main__>"}
    assert runs["globals"].labels_of(os.path.join(app, "tool.py")) == {"<tool_custom>"}
    # L4.5: the __main__ entry's __spec__.name is "__main__".
    assert runs["legacy"].labels_of(os.path.join(app, "__main__.py")) == {"<__main__>"}
    # tool.py is in no sys.modules entry: the path candidate through the root <proj>/app
    # (sys.path[0]) gives "tool" (L3.2, L5.4). (A relative root "app" would match no absolute
    # target (L2.5); the heuristics would then find setup.cfg in <proj>: "app.tool".)
    assert runs["legacy"].labels_of(os.path.join(app, "tool.py")) == {"<tool>"}


def test_shadow_compare_does_not_change_the_labels(tmp_path):
    """docs/policy.md: "The primary engine alone decides what the trace contains"."""
    proj = _runpy_project(tmp_path, """
        import os, runpy
        here = os.path.dirname(os.path.abspath(__file__))
        runpy.run_path(os.path.join(here, "scripts", "rp_default.py"))
        runpy.run_path(os.path.join(here, "scripts", "rp_twice.py"), run_name="first_name")
        runpy.run_path(os.path.join(here, "scripts", "rp_twice.py"), run_name="__main__")
        runpy.run_module("pkg.rm_main", run_name="__main__")
        runpy.run_module("pkg.rm_alter", run_name="rm_alter_name", alter_sys=True)
    """)
    main = os.path.join(proj, "main.py")
    plain = record_both(tmp_path / "plain", main, cwd=proj)
    shadow = record_both(tmp_path / "shadow", main, cwd=proj, flags=["--shadow-compare"])
    for engine in plain:
        assert shadow[engine].metadata["policy"]["engine"]["shadow"] == ("legacy" if engine == "globals" else "globals")
        assert shadow[engine].module_labels() == plain[engine].module_labels(), engine
        assert shadow[engine].function_names() == plain[engine].function_names(), engine
