"""Helpers of the integration tests: run a program under ``python`` and under ``ct-record``,
compare what the two runs did, and check the trace ``ct-record`` wrote.

Expectations about the trace never come from the recorder's own output: the lines a
program runs are written in the program itself, as marker comments::

    total = add(1, 2)        # line: main
    return a + b             # line: add
    time.sleep(5)            # maybe: <module>

``# line: NAME[, NAME...]`` means the line runs, inside the function (code object
qualname) NAME, and ``# maybe: NAME`` that it may or may not have a line event (a line
the process may die in). Every other line of the program's files must have no line
event at all. Function names are ``co_qualname``s; module-level code is ``<module>``.
"""

import collections
import difflib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ct_recorder.trace_reader import load_events, load_metadata, load_paths

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
PYTHON = sys.executable
CT_RECORD = str(Path(sys.executable).with_name("ct-record"))
TIMEOUT = 60

# What ct-record and ct_recorder.start() write when no format is named, and each format's
# events file (the contract in docs/recording.md).
DEFAULT_FORMAT = "compact"
EVENTS_FILE = {"compact": "trace.ctc", "binary": "trace.bin", "json": "trace.json"}

_MARKER = re.compile(r"#\s*(line|maybe):\s*(.+?)\s*$")


# --- running programs ---------------------------------------------------------------------


def clean_env(**extra):
    """The environment both runs get: the test's own, without anything that changes how
    Python or the recorder behaves, with a fixed hash seed (so set order is stable)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "CODETRACER_")) and k != "VIRTUAL_ENV"
    }
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


@dataclass
class Run:
    argv: list
    returncode: int
    stdout: bytes
    stderr: bytes

    def describe(self):
        return (
            f"argv: {self.argv!r}\nstatus: {self.returncode}\n"
            f"stdout:\n{self.stdout.decode('utf-8', 'replace')}\n"
            f"stderr:\n{self.stderr.decode('utf-8', 'replace')}"
        )


def run(argv, cwd, stdin=b"", env=None, timeout=TIMEOUT):
    """Runs ``argv`` in a process group of its own: if it hangs, the whole group (with any
    children it forked) is killed and the test fails."""
    p = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else clean_env(),
        start_new_session=True,
    )
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(
            f"timed out after {timeout}s: {argv!r}\nstdout so far:\n{out.decode('utf-8', 'replace')}"
            f"\nstderr so far:\n{err.decode('utf-8', 'replace')}"
        ) from None
    finally:
        try:  # children left behind by a program that ended (e.g. a hung forked child)
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Run(list(argv), p.returncode, out, err)


def run_pair(target, cwd, trace_dir, stdin=b"", env=None, ct_opts=(), timeout=TIMEOUT):
    """Runs ``python *target`` and ``ct-record --trace-dir TRACE_DIR *ct_opts *target`` in
    ``cwd`` with the same stdin and environment. ``target`` is what follows the interpreter
    on python's command line (``["prog.py", "a"]`` or ``["-m", "pkg", "a"]``)."""
    env = env if env is not None else clean_env()
    py = run([PYTHON, *target], cwd, stdin, env, timeout)
    ct = run([CT_RECORD, "--trace-dir", os.fspath(trace_dir), *ct_opts, *target], cwd, stdin, env, timeout)
    return py, ct


# Labels CPython gives to code objects that are not module bodies.
_CODE_LABELS = {"<toplevel>", "<lambda>", "<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"}


def _generic_label(name, line):
    """Module-level code is labelled after its module name (``<__main__>``, ``<pkg.mod>``,
    or ``<module>`` when the engine has none; tests/python/test_naming_* check which).
    These behaviour tests only care that it is module code: fold every such label into
    ``<module>``. Module code starts on line 1; other ``<...>`` qualnames are kept."""
    if line == 1 and name.startswith("<") and name.endswith(">") and name not in _CODE_LABELS:
        return "<module>"
    return name


def _diff(name, a, b):
    lines = difflib.unified_diff(
        a.decode("utf-8", "replace").splitlines(),
        b.decode("utf-8", "replace").splitlines(),
        f"python {name}",
        f"ct-record {name}",
        lineterm="",
    )
    return "\n".join(lines)


def assert_same_behaviour(py, ct):
    """stdout, stderr and exit status identical, byte for byte."""
    problems = []
    if py.returncode != ct.returncode:
        problems.append(f"exit status: python {py.returncode}, ct-record {ct.returncode}")
    if py.stdout != ct.stdout:
        problems.append("stdout differs:\n" + _diff("stdout", py.stdout, ct.stdout))
    if py.stderr != ct.stderr:
        problems.append("stderr differs:\n" + _diff("stderr", py.stderr, ct.stderr))
    assert not problems, "\n".join(problems) + f"\n--- python run\n{py.describe()}\n--- ct-record run\n{ct.describe()}"


