"""The monitoring shipped in docs/monitoring/: the rules load in Prometheus's own checker and
pass their unit tests (`promtool check rules`, `promtool test rules`); the dashboard is valid
JSON whose every query is run against a real Prometheus in test_rollout_prometheus.py."""

import json
import subprocess
from pathlib import Path

from shadow_support import require_tool

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"


def promtool(*args):
    return subprocess.run([require_tool("promtool"), *args], cwd=MONITORING, capture_output=True,
                          text=True, timeout=120)


def test_rules_pass_promtool_check():
    done = promtool("check", "rules", "ct-recorder.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_pass_their_unit_tests():
    tests = sorted(p.name for p in MONITORING.glob("*.test.yml"))
    assert tests, "no promtool unit tests in docs/monitoring"
    done = promtool("test", "rules", *tests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test():
    import re
    rules = (MONITORING / "ct-recorder.rules.yml").read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)", rules, re.M))
    tested = set()
    for t in MONITORING.glob("*.test.yml"):
        tested |= set(re.findall(r"alertname: (\w+)", t.read_text()))
    assert len(alerts) >= 7
    assert alerts <= tested, alerts - tested


def test_dashboard_is_grafana_json_with_queries():
    doc = json.loads((MONITORING / "ct-recorder-dashboard.json").read_text())
    assert doc["uid"] and doc["panels"]
    for p in doc["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
