"""Value policies on real recordings: `arg:` redaction and drop, `ret:` drop (the identifier
is the function's `co_name`), `deny`, rule value defaults, the builtin filter's redaction of
secret-looking names, and spec F6 (a `drop` default discards earlier sources' patterns)."""

import re

import pytest

from filters_support import (
    DROPPED,
    REDACTED,
    project_filter,
    record,
    write_files,
)

PROGRAM = {
    "app.py": """
        def charge(customer, amount, note, blob):
            return amount * 2


        def compute_total(items):
            return sum(items)


        class Cart:
            def total(self, n):
                return n + 1


        def plain_fn(x):
            return x


        charge("ann", 10, "gift", "BLOBDATA")
        compute_total([1, 2, 3])
        Cart().total(4)
        plain_fn(7)
    """,
}


def run(tmp_path, rules, *options, **defaults):
    write_files(tmp_path, PROGRAM)
    project_filter(tmp_path, "values", rules, **defaults)
    return record(tmp_path / "app.py", *options, trace_dir=tmp_path / "trace").trace


def assert_untouched(t):
    """Functions no pattern applies to are recorded with their real values."""
    assert t.only_call("plain_fn").arg("x") == 7
    assert t.only_call("plain_fn").return_value == 7


def test_arg_pattern_redacts_only_that_argument(tmp_path):
    t = run(tmp_path, [{"selector": "file:app.py", "patterns": [("arg:note", "redact")]}])
    c = t.only_call("charge")
    assert c.arg_names == ["customer", "amount", "note", "blob"]
    assert c.arg("note") == REDACTED
    assert c.arg("customer") == "ann"
    assert c.arg("amount") == 10
    assert c.arg("blob") == "BLOBDATA"
    assert c.return_value == 20
    assert_untouched(t)


def test_arg_regex_pattern_and_deny_alias(tmp_path):
    t = run(
        tmp_path,
        [{"selector": "file:app.py", "patterns": [("arg:regex:^(note|x)$", "deny")]}],
    )
    c = t.only_call("charge")
    assert c.arg("note") == REDACTED  # deny = redact
    assert c.arg("customer") == "ann"
    assert t.only_call("plain_fn").arg("x") == REDACTED
    assert t.only_call("plain_fn").return_value == 7  # a ret is not an arg


def test_arg_pattern_drops_the_argument(tmp_path):
    t = run(tmp_path, [{"selector": "file:app.py", "patterns": [("arg:blob", "drop")]}])
    c = t.only_call("charge")
    assert c.arg_names == ["customer", "amount", "note"]
    assert c.arg("note") == "gift"
    assert c.return_value == 20
    assert_untouched(t)


def test_ret_pattern_drops_the_return_value_but_keeps_the_return_event(tmp_path):
    t = run(
        tmp_path,
        [{"selector": "file:app.py", "patterns": [("ret:compute_total", "drop")]}],
    )
    c = t.only_call("compute_total")
    assert c.returned
    assert c.return_value == DROPPED
    assert c.arg("items") != DROPPED  # the argument `items` is untouched
    assert t.only_call("charge").return_value == 20
    assert t.only_call("Cart.total").return_value == 5
    assert_untouched(t)


def test_ret_identifier_is_co_name_not_qualname(tmp_path):
    t = run(
        tmp_path,
        [{"selector": "file:app.py",
          "patterns": [("ret:Cart.total", "redact"), ("ret:total", "drop")]}],
    )
    # `Cart.total` is the qualname; `ret:` patterns test `co_name` = "total".
    assert t.only_call("Cart.total").return_value == DROPPED
    assert t.only_call("compute_total").return_value == 6  # glob is whole-string


def test_first_matching_pattern_of_the_kind_decides(tmp_path):
    t = run(
        tmp_path,
        [{"selector": "file:app.py",
          "patterns": [("arg:note", "allow"), ("arg:n*", "drop"), ("arg:*", "redact")]}],
    )
    c = t.only_call("charge")
    assert c.arg_names == ["customer", "amount", "note", "blob"]
    assert c.arg("note") == "gift"
    assert c.arg("customer") == REDACTED
    assert t.only_call("Cart.total").arg_names == ["self"]  # `n` dropped
    assert t.only_call("Cart.total").return_value == 5  # no ret: pattern


def test_rule_value_default_applies_where_no_pattern_matches(tmp_path):
    t = run(
        tmp_path,
        [{"selector": "obj:regex:\\.charge$", "value_default": "redact",
          "patterns": [("arg:amount", "allow")]}],
    )
    c = t.only_call("charge")
    assert c.arg("amount") == 10
    assert c.arg("customer") == REDACTED and c.arg("note") == REDACTED
    assert c.return_value == REDACTED
    assert_untouched(t)


