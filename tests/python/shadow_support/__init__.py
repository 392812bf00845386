"""Helpers for the shadow-mode and metrics acceptance tests (tests/python/test_shadow_*.py,
tests/python/test_metrics_*.py).

Everything here drives the real `ct-record` console script of the virtualenv the tests run
in, as a separate process, on small projects written to temporary directories. Nothing is
imported from the recorder except `ct_recorder.trace_reader` (to read traces back).
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent

# Environment variables that change what ct-record does; tests start from none of them.
_RECORDER_ENV_PREFIXES = ("CODETRACER_", "CT_RECORDER_")


def ct_record_path():
    path = shutil.which("ct-record", path=str(VENV_BIN))
    if path is None:
        pytest.fail(f"ct-record is not installed next to {sys.executable}; run `make build`")
    return path


def require_tool(name):
    """The path of a system tool the tests need. Missing tools fail the test (never skip):
    `scripts/install-system-deps.sh` (run by `make setup`) installs them."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed; run scripts/install-system-deps.sh "
            "(Debian packages prometheus, prometheus-pushgateway)"
        )
    return path


def clean_env(extra=None):
    """The test process's environment without recorder settings and without PYTHONPATH,
    plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_RECORDER_ENV_PREFIXES) and k not in ("PYTHONPATH", "PYTHONSTARTUP")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


# --- temporary projects ---------------------------------------------------------------

_SEGMENT = re.compile(r"^[A-Za-z0-9_]+$")


def is_dotted_path(path):
    """Whether every segment of an absolute path is a valid dotted-name segment, so that
    the legacy filter pipeline (spec F4.2/F4.3) gives it a path-shaped module name."""
    parts = [p for p in str(path).split("/") if p]
    return all(_SEGMENT.match(p) for p in parts)


@contextlib.contextmanager
def dotted_tempdir(prefix="ctshadow_"):
    """A fresh temporary directory whose absolute path contains only `[A-Za-z0-9_]`
    segments (pytest's tmp_path has `pytest-of-USER`, whose `-` would change legacy
    names). Removed afterwards."""
    base = tempfile.gettempdir()
    if not is_dotted_path(os.path.realpath(base)):
        base = "/tmp"
    path = os.path.realpath(tempfile.mkdtemp(prefix=prefix, dir=base))
    assert is_dotted_path(path), path
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_tree(root, files):
    """Writes `{relative path: source}` under `root` (sources are dedented)."""
    root = Path(root)
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def dotted(path):
    """`/tmp/x/app/mod.py` -> `tmp.x.app.mod` (the legacy pipeline's path-shaped name)."""
    s = str(path)
    if s.endswith(".py"):
        s = s[:-3]
    return ".".join(p for p in s.split("/") if p)


# --- running ct-record ------------------------------------------------------------------


@dataclass
class Run:
    args: list
    returncode: int
    stdout: str
    stderr: str
    trace_dir: Path
    elapsed: float

    def check(self, status=0):
        assert self.returncode == status, (
            f"ct-record exited {self.returncode}, expected {status}\n"
            f"args: {self.args}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )
        return self

    @property
    def artifacts(self):
        return Artifacts(self.trace_dir)


def record(args, cwd, trace_dir, env=None, timeout=120, trace=True):
    """Runs `ct-record --trace-dir TRACE_DIR ARGS...` in `cwd` and waits for it."""
    cmd = [ct_record_path()]
    if trace:
        cmd += ["--trace-dir", str(trace_dir)]
    cmd += [str(a) for a in args]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=str(cwd), env=clean_env(env), capture_output=True, text=True, timeout=timeout
    )
    return Run(cmd, proc.returncode, proc.stdout, proc.stderr, Path(trace_dir),
               time.monotonic() - started)


class Artifacts:
    """The shadow artifacts of one run directory."""

    def __init__(self, trace_dir):
        self.trace_dir = Path(trace_dir)
        self.dir = self.trace_dir / "shadow"

    @property
    def divergences(self):
        path = self.dir / "divergences.ndjson"
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def summary(self):
        return json.loads((self.dir / "summary.json").read_text(encoding="utf-8"))

    @property
    def roots(self):
        return json.loads((self.dir / "roots.json").read_text(encoding="utf-8"))

    @property
    def metrics_text(self):
        return (self.dir / "metrics.prom").read_text(encoding="utf-8")

    @property
    def metrics(self):
        return parse_prom(self.metrics_text)


def side(record_, engine):
    """The `primary` or `shadow` part of a divergence record that belongs to `engine`."""
    for role in ("primary", "shadow"):
        if record_[role]["engine"] == engine:
            return record_[role]
    raise AssertionError(f"no {engine} side in {record_}")


def pick(records, **where):
    """The records whose fields equal `where` (`filename`, `qualname`, ...)."""
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def one(records, **where):
    found = pick(records, **where)
    assert len(found) == 1, f"expected one record with {where}, found {len(found)}: {found}"
    return found[0]


# --- Prometheus text format -------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Samples(dict):
    """`{(metric name, ((label, value), ...sorted)): float}` with a few look-ups."""

    def get_value(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in self:
            raise AssertionError(f"no sample {name}{labels}; have: {sorted(k for k in self if k[0] == name)}")
        return self[key]

    def series(self, name):
        """`[(labels dict, value)]` of every sample named `name`."""
        return [(dict(k[1]), v) for k, v in self.items() if k[0] == name]

    def total(self, name, **labels):
        """Sum over every sample of `name` whose labels include `labels`."""
        return sum(v for l, v in self.series(name) if all(l.get(k) == x for k, x in labels.items()))


def parse_prom(text):
    samples = Samples()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, _, label_text, value = m.group(1), m.group(2), m.group(3), m.group(4)
        labels = []
        if label_text:
            pos = 0
            while pos < len(label_text):
                lm = _LABEL.match(label_text, pos)
                assert lm, f"bad labels in {line!r}"
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        samples[(name, tuple(sorted(labels)))] = float(value)
    return samples


# --- sampling (docs/divergences.md "Sampling and budget") --------------------------------


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def sampled(filename, rate):
    """Whether `--shadow-sample RATE` compares code from `filename`, computed independently
    from the documented rule: top 53 bits of FNV-1a 64 of the UTF-8 name, below RATE."""
    if rate >= 1.0:
        return True
    return (fnv1a64(filename.encode("utf-8")) >> 11) < int(rate * (1 << 53))


# --- traces -------------------------------------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def normalise_events(events):
    """Trace events with only what legitimately differs between two runs of the same
    deterministic program made comparable:

    - object addresses inside reprs (`<Box object at 0x7f...>`): ASLR and the allocator
      put objects elsewhere on every run, and whether a freed object's address is reused
      by the next one depends on every allocation in the process, the recorder's own
      included (a run with a shadow engine allocates differently, and object identity as
      seen through addresses changed between such runs). So every address becomes `0xADDR`: not even "same address, same object" holds from
      one run to the next;
    - thread ids (`ThreadStart` / `ThreadSwitch`): ids are assigned by the interpreter or the
      OS, not by the program; they are renumbered in order of first appearance, so which
      events belong to which thread is still checked.

    Everything else (event order, kinds, paths, function names, lines, values, types,
    variable ids) must be identical.
    """
    threads = {}

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str):
            return _ADDRESS.sub("0xADDR", x)
        return x

    out = []
    for ev in events:
        (kind, body), = ev.items()
        if kind in ("ThreadStart", "ThreadSwitch", "ThreadExit") and isinstance(body, int):
            out.append({kind: threads.setdefault(body, len(threads))})
        else:
            out.append({kind: walk(body)})
    return out


def function_names(events):
    return [ev["Function"]["name"] for ev in events if "Function" in ev]


# --- network --------------------------------------------------------------------------------


def free_port():
    """A loopback port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(url, method="GET", timeout=10.0, data=None):
    """`(status, headers dict, body bytes)`; HTTP errors are answers, not exceptions."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    """Polls `predicate` until it returns a true value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")


_SERVING = re.compile(r"ct-record: serving metrics on (http://[0-9.:]+/metrics)")


class LiveRecord:
    """`ct-record` running in the background; stderr is collected by a thread so the
    `/metrics` URL it prints can be awaited while the program runs."""

    def __init__(self, args, cwd, trace_dir, env=None):
        self.cmd = [ct_record_path(), "--trace-dir", str(trace_dir)] + [str(a) for a in args]
        self.trace_dir = Path(trace_dir)
        self.proc = subprocess.Popen(
            self.cmd, cwd=str(cwd), env=clean_env(env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self._err, self._out = [], []
        self._err_thread = threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True)
        self._out_thread = threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True)
        self._err_thread.start()
        self._out_thread.start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line)

    @property
    def stderr(self):
        return "".join(self._err)

    @property
    def stdout(self):
        return "".join(self._out)

    def metrics_url(self, timeout=60):
        def found():
            m = _SERVING.search(self.stderr)
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                raise AssertionError(f"ct-record ended ({self.proc.returncode}) before serving:\n{self.stderr}")
            return None

        return wait_until(found, timeout, interval=0.02, what="ct-record to print its metrics URL")

    def wait(self, timeout=120):
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self._err_thread.join(5)
            self._out_thread.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
