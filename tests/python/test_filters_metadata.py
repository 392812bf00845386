"""`trace_metadata.json`: the filter summary (`filters`: sources in chain order with the
SHA-256 of each file's bytes, rule counts, project roots, the defaults and who set them) and
the counters (`summary.filters`)."""

import tomllib

from filters_support import (
    BUILTIN_TOML,
    project_filter,
    record,
    sha256_of,
    write_filter,
    write_files,
)

APP = {
    "app.py": """
        def work(x):
            return x


        work(1)
    """,
}


def rule_count(path):
    return len(tomllib.loads(path.read_text()).get("scope", {}).get("rules", []))


def expected_source(path, origin, root):
    doc = tomllib.loads(path.read_text())
    return {
        "path": str(path),
        "origin": origin,
        "sha256": sha256_of(path),
        "name": doc["meta"]["name"],
        "version": doc["meta"]["version"],
        "project_root": str(root),
        "rules": rule_count(path),
    }


def builtin_source():
    doc = tomllib.loads(BUILTIN_TOML.read_text())
    return {
        "path": "<builtin>",
        "origin": "builtin",
        "sha256": sha256_of(BUILTIN_TOML),
        "name": doc["meta"]["name"],
        "version": doc["meta"]["version"],
        "project_root": "",
        "rules": len(doc["scope"]["rules"]),
    }


def test_sources_in_chain_order_with_hashes_counts_and_roots(tmp_path):
    proj = tmp_path / "proj"
    write_files(proj, APP)
    pf = project_filter(proj, "project", [
        {"selector": "pkg:a", "exec": "skip"},
        {"selector": "pkg:b", "exec": "skip"},
    ])
    # An env file below a `.codetracer` directory: its root is that directory's parent.
    team = tmp_path / "team"
    env_a = write_filter(team / ".codetracer" / "shared" / "a.toml", "env-a",
                         [{"selector": "obj:x.y", "reason": "r"}],
                         default_value="allow")
    env_b = write_filter(tmp_path / "env" / "b.toml", "env-b", [])
    cli_c = write_filter(tmp_path / "cli" / "c.toml", "cli-c",
                         [{"selector": "file:x.py"}, {"selector": "pkg:c"}, {"selector": "obj:c.d"}],
                         default_exec="trace")
    # Extra bytes that change the hash but not the content.
    cli_c.write_text(cli_c.read_text() + "\n# a comment\n")
    run = record(
        proj / "app.py", "--trace-filter", f"{cli_c}::{env_b}",
        trace_dir=tmp_path / "t",
        # env_a is listed twice: a file listed twice is loaded twice.
        env={"CODETRACER_TRACE_FILTER": f"{env_a}::{env_b}::{env_a}"},
    )
    assert run.returncode == 0, run.stderr
    f = run.metadata["filters"]
    assert f["sources"] == [
        builtin_source(),
        expected_source(pf, "discovered", proj),
        expected_source(env_a, "env", team),
        expected_source(env_b, "env", env_b.parent),
        expected_source(env_a, "env", team),
        expected_source(cli_c, "cli", cli_c.parent),
        expected_source(env_b, "cli", env_b.parent),
    ]
    assert f["sources"][2]["sha256"] != f["sources"][3]["sha256"]
    # default_exec: the last file that does not inherit is cli_c; value: env_a (its second
    # listing, index 4, is the last one that does not inherit).
    assert f["default_exec"] == "trace"
    assert f["default_value_action"] == "allow"
    assert f["default_value_action_source"] == 4


def test_no_default_filter_leaves_the_builtin_out_of_the_summary(tmp_path):
    write_files(tmp_path, APP)
    cli = write_filter(tmp_path / "only.toml", "only", [{"selector": "pkg:x", "exec": "skip"}],
                       default_exec="trace", default_value="redact")
    run = record(tmp_path / "app.py", "--no-default-filter", "--trace-filter", str(cli),
                 trace_dir=tmp_path / "t")
    f = run.metadata["filters"]
    assert f["sources"] == [expected_source(cli, "cli", tmp_path)]
    assert (f["default_exec"], f["default_value_action"], f["default_value_action_source"]) == (
        "trace", "redact", 0)


