"""Divergence kinds from real programs (docs/divergences.md).

Each test records a small project written to a temporary directory with
`ct-record --shadow-compare` and checks the divergence log (`shadow/divergences.ndjson`),
`summary.json` and `metrics.prom`.

Which names are compared (src/tracer/shadow.rs): for `<module>` code, each engine's module
name; for function code, the module name each engine gives the trace filters (legacy: spec
F4.3, globals: N5). The expected legacy names below are worked out from spec Parts L and F:

- a function's legacy filter name starts from the file's path relative to the chain source
  with the deepest project root. With only the builtin filter (empty root) that is the whole
  absolute path, and when every segment is a valid identifier it is kept as it is
  (`tmp.ctshadow_x.proj.pkg.compat`): F4.3 only asks the resolver when that name is not a
  valid dotted name. `dotted_tempdir()` makes sure of that, and `dotted()` builds the name;
- a module body's legacy name is L5 on `co_filename`: a `sys.modules` entry whose file is
  this one (its `__spec__.name`, else `__name__`), else the path below the longest
  `sys.path` root (read once at start), with a path cache holding `sys.modules` answers.

The default primary engine is legacy (rollout.toml phase `shadow`), so the globals engine is
the shadow unless a test passes `--module-name-from-globals`.
"""

import collections
import os
import sys

import pytest

from shadow_support import (
    Artifacts,
    dotted,
    dotted_tempdir,
    one,
    pick,
    record,
    side,
    write_tree,
)

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

KINDS = [
    "main_script", "runpy_alias", "root_ambiguity", "alias_import", "dynamic_module",
    "globals_missing", "globals_invalid", "legacy_unresolved", "both_unresolved",
    "name_reassigned", "filter_decision_changed", "shadow_error", "primary_error", "other",
]
SEVERITY = {
    "main_script": "low", "runpy_alias": "low", "root_ambiguity": "medium",
    "alias_import": "medium", "dynamic_module": "low", "globals_missing": "medium",
    "globals_invalid": "medium", "legacy_unresolved": "low", "both_unresolved": "low",
    "name_reassigned": "medium", "filter_decision_changed": "high", "shadow_error": "medium",
    "primary_error": "high", "other": "medium",
}
UNEXPECTED_KINDS = {"shadow_error", "primary_error", "other"}


# --- the projects -------------------------------------------------------------------------

ZOO = {
    "src/mypkg/__init__.py": "",
    "src/mypkg/core.py": """
        def work(x):
            return x + 1
        """,
    "pkg/__init__.py": "",
    "pkg/compat.py": """
        # A module that renames itself before defining its functions (spec N.6).
        __name__ = "compat"

        def shim():
            return "shimmed"
        """,
    "plugins/report.py": """
        def report():
            return "report"
        """,
    "tools/scratch_impl.py": """
        def scratch_fn():
            return "scratch"
        """,
    "gen.py": """
        VALUE = 6 * 7
        """,
    "main.py": """
        import importlib.util
        import os
        import sys
        import types

        HERE = os.path.dirname(os.path.abspath(__file__))


        def helper(x):
            return x * 2


        print("helper", helper(21))

        # src layout with both the project root (sys.path[0]) and src/ (PYTHONPATH) on
        # sys.path: the same file is imported under two names.
        import src.mypkg.core
        import mypkg.core
        print("work", mypkg.core.work(1), src.mypkg.core is not mypkg.core)

        # A module body that reassigns __name__, then one of its functions.
        from pkg import compat
        print("compat", compat.shim())

        # A loader-chosen name (plugin loading), not registered in sys.modules.
        spec = importlib.util.spec_from_file_location(
            "plugin_7", os.path.join(HERE, "plugins", "report.py"))
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        print("plugin", plugin.__name__, plugin.report())

        # Hand-made module globals around a real file.
        scratch_path = os.path.join(HERE, "tools", "scratch_impl.py")
        scratch = types.ModuleType("scratch")
        with open(scratch_path) as f:
            exec(compile(f.read(), scratch_path, "exec"), scratch.__dict__)
        print("scratch", scratch.scratch_fn())

        # Module code run with globals that have no usable __name__.
        gen_path = os.path.join(HERE, "gen.py")
        with open(gen_path) as f:
            gen_src = f.read()
        for g in ({}, {"__name__": 42}, {"__name__": "   "}):
            exec(compile(gen_src, gen_path, "exec"), g)
            print("gen", g["VALUE"])

        # Code compiled under a project-relative file name, with and without a __name__.
        rel_src = "def rel_fn():\\n    return 'rel'\\nOUT = rel_fn()\\n"
        for rel, g in (("jobs/nightly.py", {"__name__": "jobs.nightly"}), ("jobs/anon.py", {})):
            exec(compile(rel_src, rel, "exec"), g)
            print("rel", g["OUT"])
        """,
}

