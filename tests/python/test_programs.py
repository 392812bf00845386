"""Real programs run under ``python`` and under ``ct-record``: identical behaviour (stdout,
stderr, exit status, byte for byte), and a trace that reads back and says what ran.

The expectations about the trace come from the programs: their ``# line:`` markers (see
tracecheck) and the counts in the cases below, worked out from the source.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field

import pytest

from tracecheck import (
    CT_RECORD,
    PYTHON,
    Trace,
    assert_same_behaviour,
    check_lines,
    check_metadata,
    clean_env,
    line_of,
    lines_stepped,
    markers,
    run,
    run_pair,
)


@dataclass
class Case:
    id: str
    program: str
    args: tuple = ()
    stdin: bytes = b""
    status: int = 0
    # Exact number of Call events of functions of the program's file.
    calls: dict = field(default_factory=dict)
    # Lower bounds on Call events (where the exact number depends on the stack's depth).
    min_calls: dict = field(default_factory=dict)
    # Exception events that must be in the trace ("Type: message").
    exceptions: tuple = ()
    # Function -> number (or (min, max)) of distinct threads, none the main one, calling it.
    thread_functions: dict = field(default_factory=dict)
    # Calls still open on the main thread when the process was killed, outermost first.
    open_main: tuple = ()
    # Function -> f(arguments dict) giving what each of its calls must return (UNWOUND: it
    # must end by an exception).
    results: dict = field(default_factory=dict)
    # Function -> the values its Returns carry, in order (a generator's yields, then its end).
    result_sequence: dict = field(default_factory=dict)
    # Function -> the arguments ({name: value}) of each of its finished calls, in order.
    call_args: dict = field(default_factory=dict)
    # Seconds each run may take (a hang fails the test).
    timeout: int = 60
    # Source snippets whose line must have a step / must have none.
    present: tuple = ()
    absent: tuple = ()


UNWOUND = object()


def _fib(n):
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


def _collatz(n):
    steps = 0
    while n != 1:
        n, steps = (n // 2 if n % 2 == 0 else 3 * n + 1), steps + 1
    return steps


def _checksum(n):
    total = 0
    for i in range(n):
        total = (total * 31 + i) % 65521
    return total


EXIT_FORMS = {
    # form: (exit status, the line that ends the program)
    "sys.exit()": (0, "sys.exit()  #"),
    "sys.exit(0)": (0, "sys.exit(0)  #"),
    "sys.exit(3)": (3, "sys.exit(3)  #"),
    "sys.exit(message)": (1, 'sys.exit("fatal'),
    "sys.exit(None)": (0, "sys.exit(None)  #"),
    "sys.exit(True)": (1, "sys.exit(True)  #"),
    "sys.exit(256)": (0, "sys.exit(256)  #"),
    "raise SystemExit(7)": (7, "raise SystemExit(7)  #"),
    "raise SystemExit(message)": (1, 'raise SystemExit("stopping'),
    "exit(4)": (4, "exit(4)  #"),
}

CASES = [
    Case(
        "fib_recursion",
        "fib_recursion.py",
        args=("10",),
        # fib(n) makes 2*F(n+1)-1 calls: 2*89-1 for n=10.
        calls={"fib": 177, "fib_iter": 1, "main": 1, "<module>": 1},
        results={"fib": lambda a: _fib(a["n"]), "fib_iter": lambda a: _fib(a["n"]), "main": lambda a: 0},
    ),
    Case(
        "threads",
        "threads_basic.py",
        # 30 numbers squared by 3 workers, a Counter thread counting to 25.
        calls={"partial_sum": 3, "square": 30, "Counter.__init__": 1, "Counter.run": 1, "main": 1},
        thread_functions={"partial_sum": 3, "square": 3, "Counter.run": 1},
        results={"square": lambda a: a["x"] ** 2, "partial_sum": lambda a: None},
    ),
    Case(
        "thread_pool",
        "thread_pool.py",
        calls={"collatz_steps": 4, "checked_sqrt": 3, "main": 1},
        exceptions=("ValueError: negative input -4",),
        thread_functions={"collatz_steps": (1, 3), "checked_sqrt": (1, 3)},  # max_workers=3
        results={
            "collatz_steps": lambda a: _collatz(a["n"]),
            "checked_sqrt": lambda a: UNWOUND if a["x"] < 0 else a["x"] ** 0.5,
        },
    ),
    Case(
        "generators",
        "generators.py",
        # A generator has one Call per resumption: countdown(3) yields 3 times and returns
        # (4); delegate yields those 3, then its own value, then ends (5); accumulator: next
        # + 3 sends + send(None) (5); resource: 2 nexts + close() (3); the genexpr: 4 values
        # and the end (5).
        calls={
            "countdown": 4,
            "delegate": 5,
            "accumulator": 5,
            "resource": 3,
            "main.<locals>.<genexpr>": 5,
            "main": 1,
        },
        exceptions=("GeneratorExit",),
        # Arguments on the Call of the frame's start only, none on a resumption.
        call_args={"countdown": [{"n": 3}, {}, {}, {}]},
        result_sequence={
            "countdown": [3, 2, 1, "liftoff"],
            "delegate": [3, 2, 1, "liftoff", None],
            "accumulator": [0, 5, 15, 35, 35],
            "resource": [0, 1, UNWOUND],
            "main.<locals>.<genexpr>": [0, 1, 4, 9, None],
        },
    ),
    Case(
        "asyncio",
        "async_gather.py",
        # fetch(name, k) awaits sleep(0) k times: k suspensions, k+1 Calls (3+1, 1+1, 2+1);
        # never_finishes is started, then resumed once to be cancelled by wait_for.
        calls={"fetch": 9, "never_finishes": 2},
        exceptions=("CancelledError",),
    ),
    Case(
        "exceptions_caught",
        "exceptions_caught.py",
        calls={"parse_int": 2, "ParseError.__init__": 1, "safe_div": 2, "reraise": 1},
        results={
            "parse_int": lambda a: int(a["text"]) if a["text"].isdigit() else UNWOUND,
            "safe_div": lambda a: a["a"] / a["b"] if a["b"] else None,
            "reraise": lambda a: UNWOUND,
        },
        exceptions=(
            "ParseError: bad character 'x' at 2",
            "ZeroDivisionError: division by zero",
            "KeyError: missing",
        ),
    ),
    Case(
        "exception_uncaught",
        "exception_uncaught.py",
        status=1,
        calls={"load": 2, "validate": 2},
        exceptions=("ValueError: port out of range: 70000",),
    ),
    Case(
        "exception_chained",
        "exception_chained.py",
        status=1,
        calls={"quiet": 1, "read_setting": 1, "convert": 1, "main.<locals>.<lambda>": 1},
        exceptions=(
            "ConfigError: quiet failure",
            "KeyError: port",
            "ConfigError: missing setting port",
            "ValueError: invalid literal for int() with base 10: 'eleven'",
            "ConfigError: not a number: eleven",
        ),
    ),
    *[
        Case(
            f"exit[{form}]",
            "exit_forms.py",
            args=(form,),
            status=status,
            calls={"goodbye": 1, "leave": 1, "main": 1},
            present=(line,),
            absent=('print("leave: returning normally")', 'print("main returned")', 'print("end of module")'),
        )
        for form, (status, line) in EXIT_FORMS.items()
    ],
    Case(
        "exit[normal end]",
        "exit_forms.py",
        args=("normal",),
        calls={"goodbye": 1, "leave": 1, "main": 1},
        present=('print("leave: returning normally")', 'print("main returned")', 'print("end of module")'),
    ),
    Case(
        "exit_in_thread",
        "thread_exit.py",
        calls={"quitter": 1, "crasher": 1},
        exceptions=("SystemExit", "ZeroDivisionError: division by zero"),
        thread_functions={"quitter": 1, "crasher": 1},
    ),
    Case(
        "recursion_caught",
        "recursion_caught.py",
        # The limit is 300 frames; a few are taken by the frames below the program's.
        min_calls={"descend": 280},
        calls={"after_recovery": 1},
        exceptions=("RecursionError: maximum recursion depth exceeded",),
    ),
    Case(
        "recursion_uncaught",
        "recursion_uncaught.py",
        status=1,
        min_calls={"walk": 230},
        exceptions=("RecursionError: maximum recursion depth exceeded",),
    ),
    Case(
        "stdin",
        "stdin_wordcount.py",
        stdin="hello world\nsecond line here é\n\nlast words".encode(),
        calls={"words": 4, "main": 1},
        results={"words": lambda a: len(a["line"].split())},
        call_args={
            "words": [{"line": "hello world"}, {"line": "second line here é"}, {"line": ""}, {"line": "last words"}]
        },
    ),
    Case(
        "sigterm_default",
        "sigterm_default.py",
        status=-signal.SIGTERM,
        calls={"work": 1, "terminate": 1},
        open_main=("<module>", "terminate"),
        absent=('print("survived SIGTERM"', 'print("not reached")'),
    ),
    Case(
        "sigterm_own_handler",
        "sigterm_handler.py",
        calls={"on_term": 2, "main": 1},
    ),
    Case(
        "sigint_uncaught",
        "sigint_uncaught.py",
        status=-signal.SIGINT,
        calls={"cleanup": 1, "wait_for_interrupt": 1},
        exceptions=("KeyboardInterrupt",),
        absent=('print("not interrupted")',),
    ),
    Case(
        "atexit",
        "atexit_handlers.py",
        calls={"flush_log": 1, "record": 3, "unregistered": 0},
    ),
    Case(
        "unicode",
        "unicode_output.py",
        args=("é", "日本語", "🐍", "naïve café"),
        calls={"show_args": 1},
        call_args={"show_args": [{"args": ["é", "日本語", "🐍", "naïve café"]}]},
    ),
    Case("main_attrs", "main_attrs.py", args=("a", "--flag", "-m", "x"), calls={"describe_spec": 1}),
    Case("main_globals", "main_globals.py"),
    Case("signal_dispositions", "signal_dispositions.py"),
    Case("stack_introspection", "stack_introspection.py", calls={"report": 1, "depth": 1}),
    Case("warnings", "warnings_main.py", calls={"old_api": 2, "noisy": 2}),
    Case(
        "fork",
        "fork_child.py",
        # The parent's trace holds the parent's run: its one checksum call, not the child's.
        calls={"checksum": 1, "main": 1},
        results={"checksum": lambda a: _checksum(a["n"])},
        timeout=15,
    ),
    Case(
        "multiprocessing_spawn",
        "multiprocessing_spawn.py",
        # run_job runs in the worker processes, which are not part of this recording.
        calls={"Job.__init__": 3, "main": 1, "run_job": 0},
    ),
    Case(
        "classes_decorators",
        "classes_decorators.py",
        calls={
            "Vector.__init__": 5 + 2,  # parse, zero, Vector(1, 1), two additions; two in sorted()
            "Vector.__add__": 2,
            "Vector.__repr__": 3,
            "Vector.norm2": 3,
            "Vector.zero": 1,
            "greet": 3,
            "repeat.<locals>.decorate.<locals>.wrapper": 1,
            "make_counter.<locals>.bump": 3,
            "<lambda>": 2,
        },
    ),
]


def check_trace(trace, case, file, work):
    check_metadata(trace, program=str(file), args=case.args, workdir=work)
    trace.check_balanced(open_main=case.open_main)
    check_lines(trace, file)
    for name, n in case.calls.items():
        assert trace.call_count(name, file) == n, f"Calls of {name}"
    for name, n in case.min_calls.items():
        assert trace.call_count(name, file) >= n, f"Calls of {name}"
    for exc in case.exceptions:
        assert exc in trace.exceptions, f"no exception event {exc!r} in {sorted(set(trace.exceptions))}"
    main = trace.thread_ids[0]
    for name, n in case.thread_functions.items():
        threads = {t for t, fname, path in trace.calls if fname == name and trace.is_file(path, file)}
        assert main not in threads, f"{name} ran on the main thread"
        low, high = n if isinstance(n, tuple) else (n, n)
        assert low <= len(threads) <= high, f"{name} called on threads {threads}"
    for name, expected in case.results.items():
        pairs = trace.calls_with_results(name, file)
        assert pairs, f"no finished call of {name}"
        for args, result in pairs:
            want = expected(args)
            if want is UNWOUND:
                assert isinstance(result, tuple) and result[0] == "Error", f"{name}({args}) returned {result!r}"
            else:
                assert result == want, f"{name}({args}) returned {result!r}, expected {want!r}"
    for name, expected in case.call_args.items():
        assert [args for args, _ in trace.calls_with_results(name, file)] == expected
    for name, expected in case.result_sequence.items():
        got = [result for _, result in trace.calls_with_results(name, file)]
        assert len(got) == len(expected), f"{name}: {got}"
        for g, want in zip(got, expected):
            if want is UNWOUND:
                assert isinstance(g, tuple) and g[0] == "Error", f"{name}: {got}"
            else:
                assert g == want, f"{name}: returns {got}, expected {expected}"
    stepped = lines_stepped(trace, file)
    for snippet in case.present:
        assert line_of(file, snippet) in stepped, f"no step for the line of {snippet!r}"
    for snippet in case.absent:
        assert line_of(file, snippet) not in stepped, f"a step for the line of {snippet!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_program(case, work, trace_dir):
    py, ct = run_pair([case.program, *case.args], work, trace_dir, stdin=case.stdin, timeout=case.timeout)
    assert py.returncode == case.status, f"the fixture itself misbehaves under python:\n{py.describe()}"
    assert_same_behaviour(py, ct)
    check_trace(Trace(trace_dir), case, work / case.program, work)


# --- how the program is named on the command line -----------------------------------------

PKG_FILES = ("__init__.py", "shapes.py", "__main__.py", "tool.py", "crash.py")


@pytest.mark.parametrize(
    "module, args, status, ran",
    [
        # `-m pkgdemo` imports the package, then runs its __main__.py (exit status len(args)).
        ("pkgdemo", ("a", "b"), 2, ("__init__.py", "shapes.py", "__main__.py")),
        ("pkgdemo.tool", ("1", "2.5"), 0, ("__init__.py", "shapes.py", "tool.py")),
        ("pkgdemo.crash", ("x",), 1, ("__init__.py", "crash.py")),
    ],
)
def test_dash_m(module, args, status, ran, work, trace_dir):
    py, ct = run_pair(["-m", module, *args], work, trace_dir)
    assert py.returncode == status, py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    check_metadata(trace, program=f"-m {module}", args=args, workdir=work)
    trace.check_balanced()
    for name in PKG_FILES:
        file = work / "pkgdemo" / name
        if name in ran:
            check_lines(trace, file)
        else:
            assert not trace.line_steps(file), f"{name} did not run but has steps"
    shapes = work / "pkgdemo" / "shapes.py"
    if "shapes.py" in ran:
        # Circle(r).area() for two radii, each in a fresh Circle.
        assert trace.call_count("Circle.area", shapes) == 2
        assert trace.call_count("Circle.__init__", shapes) == 2
    assert trace.call_count("banner", work / "pkgdemo" / "__init__.py") == 1
    if module == "pkgdemo.crash":
        assert "FileNotFoundError" in {e.split(":")[0] for e in trace.exceptions}


def test_script_by_relative_path_from_another_cwd(work, trace_dir):
    sub = work / "elsewhere" / "deeper"
    sub.mkdir(parents=True)
    target = ["../../main_attrs.py", "x"]
    py, ct = run_pair(target, sub, trace_dir)
    assert py.returncode == 0, py.describe()
    assert b"path0 " + bytes(work) + b"\n" in py.stdout  # the fixture prints what we think
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    check_metadata(trace, program=str(work / "main_attrs.py"), args=["x"], workdir=sub)
    trace.check_balanced()
    check_lines(trace, work / "main_attrs.py")


def test_symlinked_script(work, trace_dir):
    links = work / "links"
    links.mkdir()
    (links / "alias.py").symlink_to(work / "main_attrs.py")
    # sys.path[0] is the directory of the resolved script, __file__ the link.
    py, ct = run_pair(["links/alias.py"], work, trace_dir)
    assert py.returncode == 0, py.describe()
    assert b"path0 " + bytes(work) + b"\n" in py.stdout
    assert b"file " + bytes(links / "alias.py") + b"\n" in py.stdout
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    trace.check_balanced()
    check_lines(trace, work / "main_attrs.py")


def test_options_after_the_script_belong_to_the_script(work, trace_dir):
    args = ["--trace-dir", "x", "--format", "json", "-m", "pkgdemo", "--", "--help", "--version"]
    py, ct = run_pair(["argv_echo.py", *args], work, trace_dir)
    assert py.returncode == 0, py.describe()
    assert_same_behaviour(py, ct)
    # The recorder took none of them: its trace is in the default format (compact), where
    # --trace-dir said before the script.
    trace = Trace(trace_dir)
    assert (trace_dir / "trace.ctc").is_file() and not (trace_dir / "trace.json").exists()
    assert trace.metadata["args"] == args
    assert not (work / "x").exists()
    check_lines(trace, work / "argv_echo.py")


def test_double_dash_ends_recorder_options(work, trace_dir):
    shutil.copy(work / "argv_echo.py", work / "-dash.py")
    env = clean_env()
    py = run([PYTHON, "--", "-dash.py", "--", "a"], work, env=env)
    ct = run([CT_RECORD, "--trace-dir", str(trace_dir), "--", "-dash.py", "--", "a"], work, env=env)
    assert py.returncode == 0, py.describe()
    assert b"argv ['-dash.py', '--', 'a']" in py.stdout
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    trace.check_balanced()
    check_lines(trace, work / "-dash.py", markers(work / "argv_echo.py"))


def test_syntax_error_in_the_script(work, trace_dir):
    py, ct = run_pair(["syntax_error.py"], work, trace_dir)
    assert py.returncode == 1 and b"SyntaxError" in py.stderr, py.describe()
    assert not trace_dir.exists(), "a trace directory was created for a program that never ran"
    assert not (work / "side-effect.txt").exists()
    assert_same_behaviour(py, ct)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(b"if True:\nprint('not indented')\n", id="IndentationError"),
        pytest.param(b"print('before')\n\x00\n", id="null-byte"),
        pytest.param(b"# -*- coding: no-such-codec -*-\nprint(1)\n", id="unknown-encoding"),
        pytest.param(b"print('caf\xe9')\n", id="latin-1-without-declaration"),
        pytest.param(b"x = 1\nreturn x\n", id="return-outside-function"),
    ],
)
def test_script_that_does_not_compile(work, trace_dir, source):
    (work / "broken.py").write_bytes(source + b"open('side-effect.txt', 'w')\n")
    py, ct = run_pair(["broken.py"], work, trace_dir)
    assert py.returncode == 1 and b"Error" in py.stderr, py.describe()
    assert not trace_dir.exists(), "a trace directory was created for a program that never ran"
    assert not (work / "side-effect.txt").exists()
    assert_same_behaviour(py, ct)


def test_directory_without_main(work, trace_dir):
    (work / "not_an_app").mkdir()
    py, ct = run_pair(["not_an_app"], work, trace_dir)
    assert py.returncode == 1 and b"can't find '__main__' module" in py.stderr, py.describe()
    assert_same_behaviour(py, ct)
    assert not trace_dir.exists()


def test_os_exit(work, trace_dir):
    py, ct = run_pair(["os_exit.py"], work, trace_dir)
    assert py.returncode == 5 and b"must not run" not in py.stdout, py.describe()
    assert_same_behaviour(py, ct)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_from_outside_while_blocked(work, trace_dir, sig):
    """`kill PID` / Ctrl-C while the program waits on stdin: death by the signal under both
    (after a KeyboardInterrupt traceback for SIGINT), and ct-record still leaves a trace
    that reads back: for SIGTERM with the program's calls still open, for SIGINT unwound."""
    env = clean_env()
    statuses, outputs = [], []
    for argv in ([PYTHON, "sigterm_wait.py"], [CT_RECORD, "--trace-dir", str(trace_dir), "sigterm_wait.py"]):
        p = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert p.stdout.readline() == b"ready\n"
            time.sleep(0.3)  # most likely blocked in readline() by now; either way it must die
            p.send_signal(sig)
            out, err = p.communicate(timeout=30)
        finally:
            p.kill() if p.poll() is None else None
        statuses.append(p.returncode)
        outputs.append((out, err))
    assert statuses == [-sig, -sig]
    if sig == signal.SIGINT:
        # Where the KeyboardInterrupt surfaces depends on timing, under python alone too:
        # in readline() itself or in the stdin decoder's frozen frame. Compare without it.
        outputs = [(out, re.sub(rb'  File "<frozen codecs>".*\n', b"", err)) for out, err in outputs]
        assert outputs[0][1].endswith(b"\nKeyboardInterrupt\n")
    assert outputs[0] == outputs[1]
    trace = Trace(trace_dir)
    trace.check_balanced(open_main=("<module>", "serve") if sig == signal.SIGTERM else ())
    check_lines(trace, work / "sigterm_wait.py")
    assert trace.call_count("serve", work / "sigterm_wait.py") == 1


