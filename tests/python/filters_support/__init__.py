"""Helpers for the trace-filter acceptance tests (``tests/python/test_filters_*.py``).

* :func:`record` runs ``ct-record`` on a real program in a clean environment (no
  ``CODETRACER_*`` variable leaks in from the caller) and returns a :class:`Run`;
* :class:`Trace` reads the events back with ``ct_recorder.trace_reader.load_events`` and
  pairs every ``Call`` with its ``Function`` and its ``Return``;
* :func:`filter_toml` / :func:`write_filter` write filter files from a compact description,
  so each test shows the rules it relies on;
* :func:`write_files` lays out a small project from a ``{relative path: source}`` mapping.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ct_recorder.trace_reader import load_events, load_metadata

REPO = Path(__file__).resolve().parents[3]
BUILTIN_TOML = REPO / "src" / "filters" / "builtin.toml"


def ct_record_command() -> list[str]:
    """The installed ``ct-record`` console script next to the interpreter running pytest."""
    script = Path(sys.executable).with_name("ct-record")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ct_recorder"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODETRACER_")}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


# --- files ---------------------------------------------------------------------------------


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: source}`` below ``root`` (sources are dedented)."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _q(s: str) -> str:
    """A TOML literal string (no escapes), or a basic string when it contains a quote."""
    if "'" not in s and "\n" not in s:
        return f"'{s}'"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_toml(
    name: str,
    rules: list[dict] = (),
    *,
    default_exec: str = "inherit",
    default_value: str = "inherit",
) -> str:
    """A filter file. Each rule: ``selector``, optional ``exec``, ``value_default``,
    ``reason`` and ``patterns`` (a list of ``(selector, action)``)."""
    out = [
        "[meta]",
        f"name = {_q(name)}",
        "version = 1",
        "",
        "[scope]",
        f"default_exec = {_q(default_exec)}",
        f"default_value_action = {_q(default_value)}",
    ]
    for rule in rules:
        out += ["", "[[scope.rules]]", f"selector = {_q(rule['selector'])}"]
        for key in ("exec", "value_default", "reason"):
            if key in rule:
                out.append(f"{key} = {_q(rule[key])}")
        for sel, action in rule.get("patterns", ()):
            out += ["", "[[scope.rules.value_patterns]]", f"selector = {_q(sel)}",
                    f"action = {_q(action)}"]
    return "\n".join(out) + "\n"


def write_filter(path: Path, name: str, rules: list[dict] = (), **defaults) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(filter_toml(name, rules, **defaults), encoding="utf-8")
    return path


def project_filter(project: Path, name: str, rules: list[dict] = (), **defaults) -> Path:
    """``PROJECT/.codetracer/trace-filter.toml``."""
    return write_filter(project / ".codetracer" / "trace-filter.toml", name, rules, **defaults)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- running -------------------------------------------------------------------------------

ENGINE_FLAGS = {
    "legacy": "--no-module-name-from-globals",
    "globals": "--module-name-from-globals",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    trace_dir: Path

    @property
    def trace(self) -> "Trace":
        assert self.returncode == 0, f"ct-record failed ({self.returncode}):\n{self.stderr}"
        return Trace.load(self.trace_dir)

    @property
    def metadata(self) -> dict:
        return load_metadata(self.trace_dir)


def record(
    script: str | Path | None,
    *options: str,
    trace_dir: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    module: str | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 60,
) -> Run:
    """``ct-record --trace-dir TRACE_DIR --quiet OPTIONS (SCRIPT | -m MODULE) ARGS``."""
    cmd = ct_record_command() + ["--trace-dir", str(trace_dir), "--quiet", *options]
    if module is not None:
        cmd += ["-m", module]
    elif script is not None:
        cmd.append(str(script))
    cmd += list(args)
    proc = subprocess.run(
        cmd,
        cwd=str(cwd) if cwd else None,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, Path(trace_dir))


def ct_record(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Any ``ct-record`` command line (for ``--explain-filter``)."""
    return subprocess.run(
        ct_record_command() + list(argv),
        cwd=str(cwd) if cwd else None,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- reading -------------------------------------------------------------------------------


def plain(value: dict):
    """A recorded ``ValueRecord`` as plain Python where the kind is simple."""
    kind = value.get("kind")
    if kind == "Int":
        return value["i"]
    if kind == "Float":
        return value["f"]
    if kind == "Bool":
        return value["b"]
    if kind == "String":
        return value["text"]
    if kind == "None":
        return None
    if kind == "Raw":
        return ("Raw", value["r"])
    return value


REDACTED = ("Raw", "<redacted>")
DROPPED = ("Raw", "<dropped>")


@dataclass
class Call:
    name: str
    path: str
    line: int
    args: dict  # variable name -> recorded ValueRecord, in recorded order
    ret: dict | None = None
    returned: bool = False
    thread: int = 0

    def arg(self, name):
        return plain(self.args[name])

    @property
    def arg_names(self) -> list[str]:
        return list(self.args)

    @property
    def return_value(self):
        assert self.returned, f"{self.name}: no Return event"
        return plain(self.ret)


@dataclass
class Trace:
    events: list
    paths: list = field(default_factory=list)
    functions: list = field(default_factory=list)  # dicts: name, path, line
    calls: list = field(default_factory=list)
    steps: list = field(default_factory=list)  # (path, line)

    @classmethod
    def load(cls, trace_dir: Path) -> "Trace":
        t = cls(load_events(trace_dir))
        variables: list[str] = []
        stacks: dict[int, list[Call]] = {}  # per thread (ThreadStart / ThreadSwitch)
        thread = 0
        for ev in t.events:
            (kind, body), = ev.items()
            stack = stacks.setdefault(thread, [])
            if kind in ("ThreadStart", "ThreadSwitch"):
                thread = body
            elif kind == "Path":
                t.paths.append(body)
            elif kind == "VariableName":
                variables.append(body)
            elif kind == "Function":
                t.functions.append(
                    {"name": body["name"], "path": t.paths[body["path_id"]], "line": body["line"]}
                )
            elif kind == "Call":
                fn = t.functions[body["function_id"]]
                args = {variables[a["variable_id"]]: a["value"] for a in body["args"]}
                call = Call(fn["name"], fn["path"], fn["line"], args, thread=thread)
                t.calls.append(call)
                stack.append(call)
            elif kind == "Return":
                if stack:
                    call = stack.pop()
                    call.ret = body["return_value"]
                    call.returned = True
            elif kind == "Step":
                t.steps.append((t.paths[body["path_id"]], body["line"]))
        return t

    def function_names(self) -> set[str]:
        return {f["name"] for f in self.functions}

    def called_names(self) -> set[str]:
        return {c.name for c in self.calls}

    def calls_of(self, name: str, path_endswith: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.name == name and (path_endswith is None or c.path.endswith(path_endswith))
        ]

    def only_call(self, name: str, path_endswith: str | None = None) -> Call:
        found = self.calls_of(name, path_endswith)
        assert len(found) == 1, f"expected one call of {name}, got {len(found)}: {self.called_names()}"
        return found[0]

    def stepped_paths(self) -> set[str]:
        return {p for p, _ in self.steps}

    def has_function(self, name: str, path_endswith: str | None = None) -> bool:
        return any(
            f["name"] == name and (path_endswith is None or f["path"].endswith(path_endswith))
            for f in self.functions
        )
