"""The naming policy as a user sees it (docs/policy.md): ``ct-record --print-policy`` for each
layer, ``trace_metadata.json`` (``module_naming`` and ``policy``), configuration errors, and
``ct_recorder.configure_policy()`` / ``ct_recorder.policy_snapshot()`` from Python.

Which engine actually named the modules is checked on the trace too, with a probe module
run by ``runpy.run_module("probe", run_name="probe_custom")``: the globals engine labels it
``<probe_custom>`` (N1), the legacy engine ``<probe>`` (no sys.modules entry, so the path
candidate through sys.path[0], L5.4).
"""

import json
import os
import re
import subprocess
import tomllib

import pytest

from naming_support import PYTHON, Run, clean_env, ct_record_raw, record, write_tree

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(REPO, "rollout.toml"), "rb") as _f:
    ROLLOUT = tomllib.load(_f)
BUILTIN_DEFAULT = ROLLOUT["flag"]["default"]
PHASE = ROLLOUT["rollout"]["phase"]
BUILTIN_ENGINE = "globals" if BUILTIN_DEFAULT else "legacy"

ENV_VAR = "CODETRACER_MODULE_NAME_FROM_GLOBALS"
SHADOW_VAR = "CODETRACER_SHADOW_COMPARE"

PROBE_FILES = {
    "main.py": """
        import os, runpy
        print(runpy.run_module("probe", run_name="probe_custom")["__name__"])
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran.txt"), "w") as f:
            f.write("ran")
    """,
    "probe.py": "X = 1\n",
}


def tbool(v):
    return "true" if v else "false"


def parse_policy_table(text):
    """``{setting: (value, layer, source)}`` and the footer lines of --print-policy."""
    head, _, foot = text.partition("\n\n")
    lines = head.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["setting", "value", "layer", "source"], text
    rows = {}
    for line in lines[1:]:
        m = re.fullmatch(r"(\S+)\s+(\S+)\s+(\S+)\s{2,}(.+)", line)
        assert m, f"unexpected row {line!r} in\n{text}"
        rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows, foot.splitlines()


