"""`--metrics-push` to a real Pushgateway, an unreachable one, and `--metrics-addr` on a
busy port (docs/metrics.md)."""

import socket

import pytest

from shadow_support import dotted_tempdir, parse_prom, record, wait_until, write_tree
from shadow_support.servers import Pushgateway

PROGRAM = {
    "lib/__init__.py": "",
    "lib/work.py": """
        def work(n):
            return sum(range(n))
        """,
    "main.py": """
        import os
        import sys

        from lib import work

        # Proof that the program ran (or did not).
        open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran.marker"), "w").close()
        print("work", work.work(10))
        print("to stderr", file=sys.stderr)
        sys.exit(3)
        """,
}
STDOUT, STDERR = "work 45\n", "to stderr\n"


@pytest.fixture()
def project():
    with dotted_tempdir() as tmp:
        yield tmp, write_tree(tmp / "proj", PROGRAM)


def canonical(samples):
    """Samples with `le` bucket bounds as numbers (the Pushgateway re-renders `0.000001`
    as `1e-06`; both are the same bound)."""
    out = {}
    for (name, labels), value in samples.items():
        labels = tuple((k, float(v) if k == "le" else v) for k, v in labels)
        out[(name, labels)] = value
    return out


def pushed_series(text, run_id):
    """The samples of the group (job="ct-record", run_id=...) on the Pushgateway's
    /metrics, without the grouping labels: `{(name, labels): value}`."""
    out = {}
    for (name, labels), value in parse_prom(text).items():
        d = dict(labels)
        if d.get("job") != "ct-record" or d.get("run_id") != run_id:
            continue
        if name in ("push_time_seconds", "push_failure_time_seconds"):
            continue
        rest = tuple((k, v) for k, v in labels if k not in ("job", "run_id", "instance"))
        out[(name, rest)] = value
    return canonical(out)


@pytest.mark.legacy_engine
def test_push_to_a_real_pushgateway(project):
    tmp, proj = project
    with Pushgateway(tmp / "pg") as pg:
        run = record(["--shadow-compare", "--quiet", "--metrics-push", pg.base, "main.py"],
                     cwd=proj, trace_dir=tmp / "trace")
        assert (run.returncode, run.stdout, run.stderr) == (3, STDOUT, STDERR)
        a = run.artifacts
        run_id = a.summary["run"]["run_id"]
        final = a.metrics
        text = pg.metrics_text()
        pushed = pushed_series(text, run_id)
        # Everything the run wrote to metrics.prom is in the group, with the same values.
        assert pushed == canonical(final), sorted(set(pushed) ^ set(canonical(final)))[:10]
        assert final.get_value("ct_shadow_comparisons_total") > 0
        assert pushed[("ct_shadow_comparisons_total", ())] == final.get_value("ct_shadow_comparisons_total")
        # The Pushgateway recorded a successful push for the group.
        samples = parse_prom(text)
        ok = [v for (n, l), v in samples.items()
              if n == "push_time_seconds" and dict(l).get("run_id") == run_id]
        failed = [v for (n, l), v in samples.items()
                  if n == "push_failure_time_seconds" and dict(l).get("run_id") == run_id]
        assert ok and ok[0] > 0
        assert failed == [0.0]

        # The consumer deletes the group; it is gone. The Pushgateway queues a deletion
        # (202 Accepted) and applies it a moment later, so look until it is applied.
        assert pg.delete_group("ct-record", run_id=run_id) == 202
        wait_until(lambda: pushed_series(pg.metrics_text(), run_id) == {}, 10, interval=0.05,
                   what="the deleted group to leave the Pushgateway")


