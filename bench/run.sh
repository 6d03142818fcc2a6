#!/usr/bin/env bash
# bench/run.sh: coalmine's proxy throughput and tail latency next to nginx,
# HAProxy and Caddy, on this machine, in one run. Every proxy splits 95/5
# between two local upstreams (bench/backend) and is loaded with wrk on
# loopback; rounds alternate the proxies so that drift of the machine hits
# them alike. At the end it prints each proxy's mean over the rounds and
# its ratio to nginx.
#
#   bench/run.sh
#   ROUNDS=5 CONNS="64 256" DURATION=20s bench/run.sh
#   CONFIG=bench/bench-nocookie.yaml bench/run.sh        # without subject cookies
#   BASELINE=v0.9 PROXIES="nginx coalmine baseline" bench/run.sh
#       # also builds coalmine at that git revision and measures it as
#       # "baseline", in the same rounds: an A/B of a change
#
# Needs go and wrk; nginx, haproxy and caddy are measured when installed
# (apt-get install -y wrk nginx-light haproxy caddy). Everything listens on
# 127.0.0.1: upstreams on 9001 and 9002, the proxy under test on 8080.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=${CONFIG:-$root/bench/bench.yaml}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64 256}
DURATION=${DURATION:-10s}
PROXIES=${PROXIES:-nginx haproxy caddy coalmine}

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

if ! command -v wrk >/dev/null; then
  echo "bench/run.sh needs wrk: apt-get install -y wrk" >&2
  exit 2
fi
echo "# building coalmine and the test upstream" >&2
go build -o "$tmp/coalmine" "$root/cmd/coalmine"
go build -o "$tmp/backend" "$root/bench/backend"
if [ -n "${BASELINE:-}" ]; then
  echo "# building coalmine at $BASELINE as the baseline" >&2
  mkdir "$tmp/baseline-src"
  git -C "$root" archive "$BASELINE" | tar -x -C "$tmp/baseline-src"
  (cd "$tmp/baseline-src" && go build -o "$tmp/coalmine-baseline" ./cmd/coalmine)
fi

"$tmp/backend" -addr 127.0.0.1:9001 -version v1 2>/dev/null & children+=($!)
"$tmp/backend" -addr 127.0.0.1:9002 -version v2 2>/dev/null & children+=($!)
listening 9001
listening 9002

# The same split for every proxy: keep-alive to the upstreams, no logs.
cat >"$tmp/nginx.conf" <<EOF
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  upstream versions {
    server 127.0.0.1:9001 weight=95;
    server 127.0.0.1:9002 weight=5;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:8080;
    location / {
      proxy_pass http://versions;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend in
  bind 127.0.0.1:8080
  default_backend versions
backend versions
  balance roundrobin
  http-reuse always
  server v1 127.0.0.1:9001 weight 95
  server v2 127.0.0.1:9002 weight 5
EOF
cat >"$tmp/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:8080 {
  reverse_proxy 127.0.0.1:9001 127.0.0.1:9002 {
    lb_policy weighted_round_robin 95 5
  }
}
EOF

launch() { # proxy: start it in the background; fail when it is not installed
  case $1 in
  nginx) command -v nginx >/dev/null || return 1
    nginx -c "$tmp/nginx.conf" -g 'daemon off;' & ;;
  haproxy) command -v haproxy >/dev/null || return 1
    haproxy -f "$tmp/haproxy.cfg" -db & ;;
  caddy) command -v caddy >/dev/null || return 1
    caddy run --adapter caddyfile --config "$tmp/Caddyfile" >"$tmp/caddy.log" 2>&1 & ;;
  coalmine | baseline)
    local bin=$tmp/coalmine
    if [ "$1" = baseline ]; then
      [ -x "$tmp/coalmine-baseline" ] || { echo "baseline: set BASELINE to a git revision" >&2; return 1; }
      bin=$tmp/coalmine-baseline
    fi
    rm -rf "$tmp/data"
    "$bin" serve -f "$config" --data-dir "$tmp/data" --admin 127.0.0.1:7079 --log-level warn >"$tmp/coalmine.log" 2>&1 & ;;
  *) echo "unknown proxy $1" >&2; return 1 ;;
  esac
  children+=($!)
  listening 8080
  case $1 in coalmine | baseline) coalmine_at_5 ;; esac
}

# to_ms converts a wrk duration (850.12us, 7.41ms, 1.02s) to milliseconds.
to_ms() {
  awk -v d="$1" 'BEGIN {
    if (d ~ /us$/) { sub(/us$/, "", d); printf "%.3f", d / 1000 }
    else if (d ~ /ms$/) { sub(/ms$/, "", d); printf "%.3f", d }
    else if (d ~ /s$/) { sub(/s$/, "", d); printf "%.3f", d * 1000 }
    else print d }'
}

results=$tmp/results # lines: proxy conns round rps p99_ms
: >"$results"
printf '%-9s %6s %5s %11s %9s %9s %7s\n' proxy conns round req/s p50_ms p99_ms errors
for round in $(seq "$ROUNDS"); do
  for conns in $CONNS; do
    for proxy in $PROXIES; do
      if ! launch "$proxy"; then
        [ "$round" = 1 ] && [ "$conns" = "${CONNS%% *}" ] && echo "# $proxy is not installed: skipped"
        continue
      fi
      wrk -t1 -c16 -d2s http://127.0.0.1:8080/ >/dev/null 2>&1 || true # warm up
      report=$(wrk -t2 -c"$conns" -d"$DURATION" --latency http://127.0.0.1:8080/)
      rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$report")
      p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$report")")
      p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$report")")
      errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {n += 1} END {print n + 0}' <<<"$report")
      printf '%-9s %6s %5s %11s %9s %9s %7s\n' "$proxy" "$conns" "$round" "$rps" "$p50" "$p99" "$errors"
      echo "$proxy $conns $round $rps $p99" >>"$results"
      halt
    done
  done
done

echo
echo "# means over $ROUNDS rounds, and the ratio to nginx (throughput: higher is better; p99: lower is better)"
awk '
  { key = $1 " " $2; rps[key] += $4; p99[key] += $5; n[key]++; conns[$2] = 1; proxies[$1] = 1 }
  END {
    printf "%-9s %6s %11s %9s %12s %12s\n", "proxy", "conns", "mean_req/s", "mean_p99", "rps/nginx", "p99/nginx"
    for (c in conns) for (p in proxies) {
      k = p " " c; if (!(k in n)) continue
      r = rps[k] / n[k]; l = p99[k] / n[k]; nk = "nginx " c
      rr = "-"; lr = "-"
      if (nk in n) { rr = sprintf("%.2f", r / (rps[nk] / n[nk])); lr = sprintf("%.2f", l / (p99[nk] / n[nk])) }
      printf "%-9s %6s %11.0f %9.3f %12s %12s\n", p, c, r, l, rr, lr
    }
  }' "$results" | sort -k2,2n -k1,1
