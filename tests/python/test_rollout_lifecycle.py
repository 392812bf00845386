"""`ct-rollout status`, `flip-default` and `delete-legacy` as a user runs them: the real
`ct-rollout` on a scratch `git clone` of this repository, checking files and exit codes.

Two tests build a recorder from the clone (CARGO_TARGET_DIR shared with the main build and
with each other, so only the recorder crate itself is compiled again): one after
`flip-default` alone (the globals engine by default, every opt-out still selecting legacy),
one after `delete-legacy` (checked with `cargo check`, then recording as `<__main__>`,
refusing legacy with status 2, and the clone's own Python tests of the legacy engine
skipped with the recorder's reason)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from ct_recorder.trace_reader import load_events

# The lifecycle carries the legacy engine to its deletion: every test records shadow
# evidence, flips or deletes the engine, so none can run on a build that no longer has it.
pytestmark = pytest.mark.legacy_engine

REPO = Path(__file__).resolve().parents[2]
BIN = os.path.dirname(sys.executable)
CT_RECORD = os.path.join(BIN, "ct-record")
CT_ROLLOUT = os.path.join(BIN, "ct-rollout")
ADR = "docs/adr/0016-module-names-from-globals.md"


def _run(cmd, cwd, env=None, timeout=120, stdin=subprocess.DEVNULL):
    full_env = dict(os.environ)
    full_env.pop("CT_ROLLOUT_TEST_FAIL_AFTER", None)
    for key, value in (env or {}).items():  # None: the variable is not set
        full_env.pop(key, None)
        if value is not None:
            full_env[key] = value
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=stdin)


def _rollout(*args, cwd, env=None):
    return _run([CT_ROLLOUT, *map(str, args)], cwd, env)


def _tree(root):
    """Every file of the clone (outside .git) with a digest of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or not path.is_file():
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _changed(root):
    done = _run(["git", "status", "--porcelain", "--untracked-files=all"], root)
    assert done.returncode == 0, done.stderr
    return sorted(line[3:] for line in done.stdout.splitlines())


@pytest.fixture
def scratch(tmp_path):
    """A clone of the committed repository (no target/, no .venv)."""
    clone = tmp_path / "repo"
    done = _run(["git", "clone", "--quiet", str(REPO), str(clone)], tmp_path)
    assert done.returncode == 0, done.stderr
    return clone


def _gates(clone, **gates):
    """Sets gates in the clone's manifest (the text keeps its comments)."""
    path = clone / "rollout.toml"
    text = path.read_text()
    for key, value in gates.items():
        lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    _run(["git", "commit", "--quiet", "-am", "test gates"], clone,
         env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
              "GIT_COMMITTER_EMAIL": "t@t"})


def _shadow_run(tmp_path, name, env=None):
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "app.py").write_text("def f(x):\n    return x + 1\n\nprint(f(1))\n")
    run_dir = tmp_path / name
    done = _run([CT_RECORD, "--shadow-compare", "--quiet", "--trace-dir", str(run_dir), "app.py"], proj, env)
    assert done.returncode == 0, done.stderr
    return run_dir


def _run_id(run_dir):
    return json.loads((run_dir / "shadow" / "summary.json").read_text())["run"]["run_id"]


def _manifest(clone):
    return tomllib.loads((clone / "rollout.toml").read_text())


def _forced_flip(clone):
    done = _rollout("flip-default", "--force", "--reason", "staging soak done", "--yes", cwd=clone)
    assert done.returncode == 0, done.stderr
    return done