ZOO_STDOUT = (
    "helper 42\nwork 2 True\ncompat shimmed\nplugin plugin_7 report\nscratch scratch\n"
    "gen 42\ngen 42\ngen 42\nrel rel\nrel rel\n"
)


@pytest.fixture(scope="module")
def zoo():
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", ZOO)
        run = record(
            ["--shadow-compare", "--quiet", "main.py"],
            cwd=proj,
            trace_dir=tmp / "trace",
            env={"PYTHONPATH": str(proj / "src")},
        ).check(0)
        assert run.stdout == ZOO_STDOUT
        assert run.stderr == ""
        a = run.artifacts
        yield proj, a.divergences, a.summary, a.metrics


def of_project(records, proj):
    return [r for r in records if r["filename"].startswith(str(proj) + "/")]


def assert_record(r, kind, *, globals_name, legacy_name, opinion, opinion_source,
                  cause=None, expected=True):
    assert r["schema"] == "ct-shadow/divergence/v2"
    assert r["kind"] == kind, r
    assert r["severity"] == SEVERITY[kind]
    assert r["expected_by_adr"] is expected
    assert r["cause"] == cause
    assert r["primary"]["engine"] == "legacy" and r["shadow"]["engine"] == "globals"
    assert side(r, "globals")["name"] == globals_name, r
    assert side(r, "legacy")["name"] == legacy_name, r
    assert r["third_opinion"] == {
        "name": opinion,
        "source": opinion_source,
        "matches_globals": opinion is not None and opinion == globals_name,
        "matches_legacy": opinion is not None and opinion == legacy_name,
    }
    for role in ("primary", "shadow"):
        assert r[role]["error"] is None
        assert isinstance(r[role]["elapsed_ns"], int)
        # No filter of the project: both sides are traced, decided by the builtin filter's
        # catch-all rule (the last rule that matches names the decision, spec F5).
        assert r[role]["filter"]["exec"] == "trace"
        rule = r[role]["filter"]["rule"]
        assert rule["source"] == "<builtin>" and rule["selector"] == "pkg:glob:*", rule
    assert r["thread"] > 0
    assert r["first_seen"] >= 0


# --- one test per kind ----------------------------------------------------------------------


def test_main_script_plain_script_function(zoo):
    proj, divs, _, _ = zoo
    main = str(proj / "main.py")
    # The module body: legacy finds sys.modules["__main__"] (its __file__ is the script)
    # and names it `__main__` like the globals engine, so it does not diverge.
    assert pick(divs, filename=main, qualname="<module>") == []
    # Its function: the legacy filter pipeline names it from the path; the globals engine
    # says `__main__`; no __spec__ for a script.
    r = one(divs, filename=main, qualname="helper")
    assert_record(r, "main_script", globals_name="__main__", legacy_name=dotted(main),
                  opinion="main", opinion_source="file_stem")
    assert r["is_module"] is False
    assert r["globals_name"] == {"state": "str", "value": "__main__"}
    assert r["spec_name"] is None