COUNTED = {
    "app.py": """
        import skipme


        def use(secret, blob, n):
            return n


        def make_blob():
            return "b"


        def make_secret():
            return "s"


        for i in range(3):
            use("s", "b", i)
        make_blob()
        make_blob()
        make_secret()
        skipme.a()
        skipme.b()
        skipme.a()
    """,
    "skipme.py": """
        def a():
            return 1


        def b():
            return 2
    """,
}


def test_summary_counters(tmp_path):
    """Without the builtin, the only filter decisions are the project's: skipme.py's three
    code objects (module, a, b) are skipped; 3 `secret` args redacted, 3 `blob` args dropped,
    2 make_blob returns dropped, 1 make_secret return redacted."""
    write_files(tmp_path, COUNTED)
    project_filter(tmp_path, "counted", [
        {"selector": "file:app.py", "patterns": [
            ("arg:secret", "redact"), ("arg:blob", "drop"),
            ("ret:make_blob", "drop"), ("ret:make_secret", "redact"),
        ]},
        {"selector": "file:skipme.py", "exec": "skip"},
    ], default_exec="trace", default_value="allow")
    run = record(tmp_path / "app.py", "--no-default-filter", trace_dir=tmp_path / "t")
    t = run.trace
    assert len(t.calls_of("use")) == 3
    s = run.metadata["summary"]["filters"]
    assert s["skipped_code_objects"] == 3
    assert s["values"]["redacted"] == {"arg": 3, "ret": 1}
    assert s["values"]["dropped"] == {"arg": 3, "ret": 2}


def test_summary_counters_with_the_builtin(tmp_path):
    """The builtin's redaction is counted too, and a project skip adds exactly its code
    objects to the builtin's own skips."""
    write_files(tmp_path, COUNTED)
    run0 = record(tmp_path / "app.py", trace_dir=tmp_path / "t0")
    s0 = run0.metadata["summary"]["filters"]
    # Builtin patterns: `secret` (arg, 3 calls) and `make_secret` (ret) are sensitive names.
    assert s0["values"]["redacted"] == {"arg": 3, "ret": 1}
    assert s0["values"]["dropped"] == {}
    project_filter(tmp_path, "p", [{"selector": "file:skipme.py", "exec": "skip"}])
    run1 = record(tmp_path / "app.py", trace_dir=tmp_path / "t1")
    s1 = run1.metadata["summary"]["filters"]
    assert s1["skipped_code_objects"] == s0["skipped_code_objects"] + 3


def test_the_last_file_with_an_io_section_decides_io(tmp_path):
    write_files(tmp_path, APP)
    pf = project_filter(tmp_path, "p", [])
    pf.write_text(pf.read_text() + '\n[io]\ncapture = true\nstreams = ["stderr", "stdout", "stderr"]\n')
    no_io = write_filter(tmp_path / "no-io.toml", "no-io", [])
    run = record(tmp_path / "app.py", "--trace-filter", str(no_io), trace_dir=tmp_path / "t")
    f = run.metadata["filters"]
    assert f["io"] == {"capture": True, "streams": ["stderr", "stdout"]}  # deduplicated
    assert f["io_source"] == 1
    later = write_filter(tmp_path / "later.toml", "later", [])
    later.write_text(later.read_text() + "\n[io]\ncapture = false\n")
    run = record(tmp_path / "app.py", "--trace-filter", f"{no_io}::{later}",
                 trace_dir=tmp_path / "t2")
    f = run.metadata["filters"]
    assert f["io"] == {"capture": False, "streams": []}
    assert f["io_source"] == 3


def test_builtin_only_summary(tmp_path):
    write_files(tmp_path, APP)
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "t")
    f = run.metadata["filters"]
    assert f["sources"] == [builtin_source()]
    doc = tomllib.loads(BUILTIN_TOML.read_text())
    assert f["default_exec"] == doc["scope"]["default_exec"]
    assert f["default_value_action"] == doc["scope"]["default_value_action"]
    assert f["default_value_action_source"] == 0
    assert f["io"] == {"capture": False, "streams": []} and f["io_source"] is None