def test_status_without_and_with_evidence(scratch, tmp_path):
    done = _rollout("status", cwd=scratch / "src")  # found upward
    assert done.returncode == 0, done.stderr
    assert "phase:        shadow" in done.stdout
    assert "legacy engine" in done.stdout
    assert "history:      (none)" in done.stdout
    run = _shadow_run(tmp_path, "run1")
    data = json.loads(_rollout("status", "--format", "json", run, cwd=scratch).stdout)
    assert data["schema"] == "ct-rollout-status/1"
    assert (data["phase"], data["default"], data["fresh_build_engine"]) == ("shadow", False, "legacy")
    assert data["runs"] == [_run_id(run)]
    gates = {g["name"]: g for g in data["gates"]}
    assert gates["min_runs"]["passed"] is False and gates["min_runs"]["actual"] == 1
    assert data["next"] is None and "min_runs" in data["why"]
    # The manifest is read at run time: lenient gates make the flip the next step.
    _gates(scratch, min_runs=1, min_comparisons=1, max_unexpected_divergence_rate=1)
    data = json.loads(_rollout("status", "--format", "json", run, cwd=scratch).stdout)
    assert data["next"] == f"ct-rollout flip-default {run}"
    # No repository: a clear error, status 2.
    (tmp_path / "empty").mkdir()
    none = _rollout("status", cwd=tmp_path / "empty")
    assert none.returncode == 2 and "no rollout.toml" in none.stderr
    bad = _rollout("status", "--repo", tmp_path / "empty", cwd=scratch)
    assert bad.returncode == 2 and "--repo" in bad.stderr


def test_flip_refused_on_failing_gates_changes_nothing(scratch, tmp_path):
    before = _tree(scratch)
    run = _shadow_run(tmp_path, "run1")
    done = _rollout("flip-default", "--yes", run, cwd=scratch)
    assert done.returncode == 1
    assert "gate min_runs failed" in done.stderr and "gate min_comparisons failed" in done.stderr
    assert "--force --reason" in done.stderr
    assert _tree(scratch) == before and _changed(scratch) == []


def test_forced_flip_diff_files_audit_and_idempotence(scratch, tmp_path):
    run = _shadow_run(tmp_path, "run1")
    before = _tree(scratch)
    # --force needs a reason, and a blank one is no reason: usage errors.
    assert _rollout("flip-default", "--force", "--yes", run, cwd=scratch).returncode == 2
    blank = _rollout("flip-default", "--force", "--reason", "  ", "--yes", run, cwd=scratch)
    assert blank.returncode == 2 and "--reason" in blank.stderr
    # Not a terminal and no --yes: refused after showing the diff.
    asked = _rollout("flip-default", "--force", "--reason", "r", run, cwd=scratch)
    assert asked.returncode == 1 and "--yes" in asked.stderr
    dry = _rollout("flip-default", "--force", "--reason", "r", "--dry-run", run, cwd=scratch)
    assert dry.returncode == 0 and "+phase = \"globals-default\"" in dry.stdout
    assert _tree(scratch) == before

    done = _rollout("flip-default", "--force", "--reason", "staging soak done", "--yes", run, cwd=scratch)
    assert done.returncode == 0, done.stderr
    for path in ("rollout.toml", "CHANGELOG.md", ADR):
        assert f"--- a/{path}" in done.stdout
    assert '-phase = "shadow"' in done.stdout and "+default = true" in done.stdout
    assert _changed(scratch) == sorted(["CHANGELOG.md", "rollout.toml", ADR])
    m = _manifest(scratch)
    assert (m["rollout"]["phase"], m["flag"]["default"]) == ("globals-default", True)
    [entry] = m["history"]
    assert (entry["action"], entry["from"], entry["to"]) == ("flip-default", "shadow", "globals-default")
    assert entry["forced"] is True and entry["reason"] == "staging soak done"
    assert entry["runs"] == 1 and entry["run_ids"] == [_run_id(run)]
    assert entry["evidence_digest"] == "sha256:" + hashlib.sha256(f"{_run_id(run)}\n".encode()).hexdigest()
    assert entry["gates"]["min_runs"] == {"passed": False, "actual": 1, "threshold": 5}
    assert entry["time"].endswith("Z")
    # Comments and layout kept: only the edited lines and the appended entry differ.
    diff = _run(["git", "diff", "--numstat", "rollout.toml"], scratch).stdout.split()
    assert diff[1] == "2", diff
    assert "# Current phase: legacy | shadow | globals-default | legacy-deleted." in (scratch / "rollout.toml").read_text()
    changelog = (scratch / "CHANGELOG.md").read_text()
    unreleased = changelog.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    changed = unreleased.split("### Changed", 1)[1]
    assert "Module names now come from `__name__`" in changed
    assert "CODETRACER_MODULE_NAME_FROM_GLOBALS=0" in changed
    assert "Status: **Accepted**" in (scratch / ADR).read_text()

    # Again: nothing to do, no diff, nothing changed.
    after = _tree(scratch)
    again = _rollout("flip-default", "--force", "--reason", "again", "--yes", run, cwd=scratch)
    assert again.returncode == 0 and "nothing to do" in again.stdout and "---" not in again.stdout
    assert _tree(scratch) == after
    status = _rollout("status", cwd=scratch)
    assert "flip-default  shadow -> globals-default  FORCED  reason: staging soak done" in status.stdout


