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
cat <<'EOF'

What this means
  The gates above are expected to FAIL: three small runs of a toy project are far below the
  evidence rollout.toml asks for (min_runs, min_comparisons; and the unexpected-rate gate
  judges the rate's 95 % upper bound, which stays wide until there are thousands of
  comparisons, even with 0 unexpected divergences). The filter decision changes are
  real, though: the legacy filters judged `src.shop.pricing`, the globals filters judge
  `shop.pricing`, so after the switch the project rule `pkg:glob:shop.pricing` starts to skip
  the pricing module. That is ADR 0016 working as intended, and the kind of change to review.

What a real rollout does next
  1. Record shadow runs of real workloads (CI test suites, staging jobs):
       ct-record --shadow-compare --trace-dir runs/NAME ...   (or CODETRACER_SHADOW_COMPARE=1)
  2. Check each FILTER DECISION CHANGES entry: keep the new decision, or change the rule so
     it says what it meant under the old names.
  3. Re-run `ct-rollout report --check RUN_DIR...` until every gate passes (exit status 0),
     then flip the default (docs/rollout.md).
EOF
echo
echo "Traces and shadow artifacts: examples/shop/runs/*/ (trace.ctc, shadow/divergences.ndjson, ...)"
echo "One trace, summarised:"
"$bin/python" -m ct_recorder.summary runs/script