def print_policy(cwd, *argv, env=None):
    run = ct_record_raw(["--print-policy", *argv], cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    return parse_policy_table(run.stdout)


def engine_seen(run, proj):
    labels = run.labels_of(os.path.join(proj, "probe.py"))
    return {frozenset({"<probe_custom>"}): "globals", frozenset({"<probe>"}): "legacy"}[frozenset(labels)]


def rollout_line(default=BUILTIN_DEFAULT):
    return f"rollout phase:  {PHASE} (built-in default module_name_from_globals = {tbool(default)})"


# --- the layers, one at a time --------------------------------------------------------------


def test_print_policy_builtin(tmp_path):
    rows, foot = print_policy(tmp_path, env=clean_env())
    assert rows == {
        "module_name_from_globals": (tbool(BUILTIN_DEFAULT), "built-in", "rollout.toml"),
        "shadow_compare": ("false", "built-in", "-"),
        "evidence_only": ("false", "built-in", "-"),
    }
    assert foot == [
        f"primary engine: {BUILTIN_ENGINE} (chosen by built-in)",
        "shadow engine:  none",
        rollout_line(),
    ]


def test_builtin_layer_in_trace(tmp_path):
    proj = write_tree(tmp_path / "proj", PROBE_FILES)
    run = record(os.path.join(proj, "main.py"), cwd=proj, trace_dir=tmp_path / "t").check()
    meta = run.metadata
    assert meta["module_naming"] == {"engine": BUILTIN_ENGINE, "layer": "built-in"}
    assert meta["policy"]["settings"]["module_name_from_globals"] == {
        "value": BUILTIN_DEFAULT, "layer": "built-in", "source": "rollout.toml"}
    assert meta["policy"]["rollout"] == {
        "flag": "module_name_from_globals", "default": BUILTIN_DEFAULT, "phase": PHASE}
    assert engine_seen(run, proj) == BUILTIN_ENGINE


@pytest.mark.legacy_engine
def test_project_config_layer(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": """
            [project]
            name = "probe"

            [tool.ct-recorder]
            module-name-from-globals = true
            shadow-compare = true
        """,
        "sub/deeper/tool.py": "print('tool')\n",
    }))
    pyproject = os.path.join(proj, "pyproject.toml")
    expected = {
        "module_name_from_globals": ("true", "project-config", pyproject),
        "shadow_compare": ("true", "project-config", pyproject),
        "evidence_only": ("false", "built-in", "-"),
    }
    # -m / no program: the current directory; a script: its directory, then upwards.
    assert print_policy(proj, env=clean_env())[0] == expected
    assert print_policy(tmp_path, os.path.join(proj, "sub", "deeper", "tool.py"), env=clean_env())[0] == expected
    rows, foot = print_policy(tmp_path, "proj/main.py", env=clean_env())
    assert rows == expected
    assert foot == ["primary engine: globals (chosen by project-config)", "shadow engine:  legacy", rollout_line()]

    run = record("main.py", cwd=proj, trace_dir=tmp_path / "t").check()
    meta = run.metadata
    assert meta["module_naming"] == {"engine": "globals", "layer": "project-config"}
    assert meta["policy"]["engine"] == {
        "primary": "globals", "chosen_by": "project-config", "source": pyproject, "shadow": "legacy"}
    assert meta["policy"]["settings"] == {
        "module_name_from_globals": {"value": True, "layer": "project-config", "source": pyproject},
        "shadow_compare": {"value": True, "layer": "project-config", "source": pyproject},
        "evidence_only": {"value": False, "layer": "built-in", "source": None},
    }
    assert engine_seen(run, proj) == "globals"
    # -m: the project of the current directory
    run = record("main", module=True, cwd=proj, trace_dir=tmp_path / "t-m").check()
    assert run.metadata["module_naming"] == {"engine": "globals", "layer": "project-config"}
    assert engine_seen(run, proj) == "globals"


def test_project_config_nearest_pyproject_wins(tmp_path):
    write_tree(tmp_path, {
        "pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = true\n",
        # a nested project without [tool.ct-recorder]: the search stops here, no project layer
        "inner/pyproject.toml": "[project]\nname = 'inner'\n",
        "inner/app.py": "print('x')\n",
        # an empty table is no project layer either
        "empty/pyproject.toml": "[tool.ct-recorder]\n",
    })
    builtin = (tbool(BUILTIN_DEFAULT), "built-in", "rollout.toml")
    assert print_policy(tmp_path, "inner/app.py", env=clean_env())[0]["module_name_from_globals"] == builtin
    assert print_policy(tmp_path / "empty", env=clean_env())[0]["module_name_from_globals"] == builtin
    assert print_policy(tmp_path, env=clean_env())[0]["module_name_from_globals"] == (
        "true", "project-config", os.path.join(tmp_path, "pyproject.toml"))


def test_project_config_of_a_symlinked_script(tmp_path):
    """docs/policy.md: the program's directory is the script's directory "symlinks and `..`
    resolved, as Python does for sys.path[0]"."""
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = true\n",
    }))
    os.makedirs(tmp_path / "bin")
    os.symlink(os.path.join(proj, "main.py"), tmp_path / "bin" / "probe-link.py")
    pyproject = os.path.join(proj, "pyproject.toml")
    rows, _ = print_policy(tmp_path, "bin/probe-link.py", env=clean_env())
    assert rows["module_name_from_globals"] == ("true", "project-config", pyproject)
    run = record("bin/probe-link.py", cwd=tmp_path, trace_dir=tmp_path / "t").check()
    assert run.metadata["module_naming"] == {"engine": "globals", "layer": "project-config"}
    # sys.path[0] is <proj> (the resolved directory), so the program itself runs fine.
    assert run.stdout == "probe_custom\n"


@pytest.mark.parametrize("raw, value", [
    ("1", True), ("true", True), ("YES", True), (" On\t", True), ("TrUe", True),
    *(pytest.param(raw, False, marks=pytest.mark.legacy_engine) for raw in ("0", "false", "no", "OFF ")),
])
def test_env_layer_values(tmp_path, raw, value):
    rows, foot = print_policy(tmp_path, env=clean_env(**{ENV_VAR: raw}))
    assert rows["module_name_from_globals"] == (tbool(value), "env", ENV_VAR)
    assert foot[0] == f"primary engine: {'globals' if value else 'legacy'} (chosen by env)"


