#!/usr/bin/env bash
# bench/run.sh: measure coalmine against nginx, HAProxy and Caddy with the
# shared proxy benchmark (../shared/bench/proxy-bench.sh), splitting 95/5.
#
#   bench/run.sh                    # default config (subject cookies on)
#   CONFIG=bench/bench-nocookie.yaml bench/run.sh
#
# The config's steps take the canary to 5% and hold it there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
config=${CONFIG:-$root/bench/bench.yaml}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/coalmine" "$root/cmd/coalmine"

CONTENDER="$work/coalmine serve -f $config --data-dir $work/data --admin 127.0.0.1:7079 --log-level warn" \
  "$shared/bench/proxy-bench.sh"
