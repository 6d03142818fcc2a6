#!/usr/bin/env bash
# bench/run.sh: measure coalmine against nginx, HAProxy and Caddy with the
# shared proxy benchmark (../shared/bench/proxy-bench.sh), splitting 95/5.
#
#   bench/run.sh                    # default config (subject cookies on)
#   CONFIG=bench/bench-nocookie.yaml bench/run.sh
#
# A rollout starts with its canary at 0%, so the weight is set once in a
# scratch data dir before the benchmark; coalmine resumes it from there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
config=${CONFIG:-$root/bench/bench.yaml}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/coalmine" "$root/cmd/coalmine"
"$work/coalmine" serve -f "$config" --data-dir "$work/data" --admin 127.0.0.1:7079 --log-level warn &
for _ in $(seq 50); do "$work/coalmine" set weight bench 5 --server http://127.0.0.1:7079 >/dev/null 2>&1 && break; sleep 0.1; done
kill %1; wait %1 2>/dev/null || true

CONTENDER="$work/coalmine serve -f $config --data-dir $work/data --admin 127.0.0.1:7079 --log-level warn" \
  "$shared/bench/proxy-bench.sh"