def test_root_ambiguity_src_layout(zoo):
    proj, divs, _, _ = zoo
    core = str(proj / "src" / "mypkg" / "core.py")
    # First import (as src.mypkg.core): both engines agree. Second import (as mypkg.core):
    # legacy's path cache (L5.1) still answers the first name.
    r = one(divs, filename=core, qualname="<module>")
    assert_record(r, "root_ambiguity", globals_name="mypkg.core", legacy_name="src.mypkg.core",
                  opinion="mypkg.core", opinion_source="globals_name")
    assert r["is_module"] is True
    assert r["spec_name"] == "mypkg.core"
    init = one(divs, filename=str(proj / "src" / "mypkg" / "__init__.py"), qualname="<module>")
    assert_record(init, "root_ambiguity", globals_name="mypkg", legacy_name="src.mypkg",
                  opinion="mypkg", opinion_source="globals_name")
    # The function (called through mypkg.core): path-shaped legacy filter name.
    f = one(divs, filename=core, qualname="work")
    assert_record(f, "root_ambiguity", globals_name="mypkg.core", legacy_name=dotted(core),
                  opinion="mypkg.core", opinion_source="globals_name")


def test_alias_import_loader_chosen_name(zoo):
    proj, divs, _, _ = zoo
    report = str(proj / "plugins" / "report.py")
    r = one(divs, filename=report, qualname="<module>")
    # Not in sys.modules: legacy falls back to the path below sys.path[0].
    assert_record(r, "alias_import", globals_name="plugin_7", legacy_name="plugins.report",
                  opinion="plugin_7", opinion_source="globals_name")
    assert r["spec_name"] == "plugin_7"
    f = one(divs, filename=report, qualname="report")
    assert_record(f, "alias_import", globals_name="plugin_7", legacy_name=dotted(report),
                  opinion="plugin_7", opinion_source="globals_name")


def test_dynamic_module_hand_made_globals_real_filename(zoo):
    proj, divs, _, _ = zoo
    path = str(proj / "tools" / "scratch_impl.py")
    r = one(divs, filename=path, qualname="<module>")
    assert_record(r, "dynamic_module", globals_name="scratch", legacy_name="tools.scratch_impl",
                  opinion="scratch", opinion_source="globals_name")
    assert r["spec_name"] is None  # types.ModuleType sets __spec__ = None
    f = one(divs, filename=path, qualname="scratch_fn")
    assert_record(f, "dynamic_module", globals_name="scratch", legacy_name=dotted(path),
                  opinion="scratch", opinion_source="globals_name")


def test_globals_missing(zoo):
    proj, divs, _, _ = zoo
    gen = str(proj / "gen.py")
    r = one(divs, filename=gen, qualname="<module>", globals_name={"state": "missing"})
    assert_record(r, "globals_missing", globals_name=None, legacy_name="gen",
                  opinion="gen", opinion_source="file_stem")
    assert side(r, "globals")["fallback"] == "globals_missing"
    assert side(r, "legacy")["fallback"] is None


@pytest.mark.parametrize(
    "globals_name, fallback",
    [
        ({"state": "not_str", "type_name": "int"}, "globals_not_str"),
        ({"state": "str", "value": "   "}, "globals_blank"),
    ],
    ids=["not-str", "blank"],
)
def test_globals_invalid(zoo, globals_name, fallback):
    proj, divs, _, _ = zoo
    r = one(divs, filename=str(proj / "gen.py"), qualname="<module>", globals_name=globals_name)
    assert_record(r, "globals_invalid", globals_name=None, legacy_name="gen",
                  opinion="gen", opinion_source="file_stem")
    assert side(r, "globals")["fallback"] == fallback


