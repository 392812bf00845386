"""A real Prometheus scraping a running `ct-record --shadow-compare --metrics-addr
127.0.0.1:0`, and `promtool check metrics` on what the recorder serves and writes.

The traced program imports and calls modules until the test tells it to stop (a stop file),
so it is still running when Prometheus scrapes it, however long Prometheus takes to start
(its target discovery batches updates every 5 s). After the stop file appears it imports a
few more modules, so the final counters are strictly above what was scraped live; then
`--metrics-linger` keeps `/metrics` up so Prometheus scrapes the final values too.
"""

import subprocess
import time

import pytest

from shadow_support import (
    LiveRecord,
    dotted_tempdir,
    http_request,
    parse_prom,
    require_tool,
    wait_until,
    write_tree,
)
from shadow_support.servers import Prometheus

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

EARLY, LATE = 30, 5
LINGER = 6

PROGRAM = {
    "mods/__init__.py": "",
    **{f"mods/m{i}.py": f"def f():\n    return {i}\n" for i in range(EARLY)},
    "late/__init__.py": "",
    **{f"late/l{i}.py": f"def g():\n    return {i}\n" for i in range(LATE)},
    "main.py": f"""
        import importlib
        import os
        import sys
        import time

        stop_file = sys.argv[1]
        deadline = time.monotonic() + 90
        imported = 0
        while not os.path.exists(stop_file) and time.monotonic() < deadline:
            if imported < {EARLY}:
                importlib.import_module(f"mods.m{{imported}}").f()
                imported += 1
            time.sleep(0.05)
        for j in range({LATE}):
            importlib.import_module(f"late.l{{j}}").g()
        print("done", "stopped" if os.path.exists(stop_file) else "timed out")
        """,
}

# Series compared between Prometheus and metrics.prom (every sample of these names).
COMPARED = [
    "ct_shadow_comparisons_total",
    "ct_shadow_divergences_total",
    "ct_shadow_filter_decision_changes_total",
    "ct_shadow_engine_errors_total",
    "ct_shadow_skipped_total",
    "ct_shadow_budget_exhausted",
    "ct_module_name_resolutions_total",
    "ct_module_name_fallbacks_total",
    "ct_module_name_resolution_seconds_count",
    "ct_trace_events_total",
    "ct_recorder_info",
]


def promtool_check(text):
    promtool = require_tool("promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def scraped(prom, name):
    """`{labels without job/instance: value}` of `name` as Prometheus has it now."""
    out = {}
    for labels, value in prom.query(name):
        labels = {k: v for k, v in labels.items() if k not in ("job", "instance", "__name__")}
        out[tuple(sorted(labels.items()))] = value
    return out


def from_file(samples, name):
    return {k[1]: v for k, v in samples.items() if k[0] == name}


@pytest.fixture(scope="module")
def prometheus_run():
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", PROGRAM)
        stop_file = tmp / "stop"
        prom = Prometheus(tmp / "prometheus", scrape_interval="1s")
        with prom:
            rec = LiveRecord(
                ["--shadow-compare", "--quiet", "--metrics-addr", "127.0.0.1:0",
                 "--metrics-linger", LINGER, "main.py", stop_file],
                cwd=proj, trace_dir=tmp / "trace",
            )
            with rec:
                url = rec.metrics_url()
                hostport = url.split("/")[2]
                prom.set_targets(hostport)

                # A live body, while the program runs.
                status, headers, body = http_request(url, timeout=10)
                assert status == 200
                live_body = body.decode()
                assert rec.proc.poll() is None

                # Prometheus scrapes the running program.
                live = wait_until(
                    lambda: prom.query("ct_shadow_comparisons_total"), 60, interval=0.5,
                    what="Prometheus to scrape ct_shadow_comparisons_total",
                )
                (labels, live_value), = live
                assert rec.proc.poll() is None, "the program ended before the first scrape"
                stop_file.write_text("stop")

                # Run end: metrics.prom is written, then /metrics lingers for LINGER s.
                metrics_prom = tmp / "trace" / "shadow" / "metrics.prom"
                wait_until(metrics_prom.exists, 60, interval=0.05, what="metrics.prom")
                ended = time.time()
                final_text = metrics_prom.read_text()
                final = parse_prom(final_text)

                def caught_up():
                    return all(scraped(prom, n) == from_file(final, n) for n in COMPARED)

                wait_until(caught_up, LINGER + 10, interval=0.5,
                           what="Prometheus to scrape the final values")
                after = {n: scraped(prom, n) for n in COMPARED}
                status_code = rec.wait(timeout=LINGER + 60)
                targets = prom.targets()
            yield {
                "url": url, "live_body": live_body, "headers": headers, "labels": labels,
                "live_value": live_value, "final": final, "final_text": final_text,
                "after": after, "status": status_code, "stdout": rec.stdout, "stderr": rec.stderr,
                "ended": ended, "targets": targets, "hostport": hostport,
            }


def test_prometheus_scrapes_the_running_recorder(prometheus_run):
    r = prometheus_run
    assert r["status"] == 0, r["stderr"]
    assert r["stdout"] == "done stopped\n"
    assert r["labels"]["job"] == "ct-record"
    assert r["labels"]["instance"] == r["hostport"]
    final = r["final"].get_value("ct_shadow_comparisons_total")
    # Scraped while the program was running, before the last imports.
    assert 0 < r["live_value"] < final
    (target,) = [t for t in r["targets"] if t["labels"]["instance"] == r["hostport"]]
    assert target["scrapePool"] == "ct-record"


def test_prometheus_reads_back_the_final_counters(prometheus_run):
    """Through the query API, every series of the compared metrics has the value written
    to metrics.prom at the end of the run."""
    r = prometheus_run
    final = r["final"]
    for name in COMPARED:
        assert r["after"][name] == from_file(final, name), name
    assert r["after"]["ct_shadow_comparisons_total"] == {(): final.get_value("ct_shadow_comparisons_total")}
    # The program's functions diverge (path-shaped legacy filter names): Prometheus saw them.
    assert r["after"]["ct_shadow_divergences_total"][(("kind", "root_ambiguity"), ("severity", "medium"))] >= EARLY + LATE


def test_live_body_is_the_text_format(prometheus_run):
    r = prometheus_run
    assert r["headers"]["Content-Type"] == "text/plain; version=0.0.4"
    live = parse_prom(r["live_body"])
    # Every series of a closed set exists from the start (docs/metrics.md).
    kinds = [l["kind"] for l, _ in live.series("ct_shadow_divergences_total")]
    assert len(kinds) == 14 and len(set(kinds)) == 14
    assert live.get_value("ct_shadow_budget_exhausted") == 0
    assert set(n for n, _ in live) >= set(COMPARED)


def test_promtool_clean_on_live_body(prometheus_run):
    code, out = promtool_check(prometheus_run["live_body"])
    assert (code, out) == (0, "")


def test_promtool_clean_on_metrics_prom(prometheus_run):
    code, out = promtool_check(prometheus_run["final_text"])
    assert (code, out) == (0, "")