def test_injected_failure_leaves_the_tree_byte_identical_and_revert(scratch):
    before = _tree(scratch)
    for n in ("1", "2"):
        failed = _rollout("flip-default", "--force", "--reason", "r", "--yes", cwd=scratch,
                          env={"CT_ROLLOUT_TEST_FAIL_AFTER": n})
        assert failed.returncode == 1 and "restored" in failed.stderr
        assert _tree(scratch) == before and _changed(scratch) == []
    _forced_flip(scratch)
    flipped = _tree(scratch)
    # --revert needs a reason.
    assert _rollout("flip-default", "--revert", "--yes", cwd=scratch).returncode == 2
    failed = _rollout("flip-default", "--revert", "--reason", "incident 42", "--yes", cwd=scratch,
                      env={"CT_ROLLOUT_TEST_FAIL_AFTER": "1"})
    assert failed.returncode == 1 and _tree(scratch) == flipped
    done = _rollout("flip-default", "--revert", "--reason", "incident 42", "--yes", cwd=scratch)
    assert done.returncode == 0, done.stderr
    m = _manifest(scratch)
    assert (m["rollout"]["phase"], m["flag"]["default"]) == ("shadow", False)
    assert [h["action"] for h in m["history"]] == ["flip-default", "revert"]
    assert m["history"][1]["reason"] == "incident 42" and m["history"][1]["to"] == "shadow"
    assert "reverted" in (scratch / "CHANGELOG.md").read_text()
    again = _rollout("flip-default", "--revert", "--reason", "x", "--yes", cwd=scratch)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_delete_dry_run_and_refusals(scratch, tmp_path):
    before = _tree(scratch)
    early = _rollout("delete-legacy", "--yes", cwd=scratch)
    assert early.returncode == 1 and "not globals-default" in early.stderr
    _forced_flip(scratch)
    flipped = _tree(scratch)
    # No evidence since the flip; then a run that still chose legacy (this build's default).
    none = _rollout("delete-legacy", "--yes", cwd=scratch)
    assert none.returncode == 1 and "after the flip" in none.stderr
    run = _shadow_run(tmp_path, "legacy-run")
    legacy = _rollout("delete-legacy", "--yes", run, cwd=scratch)
    assert legacy.returncode == 1 and _run_id(run) in legacy.stderr and "chose the legacy engine" in legacy.stderr
    assert _tree(scratch) == flipped
    dry = _rollout("delete-legacy", "--dry-run", "--force", "--reason", "preview", cwd=scratch)
    assert dry.returncode == 0, dry.stderr
    assert "--- a/src/naming/legacy/mod.rs\n+++ /dev/null" in dry.stdout
    assert "--- a/src/naming/legacy/pyscan.rs\n+++ /dev/null" in dry.stdout
    assert '-legacy-resolver = []' in dry.stdout and '+phase = "legacy-deleted"' in dry.stdout
    assert _tree(scratch) == flipped
    assert before != flipped


def _cargo_env(target_dir):
    """Cargo builds the clone for the interpreter running this suite (the Makefile exports
    3.11's PYO3_PYTHON for the Rust suites, which would give a 3.12 run a 3.11 extension)."""
    return {"CARGO_TARGET_DIR": str(target_dir), "CARGO_INCREMENTAL": "0",
            "PYO3_PYTHON": sys.executable}


