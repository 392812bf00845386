"""The JSON Schemas in docs/schemas/ hold for the artifacts of real runs: the bundled demo
project recorded under each primary engine (and with an injected shadow failure), and
`ct-rollout report --format json` over those runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"
BIN = Path(sys.executable).parent


def registry():
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validator(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry(),
                                           format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemas")
    shop = root / "shop"
    shutil.copytree(REPO / "examples" / "shop", shop,
                    ignore=shutil.ignore_patterns("runs", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODETRACER_", "PYTHON"))}
    cases = {
        "legacy": ([], {}),
        "globals": (["--module-name-from-globals"], {}),
        "module": ([], {"PYTHONPATH": "src"}),
        "shadow-error": ([], {"CT_RECORDER_TEST_SHADOW_FAULT": "error"}),
        # No trace: the schemas hold for what an evidence-only run writes too.
        "evidence-only": (["--evidence-only"], {}),
        # A trace cut at --max-trace-size: its metadata and summary have the cut's fields.
        "capped": (["--format", "json", "--max-trace-size", "2K"], {}),
    }
    dirs = []
    for name, (opts, extra) in cases.items():
        target = ["-m", "shop", "3"] if name == "module" else ["scripts/daily_report.py", "7"]
        done = subprocess.run(
            [str(BIN / "ct-record"), "--shadow-compare", "--quiet", *opts,
             "--trace-dir", str(root / name), *target],
            cwd=shop, env={**env, **extra}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        dirs.append(root / name)
    return dirs


def test_schemas_are_valid_draft_2020_12():
    assert len(list(SCHEMAS.glob("*.schema.json"))) == 5
    registry()


@pytest.mark.legacy_engine
def test_summary_and_metadata_of_real_runs(runs):
    summary, metadata = validator("summary"), validator("trace-metadata")
    for run in runs:
        summary.validate(json.loads((run / "shadow" / "summary.json").read_text()))
        metadata.validate(json.loads((run / "trace_metadata.json").read_text()))
    cut = [run.name for run in runs
           if json.loads((run / "trace_metadata.json").read_text())["summary"]["trace_size_cap"]["reached"]]
    assert cut == ["capped"], "one run covers the size cap's fields"
    assert "trace_cut" in json.loads((runs[-1] / "shadow" / "summary.json").read_text())["run"]


@pytest.mark.legacy_engine
def test_run_markers_of_real_runs(runs, tmp_path):
    v = validator("run")
    for run in runs:
        marker = json.loads((run / "run.json").read_text())
        v.validate(marker)
        assert marker["state"] == "finished"
    # A run killed before its stop leaves a 'running' marker, valid too.
    (tmp_path / "killed.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([str(BIN / "ct-record"), "-q", "--trace-dir", str(tmp_path / "t"), "killed.py"],
                   cwd=tmp_path, capture_output=True, timeout=120)
    marker = json.loads((tmp_path / "t" / "run.json").read_text())
    v.validate(marker)
    assert marker["state"] == "running"
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**marker, "state": "finished"})  # finished without finished_unix


@pytest.mark.legacy_engine
def test_every_divergence_line_of_real_runs(runs):
    v = validator("divergence")
    kinds = set()
    for run in runs:
        lines = (run / "shadow" / "divergences.ndjson").read_text().splitlines()
        assert lines, run
        for line in lines:
            record = json.loads(line)
            v.validate(record)
            kinds.add(record["kind"])
    # The runs cover more than one shape of record, the failure path included.
    assert {"filter_decision_changed", "root_ambiguity", "shadow_error"} <= kinds, kinds


@pytest.mark.legacy_engine
def test_report_json_over_real_runs(runs):
    done = subprocess.run([str(BIN / "ct-rollout"), "report", "--format", "json",
                           *map(str, runs)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    validator("report").validate(report)
    assert report["aggregate"]["top_unexpected"], "the shadow errors are unexpected"


@pytest.mark.legacy_engine
def test_the_schemas_reject_what_the_docs_do_not_allow(runs):
    record = json.loads((runs[0] / "shadow" / "divergences.ndjson").read_text().splitlines()[0])
    v = validator("divergence")
    for broken in (
        {**record, "kind": "renamed_kind"},
        {k: val for k, val in record.items() if k != "primary"},
        {**record, "primary": {**record["primary"], "engine": "third"}},
        {**record, "schema": "ct-shadow/divergence/v99"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            v.validate(broken)
    summary = json.loads((runs[0] / "shadow" / "summary.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        validator("summary").validate({**summary, "comparisons": -1})
    meta = json.loads((runs[-1] / "trace_metadata.json").read_text())
    cap = meta["summary"]["trace_size_cap"]
    for broken_cap in ({**cap, "events_written": None}, {**cap, "after_cut": "everything"},
                       {**cap, "limit_bytes": 0}):
        with pytest.raises(jsonschema.ValidationError):
            validator("trace-metadata").validate({**meta, "summary": {**meta["summary"],
                                                                      "trace_size_cap": broken_cap}})
