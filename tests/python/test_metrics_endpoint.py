"""`/metrics` under abuse while the traced program runs (docs/metrics.md, "`/metrics`
endpoint"): wrong paths and methods, malformed and oversized requests, slow clients
holding half a request, a hundred concurrent scrapers. Every exchange is bounded in count
and time; the server must keep answering and the program must finish normally.
"""

import concurrent.futures
import socket
import threading
import time

import pytest

from shadow_support import (
    LiveRecord,
    dotted_tempdir,
    http_request,
    parse_prom,
    wait_until,
    write_tree,
)

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

PROGRAM = {
    "work/__init__.py": "",
    **{f"work/w{i}.py": f"def step(x):\n    return x + {i}\n" for i in range(20)},
    "main.py": """
        import importlib
        import os
        import sys
        import time

        # Keeps running (and recording) until the test drops the stop file.
        stop_file = sys.argv[1]
        deadline = time.monotonic() + 120
        total, i = 0, 0
        while not os.path.exists(stop_file) and time.monotonic() < deadline:
            total = importlib.import_module(f"work.w{i % 20}").step(total)
            i += 1
            time.sleep(0.01)
        print("finished", "stopped" if os.path.exists(stop_file) else "timed out")
        """,
}

REQUEST_TIMEOUT = 5.0  # the server's whole-request deadline (docs/metrics.md)


@pytest.fixture(scope="module")
def server():
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", PROGRAM)
        stop_file = tmp / "stop"
        rec = LiveRecord(["--shadow-compare", "--quiet", "--metrics-addr", "127.0.0.1:0",
                          "main.py", stop_file], cwd=proj, trace_dir=tmp / "trace")
        with rec:
            url = rec.metrics_url()
            host, port = url.split("/")[2].split(":")
            yield {"url": url, "addr": (host, int(port)), "rec": rec, "tmp": tmp}
            stop_file.write_text("stop")
            rec.wait(timeout=60)


def raw_exchange(addr, payload, timeout=15.0, hold=None):
    """Sends `payload` (bytes, or a list of (bytes, pause) chunks), then reads until the
    server closes. Returns (status or None, raw response bytes, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(addr, timeout=timeout) as s:
        s.settimeout(timeout)
        chunks = payload if isinstance(payload, list) else [(payload, 0)]
        try:
            for data, pause in chunks:
                s.sendall(data)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        data = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    status = None
    if data.startswith(b"HTTP/1."):
        status = int(data.split(b" ", 2)[1])
    return status, data, elapsed


def assert_scrape_ok(url, within=5.0):
    started = time.monotonic()
    status, headers, body = http_request(url, timeout=within + 5)
    took = time.monotonic() - started
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    samples = parse_prom(body.decode())
    assert samples.get_value("ct_shadow_comparisons_total") >= 0
    assert took < within, f"scrape took {took:.2f}s"
    return samples


def test_get_and_head(server):
    url = server["url"]
    assert_scrape_ok(url)
    assert_scrape_ok(url + "?name[]=ct_shadow_comparisons_total")
    status, headers, body = http_request(url, method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Type"] == "text/plain; version=0.0.4"


def test_absolute_form_targets_are_served(server):
    # HTTP/1.1 servers must accept the absolute form, which proxies send.
    host, port = server["addr"]
    request = f"GET http://{host}:{port}/metrics HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    status, data, _ = raw_exchange(server["addr"], request)
    assert status == 200
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    assert parse_prom(body).get_value("ct_shadow_comparisons_total") >= 0
    elsewhere = f"GET http://{host}:{port}/other HTTP/1.1\r\n\r\n".encode()
    assert raw_exchange(server["addr"], elsewhere)[0] == 404


@pytest.mark.parametrize("path", ["/", "/metric", "/metrics/", "/metricsx", "/-/ready", "/api/v1/query"])
def test_wrong_paths_are_404(server, path):
    base = server["url"].rsplit("/", 1)[0]
    status, _, _ = http_request(base + path)
    assert status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_wrong_methods_are_405(server, method):
    status, headers, _ = http_request(server["url"], method=method, data=b"x" if method in ("POST", "PUT", "PATCH") else None)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics FTP/1.0\r\n\r\n", 400),
        (b"\x00\xff\xfe\x16\x03\x01\x02\x00\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "no-target", "no-version", "not-http", "binary", "head-over-8k"],
)
def test_malformed_requests(server, payload, expected):
    status, _, elapsed = raw_exchange(server["addr"], payload)
    assert status == expected
    assert elapsed < REQUEST_TIMEOUT
    assert_scrape_ok(server["url"])


def test_slow_clients_time_out_and_do_not_block_scrapers(server):
    """A client that sends half a request and waits, and one that trickles a byte every
    half second, each get 408 at the server's whole-request deadline. Meanwhile scrapes are
    answered at once."""
    addr, url = server["addr"], server["url"]
    half = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"  # no blank line: never complete
    trickle = [(bytes([c]), 0.5) for c in b"GET /metrics HTTP/1.1\r\nHost: trickling-forever\r\n"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(raw_exchange, addr, half, 20), pool.submit(raw_exchange, addr, trickle, 40)]
        time.sleep(0.5)
        for _ in range(10):
            assert_scrape_ok(url, within=1.0)
            time.sleep(0.1)
        results = [f.result(timeout=60) for f in slow]
    for status, _, elapsed in results:
        assert status == 408
        # The deadline is for the whole request, not per read: the trickler, who never
        # goes silent, is cut off at about the same time.
        assert REQUEST_TIMEOUT - 0.5 <= elapsed <= REQUEST_TIMEOUT + 5, elapsed


def _unanswered(sock):
    """The server has neither answered nor closed `sock` (a read would block)."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
    return False