def test_drop_default_discards_patterns_of_earlier_sources(tmp_path):
    """F6: the project's `drop` default switches off the builtin's redaction patterns: a
    secret-looking argument is then dropped, not redacted; the project's own patterns stay."""
    write_files(tmp_path, {
        "app.py": """
            def login(user, password, note):
                return len(password)


            login("ann", "hunter2", "hi")
        """,
    })
    project_filter(tmp_path, "drop-all", [], default_exec="inherit", default_value="drop")
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "trace").trace
    c = t.only_call("login")
    assert c.arg_names == []
    assert c.return_value == DROPPED

    project_filter(
        tmp_path, "drop-all",
        [{"selector": "file:app.py", "patterns": [("arg:user", "allow"), ("ret:login", "allow")]}],
        default_exec="inherit", default_value="drop",
    )
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "trace2").trace
    c = t.only_call("login")
    assert c.arg_names == ["user"]
    assert c.arg("user") == "ann"
    assert c.return_value == 7


# --- the builtin filter's redaction, no project filter -------------------------------------

# The sensitive words of src/filters/builtin.toml (rule 6), matched case-insensitively and
# unanchored; `api[_-]?key`-style entries are listed with both spellings.
SENSITIVE = [
    "pass", "pwd", "secret", "token", "session", "cookie", "auth", "credential", "creds",
    "bearer", "ssn", "credit", "card", "iban", "cvv", "cvc", "pan", "apikey", "api_key",
    "privatekey", "private_key", "sshkey", "ssh_key", "jwt",
]

ARG_NAMES = [
    "user", "password", "passphrase", "pwd", "api_key", "apikey", "APIKey", "private_key",
    "ssh_key", "jwt", "company", "author", "Session_id", "COOKIE", "bearer", "ssn",
    "credit_limit", "card", "iban", "cvv", "cvc", "creds", "credential", "secret", "token",
    "count", "key", "keyring", "name", "value", "sshkey", "privateKey",
]


def looks_sensitive(name):
    return any(word in name.lower() for word in SENSITIVE)


def test_builtin_filter_redacts_secret_looking_arguments_and_returns(tmp_path):
    params = ", ".join(ARG_NAMES)
    values = ", ".join(f"'v{i}'" for i in range(len(ARG_NAMES)))
    write_files(tmp_path, {
        "app.py": f"""
            def handler({params}):
                return 1


            def make_token():
                return "t0k"


            def company_name():
                return "ACME"


            def make_key():
                return "k"


            handler({values})
            make_token()
            company_name()
            make_key()
        """,
    })
    assert not (tmp_path / ".codetracer").exists()
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "trace").trace
    c = t.only_call("handler")
    assert c.arg_names == ARG_NAMES
    expected = {n: (REDACTED if looks_sensitive(n) else f"v{i}") for i, n in enumerate(ARG_NAMES)}
    assert {n: c.arg(n) for n in ARG_NAMES} == expected
    # Sanity of the expectation itself: both outcomes occur, and the quirks are in it.
    assert expected["company"] == REDACTED and expected["author"] == REDACTED
    assert expected["key"] == "v26" and expected["user"] == "v0"
    assert c.return_value == 1
    assert t.only_call("make_token").return_value == REDACTED
    assert t.only_call("company_name").return_value == REDACTED  # contains `pan`
    assert t.only_call("make_key").return_value == "k"


