"""The streaming readers on real recordings: both formats give the same events, a kind
filter gives exactly the events of those kinds, and the summary's counts match the events."""

import json
import re
import subprocess

import pytest

from ct_recorder import _native
from ct_recorder.trace_reader import TraceEvents, load_events
from tracecheck import CT_RECORD, TIMEOUT, clean_env

PROGRAM = '''\
import threading

def greet(name, times=2):
    return [f"hi {name}"] * times

class Box:
    def __init__(self, v):
        self.v = {"v": v, "pair": (v, str(v))}

def worker(n):
    return sum(len(greet(str(i))) for i in range(n))

t = threading.Thread(target=worker, args=(50,))
t.start(); t.join()  # one line, the thread run whole: both runs interleave alike
worker(100)
Box(3)
try:
    raise ValueError("boom")
except ValueError:
    pass
'''


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    work = tmp_path_factory.mktemp("reader")
    (work / "prog.py").write_text(PROGRAM)
    out = {}
    for fmt in ("json", "binary", "compact"):
        subprocess.run(
            [CT_RECORD, "--format", fmt, "--trace-dir", str(work / fmt), "prog.py"],
            cwd=work, check=True, capture_output=True, env=clean_env(), timeout=TIMEOUT,
        )
        out[fmt] = work / fmt
    return out


def cut_copies(trace_dir, fmt, fractions, tmp_path):
    """`(fraction, path)` of copies of a run's events file cut at each fraction of its
    bytes, as a killed run leaves it (each in its own directory under `tmp_path`)."""
    name = {"json": "trace.json", "binary": "trace.bin", "compact": "trace.ctc"}[fmt]
    data = (trace_dir / name).read_bytes()
    for frac in fractions:
        cut = tmp_path / f"{frac}" / name
        cut.parent.mkdir()
        cut.write_bytes(data[: int(len(data) * frac)])
        yield frac, cut


def run_independent(events):
    """The events with what differs between two runs of the program made uniform: object
    addresses in reprs, thread ids (numbered in order of appearance), and where the
    scheduler let a thread take the GIL without running any recorded code: consecutive
    switches count as the last one, and a switch back to the thread already running is
    dropped (the main thread waking in `t.start()` while the worker runs lands at a
    different event in each run)."""
    threads = {}
    out = []
    current, pending = None, None
    for e in events:
        for kind in ("ThreadStart", "ThreadSwitch"):
            if isinstance(e, dict) and kind in e:
                e = {kind: threads.setdefault(e[kind], len(threads))}
        if isinstance(e, dict) and "ThreadSwitch" in e:
            pending = e["ThreadSwitch"]
            continue
        if pending is not None and pending != current:
            out.append(json.dumps({"ThreadSwitch": pending}))
            current = pending
        pending = None
        if isinstance(e, dict) and "ThreadStart" in e:
            current = e["ThreadStart"]
        out.append(re.sub(r"0x[0-9a-f]+", "0x?", json.dumps(e)))
    return out


def test_every_format_reads_back_the_same_events(traces):
    json_events = load_events(traces["json"])
    assert len(json_events) > 1000
    for fmt in ("binary", "compact"):
        assert run_independent(json_events) == run_independent(load_events(traces[fmt])), fmt
    kinds = {next(iter(e)) if isinstance(e, dict) else e for e in json_events}
    assert {"Path", "Function", "Call", "Return", "Step", "Value", "Type", "ThreadStart", "Event"} <= kinds


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_a_kind_filter_gives_exactly_those_events(traces, fmt):
    everything = load_events(traces[fmt])
    wanted = {"Function", "Call", "ThreadSwitch"}
    filtered = TraceEvents(traces[fmt], kinds=wanted)
    got = list(filtered)
    assert got == [e for e in everything if isinstance(e, dict) and next(iter(e)) in wanted]
    assert filtered.complete is True


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_the_summary_scan_counts_what_the_events_hold(traces, fmt):
    events = load_events(traces[fmt])
    scan = _native.scan_trace(str(traces[fmt]))
    assert scan["events"] == len(events) and scan["complete"] is True
    counts = {}
    for e in events:
        k = next(iter(e)) if isinstance(e, dict) else e
        counts[k] = counts.get(k, 0) + 1
    assert dict(scan["kinds"]) == counts
    functions = [e["Function"]["name"] for e in events if "Function" in e]
    calls = {}
    for e in events:
        if "Call" in e:
            name = functions[e["Call"]["function_id"]]
            calls[name] = calls.get(name, 0) + 1
    assert dict(scan["calls"]) == calls
    assert calls["greet"] == 150
    assert scan["paths"] == [e["Path"] for e in events if "Path" in e]