def _shared_target_dir():
    """The main build's target dir for this interpreter (the Makefile's layout: `target` for
    3.11, `target/py3.X` for the others), so the clone's dependencies are already built."""
    major, minor = sys.version_info[:2]
    return REPO / "target" if (major, minor) == (3, 11) else REPO / "target" / f"py{major}.{minor}"


def _build_recorder(clone, target_dir, out_dir):
    """A ct-record from the clone: its cdylib (the `suite` profile) beside its Python package."""
    env = _cargo_env(target_dir)
    # The main build's target dir and profile (`make test` builds 3.11's extension and Rust
    # suites with `suite`): the dependencies are already compiled there, so only the clone's
    # own crates are. The clone's cdylib lands where the main one does
    # (`suite/libct_recorder.so`); it is copied out at once, and the main extension is
    # installed in the venv, not read from there.
    done = _run(["cargo", "build", "--quiet", "-p", "ct-recorder", "--lib", "--features", "extension-module",
                 "--profile", "suite"], clone, env, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    lib = target_dir / "suite" / "libct_recorder.so"
    pkg = out_dir / "ct_recorder"
    shutil.copytree(clone / "python" / "ct_recorder", pkg)
    shutil.copy(lib, pkg / ("_native" + sysconfig.get_config_var("EXT_SUFFIX")))
    return out_dir


# Which engine named a module, seen on the trace: `runpy.run_module("probe", run_name=
# "probe_custom")` is `<probe_custom>` to the globals engine (its `__name__`) and `<probe>`
# to the legacy resolver (no sys.modules entry: the path through sys.path[0]).
PROBE_MAIN = "import runpy\nrunpy.run_module('probe', run_name='probe_custom')\nprint('ran')\n"
PROBE_API = """import runpy, sys
import ct_recorder
ct_recorder.configure_policy(module_name_from_globals=False)
snap = ct_recorder.policy_snapshot()["settings"]["module_name_from_globals"]
print(snap["value"], snap["layer"])
ct_recorder.start(sys.argv[1])
runpy.run_module('probe', run_name='probe_custom')
ct_recorder.stop()
"""


def _function_names(trace_dir):
    """The names of the functions in a trace, read with the project's reader (any format)."""
    return {e["Function"]["name"] for e in load_events(trace_dir) if "Function" in e}


def _engine_seen(trace_dir):
    """The engine the recording used, from its metadata and from the probe's label."""
    meta = json.loads((trace_dir / "trace_metadata.json").read_text())
    names = _function_names(trace_dir)
    labels = {label for label in ("<probe_custom>", "<probe>") if label in names}
    by_label = {frozenset({"<probe_custom>"}): "globals", frozenset({"<probe>"}): "legacy"}[frozenset(labels)]
    assert meta["module_naming"]["engine"] == by_label, (meta["module_naming"], labels)
    return by_label, meta["module_naming"]["layer"]


def _policy_rows(stdout):
    """`--print-policy`: the setting rows (split on runs of spaces) and the footer lines."""
    head, _, foot = stdout.partition("\n\n")
    rows = {}
    for line in head.splitlines()[1:]:
        name, value, layer, source = line.split(None, 3)
        rows[name] = (value, layer, source)
    return rows, foot.splitlines()


@pytest.mark.clone_build
def test_fresh_build_after_flip_defaults_to_globals_and_opt_outs_select_legacy(scratch, tmp_path):
    """After `flip-default` alone (no deletion), a recorder built from the flipped tree names
    modules with the globals engine by default, chosen by rollout.toml, and every opt-out
    layer (project config, environment, command line, Python API) still selects legacy."""
    _forced_flip(scratch)
    pkg = _build_recorder(scratch, _shared_target_dir(), tmp_path / "built")
    env = {"PYTHONPATH": str(pkg), "CODETRACER_MODULE_NAME_FROM_GLOBALS": None}
    launcher = [sys.executable, "-c", "import sys; from ct_recorder.cli import ct_record; sys.argv[0] = 'ct-record'; ct_record()"]
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "main.py").write_text(PROBE_MAIN)
    (proj / "probe.py").write_text("X = 1\n")
    (proj / "api.py").write_text(PROBE_API)

    def record(name, *args, extra=None):
        out = tmp_path / name
        done = _run([*launcher, "--quiet", "--trace-dir", str(out), *args, "main.py"], proj, {**env, **(extra or {})})
        assert done.returncode == 0 and done.stdout == "ran\n", done.stderr
        return _engine_seen(out)

    policy = _run([*launcher, "--print-policy"], proj, env)
    assert policy.returncode == 0, policy.stderr
    rows, foot = _policy_rows(policy.stdout)
    assert rows["module_name_from_globals"] == ("true", "built-in", "rollout.toml")
    assert foot[0] == "primary engine: globals (chosen by built-in)", policy.stdout
    assert foot[2] == "rollout phase:  globals-default (built-in default module_name_from_globals = true)"
    assert record("t-default") == ("globals", "built-in")

    # Opt-outs, lowest layer first; each is shown by --print-policy and used by a recording.
    rows, foot = _policy_rows(_run([*launcher, "--print-policy", "--no-module-name-from-globals"], proj, env).stdout)
    assert rows["module_name_from_globals"] == ("false", "cli", "--no-module-name-from-globals")
    assert foot[0] == "primary engine: legacy (chosen by cli)"
    assert record("t-cli", "--no-module-name-from-globals") == ("legacy", "cli")
    off = {"CODETRACER_MODULE_NAME_FROM_GLOBALS": "0"}
    rows, foot = _policy_rows(_run([*launcher, "--print-policy"], proj, {**env, **off}).stdout)
    assert rows["module_name_from_globals"][:2] == ("false", "env") and foot[0] == "primary engine: legacy (chosen by env)"
    assert record("t-env", extra=off) == ("legacy", "env")
    (proj / "pyproject.toml").write_text("[tool.ct-recorder]\nmodule-name-from-globals = false\n")
    rows, foot = _policy_rows(_run([*launcher, "--print-policy"], proj, env).stdout)
    assert rows["module_name_from_globals"][:2] == ("false", "project-config")
    assert foot[0] == "primary engine: legacy (chosen by project-config)"
    assert record("t-config") == ("legacy", "project-config")
    (proj / "pyproject.toml").unlink()
    api = _run([sys.executable, "api.py", str(tmp_path / "t-api")], proj, env)
    assert api.returncode == 0 and api.stdout == "False python-api\n", api.stderr
    assert _engine_seen(tmp_path / "t-api") == ("legacy", "python-api")


