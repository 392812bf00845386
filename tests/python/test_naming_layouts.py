"""Module labels for project layouts and import tricks, under both engines.

Globals engine: Part N (``__name__`` only; N2: no roots, scan, heuristics or caches).
Legacy engine: L5 on the normalised ``co_filename`` (L6.4, L7), reasoned per case below.
"""

import os
import py_compile

import pytest

from naming_support import ENGINES, Run, clean_env, python, record, record_both, write_tree

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

# Module-level code that runs another file's source in hand-made globals. ``path`` is used
# as co_filename exactly as given (no normalisation by Python).
EXEC_HELPER = """
    def run_file(path, globs, real=None):
        with open(real or path, encoding="utf-8") as f:
            exec(compile(f.read(), path, "exec"), globs)
        return globs
"""


def test_aliased_imports(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import importlib.util, os, sys
            here = os.path.dirname(os.path.abspath(__file__))

            # impl: registered under an extra key, inserted before its real one, then run.
            spec = importlib.util.find_spec("impl")
            mod = importlib.util.module_from_spec(spec)
            sys.modules["zz_alias"] = mod
            sys.modules["impl"] = mod
            spec.loader.exec_module(mod)
            import zz_alias  # found in sys.modules: not run again

            # twice.py: loaded first as a shim "compat", then imported normally as "twice".
            spec = importlib.util.spec_from_file_location("compat", os.path.join(here, "twice.py"))
            compat = importlib.util.module_from_spec(spec)
            sys.modules["compat"] = compat
            spec.loader.exec_module(compat)
            import twice
            print(zz_alias is mod, compat is not twice, compat.NAME, twice.NAME)
        """,
        "impl.py": """
            NAME = __name__
        """,
        "twice.py": """
            NAME = __name__
        """,
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    for run in runs.values():
        assert run.stdout == "True True compat twice\n"
    impl, twice = os.path.join(proj, "impl.py"), os.path.join(proj, "twice.py")
    g, leg = runs["globals"], runs["legacy"]

    assert g.labels_of(impl) == {"<impl>"}
    # L4.1/L4.5: the first matching entry in insertion order is "zz_alias", but the preferred
    # name is the value's __spec__.name ("impl"), not the key.
    assert leg.labels_of(impl) == {"<impl>"}

    # N2: each run of twice.py is named after its own __name__.
    assert g.labels_of(twice) == {"<compat>", "<twice>"}
    # Quirk, L5 consequences: the scan found "compat" for twice.py and cached it under the
    # path; the second run (as "twice") gets the cached name back.
    assert leg.labels_of(twice) == {"<compat>"}


def _src_project(tmp_path):
    return write_tree(tmp_path / "proj", {
        "tools/drive.py": """
            import os
            import pkg.core          # src/pkg/__init__.py and core.py run as pkg, pkg.core
            import src.pkg.extra     # src/pkg/__init__.py again as src.pkg, then src.pkg.extra
            import pkg.extra         # extra.py again, as pkg.extra
            import src.pkg.core      # core.py again, as src.pkg.core
            from helpers import run_file
            src_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
            print(run_file(os.path.join(src_dir, "pkg", "loose.py"), {"__name__": "loose_custom"})["N"])
            print(pkg.core.N, src.pkg.core.N, pkg.extra.N, src.pkg.extra.N)
        """,
        "tools/helpers.py": EXEC_HELPER,
        "src/pkg/__init__.py": """
            N = __name__
        """,
        "src/pkg/core.py": """
            N = __name__
        """,
        "src/pkg/extra.py": """
            N = __name__
        """,
        "src/pkg/loose.py": """
            N = __name__
        """,
    })


@pytest.mark.parametrize("order", ["src-first", "root-first"])
def test_src_layout_with_root_and_src_on_sys_path(tmp_path, order):
    proj = _src_project(tmp_path)
    src = os.path.join(proj, "src")
    entries = [src, proj] if order == "src-first" else [proj, src]
    env = clean_env(PYTHONPATH=os.pathsep.join(entries))
    runs = record_both(tmp_path, os.path.join(proj, "tools", "drive.py"), cwd=proj, env=env)
    for run in runs.values():
        assert run.stdout == "loose_custom\npkg.core src.pkg.core pkg.extra src.pkg.extra\n"
    p = lambda rel: os.path.join(src, "pkg", rel)  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]

    # N2: every run is named after its own __name__.
    assert g.labels_of(p("__init__.py")) == {"<pkg>", "<src.pkg>"}
    assert g.labels_of(p("core.py")) == {"<pkg.core>", "<src.pkg.core>"}
    assert g.labels_of(p("extra.py")) == {"<src.pkg.extra>", "<pkg.extra>"}
    assert g.labels_of(p("loose.py")) == {"<loose_custom>"}

    # Legacy, L4/L5: the first run of each file is named by the scan (its sys.modules entry)
    # and that name is cached under the path for good, so the second run, under the other
    # prefix, gets the first name back whatever the sys.path order.
    assert leg.labels_of(p("__init__.py")) == {"<pkg>"}
    assert leg.labels_of(p("core.py")) == {"<pkg.core>"}
    assert leg.labels_of(p("extra.py")) == {"<src.pkg.extra>"}
    # loose.py is in no sys.modules entry, so the path candidate is the answer (L5.4). L2.4
    # sorts the roots longest first, so <proj>/src is tried before <proj> in both sys.path
    # orders (L3.2): "pkg/loose.py" -> "pkg.loose", never "src.pkg.loose".
    assert leg.labels_of(p("loose.py")) == {"<pkg.loose>"}


def test_namespace_package(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import nspkg.mod
            import nspkg.sub.deep
            import nspkg.part2
            print(nspkg.mod.N, nspkg.sub.deep.N, nspkg.part2.N, nspkg.__file__ if hasattr(nspkg, "__file__") else None)
        """,
        "nspkg/mod.py": "N = __name__\n",
        "nspkg/sub/deep.py": "N = __name__\n",
        # a second portion of the same namespace package, on another sys.path entry
        "portion/nspkg/part2.py": "N = __name__\n",
    })
    env = clean_env(PYTHONPATH=os.path.join(proj, "portion"))
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj, env=env)
    for run in runs.values():
        assert run.stdout == "nspkg.mod nspkg.sub.deep nspkg.part2 None\n"
    # Globals: N1. Legacy: the namespace packages' own entries carry no path (no __file__,
    # __spec__.origin is not a file), the submodules' entries match by __spec__.origin (L4.3)
    # and agree with the path candidates (roots <proj> and <proj>/portion, L3).
    for engine, run in runs.items():
        assert run.labels_of(os.path.join(proj, "nspkg", "mod.py")) == {"<nspkg.mod>"}, engine
        assert run.labels_of(os.path.join(proj, "nspkg", "sub", "deep.py")) == {"<nspkg.sub.deep>"}, engine
        assert run.labels_of(os.path.join(proj, "portion", "nspkg", "part2.py")) == {"<nspkg.part2>"}, engine