VALUES_PROGRAM = '''\
class Thing:
    pass

def take(*values, **named):
    return values

big = 2 ** 80
take(0, -1, 255, -(2 ** 63), 2 ** 63 - 1, big, -big)
take(1.5, -0.0, float("nan"), float("inf"), float("-inf"), 1e300)
take(True, False, None, "é \\"q\\" \\n\\t", b"\\x00b'", "x" * 600)
take([1, [2, [3, [4, [5]]]]], (1, "a"), {"k": (1, 2)}, {3}, frozenset(), list(range(40)))
take(Thing(), range(3), key="v", other=[None])
'''


def test_trace_events_are_what_json_loads_makes_of_the_trace_file(tmp_path):
    """`TraceEvents` gives exactly what Python's own `json` module makes of the recorder's
    JSON file, for every kind of value the encoder writes (scalars, big ints, non-finite
    floats, strings, bytes, nested and truncated containers, objects); and the file is
    one the format's serde reader decodes (a NaN once made it unreadable)."""
    (tmp_path / "prog.py").write_text(VALUES_PROGRAM)
    subprocess.run(
        [CT_RECORD, "--format", "json", "--trace-dir", str(tmp_path / "t"), "prog.py"],
        cwd=tmp_path, check=True, capture_output=True, env=clean_env(), timeout=TIMEOUT,
    )
    with open(tmp_path / "t" / "trace.json", encoding="utf-8") as f:
        expected = json.load(f)
    got = list(TraceEvents(tmp_path / "t", chunk=7))
    assert got == expected
    # The summary decodes every Call record with serde: it must not fail on any value.
    assert _native.scan_trace(str(tmp_path / "t"))["complete"] is True
    # The comparison covered what it is meant to: calls with many kinds of values.
    kinds = set()

    def walk(v):
        kinds.add(v["kind"])
        for item in v.get("elements", ()):
            walk(item)

    for e in got:
        if isinstance(e, dict) and "Call" in e:
            for a in e["Call"]["args"]:
                walk(a["value"])
    assert {"Int", "BigInt", "Float", "Bool", "None", "String", "Raw", "Sequence", "Tuple"} <= kinds


# Values the hot path encodes in place (exact None, bool, int, finite float), around where
# it changes method: one 30-bit digit (read from the object) or more (through the C API),
# and the 64-bit edge (a BigInt record past it).
SCALARS = [
    0, 1, -1, 7, -12345, 2 ** 30 - 1, -(2 ** 30 - 1), 2 ** 30, -(2 ** 30), 2 ** 31,
    2 ** 62, 2 ** 63 - 1, -(2 ** 63), True, False, None, 1.5, -0.0, 1e300, -2.5e-300,
]


