"""Selector semantics seen through real recordings (docs/trace-filters.md "Selectors", spec
F3, F7): glob/regex/literal match types, `file` pattern rewriting against the project root,
kinds of arguments, synthetic filenames."""

import pytest

from filters_support import REDACTED, project_filter, record, write_files

TREE = {
    "app.py": """
        import pkg.alpha
        import pkg.beta
        import pkg.sub.gamma


        def main():
            return pkg.alpha.fa() + pkg.beta.fb() + pkg.sub.gamma.fg()


        main()
    """,
    "pkg/__init__.py": "",
    "pkg/alpha.py": "def fa():\n    return 1\n",
    "pkg/beta.py": "def fb():\n    return 10\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/gamma.py": "def fg():\n    return 100\n",
}

ALL = {"fa", "fb", "fg"}


def recorded(tmp_path, selector):
    proj = tmp_path / "proj"
    write_files(proj, TREE)
    project_filter(proj, "sel", [{"selector": selector, "exec": "skip"}])
    t = record(proj / "app.py", trace_dir=tmp_path / "t").trace
    assert t.only_call("main").return_value == 111
    return t.called_names() & ALL


@pytest.mark.parametrize(
    "selector, kept",
    [
        ("pkg:pkg.*", set()),  # `.` is not special: every depth below pkg
        ("pkg:pkg.?eta", {"fa", "fg"}),
        ("pkg:pkg.{alpha,beta}", {"fg"}),
        ("pkg:pkg.[ab]*", {"fg"}),
        ("pkg:glob:PKG.*", ALL),  # case-sensitive
        ("pkg:regex:eta", {"fa", "fg"}),  # unanchored search
        ("pkg:regex:^sub", ALL),
        ("pkg:literal:pkg.sub.gamma", {"fa", "fb"}),
        ("pkg:literal:pkg.sub", ALL),  # the package module, not its children
        ("file:pkg/*.py", {"fg"}),  # `*` does not cross `/`
        ("file:pkg/**", set()),
        ("file:**/gamma.py", {"fa", "fb"}),
        ("file:./pkg/alpha.py", {"fb", "fg"}),  # leading ./ removed
        ("file:/pkg/alpha.py", {"fb", "fg"}),  # then leading /
        ("file:literal:pkg/./sub/../beta.py", {"fa", "fg"}),  # `.` and `..` resolved
        ("file:regex:^pkg//sub/", {"fa", "fb"}),  # doubled `/` joined away
        ("obj:pkg.alpha.fa", {"fb", "fg"}),
        ("obj:regex:\\.f[ab]$", {"fg"}),
    ],
)
def test_match_types(tmp_path, selector, kept):
    assert recorded(tmp_path, selector) == kept


def test_absolute_file_glob_is_made_relative_to_the_project_root(tmp_path):
    proj = tmp_path / "proj"
    assert recorded(tmp_path, f"file:{proj}/pkg/sub/**") == {"fa", "fb"}


def test_absolute_file_literal_under_the_root(tmp_path):
    proj = tmp_path / "proj"
    assert recorded(tmp_path, f"file:literal:{proj}/pkg/beta.py") == {"fa", "fg"}


def test_two_part_selector_with_a_glob_match_type_and_colon(tmp_path):
    # `obj:glob:pkg.alpha.fa` is the same as `obj:pkg.alpha.fa`.
    assert recorded(tmp_path, "obj:glob:pkg.alpha.fa") == {"fb", "fg"}


def test_arg_patterns_apply_to_every_kind_of_parameter(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            def f(pos, /, normal, *rest, kw_only, **opts):
                return pos


            def g(captured):
                inner = lambda: captured
                return inner()


            f(1, 2, 3, 4, kw_only=5, extra=6)
            g("c")
        """,
    })
    project_filter(tmp_path, "kinds", [{"selector": "file:app.py", "patterns": [
        ("arg:{pos,rest,opts,captured}", "redact"), ("arg:kw_only", "drop"),
    ]}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t").trace
    c = t.only_call("f")
    assert c.arg_names == ["pos", "normal", "rest", "opts"]
    assert c.arg("pos") == REDACTED and c.arg("rest") == REDACTED and c.arg("opts") == REDACTED
    assert c.arg("normal") == 2
    g = t.only_call("g")
    assert g.arg("captured") == REDACTED  # a cell variable
    assert g.return_value == "c"
    lam = t.only_call("g.<locals>.<lambda>")
    assert lam.return_value == "c"


def test_synthetic_filenames_are_never_traced(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            src = "def from_string(v):\\n    return v * 3\\n"
            ns = {}
            exec(compile(src, "<string>", "exec"), ns)


            def real(v):
                return ns["from_string"](v)


            real(2)
        """,
    })
    project_filter(tmp_path, "all", [{"selector": "obj:regex:.", "exec": "trace"},
                                     {"selector": "file:glob:**", "exec": "trace"}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t").trace
    assert t.only_call("real").return_value == 6
    assert "from_string" not in t.called_names()
    assert not any(p.startswith("<") for p in t.stepped_paths())


def test_absolute_file_glob_outside_every_root_needs_the_builtin(tmp_path):
    """F3: a glob loses its leading `/` when loaded. F4.2 quirk: with the builtin loaded (empty
    root) a file outside every project has a relative path, the absolute path without its
    `/`, which the rewritten glob matches. Without the builtin there is no relative path,
    F5 tests the absolute path (with its `/`) and the glob does not match."""
    write_files(tmp_path, {
        "app.py": """
            import os
            import sys

            sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ext"))
            import extmod

            extmod.f()
        """,
        "ext/extmod.py": "def f():\n    return 1\n",
    })
    from filters_support import write_filter

    f = write_filter(tmp_path / "filters" / "f.toml", "f",
                     [{"selector": f"file:{tmp_path}/ext/**", "exec": "skip"}],
                     default_exec="trace", default_value="allow")
    t = record(tmp_path / "app.py", "--trace-filter", str(f), trace_dir=tmp_path / "t").trace
    assert "f" not in t.called_names()
    t = record(tmp_path / "app.py", "--no-default-filter", "--trace-filter", str(f),
               trace_dir=tmp_path / "t2").trace
    assert t.only_call("f", "ext/extmod.py").return_value == 1


def test_lambda_return_pattern_uses_its_co_name(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            sq = lambda v: v * v


            def named(v):
                return v


            sq(3)
            named(4)
        """,
    })
    project_filter(tmp_path, "l", [{"selector": "file:app.py",
                                    "patterns": [("ret:literal:<lambda>", "redact")]}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t").trace
    assert t.only_call("<lambda>").return_value == REDACTED
    assert t.only_call("named").return_value == 4
