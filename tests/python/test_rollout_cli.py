"""`ct-rollout report` as a user runs it: over real shadow runs of ct-record, with real exit
codes (0 report, 1 failing gates with --check, 2 bad input)."""

import json
import os
import subprocess
import sys

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
