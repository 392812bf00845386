"""`ct-rollout report --prometheus` against a real Prometheus that scrapes three concurrent
`ct-record --shadow-compare --metrics-addr` runs and a real Pushgateway holding two pushed
runs. The report's totals must equal the sums of the five runs' summary.json files, each run
counted once, also when run directories are given beside --prometheus (docs/metrics.md,
*Run identity*)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shadow_support import (
    LiveRecord,
    dotted_tempdir,
    free_port,
    record,
    wait_until,
    write_tree,
)
from shadow_support.servers import Prometheus, Pushgateway

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

CT_ROLLOUT = os.path.join(os.path.dirname(sys.executable), "ct-rollout")
MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
RULES = MONITORING / "ct-recorder.rules.yml"
DASHBOARD = MONITORING / "ct-recorder-dashboard.json"
LINGER = 6


def program(n_early, n_late, pool=400):
    """Imports `n_early` modules, then one more every 0.2 s until the stop file appears (so
    the counters rise while Prometheus scrapes), then `n_late` more."""
    return {
        "mods/__init__.py": "",
        **{f"mods/m{i}.py": f"def f():\n    return {i}\n" for i in range(n_early + n_late)},
        "pool/__init__.py": "",
        **{f"pool/p{i}.py": f"def g():\n    return {i}\n" for i in range(pool)},
        "main.py": f"""
            import importlib
            import os
            import sys
            import time

            stop_file = sys.argv[1] if len(sys.argv) > 1 else None
            for i in range({n_early}):
                importlib.import_module(f"mods.m{{i}}").f()
            deadline = time.monotonic() + 120
            j = 0
            while stop_file and not os.path.exists(stop_file) and time.monotonic() < deadline:
                if j < {pool}:
                    importlib.import_module(f"pool.p{{j}}").g()
                    j += 1
                time.sleep(0.2)
            for i in range({n_early}, {n_early + n_late}):
                importlib.import_module(f"mods.m{{i}}").f()
            print("done")
            """,
    }


def rollout(*args, cwd):
    return subprocess.run([CT_ROLLOUT, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def fleet():
    with dotted_tempdir() as tmp:
        with Prometheus(tmp / "prometheus", scrape_interval="1s", rule_files=[RULES]) as prom, \
                Pushgateway(tmp / "pushgateway") as pg:
            run_dirs = []
            # Two pushed runs, finished before anything scrapes.
            for i, (early, late) in enumerate([(4, 1), (7, 2)]):
                proj = write_tree(tmp / f"pushed{i}", program(early, late))
                r = record(["--shadow-compare", "--quiet", "--metrics-push", pg.base, "main.py"],
                           cwd=proj, trace_dir=tmp / f"pushed{i}-trace")
                r.check(0)
                run_dirs.append(tmp / f"pushed{i}-trace")
            # Three concurrent scraped runs.
            live = []
            for i, (early, late) in enumerate([(10, 3), (15, 4), (20, 5)]):
                proj = write_tree(tmp / f"scraped{i}", program(early, late))
                stop = tmp / f"stop{i}"
                rec = LiveRecord(["--shadow-compare", "--quiet", "--metrics-addr", "127.0.0.1:0",
                                  "--metrics-linger", LINGER, "main.py", stop],
                                 cwd=proj, trace_dir=tmp / f"scraped{i}-trace")
                live.append((rec, stop))
                run_dirs.append(tmp / f"scraped{i}-trace")
            try:
                hostports = [rec.metrics_url().split("/")[2] for rec, _ in live]
                prom.set_targets(*hostports, pg.base.split("/")[2])
                # Every live run is scraped while it runs ...
                wait_until(lambda: len(prom.query("ct_recorder_run_finished == 0")) >= 3, 90,
                           interval=0.5, what="Prometheus to scrape the three running recorders")
                assert all(rec.proc.poll() is None for rec, _ in live)
                # The dashboard's queries, while the recordings are scraped (and the recording
                # rules have been evaluated over them).
                wait_until(lambda: prom.query("ct:shadow_unexpected_rate_upper95:ratio1d"), 60,
                           interval=0.5, what="the recording rules to have a value")
                dashboard = dashboard_results(prom)
                assert all(rec.proc.poll() is None for rec, _ in live)
                for _, stop in live:
                    stop.write_text("stop")
                # ... and after its end (--metrics-linger), like the two pushed runs.
                wait_until(lambda: len(prom.query("ct_recorder_run_finished == 1")) >= 5, 90,
                           interval=0.5, what="Prometheus to see five finished runs")
                for rec, _ in live:
                    assert rec.wait(timeout=LINGER + 60) == 0, rec.stderr
            finally:
                for rec, _ in live:
                    rec.kill()
            summaries = [json.loads((d / "shadow" / "summary.json").read_text()) for d in run_dirs]
            yield {"tmp": tmp, "prom": prom, "pg": pg, "run_dirs": run_dirs,
                   "summaries": summaries, "dashboard": dashboard}


def dashboard_queries():
    doc = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p["targets"]]


def dashboard_results(prom):
    """`{(panel, expr): (status, result)}` of every dashboard query, through the query API
    (errors kept, not raised, so the test can name the failing query)."""
    import urllib.parse

    from shadow_support import http_request
    out = {}
    for title, expr in dashboard_queries():
        url = prom.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, _, body = http_request(url, timeout=10)
        out[(title, expr)] = (status, json.loads(body))
    return out


def totals(summaries):
    kinds = {}
    for s in summaries:
        for k, c in s["divergences"]["by_kind"].items():
            e, u = kinds.get(k, (0, 0))
            kinds[k] = (e + c["expected"], u + c["unexpected"])
    return {
        "comparisons": sum(s["comparisons"] for s in summaries),
        "divergences": sum(s["divergences"]["total"] for s in summaries),
        "unexpected": sum(s["divergences"]["unexpected"] for s in summaries),
        "filter": sum(s["filter_decision_changes"]["trace_to_skip"]
                      + s["filter_decision_changes"]["skip_to_trace"] for s in summaries),
        "sampled_out": sum(s["skipped"]["sampled_out"] for s in summaries),
        "kinds": kinds,
    }


def report_totals(agg):
    return {
        "comparisons": agg["comparisons"],
        "divergences": agg["divergences"]["total"],
        "unexpected": agg["divergences"]["unexpected"],
        "filter": agg["filter_decision_changes"]["total"],
        "sampled_out": agg["skipped"]["sampled_out"],
        "kinds": {k: (c["expected"], c["unexpected"]) for k, c in agg["divergences"]["by_kind"].items()},
    }


def test_totals_equal_the_sum_of_the_runs_summaries(fleet):
    done = rollout("report", "--prometheus", fleet["prom"].base, "--since", "1h",
                   "--format", "json", cwd=fleet["tmp"])
    assert done.returncode == 0, done.stderr
    agg = json.loads(done.stdout)["aggregate"]
    assert agg["run_count"] == 5
    expected = totals(fleet["summaries"])
    assert expected["comparisons"] > 0 and expected["divergences"] > 0
    assert report_totals(agg) == expected
    # The runs are the recorders' own run ids.
    assert sorted(r["run_id"] for r in agg["runs"]) == sorted(
        s["run"]["run_id"] for s in fleet["summaries"])
    assert agg["prometheus"]["runs"] == 5 and agg["prometheus"]["with_run_dir"] == 0
    # Only counts come from Prometheus, and the report says so.
    assert all(r["log"] == {"state": "from_metrics", "finished": True} for r in agg["runs"])
    assert any("only in its run directory" in n for r in agg["runs"] for n in r["notes"])


def test_run_dirs_beside_prometheus_add_details_without_double_counting(fleet):
    dirs = fleet["run_dirs"][:2] + [fleet["run_dirs"][3]]
    done = rollout("report", "--prometheus", fleet["prom"].base, "--since", "1h",
                   "--format", "json", *dirs, cwd=fleet["tmp"])
    assert done.returncode == 0, done.stderr
    agg = json.loads(done.stdout)["aggregate"]
    assert agg["run_count"] == 5
    assert report_totals(agg) == totals(fleet["summaries"])
    assert agg["prometheus"]["with_run_dir"] == 3
    assert sum(1 for r in agg["runs"] if r["log"]["state"] == "read") == 3
    table = rollout("report", "--prometheus", fleet["prom"].base, "--since", "1h", *dirs,
                    cwd=fleet["tmp"])
    flat = " ".join(table.stdout.split())
    assert "5 runs from Prometheus" in flat and "for 3 of them" in flat, flat


def test_match_narrows_and_no_data_is_status_2(fleet):
    # The pushed runs only: Prometheus sees them through the Pushgateway target.
    pg_target = fleet["pg"].base.split("/")[2]
    done = rollout("report", "--prometheus", fleet["prom"].base, "--since", "1h",
                   "--match", f'{{instance="{pg_target}"}}', "--format", "json", cwd=fleet["tmp"])
    assert done.returncode == 0, done.stderr
    agg = json.loads(done.stdout)["aggregate"]
    assert agg["run_count"] == 2
    assert agg["comparisons"] == totals(fleet["summaries"][:2])["comparisons"]
    none = rollout("report", "--prometheus", fleet["prom"].base, "--since", "1h",
                   "--match", '{job="no-such-job"}', cwd=fleet["tmp"])
    assert none.returncode == 2
    assert none.stderr.startswith("ct-rollout: error: prometheus ")
    assert "no ct-record runs in the last 1h" in none.stderr, none.stderr


def test_unreachable_or_not_prometheus_is_status_2(fleet):
    port = free_port()
    down = rollout("report", "--prometheus", f"http://127.0.0.1:{port}", cwd=fleet["tmp"])
    assert down.returncode == 2
    assert "cannot reach Prometheus" in down.stderr, down.stderr
    # The Pushgateway is an HTTP server, but not Prometheus's query API.
    other = rollout("report", "--prometheus", fleet["pg"].base, cwd=fleet["tmp"])
    assert other.returncode == 2
    assert "not from Prometheus's query API" in other.stderr, other.stderr
    bad = rollout("report", "--prometheus", fleet["prom"].base, "--since", "soon",
                  cwd=fleet["tmp"])
    assert bad.returncode == 2 and "--since" in bad.stderr, bad.stderr
    usage = rollout("report", "--since", "1h", cwd=fleet["tmp"])
    assert usage.returncode == 2  # --since needs --prometheus


def test_every_dashboard_query_runs_and_returns_data(fleet):
    results = fleet["dashboard"]
    assert len(results) == len(dashboard_queries()) >= 10
    for (title, expr), (status, doc) in results.items():
        assert status == 200 and doc["status"] == "success", (title, expr, doc)
        assert doc["data"]["result"], f"{title}: {expr} returned no data while runs were scraped"
    # The numbers are the recordings' own: comparisons were counted, by kind too.
    by_title = {t: d for (t, _), (_, d) in results.items()}
    assert float(by_title["Comparisons (last day)"]["data"]["result"][0]["value"][1]) > 0
