"""The build a user gets: `make test` builds the extension once, and the release extension
(what `make build` installs and a wheel ships) carries no debug info or symbol table."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_test_builds_the_extension_once_per_interpreter():
    # The interpreters this run covers (PYTHONS less SKIP_PYTHONS, as make was told).
    listed = subprocess.run(["make", "-s", "pythons"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    pythons = listed.stdout.split()
    assert pythons, "make pythons listed no interpreter"
    # A dry run prints every command make would run, sub-makes included.
    done = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    builds = [line for line in done.stdout.splitlines() if "maturin develop" in line]
    assert len(builds) == len(pythons), done.stdout
    # Each into its own venv: .venv for 3.11, .venv-3.X for the others.
    venvs = sorted(".venv" if v == "3.11" else f".venv-{v}" for v in pythons)
    built = sorted(line.split()[0].split("/bin/maturin")[0] for line in builds)
    assert built == venvs, done.stdout


def sections(path):
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is needed to inspect the extension"
    out = subprocess.run([readelf, "-S", "-W", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {word for line in out.splitlines() for word in line.split() if word.startswith(".")}


def test_the_release_extension_is_stripped():
    import ct_recorder._native as native

    found = sections(native.__file__)
    assert ".text" in found
    leftovers = sorted(s for s in found if s.startswith(".debug") or s == ".symtab")
    assert not leftovers, (
        f"{native.__file__} has {leftovers}: expected the stripped release build "
        "(`make build`; `make bench` installs the `profiling` build, which keeps them)")
