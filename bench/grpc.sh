#!/usr/bin/env bash
# bench/grpc.sh: gRPC unary calls/s and tail latency through coalmine next
# to HAProxy (and nginx's grpc_pass when installed), on this machine, in one
# run. Every proxy splits 95/5 between two local gRPC upstreams over h2c
# (bench/grpcbench backend), and is loaded by bench/grpcbench load: C
# callers making unary calls back to back over 4 HTTP/2 connections. Rounds
# alternate the proxies.
#
#   bench/grpc.sh
#   ROUNDS=5 CALLERS="64 256" DURATION=20s bench/grpc.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
CALLERS=${CALLERS:-64 256}
DURATION=${DURATION:-10s}
PROXIES=${PROXIES:-nginx haproxy coalmine}

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

echo "# building coalmine and grpcbench" >&2
go build -o "$tmp/coalmine" "$root/cmd/coalmine"
go build -o "$tmp/grpcbench" "$root/bench/grpcbench"

"$tmp/grpcbench" backend -addr 127.0.0.1:9101 -version v1 & children+=($!)
"$tmp/grpcbench" backend -addr 127.0.0.1:9102 -version v2 & children+=($!)
listening 9101
listening 9102

cat >"$tmp/nginx.conf" <<EOF2
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  upstream versions {
    server 127.0.0.1:9101 weight=95;
    server 127.0.0.1:9102 weight=5;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:8080 http2;
    location / { grpc_pass grpc://versions; }
  }
}
EOF2
cat >"$tmp/haproxy.cfg" <<EOF2
global
  nbthread 2
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend in
  bind 127.0.0.1:8080 proto h2
  default_backend versions
backend versions
  balance roundrobin
  http-reuse always
  server v1 127.0.0.1:9101 weight 95 proto h2
  server v2 127.0.0.1:9102 weight 5 proto h2
EOF2

launch() {
  case $1 in
  nginx) command -v nginx >/dev/null || return 1
    nginx -c "$tmp/nginx.conf" -g 'daemon off;' & ;;
  haproxy) command -v haproxy >/dev/null || return 1
    haproxy -f "$tmp/haproxy.cfg" -db & ;;
  coalmine)
    rm -rf "$tmp/data"
    "$tmp/coalmine" serve -f "$root/bench/grpc.yaml" --data-dir "$tmp/data" --admin 127.0.0.1:7079 --log-level warn >"$tmp/coalmine.log" 2>&1 & ;;
  *) echo "unknown proxy $1" >&2; return 1 ;;
  esac
  children+=($!)
  listening 8080
  if [ "$1" = coalmine ]; then coalmine_at_5; fi
}

results=$tmp/results
: >"$results"
printf '%-9s %7s %5s %11s %9s %9s %7s\n' proxy callers round calls/s p50_ms p99_ms errors
for round in $(seq "$ROUNDS"); do
  for callers in $CALLERS; do
    for proxy in $PROXIES; do
      if ! launch "$proxy"; then
        [ "$round" = 1 ] && [ "$callers" = "${CALLERS%% *}" ] && echo "# $proxy is not installed: skipped"
        continue
      fi
      "$tmp/grpcbench" load -addr 127.0.0.1:8080 -c 16 -d 2s >/dev/null # warm up
      read -r cps p50 p99 errors < <("$tmp/grpcbench" load -addr 127.0.0.1:8080 -c "$callers" -d "$DURATION")
      printf '%-9s %7s %5s %11s %9s %9s %7s\n' "$proxy" "$callers" "$round" "$cps" "$p50" "$p99" "$errors"
      echo "$proxy $callers $round $cps $p99" >>"$results"
      halt
    done
  done
done

echo
echo "# means over $ROUNDS rounds, and the ratio to the first proxy measured (calls/s: higher is better; p99: lower is better)"
awk '
  { key = $1 " " $2; cps[key] += $4; p99[key] += $5; n[key]++; callers[$2] = 1; if (!first) first = $1; proxies[$1] = 1 }
  END {
    printf "%-9s %7s %11s %9s %10s %10s\n", "proxy", "callers", "mean_c/s", "mean_p99", "c/s ratio", "p99 ratio"
    for (c in callers) for (p in proxies) {
      k = p " " c; if (!(k in n)) continue
      r = cps[k] / n[k]; l = p99[k] / n[k]; fk = first " " c
      printf "%-9s %7s %11.0f %9.3f %10.2f %10.2f\n", p, c, r, l, r / (cps[fk] / n[fk]), l / (p99[fk] / n[fk])
    }
  }' "$results" | sort -k2,2n -k1,1