def test_two_hundred_idle_and_trickling_connections_do_not_starve_scrapes(server):
    """Issue #13 D7: 200 idle and 200 trickling connections are open on the recording's
    /metrics while it is scraped. Every scrape is answered while all 400 are still open and
    unanswered, so no scrape waited for one of them (their deadline is 5 s away)."""
    addr, url = server["addr"], server["url"]
    idle = [socket.create_connection(addr, timeout=10) for _ in range(200)]
    trickling = [socket.create_connection(addr, timeout=10) for _ in range(200)]
    try:
        for s in trickling:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        for _ in range(5):
            for s in trickling:
                s.sendall(b"y")
            status, _, body = http_request(url, timeout=REQUEST_TIMEOUT - 1)
            assert status == 200 and b"ct_recorder_info{" in body
        assert all(_unanswered(s) for s in idle + trickling)
    finally:
        for s in idle + trickling:
            s.close()
    assert_scrape_ok(url, within=1.0)


def test_a_hundred_concurrent_scrapers(server):
    url = server["url"]
    barrier = threading.Barrier(100, timeout=30)

    def scrape():
        barrier.wait()
        status, headers, body = http_request(url, timeout=30)
        return status, body

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(scrape) for _ in range(100)]]
    assert [s for s, _ in results] == [200] * 100
    values = [parse_prom(b.decode()).get_value("ct_shadow_comparisons_total") for _, b in results]
    assert min(values) >= 0
    assert_scrape_ok(url, within=1.0)


def test_counters_keep_moving_and_program_finishes(server):
    """After all of the above the program is still running and recording, and it ends
    normally when told to."""
    rec, url, tmp = server["rec"], server["url"], server["tmp"]
    first = assert_scrape_ok(url).get_value("ct_trace_events_total", event="call")
    assert rec.proc.poll() is None
    # The trace events counter is synced as the run goes; the comparisons were done at the
    # first sight of each code object. Both are visible live.
    assert assert_scrape_ok(url).get_value("ct_shadow_comparisons_total") > 0
    (tmp / "stop").write_text("stop")
    assert rec.wait(timeout=60) == 0
    assert rec.stdout == "finished stopped\n"
    assert rec.stderr.startswith("ct-record: serving metrics on http://127.0.0.1:")
    assert rec.stderr.count("\n") == 1
    final = parse_prom((tmp / "trace" / "shadow" / "metrics.prom").read_text())
    assert final.get_value("ct_trace_events_total", event="call") >= first
    assert final.get_value("ct_shadow_comparisons_total") > 0