def test_without_the_builtin_filter_nothing_is_redacted(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            def login(user, password):
                return "token"


            def make_token():
                return "t0k"


            login("ann", "hunter2")
            make_token()
        """,
    })
    t = record(tmp_path / "app.py", "--no-default-filter", trace_dir=tmp_path / "trace").trace
    c = t.only_call("login")
    assert c.arg("password") == "hunter2"
    assert t.only_call("make_token").return_value == "t0k"


def test_a_matching_project_rule_replaces_the_builtin_patterns(tmp_path):
    """F5: a later matching rule's value patterns replace the current list even when it has
    none, so the builtin's redaction no longer applies to that code."""
    write_files(tmp_path, {
        "app.py": """
            def login(user, password):
                return 0


            def other(password):
                return 0


            login("ann", "hunter2")
            other("s3cret")
        """,
    })
    project_filter(tmp_path, "p", [{"selector": "obj:regex:\\.login$", "reason": "no patterns"}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "trace").trace
    assert t.only_call("login").arg("password") == "hunter2"
    assert t.only_call("other").arg("password") == REDACTED


LOGIN = {
    "app.py": """
        def login(user, password, note):
            return len(password)


        login("ann", "hunter2", "hi")
    """,
}


def test_drop_set_by_a_later_file_discards_an_earlier_files_patterns(tmp_path):
    """F6: the final value default is `drop`, set by the CLI file (source 2); the value
    patterns in force come from the project file (source 1), earlier: discarded."""
    from filters_support import write_filter

    write_files(tmp_path, LOGIN)
    project_filter(tmp_path, "p", [{"selector": "file:app.py",
                                    "patterns": [("arg:user", "allow"), ("arg:note", "redact")]}])
    cli = write_filter(tmp_path / "drop.toml", "drop", [], default_value="drop")
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    c = t.only_call("login")
    assert c.arg_names == []
    assert c.return_value == DROPPED
    # Without the CLI file the project's patterns apply (value default allow, builtin's).
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t2").trace
    c = t.only_call("login")
    assert (c.arg("user"), c.arg("password"), c.arg("note")) == ("ann", "hunter2", REDACTED)


def test_patterns_of_the_source_that_set_drop_and_later_ones_are_kept(tmp_path):
    from filters_support import write_filter

    write_files(tmp_path, LOGIN)
    project_filter(tmp_path, "p", [], default_value="drop")
    cli = write_filter(tmp_path / "allow-user.toml", "allow-user", [
        {"selector": "file:app.py", "patterns": [("arg:user", "allow"), ("arg:password", "redact")]},
    ])
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    c = t.only_call("login")
    assert c.arg_names == ["user", "password"]
    assert (c.arg("user"), c.arg("password")) == ("ann", REDACTED)
    assert c.return_value == DROPPED


def test_a_later_allow_default_brings_the_builtin_patterns_back(tmp_path):
    from filters_support import write_filter

    write_files(tmp_path, LOGIN)
    project_filter(tmp_path, "p", [], default_value="drop")
    cli = write_filter(tmp_path / "allow.toml", "allow", [], default_value="allow")
    t = record(tmp_path / "app.py", "--trace-filter", str(cli), trace_dir=tmp_path / "t").trace
    c = t.only_call("login")
    assert (c.arg("user"), c.arg("password"), c.arg("note")) == ("ann", REDACTED, "hi")
    assert c.return_value == 7


def test_dropped_and_redacted_values_appear_nowhere_in_the_trace(tmp_path):
    write_files(tmp_path, {
        "app.py": """
            def charge(customer, blob, password):
                return "RET-" + blob


            charge("ann", "BLOB-7f3a", "pw-9c1e")
        """,
    })
    project_filter(tmp_path, "p", [{"selector": "obj:regex:\\.charge$", "patterns": [
        ("arg:blob", "drop"), ("arg:password", "redact"), ("ret:charge", "drop")]}])
    run = record(tmp_path / "app.py", trace_dir=tmp_path / "t")
    c = run.trace.only_call("charge")
    assert c.arg_names == ["customer", "password"] and c.return_value == DROPPED
    for p in run.trace_dir.iterdir():
        text = p.read_text(errors="replace")
        for secret in ("BLOB-7f3a", "pw-9c1e", "RET-"):
            assert secret not in text, (p.name, secret)
    bin_run = record(tmp_path / "app.py", "--format", "binary", trace_dir=tmp_path / "tb")
    import json

    dumped = json.dumps(bin_run.trace.events)
    assert "ann" in dumped
    for secret in ("BLOB-7f3a", "pw-9c1e", "RET-"):
        assert secret not in dumped


def test_rule_value_default_drop_keeps_its_own_patterns(tmp_path):
    write_files(tmp_path, LOGIN)
    project_filter(tmp_path, "p", [{"selector": "file:app.py", "value_default": "drop",
                                    "patterns": [("arg:user", "allow")]}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t").trace
    c = t.only_call("login")
    assert c.arg_names == ["user"] and c.arg("user") == "ann"
    assert c.return_value == DROPPED


def test_rule_value_default_deny_is_redact(tmp_path):
    write_files(tmp_path, LOGIN)
    project_filter(tmp_path, "p", [{"selector": "file:app.py", "value_default": "deny"}])
    t = record(tmp_path / "app.py", trace_dir=tmp_path / "t").trace
    c = t.only_call("login")
    assert c.arg_names == ["user", "password", "note"]
    assert all(c.arg(n) == REDACTED for n in c.arg_names)
    assert c.return_value == REDACTED
