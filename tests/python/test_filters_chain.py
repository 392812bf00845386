"""The chain on real recordings: builtin → project file (found walking up) →
CODETRACER_TRACE_FILTER entries → --trace-filter entries; the last matching rule wins, value
patterns are replaced by a later matching rule even when it has none (spec F5), `inherit`
keeps the previous file's defaults (F2)."""

from filters_support import (
    REDACTED,
    project_filter,
    record,
    write_filter,
    write_files,
)

APP = {
    "app.py": """
        import mylib.helpers


        def charge(customer, note):
            return len(note)


        def memo(note):
            return note.upper()


        charge("ann", "gift")
        memo("later")
        mylib.helpers.double(2)
        mylib.helpers.triple(3)
    """,
    "mylib/__init__.py": "",
    "mylib/helpers.py": """
        def double(x):
            return x * 2


        def triple(x):
            return x * 3
    """,
}


def setup(tmp_path, project_rules, cli_rules, project_defaults=None, cli_defaults=None):
    write_files(tmp_path, APP)
    project_filter(tmp_path, "project", project_rules, **(project_defaults or {}))
    cli = write_filter(tmp_path / "override.toml", "override", cli_rules, **(cli_defaults or {}))
    return cli


def test_cli_file_overrides_project_skip_for_one_function(tmp_path):
    cli = setup(
        tmp_path,
        [{"selector": "pkg:mylib.*", "exec": "skip"}],
        [{"selector": "obj:mylib.helpers.double", "exec": "trace"}],
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    assert t.only_call("double").return_value == 4
    assert "triple" not in t.called_names()
    # Without the CLI file, the project rule alone skips both.
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t2").trace
    assert t.called_names().isdisjoint({"double", "triple"})


def test_last_matching_rule_wins_no_object_over_package_precedence(tmp_path):
    cli = setup(
        tmp_path,
        [{"selector": "obj:mylib.helpers.double", "exec": "trace"}],
        [{"selector": "pkg:mylib.*", "exec": "skip"}],
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    assert t.called_names().isdisjoint({"double", "triple"})
    assert t.only_call("charge").arg("customer") == "ann"


def test_later_rule_without_patterns_replaces_earlier_patterns(tmp_path):
    cli = setup(
        tmp_path,
        [{"selector": "file:app.py", "patterns": [("arg:note", "redact")]}],
        [{"selector": "obj:regex:\\.charge$", "reason": "no value patterns"}],
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    assert t.only_call("charge").arg("note") == "gift"  # patterns replaced by none
    assert t.only_call("memo").arg("note") == REDACTED  # the CLI rule does not match memo
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t2").trace
    assert t.only_call("charge").arg("note") == REDACTED


def test_later_rule_patterns_replace_not_extend(tmp_path):
    cli = setup(
        tmp_path,
        [{"selector": "file:app.py", "patterns": [("arg:note", "redact")]}],
        [{"selector": "file:app.py", "patterns": [("arg:customer", "redact")]}],
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    c = t.only_call("charge")
    assert c.arg("customer") == REDACTED
    assert c.arg("note") == "gift"


PROJECT_SKIP_REDACT = dict(default_exec="skip", default_value="redact")
APP_TRACED = [{"selector": "file:app.py", "exec": "trace"}]


def test_inherit_keeps_the_previous_files_defaults(tmp_path):
    cli = setup(
        tmp_path, APP_TRACED, [{"selector": "obj:nothing.matches.this"}],
        project_defaults=PROJECT_SKIP_REDACT,
        cli_defaults=dict(default_exec="inherit", default_value="inherit"),
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    # default_exec skip (project, inherited): mylib is not traced; app.py is by its rule.
    assert t.called_names().isdisjoint({"double", "triple"})
    c = t.only_call("charge")
    # default value redact (project, inherited): no pattern allows anything in app.py.
    assert c.arg("customer") == REDACTED and c.arg("note") == REDACTED
    assert c.return_value == REDACTED


def test_a_later_file_sets_one_default_and_inherits_the_other(tmp_path):
    cli = setup(
        tmp_path, APP_TRACED, [],
        project_defaults=PROJECT_SKIP_REDACT,
        cli_defaults=dict(default_exec="trace", default_value="inherit"),
    )
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    d = t.only_call("double")  # traced now (default_exec from the CLI file)
    assert d.arg("x") == REDACTED and d.return_value == REDACTED  # value default inherited
    write_filter(tmp_path / "override.toml", "override", [],
                 default_exec="inherit", default_value="allow")
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t2").trace
    assert "double" not in t.called_names()
    assert t.only_call("charge").arg("note") == "gift"


# --- discovery of the project file ---------------------------------------------------------

HELPER_SKIP = [{"selector": "file:glob:**/helper.py", "exec": "skip"}]
RUN = {
    "run.py": """
        import helper


        def main():
            return helper.work(1)


        main()
    """,
    "helper.py": """
        def work(v):
            return v + 1
    """,
}


def test_project_file_is_found_walking_up_from_the_program(tmp_path):
    proj = tmp_path / "proj"
    project_filter(proj, "proj", HELPER_SKIP)
    write_files(proj / "tools" / "sub", RUN)
    run = record(proj / "tools" / "sub" / "run.py", trace_dir=tmp_path / "t", cwd=tmp_path)
    t = run.trace
    assert t.only_call("main").return_value == 2
    assert "work" not in t.called_names()
    paths = [s["path"] for s in run.metadata["filters"]["sources"]]
    assert paths == ["<builtin>", str(proj / ".codetracer" / "trace-filter.toml")]


def test_the_nearest_project_file_is_the_only_one_loaded(tmp_path):
    proj = tmp_path / "proj"
    project_filter(proj, "outer", HELPER_SKIP)
    inner = project_filter(proj / "tools", "inner", [])
    write_files(proj / "tools" / "sub", RUN)
    run = record(proj / "tools" / "sub" / "run.py", trace_dir=tmp_path / "t", cwd=tmp_path)
    assert run.trace.only_call("work").return_value == 2
    paths = [s["path"] for s in run.metadata["filters"]["sources"]]
    assert paths == ["<builtin>", str(inner)]


def test_project_file_is_not_found_from_outside_the_project(tmp_path):
    proj = tmp_path / "proj"
    project_filter(proj, "proj", HELPER_SKIP)
    outside = tmp_path / "outside"
    write_files(outside, RUN)
    # Run from inside the project directory: the working directory does not matter for a
    # script, only the script's own directory.
    run = record(outside / "run.py", trace_dir=tmp_path / "t", cwd=proj)
    assert run.trace.only_call("work").return_value == 2
    assert [s["path"] for s in run.metadata["filters"]["sources"]] == ["<builtin>"]


def test_dash_m_looks_up_from_the_working_directory(tmp_path):
    proj = tmp_path / "proj"
    project_filter(proj, "proj", HELPER_SKIP)
    sub = proj / "tools" / "sub"
    write_files(sub, RUN)
    t = record(None, module="run", trace_dir=tmp_path / "t", cwd=sub).trace
    assert t.only_call("main").return_value == 2
    assert "work" not in t.called_names()
    outside = tmp_path / "outside"
    write_files(outside, RUN)
    t = record(None, module="run", trace_dir=tmp_path / "t2", cwd=outside).trace
    assert t.only_call("work").return_value == 2


# --- CODETRACER_TRACE_FILTER and --trace-filter together -------------------------------------

ORDER_APP = {
    "app.py": """
        def t0():
            return 0


        def t1():
            return 1


        def t2():
            return 2


        def t3():
            return 3


        def t4():
            return 4


        def t5():
            return 5


        for f in (t0, t1, t2, t3, t4, t5):
            f()
    """,
}


def fn_rule(name, exec_):
    return {"selector": f"obj:regex:\\.{name}$", "exec": exec_}


def test_env_entries_come_before_cli_entries_and_lists_keep_their_order(tmp_path):
    write_files(tmp_path, ORDER_APP)
    f = tmp_path / "filters"
    write_filter(f / "a.toml", "a", [fn_rule("t1", "skip"), fn_rule("t5", "trace")])
    write_filter(f / "b.toml", "b", [fn_rule("t1", "trace"), fn_rule("t2", "skip"),
                                     fn_rule("t5", "skip")])
    write_filter(f / "c.toml", "c", [fn_rule("t2", "trace"), fn_rule("t3", "trace")])
    write_filter(f / "d.toml", "d", [fn_rule("t3", "skip"), fn_rule("t4", "skip")])
    write_filter(f / "e.toml", "e", [fn_rule("t4", "trace")])
    run = record(
        tmp_path / "app.py",
        "--trace-filter", "filters/c.toml::filters/d.toml",
        "--trace-filter", "filters/e.toml",
        trace_dir=tmp_path / "t",
        cwd=tmp_path,  # relative entries are taken from the working directory
        env={"CODETRACER_TRACE_FILTER": " filters/a.toml :: ::filters/b.toml "},
    )
    called = run.trace.called_names()
    assert {"t0", "t1", "t2", "t4"} <= called  # t1: b after a; t2: CLI after env; t4: e after d
    assert called.isdisjoint({"t3", "t5"})  # t3: d after c within one value; t5: b after a
    sources = run.metadata["filters"]["sources"]
    assert [(s["origin"], s["path"]) for s in sources] == [
        ("builtin", "<builtin>"),
        ("env", str(f / "a.toml")),
        ("env", str(f / "b.toml")),
        ("cli", str(f / "c.toml")),
        ("cli", str(f / "d.toml")),
        ("cli", str(f / "e.toml")),
    ]


def test_env_only(tmp_path):
    write_files(tmp_path, ORDER_APP)
    a = write_filter(tmp_path / "filters" / "a.toml", "a", [fn_rule("t1", "skip")])
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "t",
                 env={"CODETRACER_TRACE_FILTER": str(a)})
    assert "t1" not in run.trace.called_names()
    assert {"t0", "t2", "t3"} <= run.trace.called_names()
