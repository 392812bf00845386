"""Evidence-only mode (`ct-record --shadow-compare --evidence-only`, docs/shadow-mode.md), as a
user runs it: real programs under the real console scripts, in subprocesses.

- the run directory holds `run.json`, `trace_metadata.json` and `shadow/` (summary,
  divergence log, roots, metrics) and nothing else: no events file, no `trace_paths.json`;
- the comparison is the one a shadow run with a trace makes of the same program;
- the program's output, exceptions, stack and exit status are as under python;
- `ct-rollout report` and its gates take the run as full evidence and say it is one;
- usage errors (no --shadow-compare, --format) are status 2, from every layer;
- callbacks are counted, never timed: on 3.12+ one per code object, on 3.11 one per call
  (the profile hook) and none per line or return.
"""

import json
import os
import subprocess
import sys

import pytest

from hot_support import HOT_PY
from shadow_support import (
    clean_env,
    ct_record_path,
    dotted_tempdir,
    record,
    require_tool,
    write_tree,
)

# Evidence-only mode compares the two engines: every test here needs the legacy engine.
pytestmark = pytest.mark.legacy_engine

MONITORING = sys.version_info >= (3, 12)
BIN = os.path.dirname(sys.executable)
CT_ROLLOUT = os.path.join(BIN, "ct-rollout")

EVIDENCE = ["--shadow-compare", "--evidence-only"]

# A project with divergences of several kinds: the main script, a package under src/ (a
# second sys.path root), an alias import and a module executed with runpy.
PROJECT = {
    "app.py": """
        import inspect
        import runpy
        import sys

        sys.path.insert(0, "src")
        import pkg.core
        import pkg.core as alias
        from pkg import helpers


        def main(n):
            total = 0
            for i in range(n):
                total += helpers.double(i)
            runpy.run_module("pkg.tool", run_name="__main__")
            print("depth", len(inspect.stack()))
            print("total", total, pkg.core.NAME, alias.NAME)
            return total


        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
        print("stderr line", file=sys.stderr)
    """,
    "src/pkg/__init__.py": "",
    "src/pkg/core.py": "NAME = __name__\n",
    "src/pkg/helpers.py": """
        def double(x):
            return 2 * x
    """,
    "src/pkg/tool.py": """
        print("tool ran as", __name__)
    """,
}


def project(tmp_path):
    return write_tree(tmp_path / "proj", PROJECT)


def listing(run_dir):
    """Every file under `run_dir`, relative, sorted."""
    out = []
    for root, _dirs, files in os.walk(run_dir):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), run_dir))
    return sorted(out)


def python_run(proj, args, env=None):
    return subprocess.run([sys.executable, *map(str, args)], cwd=proj, env=clean_env(env),
                          capture_output=True, text=True, timeout=120)


