"""`ct-record --explain-filter FILE_OR_MODULE`: the matching rules in chain order and the
final decision, exit 0; nothing is run; an unknown target exits 2."""

import re
import tomllib

import pytest

from filters_support import BUILTIN_TOML, ct_record, project_filter, write_filter, write_files

BUILTIN_RULES = len(tomllib.loads(BUILTIN_TOML.read_text())["scope"]["rules"])

FILES = {
    "mylib/__init__.py": "",
    "mylib/helpers.py": """
        import os

        with open(os.path.join(os.path.dirname(__file__), "started.txt"), "w") as f:
            f.write("ran")


        def double(x):
            return x * 2
    """,
}

PROJECT_RULES = [
    {"selector": "pkg:mylib.*", "exec": "skip", "reason": "vendored"},
    {"selector": "file:mylib/helpers.py", "exec": "trace", "reason": "but not helpers"},
    {"selector": "obj:never.matches", "exec": "skip"},
]

STEP = re.compile(r"^\s+(\d+)\. (.+?) rule (\d+)/(\d+) `(.+?)` on (module name|path|object name) `(.*?)`:(.*)$")


def steps_of(stdout):
    return [m.groups() for m in map(STEP.match, stdout.splitlines()) if m]


def decision_of(stdout):
    lines = [l for l in stdout.splitlines() if l.startswith("decision: ")]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.fixture
def project(tmp_path):
    write_files(tmp_path, FILES)
    project_filter(tmp_path, "proj", PROJECT_RULES)
    return tmp_path


@pytest.mark.parametrize("engine_flag", [
    pytest.param("--no-module-name-from-globals", marks=pytest.mark.legacy_engine), "--module-name-from-globals"])
def test_explain_a_file(project, engine_flag):
    pf = str(project / ".codetracer" / "trace-filter.toml")
    r = ct_record(engine_flag, "--explain-filter", "mylib/helpers.py", cwd=project)
    assert r.returncode == 0, r.stderr
    got = [(src, int(i), int(n), sel, subject) for _, src, i, n, sel, _, subject, _ in steps_of(r.stdout)]
    assert got == [
        ("<builtin>", BUILTIN_RULES, BUILTIN_RULES, "pkg:glob:*", "mylib.helpers"),
        (pf, 1, 3, "pkg:mylib.*", "mylib.helpers"),
        (pf, 2, 3, "file:mylib/helpers.py", "mylib/helpers.py"),
    ]
    assert [int(s[0]) for s in steps_of(r.stdout)] == [1, 2, 3]
    assert "(vendored)" in r.stdout and "(but not helpers)" in r.stdout
    assert decision_of(r.stdout).startswith("decision: trace")
    assert not (project / "mylib" / "started.txt").exists(), "explain ran the module"


def test_explain_a_module_name_with_a_cli_file_last(project):
    pf = str(project / ".codetracer" / "trace-filter.toml")
    cli = write_filter(project / "cli.toml", "cli",
                       [{"selector": "pkg:literal:mylib.helpers", "exec": "skip", "reason": "cli"}])
    r = ct_record("--trace-filter", str(cli), "--explain-filter", "mylib.helpers",
                  cwd=project, env={"PYTHONPATH": str(project)})
    assert r.returncode == 0, r.stderr
    got = [(src, sel) for _, src, _, _, sel, _, _, _ in steps_of(r.stdout)]
    assert got == [
        ("<builtin>", "pkg:glob:*"),
        (pf, "pkg:mylib.*"),
        (pf, "file:mylib/helpers.py"),
        (str(cli), "pkg:literal:mylib.helpers"),
    ]
    assert decision_of(r.stdout).startswith("decision: skip")
    assert not (project / "mylib" / "started.txt").exists()


def test_explain_reports_a_skip_without_later_override(project):
    project_filter(project, "proj", PROJECT_RULES[:1])
    r = ct_record("--explain-filter", "mylib/helpers.py", cwd=project)
    assert r.returncode == 0, r.stderr
    assert [s[4] for s in steps_of(r.stdout)] == ["pkg:glob:*", "pkg:mylib.*"]
    assert decision_of(r.stdout).startswith("decision: skip")


def test_explain_a_standard_library_module(project):
    """The builtin's stdlib rule matches first, then its catch-all redaction rule."""
    r = ct_record("--explain-filter", "json.decoder", cwd=project)
    assert r.returncode == 0, r.stderr
    sels = [s[4] for s in steps_of(r.stdout)]
    assert sels[0].startswith("file:regex:") and sels[-1] == "pkg:glob:*"
    assert decision_of(r.stdout).startswith("decision: skip")


@pytest.mark.parametrize("target", ["no_such_module_xyz", "no/such/file.py", "not a name"])
def test_explain_an_unknown_target(project, target):
    r = ct_record("--explain-filter", target, cwd=project)
    assert r.returncode == 2
    assert target in r.stderr


def test_explain_with_a_bad_filter_file(project):
    bad = project / "bad.toml"
    bad.write_text("[meta]\nname = 'x'\n")
    r = ct_record("--trace-filter", str(bad), "--explain-filter", "mylib/helpers.py", cwd=project)
    assert r.returncode == 2
    assert f"trace filter {bad}" in r.stderr
