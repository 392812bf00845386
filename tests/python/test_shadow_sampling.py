"""`--shadow-sample` and `--shadow-budget` on a real program (docs/divergences.md,
"Sampling and budget")."""

import pytest

from shadow_support import dotted_tempdir, record, sampled, write_tree

N_MODULES = 40


def many_modules_project(root):
    """N_MODULES modules `mods/m<i>.py`, each with a function that main.py calls. With no
    project filter, every function diverges (root_ambiguity: legacy's filter pipeline
    names it from the whole path, `tmp.<...>.mods.m7`, the globals engine `mods.m7`), so
    the files that appear in the divergence log are exactly the files that were compared."""
    files = {"mods/__init__.py": ""}
    for i in range(N_MODULES):
        files[f"mods/m{i}.py"] = f"def f{i}():\n    return {i}\n"
    files["main.py"] = (
        "import importlib\n"
        f"total = sum(getattr(importlib.import_module(f'mods.m{{i}}'), f'f{{i}}')() for i in range({N_MODULES}))\n"
        "print('total', total)\n"
    )
    return write_tree(root, files)


EXPECTED_STDOUT = f"total {sum(range(N_MODULES))}\n"


@pytest.fixture(scope="module")
def project():
    with dotted_tempdir() as tmp:
        yield tmp, many_modules_project(tmp / "proj")


def run_sampled(tmp, proj, rate, name):
    run = record(["--shadow-compare", "--quiet", "--shadow-sample", rate, "main.py"], cwd=proj,
                 trace_dir=tmp / name).check(0)
    assert run.stdout == EXPECTED_STDOUT
    return run.artifacts


def module_files(proj):
    return {str(proj / "mods" / f"m{i}.py") for i in range(N_MODULES)}


@pytest.mark.legacy_engine
def test_sample_zero_compares_nothing(project):
    tmp, proj = project
    a = run_sampled(tmp, proj, "0", "t0")
    s, m = a.summary, a.metrics
    assert s["comparisons"] == 0
    assert a.divergences == []
    assert s["divergences"]["total"] == 0
    assert s["sampling"]["rate"] == 0.0
    # Every first sight was skipped, at least main.py and the 40 modules' bodies and functions.
    assert s["skipped"]["sampled_out"] >= 1 + 2 * N_MODULES
    assert s["skipped"]["budget_exhausted"] == 0
    assert m.get_value("ct_shadow_comparisons_total") == 0
    assert m.get_value("ct_shadow_skipped_total", reason="sampled_out") == s["skipped"]["sampled_out"]
    # The shadow engine (globals) never ran; the primary named every code object.
    assert m.total("ct_module_name_resolutions_total", engine="globals") == 0
    assert m.get_value("ct_module_name_resolution_seconds_count", engine="globals") == 0
    assert m.total("ct_module_name_resolutions_total", engine="legacy") == s["skipped"]["sampled_out"]
    assert m.total("ct_shadow_divergences_total") == 0


@pytest.mark.legacy_engine
def test_sample_half_is_deterministic(project):
    tmp, proj = project
    runs = [run_sampled(tmp, proj, "50%", f"t50_{i}") for i in range(2)]
    compared = []
    for a in runs:
        files = {r["filename"] for r in a.divergences} & module_files(proj)
        compared.append(files)
        assert a.summary["sampling"]["rate"] == 0.5
        assert a.summary["skipped"]["sampled_out"] > 0
        assert a.summary["comparisons"] > 0
    # Same files, same counts, run after run.
    assert compared[0] == compared[1]
    first, second = runs[0].summary, runs[1].summary
    assert first["comparisons"] == second["comparisons"]
    assert first["skipped"] == second["skipped"]
    # And they are the files the documented rule picks (FNV-1a of co_filename).
    expected = {f for f in module_files(proj) if sampled(f, 0.5)}
    assert compared[0] == expected
    assert 0 < len(expected) < N_MODULES
    # Every code object of a compared file is compared: the body and the function.
    for f in expected:
        quals = {r["qualname"] for r in runs[0].divergences if r["filename"] == f}
        assert {q for q in quals if q.startswith("f")}, (f, quals)


