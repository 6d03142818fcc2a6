#!/usr/bin/env bash
# bench/soak.sh: run coalmine at full load (wrk, 64 connections, 95/5 split)
# for DURATION (default 600s) and sample its resident memory every 10 s, to
# check that memory stays flat. Prints one line per sample: seconds, RSS MiB,
# Go heap MiB, goroutines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-600}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
go build -o "$work/backend" "$root/bench/backend"
go build -o "$work/coalmine" "$root/cmd/coalmine"
"$work/backend" -addr 127.0.0.1:9001 -version v1 &
"$work/backend" -addr 127.0.0.1:9002 -version v2 &
"$work/coalmine" serve -f "$root/bench/bench.yaml" --data-dir "$work/data" --admin 127.0.0.1:7079 --log-level warn &
pid=$!
# The config's steps hold the canary at 5%; wait until the API answers.
for _ in $(seq 50); do curl -sf http://127.0.0.1:7079/readyz >/dev/null && break; sleep 0.1; done
wrk -t1 -c64 -d"${DURATION}s" http://127.0.0.1:8080/ > "$work/wrk.txt" &
wrkpid=$!
printf '%8s %8s %8s %10s\n' seconds rss_mib heap_mib goroutines
start=$(date +%s)
while kill -0 $wrkpid 2>/dev/null; do
  m=$(curl -s http://127.0.0.1:7079/metrics)
  heap=$(awk '/^go_memstats_heap_inuse_bytes /{printf "%.1f", $2/1048576}' <<<"$m")
  gor=$(awk '/^go_goroutines /{print $2}' <<<"$m")
  rss=$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$pid/status)
  printf '%8s %8s %8s %10s\n' $(( $(date +%s) - start )) "$rss" "$heap" "$gor"
  sleep 10
done
cat "$work/wrk.txt"