@pytest.mark.legacy_engine
def test_unreachable_pushgateway_is_a_warning(project):
    tmp, proj = project
    # A port nobody listens on, kept bound (not listening) so no one can take it meanwhile:
    # connecting to it is refused at once.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        run = record(["--shadow-compare", "--quiet", "--metrics-push", url, "main.py"],
                     cwd=proj, trace_dir=tmp / "trace", timeout=60)
    assert run.returncode == 3
    assert run.stdout == STDOUT
    assert run.stderr.startswith(STDERR)
    warning = run.stderr[len(STDERR):]
    assert warning.startswith("ct-record: warning: --metrics-push "), warning
    assert url in warning and "unreachable" in warning
    assert warning.count("\n") == 1
    # The run itself is complete: trace and shadow artifacts.
    assert (tmp / "trace" / "trace.ctc").exists()
    assert run.artifacts.summary["run"]["exit_code"] == 3


@pytest.mark.legacy_engine
def test_busy_metrics_port_fails_before_the_program_starts(project):
    tmp, proj = project
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = record(["--shadow-compare", "--metrics-addr", f"127.0.0.1:{port}", "main.py"],
                     cwd=proj, trace_dir=tmp / "trace", timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("ct-record: error: --metrics-addr"), run.stderr
    assert f"127.0.0.1:{port}" in run.stderr
    assert run.stderr.count("\n") == 1
    # The program never ran and nothing was written.
    assert not (proj / "ran.marker").exists()
    assert not (tmp / "trace").exists()


@pytest.mark.legacy_engine
def test_busy_metrics_port_with_continue_runs_the_program(project):
    tmp, proj = project
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = record(["--shadow-compare", "--quiet", "--metrics-on-error", "continue",
                      "--metrics-addr", f"127.0.0.1:{port}", "main.py"],
                     cwd=proj, trace_dir=tmp / "trace", timeout=60)
    assert run.returncode == 3
    assert run.stdout == STDOUT
    first, rest = run.stderr.split("\n", 1)
    assert first.startswith("ct-record: warning: --metrics-addr"), run.stderr
    assert f"127.0.0.1:{port}" in first and "carrying on without /metrics" in first
    assert rest == STDERR
    assert (proj / "ran.marker").exists()
    assert run.artifacts.summary["comparisons"] > 0


@pytest.mark.legacy_engine
def test_push_rejected_by_the_pushgateway_is_a_warning(project):
    """Another job already pushed `ct_shadow_comparisons_total` as a gauge: the real
    Pushgateway refuses our counter with 400. The recorder reports the URL, the status and
    the gateway's message; the program's status and output are unchanged."""
    tmp, proj = project
    with Pushgateway(tmp / "pg") as pg:
        from shadow_support import http_request

        status, _, _ = http_request(
            pg.base + "/metrics/job/other", method="PUT",
            data=b"# TYPE ct_shadow_comparisons_total gauge\nct_shadow_comparisons_total 5\n")
        assert status == 200
        run = record(["--shadow-compare", "--quiet", "--metrics-push", pg.base, "main.py"],
                     cwd=proj, trace_dir=tmp / "trace", timeout=60)
        assert run.returncode == 3
        assert run.stdout == STDOUT
        assert run.stderr.startswith(STDERR)
        warning = run.stderr[len(STDERR):]
        assert warning.startswith(f"ct-record: warning: --metrics-push {pg.base}"), warning
        assert "400" in warning and "inconsistent with existing metrics" in warning
        run_id = run.artifacts.summary["run"]["run_id"]
        assert run_id in warning
        assert pushed_series(pg.metrics_text(), run_id) == {}
        assert pg.delete_group("other") == 202


@pytest.mark.parametrize("url, reason", [
    ("https://127.0.0.1:9091", "https is not supported"),
    ("http://user:secret@127.0.0.1:9091", "credentials"),
])
def test_unusable_push_url_fails_before_the_program_starts(project, url, reason):
    """A --metrics-push URL that can never work is refused up front (status 2), like a bad
    --metrics-addr, instead of being found out after the program has run."""
    tmp, proj = project
    run = record(["--metrics-push", url, "main.py"], cwd=proj, trace_dir=tmp / "trace", timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith("ct-record: error: --metrics-push"), run.stderr
    assert reason in run.stderr
    assert not (proj / "ran.marker").exists()
    assert not (tmp / "trace").exists()