def divergence_facts(run_dir):
    """The divergence log without what differs from run to run (times, thread ids, pids)."""
    facts = []
    with open(run_dir / "shadow" / "divergences.ndjson", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            facts.append(json.dumps({
                "kind": r["kind"], "severity": r["severity"], "filename": r["filename"],
                "qualname": r["qualname"],
                "primary": {k: r["primary"].get(k) for k in ("engine", "name", "fallback", "filter")},
                "shadow": {k: r["shadow"].get(k) for k in ("engine", "name", "fallback", "filter")},
            }, sort_keys=True))
    return sorted(facts)


def comparable(summary):
    """The counts of a summary that say what was compared and found."""
    return {
        "comparisons": summary["comparisons"],
        "skipped": summary["skipped"],
        "divergences": summary["divergences"],
        "fallbacks": summary["fallbacks"],
        "filter_decision_changes": summary["filter_decision_changes"],
        "engine_errors": summary["engine_errors"],
    }


# --- the run directory --------------------------------------------------------------------


def test_run_directory_holds_the_evidence_and_nothing_else(tmp_path):
    proj = project(tmp_path)
    run_dir = tmp_path / "run"
    run = record([*EVIDENCE, "app.py", "50"], cwd=proj, trace_dir=run_dir).check()
    assert listing(run_dir) == sorted([
        "run.json", "trace_metadata.json", "shadow/summary.json", "shadow/divergences.ndjson",
        "shadow/roots.json", "shadow/metrics.prom",
    ])
    meta = json.loads((run_dir / "trace_metadata.json").read_text())
    assert meta["recording"] == "evidence-only"
    assert meta["format"] is None
    assert meta["summary"]["events_file"] is None and meta["summary"]["events"] == 0
    counts = meta["summary"]["counts"]
    assert counts["calls"] == counts["lines"] == counts["returns"] == 0
    assert counts["code_objects"] > 0
    assert meta["policy"]["settings"]["evidence_only"] == {
        "value": True, "layer": "cli", "source": "--evidence-only"}
    marker = json.loads((run_dir / "run.json").read_text())
    assert marker["state"] == "finished" and marker["exit_code"] == 0
    assert marker["events_file"] is None and marker["evidence_only"] is True
    summary = json.loads((run_dir / "shadow" / "summary.json").read_text())
    assert summary["run"]["recording"] == "evidence-only"
    assert summary["comparisons"] > 0 and summary["divergences"]["total"] > 0
    # The one-screen summary is printed as for any shadow run, and says there is no trace.
    assert "ct-record shadow summary" in run.stderr
    assert "evidence-only: no trace was written" in run.stderr


def test_a_previous_runs_trace_is_removed(tmp_path):
    """The run directory belongs to one run: the trace a recording left there goes."""
    proj = project(tmp_path)
    run_dir = tmp_path / "run"
    record(["--shadow-compare", "app.py", "5"], cwd=proj, trace_dir=run_dir).check()
    assert (run_dir / "trace.ctc").exists() and (run_dir / "trace_paths.json").exists()
    record([*EVIDENCE, "app.py", "5"], cwd=proj, trace_dir=run_dir).check()
    assert not (run_dir / "trace.ctc").exists()
    assert not (run_dir / "trace_paths.json").exists()
    assert json.loads((run_dir / "run.json").read_text())["evidence_only"] is True


def test_metrics_are_clean_for_promtool(tmp_path):
    proj = project(tmp_path)
    run_dir = tmp_path / "run"
    record([*EVIDENCE, "app.py", "5"], cwd=proj, trace_dir=run_dir).check()
    text = (run_dir / "shadow" / "metrics.prom").read_text()
    assert "ct_shadow_comparisons_total" in text
    proc = subprocess.run([require_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the same evidence as a shadow run with a trace ---------------------------------------


@pytest.mark.parametrize("primary", ["--module-name-from-globals", "--no-module-name-from-globals"])
def test_the_comparison_equals_a_shadow_runs(tmp_path, primary):
    proj = project(tmp_path)
    traced, evidence = tmp_path / "traced", tmp_path / "evidence"
    record(["--shadow-compare", primary, "app.py", "30"], cwd=proj, trace_dir=traced).check()
    record([*EVIDENCE, primary, "app.py", "30"], cwd=proj, trace_dir=evidence).check()
    a = json.loads((traced / "shadow" / "summary.json").read_text())
    b = json.loads((evidence / "shadow" / "summary.json").read_text())
    assert comparable(b) == comparable(a)
    assert a["run"]["recording"] == "trace"
    assert divergence_facts(evidence) == divergence_facts(traced)
    assert divergence_facts(evidence), "the project must diverge somewhere"
    # The primary engine's names and fallbacks are counted as in a recording.
    ma = json.loads((traced / "trace_metadata.json").read_text())["summary"]["naming"]
    mb = json.loads((evidence / "trace_metadata.json").read_text())["summary"]["naming"]
    assert mb["named"] == ma["named"] and mb["fallbacks"] == ma["fallbacks"]


def test_sampling_is_only_what_the_user_asked_for(tmp_path):
    """Without --shadow-sample every new code object is compared; with it, the rate holds."""
    proj = project(tmp_path)
    full = record([*EVIDENCE, "app.py", "5"], cwd=proj, trace_dir=tmp_path / "full").check()
    s = full.artifacts.summary
    assert s["skipped"] == {"sampled_out": 0, "budget_exhausted": 0}
    assert s["sampling"]["rate"] == 1.0
    none = record([*EVIDENCE, "--shadow-sample", "0", "app.py", "5"], cwd=proj,
                  trace_dir=tmp_path / "none").check()
    assert none.artifacts.summary["comparisons"] == 0
    assert none.artifacts.summary["skipped"]["sampled_out"] == s["comparisons"]


# --- the program is not changed -----------------------------------------------------------


def test_output_and_exit_status_are_as_under_python(tmp_path):
    proj = project(tmp_path)
    ran = record([*EVIDENCE, "--quiet", "app.py", "20"], cwd=proj, trace_dir=tmp_path / "r").check()
    plain = python_run(proj, ["app.py", "20"])
    assert plain.returncode == 0, plain.stderr
    # Same output, the stack depth the program sees included.
    assert ran.stdout == plain.stdout
    assert ran.stderr == plain.stderr


@pytest.mark.parametrize("body,status", [
    ("raise ValueError('boom')", 1),
    ("import sys\nsys.exit(3)", 3),
    ("def f():\n    raise KeyError('deep')\ndef g():\n    f()\ntry:\n    g()\nexcept KeyError:\n    print('caught')\nraise SystemExit('bye')", 1),
])
def test_exceptions_and_exit_codes_are_as_under_python(tmp_path, body, status):
    proj = write_tree(tmp_path / "p", {"prog.py": body + "\n"})
    ran = record([*EVIDENCE, "--quiet", "prog.py"], cwd=proj, trace_dir=tmp_path / "r")
    plain = python_run(proj, ["prog.py"])
    assert plain.returncode == status
    assert (ran.returncode, ran.stdout, ran.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["exit_code"] == status


def test_threads_and_the_programs_own_trace_function(tmp_path):
    """Code first seen in a `threading` thread is compared; the program's own sys.settrace
    keeps working (on 3.11 too: evidence-only uses the profile slot, not the trace slot)."""
    proj = write_tree(tmp_path / "p", {
        "prog.py": """
            import sys
            import threading

            import worker

            lines = []


            def tracer(frame, event, arg):
                if event == "line" and frame.f_code.co_name == "traced":
                    lines.append(frame.f_lineno)
                return tracer


            def traced():
                a = 1
                b = a + 1
                return b


            sys.settrace(tracer)
            traced()
            sys.settrace(None)
            print("own trace lines", len(lines))
            t = threading.Thread(target=worker.work)
            t.start()
            t.join()
        """,
        "worker.py": """
            import runpy


            def work():
                # run by runpy under another name: a runpy_alias divergence, found in the thread
                print("worker", runpy.run_module("thread_only", run_name="__main__")["VALUE"])
        """,
        "thread_only.py": "VALUE = 42\n",
    })
    ran = record([*EVIDENCE, "--quiet", "prog.py"], cwd=proj, trace_dir=tmp_path / "r").check()
    plain = python_run(proj, ["prog.py"])
    assert ran.stdout == plain.stdout
    assert "own trace lines 3" in ran.stdout
    # thread_only.py's module body was first seen in the thread: compared there.
    records = [json.loads(line) for line in
               (tmp_path / "r" / "shadow" / "divergences.ndjson").read_text().splitlines()]
    summary = json.loads((tmp_path / "r" / "shadow" / "summary.json").read_text())
    assert summary["program"]["threads"] >= 2, summary["program"]
    assert {r["kind"] for r in records if r["filename"] == str(proj / "thread_only.py")} == {
        "runpy_alias"}, records


# --- the report -------------------------------------------------------------------------


def test_report_takes_evidence_only_runs_as_full_evidence(tmp_path):
    proj = project(tmp_path)
    runs = []
    for i in range(2):
        run_dir = tmp_path / f"run{i}"
        record([*EVIDENCE, "--quiet", "app.py", "5"], cwd=proj, trace_dir=run_dir).check()
        runs.append(str(run_dir))
    traced = tmp_path / "traced"
    record(["--shadow-compare", "--quiet", "app.py", "5"], cwd=proj, trace_dir=traced).check()
    report = subprocess.run([CT_ROLLOUT, "report", "--format", "json", *runs, str(traced)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    agg = json.loads(report.stdout)["aggregate"]
    assert agg["run_count"] == 3
    assert agg["programs"]["evidence_only"] == 2
    kinds = sorted(r["recording"] for r in agg["runs"])
    assert kinds == ["evidence-only", "evidence-only", "trace"]
    one = json.loads((tmp_path / "run0" / "shadow" / "summary.json").read_text())
    assert agg["comparisons"] == 3 * one["comparisons"]
    table = subprocess.run([CT_ROLLOUT, "report", *runs], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "evidence-only 2" in " ".join(table.stdout.split()), table.stdout
    # The gates count them: a manifest asking for two runs passes on the two evidence runs.
    manifest = tmp_path / "rollout.toml"
    manifest.write_text("[gates]\nmin_runs = 2\n")
    checked = subprocess.run([CT_ROLLOUT, "report", "--check", "--manifest", str(manifest), *runs],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    manifest.write_text("[gates]\nmin_runs = 3\n")
    checked = subprocess.run([CT_ROLLOUT, "report", "--check", "--manifest", str(manifest), *runs],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 1 and "min_runs" in checked.stdout


# --- usage errors and layers --------------------------------------------------------------


def ct_record(args, cwd, env=None):
    return subprocess.run([ct_record_path(), *map(str, args)], cwd=cwd, env=clean_env(env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,env,says", [
    (["--evidence-only"], None, "needs --shadow-compare"),
    (["--evidence-only", "--no-shadow-compare"], None, "needs --shadow-compare"),
    (["--shadow-compare"], {"CODETRACER_EVIDENCE_ONLY": "1"}, None),
    ([], {"CODETRACER_EVIDENCE_ONLY": "yes"}, "needs --shadow-compare"),
    ([*EVIDENCE, "--format", "binary"], None, "--format cannot be combined"),
    ([*EVIDENCE, "--format=json"], None, "--format cannot be combined"),
    (EVIDENCE, {"CODETRACER_TRACE_FORMAT": "binary"}, "--format cannot be combined"),
    ([*EVIDENCE, "--max-trace-size", "1G"], None, "--max-trace-size cannot be combined"),
    (EVIDENCE, {"CODETRACER_MAX_TRACE_SIZE": "unlimited"}, "--max-trace-size cannot be combined"),
    (EVIDENCE, {"CODETRACER_EVIDENCE_ONLY": "maybe"}, "CODETRACER_EVIDENCE_ONLY"),
])
def test_usage_errors_are_status_2_and_run_nothing(tmp_path, args, env, says):
    proj = write_tree(tmp_path / "p", {"prog.py": "open('ran', 'w').write('x')\n"})
    run_dir = tmp_path / "r"
    done = ct_record(["--trace-dir", run_dir, *args, "prog.py"], cwd=proj, env=env)
    if says is None:
        # The environment turns evidence-only on; the command line adds --shadow-compare.
        assert done.returncode == 0, done.stderr
        assert json.loads((run_dir / "run.json").read_text())["evidence_only"] is True
        return
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("ct-record: error:") or done.stderr.startswith("error:"), done.stderr
    assert says in done.stderr, done.stderr
    assert not (proj / "ran").exists()
    assert not run_dir.exists()


def test_no_evidence_only_overrides_the_environment(tmp_path):
    proj = write_tree(tmp_path / "p", {"prog.py": "print('hi')\n"})
    done = ct_record(["--trace-dir", tmp_path / "r", "--shadow-compare", "--no-evidence-only",
                      "prog.py"], cwd=proj, env={"CODETRACER_EVIDENCE_ONLY": "1"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "trace.ctc").exists()


def test_project_config_turns_it_on(tmp_path):
    proj = write_tree(tmp_path / "p", {
        "prog.py": "print('hi')\n",
        "pyproject.toml": "[tool.ct-recorder]\nshadow-compare = true\nevidence-only = true\n",
    })
    policy = ct_record(["--print-policy"], cwd=proj)
    assert policy.returncode == 0
    row = next(line for line in policy.stdout.splitlines() if line.startswith("evidence_only"))
    assert row.split()[:3] == ["evidence_only", "true", "project-config"]
    done = ct_record(["--trace-dir", tmp_path / "r", "prog.py"], cwd=proj)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"
    assert sorted(os.listdir(tmp_path / "r")) == ["run.json", "shadow", "trace_metadata.json"]


def test_help_names_the_option_and_its_conflicts():
    done = ct_record(["--help"], cwd=os.getcwd())
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--evidence-only" in text and "Needs --shadow-compare" in text
    assert "cannot be combined with --format or --max-trace-size" in text


def test_python_api(tmp_path):
    """`configure_policy(evidence_only=True)` with shadow compare: no trace; `format=` is then
    refused, and evidence-only without shadow compare is a ConfigError."""
    prog = tmp_path / "api.py"
    prog.write_text(
        "import os, ct_recorder\n"
        "ct_recorder.configure_policy(shadow_compare=True, evidence_only=True)\n"
        "try:\n"
        "    ct_recorder.start('r-bad', format='binary')\n"
        "except ct_recorder.ConfigError as e:\n"
        "    print('refused:', 'format' in str(e))\n"
        "with ct_recorder.recording('r'):\n"
        "    import json\n"
        "print(sorted(os.listdir('r')))\n"
        "ct_recorder.configure_policy(shadow_compare=False)\n"
        "try:\n"
        "    ct_recorder.start('r2')\n"
        "except ct_recorder.ConfigError as e:\n"
        "    print('refused:', 'needs --shadow-compare' in str(e))\n"
    )
    done = python_run(tmp_path, [prog])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "refused: True", "['run.json', 'shadow', 'trace_metadata.json']", "refused: True"]


# --- what it costs, counted ---------------------------------------------------------------

CALLS = {
    "app.py": """
        import sys

        import hot


        def main(n):
            hot.spin(n)
            hot.many_calls(n)
            return n


        print(main(int(sys.argv[1])))
    """,
    "hot.py": HOT_PY,
}


def counts_for(proj, tmp_path, n):
    run_dir = tmp_path / f"r{n}"
    run = record([*EVIDENCE, "--quiet", "app.py", str(n)], cwd=proj, trace_dir=run_dir).check()
    assert run.stdout.strip() == str(n)
    meta = json.loads((run_dir / "trace_metadata.json").read_text())
    return meta["summary"]["counts"], json.loads((run_dir / "shadow" / "summary.json").read_text())


def test_callbacks_are_counted_per_code_object_not_per_call(tmp_path):
    """The second run makes 2,000 more calls and 6,000 more loop lines; the same code objects.
    On 3.12+ each code object costs one PY_START callback, then is disabled: the counts are
    equal. On 3.11 the profile hook is called once per call (never per line, and returns
    reach no recorder state): exactly 2,000 more."""
    proj = write_tree(tmp_path / "proj", CALLS)
    small, s_summary = counts_for(proj, tmp_path, 10)
    large, l_summary = counts_for(proj, tmp_path, 2010)
    assert s_summary["comparisons"] == l_summary["comparisons"] > 0
    assert small["code_objects"] == large["code_objects"] > 0
    if MONITORING:
        assert large["callbacks"] == small["callbacks"]
        # One PY_START per code object first seen; beyond that only the entry code's
        # PY_RETURN and the few exceptions that leave a frame while the program starts.
        assert small["code_objects"] <= small["callbacks"] + 10, small
        assert small["callbacks"] <= small["code_objects"] + 10, small
    else:
        assert large["callbacks"] - small["callbacks"] == 2000


# --- first sight: once per code object, again for a new one -------------------------------


def divergence_records(run_dir):
    path = run_dir / "shadow" / "divergences.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()]


TWO_THREADS = {
    # `work` runs in two threads at once, both started before either calls it: its code
    # object is first seen on whichever thread gets there first, and must be compared once.
    # As a function of the main script it diverges (main_script: `__main__` against the
    # path-derived name), so each comparison of it leaves one line in the divergence log.
    "prog.py": """
        import sys
        import threading

        barrier = threading.Barrier(int(sys.argv[1]))


        def work(n):
            total = 0
            for i in range(n):
                total += i
            return total


        def run():
            barrier.wait()
            for _ in range(200):
                work(50)


        threads = [threading.Thread(target=run) for _ in range(int(sys.argv[1]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("done", work(10))
    """,
}


@pytest.mark.parametrize("threads", [1, 2])
def test_code_first_seen_on_two_threads_is_compared_once(threads):
    # A path of dotted-name segments: the legacy engine gives the script a path-derived
    # name, so its functions diverge from `__main__` (pytest's tmp_path has a `-`).
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "p", TWO_THREADS)
        run_dir = tmp / "r"
        run = record([*EVIDENCE, "--quiet", "prog.py", str(threads)], cwd=proj,
                     trace_dir=run_dir).check()
        assert run.stdout == "done 45\n"
        work = [r for r in divergence_records(run_dir) if r["qualname"] == "work"]
        assert len(work) == 1, work
        assert work[0]["kind"] == "main_script"


RECREATED = {
    # Executes mod.py's source N times, each time compiled afresh: N module code objects and
    # N `helper` code objects, each one new to the recorder. `helper` diverges (a function
    # of a module run under the name `__main__`: main_script), so each comparison of a
    # new `helper` code object leaves one line in the divergence log.
    "prog.py": """
        import sys

        with open("mod.py", encoding="utf-8") as f:
            source = f.read()
        for i in range(int(sys.argv[1])):
            code = compile(source, "mod.py", "exec")
            namespace = {"__name__": "__main__"}
            exec(code, namespace)
            for _ in range(100):
                namespace["helper"](i)
        print("ok")
    """,
    "mod.py": """
        def helper(x):
            return x + 1
    """,
}


def test_a_recreated_code_object_is_compared_again():
    summaries = {}
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "p", RECREATED)
        for n in (1, 3):
            run_dir = tmp / f"r{n}"
            record([*EVIDENCE, "--quiet", "prog.py", str(n)], cwd=proj,
                   trace_dir=run_dir).check()
            helpers = [r for r in divergence_records(run_dir)
                       if r["qualname"] == "helper" and r["filename"].endswith("mod.py")]
            assert len(helpers) == n, helpers
            summaries[n] = json.loads((run_dir / "shadow" / "summary.json").read_text())
    # Two more executions: two more module code objects and two more helpers, no more.
    assert summaries[3]["comparisons"] - summaries[1]["comparisons"] == 4


def test_a_code_object_outliving_a_session_is_new_to_the_next(tmp_path):
    """Two evidence-only sessions in one process (the Python API): a function seen and
    compared in the first session is compared again in the second, and the calls between
    the sessions, with no session, change nothing."""
    write_tree(tmp_path, {
        "lib.py": """
            def used_in_both(x):
                return x * 2
        """,
        "api.py": """
            import json

            import ct_recorder

            import lib

            ct_recorder.configure_policy(shadow_compare=True, evidence_only=True)
            for name in ("r1", "r2"):
                with ct_recorder.recording(name):
                    for i in range(50):
                        lib.used_in_both(i)
                for i in range(50):
                    lib.used_in_both(i)
            for name in ("r1", "r2"):
                with open(name + "/shadow/summary.json", encoding="utf-8") as f:
                    print(name, json.load(f)["comparisons"])
        """,
    })
    done = python_run(tmp_path, ["api.py"])
    assert done.returncode == 0, done.stderr
    counts = dict(line.split() for line in done.stdout.splitlines())
    # `used_in_both` at least, in each session (and the same code objects in both).
    assert int(counts["r1"]) >= 1
    assert counts["r1"] == counts["r2"], counts
