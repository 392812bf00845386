"""The legacy scan must not run the program's attribute hooks (L4.7).

The program puts entries in ``sys.modules`` whose attributes can only come from a hook:
a module with a PEP 562 ``__getattr__`` (and no ``__file__``/``__cached__`` left), a
non-module object with ``__getattr__``, a module subclass with ``__getattribute__`` and a
``LazyLoader`` module (any attribute access executes its body). Every hook writes a
marker and imports modules when it runs. Then the program imports new modules, so that a
legacy engine scans ``sys.modules`` past those entries. Run under plain ``python`` and
under ``ct-record`` (both engines), the output, ``sys.modules`` (restricted to the
program's own modules) and the marker file must be identical: nothing was touched.
"""

import os

import pytest

from naming_support import ENGINES, python, record, write_tree

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

OWN = ["after1", "after2", "pkg_after", "pkg_after.inner", "lazy_attr", "lazy_body",
       "hooked_obj", "hooked_sub", "side1", "side2", "side3", "side4", "marks"]

FILES = {
    "marks.py": """
        import os
        MARKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "marker.txt")


        def mark(what):
            with open(MARKER, "a", encoding="utf-8") as f:
                f.write(what + "\\n")
    """,
    "lazy_attr.py": """
        from marks import mark


        def __getattr__(name):
            mark("lazy_attr.__getattr__ " + name)
            import side1
            import decimal
            raise AttributeError(name)


        # Leave __file__ and __cached__ to the hook: plain reads of them now call __getattr__.
        del globals()["__file__"], globals()["__cached__"]
    """,
    "lazy_body.py": """
        from marks import mark
        mark("lazy_body executed")
        import side4
    """,
    "main.py": """
        import importlib.util, os, sys, types
        from marks import mark, MARKER
        import lazy_attr


        class HookedObject:
            def __getattr__(self, name):
                mark("HookedObject.__getattr__ " + name)
                import side2
                raise AttributeError(name)


        class HookedModule(types.ModuleType):
            def __getattribute__(self, name):
                mark("HookedModule.__getattribute__ " + name)
                import side3
                return super().__getattribute__(name)


        spec = importlib.util.find_spec("lazy_body")
        spec.loader = importlib.util.LazyLoader(spec.loader)
        lazy = importlib.util.module_from_spec(spec)
        sys.modules["lazy_body"] = lazy
        spec.loader.exec_module(lazy)
        sys.modules["hooked_obj"] = HookedObject()
        sys.modules["hooked_sub"] = HookedModule("hooked_sub")

        # New module code objects (and functions): each is named while the entries above
        # sit in sys.modules before it.
        import after1
        import after2
        import pkg_after.inner
        after1.f()

        OWN = set(sys.argv[1].split(","))
        print(sorted(m for m in sys.modules if m in OWN))
        print("decimal" in sys.modules)
        print(os.path.exists(MARKER))
    """,
    "after1.py": """
        X = 1


        def f():
            return X
    """,
    "after2.py": "X = 2\n",
    "pkg_after/__init__.py": "\n",
    "pkg_after/inner.py": "X = 3\n",
    "side1.py": "\n",
    "side2.py": "\n",
    "side3.py": "\n",
    "side4.py": "\n",
}

EXPECTED_STDOUT = (
    "['after1', 'after2', 'hooked_obj', 'hooked_sub', 'lazy_attr', 'lazy_body', 'marks', "
    "'pkg_after', 'pkg_after.inner']\nFalse\nFalse\n"
)


def test_scan_runs_no_hooks(tmp_path):
    results = {}
    # Shadow mode runs the other engine as a guest on every code object: the legacy scan
    # then runs under the globals engine too.
    variants = ("python",) + ENGINES + tuple(f"{e}+shadow" for e in ENGINES)
    for variant in variants:
        proj = write_tree(tmp_path / variant, FILES)
        main = os.path.join(proj, "main.py")
        args = [",".join(OWN)]
        if variant == "python":
            run = python(main, cwd=proj, args=args)
        else:
            engine, _, shadow = variant.partition("+")
            run = record(main, cwd=proj, engine=engine, trace_dir=tmp_path / f"trace-{variant}", args=args,
                         flags=["--shadow-compare"] if shadow else [])
        marker = os.path.join(proj, "marker.txt")
        written = open(marker, encoding="utf-8").read() if os.path.exists(marker) else None
        results[variant] = (run.returncode, run.stdout, run.stderr, written)
        if variant != "python":
            labels = run.module_labels()
            assert labels[os.path.join(proj, "after1.py")] == {"<after1>"}, variant
            assert labels[os.path.join(proj, "pkg_after", "inner.py")] == {"<pkg_after.inner>"}, variant
            # The lazy module's body never ran.
            assert os.path.join(proj, "lazy_body.py") not in labels, variant

    # The fixture itself: under plain python no hook runs (checked after the process ended,
    # so hooks run at interpreter shutdown would show too).
    assert results["python"] == (0, EXPECTED_STDOUT, "", None)
    for variant in variants[1:]:
        assert results[variant] == results["python"], variant