@pytest.mark.parametrize("program, sig", [("sigterm_default.py", signal.SIGTERM), ("sigint_uncaught.py", signal.SIGINT)])
def test_death_by_signal_leaves_a_readable_binary_trace(work, trace_dir, program, sig):
    py, ct = run_pair([program], work, trace_dir, ct_opts=["--format", "binary"])
    assert py.returncode == -sig, py.describe()
    assert_same_behaviour(py, ct)
    assert (trace_dir / "trace.bin").is_file()
    trace = Trace(trace_dir)
    check_metadata(trace, program=str(work / program), args=[], workdir=work, fmt="binary")
    check_lines(trace, work / program)
    trace.check_balanced(open_main=("<module>", "terminate") if sig == signal.SIGTERM else ())


# --- non-UTF-8 names ----------------------------------------------------------------------


def test_argv_not_valid_utf8(work, trace_dir):
    """Arguments are bytes on Linux; python hands undecodable ones to the program as
    surrogate escapes (PEP 383)."""
    args = [b"\xff\xferaw", "é".encode(), b"ok"]
    env = clean_env()
    py = run([PYTHON, b"unicode_output.py", *args], work, env=env)
    ct = run([CT_RECORD, "--trace-dir", str(trace_dir), b"unicode_output.py", *args], work, env=env)
    assert py.returncode == 0 and b"'\\udcff\\udcferaw' fffe726177 5" in py.stdout, py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    trace.check_balanced()
    check_lines(trace, work / "unicode_output.py")


