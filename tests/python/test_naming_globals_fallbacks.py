"""Hand-made globals: custom, non-str, empty, blank and missing ``__name__``; relative and
synthetic ``co_filename``. Globals engine: N1/N4 (fallback ``<module>``, counted by reason
in ``summary.naming.fallbacks``). Legacy engine: L5 on ``co_filename`` (L6.4)."""

import os

import pytest

from naming_support import record_both, write_tree

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

FILES = ("custom", "notstr", "empty", "blank", "missing", "padded", "strsub", "keyed", "relative")


def _project(tmp_path):
    files = {
        "main.py": """
            import os, sys, types
            from helpers import run_file
            here = os.path.dirname(os.path.abspath(__file__))
            lib = lambda n: os.path.join(here, "lib", n + ".py")


            class Name(str):
                pass


            print(run_file(lib("custom"), {"__name__": "custom"})["N"])
            print(run_file(lib("notstr"), {"__name__": 42})["N"])
            print(run_file(lib("empty"), {"__name__": ""})["N"])
            print(run_file(lib("blank"), {"__name__": " \\t "})["N"])
            print(run_file(lib("missing"), {})["N"])
            print(run_file(lib("padded"), {"__name__": "  padded.name \\n"})["N"])
            print(run_file(lib("strsub"), {"__name__": Name("sub.name")})["N"])
            # a sys.modules entry without __spec__ and with an empty __name__
            m = types.ModuleType("")
            m.__file__ = lib("keyed")
            sys.modules["keyed_key"] = m
            print(run_file(m.__file__, m.__dict__)["N"])
            # a relative co_filename (the cwd is the project)
            print(run_file("lib/relative.py", {"__name__": "rel_custom"})["N"])
        """,
        "helpers.py": """
            def run_file(path, globs, real=None):
                with open(real or path, encoding="utf-8") as f:
                    exec(compile(f.read(), path, "exec"), globs)
                return globs
        """,
    }
    for name in FILES:
        files[f"lib/{name}.py"] = 'N = repr(globals().get("__name__", "<absent>"))\n'
    return write_tree(tmp_path / "proj", files)


def test_hand_made_globals(tmp_path):
    proj = _project(tmp_path)
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    expected_out = [
        "'custom'", "42", "''", "' \\t '", "'<absent>'", "'  padded.name \\n'", "'sub.name'", "''",
        "'rel_custom'",
    ]
    lib = lambda n: os.path.join(proj, "lib", n + ".py")  # noqa: E731
    g, leg = runs["globals"], runs["legacy"]
    for run in runs.values():
        assert run.stdout.splitlines() == expected_out

    # Globals engine, N1: the trimmed str (subclasses included); N4: everything else is
    # <module>.
    assert g.labels_of(lib("custom")) == {"<custom>"}
    assert g.labels_of(lib("padded")) == {"<padded.name>"}
    assert g.labels_of(lib("strsub")) == {"<sub.name>"}
    for name in ("notstr", "empty", "blank", "missing", "keyed"):
        assert g.labels_of(lib(name)) == {"<module>"}, name
    # N2: a relative co_filename is no problem for __name__.
    assert g.labels_of("lib/relative.py") == {"<rel_custom>"}

    # Legacy engine: none of these files is in sys.modules except "keyed", so the path
    # candidate through the root <proj> (sys.path[0]) is the answer (L5.4), whatever
    # __name__ holds (N4: "where the legacy resolver found a path-based name").
    for name in ("custom", "notstr", "empty", "blank", "missing", "padded", "strsub"):
        assert leg.labels_of(lib(name)) == {f"<lib.{name}>"}, name
    # L4.5: __spec__ is None and __name__ is empty, so the preferred name is the key.
    assert leg.labels_of(lib("keyed")) == {"<keyed_key>"}
    # Quirk L6.4: a relative co_filename stays unresolved -> <module>.
    assert leg.labels_of("lib/relative.py") == {"<module>"}

    # summary.naming counts the recorded module code objects: main, helpers and the nine
    # lib files (one code object each).
    g_naming = g.metadata["summary"]["naming"]
    assert g_naming["fallbacks"] == {"not_str": 1, "empty": 3, "missing": 1}
    assert g_naming["named"] == 11 - 5
    leg_naming = leg.metadata["summary"]["naming"]
    assert leg_naming["fallbacks"] == {"relative_filename": 1}
    assert leg_naming["named"] == 11 - 1