def test_name_reassigned(zoo):
    proj, divs, _, _ = zoo
    compat = str(proj / "pkg" / "compat.py")
    # The module body starts with __name__ == "pkg.compat": no divergence.
    assert pick(divs, filename=compat, qualname="<module>") == []
    r = one(divs, filename=compat, qualname="shim")
    assert_record(r, "name_reassigned", globals_name="compat", legacy_name=dotted(compat),
                  opinion="compat", opinion_source="globals_name")
    assert r["spec_name"] == "pkg.compat"
    assert r["globals_name"] == {"state": "str", "value": "compat"}


def test_legacy_unresolved_relative_filename(zoo):
    _, divs, _, _ = zoo
    # L6.4: a relative co_filename stays unresolved for legacy; __name__ is there.
    r = one(divs, filename="jobs/nightly.py", qualname="<module>")
    assert_record(r, "legacy_unresolved", globals_name="jobs.nightly", legacy_name=None,
                  opinion="jobs.nightly", opinion_source="globals_name")
    assert side(r, "legacy")["fallback"] == "relative_filename"
    # Its function: both filter pipelines name it from the relative path, alike.
    assert pick(divs, filename="jobs/nightly.py", qualname="rel_fn") == []


def test_both_unresolved_relative_filename_without_name(zoo):
    _, divs, _, _ = zoo
    r = one(divs, filename="jobs/anon.py", qualname="<module>")
    assert_record(r, "both_unresolved", globals_name=None, legacy_name=None,
                  opinion="anon", opinion_source="file_stem")
    assert side(r, "globals")["fallback"] == "globals_missing"
    assert side(r, "legacy")["fallback"] == "relative_filename"
    assert pick(divs, filename="jobs/anon.py", qualname="rel_fn") == []


def test_zoo_has_no_unexplained_records(zoo):
    """Every record of the project's files is one of the cases above."""
    proj, divs, _, _ = zoo
    mine = of_project(divs, proj) + [r for r in divs if r["filename"].startswith("jobs/")]
    kinds = collections.Counter(r["kind"] for r in mine)
    assert kinds == {
        "main_script": 1, "root_ambiguity": 3, "name_reassigned": 1, "alias_import": 2,
        "dynamic_module": 2, "globals_missing": 1, "globals_invalid": 2, "legacy_unresolved": 1,
        "both_unresolved": 1,
    }


def assert_counts_agree(divs, summary, metrics, primary="legacy", shadow="globals"):
    """divergences.ndjson, summary.json and metrics.prom tell the same story."""
    by_kind = collections.Counter(r["kind"] for r in divs)
    unexpected = collections.Counter(r["kind"] for r in divs if not r["expected_by_adr"])
    d = summary["divergences"]
    assert d["total"] == len(divs)
    assert d["unexpected"] == sum(unexpected.values())
    assert d["expected"] == len(divs) - sum(unexpected.values())
    assert set(d["by_kind"]) == set(KINDS)
    for kind in KINDS:
        entry = d["by_kind"][kind]
        assert entry["severity"] == SEVERITY[kind]
        assert entry["expected"] + entry["unexpected"] == by_kind[kind], kind
        assert entry["unexpected"] == unexpected[kind], kind
        assert metrics.get_value("ct_shadow_divergences_total", kind=kind,
                                 severity=SEVERITY[kind]) == by_kind[kind], kind
    assert summary["artifacts"]["divergence_lines"] == len(divs)
    assert summary["artifacts"]["write_errors"] == 0
    assert metrics.get_value("ct_shadow_comparisons_total") == summary["comparisons"]
    assert summary["comparisons"] >= len(divs)
    assert summary["run"]["primary"] == primary and summary["run"]["shadow"] == shadow
    assert metrics.get_value("ct_recorder_info", version=summary["run"]["recorder_version"],
                             primary=primary, shadow=shadow) == 1
    # The shadow engine answered once per comparison; the primary at least as often.
    assert metrics.total("ct_module_name_resolutions_total", engine=shadow) == summary["comparisons"]
    assert metrics.total("ct_module_name_resolutions_total", engine=primary) >= summary["comparisons"]
    assert metrics.get_value("ct_module_name_resolution_seconds_count", engine=shadow) == summary["comparisons"]
    # Fallbacks: every reason in the summary is the metric's value.
    for engine, reasons in summary["fallbacks"].items():
        for reason, n in reasons.items():
            assert metrics.get_value("ct_module_name_fallbacks_total", engine=engine, reason=reason) == n
    changes = collections.Counter()
    for r in divs:
        g, l = side(r, "globals")["filter"], side(r, "legacy")["filter"]
        if g and l and g["exec"] != l["exec"]:
            changes[(l["exec"], g["exec"])] += 1
    fdc = summary["filter_decision_changes"]
    assert fdc["trace_to_skip"] == changes[("trace", "skip")]
    assert fdc["skip_to_trace"] == changes[("skip", "trace")]
    assert metrics.get_value("ct_shadow_filter_decision_changes_total", **{"from": "trace", "to": "skip"}) == fdc["trace_to_skip"]
    assert metrics.get_value("ct_shadow_filter_decision_changes_total", **{"from": "skip", "to": "trace"}) == fdc["skip_to_trace"]
    for engine in ("globals", "legacy"):
        assert metrics.get_value("ct_shadow_engine_errors_total", engine=engine) == summary["engine_errors"].get(engine, 0)