def test_script_in_a_directory_whose_name_is_not_utf8(work, trace_dir):
    odd = os.path.join(os.fsencode(work), b"caf\xe9")
    os.mkdir(odd)
    shutil.copy(work / "fib_recursion.py", os.path.join(odd, b"fib_recursion.py"))
    env = clean_env()
    py = run([PYTHON, "fib_recursion.py", "6"], odd, env=env)
    ct = run([CT_RECORD, "--trace-dir", str(trace_dir), "fib_recursion.py", "6"], odd, env=env)
    assert py.returncode == 0, py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    assert trace.summary["recorder_error_count"] == 0, trace.summary["recorder_errors"]
    trace.check_balanced()
    # fib(6) makes 2*F(7)-1 = 25 calls.
    assert sum(1 for _, name, _ in trace.calls if name == "fib") == 25


# --- trace formats and large traces -------------------------------------------------------


def _value_kinds(obj):
    """``obj`` with every recorded value replaced by its kind."""
    if isinstance(obj, dict):
        if "kind" in obj and "type_id" in obj:
            return obj["kind"]
        return {k: _value_kinds(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_value_kinds(v) for v in obj]
    return obj


def _normalised(events):
    """Events with what legitimately differs between two runs of one program made equal:
    values (they include thread idents and object addresses, which vary between runs) are
    reduced to their kinds; thread ids are numbered in order of appearance."""
    threads = {}
    out = []
    for ev in events:
        (kind, body), = ev.items()
        if kind in ("ThreadStart", "ThreadSwitch", "ThreadExit"):
            body = threads.setdefault(body, len(threads))
        out.append(json.dumps({kind: _value_kinds(body)}, sort_keys=True))
    return out


def test_binary_format_reads_back_like_json(work, tmp_path):
    runs = {}
    for fmt in ("binary", "json"):
        tdir = tmp_path / f"trace-{fmt}"
        py, ct = run_pair(["generators.py"], work, tdir, ct_opts=["--format", fmt])
        assert_same_behaviour(py, ct)
        runs[fmt] = Trace(tdir)
    binary, js = runs["binary"], runs["json"]
    assert (tmp_path / "trace-binary" / "trace.bin").is_file()
    assert not (tmp_path / "trace-binary" / "trace.json").exists()
    check_metadata(binary, program=str(work / "generators.py"), args=(), workdir=work, fmt="binary")
    binary.check_balanced()
    check_lines(binary, work / "generators.py")
    assert binary.call_count("countdown", work / "generators.py") == 4
    # One deterministic program, two formats: the same events, in the same order...
    assert _normalised(binary.events) == _normalised(js.events)
    # ...and the program's own calls carry the same values.
    def own(t):
        returns = [r[1:2] + r[3:] for r in t.returns if t.is_file(r[2], work / "generators.py")]
        return [re.sub(r"0x[0-9a-f]+", "0x?", repr(r)) for r in returns]

    # <module>, main, and the generators' resumptions (see the generators case).
    assert len(own(js)) == 1 + 1 + 4 + 5 + 5 + 3 + 5
    assert own(binary) == own(js)


@pytest.mark.parametrize("fmt", ["json", "binary"])
def test_long_running_loop(fmt, work, tmp_path):
    counts = {}
    for n in (200, 20000):
        tdir = tmp_path / f"trace-{n}"
        py, ct = run_pair(["long_loop.py", str(n)], work, tdir, ct_opts=["--format", fmt])
        assert py.returncode == 0, py.describe()
        assert_same_behaviour(py, ct)
        trace = Trace(tdir)
        check_metadata(trace, program=str(work / "long_loop.py"), args=[str(n)], workdir=work, fmt=fmt)
        trace.check_balanced()
        check_lines(trace, work / "long_loop.py")
        file = work / "long_loop.py"
        assert trace.call_count("step", file) == n
        steps = trace.step_counts(file)
        src = lambda snippet: line_of(file, snippet)  # noqa: E731
        assert steps[("step", src("state = (state * 31 + i)"))] == n
        assert steps[("step", src("    return state  # line: step"))] == n
        assert steps[("run", src("for i in range(n)"))] == n + 1  # the last one ends the loop
        assert steps[("run", src("state = step(state, i)"))] == n
        counts[n] = trace.summary["events"]
    # Every iteration costs events: a call with its argument values, steps, a return.
    assert counts[20000] - counts[200] >= 6 * (20000 - 200)


# --- more ways programs are run and end ---------------------------------------------------


def test_script_directory_modules_shadow_the_standard_library(work, trace_dir):
    """Modules next to the script win over standard ones of the same name, as in any
    `python script.py` run: the recorder's own imports must not get in the way."""
    here = work / "local_modules"
    py, ct = run_pair(["report.py"], here, trace_dir)
    assert py.returncode == 0 and b"local types module" in py.stdout, py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    trace.check_balanced()
    for name in ("report.py", "types.py", "signal.py"):
        check_lines(trace, here / name)


def test_threading_is_imported_before_the_program_only_where_the_back_end_needs_it(tmp_path):
    """3.12+: nothing of the recorder's needs `threading` (sys.monitoring covers every
    thread), so the program finds it unimported at start, as under python, and imports it
    itself. 3.11: the back end sets `threading.settrace`, so the program finds `threading`
    already imported (docs/recording.md)."""
    here = tmp_path / "prog"
    here.mkdir()
    (here / "main.py").write_text(
        "import sys\n"
        "print('threading imported at start:', 'threading' in sys.modules)\n"
        "import threading\n"
        "t = threading.Thread(target=print, args=('in a thread',)); t.start(); t.join()\n"
    )
    py, ct = run_pair(["main.py"], here, tmp_path / "trace")
    assert py.stdout == b"threading imported at start: False\nin a thread\n", py.describe()
    if sys.version_info >= (3, 12):
        assert_same_behaviour(py, ct)
    else:
        assert ct.returncode == 0, ct.describe()
        assert ct.stdout == b"threading imported at start: True\nin a thread\n", ct.describe()


_START_STATE = (
    "import json, sys\n"
    "def origin(m):\n"
    "    o = getattr(getattr(m, '__spec__', None), 'origin', None)\n"
    "    return o if isinstance(o, str) else ''\n"
    "mods = dict(sys.modules)\n"
    "source = sorted(n for n, m in mods.items() if origin(m).endswith('.py'))\n"
    "unbound = sorted(n for n in mods if '.' in n and n.rpartition('.')[0] in mods\n"
    "                 and getattr(mods[n.rpartition('.')[0]], n.rpartition('.')[2], None) is not mods[n])\n"
    "print(json.dumps({'source': source, 'unbound': unbound}))\n"
    "import pkgutil, importlib.machinery\n"
    "print(importlib.machinery.FileFinder.__name__, pkgutil.ModuleInfo.__name__)\n"
)


@pytest.mark.parametrize("launch", ["ct-record", "python -m ct_recorder"])
def test_the_program_starts_with_the_modules_python_gives_it(tmp_path, launch):
    """The launcher drops what it imported so that the program imports it afresh, as under
    python; it must never leave a submodule behind a dropped package. `python -m
    ct_recorder` once left runpy's frozen `importlib.machinery` in `sys.modules` without
    its package, so the program's `import pkgutil` failed with "module 'importlib' has no
    attribute 'machinery'"."""
    here = tmp_path / "prog"
    here.mkdir()
    (here / "main.py").write_text(_START_STATE)
    env = clean_env()
    py = run([PYTHON, "main.py"], here, env=env)
    cmd = [CT_RECORD] if launch == "ct-record" else [PYTHON, "-m", "ct_recorder"]
    ct = run([*cmd, "--trace-dir", os.fspath(tmp_path / "trace"), "main.py"], here, env=env)
    assert py.returncode == 0, py.describe()
    assert ct.returncode == 0, ct.describe()
    py_state, py_rest = py.stdout.split(b"\n", 1)
    ct_state, ct_rest = ct.stdout.split(b"\n", 1)
    assert ct_rest == py_rest == b"FileFinder ModuleInfo\n", ct.describe()
    py_state, ct_state = json.loads(py_state), json.loads(ct_state)
    assert ct_state["unbound"] == py_state["unbound"] == [], ct.describe()
    # Python-source modules the program finds already imported: python's, plus the
    # recorder's own and, on 3.11, the `threading` the back end sets its hook on.
    own = {"threading", "_weakrefset"} if sys.version_info < (3, 12) else set()
    extra = {n for n in set(ct_state["source"]) - set(py_state["source"])
             if n.partition(".")[0] != "ct_recorder"}
    assert extra <= own, (extra, ct.describe())
    assert set(py_state["source"]) <= set(ct_state["source"]), ct.describe()


@pytest.mark.parametrize("kind", ["directory", "zip"])
def test_directory_or_zip_archive_as_the_script(work, trace_dir, kind):
    if kind == "zip":
        with zipfile.ZipFile(work / "app.zip", "w") as z:
            z.write(work / "appdir" / "__main__.py", "__main__.py")
        target, main_file = "app.zip", work / "app.zip" / "__main__.py"
    else:
        target, main_file = "appdir", work / "appdir" / "__main__.py"
    py, ct = run_pair([target, "arg"], work, trace_dir)
    assert py.returncode == 0, py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    trace.check_balanced()
    check_lines(trace, main_file, markers(work / "appdir" / "__main__.py"))
    assert trace.call_count("main", main_file) == 1


@pytest.mark.parametrize("trace_opt", [None, "rel-trace"], ids=["default-trace-dir", "relative-trace-dir"])
def test_program_that_changes_directory(work, trace_opt):
    """A relative trace directory means relative to where ct-record was started, even if
    the program later changes its working directory."""
    env = clean_env()
    py = run([PYTHON, "chdir_program.py"], work, env=env)
    opts = [] if trace_opt is None else ["--trace-dir", trace_opt]
    ct = run([CT_RECORD, *opts, "chdir_program.py"], work, env=env)
    assert py.returncode == 0, py.describe()
    assert_same_behaviour(py, ct)
    tdir = work / (trace_opt or "trace-out")
    for name in ("trace.ctc", "trace_metadata.json", "trace_paths.json"):
        assert (tdir / name).is_file(), f"{name} missing from {tdir}"
    trace = Trace(tdir)
    check_metadata(trace, program=str(work / "chdir_program.py"), args=[], workdir=work)
    trace.check_balanced()
    check_lines(trace, work / "chdir_program.py")
    assert trace.calls_with_results("write_report", work / "chdir_program.py") == [({"lines": ["alpha", "beta"]}, 2)]


def test_daemon_thread_still_running_at_exit(work, trace_dir):
    py, ct = run_pair(["daemon_thread.py"], work, trace_dir)
    assert py.returncode == 0 and py.stdout.endswith(b"daemon alive: True\n"), py.describe()
    assert_same_behaviour(py, ct)
    trace = Trace(trace_dir)
    file = work / "daemon_thread.py"
    daemon = {t for t, name, _ in trace.calls if name == "heartbeat"}
    assert len(daemon) == 1 and trace.thread_ids[0] not in daemon
    (daemon,) = daemon
    # The recording ended while the daemon thread was in its loop. (Thread.run, which
    # called it, is standard-library code: the builtin trace filter does not record it.)
    assert trace.open_calls(daemon) == ["heartbeat"]
    assert not trace.underflows
    for t in trace.thread_ids:
        if t != daemon:
            assert trace.open_calls(t) == [], t
    check_lines(trace, file)


def test_reader_closes_the_pipe_early(work, trace_dir):
    """`prog | head -1`: python gets BrokenPipeError writing stdout and reports it (in the
    traceback of the print, and again when stdout is flushed at exit)."""
    env = clean_env()
    results = []
    for argv in ([PYTHON, "many_lines.py", "5000"], [CT_RECORD, "--trace-dir", str(trace_dir), "many_lines.py", "5000"]):
        p = subprocess.Popen(
            argv, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            first = p.stdout.readline()
            p.stdout.close()  # the reader is gone before the program writes again
            p.stdin.write(b"go\n")
            p.stdin.close()
            err = p.stderr.read()
            p.wait(timeout=60)
        finally:
            p.kill() if p.poll() is None else None
        results.append((p.returncode, first, err))
    assert results[0][0] != 0 and b"BrokenPipeError" in results[0][2], results[0]
    assert results[1] == results[0]
    trace = Trace(trace_dir)
    trace.check_balanced()
    assert "BrokenPipeError" in {e.split(":")[0] for e in trace.exceptions}