def _venv_with(pkg, venv):
    """A venv whose `ct_recorder` is the package built from the clone, with the console
    scripts the suite runs (ct-record, ct-rollout) and this venv's other packages (pytest…)
    behind its own."""
    done = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    assert done.returncode == 0, done.stderr
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv.parent).stdout.strip())
    shutil.copytree(pkg / "ct_recorder", site / "ct_recorder")
    (site / "zz_suite_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for name, func in (("ct-record", "ct_record"), ("ct-rollout", "ct_rollout")):
        script = venv / "bin" / name
        script.write_text(f"#!{py}\nimport sys\nfrom ct_recorder.cli import {func}\nsys.exit({func}())\n")
        script.chmod(0o755)
    return py


@pytest.mark.clone_build
def test_delete_with_evidence_builds_and_refuses_legacy(scratch, tmp_path):
    _gates(scratch, min_runs=1)
    # The project check: `cargo check` of the whole result (the default is a build plus the
    # Rust tests, too slow for this suite).
    with open(scratch / "rollout.toml", "a") as f:
        f.write('\n[lifecycle]\nverify = ["cargo check --quiet --workspace --all-targets"]\n')
    _forced_flip(scratch)
    run = _shadow_run(tmp_path, "globals-run", env={"CODETRACER_MODULE_NAME_FROM_GLOBALS": "1"})
    target = _shared_target_dir()
    done = _run([CT_ROLLOUT, "delete-legacy", "--yes", str(run)], scratch,
                env=_cargo_env(target), timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "verify: cargo check" in done.stderr
    assert not (scratch / "src" / "naming" / "legacy").exists()
    assert not (scratch / "tests" / "naming_legacy_rules.rs").exists()
    m = _manifest(scratch)
    assert m["rollout"]["phase"] == "legacy-deleted" and m["history"][-1]["action"] == "delete-legacy"
    assert m["history"][-1]["run_ids"] == [_run_id(run)] and m["history"][-1]["forced"] is False
    cargo = tomllib.loads((scratch / "Cargo.toml").read_text())
    assert "legacy-resolver" not in cargo["features"] and cargo["features"]["default"] == []
    for path in scratch.rglob("*.rs"):
        if path.is_relative_to(scratch / "reports"):
            continue  # delete-legacy itself, whose docs and tests spell the attribute out
        assert 'feature = "legacy-resolver"' not in path.read_text(), path
    assert "### Removed" in (scratch / "CHANGELOG.md").read_text()
    # Nothing left to delete.
    again = _rollout("delete-legacy", "--yes", cwd=scratch)
    assert again.returncode == 0 and "nothing to do" in again.stdout

    pkg = _build_recorder(scratch, target, tmp_path / "built")
    env = {"PYTHONPATH": str(pkg)}
    launcher = [sys.executable, "-c", "import sys; from ct_recorder.cli import ct_record; sys.argv[0] = 'ct-record'; ct_record()"]
    proj = tmp_path / "proj2"
    proj.mkdir()
    (proj / "app.py").write_text("print('hi')\n")
    policy = _run([*launcher, "--print-policy", "app.py"], proj, env)
    assert policy.returncode == 0, policy.stderr
    assert "globals" in policy.stdout and "rollout.toml" in policy.stdout
    rec = _run([*launcher, "--trace-dir", str(tmp_path / "t"), "app.py"], proj, env)
    assert rec.returncode == 0 and rec.stdout == "hi\n", rec.stderr
    assert "<__main__>" in _function_names(tmp_path / "t")
    for asked in ([*launcher, "--no-module-name-from-globals", "app.py"], [*launcher, "app.py"]):
        extra = {} if "--no-module-name-from-globals" in asked else {"CODETRACER_MODULE_NAME_FROM_GLOBALS": "0"}
        refused = _run(asked, proj, {**env, **extra})
        assert refused.returncode == 2, refused.stderr
        assert "legacy-deleted" in refused.stderr and "hi" not in refused.stdout
    shadow = _run([*launcher, "--shadow-compare", "app.py"], proj, env)
    assert shadow.returncode == 2 and "legacy-deleted" in shadow.stderr and "hi" not in shadow.stdout
    refused = _run([*launcher, "--print-policy", "--no-module-name-from-globals"], proj, env)
    assert refused.returncode == 2 and "legacy-deleted" in refused.stderr, refused.stdout + refused.stderr

    # The copy's own Python suite on the copy's recorder: the tests that need the deleted
    # engine (a marked module; the legacy case of an `engine`-parametrized test) are skipped
    # with the recorder's reason and counted out loud, the rest pass.
    py = _venv_with(pkg, tmp_path / "venv")
    suite = _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                  "tests/python/test_naming_legacy_counters.py",
                  "tests/python/test_filters_engines.py::test_obj_rule_on_main_function"],
                 scratch, {"PYTHONPATH": None}, timeout=600)
    out = suite.stdout
    assert suite.returncode == 0, out[-3000:] + suite.stderr[-2000:]
    assert "1 passed, 3 skipped" in out, out[-3000:]
    assert "needs the legacy engine: this build has no legacy engine: it was deleted (rollout phase legacy-deleted" in out, out[-3000:]
    assert "3 test(s) marked `legacy_engine` were SKIPPED" in out, out[-3000:]


def test_report_reads_the_repository_manifest_at_run_time(scratch, tmp_path):
    run = _shadow_run(tmp_path, "run1")
    assert _rollout("report", "--check", run, cwd=scratch).returncode == 1
    _gates(scratch, min_runs=1, min_comparisons=1, max_unexpected_divergence_rate=1)
    done = _rollout("report", "--check", run, cwd=scratch / "docs")
    assert done.returncode == 0, done.stdout + done.stderr