def test_zoo_summary_and_metrics_agree_with_the_log(zoo):
    proj, divs, summary, metrics = zoo
    assert_counts_agree(divs, summary, metrics)
    # The project's own cases are all expected by ADR 0016 and counted in the metrics.
    mine = of_project(divs, proj)
    for kind, n in collections.Counter(r["kind"] for r in mine).items():
        assert metrics.get_value("ct_shadow_divergences_total", kind=kind, severity=SEVERITY[kind]) >= n
    assert metrics.get_value("ct_module_name_fallbacks_total", engine="globals", reason="globals_missing") >= 1
    assert metrics.get_value("ct_module_name_fallbacks_total", engine="globals", reason="globals_not_str") >= 1
    assert metrics.get_value("ct_module_name_fallbacks_total", engine="globals", reason="globals_blank") >= 1
    assert summary["run"]["exit_code"] == 0
    assert summary["skipped"] == {"sampled_out": 0, "budget_exhausted": 0}
    assert summary["sampling"]["rate"] == 1.0
    assert summary["budget"]["fraction"] is None and summary["budget"]["exhausted"] is False


# --- runpy: `-m` runs and a profiler running a script ---------------------------------------

RUNPY = {
    "pkg/__init__.py": "",
    "pkg/__main__.py": """
        def entry():
            return "pkg main"

        print(entry())
        """,
    "pkg/cli.py": """
        def run():
            return "cli"

        if __name__ == "__main__":
            print(run())
        """,
    "tools/tool.py": """
        def tool_fn():
            return "tool"

        print(tool_fn())
        """,
}


@pytest.fixture(scope="module")
def runpy_project():
    with dotted_tempdir() as tmp:
        yield tmp, write_tree(tmp / "proj", RUNPY)


@pytest.mark.parametrize(
    "module, path, func, out",
    [("pkg.cli", "pkg/cli.py", "run", "cli\n"),
     ("pkg", "pkg/__main__.py", "entry", "pkg main\n")],
    ids=["dash-m-module", "dash-m-package"],
)
def test_runpy_alias_dash_m(runpy_project, module, path, func, out):
    tmp, proj = runpy_project
    run = record(["--shadow-compare", "--quiet", "-m", module], cwd=proj,
                 trace_dir=tmp / f"trace_{module.replace('.', '_')}").check(0)
    assert run.stdout == out
    a = run.artifacts
    divs = a.divergences
    filename = str(proj / path)
    spec_name = module if path.endswith("cli.py") else "pkg.__main__"
    r = one(divs, filename=filename, qualname="<module>")
    # runpy stores the module as sys.modules["__main__"] with the real __spec__: legacy
    # takes __spec__.name (L4.5); the globals engine takes __name__ == "__main__".
    assert_record(r, "runpy_alias", globals_name="__main__", legacy_name=spec_name,
                  opinion=spec_name, opinion_source="spec_name")
    assert r["spec_name"] == spec_name
    f = one(divs, filename=filename, qualname=func)
    assert_record(f, "runpy_alias", globals_name="__main__", legacy_name=dotted(filename),
                  opinion=spec_name, opinion_source="spec_name")
    assert_counts_agree(divs, a.summary, a.metrics)


