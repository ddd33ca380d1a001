#!/usr/bin/env bash
# A/B chat relay throughput of two server builds on this machine, run alternately so that
# background load hits both alike. Loopback only; each run is bounded (10 s).
# Usage: scripts/bench-ab.sh OLD_BINARY NEW_BINARY [rounds]   (one JSON line per run)
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-2}
run() {
  local bin=$1 work
  work=$(mktemp -d)
  SWITCHBOARD_LIMITS__MAX_CONNECTIONS_PER_ADDRESS=30000 SWITCHBOARD_LIMITS__MAX_FRAMES_PER_SECOND=100000 \
  SWITCHBOARD_LOG_LEVEL=warn "$bin" serve --demo --data-dir "$work/data" --http 127.0.0.1:0 > "$work/out" 2> "$work/err" &
  local pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
  local url
  url=$(sed -n 's/^listening //p' "$work/out")
  # The same client (the new build's load tester) for both servers.
  "$NEW" loadtest chat --url "$url" --pairs 100 --duration 10 --json 2>/dev/null | tail -1
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$work"
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  echo "old $(run "$OLD")"
  echo "new $(run "$NEW")"
done
