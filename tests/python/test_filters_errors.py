"""A filter that cannot be loaded: exit status 2, a message naming the file, the line and
column (when known) and the offending text, the program never started, no trace written
(docs/trace-filters.md "Errors"; spec F2, F3)."""

import re

import pytest

from filters_support import filter_toml, record, write_files

PROGRAM = {
    "app.py": """
        import os

        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "started.txt"), "w") as f:
            f.write("the program ran")


        def work():
            return 1


        work()
    """,
}

VALID = filter_toml("ok", [{"selector": "pkg:app", "exec": "trace"}],
                    default_exec="trace", default_value="allow")

HEADER = """[meta]
name = "bad"
version = 1

[scope]
default_exec = "trace"
default_value_action = "allow"
"""


def locate(text, needle):
    """1-based line and column of the first occurrence of `needle` in `text`."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def assert_refused(run, tmp_path, filter_path, where=None, text=None):
    assert run.returncode == 2, (run.returncode, run.stderr)
    head = f"trace filter {filter_path}"
    if where is not None:
        head += f":{where[0]}:{where[1]}:"
    assert head in run.stderr, run.stderr
    if text is not None:
        assert text in run.stderr, run.stderr
    assert not (tmp_path / "started.txt").exists(), "the program was started"
    assert not run.trace_dir.exists(), "a trace directory was written"


def bad_cli_file(tmp_path, body):
    write_files(tmp_path, PROGRAM)
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    return path, record(tmp_path / "app.py", "--trace-filter", str(path),
                        trace_dir=tmp_path / "trace")


def test_sanity_the_valid_file_runs_the_program(tmp_path):
    write_files(tmp_path, PROGRAM)
    (tmp_path / "ok.toml").write_text(VALID)
    run = record(tmp_path / "app.py", "--trace-filter", str(tmp_path / "ok.toml"),
                 trace_dir=tmp_path / "trace")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "started.txt").read_text() == "the program ran"
    assert run.trace.only_call("work").return_value == 1


def test_malformed_toml(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:app\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    line, _ = locate(body, 'selector = "pkg:app')
    assert_refused(run, tmp_path, path)
    assert re.search(re.escape(f"trace filter {path}:{line}:") + r"\d+: ", run.stderr), run.stderr


def test_unknown_key_in_a_rule(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:app"\nexcec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, "excec"), "excec")


def test_unknown_key_in_meta(tmp_path):
    body = HEADER.replace('version = 1\n', 'version = 1\nauthor = "me"\n')
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, "author"), "author")


def test_selector_with_an_unknown_match_type(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:app:core"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"pkg:app:core"'), "pkg:app:core")


def test_selector_with_an_unknown_kind(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "module:app"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"module:app"'), "module:app")


def test_value_kind_used_as_a_scope_selector(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "arg:password"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"arg:password"'), "arg:password")


def test_scope_kind_used_as_a_value_pattern(tmp_path):
    body = (HEADER + '\n[[scope.rules]]\nselector = "pkg:app"\n'
            '\n[[scope.rules.value_patterns]]\nselector = "file:app.py"\naction = "redact"\n')
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"file:app.py"'), "file:app.py")


def test_regex_that_does_not_compile(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:regex:^(app|lib"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"pkg:regex:^(app|lib"'), "pkg:regex:^(app|lib")


def test_value_pattern_regex_that_does_not_compile(tmp_path):
    body = (HEADER + '\n[[scope.rules]]\nselector = "pkg:app"\n'
            '\n[[scope.rules.value_patterns]]\nselector = "arg:regex:[a-"\naction = "redact"\n')
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"arg:regex:[a-"'), "arg:regex:[a-")


def test_glob_that_does_not_compile(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "file:glob:src/[ab.py"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"file:glob:src/[ab.py"'), "src/[ab.py")


def test_file_literal_climbing_above_its_start(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "file:literal:../../etc/x.py"\nexec = "skip"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"file:literal:../../etc/x.py"'))


def test_invalid_exec_value(tmp_path):
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:app"\nexec = "sometimes"\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"sometimes"'), "sometimes")


def test_version_zero(tmp_path):
    body = HEADER.replace("version = 1", "version = 0")
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, "0\n"))


def test_missing_meta_section(tmp_path):
    body = HEADER.split("[scope]")[1]
    path, run = bad_cli_file(tmp_path, "[scope]" + body)
    assert_refused(run, tmp_path, path)
    assert "meta" in run.stderr


@pytest.mark.parametrize("key", ["default_exec", "default_value_action"])
def test_inherit_in_the_first_source_of_the_chain(tmp_path, key):
    body = HEADER.replace(f'{key} = "{"trace" if key == "default_exec" else "allow"}"',
                          f'{key} = "inherit"')
    assert '"inherit"' in body
    write_files(tmp_path, PROGRAM)
    path = tmp_path / "base.toml"
    path.write_text(body)
    run = record(tmp_path / "app.py", "--no-default-filter", "--trace-filter", str(path),
                 trace_dir=tmp_path / "trace")
    assert_refused(run, tmp_path, path, locate(body, '"inherit"'), "inherit")


def test_inherit_after_the_builtin_is_fine(tmp_path):
    write_files(tmp_path, PROGRAM)
    path = tmp_path / "base.toml"
    path.write_text(filter_toml("base", []))  # both defaults inherit
    run = record(tmp_path / "app.py", "--trace-filter", str(path), trace_dir=tmp_path / "trace")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "started.txt").exists()


def test_missing_cli_filter_file(tmp_path):
    write_files(tmp_path, PROGRAM)
    missing = tmp_path / "nope" / "strict.toml"
    run = record(tmp_path / "app.py", "--trace-filter", str(missing), trace_dir=tmp_path / "trace")
    assert_refused(run, tmp_path, missing)


def test_missing_file_in_the_env_variable(tmp_path):
    write_files(tmp_path, PROGRAM)
    (tmp_path / "ok.toml").write_text(VALID)
    missing = tmp_path / "gone.toml"
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "trace",
                 env={"CODETRACER_TRACE_FILTER": f"{tmp_path / 'ok.toml'}::{missing}"})
    assert_refused(run, tmp_path, missing)


def test_a_bad_file_later_in_a_list_stops_everything(tmp_path):
    write_files(tmp_path, PROGRAM)
    (tmp_path / "ok.toml").write_text(VALID)
    body = HEADER + '\n[[scope.rules]]\nselector = ""\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    run = record(tmp_path / "app.py", "--trace-filter", f"{tmp_path / 'ok.toml'}::{bad}",
                 trace_dir=tmp_path / "trace")
    assert_refused(run, tmp_path, bad, locate(body, '""'))


def test_bad_project_file(tmp_path):
    write_files(tmp_path, PROGRAM)
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:app"\nexec = "skip"\nextra = 1\n'
    path = tmp_path / ".codetracer" / "trace-filter.toml"
    path.parent.mkdir()
    path.write_text(body)
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "trace")
    assert_refused(run, tmp_path, path, locate(body, "extra"), "extra")


def test_io_capture_without_streams(tmp_path):
    body = HEADER + "\n[io]\ncapture = true\n"
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, "true"))


def test_io_modes_must_be_empty(tmp_path):
    body = HEADER + '\n[io]\nmodes = ["append"]\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '["append"]'))


def test_io_unknown_stream(tmp_path):
    body = HEADER + '\n[io]\ncapture = true\nstreams = ["stdout", "socket"]\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"socket"'), "socket")


def test_crlf_line_endings_keep_line_and_column(tmp_path):
    body = (HEADER + '\n[[scope.rules]]\nselector = "pkg:app:core"\n').replace("\n", "\r\n")
    path, run = bad_cli_file(tmp_path, body)
    line, col = locate(body.replace("\r\n", "\n"), '"pkg:app:core"')
    assert_refused(run, tmp_path, path, (line, col), "pkg:app:core")


def test_column_counts_characters_not_bytes(tmp_path):
    body = HEADER + 'rules = [{ reason = "çàéèü", selector = "pkg:app:core" }]\n'
    path, run = bad_cli_file(tmp_path, body)
    assert_refused(run, tmp_path, path, locate(body, '"pkg:app:core"'), "pkg:app:core")


def test_an_existing_trace_directory_is_left_untouched(tmp_path):
    write_files(tmp_path, PROGRAM)
    trace_dir = tmp_path / "trace"
    trace_dir.mkdir()
    (trace_dir / "trace.bin").write_text("old trace")
    (trace_dir / "trace_metadata.json").write_text("old metadata")
    bad = tmp_path / "bad.toml"
    bad.write_text(HEADER + '\n[[scope.rules]]\nselector = "obj:"\n')
    run = record(tmp_path / "app.py", f"--trace-filter={bad}", trace_dir=trace_dir)
    assert run.returncode == 2
    assert f"trace filter {bad}" in run.stderr
    assert not (tmp_path / "started.txt").exists()
    assert sorted(p.name for p in trace_dir.iterdir()) == ["trace.bin", "trace_metadata.json"]
    assert (trace_dir / "trace.bin").read_text() == "old trace"
    assert (trace_dir / "trace_metadata.json").read_text() == "old metadata"


def test_bad_filter_with_dash_m(tmp_path):
    write_files(tmp_path, PROGRAM)
    body = HEADER + '\n[[scope.rules]]\nselector = "pkg:regex:("\n'
    path = tmp_path / ".codetracer" / "trace-filter.toml"
    path.parent.mkdir()
    path.write_text(body)
    run = record(None, module="app", cwd=tmp_path, trace_dir=tmp_path / "trace")
    assert_refused(run, tmp_path, path, locate(body, '"pkg:regex:("'), "pkg:regex:(")