GLOBALS_FILES = {
    "marks.py": FILES["marks.py"],
    "main.py": """
        import os
        from marks import mark, MARKER
        here = os.path.dirname(os.path.abspath(__file__))


        class HookedGlobals(dict):
            def __getitem__(self, key):
                mark("__getitem__ " + key)
                return dict.__getitem__(self, key)

            def __missing__(self, key):
                mark("__missing__ " + key)
                return "from_missing"


        def run_file(name, globs):
            path = os.path.join(here, "lib", name + ".py")
            with open(path, encoding="utf-8") as f:
                exec(compile(f.read(), path, "exec"), globs)
            return globs


        print(dict.__getitem__(run_file("g_missing", HookedGlobals()), "X"))
        print(dict.__getitem__(run_file("g_real", HookedGlobals(__name__="hooked_real")), "X"))
        print(os.path.exists(MARKER))
    """,
    "lib/g_missing.py": "X = 1\n",
    "lib/g_real.py": "X = 2\n",
}


def test_globals_dict_subclass_hooks_are_not_run(tmp_path):
    """docs/module-naming.md: ``__name__`` is read with plain dict lookups that ignore a dict
    subclass's ``__getitem__`` and ``__missing__``."""
    proj = write_tree(tmp_path / "proj", GLOBALS_FILES)
    main = os.path.join(proj, "main.py")
    marker = os.path.join(proj, "marker.txt")
    plain = python(main, cwd=proj)
    assert (plain.returncode, plain.stdout, os.path.exists(marker)) == (0, "1\n2\nFalse\n", False)
    for engine in ENGINES:
        run = record(main, cwd=proj, engine=engine, trace_dir=tmp_path / f"trace-{engine}")
        assert (run.returncode, run.stdout, run.stderr) == (0, plain.stdout, ""), engine
        assert not os.path.exists(marker), open(marker).read()
        labels = run.module_labels()
        lib = lambda n: os.path.join(proj, "lib", n + ".py")  # noqa: E731
        if engine == "globals":
            # N4: no "__name__" in the dict (a __missing__ hook does not count) -> <module>
            assert labels[lib("g_missing")] == {"<module>"}
            assert labels[lib("g_real")] == {"<hooked_real>"}
            assert run.metadata["summary"]["naming"]["fallbacks"] == {"missing": 1}
        else:
            # L5.4: in no sys.modules entry; path candidate through the root <proj>
            assert labels[lib("g_missing")] == {"<lib.g_missing>"}
            assert labels[lib("g_real")] == {"<lib.g_real>"}


def test_str_subclass_names_are_read_without_their_methods(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "marks.py": FILES["marks.py"],
        "main.py": """
            import os, sys, types
            from marks import mark, MARKER
            here = os.path.dirname(os.path.abspath(__file__))


            class HookedStr(str):
                __hash__ = str.__hash__

                def __str__(self):
                    mark("__str__")
                    return str.__str__(self)

                def __eq__(self, other):
                    mark("__eq__")
                    return str.__eq__(self, other)

                def __len__(self):
                    mark("__len__")
                    return str.__len__(self)

                def strip(self, *args):
                    mark("strip")
                    return str.strip(self, *args)

                def encode(self, *args):
                    mark("encode")
                    return str.encode(self, *args)


            path = os.path.join(here, "lib", "hs.py")
            m = types.ModuleType("placeholder")
            m.__dict__["__name__"] = HookedStr("  hooked_str ")
            m.__file__ = path
            sys.modules["hooked_key"] = m
            with open(path, encoding="utf-8") as f:
                exec(compile(f.read(), path, "exec"), m.__dict__)
            print(os.path.exists(MARKER))
        """,
        "lib/hs.py": "X = 1\n",
    })
    main = os.path.join(proj, "main.py")
    marker = os.path.join(proj, "marker.txt")
    plain = python(main, cwd=proj)
    assert (plain.returncode, plain.stdout, os.path.exists(marker)) == (0, "False\n", False), plain.stderr
    target = os.path.join(proj, "lib", "hs.py")
    for engine in ENGINES:
        run = record(main, cwd=proj, engine=engine, trace_dir=tmp_path / f"trace-{engine}")
        assert (run.returncode, run.stdout, run.stderr) == (0, "False\n", ""), engine
        assert not os.path.exists(marker), open(marker).read()
        if engine == "globals":
            # N1: a str subclass counts; the trimmed text is the name.
            assert run.labels_of(target) == {"<hooked_str>"}
        else:
            # L4.3/L4.5: the entry matches by __file__; __spec__ is None, so the preferred
            # name is __name__, a non-empty str taken as it is (no trimming in the scan).
            # It is not a valid dotted name (score 1, L4.6) but the only match, and labels
            # are not validated (L6.5).
            assert run.labels_of(target) == {"<  hooked_str >"}