@pytest.mark.legacy_engine
def test_sample_rate_only_adds_files(project):
    """Raising the rate only adds files (the threshold grows, the hashes stay)."""
    tmp, proj = project
    low = {r["filename"] for r in run_sampled(tmp, proj, "0.25", "t25").divergences}
    high = {r["filename"] for r in run_sampled(tmp, proj, "0.75", "t75").divergences}
    mods = module_files(proj)
    assert low & mods <= high & mods
    assert low & mods == {f for f in mods if sampled(f, 0.25)}
    assert high & mods == {f for f in mods if sampled(f, 0.75)}


@pytest.mark.legacy_engine
def test_budget_exhausted_with_stalling_shadow(project):
    """`--shadow-budget 0.0001` with a shadow engine that takes 20 ms per comparison: the
    50 ms warm-up floor is gone after at most three comparisons, comparing stops for the
    rest of the run, and the summary and metrics say so. The program is unaffected."""
    tmp, proj = project
    run = record(["--shadow-compare", "--quiet", "--shadow-budget", "0.0001", "main.py"], cwd=proj,
                 trace_dir=tmp / "tbudget",
                 env={"CT_RECORDER_TEST_SHADOW_FAULT": "stall"}).check(0)
    assert run.stdout == EXPECTED_STDOUT
    s, m = run.artifacts.summary, run.artifacts.metrics
    b = s["budget"]
    assert b["fraction"] == pytest.approx(0.0001)
    assert b["exhausted"] is True
    assert b["exhausted_at_seconds"] is not None and b["exhausted_at_seconds"] >= 0
    assert b["floor_seconds"] == pytest.approx(0.05)
    # Each stalled comparison costs >= 20 ms: 3 of them exceed the floor, so at most 3 ran.
    assert 1 <= s["comparisons"] <= 3
    assert b["shadow_seconds"] >= 0.05
    assert s["skipped"]["budget_exhausted"] >= 2 * N_MODULES
    assert s["skipped"]["sampled_out"] == 0
    assert m.get_value("ct_shadow_budget_exhausted") == 1
    assert m.get_value("ct_shadow_skipped_total", reason="budget_exhausted") == s["skipped"]["budget_exhausted"]
    assert m.get_value("ct_shadow_comparisons_total") == s["comparisons"]
    # Without the budget the same run would have stalled on every code object
    # (> 80 x 20 ms); with it the whole run stays short.
    assert run.elapsed < 30


@pytest.mark.legacy_engine
def test_budget_not_exhausted_without_pressure(project):
    tmp, proj = project
    a = record(["--shadow-compare", "--quiet", "--shadow-budget", "50%", "main.py"], cwd=proj,
               trace_dir=tmp / "tbudget_ok").check(0).artifacts
    s = a.summary
    assert s["budget"]["fraction"] == pytest.approx(0.5)
    assert s["budget"]["exhausted"] is False
    assert s["budget"]["exhausted_at_seconds"] is None
    assert s["skipped"]["budget_exhausted"] == 0
    assert a.metrics.get_value("ct_shadow_budget_exhausted") == 0


@pytest.mark.parametrize(
    "option, value",
    [("--shadow-sample", "1.5"), ("--shadow-sample", "abc"), ("--shadow-sample", "NaN"),
     ("--shadow-sample", "150%"), ("--shadow-budget", "0"), ("--shadow-budget", "x"),
     ("--shadow-budget", "inf"),
     # With --shadow-compare, a build without the legacy engine stops at the engine first.
     pytest.param("--metrics-addr", "nonsense", marks=pytest.mark.legacy_engine),
     pytest.param("--metrics-addr", "127.0.0.1:99999", marks=pytest.mark.legacy_engine)],
)
def test_bad_shadow_options_stop_before_the_program(project, option, value):
    tmp, proj = project
    trace = tmp / f"bad_{option.strip('-')}_{abs(hash(value))}"
    run = record(["--shadow-compare", f"{option}={value}", "main.py"], cwd=proj, trace_dir=trace)
    assert run.returncode == 2
    assert run.stdout == ""
    if option == "--metrics-addr":  # refused when binding, before the program
        assert run.stderr.startswith(f"ct-record: error: {option}"), run.stderr
    else:  # a number out of its range: a usage error of the command line
        assert run.stderr.startswith(f"error: invalid value '{value}' for '{option} "), run.stderr
    assert value in run.stderr
    assert not trace.exists()
