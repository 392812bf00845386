"""`make demo` as a new user sees it: the real examples/run-demo.sh on a copy of the bundled
project, with its real output and artifacts."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.legacy_engine  # every test here needs the legacy engine

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "examples", root / "examples",
                    ignore=shutil.ignore_patterns("runs", "__pycache__"))
    # The script runs the commands of the repository's venv, as `make demo` does.
    (root / ".venv").symlink_to(VENV)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODETRACER_", "RUST_LOG")) and k != "NO_COLOR"}
    done = subprocess.run(["bash", str(root / "examples" / "run-demo.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, root / "examples" / "shop" / "runs"


def records(runs, kind):
    out = []
    for log in sorted(runs.glob("*/shadow/divergences.ndjson")):
        for line in log.read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == kind:
                out.append(r)
    return out


def side(record, engine):
    return record["primary"] if record["primary"]["engine"] == engine else record["shadow"]


def test_filter_change_example_shows_the_names_each_filter_judged(demo):
    done, runs = demo
    changes = records(runs, "filter_decision_changed")
    assert len(changes) == 9, changes
    for r in changes:
        assert r["schema"] == "ct-shadow/divergence/v2"
        legacy, globals_ = side(r, "legacy"), side(r, "globals")
        # The legacy filters judged the path-shaped name of their own resolver (spec L7),
        # the globals filters `__name__`: that, not the labels, is why the rule flips.
        assert legacy["filter"]["module_name"] == "src.shop.pricing", r
        assert globals_["filter"]["module_name"] == "shop.pricing", r
        assert legacy["filter"]["rule"]["selector"] == "pkg:glob:*"
        assert globals_["filter"]["rule"] == {
            "source": str(runs.parent / ".codetracer" / "trace-filter.toml"),
            "index": 0,
            "selector": "pkg:glob:shop.pricing",
        }
    module = [r for r in changes if r["qualname"] == "<module>"]
    assert module and all(side(r, "legacy")["name"] == side(r, "globals")["name"] == "shop.pricing"
                          and r["cause"] is None and r["expected_by_adr"] for r in module)
    out = done.stdout
    section = out[out.index("FILTER DECISION CHANGES"):out.index("TOP UNEXPECTED")]
    assert "names:          legacy shop.pricing · globals shop.pricing" in section, section
    assert "filters judged: legacy src.shop.pricing · globals shop.pricing" in section, section


def test_demo_explains_its_failing_gates_and_what_comes_next(demo):
    out = demo[0].stdout
    assert "GATES: FAILED" in out
    tail = out[out.index("GATES: FAILED"):]
    assert "expected to FAIL: three small runs" in tail
    assert "What a real rollout does next" in tail
    assert "ct-rollout report --check" in tail
    # min_comparisons: sampling is at 100 %, so raising it is not offered as a way out.
    gate = out[out.index("min_comparisons"):out.index("max_unexpected")]
    assert "--shadow-sample" not in gate and "every code object was already compared" in \
        " ".join(gate.split()), gate


def test_runs_table_shows_each_runs_directory_and_id(demo):
    done, runs = demo
    out = done.stdout
    table = out[out.index("RUNS (3)"):].splitlines()
    assert table[1].split()[:2] == ["run", "id"] and table[1].split()[-1] == "directory"
    for name in ("script", "module", "runpy"):
        run_id = json.loads((runs / name / "shadow" / "summary.json").read_text())["run"]["run_id"]
        row = next(line for line in table if line.strip().startswith(run_id))
        assert row.split()[-1] == f"runs/{name}", row


def test_recorder_summaries_stand_apart_and_plurals_agree(demo):
    done, _ = demo
    err = done.stderr
    rules = [line for line in err.splitlines() if line.endswith(" ct-record ──")]
    # Each of the three runs frames its summary with a rule above and below.
    assert len(rules) == 6, err
    both = done.stdout + err
    assert not re.search(r"(?<![\d,.])1 (runs|comparisons|divergences|lines|code objects)\b",
                         both), both


def test_demo_records_the_default_format_and_summarises_it(demo):
    """The demo passes no --format: each run writes trace.ctc, each end-of-run summary names
    that file, and `python -m ct_recorder.summary` (the demo's last step) reads it."""
    done, runs = demo
    for name in ("script", "module", "runpy"):
        assert (runs / name / "trace.ctc").is_file(), name
        assert not (runs / name / "trace.json").exists(), name
        meta = json.loads((runs / name / "trace_metadata.json").read_text())
        assert meta["format"] == "compact"
        # The summary's trace line: the file the recorder wrote, and its events.
        assert re.search(rf"^trace:   /\S*/runs/{name}/trace\.ctc \({meta['summary']['events']} events\)$",
                         done.stderr, re.M), done.stderr
    out = done.stdout[done.stdout.index("One trace, summarised:"):]
    assert "status:    complete" in out, out
    events = json.loads((runs / "script" / "trace_metadata.json").read_text())["summary"]["events"]
    assert re.search(rf"^events:    \S*runs/script/trace\.ctc \(\d+ bytes, {events} events\)$", out, re.M), out
    assert "format compact" in out, out