def test_main_script_under_a_profiler(runpy_project):
    """`python -m cProfile tool.py`: the script runs in fresh `__main__` globals,
    sys.modules["__main__"] is cProfile, so legacy names the script from its path below the
    working directory (sys.path[0] for -m). Up to 3.11 those globals have no `__spec__`
    (main_script); from 3.12 cProfile gives them a `ModuleSpec("__main__")`, which makes the
    same names a runpy_alias (docs/divergences.md)."""
    tmp, proj = runpy_project
    tool = proj / "tools" / "tool.py"
    run = record(["--shadow-compare", "--quiet", "-m", "cProfile", "-o", tmp / "prof.out", tool],
                 cwd=proj, trace_dir=tmp / "trace_profile").check(0)
    assert run.stdout == "tool\n"
    if sys.version_info < (3, 12):
        kind, spec_name, opinion, source = "main_script", None, "tool", "file_stem"
    else:  # the spec is the third opinion, and it agrees with the globals engine
        kind, spec_name, opinion, source = "runpy_alias", "__main__", "__main__", "spec_name"
    divs = run.artifacts.divergences
    r = one(divs, filename=str(tool), qualname="<module>")
    assert_record(r, kind, globals_name="__main__", legacy_name="tools.tool",
                  opinion=opinion, opinion_source=source)
    assert r["spec_name"] == spec_name
    f = one(divs, filename=str(tool), qualname="tool_fn")
    assert_record(f, kind, globals_name="__main__", legacy_name=dotted(tool),
                  opinion=opinion, opinion_source=source)


# --- filter_decision_changed ----------------------------------------------------------------

FILTERED = {
    ".codetracer/trace-filter.toml": """
        [meta]
        name = "proj"
        version = 1

        [scope]
        default_exec = "trace"
        default_value_action = "allow"

        [[scope.rules]]
        selector = "pkg:glob:mypkg.*"
        exec = "skip"
        reason = "vendored code, not ours to trace"
        """,
    "src/mypkg/__init__.py": "",
    "src/mypkg/core.py": """
        def work(x):
            return x + 1
        """,
    "main.py": """
        import mypkg.core

        print("work", mypkg.core.work(41))
        """,
}