def test_sourceless_pyc(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import importlib.util, os, sys
            here = os.path.dirname(os.path.abspath(__file__))
            import compiled_mod
            import foreign_mod
            spec = importlib.util.spec_from_file_location("renamed_c", os.path.join(here, "data", "blob.pyc"))
            m = importlib.util.module_from_spec(spec)
            sys.modules["renamed_c"] = m
            spec.loader.exec_module(m)
            print(compiled_mod.N, foreign_mod.N, m.N, os.path.basename(compiled_mod.__file__))
        """,
        "compiled_mod.py": "N = __name__\n",
        "foreign_mod.py": "N = __name__\n",
        "data/blob.py": "N = __name__\n",
    })
    # A marker for the heuristic root of the foreign path below (L3.4), outside the project.
    write_tree(tmp_path / "elsewhere", {"setup.cfg": "", "lib/README": ""})
    p = lambda *rel: os.path.join(proj, *rel)  # noqa: E731
    # Legacy-layout .pyc next to where the source was, co_filename = the source path.
    py_compile.compile(p("compiled_mod.py"), cfile=p("compiled_mod.pyc"), doraise=True)
    py_compile.compile(p("data", "blob.py"), cfile=p("data", "blob.pyc"), doraise=True)
    # A .pyc built elsewhere: its co_filename is a foreign path (N2's "foreign co_filename").
    foreign = os.path.join(tmp_path, "elsewhere", "lib", "foreign_mod.py")
    py_compile.compile(p("foreign_mod.py"), cfile=p("foreign_mod.pyc"), dfile=foreign, doraise=True)
    for rel in ("compiled_mod.py", "foreign_mod.py", "data/blob.py"):
        os.remove(p(rel))

    runs = record_both(tmp_path, p("main.py"), cwd=proj)
    for run in runs.values():
        assert run.stdout == "compiled_mod foreign_mod renamed_c compiled_mod.pyc\n"
    g, leg = runs["globals"], runs["legacy"]

    assert g.labels_of(p("compiled_mod.py")) == {"<compiled_mod>"}
    assert g.labels_of(p("data", "blob.py")) == {"<renamed_c>"}
    assert g.labels_of(foreign) == {"<foreign_mod>"}

    # L4.4: the entry's __spec__.origin/__file__ "<proj>/compiled_mod.pyc" matches the target
    # "<proj>/compiled_mod.py" once its final "c" is dropped.
    assert leg.labels_of(p("compiled_mod.py")) == {"<compiled_mod>"}
    # Same rule, and here the scan is the only way to the right name: the path candidate
    # would be "data.blob" (root <proj>).
    assert leg.labels_of(p("data", "blob.py")) == {"<renamed_c>"}
    # Foreign co_filename: no session root is a prefix of <tmp>/elsewhere/lib/foreign_mod.py,
    # so the heuristics run (L3.3); the nearest marker walking up is <tmp>/elsewhere/setup.cfg
    # (L3.4), giving "lib.foreign_mod". The scan cannot match it (the entry's origin minus
    # "c" is <proj>/foreign_mod.py), so the path name is the answer (L5.4).
    assert leg.labels_of(foreign) == {"<lib.foreign_mod>"}


def test_symlinked_directory_on_sys_path(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import os
            import linkmod
            from helpers import run_file
            here = os.path.dirname(os.path.abspath(__file__))
            print(linkmod.N, os.path.basename(os.path.dirname(linkmod.__file__)))
            print(run_file(os.path.join(here, "linked", "loose.py"), {"__name__": "loose_custom"})["N"])
        """,
        "helpers.py": EXEC_HELPER,
        "real_lib/linkmod.py": "N = __name__\n",
        "real_lib/loose.py": "N = __name__\n",
    })
    linked = os.path.join(proj, "linked")
    os.symlink(os.path.join(proj, "real_lib"), linked)
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj, env=clean_env(PYTHONPATH=linked))
    for run in runs.values():
        assert run.stdout == "linkmod linked\nloose_custom\n"
    g, leg = runs["globals"], runs["legacy"]
    # Python finds the module through the symlink and keeps that path as co_filename.
    for engine, run in runs.items():
        assert run.labels_of(os.path.join(linked, "linkmod.py")) == {"<linkmod>"}, engine
        assert os.path.join(proj, "real_lib", "linkmod.py") not in run.module_labels(), engine
    assert g.labels_of(os.path.join(linked, "loose.py")) == {"<loose_custom>"}
    # L1.1 is lexical (no symlink resolution): the target stays <proj>/linked/loose.py and the
    # longest matching root is the symlink entry <proj>/linked (L2.4, L3.2) -> "loose"; had
    # the path been resolved, the root <proj> would have given "real_lib.loose".
    assert leg.labels_of(os.path.join(linked, "loose.py")) == {"<loose>"}


