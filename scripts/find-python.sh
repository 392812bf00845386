#!/usr/bin/env bash
# Prints the path of a CPython X.Y interpreter, or fails with a message saying where it looked.
#   scripts/find-python.sh 3.12
# Looks at PYTHON_X_Y (e.g. PYTHON_3_12=/opt/py/bin/python3.12), then pythonX.Y on PATH, then
# pyenv's versions (these machines carry 3.12 and 3.13 there). A candidate counts only if it
# runs and reports version X.Y: a pyenv shim for a version pyenv does not select fails here.
set -euo pipefail
want=${1:?usage: find-python.sh X.Y}
var="PYTHON_${want//./_}"
candidates=()
[ -n "${!var:-}" ] && candidates+=("${!var}")
command -v "python$want" >/dev/null 2>&1 && candidates+=("$(command -v "python$want")")
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for dir in "$root"/versions/"$want".*/bin; do
    [ -x "$dir/python$want" ] && candidates+=("$dir/python$want")
done
for py in ${candidates[@]+"${candidates[@]}"}; do
    got=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    if [ "$got" = "$want" ]; then
        echo "$py"
        exit 0
    fi
done
echo "error: no CPython $want found (looked at \$$var, python$want on PATH, $root/versions/$want.*)." >&2
echo "       Install it, point $var at it, or leave it out: SKIP_PYTHONS=$want (or PYTHONS=...)." >&2
exit 1