@pytest.mark.parametrize("raw", ["", "   "])
def test_env_blank_means_unset(tmp_path, raw):
    write_tree(tmp_path, {"pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = true\n"})
    rows, _ = print_policy(tmp_path, env=clean_env(**{ENV_VAR: raw, SHADOW_VAR: raw}))
    # the layer below decides: the project config, and the built-in default for shadow
    assert rows["module_name_from_globals"] == ("true", "project-config", os.path.join(tmp_path, "pyproject.toml"))
    assert rows["shadow_compare"] == ("false", "built-in", "-")


@pytest.mark.legacy_engine
def test_env_layer_in_trace(tmp_path):
    proj = write_tree(tmp_path / "proj", PROBE_FILES)
    for raw, engine in (("1", "globals"), ("0", "legacy")):
        run = record("main.py", cwd=proj, trace_dir=tmp_path / f"t{raw}", env=clean_env(**{ENV_VAR: raw})).check()
        assert run.metadata["module_naming"] == {"engine": engine, "layer": "env"}
        assert run.metadata["policy"]["settings"]["module_name_from_globals"] == {
            "value": raw == "1", "layer": "env", "source": ENV_VAR}
        assert engine_seen(run, proj) == engine


@pytest.mark.parametrize("var, raw", [(ENV_VAR, "2"), (ENV_VAR, "y"), (ENV_VAR, "enabled"), (SHADOW_VAR, "tru")])
def test_invalid_env_value_is_refused(tmp_path, var, raw):
    proj = write_tree(tmp_path / "proj", PROBE_FILES)
    trace = tmp_path / "t"
    run = ct_record_raw(["--trace-dir", str(trace), "main.py"], cwd=proj, env=clean_env(**{var: raw}))
    assert run.returncode == 2
    assert run.stdout == ""
    # names the variable, the value and the accepted values
    assert var in run.stderr
    assert re.search(rf"""["'`]{re.escape(raw)}["'`]""", run.stderr), run.stderr  # the value, quoted
    for accepted in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        assert re.search(rf"\b{accepted}\b", run.stderr), run.stderr
    # the program did not run and nothing was recorded
    assert not os.path.exists(os.path.join(proj, "ran.txt"))
    assert not os.path.exists(trace), sorted(os.listdir(trace))
    assert ct_record_raw(["--print-policy"], cwd=proj, env=clean_env(**{var: raw})).returncode == 2


@pytest.mark.legacy_engine
def test_cli_layer(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = true\n",
    }))
    env = clean_env(**{ENV_VAR: "1"})
    # the command line beats the environment and the project config
    rows, foot = print_policy(proj, "--no-module-name-from-globals", env=env)
    assert rows["module_name_from_globals"] == ("false", "cli", "--no-module-name-from-globals")
    assert foot[0] == "primary engine: legacy (chosen by cli)"
    run = record("main.py", cwd=proj, trace_dir=tmp_path / "t1", engine="legacy", env=env).check()
    assert run.metadata["module_naming"] == {"engine": "legacy", "layer": "cli"}
    assert run.metadata["policy"]["settings"]["module_name_from_globals"] == {
        "value": False, "layer": "cli", "source": "--no-module-name-from-globals"}
    assert engine_seen(run, proj) == "legacy"

    env0 = clean_env(**{ENV_VAR: "0"})
    rows, _ = print_policy(proj, "--module-name-from-globals", env=env0)
    assert rows["module_name_from_globals"] == ("true", "cli", "--module-name-from-globals")
    run = record("main.py", cwd=proj, trace_dir=tmp_path / "t2", engine="globals", env=env0).check()
    assert run.metadata["module_naming"] == {"engine": "globals", "layer": "cli"}
    assert engine_seen(run, proj) == "globals"


