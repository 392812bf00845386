"""The metric series themselves (docs/metrics.md): closed label sets present from the start,
`ct_shadow_*` at 0 without `--shadow-compare`, the info gauge, and the summary's timings
agreeing with the histogram."""

import subprocess

import pytest

from shadow_support import dotted_tempdir, record, require_tool, write_tree

KINDS = {
    "main_script": "low", "runpy_alias": "low", "root_ambiguity": "medium",
    "alias_import": "medium", "dynamic_module": "low", "globals_missing": "medium",
    "globals_invalid": "medium", "legacy_unresolved": "low", "both_unresolved": "low",
    "name_reassigned": "medium", "filter_decision_changed": "high", "shadow_error": "medium",
    "primary_error": "high", "other": "medium",
}
FALLBACKS = {
    "globals": {"globals_missing", "globals_not_str", "globals_blank", "no_globals",
                "project_relative", "init_walk", "other"},
    "legacy": {"path_candidate", "heuristic_root", "relative_filename", "hook_attribute", "other"},
}
PROGRAM = {
    "app/__init__.py": "",
    "app/util.py": "def double(x):\n    return 2 * x\n",
    "main.py": "from app import util\nprint(util.double(21))\n",
}


@pytest.fixture(scope="module")
def project():
    with dotted_tempdir() as tmp:
        yield tmp, write_tree(tmp / "proj", PROGRAM)


def assert_closed_sets(m):
    kinds = {l["kind"]: l["severity"] for l, _ in m.series("ct_shadow_divergences_total")}
    assert kinds == KINDS
    for engine, reasons in FALLBACKS.items():
        got = {l["reason"] for l, _ in m.series("ct_module_name_fallbacks_total") if l["engine"] == engine}
        assert got == reasons, engine
    outcomes = {(l["engine"], l["outcome"]) for l, _ in m.series("ct_module_name_resolutions_total")}
    assert outcomes == {(e, o) for e in ("globals", "legacy")
                        for o in ("resolved", "fallback", "unresolved", "error")}
    assert {l["engine"] for l, _ in m.series("ct_shadow_engine_errors_total")} == {"globals", "legacy"}
    assert {l["reason"] for l, _ in m.series("ct_shadow_skipped_total")} == {"sampled_out", "budget_exhausted"}
    assert {(l["from"], l["to"]) for l, _ in m.series("ct_shadow_filter_decision_changes_total")} == {
        ("trace", "skip"), ("skip", "trace")}
    assert {l["event"] for l, _ in m.series("ct_trace_events_total")} == {
        "call", "line", "return", "exception", "opcode", "c_call", "c_return", "c_exception"}
    buckets = sorted(float(l["le"]) for l, _ in m.series("ct_module_name_resolution_seconds_bucket")
                     if l["engine"] == "globals")
    assert buckets == [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                       2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, float("inf")]
    for name, _ in m:
        assert name.startswith("ct_"), name


@pytest.mark.parametrize("primary", [pytest.param("legacy", marks=pytest.mark.legacy_engine), "globals"])
def test_without_shadow_compare_shadow_series_stay_at_zero(project, primary):
    tmp, proj = project
    flags = ["--module-name-from-globals"] if primary == "globals" else []
    # --metrics-addr alone keeps a registry (and writes metrics.prom) without a shadow.
    run = record(["--metrics-addr", "127.0.0.1:0", *flags, "main.py"], cwd=proj,
                 trace_dir=tmp / f"trace_{primary}").check(0)
    assert run.stdout == "42\n"
    assert run.stderr.startswith("ct-record: serving metrics on http://127.0.0.1:")
    a = run.artifacts
    assert not (a.dir / "divergences.ndjson").exists()
    m = a.metrics
    assert_closed_sets(m)
    info = m.series("ct_recorder_info")
    assert len(info) == 1 and info[0][1] == 1
    assert info[0][0]["primary"] == primary and info[0][0]["shadow"] == "none"
    for name in ("ct_shadow_comparisons_total", "ct_shadow_divergences_total",
                 "ct_shadow_filter_decision_changes_total", "ct_shadow_engine_errors_total",
                 "ct_shadow_skipped_total", "ct_shadow_budget_exhausted",
                 "ct_shadow_artifact_write_errors_total"):
        assert m.total(name) == 0, name
    other = "globals" if primary == "legacy" else "legacy"
    # The primary named every code object; the other engine never ran.
    assert m.total("ct_module_name_resolutions_total", engine=primary) > 0
    assert m.total("ct_module_name_resolutions_total", engine=other) == 0
    assert m.get_value("ct_trace_events_total", event="call") > 0
    proc = subprocess.run([require_tool("promtool"), "check", "metrics"], input=a.metrics_text,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.legacy_engine
def test_summary_timings_match_the_histogram(project):
    tmp, proj = project
    a = record(["--shadow-compare", "--quiet", "main.py"], cwd=proj,
               trace_dir=tmp / "trace_timings").check(0).artifacts
    s, m = a.summary, a.metrics
    assert_closed_sets(m)
    for engine in ("globals", "legacy"):
        t = s["timings"][engine]
        count = m.get_value("ct_module_name_resolution_seconds_count", engine=engine)
        assert t["count"] == count > 0
        assert t["total_seconds"] == pytest.approx(m.get_value("ct_module_name_resolution_seconds_sum", engine=engine))
        assert t["mean_seconds"] == pytest.approx(t["total_seconds"] / t["count"])
        assert 0 < t["p50_seconds"] <= t["p99_seconds"] <= 0.1
        # Buckets are cumulative.
        values = [v for l, v in sorted(((l, v) for l, v in m.series("ct_module_name_resolution_seconds_bucket")
                                        if l["engine"] == engine), key=lambda lv: float(lv[0]["le"]))]
        assert values == sorted(values) and values[-1] == count


@pytest.mark.legacy_engine
def test_trace_event_counters_match_the_trace(project):
    """`ct_trace_events_total` agrees with the run's own counts (trace_metadata.json) and
    with the events in the trace file."""
    import json

    from ct_recorder.trace_reader import load_events

    tmp, proj = project
    trace = tmp / "trace_events"
    a = record(["--shadow-compare", "--quiet", "main.py"], cwd=proj, trace_dir=trace).check(0).artifacts
    m = a.metrics
    counts = json.loads((trace / "trace_metadata.json").read_text())["summary"]["counts"]
    for event, key in (("call", "calls"), ("return", "returns"), ("line", "lines"),
                       ("exception", "exceptions")):
        assert m.get_value("ct_trace_events_total", event=event) == counts[key], event
    events = load_events(trace)
    # Function ids are the order of the Function declarations. The trace format opens with
    # a call of the synthetic `<toplevel>` function, which no hook event produced.
    functions = [e["Function"]["name"] for e in events if "Function" in e]
    calls = sum(1 for e in events
                if "Call" in e and functions[e["Call"]["function_id"]] != "<toplevel>")
    assert functions[0] == "<toplevel>"
    assert m.get_value("ct_trace_events_total", event="call") == calls > 0
