"""`ct-rollout fix-filters` as a user runs it: real projects with real filter files, real
`ct-record --shadow-compare` runs, then the command (dry run, --write), then a fresh shadow
run that must have no filter decision change left."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import tomllib

import pytest

BIN = os.path.dirname(sys.executable)
CT_RECORD = os.path.join(BIN, "ct-record")
CT_ROLLOUT = os.path.join(BIN, "ct-rollout")

FILTER_HEAD = """\
# The project's trace filter: comments and layout must survive fix-filters.
[meta]
name = "proj"
version = 1

[scope]
default_exec = "trace"        # trace unless a rule says otherwise
default_value_action = "allow"
"""


def write_tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def tree_digest(root):
    """Every file under `root` (names and bytes), so 'nothing changed' can be asserted."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def shadow_run(proj, run_dir, *target, env=None):
    full_env = dict(os.environ, **(env or {}))
    done = subprocess.run([CT_RECORD, "--shadow-compare", "--quiet", "--trace-dir", str(run_dir), *target],
                          cwd=proj, capture_output=True, text=True, timeout=120, env=full_env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((run_dir / "shadow" / "summary.json").read_text())
    records = [json.loads(line) for line in
               (run_dir / "shadow" / "divergences.ndjson").read_text().splitlines() if line.strip()]
    changes = [r for r in records if r["kind"] == "filter_decision_changed"]
    fdc = summary["filter_decision_changes"]
    assert fdc["trace_to_skip"] + fdc["skip_to_trace"] == len(changes)
    return changes


def fix_filters(*args, cwd):
    return subprocess.run([CT_ROLLOUT, "fix-filters", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def check_fixed_by_write(tmp_path, proj, target, env=None, expect_in_diff=()):
    """The whole workflow on one project: a shadow run with changes, a dry run that changes
    nothing and shows the diff, --write, and a fresh run without changes. Returns the
    edited filter text."""
    flt = proj / ".codetracer" / "trace-filter.toml"
    before = flt.read_text()
    changes = shadow_run(proj, tmp_path / "run1", *target, env=env)
    assert changes, "the project must have filter decision changes to fix"

    digest = tree_digest(proj)
    dry = fix_filters(tmp_path / "run1", cwd=proj)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "diff --ct-rollout a/.codetracer/trace-filter.toml" in dry.stdout, dry.stdout
    for text in expect_in_diff:
        assert f"\n+{text}" in dry.stdout, dry.stdout
    assert "0 of " in dry.stdout and "remain" in dry.stdout, dry.stdout
    assert "nothing was changed" in dry.stdout
    assert tree_digest(proj) == digest, "a dry run must leave the tree byte-identical"

    wrote = fix_filters(tmp_path / "run1", "--write", cwd=proj)
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert "ct-rollout: done: 1 filter file(s) edited" in wrote.stdout, wrote.stdout
    after = flt.read_text()
    # Every original line is still there, comments included, in order.
    it = iter(after.splitlines())
    assert all(line in it for line in before.splitlines()), after
    tomllib.loads(after)

    assert shadow_run(proj, tmp_path / "run2", *target, env=env) == []
    again = fix_filters(tmp_path / "run2", cwd=proj)
    assert again.returncode == 0 and "nothing to fix" in again.stdout, again.stdout
    return after


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_rule_keyed_on_a_src_prefixed_name(tmp_path):
    """`pkg:src.shop.*` skip: legacy's filters judge the src layout as `src.shop.pricing`
    (skipped); the globals engine names it `shop.pricing` (traced). The fix copies the rule
    with the prefix rewritten, so it keeps covering the whole package."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
# Generated code: not worth tracing.
[[scope.rules]]
selector = "pkg:src.shop.*"
exec = "skip"
reason = "generated"
""",
        "src/shop/__init__.py": "",
        "src/shop/pricing.py": """
            def price(x):
                return x * 2
            """,
        "main.py": """
            import shop.pricing
            print(shop.pricing.price(2))
            """,
    })
    after = check_fixed_by_write(tmp_path, proj, ["main.py"], env={"PYTHONPATH": str(proj / "src")},
                                 expect_in_diff=['selector = "pkg:glob:shop.*"'])
    rules = tomllib.loads(after)["scope"]["rules"]
    assert [r["selector"] for r in rules] == ["pkg:src.shop.*", "pkg:glob:shop.*"]
    assert rules[1]["exec"] == "skip" and rules[1]["reason"] == "generated"
    assert "# Added by `ct-rollout fix-filters`" in after


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_rule_keyed_on_a_scripts_path_derived_name(tmp_path):
    """A script is `tools.report` for legacy's filters (its project-relative path) and
    `__main__` for the globals engine: the fix is a `file:` selector."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "pkg:literal:tools.report"
exec = "skip"
""",
        "tools/report.py": """
            def total(xs):
                return sum(xs)
            print(total([1, 2, 3]))
            """,
    })
    after = check_fixed_by_write(tmp_path, proj, ["tools/report.py"],
                                 expect_in_diff=['selector = "file:literal:tools/report.py"'])
    assert tomllib.loads(after)["scope"]["rules"][1] == {
        "selector": "file:literal:tools/report.py", "exec": "skip"}


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_module_run_with_dash_m(tmp_path):
    """`pkg:literal:pkg.cli` skip and `ct-record -m pkg.cli`: globals names it `__main__`."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "pkg:literal:pkg.cli"   # the command line entry point
exec = "skip"
""",
        "pkg/__init__.py": "",
        "pkg/cli.py": """
            def main():
                return 0
            print("cli", main())
            """,
    })
    after = check_fixed_by_write(tmp_path, proj, ["-m", "pkg.cli"],
                                 expect_in_diff=['selector = "file:literal:pkg/cli.py"'])
    assert "# the command line entry point" in after


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_rule_that_now_matches_gets_an_exception_with_the_legacy_value_policy(tmp_path):
    """`pkg:glob:shop.*` skip never matched legacy's `src.shop.pricing` (traced, values
    redacted by the builtin's catch-all); the globals engine's `shop.pricing` matches. The
    fix is an exception after the rule that keeps the legacy decision and its value patterns."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "pkg:glob:shop.*"
exec = "skip"
""",
        "src/shop/__init__.py": "",
        "src/shop/pricing.py": """
            def price(x):
                token = "s3cret"
                return x * 2
            """,
        "main.py": """
            import shop.pricing
            print(shop.pricing.price(2))
            """,
    })
    after = check_fixed_by_write(tmp_path, proj, ["main.py"], env={"PYTHONPATH": str(proj / "src")},
                                 expect_in_diff=['selector = "pkg:literal:shop.pricing"'])
    added = tomllib.loads(after)["scope"]["rules"][1]
    assert added["exec"] == "trace" and added["reason"].startswith("exception to `pkg:glob:shop.*`")
    # The builtin catch-all's redaction patterns come along: values stay redacted.
    assert {p["action"] for p in added["value_patterns"]} == {"redact"}
    assert any(p["selector"].startswith("local:regex:") for p in added["value_patterns"])


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_what_cannot_be_fixed_is_named_and_exits_1(tmp_path):
    """An `obj:` rule for a script (no selector combines a file and an object) and a
    decision of the builtin filter (never edited: advice for the project filter)."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "obj:literal:tools.report.total"
exec = "skip"
""",
        "tools/report.py": """
            def total(xs):
                return sum(xs)
            print(total([1, 2, 3]))
            """,
        # Named `asyncio.job` by legacy's filters: skipped by the builtin's runtime rule.
        "asyncio/job.py": "print('job')\n",
    })
    assert shadow_run(proj, tmp_path / "r1", "tools/report.py")
    assert shadow_run(proj, tmp_path / "r2", "asyncio/job.py")
    digest = tree_digest(proj)
    done = fix_filters(tmp_path / "r1", tmp_path / "r2", "--write", cwd=proj)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "not fixed:" in out and "cannot combine a file and an" in out, out
    assert "builtin filter" in out and "for your project filter" in out, out
    assert 'selector = "file:literal:asyncio/job.py"' in out, out
    assert "2 of 2 filter decision change(s) remain" in out, out
    assert tree_digest(proj) == digest


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_bad_input_is_status_2_and_changes_nothing(tmp_path):
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "pkg:literal:pkg.cli"
exec = "skip"
""",
        "pkg/__init__.py": "",
        "pkg/cli.py": "print('cli')\n",
    })
    flt = proj / ".codetracer" / "trace-filter.toml"
    assert shadow_run(proj, tmp_path / "run", "-m", "pkg.cli")

    missing = fix_filters(tmp_path / "nowhere", cwd=proj)
    assert missing.returncode == 2 and missing.stderr.startswith("ct-rollout: error:"), missing.stderr

    flt.write_text(flt.read_text() + "\n[[scope.rules]\nselector = \n")
    digest = tree_digest(proj)
    broken = fix_filters(tmp_path / "run", "--write", cwd=proj)
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "is not valid TOML" in broken.stderr and str(flt) in broken.stderr, broken.stderr
    assert tree_digest(proj) == digest

    flt.unlink()
    gone = fix_filters(tmp_path / "run", "--write", cwd=proj)
    assert gone.returncode == 2 and "cannot be read" in gone.stderr, gone.stderr
    assert not flt.exists()


def test_completions_offer_fix_filters_and_write(tmp_path):
    """The completion scripts are generated from the command line definition: the new
    subcommand and its option are offered by the real shells."""
    import re
    import shutil

    def generated(shell_name):
        return subprocess.run([CT_ROLLOUT, "completions", shell_name], capture_output=True,
                              text=True, timeout=60, check=True).stdout

    bash = shutil.which("bash")
    assert bash, "bash is not installed: run scripts/install-system-deps.sh"
    script = tmp_path / "ct-rollout.bash"
    script.write_text(generated("bash"))
    fn = re.search(r"complete -F (\S+) .*\bct-rollout\b", script.read_text()).group(1)
    probe = (f"source {script}; COMP_WORDS=(ct-rollout fix); COMP_CWORD=1; "
             f"COMP_LINE='ct-rollout fix'; COMP_POINT=${{#COMP_LINE}}; "
             f"{fn} ct-rollout fix ct-rollout; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    done = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fix-filters"], done.stdout

    # A subcommand's options: fish (bash cannot complete any ct-rollout subcommand's options,
    # a clap_complete bug with hyphenated program names, clap-rs/clap#6421).
    fish = shutil.which("fish")
    assert fish, "fish is not installed: run scripts/install-system-deps.sh"
    script = tmp_path / "ct-rollout.fish"
    script.write_text(generated("fish"))
    done = subprocess.run([fish, "--no-config", "-c",
                           f"source {script}; complete -C 'ct-rollout fix-filters --wr'"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == ["--write"], done.stdout


@pytest.mark.legacy_engine  # records with --shadow-compare
def test_several_filter_files_are_written_all_or_none(tmp_path):
    """Rules to fix in the project filter and in a --trace-filter file: one diff for both,
    a failure after the first file is replaced restores it (nothing changed), then a clean
    --write edits both and a fresh run has no change left."""
    proj = write_tree(tmp_path / "proj", {
        ".codetracer/trace-filter.toml": FILTER_HEAD + """