@pytest.mark.legacy_engine
def test_precedence_is_per_setting_and_by_layer(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = false\nshadow-compare = true\n",
    }))
    pyproject = os.path.join(proj, "pyproject.toml")
    env = clean_env(**{ENV_VAR: "yes"})
    # the project turns shadow-compare on while the environment picks the engine
    rows, foot = print_policy(proj, env=env)
    assert rows == {
        "module_name_from_globals": ("true", "env", ENV_VAR),
        "shadow_compare": ("true", "project-config", pyproject),
        "evidence_only": ("false", "built-in", "-"),
    }
    assert foot == ["primary engine: globals (chosen by env)", "shadow engine:  legacy", rollout_line()]
    run = record("main.py", cwd=proj, trace_dir=tmp_path / "t", env=env).check()
    policy = run.metadata["policy"]
    assert policy["engine"] == {"primary": "globals", "chosen_by": "env", "source": ENV_VAR, "shadow": "legacy"}
    assert policy["settings"] == {
        "module_name_from_globals": {"value": True, "layer": "env", "source": ENV_VAR},
        "shadow_compare": {"value": True, "layer": "project-config", "source": pyproject},
        "evidence_only": {"value": False, "layer": "built-in", "source": None},
    }
    assert run.metadata["module_naming"] == {"engine": "globals", "layer": "env"}
    # shadow mode never changes the recording: the primary engine's labels
    assert engine_seen(run, proj) == "globals"

    # the command line overrides only what it sets; the order of the options is irrelevant
    rows, foot = print_policy(proj, "--no-shadow-compare", env=env)
    assert rows == {
        "module_name_from_globals": ("true", "env", ENV_VAR),
        "shadow_compare": ("false", "cli", "--no-shadow-compare"),
        "evidence_only": ("false", "built-in", "-"),
    }
    assert foot[:2] == ["primary engine: globals (chosen by env)", "shadow engine:  none"]


# --- configuration errors -------------------------------------------------------------------


def _refused(proj, tmp_path):
    trace = tmp_path / "t"
    run = ct_record_raw(["--trace-dir", str(trace), "main.py"], cwd=proj, env=clean_env())
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert not os.path.exists(os.path.join(proj, "ran.txt")), "the program must not run"
    assert not os.path.exists(trace / "trace_metadata.json")
    return run.stderr


def _error_location(stderr, path):
    m = re.search(re.escape(path) + r":(\d+):(\d+): (.+)", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_unknown_key_in_project_config(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": "[tool.ct-recorder]\nshadow-compare = false\nmodule_name_from_globals = true\n",
    }))
    err = _refused(proj, tmp_path)
    line, col, msg = _error_location(err, os.path.join(proj, "pyproject.toml"))
    assert (line, col) == (3, 1)
    assert "module_name_from_globals" in msg
    # the message lists the known keys
    assert "module-name-from-globals" in msg and "shadow-compare" in msg


def test_non_boolean_value_in_project_config(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": '[tool.ct-recorder]\nmodule-name-from-globals = "true"\n',
    }))
    err = _refused(proj, tmp_path)
    line, col, msg = _error_location(err, os.path.join(proj, "pyproject.toml"))
    assert line == 2
    assert col in (1, 28)  # the key, or the quoted value
    assert "module-name-from-globals" in msg


def test_invalid_toml_reports_character_columns(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        # invalid outside our table: the file is still refused
        "pyproject.toml": '[project]\nname = "ççççç" oops\n',
    }))
    err = _refused(proj, tmp_path)
    line, col, _ = _error_location(err, os.path.join(proj, "pyproject.toml"))
    assert line == 2
    # the stray "oops" starts at character 16 (byte 21); a parser may point at the space
    # before it (character 15, byte 20). Columns count characters.
    assert col in (15, 16)


def test_tool_ct_recorder_not_a_table(tmp_path):
    proj = write_tree(tmp_path / "proj", dict(PROBE_FILES, **{
        "pyproject.toml": "[tool]\nct-recorder = true\n",
    }))
    err = _refused(proj, tmp_path)
    line, _, msg = _error_location(err, os.path.join(proj, "pyproject.toml"))
    assert line == 2
    assert "table" in msg


def test_undecodable_pyproject(tmp_path):
    proj = write_tree(tmp_path / "proj", PROBE_FILES)
    # Not UTF-8 (TOML must be): the file cannot be read as TOML text.
    with open(os.path.join(proj, "pyproject.toml"), "wb") as f:
        f.write(b"[tool.ct-recorder]\nmodule-name-from-globals = true # \xff\xfe\n")
    err = _refused(proj, tmp_path)
    assert os.path.join(proj, "pyproject.toml") in err