@pytest.mark.parametrize("primary", ["legacy", "globals"])
def test_filter_decision_changed_src_layout(primary):
    """`pkg:glob:mypkg.*` skip: the globals engine's `mypkg.core` matches it; legacy's
    filter name for the src layout is the project-relative `src.mypkg.core` (F4.3), which
    does not, so legacy traces the module by the builtin catch-all and the globals engine
    skips it. Swapping primary and shadow changes the roles, not the kind."""
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", FILTERED)
        flags = ["--module-name-from-globals"] if primary == "globals" else []
        run = record(["--shadow-compare", "--quiet", *flags, "main.py"], cwd=proj,
                     trace_dir=tmp / "trace", env={"PYTHONPATH": str(proj / "src")}).check(0)
        assert run.stdout == "work 42\n"
        a = run.artifacts
        divs = a.divergences
        core = str(proj / "src" / "mypkg" / "core.py")
        project_rule = {
            "source": str(proj / ".codetracer" / "trace-filter.toml"),
            "index": 0,
            "selector": "pkg:glob:mypkg.*",
        }
        body = one(divs, filename=core, qualname="<module>")
        func = one(divs, filename=core, qualname="work")
        for r, legacy_name, cause in ((body, "mypkg.core", None),
                                      (func, "src.mypkg.core", "root_ambiguity")):
            assert r["kind"] == "filter_decision_changed"
            assert r["severity"] == "high"
            assert r["cause"] == cause
            assert r["expected_by_adr"] is True
            assert r["primary"]["engine"] == primary
            g, l = side(r, "globals"), side(r, "legacy")
            assert g["name"] == "mypkg.core"
            assert l["name"] == legacy_name
            assert g["filter"] == {"exec": "skip", "rule": project_rule,
                                   "module_name": "mypkg.core"}
            # The legacy filters judged the src-layout name even where the label is right.
            assert l["filter"]["module_name"] == "src.mypkg.core"
            assert l["filter"]["exec"] == "trace"
            assert l["filter"]["rule"]["source"] == "<builtin>"
            assert l["filter"]["rule"]["selector"] == "pkg:glob:*"
            assert r["third_opinion"]["name"] == "mypkg.core"
            assert r["third_opinion"]["matches_globals"] is True
        # Nothing else of the project diverges (mypkg/__init__ is `mypkg`, outside the glob).
        assert len(of_project(divs, proj)) == 2
        s, m = a.summary, a.metrics
        assert s["filter_decision_changes"] == {"trace_to_skip": 2, "skip_to_trace": 0}
        assert m.get_value("ct_shadow_filter_decision_changes_total", **{"from": "trace", "to": "skip"}) == 2
        assert m.get_value("ct_shadow_filter_decision_changes_total", **{"from": "skip", "to": "trace"}) == 0
        assert m.get_value("ct_shadow_divergences_total", kind="filter_decision_changed", severity="high") == 2
        shadow = "globals" if primary == "legacy" else "legacy"
        assert_counts_agree(divs, s, m, primary=primary, shadow=shadow)
        # What is recorded follows the primary engine's decision only.
        from ct_recorder.trace_reader import load_events

        names = [ev["Function"]["name"] for ev in load_events(tmp / "trace") if "Function" in ev]
        if primary == "legacy":
            assert "<mypkg.core>" in names and "work" in names
        else:
            assert "<mypkg.core>" not in names and "work" not in names
        assert "<mypkg>" in names


def _roots_run(tmp):
    p = write_tree(tmp / "p", {"main.py": "def f():\n    return 1\nprint(f())\n"})
    run = record(["--shadow-compare", "--quiet", "main.py"], cwd=p, trace_dir=tmp / "t",
                 env={"PYTHONPATH": str(tmp)}).check(0)
    return p, run.artifacts


def test_roots_json_names_the_digest():
    """Every record's `sys_path_roots` digest is listed in roots.json with the session's
    roots (sys.path at start: the script's directory and PYTHONPATH)."""
    with dotted_tempdir() as tmp:
        p, a = _roots_run(tmp)
        roots = a.roots
        assert roots["schema"] == "ct-shadow/roots/v1"
        digests = {r["sys_path_roots"] for r in a.divergences}
        assert digests and digests <= set(roots["roots"])
        (listed,) = [roots["roots"][d] for d in digests]
        assert str(p) in listed and str(tmp) in listed
        # Longest first (spec L2.4).
        assert [len(r) for r in listed] == sorted((len(r) for r in listed), reverse=True)


def test_roots_digest_is_as_documented():
    """docs/divergences.md: "the digest is the first 16 hex digits of SHA-256 over the
    roots, each followed by a NUL byte", so a reader can recompute it from roots.json."""
    import hashlib

    with dotted_tempdir() as tmp:
        _, a = _roots_run(tmp)
        for digest, listed in a.roots["roots"].items():
            data = "".join(root + "\0" for root in listed).encode()
            assert hashlib.sha256(data).hexdigest()[:16] == digest, listed


# --- record fields and the stderr summary ----------------------------------------------------

