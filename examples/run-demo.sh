#!/usr/bin/env bash
# `make demo`: record the bundled example project three ways under --shadow-compare (a
# script, `-m`, runpy), then print the rollout report over the three runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.venv/bin"
cd "$root/examples/shop"
rm -rf runs
mkdir -p runs

# run NAME [ENV=VALUE...] -- PROGRAM ARGS...: one shadow run into runs/NAME.
run() {
    local name=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    echo "\$ ${envs[*]:+${envs[*]} }ct-record --shadow-compare --trace-dir runs/$name $*"
    env ${envs[@]+"${envs[@]}"} "$bin/ct-record" --shadow-compare --trace-dir "runs/$name" "$@"
    echo
}
run script -- scripts/daily_report.py 7
run module PYTHONPATH=src -- -m shop 3
run runpy -- scripts/run_tool.py

echo "\$ ct-rollout report runs/script runs/module runs/runpy"
"$bin/ct-rollout" report runs/script runs/module runs/runpy
echo
echo "Traces and shadow artifacts: examples/shop/runs/*/ (trace.json, shadow/divergences.ndjson, ...)"
echo "One trace, summarised:"
"$bin/python" -m ct_recorder.summary runs/script
