"""Real Prometheus and Pushgateway processes on loopback, for the metrics tests.

Both are started on a port picked by binding to 0, with all their state in a temporary
directory, waited for through `/-/ready`, and always terminated (SIGTERM, then SIGKILL).
"""

import json
import os
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

from . import free_port, http_request, require_tool, wait_until


class _Daemon:
    name = "daemon"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.port = None
        self.log_path = self.workdir / f"{self.name}.log"

    def _command(self, port):
        raise NotImplementedError

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout=60):
        # A port that was free a moment ago; if another process takes it in between, the
        # daemon fails to bind and we try again with another one.
        for _ in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                self._command(self.port), cwd=str(self.workdir), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            log.close()
            try:
                wait_until(self._ready, ready_timeout, interval=0.1, what=f"{self.name} /-/ready")
                return self
            except AssertionError:
                if self.proc.poll() is None:
                    self.stop()
                    raise AssertionError(f"{self.name} not ready:\n{self.log()}")
                self.stop()
        raise AssertionError(f"{self.name} could not start:\n{self.log()}")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
        status, _, _ = http_request(self.base + "/-/ready", timeout=2)
        return status == 200

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Prometheus(_Daemon):
    """A Prometheus server scraping the targets listed in a file (file_sd), so targets can
    be added once their port is known."""

    name = "prometheus"

    def __init__(self, workdir, scrape_interval="1s", rule_files=()):
        super().__init__(workdir)
        self.binary = require_tool("prometheus")
        self.targets_file = self.workdir / "targets.json"
        self.targets_file.write_text("[]")
        self.config = self.workdir / "prometheus.yml"
        # JSON is YAML: no YAML library needed.
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                       "scrape_timeout": scrape_interval},
            "scrape_configs": [{
                "job_name": "ct-record",
                "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
            }],
            "rule_files": [str(f) for f in rule_files],
        }, indent=2))

    def _command(self, port):
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]

    def set_targets(self, *hostports):
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": list(hostports)}]))
        os.replace(tmp, self.targets_file)

    def query(self, promql):
        """The instant vector of `promql`: `[(labels, float value)]`."""
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, _, body = http_request(url, timeout=10)
        assert status == 200, (status, body[:500])
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def targets(self):
        status, _, body = http_request(self.base + "/api/v1/targets", timeout=10)
        assert status == 200
        return json.loads(body)["data"]["activeTargets"]


class Pushgateway(_Daemon):
    name = "pushgateway"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.binary = require_tool("prometheus-pushgateway")

    def _command(self, port):
        return [
            self.binary,
            f"--web.listen-address=127.0.0.1:{port}",
            # Keep nothing on disk beyond the test's directory.
            f"--persistence.file={self.workdir / 'pushgateway.data'}",
            "--log.level=warn",
        ]

    def metrics_text(self):
        status, _, body = http_request(self.base + "/metrics", timeout=10)
        assert status == 200
        return body.decode()

    def delete_group(self, job, **labels):
        path = "/metrics/job/" + urllib.parse.quote(job, safe="")
        for k, v in labels.items():
            path += f"/{k}/" + urllib.parse.quote(v, safe="")
        status, _, body = http_request(self.base + path, method="DELETE", timeout=10)
        return status