THREADED = {
    "jobs/__init__.py": "",
    "jobs/tasks.py": """
        def in_main():
            return "main"

        def in_worker():
            return "worker"
        """,
    "main.py": """
        import threading

        from jobs import tasks

        ids = {}

        def run():
            ids["worker"] = threading.get_native_id()
            tasks.in_worker()

        ids["main"] = threading.get_native_id()
        tasks.in_main()
        t = threading.Thread(target=run)
        t.start()
        t.join()
        print(ids["main"], ids["worker"])
        """,
}


def test_record_thread_is_the_os_thread_id():
    """docs/divergences.md, record format: `thread` is the "OS thread id that first ran the
    code object". The program prints the OS (native) thread ids of its two threads; the
    functions first run on each must carry them."""
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", THREADED)
        run = record(["--shadow-compare", "--quiet", "main.py"], cwd=proj,
                     trace_dir=tmp / "trace").check(0)
        main_tid, worker_tid = map(int, run.stdout.split())
        assert main_tid != worker_tid
        divs = run.artifacts.divergences
        tasks = str(proj / "jobs" / "tasks.py")
        # Both functions diverge (path-shaped legacy filter names: root_ambiguity).
        in_main = one(divs, filename=tasks, qualname="in_main")
        in_worker = one(divs, filename=tasks, qualname="in_worker")
        assert in_main["kind"] == in_worker["kind"] == "root_ambiguity"
        assert in_main["thread"] != in_worker["thread"]
        assert (in_main["thread"], in_worker["thread"]) == (main_tid, worker_tid)


def test_stderr_summary_fits_one_screen():
    """Without --quiet the run ends with a summary of at most 25 lines on stderr: divergence
    totals with the worst kinds first, and where the files are (docs/divergences.md)."""
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", ZOO)
        run = record(["--shadow-compare", "main.py"], cwd=proj, trace_dir=tmp / "trace",
                     env={"PYTHONPATH": str(proj / "src")}).check(0)
        assert run.stdout == ZOO_STDOUT
        lines = run.stderr.splitlines()
        assert 1 < len(lines) <= 25, run.stderr
        # Set apart from the program's output: a blank line, then the summary between rules.
        assert lines[0] == "" and lines[1].endswith(" ct-record ──"), run.stderr
        assert lines[-1] == lines[1], run.stderr
        assert lines[2].startswith("ct-record shadow summary:")
        summary = run.artifacts.summary
        by_kind = {k: e for k, e in summary["divergences"]["by_kind"].items()
                   if e["expected"] + e["unexpected"]}
        # Listed rows: `kind count severity unexpected`, worst first (unexpected, then
        # severity, then count); the rest folded into one "… N more kinds, M divergences".
        rows = [line.split() for line in lines if line.split()[:1] and line.split()[0] in by_kind]
        listed = {r[0]: int(r[1]) for r in rows}
        for kind, n in listed.items():
            assert n == by_kind[kind]["expected"] + by_kind[kind]["unexpected"]
        rank = {"high": 2, "medium": 1, "low": 0}
        keys = [(-by_kind[r[0]]["unexpected"], -rank[r[2]], -int(r[1])) for r in rows]
        assert keys == sorted(keys)
        hidden = len(by_kind) - len(listed)
        if hidden:
            more = [line for line in lines if line.strip().startswith("…")]
            kinds = "kind" if hidden == 1 else "kinds"
            assert len(more) == 1 and f"{hidden} more {kinds}," in more[0], run.stderr
            hidden_count = summary["divergences"]["total"] - sum(listed.values())
            noun = "divergence" if hidden_count == 1 else "divergences"
            assert f"{hidden_count} {noun} (" in more[0], more[0]
        assert f"divergences {summary['divergences']['total']} " in run.stderr
        assert str(tmp / "trace" / "shadow" / "divergences.ndjson") in run.stderr
        assert f"compared {summary['comparisons']} code objects" in run.stderr
