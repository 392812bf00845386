"""The guest promise (docs/architecture.md "Data flow"; src/tracer/shadow.rs): whatever the
shadow engine does — report an error, panic, or take its time — the traced program and the
trace are as they would be without `--shadow-compare`.

Faults are injected with the test-only switch `CT_RECORDER_TEST_SHADOW_FAULT`
(`error`, `panic`, `stall` = 20 ms per comparison). Each faulty shadow run is compared with
a primary-only run (same primary engine, no `--shadow-compare`): the program's stdout,
stderr and exit status must be byte-identical (the recorder's own messages go to
`--log-file`, its summary is silenced by `--quiet`), and the trace events identical after
`normalise_events` (object addresses in reprs and thread ids; see its docstring).
"""

import collections

import pytest

from ct_recorder.trace_reader import load_events
from shadow_support import dotted_tempdir, normalise_events, record, write_tree

GUEST = {
    "lib/__init__.py": "",
    "lib/shapes.py": """
        class Box:
            def __init__(self, n):
                self.n = n

            def area(self):
                return self.n * self.n


        class Base:
            pass


        def boxes(k):
            return [Box(i) for i in range(k)]


        def squares(k):
            for b in boxes(k):
                yield b.area()
        """,
    "guest.py": """
        import sys
        import threading

        from lib import shapes

        # One thread runs at a time, and the other only when it blocks: with a long switch
        # interval the GIL is never taken away from a running thread, so the interleaving of
        # the two threads' events (ThreadSwitch points) is the same on every run. Without it
        # the OS scheduler decides, and the trace may legitimately differ.
        sys.setswitchinterval(30.0)


        def worker(out, n):
            out.append(sum(shapes.squares(n)))


        def risky(x):
            if x > 2:
                raise ValueError(f"too big: {x}")
            return x


        def make_counter():
            count = 0

            def bump():
                nonlocal count
                count += 1
                return count
            return bump


        results = []
        t = threading.Thread(target=worker, args=(results, 5))
        t.start()
        t.join()
        print("areas", results)

        plain = shapes.Base()
        same = plain
        bump = make_counter()
        print("bumps", bump(), bump(), same is plain)
        try:
            risky(5)
        except ValueError as e:
            print("caught:", e, file=sys.stderr)
        print("areas again", list(shapes.squares(4)))
        sys.stdout.flush()
        print("about to fail", file=sys.stderr)
        risky(7)
        """,
}


@pytest.fixture(scope="module")
def guest():
    with dotted_tempdir() as tmp:
        proj = write_tree(tmp / "proj", GUEST)
        yield tmp, proj


def run_guest(tmp, proj, name, flags, fault=None):
    log = tmp / f"{name}.log"
    env = {"CT_RECORDER_TEST_SHADOW_FAULT": fault} if fault else None
    run = record(["--quiet", "--log-file", log, *flags, "guest.py"], cwd=proj,
                 trace_dir=tmp / name, env=env, timeout=180)
    return run, log


PRIMARY_FLAGS = {"legacy": [], "globals": ["--module-name-from-globals"]}
SHADOW_OF = {"legacy": "globals", "globals": "legacy"}


@pytest.fixture(scope="module")
def baselines(guest):
    """The primary-only run for each primary engine."""
    tmp, proj = guest
    out = {}
    for primary, flags in PRIMARY_FLAGS.items():
        run, log = run_guest(tmp, proj, f"base_{primary}", flags)
        assert run.returncode == 1, run.stderr
        assert "Traceback" in run.stderr and "ValueError: too big: 7" in run.stderr
        assert run.stdout == "areas [30]\nbumps 1 2 True\nareas again [0, 1, 4, 9]\n"
        assert not (tmp / f"base_{primary}" / "shadow" / "divergences.ndjson").exists()
        out[primary] = (run, load_events(tmp / f"base_{primary}"))
    return out


def test_baseline_trace_is_reproducible(guest, baselines):
    """The normalisation is enough: two primary-only runs give the same events, and the
    events do contain what it normalises (so the comparisons below are not vacuous)."""
    tmp, proj = guest
    run, _ = run_guest(tmp, proj, "base_again", [])
    base_run, base_events = baselines["legacy"]
    assert (run.returncode, run.stdout, run.stderr) == (base_run.returncode, base_run.stdout, base_run.stderr)
    again = load_events(tmp / "base_again")
    assert normalise_events(again) == normalise_events(base_events)
    text = repr(base_events)
    assert "object at 0x" in text
    kinds = collections.Counter(next(iter(e)) for e in base_events)
    assert kinds["ThreadStart"] == 2, kinds
    names = [e["Function"]["name"] for e in base_events if "Function" in e]
    assert {"worker", "risky", "make_counter.<locals>.bump", "squares", "Box.area"} <= set(names)