def test_scalar_arguments_and_returns_record_their_exact_values(tmp_path):
    """Each scalar passed to a one-argument function is recorded as that argument and as
    the return value, with the kind and the value Python has, in the default format; an
    int past 64 bits and an int subclass take the general path."""
    program = (
        "class Sub(int):\n    pass\n\n"
        "def ident(x):\n    return x\n\n"
        f"for v in {SCALARS!r} + [2 ** 64, -(2 ** 64), Sub(5)]:\n    ident(v)\n"
    )
    (tmp_path / "prog.py").write_text(program)
    subprocess.run(
        [CT_RECORD, "--trace-dir", str(tmp_path / "t"), "prog.py"],
        cwd=tmp_path, check=True, capture_output=True, env=clean_env(), timeout=TIMEOUT,
    )
    events = list(TraceEvents(tmp_path / "t"))
    types = [e["Type"]["lang_type"] for e in events if isinstance(e, dict) and "Type" in e]
    functions = [e["Function"]["name"] for e in events if isinstance(e, dict) and "Function" in e]
    args, returns, in_ident = [], [], False
    for e in events:
        if not isinstance(e, dict):
            continue
        if "Call" in e:
            in_ident = functions[e["Call"]["function_id"]] == "ident"
            if in_ident:
                args.append(e["Call"]["args"][0]["value"])
        elif "Return" in e and in_ident:
            returns.append(e["Return"]["return_value"])
            in_ident = False

    def expected(v):
        if v is None:
            return {"kind": "None", "type": "None"}
        if isinstance(v, bool):
            return {"kind": "Bool", "b": v, "type": "bool"}
        if isinstance(v, float):
            return {"kind": "Float", "f": v, "type": "float"}
        return {"kind": "Int", "i": v, "type": "int"}

    def seen(rec):
        out = {k: rec[k] for k in ("kind", "i", "b", "f") if k in rec}
        out["type"] = types[rec["type_id"]]
        return out

    n = len(SCALARS)
    assert len(args) == len(returns) == n + 3
    for v, a, r in zip(SCALARS, args, returns):
        assert seen(a) == expected(v), v
        assert seen(r) == expected(v), v
        if isinstance(v, float):  # -0.0 == 0.0: the sign must survive too
            assert str(a["f"]) == str(v)
    for a in args[n:n + 2]:
        assert a["kind"] == "BigInt" and types[a["type_id"]] == "int"
    assert args[n]["negative"] is False and args[n + 1]["negative"] is True
    assert seen(args[n + 2]) == {"kind": "Int", "i": 5, "type": "Sub"}


