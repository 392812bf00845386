#!/usr/bin/env bash
# `make demo`: record the bundled example project and show what was recorded.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
out="$root/examples/shop/trace-out"

cd "$root/examples/shop"
rm -rf "$out"
echo "\$ ct-record --trace-dir examples/shop/trace-out scripts/daily_report.py 7"
"$venv/bin/ct-record" --trace-dir "$out" scripts/daily_report.py 7
echo
"$venv/bin/python" -m ct_recorder.summary "$out"
