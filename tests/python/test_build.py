"""The build a user gets: `make test` builds the extension once per interpreter, and the
release profile (what `make build` installs and a wheel ships) strips debug info and symbols."""

import subprocess
import tomllib
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


def test_the_release_profile_ships_a_stripped_extension():
    # `make test` runs every suite on the `suite` build profile (one compilation of the
    # dependencies per interpreter), so no suite runs on the release build; what a wheel and
    # `make build` ship is fixed by these settings, checked here.
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())
    release = cargo["profile"]["release"]
    assert release.get("strip") == "symbols", release
    assert release.get("debug") in (False, 0, "none"), release
    maturin = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["maturin"]
    assert maturin.get("profile", "release") == "release", maturin
    build = subprocess.run(["make", "-n", "build"], cwd=REPO, capture_output=True, text=True,
                           timeout=60)
    assert build.returncode == 0, build.stderr
    assert "maturin develop --release" in build.stdout, build.stdout
