#!/usr/bin/env bash
# Installs the Debian packages the build and the test suite need, only when missing.
#   capnproto               - `capnp`, used at build time by the trace format crate
#   prometheus              - a real Prometheus server and promtool, for the metrics tests
#   prometheus-pushgateway  - a real Pushgateway, for the push tests
#   zsh, fish               - real shells that check the generated completion scripts
set -euo pipefail

want=()
command -v capnp >/dev/null 2>&1 || want+=(capnproto)
command -v prometheus >/dev/null 2>&1 || want+=(prometheus)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || want+=(prometheus-pushgateway)
command -v zsh >/dev/null 2>&1 || want+=(zsh)
command -v fish >/dev/null 2>&1 || want+=(fish)
command -v python3.11 >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || want+=(python3 python3-venv)

if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install: ${want[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing Debian packages: ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps the Prometheus packages from pulling in a desktop's worth of extras.
$sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${want[@]}" | sort -u) >/dev/null