def exact(v):
    """`v` with every type and every dict's key order spelled out, so that `==` tells
    `1` from `1.0` and `True`, and `{"a":…, "b":…}` from `{"b":…, "a":…}`."""
    if isinstance(v, dict):
        return ("dict", [(k, exact(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [exact(x) for x in v])
    return (type(v).__name__, repr(v))


def json_path(path, chunk=4096, kinds=None):
    """The reader's earlier path: each chunk's JSON text through `json.loads`."""
    chunks = _native.EventChunks(str(path), chunk, sorted(kinds) if kinds else None, as_json=True)
    events = [e for text in chunks for e in json.loads(text)]
    return events, chunks.complete, chunks.end_reason


def dict_path(path, chunk=4096, kinds=None):
    reader = TraceEvents(path, chunk=chunk, kinds=kinds)
    events = list(reader)
    return events, reader.complete, reader.end_reason


REAL_PROGRAMS = ["classes_decorators.py", "exceptions_caught.py", "generators.py", "async_gather.py"]


@pytest.fixture(scope="module")
def many_traces(tmp_path_factory, traces):
    """Traces of real programs in every format: this module's two and a few of the
    fixture programs."""
    from pathlib import Path

    work = tmp_path_factory.mktemp("dicts")
    (work / "values.py").write_text(VALUES_PROGRAM)
    programs = Path(__file__).parent / "programs"
    for name in REAL_PROGRAMS:
        (work / name).write_text((programs / name).read_text())
    out = {("reader", fmt): d for fmt, d in traces.items()}
    for name in ["values.py", *REAL_PROGRAMS]:
        for fmt in ("json", "binary", "compact"):
            d = work / f"{name}-{fmt}"
            subprocess.run(
                [CT_RECORD, "--format", fmt, "--trace-dir", str(d), name],
                cwd=work, capture_output=True, env=clean_env(), timeout=TIMEOUT,
            )
            out[(name, fmt)] = d
    return out


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_python_data_built_in_rust_is_what_json_loads_made(many_traces, fmt):
    """The events `TraceEvents` builds in Rust are exactly (types, values, key order) what
    `json.loads` of the JSON text path gives, for every program, in chunks small enough
    that a call's arguments and the call land in different chunks, and with kind filters
    that keep a call but not its `Value` events (and the reverse)."""
    for (name, f), d in many_traces.items():
        if f != fmt:
            continue
        want, complete, reason = json_path(d)
        assert len(want) > 50, name
        for chunk in (4096, 7):
            got = dict_path(d, chunk=chunk)
            assert [exact(e) for e in got[0]] == [exact(e) for e in want], (name, chunk)
            assert got[1:] == (complete, reason) == (True, None), name
        for kinds in ({"Call"}, {"Value", "Return"}, {"Path", "Function", "Type", "Event"}):
            for chunk in (4096, 1):
                got = dict_path(d, chunk=chunk, kinds=kinds)[0]
                assert [exact(e) for e in got] == [exact(e) for e in json_path(d, kinds=kinds)[0]], (name, kinds)
                assert got, (name, kinds)


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_a_cut_events_file_reads_the_same_prefix_both_ways(many_traces, tmp_path, fmt):
    """A killed run's events file (cut mid-record): both paths read the same events and
    say the run is incomplete, for the same reason."""
    src = many_traces[("values.py", fmt)]
    for frac, cut in cut_copies(src, fmt, (0.3, 0.77), tmp_path):
        want = json_path(cut)
        got = dict_path(cut, chunk=5)
        assert [exact(e) for e in got[0]] == [exact(e) for e in want[0]], frac
        assert got[1] is False and got[1:] == want[1:], frac


def test_the_collector_is_left_as_the_program_had_it(traces):
    """Building a chunk pauses Python's cyclic collector; it is on again after each chunk,
    and stays off when the program had switched it off."""
    import gc

    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            for i, _ in enumerate(TraceEvents(traces["compact"], chunk=3)):
                if i % 97 == 0:
                    assert gc.isenabled() is enabled
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_json_events_the_builders_leave_to_json_loads(tmp_path):
    """Events the Rust JSON parser does not make (a lone surrogate escape, an int past 64
    bits, `NaN`, another layout) come out as `json.loads` makes them."""
    text = (
        '[{"Path":"\\ud800x"},\n {"DropVariable": 123456789012345678901234567890},\n'
        '{"Asm":["a\\u00e9\\ud83d\\ude00\\n", NaN, -0.0, 1e400, 0]},\n'
        '{ "Step" : { "path_id" : 0 , "line" : -5 } },\n"DropLastStep",\n'
        '{"Return":{"return_value":{"kind":"Float","f":1.5,"type_id":2}}}]\n'
    )
    (tmp_path / "trace.json").write_text(text)
    got = dict_path(tmp_path / "trace.json", chunk=2)
    assert [exact(e) for e in got[0]] == [exact(e) for e in json.loads(text)]
    assert got[1:] == (True, None)


def kind_counts_and_calls(events):
    """What the summary scan should find in `events`: counts per kind, calls per function."""
    counts, functions, calls = {}, [], {}
    for e in events:
        k = next(iter(e)) if isinstance(e, dict) else e
        counts[k] = counts.get(k, 0) + 1
        if k == "Function":
            functions.append(e["Function"]["name"])
        elif k == "Call":
            name = functions[e["Call"]["function_id"]]
            calls[name] = calls.get(name, 0) + 1
    return counts, calls


def test_json_records_read_in_place_match_the_scan_across_buffer_ends(tmp_path):
    """The frequent JSON records are read in place, without a scan for their end: across
    the ends of the read buffer (64 KiB), next to strings that hold what ends a record
    (`}`, `]`, `,`, quotes, a whole step's text), in other layouts, whole and cut, with
    kind filters; and the summary scan counts them as the events are."""
    lines = ['{"Path":"/p/a \\"}]},\\n{\\"Step\\":{\\"path_id\\":0,\\"line\\":1}}"}',
             '{"Function":{"path_id":0,"line":1,"name":"f},{"}}', '{"Function":{"path_id":0,"line":2,"name":"g"}}']
    for i in range(12000):
        v = [f'{{"kind":"Int","i":{-i * 37},"type_id":1}}', '{"kind":"None","type_id":2}',
             f'{{"kind":"Bool","b":{"true" if i % 2 else "false"},"type_id":3}}',
             f'{{"kind":"Float","f":{i}.5,"type_id":4}}',
             '{"kind":"String","text":"}]},{\\"Step\\":{\\"path_id\\":1,\\"line\\":2}}","type_id":5}'][i % 5]
        arg = f'{{"variable_id":{i % 40},"value":{v}}}'
        lines.append(f'{{"Value":{arg}}}')
        lines.append(f'{{"Call":{{"function_id":{i % 2},"args":[{",".join([arg] * (i % 3))}]}}}}')
        lines.append(f'{{"Step":{{"path_id":0,"line":{i * 7919 % 100003}}}}}')
        if i % 101 == 0:
            lines.append('{ "Step" : { "path_id" : 0 , "line" : 5 } }')  # not serde's layout
        lines.append(f'{{"Return":{{"return_value":{v}}}}}')
    text = "[" + ",\n".join(lines) + "]\n"
    assert len(text) > 10 * 65536
    path = tmp_path / "trace.json"
    path.write_text(text)
    want = json.loads(text)
    for chunk in (4096, 256, 7):
        got = dict_path(path, chunk=chunk)
        assert [exact(e) for e in got[0]] == [exact(e) for e in want], chunk
        assert got[1:] == (True, None)
    for kinds in ({"Call"}, {"Step", "Return"}, {"Value"}, {"Path", "Function"}):
        got = dict_path(path, chunk=100, kinds=kinds)[0]
        assert [exact(e) for e in got] == [exact(e) for e in want if next(iter(e)) in kinds], kinds
    scan = _native.scan_trace(str(path))
    counts, calls = kind_counts_and_calls(want)
    assert (dict(scan["kinds"]), dict(scan["calls"]), scan["events"]) == (counts, calls, len(want))
    assert scan["paths"] == [want[0]["Path"]]
    data = text.encode()
    for n in (10, 200, 65536 - 30, 65536, 65536 + 17, 3 * 65536 + 1, len(data) // 2, len(data) - 3):
        cut = tmp_path / f"cut{n}" / "trace.json"
        cut.parent.mkdir()
        cut.write_bytes(data[:n])
        slow = json_path(cut)
        got = dict_path(cut, chunk=64)
        assert [exact(e) for e in got[0]] == [exact(e) for e in slow[0]], n
        assert got[1] is False and got[1:] == slow[1:], n
        assert _native.scan_trace(str(cut))["events"] == len(slow[0]), n


FIB = '''\
import sys
def fib(n, flag=None, scale=1.0):
    return n if n < 2 else fib(n - 1, True) + fib(n - 2, False, 2.5)
print(fib(int(sys.argv[1])))
'''


@pytest.fixture(scope="module")
def fib_traces(tmp_path_factory):
    """A call-heavy program (int, bool, None and float values) long enough that records
    cross the readers' 64 KiB buffers many times, in every format."""
    work = tmp_path_factory.mktemp("fib")
    (work / "fib.py").write_text(FIB)
    out = {}
    for fmt in ("json", "binary", "compact"):
        subprocess.run(
            [CT_RECORD, "--format", fmt, "--trace-dir", str(work / fmt), "fib.py", "15"],
            cwd=work, check=True, capture_output=True, env=clean_env(), timeout=TIMEOUT,
        )
        out[fmt] = work / fmt
    return out


@pytest.mark.parametrize("fmt", ["json", "binary", "compact"])
def test_a_call_heavy_trace_reads_the_same_both_ways_whole_and_cut(fib_traces, tmp_path, fmt):
    """On a call-heavy trace (its records read in place), `TraceEvents` gives what the JSON
    text path gives, in the default chunk and odd ones, whole and cut; and the summary scan
    counts what the events hold."""
    d = fib_traces[fmt]
    want = json_path(d)
    assert len(want[0]) > 10000 and want[1] is True
    for chunk in (None, 1000, 3):
        reader = TraceEvents(d) if chunk is None else TraceEvents(d, chunk=chunk)
        got = list(reader)
        assert [exact(e) for e in got] == [exact(e) for e in want[0]], chunk
        assert (reader.complete, reader.end_reason) == (True, None)
    scan = _native.scan_trace(str(d))
    counts, calls = kind_counts_and_calls(want[0])
    assert (dict(scan["kinds"]), dict(scan["calls"]), scan["events"]) == (counts, calls, len(want[0]))
    assert calls["fib"] > 1000
    for frac, cut in cut_copies(d, fmt, (0.21, 0.5, 0.93), tmp_path):
        slow = json_path(cut)
        got = dict_path(cut, chunk=300)
        assert [exact(e) for e in got[0]] == [exact(e) for e in slow[0]], frac
        assert got[1] is False and got[1:] == slow[1:], frac
        assert _native.scan_trace(str(cut))["events"] == len(slow[0]), frac
