"""Helpers for the module-naming acceptance tests (tests/python/test_naming_*.py).

Fixture projects are written into pytest's ``tmp_path`` (under /tmp, outside every Python
install path, so the builtin trace filter records them) and run in a fresh process, either
under ``ct-record`` or under plain ``python`` for comparison. The environment is scrubbed of
every variable that could change the policy, the filters or ``sys.path``, so each test
sets exactly what it means to test.
"""

import dataclasses
import os
import subprocess
import sys
import textwrap

from ct_recorder.trace_reader import load_events, load_metadata

PYTHON = sys.executable
CT_RECORD = os.path.join(os.path.dirname(sys.executable), "ct-record")

ENGINES = ("globals", "legacy")
ENGINE_FLAG = {
    "globals": "--module-name-from-globals",
    "legacy": "--no-module-name-from-globals",
}

# The trace format's synthetic root function, not a code object of the program.
_TOPLEVEL = "<toplevel>"


def clean_env(**extra):
    """os.environ without anything that steers the recorder or Python's sys.path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CODETRACER_", "PYTHON", "PYTEST_")) and k != "VIRTUAL_ENV"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # fixture trees stay exactly as the tests wrote them
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def write_tree(root, files):
    """Write ``{relative path: source}`` under ``root`` (sources are dedented)."""
    root = os.fspath(root)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
    return root


@dataclasses.dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    trace_dir: str = None

    def check(self):
        assert self.returncode == 0, f"status {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return self

    @property
    def metadata(self):
        return load_metadata(self.trace_dir)

    def module_labels(self):
        """``{co_filename: set of labels}`` of the recorded module-level code objects.

        A module body starts at line 1 and its label is ``<...>``; a function's label is its
        qualname, which has that shape only for lambdas and comprehensions, and no fixture
        has one on line 1. (The trace format dedupes Function events by label, path and
        line, so a file run twice under one label shows once.)"""
        events = load_events(self.trace_dir)
        paths, out = [], {}
        for ev in events:
            if "Path" in ev:
                paths.append(ev["Path"])
            elif "Function" in ev:
                fn = ev["Function"]
                name = fn["name"]
                if fn["line"] == 1 and name != _TOPLEVEL and name.startswith("<") and name.endswith(">"):
                    out.setdefault(paths[fn["path_id"]], set()).add(name)
        return out

    def function_names(self):
        """``{co_filename: set of labels}`` of every recorded code object."""
        events = load_events(self.trace_dir)
        paths, out = [], {}
        for ev in events:
            if "Path" in ev:
                paths.append(ev["Path"])
            elif "Function" in ev and ev["Function"]["name"] != _TOPLEVEL:
                fn = ev["Function"]
                out.setdefault(paths[fn["path_id"]], set()).add(fn["name"])
        return out

    def labels_of(self, path):
        return self.module_labels().get(os.fspath(path), set())


def _run(cmd, cwd, env, timeout=60):
    proc = subprocess.run(cmd, cwd=os.fspath(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def record(target, *, cwd, engine=None, trace_dir, module=False, args=(), flags=(), env=None):
    """``ct-record [engine flag] [flags] --trace-dir D (SCRIPT | -m MODULE) ARGS``."""
    cmd = [CT_RECORD, "--quiet", "--trace-dir", os.fspath(trace_dir)]
    if engine is not None:
        cmd.append(ENGINE_FLAG[engine])
    cmd += list(flags)
    cmd += (["-m", target] if module else [os.fspath(target)]) + list(args)
    run = _run(cmd, cwd, env if env is not None else clean_env())
    run.trace_dir = os.fspath(trace_dir)
    return run


def ct_record_raw(argv, *, cwd, env=None):
    """``ct-record ARGV`` exactly as given."""
    return _run([CT_RECORD] + list(argv), cwd, env if env is not None else clean_env())


def python(target, *, cwd, module=False, args=(), env=None):
    """The same program under plain ``python``, for comparison."""
    cmd = [PYTHON] + (["-m", target] if module else [os.fspath(target)]) + list(args)
    return _run(cmd, cwd, env if env is not None else clean_env())


def record_both(tmp_path, target, *, cwd, module=False, args=(), env=None, flags=()):
    """Record the program once per engine; ``{"globals": Run, "legacy": Run}`` (both checked)."""
    return {
        engine: record(
            target,
            cwd=cwd,
            engine=engine,
            trace_dir=tmp_path / f"trace-{engine}",
            module=module,
            args=args,
            env=env,
            flags=flags,
        ).check()
        for engine in ENGINES
    }