# --- the Python API -------------------------------------------------------------------------

API_PROGRAM = """
    import json, os, sys
    import ct_recorder

    here = os.path.dirname(os.path.abspath(__file__))
    out = {"before": ct_recorder.policy_snapshot()}
    ct_recorder.configure_policy(module_name_from_globals=True)
    out["after"] = ct_recorder.policy_snapshot()
    out["project"] = ct_recorder.policy_snapshot(program_dir=os.path.join(here, "withconfig"))
    ct_recorder.start(sys.argv[1])
    import runpy
    runpy.run_module("probe", run_name="probe_custom")
    ct_recorder.stop()
    print(json.dumps(out))
"""


def test_configure_policy_and_snapshot(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        "api.py": API_PROGRAM,
        "probe.py": "X = 1\n",
        "withconfig/pyproject.toml": "[tool.ct-recorder]\nshadow-compare = true\n",
    })
    trace = tmp_path / "t"
    proc = subprocess.run([PYTHON, "api.py", str(trace)], cwd=proj, env=clean_env(**{ENV_VAR: "0"}),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    api = {"value": True, "layer": "python-api", "source": "ct_recorder.configure_policy()"}
    assert out["before"]["settings"]["module_name_from_globals"] == {"value": False, "layer": "env", "source": ENV_VAR}
    assert out["before"]["engine"]["primary"] == "legacy"
    assert out["after"]["settings"]["module_name_from_globals"] == api
    assert out["after"]["settings"]["shadow_compare"] == {"value": False, "layer": "built-in", "source": None}
    assert out["after"]["engine"] == {
        "primary": "globals", "chosen_by": "python-api", "source": "ct_recorder.configure_policy()", "shadow": None}
    # program_dir selects the project config; the Python API still wins for what it sets
    assert out["project"]["settings"] == {
        "module_name_from_globals": api,
        "shadow_compare": {"value": True, "layer": "project-config",
                           "source": os.path.join(proj, "withconfig", "pyproject.toml")},
        "evidence_only": {"value": False, "layer": "built-in", "source": None},
    }

    run = Run(0, "", "", str(trace))
    assert run.metadata["module_naming"] == {"engine": "globals", "layer": "python-api"}
    assert run.metadata["policy"]["settings"]["module_name_from_globals"] == api
    assert run.labels_of(os.path.join(proj, "probe.py")) == {"<probe_custom>"}


@pytest.mark.legacy_engine
def test_last_engine_flag_wins(tmp_path):
    rows, _ = print_policy(tmp_path, "--module-name-from-globals", "--no-module-name-from-globals", env=clean_env())
    assert rows["module_name_from_globals"] == ("false", "cli", "--no-module-name-from-globals")
    rows, _ = print_policy(tmp_path, "--no-module-name-from-globals", "--module-name-from-globals", env=clean_env())
    assert rows["module_name_from_globals"] == ("true", "cli", "--module-name-from-globals")


def test_configuration_errors_are_errors_even_when_overridden(tmp_path):
    """docs/policy.md: a bad environment value or a bad pyproject.toml is an error (status 2)
    before the program starts; a higher layer setting the same value does not excuse it."""
    proj = write_tree(tmp_path / "proj", PROBE_FILES)
    run = ct_record_raw(["--module-name-from-globals", "--trace-dir", str(tmp_path / "t1"), "main.py"],
                        cwd=proj, env=clean_env(**{ENV_VAR: "bogus"}))
    assert run.returncode == 2 and ENV_VAR in run.stderr
    write_tree(proj, {"pyproject.toml": "[tool.ct-recorder]\nmodule-name-from-globals = 1\n"})
    run = ct_record_raw(["--module-name-from-globals", "--trace-dir", str(tmp_path / "t2"), "main.py"],
                        cwd=proj, env=clean_env(**{ENV_VAR: "1"}))
    assert run.returncode == 2 and os.path.join(proj, "pyproject.toml") + ":2:" in run.stderr
    assert not os.path.exists(os.path.join(proj, "ran.txt"))
