"""`ct-rollout report` as a user runs it: over real shadow runs of ct-record, with real exit
codes (0 report, 1 failing gates with --check, 2 bad input)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

BIN = os.path.dirname(sys.executable)
CT_RECORD = os.path.join(BIN, "ct-record")
CT_ROLLOUT = os.path.join(BIN, "ct-rollout")


def _shadow_run(tmp_path, name):
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "app.py").write_text("def f(x):\n    return x + 1\n\nprint(f(1))\n")
    run_dir = tmp_path / name
    done = subprocess.run([CT_RECORD, "--shadow-compare", "--quiet", "--trace-dir", str(run_dir), "app.py"],
                          cwd=proj, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return run_dir


def _rollout(*args, cwd):
    return subprocess.run([CT_ROLLOUT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_report_over_runs_and_check_exit_codes(tmp_path):
    runs = [_shadow_run(tmp_path, f"run{i}") for i in range(2)]
    table = _rollout("report", *map(str, runs), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "ROLLOUT REPORT: 2 runs" in table.stdout
    # The built-in manifest wants at least 5 runs: --check turns the failing gate into status 1.
    checked = _rollout("report", "--check", *map(str, runs), cwd=tmp_path)
    assert checked.returncode == 1
    assert "min_runs" in checked.stdout and "FAIL" in checked.stdout
    data = json.loads(_rollout("report", "--format", "json", *map(str, runs), cwd=tmp_path).stdout)
    assert data["schema"] == "ct-reports/report/v1"
    assert data["passed"] is False
    assert data["aggregate"]["run_count"] == 2 and len(data["aggregate"]["runs"]) == 2
    assert {g["name"] for g in data["gates"] if not g["passed"]} >= {"min_runs"}


def test_passing_gates_with_a_lenient_manifest(tmp_path):
    run = _shadow_run(tmp_path, "run")
    manifest = tmp_path / "rollout.toml"
    manifest.write_text("[gates]\nmin_runs = 1\n")
    done = _rollout("report", "--check", "--manifest", str(manifest), str(run), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_input_is_status_2_with_a_clear_error(tmp_path):
    missing = _rollout("report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("ct-rollout: error:") and "nowhere" in missing.stderr
    run = _shadow_run(tmp_path, "run")
    (run / "shadow" / "summary.json").write_text("{not json")
    broken = _rollout("report", str(run), cwd=tmp_path)
    assert broken.returncode == 2
    assert "summary.json" in broken.stderr
    assert _rollout("report", "--format", "yaml", str(run), cwd=tmp_path).returncode == 2


def test_table_keeps_engine_names_and_rule_selectors_whole(tmp_path):
    # A project deep enough that "selector (path #index)" cannot fit one 100-column line,
    # whose filter skips `shop.pricing`: the legacy pipeline names it `src.shop.pricing`
    # (no match), the globals engine `shop.pricing` (skipped), a filter decision change.
    proj = tmp_path / "deeply" / "nested" / "workspace" / "for" / "a" / "long" / "project" / "path"
    (proj / ".codetracer").mkdir(parents=True)
    (proj / ".codetracer" / "trace-filter.toml").write_text(
        '[meta]\nname = "shop"\nversion = 1\n\n[scope]\ndefault_exec = "inherit"\n'
        'default_value_action = "inherit"\n\n[[scope.rules]]\nselector = "pkg:glob:shop.pricing"\n'
        'exec = "skip"\n')
    (proj / "src" / "shop").mkdir(parents=True)
    (proj / "src" / "shop" / "__init__.py").write_text("")
    (proj / "src" / "shop" / "pricing.py").write_text("def price(x):\n    return x * 2\n")
    (proj / "main.py").write_text(
        "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'src'))\n"
        "from shop.pricing import price\nprint(price(2))\n")
    run_dir = tmp_path / "run"
    done = subprocess.run([CT_RECORD, "--shadow-compare", "--no-module-name-from-globals", "--quiet",
                           "--trace-dir", str(run_dir), "main.py"],
                          cwd=proj, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = _rollout("report", str(run_dir), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), table.stdout
    # The runs table: primary legacy, shadow globals, both whole; the run directory last.
    header = next(i for i, line in enumerate(lines)
                  if line.split()[:4] == ["run", "id", "primary", "shadow"])
    row = lines[header + 1].split()
    assert row[1:3] == ["legacy", "globals"], table.stdout
    assert str(run_dir).endswith(row[-1].lstrip("…")), table.stdout
    # The globals rule keeps its selector whole; the long source path goes below it.
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("globals rule:"))
    assert lines[at].rstrip().endswith("pkg:glob:shop.pricing"), table.stdout
    assert lines[at + 1].strip().endswith("trace-filter.toml #0)"), table.stdout


def test_one_run_given_many_ways_counts_once(tmp_path):
    import shutil
    run = _shadow_run(tmp_path, "run")
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(run, copy)
    manifest = tmp_path / "rollout.toml"
    manifest.write_text("[gates]\nmin_runs = 5\n")
    args = [str(run), str(run), str(run / "shadow"), str(copy), str(copy / "shadow")]
    done = _rollout("report", "--check", "--manifest", str(manifest), *args, cwd=tmp_path)
    # Five arguments, one run: min_runs = 5 fails.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ROLLOUT REPORT: 1 run " in done.stdout, done.stdout
    assert "COUNTED ONCE" in done.stdout and "was given 5 times" in done.stdout, done.stdout
    data = json.loads(_rollout("report", "--format", "json", *args, cwd=tmp_path).stdout)
    assert data["aggregate"]["run_count"] == 1
    assert len(data["aggregate"]["duplicates"][0]["ignored"]) == 4


def test_rate_gate_shows_the_bound_and_how_much_more_would_pass(tmp_path):
    run = _shadow_run(tmp_path, "run")
    summary = json.loads((run / "shadow" / "summary.json").read_text())
    n, u = summary["comparisons"], summary["divergences"]["unexpected"]
    assert n > 0 and u == 0, summary
    manifest = tmp_path / "rollout.toml"
    manifest.write_text("[gates]\nmax_unexpected_divergence_rate = 0.001\n")
    done = _rollout("report", "--check", "--manifest", str(manifest), str(run), cwd=tmp_path)
    # A handful of clean comparisons is a rate of 0, but not evidence of a rate under 0.1%.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UNEXPECTED RATE WITH 95% CONFIDENCE (CLOPPER-PEARSON)" in done.stdout, done.stdout
    gate = json.loads(_rollout("report", "--format", "json", "--manifest", str(manifest), str(run),
                               cwd=tmp_path).stdout)["gates"][0]
    c = gate["confidence"]
    assert c["rate"] == 0 and c["method"] == "Clopper-Pearson"
    # For 0 events the exact bound is 1 - 0.025^(1/n).
    assert abs(c["upper"] - (1 - 0.025 ** (1 / n))) < 1e-9
    more = c["clean_comparisons_to_pass"]
    assert 1 - 0.025 ** (1 / (n + more)) <= 0.001 < 1 - 0.025 ** (1 / (n + more - 1))
    flat = " ".join(done.stdout.split())  # the table wraps long lines
    assert f"{more:,} more comparisons without an unexpected divergence would pass" in flat, flat
    assert f"0 of {n} comparisons = 0%; 95% upper bound" in flat, flat


def test_summary_records_the_entry_kind_and_the_report_its_coverage(tmp_path):
    proj = tmp_path / "kinds"
    (proj / "pkg").mkdir(parents=True)
    (proj / "pkg" / "__init__.py").write_text("")
    (proj / "pkg" / "cli.py").write_text("def main():\n    return 1\n\nmain()\n")
    (proj / "threaded.py").write_text(
        "import threading\n"
        "def work():\n    import pkg.cli\n"
        "t = threading.Thread(target=work)\nt.start()\nt.join()\n")
    (proj / "test_it.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    runs = {}
    for name, args in [("script", ["threaded.py"]), ("module", ["-m", "pkg.cli"]),
                       ("pytest", ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_it.py"])]:
        d = tmp_path / f"run-{name}"
        done = subprocess.run([CT_RECORD, "--shadow-compare", "--quiet", "--trace-dir", str(d), *args],
                              cwd=proj, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        runs[name] = d
    prog = {k: json.loads((d / "shadow" / "summary.json").read_text())["program"]
            for k, d in runs.items()}
    assert prog["script"]["entry"] == {"kind": "script", "target": "threaded.py", "test_runner": None}
    assert prog["script"]["threads"] == 2 and prog["script"]["runpy"] is False
    assert prog["module"]["entry"] == {"kind": "module", "target": "pkg.cli", "test_runner": None}
    assert prog["module"]["runpy"] is True
    assert prog["pytest"]["entry"]["test_runner"] == "pytest"
    data = json.loads(_rollout("report", "--format", "json", *map(str, runs.values()),
                               cwd=tmp_path).stdout)
    assert data["aggregate"]["programs"] == {
        "scripts": 1, "modules": 2, "api": 0, "test_runners": 1, "runpy": 2, "threaded": 1,
        "evidence_only": 0, "unknown": 0}
    table = _rollout("report", *map(str, runs.values()), cwd=tmp_path).stdout
    assert "PROGRAMS COVERED" in table
    assert "scripts 1 · -m 2 · ct_recorder.start() 0 · test runners 1 · runpy 2 · threaded 1" in table