def copy_programs(dest):
    """A private copy of the fixture programs (tests run them in their own directory)."""
    shutil.copytree(PROGRAMS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return Path(dest)


# --- expectations from marker comments ----------------------------------------------------


@dataclass
class LineSpec:
    required: set = field(default_factory=set)  # {(name, line)}
    optional: set = field(default_factory=set)

    @property
    def names(self):
        return {name for name, _ in self.required}


# CPython 3.12 inlines list, set and dict comprehensions (PEP 709): they have no code object
# of their own, and their lines belong to the enclosing function. Generator expressions keep
# theirs.
_INLINED_COMPREHENSION = re.compile(r"(?:^|\.<locals>\.)<(?:listcomp|setcomp|dictcomp)>$")


def code_name(qualname):
    """The code object a ``# line:`` marker's qualname names on the running interpreter."""
    if sys.version_info >= (3, 12):
        return _INLINED_COMPREHENSION.sub("", qualname) or "<module>"
    return qualname


def markers(path):
    """The ``# line:`` / ``# maybe:`` expectations written in the source file ``path``
    (names as the running interpreter's code objects have them, see ``code_name``)."""
    spec = LineSpec()
    text = Path(path).read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _MARKER.search(line)
        if not m:
            continue
        target = spec.required if m.group(1) == "line" else spec.optional
        for name in m.group(2).split(","):
            target.add((code_name(name.strip()), lineno))
    return spec


# --- the trace ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _realpath(path):
    return os.path.realpath(path)


class TraceError(AssertionError):
    pass


class Trace:
    """A recorded run directory, read with the format's own reader, and what follows from
    walking its events: per-thread call stacks, line steps, calls and exceptions."""

    PRE_THREAD = "<before any thread>"

    def __init__(self, trace_dir):
        self.dir = Path(trace_dir)
        self.metadata = load_metadata(self.dir)
        self.path_list = load_paths(self.dir)
        self.events = load_events(self.dir)
        self._walk()

    def _walk(self):
        paths, functions = [], []
        stacks = {self.PRE_THREAD: []}
        thread = self.PRE_THREAD
        self.thread_ids = []
        self.steps = []  # (thread, function name or None, path, line)
        self.calls = []  # (thread, function name, path)
        self.exceptions = []  # exception event contents
        self.other_events = []
        self.returns = []  # (thread, function name, path, call args, return value)
        self.variable_names = []
        frames = {}
        self.underflows = []
        evs = self.events
        for i, ev in enumerate(evs):
            (kind, body), = ev.items()
            if kind == "Path":
                paths.append(body)
            elif kind == "Function":
                if not 0 <= body["path_id"] < len(paths):
                    raise TraceError(f"event {i}: Function with unknown path id: {ev}")
                functions.append((_generic_label(body["name"], body["line"]), paths[body["path_id"]], body["line"]))
            elif kind == "ThreadStart":
                if body in self.thread_ids:
                    raise TraceError(f"event {i}: second ThreadStart for thread {body}")
                self.thread_ids.append(body)
                stacks[body] = []
                thread = body
            elif kind == "ThreadSwitch":
                if body not in stacks:
                    raise TraceError(f"event {i}: ThreadSwitch to unstarted thread {body}")
                thread = body
            elif kind == "ThreadExit":
                thread = body
            elif kind == "Call":
                fid = body["function_id"]
                if not 0 <= fid < len(functions):
                    raise TraceError(f"event {i}: Call of unknown function id: {ev}")
                stacks[thread].append(fid)
                frames.setdefault(thread, []).append(body["args"])
                self.calls.append((thread, functions[fid][0], functions[fid][1]))
            elif kind == "Return":
                if not stacks[thread]:
                    self.underflows.append((i, thread))
                else:
                    fid = stacks[thread].pop()
                    args = frames[thread].pop()
                    name, path, _ = functions[fid]
                    self.returns.append((thread, name, path, args, body["return_value"]))
            elif kind == "Step":
                if not 0 <= body["path_id"] < len(paths):
                    raise TraceError(f"event {i}: Step with unknown path id: {ev}")
                if i + 1 < len(evs) and "Call" in evs[i + 1]:
                    continue  # the step on a function's first line that opens a call
                path = paths[body["path_id"]]
                name = None
                if stacks[thread]:
                    fname, fpath, _ = functions[stacks[thread][-1]]
                    name = fname if fpath == path else f"?{fname}"
                self.steps.append((thread, name, path, body["line"]))
            elif kind == "VariableName":
                self.variable_names.append(body)
            elif kind == "Event":
                if body.get("metadata") == "exception":
                    self.exceptions.append(body["content"])
                else:
                    self.other_events.append(body)
        self.paths = paths
        self.functions = functions
        self.final_stacks = {t: [functions[f][0] for f in s] for t, s in stacks.items()}

    # summaries

    @property
    def summary(self):
        return self.metadata["summary"]

    def open_calls(self, thread):
        return self.final_stacks[thread]

    def check_balanced(self, open_main=()):
        """Each thread's Calls and Returns pair up: no Return without a Call, every thread
        ends with an empty stack, except the initial `<toplevel>` call and, on the main
        thread, ``open_main`` (the functions a killed process was in, outermost first)."""
        assert not self.underflows, f"Return with no open Call at events (index, thread): {self.underflows[:5]}"
        assert self.final_stacks[self.PRE_THREAD] == ["<toplevel>"], self.final_stacks
        assert self.functions[0][0] == "<toplevel>"
        assert self.thread_ids, "no ThreadStart event"
        main = self.thread_ids[0]
        for t in self.thread_ids:
            want = list(open_main) if t == main else []
            assert self.final_stacks[t] == want, (
                f"thread {t}: calls never returned: {self.final_stacks[t]} (expected {want})"
            )

    def is_file(self, trace_path, file):
        return _realpath(trace_path) == _realpath(file)

    def line_steps(self, file):
        """{(function name, line)} of line events in ``file``."""
        return {(name, line) for _, name, path, line in self.steps if self.is_file(path, file)}

    def step_counts(self, file):
        """Counter of (function name, line) line events in ``file``."""
        return collections.Counter(
            (name, line) for _, name, path, line in self.steps if self.is_file(path, file)
        )

    def calls_with_results(self, name, file):
        """[(arguments {name: value}, return value)] of the finished calls of ``name``,
        with the values decoded (see ``decode``)."""
        out = []
        for _, fname, path, args, ret in self.returns:
            if fname == name and self.is_file(path, file):
                decoded = {self.variable_names[a["variable_id"]]: decode(a["value"]) for a in args}
                out.append((decoded, decode(ret)))
        return out

    def call_count(self, name, file=None):
        return sum(
            1 for _, n, path in self.calls if n == name and (file is None or self.is_file(path, file))
        )

    def function_names(self, file):
        return {name for name, path, _ in self.functions if self.is_file(path, file)}

    def threads_with_calls_in(self, file):
        return {t for t, _, path in self.calls if self.is_file(path, file)}


def decode(value):
    """A recorded value as Python data: numbers, strings, bools, None, lists; anything else
    as ``(kind, record)``."""
    kind = value["kind"]
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
    if kind in ("Sequence", "Tuple"):
        return [decode(v) for v in value["elements"]]
    return (kind, value)


def check_lines(trace, file, spec=None):
    """The line events of ``file`` are exactly those its markers announce."""
    spec = spec or markers(file)
    got = trace.line_steps(file)
    missing = spec.required - got
    unexpected = got - spec.required - spec.optional
    assert not missing and not unexpected, (
        f"{Path(file).name}: lines that ran but have no step (name, line): {sorted(missing)}\n"
        f"steps recorded for lines that should not have one: {sorted(unexpected, key=str)}"
    )


def check_metadata(trace, program, args, workdir, fmt=DEFAULT_FORMAT):
    md = trace.metadata
    if os.path.isabs(program):  # a script: the same file (the path may differ in spelling)
        assert os.path.isabs(md["program"]) and _realpath(md["program"]) == _realpath(program), md["program"]
    else:  # "-m MODULE", or argv[0] as the in-process API records it
        assert md["program"] == program
    assert md["args"] == list(args)
    assert os.path.realpath(md["workdir"]) == os.path.realpath(workdir)
    assert md["format"] == fmt
    assert md["recorder"]["name"] == "ct-recorder"
    assert md["recorder"]["python"] == sys.version
    s = md["summary"]
    assert s["recorder_error_count"] == 0, s["recorder_errors"]
    assert s["recorder_errors"] == []
    # The summary's counts agree with the events the reader gives back.
    assert s["events"] == len(trace.events)
    assert s["counts"]["calls"] == len(trace.calls) - 1  # minus the initial <toplevel> call
    assert s["counts"]["exceptions"] == len(trace.exceptions)
    assert s["counts"]["returns"] == sum(1 for e in trace.events if "Return" in e)
    # Every recorded call has one step on the function's first line; the rest are lines.
    assert s["counts"]["lines"] == sum(1 for e in trace.events if "Step" in e) - (len(trace.calls) - 1)
    assert s["counts"]["threads"] == len(trace.thread_ids)
    # trace_paths.json lists the Path events, in order (index = path id).
    assert trace.path_list == trace.paths


def line_of(file, snippet):
    """The number of the one line of ``file`` that contains ``snippet``."""
    found = [
        n for n, line in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), 1) if snippet in line
    ]
    assert len(found) == 1, f"{snippet!r} is on lines {found} of {file}"
    return found[0]


def lines_stepped(trace, file):
    """The line numbers of ``file`` that have a step (whatever the function)."""
    return {line for _, line in trace.line_steps(file)}