def test_sys_path_changed_mid_run_stale_roots(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import os, runpy, sys
            from helpers import run_file
            here = os.path.dirname(os.path.abspath(__file__))
            sys.path.insert(0, os.path.join(here, "extra"))
            sys.path.remove(os.path.join(here, "gone"))
            print(runpy.run_module("tool")["__name__"])
            import tool2
            print(tool2.__name__)
            print(run_file(os.path.join(here, "gone", "g.py"), {"__name__": "g_custom"})["N"])
        """,
        "helpers.py": EXEC_HELPER,
        "extra/tool.py": "N = __name__\n",
        "extra/tool2.py": "N = __name__\n",
        "gone/g.py": "N = __name__\n",
    })
    env = clean_env(PYTHONPATH=os.path.join(proj, "gone"))
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj, env=env)
    for run in runs.values():
        assert run.stdout == "tool\ntool2\ng_custom\n"
    p = lambda *rel: os.path.join(proj, *rel)  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    assert g.labels_of(p("extra", "tool.py")) == {"<tool>"}
    assert g.labels_of(p("extra", "tool2.py")) == {"<tool2>"}
    assert g.labels_of(p("gone", "g.py")) == {"<g_custom>"}

    # Stale roots (L2.1): the roots are those of sys.path at session start, <proj>/gone and
    # <proj>, never <proj>/extra. run_module leaves sys.modules alone, so the scan finds
    # nothing and the path candidate through the root <proj> is the answer: "extra.tool".
    assert leg.labels_of(p("extra", "tool.py")) == {"<extra.tool>"}
    # The scan reads sys.modules as it is at lookup time (L0): "tool2" is there.
    assert leg.labels_of(p("extra", "tool2.py")) == {"<tool2>"}
    # <proj>/gone was removed from sys.path but is still a session root: "g".
    assert leg.labels_of(p("gone", "g.py")) == {"<g>"}


def test_root_prefix_and_dotdot_quirks(tmp_path):
    write_tree(tmp_path, {
        "app/main.py": """
            import os
            from helpers import run_file
            top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            app = os.path.join(top, "app")
            print(run_file(os.path.join(top, "application", "m.py"), {"__name__": "m_custom"})["N"])
            print(run_file(app + "/sub/../other.py", {"__name__": "other_custom"},
                           real=os.path.join(app, "other.py"))["N"])
        """,
        "app/helpers.py": EXEC_HELPER,
        "app/other.py": "N = __name__\n",
        "application/m.py": "N = __name__\n",
    })
    app = os.path.join(tmp_path, "app")
    runs = record_both(tmp_path, os.path.join(app, "main.py"), cwd=app)
    for run in runs.values():
        assert run.stdout == "m_custom\nother_custom\n"
    g, leg = runs["globals"], runs["legacy"]
    m_path = os.path.join(tmp_path, "application", "m.py")
    dotdot = app + "/sub/../other.py"
    assert g.labels_of(m_path) == {"<m_custom>"}
    assert g.labels_of(dotdot) == {"<other_custom>"}
    # Quirk L3.1: roots match by characters. The root <tmp>/app (sys.path[0]) is a string
    # prefix of <tmp>/application/m.py; the remainder "lication/m.py" gives "lication.m".
    assert leg.labels_of(m_path) == {"<lication.m>"}
    # Quirk L1.1: ".." is kept; L1.2 joins "sub", "..", "other" with dots: "sub....other".
    assert leg.labels_of(dotdot) == {"<sub....other>"}


SITECUSTOMIZE = """
    import os, pathlib, sys
    kind = os.environ["NAMING_TEST_ENTRY"]
    entry = {"slash": "/", "empty": "", "dot": ".", "dot-slash": "./",
             "pathlib": pathlib.Path(os.getcwd()), "bytes": os.fsencode(os.getcwd())}[kind]
    sys.path.append(entry)
"""


@pytest.mark.parametrize("entry, marker, expected", [
    # L2.3 quirk: "/" normalises to "" and then becomes the cwd (<proj>)
    ("slash", False, "<lib.x>"),
    # L2.2: "" stands for the cwd
    ("empty", False, "<lib.x>"),
    # L2.2 quirk: "." and "./" normalise to nothing and vanish; no root matches, so the
    # heuristics run (L3.3): no marker up to "/", so the root is the parent dir (L3.4)
    ("dot", False, "<x>"),
    ("dot-slash", False, "<x>"),
    # ... and with a marker in <proj> the heuristic root is <proj>
    ("dot", True, "<lib.x>"),
    # L2.2: entries that are not str are skipped
    ("pathlib", False, "<x>"),
    ("bytes", False, "<x>"),
])
def test_session_root_entries(tmp_path, entry, marker, expected):
    files = {
        "bin/main.py": """
            import os
            from helpers import run_file
            print(run_file(os.path.join(os.getcwd(), "lib", "x.py"), {"__name__": "x_custom"})["N"])
        """,
        "bin/helpers.py": EXEC_HELPER,
        "lib/x.py": "N = __name__\n",
        "site/sitecustomize.py": SITECUSTOMIZE,
    }
    if marker:
        files["setup.cfg"] = ""
    proj = write_tree(tmp_path / "proj", files)
    env = clean_env(PYTHONPATH=os.path.join(proj, "site"), NAMING_TEST_ENTRY=entry)
    runs = record_both(tmp_path, os.path.join(proj, "bin", "main.py"), cwd=proj, env=env)
    target = os.path.join(proj, "lib", "x.py")
    for run in runs.values():
        assert run.stdout == "x_custom\n"
    assert runs["globals"].labels_of(target) == {"<x_custom>"}
    assert runs["legacy"].labels_of(target) == {expected}


def test_non_str_key_in_sys_modules(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import importlib.util, os, sys, types
            here = os.path.dirname(os.path.abspath(__file__))


            def prepare(name, rel):
                spec = importlib.util.spec_from_file_location(name, os.path.join(here, "lib", rel))
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                return spec, mod


            good = prepare("good_mod", "good.py")
            dash = prepare("my-mod", "dash.py")
            sys.modules[42] = types.ModuleType("forty_two")   # a non-str key
            late = prepare("late_mod", "late.py")
            for spec, mod in (good, dash, late):
                spec.loader.exec_module(mod)
            del sys.modules[42]
            import after
            print(good[1].N, dash[1].N, late[1].N, after.N)
        """,
        "lib/good.py": "N = __name__\n",
        "lib/dash.py": "N = __name__\n",
        "lib/late.py": "N = __name__\n",
        "after.py": "N = __name__\n",
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    for run in runs.values():
        assert run.stdout == "good_mod my-mod late_mod after\n"
    lib = lambda n: os.path.join(proj, "lib", n + ".py")  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    assert g.labels_of(lib("good")) == {"<good_mod>"}
    assert g.labels_of(lib("dash")) == {"<my-mod>"}
    assert g.labels_of(lib("late")) == {"<late_mod>"}
    # L4.6: "good_mod" is a score-0 match found before the non-str key: it ends the scan.
    assert leg.labels_of(lib("good")) == {"<good_mod>"}
    # Quirk L4.2: "my-mod" matches with score 1, the scan goes on and meets the non-str key,
    # which aborts the whole scan: the path candidate (root <proj>) is the answer (L5.4).
    assert leg.labels_of(lib("dash")) == {"<lib.dash>"}
    # The non-str key comes before "late_mod": the scan aborts before reaching it.
    assert leg.labels_of(lib("late")) == {"<lib.late>"}
    # Once the key is gone the scan works again.
    assert leg.labels_of(os.path.join(proj, "after.py")) == {"<after>"}


def test_path_names_follow_the_filesystem_and_roots_pass_over_init(tmp_path):
    runs, bases = {}, {}
    for engine in ENGINES:
        # a fresh tree per engine: the program creates a marker file while it runs
        base = bases[engine] = tmp_path / engine
        proj = write_tree(base / "proj", {
            "main.py": """
                import os
                from helpers import run_file
                here = os.path.dirname(os.path.abspath(__file__))
                outside = os.path.join(os.path.dirname(here), "outside")
                x = os.path.join(outside, "sub", "x.py")
                print(run_file(x, {"__name__": "x_first"})["N"])
                open(os.path.join(outside, "setup.cfg"), "w").close()   # a marker appears
                print(run_file(x, {"__name__": "x_second"})["N"])
                print(run_file(os.path.join(here, "pkgdir", "__init__.py"), {"__name__": "init_custom"})["N"])
                print(run_file(os.path.join(here, "scripts", "tool.pyw"), {"__name__": "pyw_custom"})["N"])
                print(run_file(os.path.join(here, "my-scripts", "run.py"), {"__name__": "dash_custom"})["N"])
            """,
            "helpers.py": EXEC_HELPER,
            "pkgdir/__init__.py": "N = __name__\n",
            "scripts/tool.pyw": "N = __name__\n",
            "my-scripts/run.py": "N = __name__\n",
        })
        write_tree(base / "outside", {"sub/x.py": "N = __name__\n"})
        env = clean_env(PYTHONPATH=os.path.join(proj, "pkgdir"))
        runs[engine] = record(os.path.join(proj, "main.py"), cwd=proj, engine=engine,
                              trace_dir=base / "trace", env=env).check()
        assert runs[engine].stdout == "x_first\nx_second\ninit_custom\npyw_custom\ndash_custom\n"
    g, leg = runs["globals"], runs["legacy"]
    at = lambda engine, *rel: os.path.join(bases[engine], *rel)  # noqa: E731

    assert g.labels_of(at("globals", "outside", "sub", "x.py")) == {"<x_first>", "<x_second>"}
    # L5.4: path names are not cached and follow the filesystem. No root covers <tmp>/outside:
    # first no marker up to "/", so the heuristic root is the parent dir -> "x" (L3.4); then
    # <tmp>/outside/setup.cfg exists -> "sub.x".
    assert leg.labels_of(at("legacy", "outside", "sub", "x.py")) == {"<x>", "<sub.x>"}
    # L3.2: the root <proj>/pkgdir leaves "__init__.py", which converts to nothing, so it is
    # passed over for the shorter root <proj>: "pkgdir".
    assert g.labels_of(at("globals", "proj", "pkgdir", "__init__.py")) == {"<init_custom>"}
    assert leg.labels_of(at("legacy", "proj", "pkgdir", "__init__.py")) == {"<pkgdir>"}
    # L1.2: only ".py" is removed; other suffixes and invalid segments are kept (no validation).
    assert leg.labels_of(at("legacy", "proj", "scripts", "tool.pyw")) == {"<scripts.tool.pyw>"}
    assert leg.labels_of(at("legacy", "proj", "my-scripts", "run.py")) == {"<my-scripts.run>"}


def test_cwd_is_filesystem_root(tmp_path):
    """With the cwd at "/", an "" sys.path entry stands for "/" (L2.2/L2.3, and the decision
    in docs/module-naming.md); a candidate through "/" is the target's filesystem-shaped name,
    so the heuristics run anyway (L3.3) and find the marker (L3.4)."""
    proj = write_tree(tmp_path / "proj", {
        "bin/main.py": """
            import os
            from helpers import run_file
            outside = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "outside")
            print(os.getcwd(), run_file(os.path.join(outside, "sub", "x.py"), {"__name__": "x_custom"})["N"])
        """,
        "bin/helpers.py": EXEC_HELPER,
        "site/sitecustomize.py": SITECUSTOMIZE,
    })
    write_tree(tmp_path / "outside", {"setup.cfg": "", "sub/x.py": "N = __name__\n"})
    env = clean_env(PYTHONPATH=os.path.join(proj, "site"), NAMING_TEST_ENTRY="empty")
    runs = record_both(tmp_path, os.path.join(proj, "bin", "main.py"), cwd="/", env=env)
    target = os.path.join(tmp_path, "outside", "sub", "x.py")
    for run in runs.values():
        assert run.stdout == "/ x_custom\n"
    assert runs["globals"].labels_of(target) == {"<x_custom>"}
    assert runs["legacy"].labels_of(target) == {"<sub.x>"}


def test_in_process_start_snapshots_roots_at_start(tmp_path):
    """L2.1 / spec decisions: the roots are sys.path when the session starts; with the Python
    API that is the ct_recorder.start() call."""
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import os, sys
            import ct_recorder
            from helpers import run_file
            here = os.path.dirname(os.path.abspath(__file__))
            engine, trace = sys.argv[1], sys.argv[2]
            sys.path.insert(0, os.path.join(here, "before"))
            ct_recorder.configure_policy(module_name_from_globals=(engine == "globals"))
            ct_recorder.start(trace)
            sys.path.insert(0, os.path.join(here, "after"))
            print(run_file(os.path.join(here, "before", "a.py"), {"__name__": "a_custom"})["N"])
            print(run_file(os.path.join(here, "after", "b.py"), {"__name__": "b_custom"})["N"])
            ct_recorder.stop()
        """,
        "helpers.py": EXEC_HELPER,
        "before/a.py": "N = __name__\n",
        "after/b.py": "N = __name__\n",
    })
    runs = {}
    for engine in ENGINES:
        trace = os.path.join(tmp_path, f"trace-{engine}")
        plain = python(os.path.join(proj, "main.py"), cwd=proj, args=[engine, trace])
        assert (plain.returncode, plain.stdout) == (0, "a_custom\nb_custom\n"), plain.stderr
        runs[engine] = Run(0, plain.stdout, plain.stderr, trace)
        assert runs[engine].metadata["module_naming"] == {"engine": engine, "layer": "python-api"}
    a, b = os.path.join(proj, "before", "a.py"), os.path.join(proj, "after", "b.py")
    assert runs["globals"].labels_of(a) == {"<a_custom>"}
    assert runs["globals"].labels_of(b) == {"<b_custom>"}
    # <proj>/before was on sys.path at start(): the longest root (L2.4) -> "a".
    assert runs["legacy"].labels_of(a) == {"<a>"}
    # <proj>/after was added later (stale roots): through the root <proj> (sys.path[0]).
    assert runs["legacy"].labels_of(b) == {"<after.b>"}


def test_module_first_run_in_a_thread(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import threading
            t = threading.Thread(target=lambda: __import__("threaded_mod"))
            t.start()
            t.join()
            import threaded_mod
            print(threaded_mod.N)
        """,
        "threaded_mod.py": "N = __name__\n",
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    for engine, run in runs.items():
        assert run.stdout == "threaded_mod\n"
        # N1 / L4.5: the same name whichever thread first runs the module.
        assert run.labels_of(os.path.join(proj, "threaded_mod.py")) == {"<threaded_mod>"}, engine