def test_synthetic_filenames_are_never_recorded(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            g = {"__name__": "generated"}
            exec(compile("X = 1\\n", "<generated>", "exec"), g)
            exec("Y = 2\\n", g)
            print(g["X"], g["Y"])
        """,
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    for engine, run in runs.items():
        assert run.stdout == "1 2\n"
        # F7: synthetic filenames (<generated>, <string>) are never traced, under both engines.
        assert run.module_labels() == {os.path.join(proj, "main.py"): {"<__main__>"}}, engine


def test_functions_keep_their_qualname_when_module_renames_itself(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import renamer
            print(renamer.f(), renamer.__name__)
        """,
        "renamer.py": """
            __name__ = "renamed"


            def f():
                return __name__
        """,
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    target = os.path.join(proj, "renamer.py")
    for engine, run in runs.items():
        assert run.stdout == "renamed renamed\n"
        # N6 as decided in docs/module-naming.md: only <module> code reads __name__ (at its
        # first start, before the body rebinds it); functions are labelled by qualname.
        assert run.function_names()[target] == {"<renamer>", "f"}, engine


def test_first_start_of_a_code_object_is_final(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "main.py": """
            import os
            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "same.py")
            with open(path, encoding="utf-8") as f:
                code = compile(f.read(), path, "exec")
            for name in ("first_name", "second_name"):
                g = {"__name__": name}
                exec(code, g)
                print(g["N"])
        """,
        "lib/same.py": "N = __name__\n",
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    target = os.path.join(proj, "lib", "same.py")
    for run in runs.values():
        assert run.stdout == "first_name\nsecond_name\n"
    # One code object, run twice: it is named at its first start and that answer is final
    # (N1 "at the first start"; L6.1).
    assert runs["globals"].labels_of(target) == {"<first_name>"}
    assert runs["legacy"].labels_of(target) == {"<lib.same>"}


def test_many_short_lived_code_objects(tmp_path):
    """L6.1: the per-code-object cache must not confuse a new code object with a dead one
    (the reference keeps every code object alive, so identities are never reused)."""
    files = {
        "main.py": """
            import gc, os
            here = os.path.dirname(os.path.abspath(__file__))
            for i in range(40):
                path = os.path.join(here, "lib", "f%d.py" % i)
                with open(path, encoding="utf-8") as f:
                    exec(compile(f.read(), path, "exec"), {"__name__": "n%d" % i})
                gc.collect()
            print("done")
        """,
    }
    for i in range(40):
        files[f"lib/f{i}.py"] = "X = 1\n"
    proj = write_tree(tmp_path / "proj", files)
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    for i in range(40):
        target = os.path.join(proj, "lib", f"f{i}.py")
        assert runs["globals"].labels_of(target) == {f"<n{i}>"}, i
        assert runs["legacy"].labels_of(target) == {f"<lib.f{i}>"}, i


def test_legacy_unresolved_absolute_filename(tmp_path):
    # A code object whose co_filename sits directly under "/" (the file itself need not exist).
    target = "/zz_ct_naming_probe_%d.py" % os.getpid()
    assert not any(os.path.exists(os.path.join("/", m))
                   for m in (".git", ".hg", ".svn", "pyproject.toml", "setup.cfg", "setup.py"))
    proj = write_tree(tmp_path / "proj", {
        "main.py": f"""
            g = {{"__name__": "root_custom"}}
            exec(compile("X = 1\\n", {target!r}, "exec"), g)
            print(g["X"])
        """,
    })
    runs = record_both(tmp_path, os.path.join(proj, "main.py"), cwd=proj)
    assert runs["globals"].labels_of(target) == {"<root_custom>"}
    assert runs["globals"].metadata["summary"]["naming"] == {"named": 2, "fallbacks": {}}
    # Legacy: no session root is a prefix of "/zz...py"; the heuristic root is the parent
    # "/" (no marker there, L3.4), which normalises to the empty root and matches nothing
    # (L1.1, L3.1); the scan finds nothing either: no name -> <module> (L6.5), counted as
    # "unresolved".
    assert runs["legacy"].labels_of(target) == {"<module>"}
    naming = runs["legacy"].metadata["summary"]["naming"]
    assert {k: naming[k] for k in ("named", "fallbacks")} == {"named": 1, "fallbacks": {"unresolved": 1}}
    # The legacy resolvers report their counters; the globals engine has none.
    labels = naming["legacy_resolvers"]["labels"]
    assert labels["lookups"] == 2 and labels["scan"]["scans"] >= 1
    assert "legacy_resolvers" not in runs["globals"].metadata["summary"]["naming"]
