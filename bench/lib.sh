# bench/lib.sh: what bench/run.sh and bench/grpc.sh share: a scratch
# directory and the processes started, stopped on exit; waiting for a port;
# waiting for coalmine to route the bench rollout's 5%; stopping the proxy
# started last. Sourced, not run.

tmp=$(mktemp -d)
children=()
finish() {
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap finish EXIT

listening() { # port: wait until something accepts on it
  local i
  for i in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

coalmine_at_5() { # the bench config's steps take the canary to 5% and hold it there
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:7079/api/v1/rollouts/bench 2>/dev/null | grep -q '"observedWeight":5' && return 0
    sleep 0.1
  done
}

halt() { # stop the proxy started last
  local last=${children[-1]}
  kill "$last" 2>/dev/null || true
  wait "$last" 2>/dev/null || true
  unset 'children[-1]'
  sleep 0.5 # let the port go
}