@pytest.mark.parametrize("primary", ["legacy", "globals"])
@pytest.mark.parametrize("fault", ["error", "panic", "stall"])
@pytest.mark.legacy_engine
def test_faulty_shadow_changes_nothing(guest, baselines, fault, primary):
    tmp, proj = guest
    name = f"{fault}_{primary}"
    run, log = run_guest(tmp, proj, name, ["--shadow-compare", *PRIMARY_FLAGS[primary]], fault)
    base_run, base_events = baselines[primary]

    # The program: same output, same status.
    assert run.stdout == base_run.stdout
    assert run.stderr == base_run.stderr
    assert run.returncode == base_run.returncode == 1

    # The trace: same events.
    events = load_events(tmp / name)
    assert normalise_events(events) == normalise_events(base_events)

    # The shadow side did run and its trouble was counted, not hidden.
    shadow = SHADOW_OF[primary]
    a = run.artifacts
    s, m = a.summary, a.metrics
    assert s["comparisons"] > 0
    assert s["run"]["exit_code"] == 1
    assert s["run"]["primary"] == primary and s["run"]["shadow"] == shadow
    if fault in ("error", "panic"):
        assert m.get_value("ct_shadow_engine_errors_total", engine=shadow) == s["comparisons"]
        assert m.get_value("ct_shadow_engine_errors_total", engine=primary) == 0
        assert s["engine_errors"].get(shadow) == s["comparisons"]
        assert m.get_value("ct_module_name_resolutions_total", engine=shadow, outcome="error") == s["comparisons"]
        divs = a.divergences
        assert len(divs) == s["comparisons"]
        assert {d["kind"] for d in divs} == {"shadow_error"}
        assert all(d["expected_by_adr"] is False and d["severity"] == "medium" for d in divs)
        assert all(d["shadow"]["error"] and d["primary"]["error"] is None for d in divs)
        marker = "injected shadow-engine panic" if fault == "panic" else "injected shadow-engine error"
        assert all(marker in d["shadow"]["error"] for d in divs)
        assert m.get_value("ct_shadow_divergences_total", kind="shadow_error", severity="medium") == s["comparisons"]
        assert m.get_value("ct_shadow_divergences_total", kind="primary_error", severity="high") == 0
        # The recorder said so, in its log file (not on the program's stderr).
        assert marker in log.read_text()
    else:
        assert m.total("ct_shadow_engine_errors_total") == 0
        # Every comparison took the injected 20 ms.
        t = s["timings"][shadow]
        assert t["count"] == s["comparisons"]
        assert t["total_seconds"] >= 0.02 * s["comparisons"] * 0.99
    # The trace metadata is the primary's.
    assert m.get_value("ct_recorder_info", version=s["run"]["recorder_version"],
                       primary=primary, shadow=shadow) == 1


@pytest.mark.legacy_engine
def test_unwritable_shadow_artifacts_do_not_stop_the_program(guest, baselines):
    """docs/metrics.md: failed writes of shadow artifacts are counted and "the shadow never
    stops the recording for these"; the guest promise says the same for every shadow
    failure. Here `TRACE_DIR/shadow` is taken by a plain file, so no shadow artifact can be
    written, in a trace directory that holds the trace of an earlier run: the program must
    still run as without --shadow-compare, and the trace directory must hold its trace."""
    tmp, proj = guest
    name = "occupied"
    base_run, base_events = baselines["legacy"]
    first, _ = run_guest(tmp, proj, name, [])
    assert first.returncode == base_run.returncode
    (tmp / name / "shadow").write_text("not a directory\n")

    run, log = run_guest(tmp, proj, name, ["--shadow-compare"])
    assert run.returncode == base_run.returncode, run.stderr
    assert run.stdout == base_run.stdout
    program_stderr = "".join(
        line for line in run.stderr.splitlines(keepends=True) if not line.startswith("ct-record: ")
    )
    assert program_stderr == base_run.stderr
    assert normalise_events(load_events(tmp / name)) == normalise_events(base_events)