[[scope.rules]]
selector = "pkg:src.shop.*"
exec = "skip"
""",
        "filters/extra.toml": FILTER_HEAD.replace('name = "proj"', 'name = "extra"') + """
[[scope.rules]]
selector = "pkg:src.gen.*"
exec = "skip"
""",
        "src/shop/__init__.py": "",
        "src/shop/pricing.py": "def price(x):\n    return x * 2\n",
        "src/gen/__init__.py": "",
        "src/gen/models.py": "X = 1\n",
        "main.py": "import shop.pricing, gen.models\nprint(shop.pricing.price(2), gen.models.X)\n",
    })
    env = {"PYTHONPATH": str(proj / "src")}
    target = ["--trace-filter", "filters/extra.toml", "main.py"]
    assert shadow_run(proj, tmp_path / "run1", *target, env=env)
    digest = tree_digest(proj)

    failing = subprocess.run([CT_ROLLOUT, "fix-filters", "--write", str(tmp_path / "run1")], cwd=proj,
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, CT_ROLLOUT_TEST_FAIL_AFTER="1"))
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "every file was restored, nothing changed" in failing.stderr, failing.stderr
    assert tree_digest(proj) == digest

    wrote = fix_filters(tmp_path / "run1", "--write", cwd=proj)
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert "diff --ct-rollout a/.codetracer/trace-filter.toml" in wrote.stdout
    assert "diff --ct-rollout a/filters/extra.toml" in wrote.stdout
    assert "ct-rollout: done: 2 filter file(s) edited" in wrote.stdout, wrote.stdout
    extra = tomllib.loads((proj / "filters" / "extra.toml").read_text())["scope"]["rules"]
    assert [r["selector"] for r in extra] == ["pkg:src.gen.*", "pkg:glob:gen.*"]
    assert shadow_run(proj, tmp_path / "run2", *target, env=env) == []

    # The old evidence against the edited files: nothing remains, and the note says why.
    old = fix_filters(tmp_path / "run1", cwd=proj)
    assert old.returncode == 0, old.stdout
    assert "changed since run" in old.stdout and "0 of " in old.stdout, old.stdout
