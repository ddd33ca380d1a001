#!/usr/bin/env bash
# Benchmarks of the whole system on this machine: chat throughput and latency (100 and
# 1,000 pairs, at peak and at half of peak), memory per idle session (10,000 sessions),
# and startup time. Loopback only; every step is bounded and stops by itself.
# Usage: scripts/bench.sh [duration-seconds]   (results go to stdout; copy into BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
cargo build --release -q -p switchboard
BIN=$PWD/target/release/switchboard
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "# $($BIN --version), rustc $(rustc --version | cut -d' ' -f2)"

start_server() {
  # The load tester and the server share this machine's cores.
  # All clients come from 127.0.0.1, and a closed-loop client outruns the per-session
  # frame limit meant for people: raise both for the benchmark.
  SWITCHBOARD_LIMITS__MAX_CONNECTIONS_PER_ADDRESS=30000 SWITCHBOARD_LIMITS__MAX_FRAMES_PER_SECOND=100000 \
  SWITCHBOARD_LIMITS__PUBLIC_REQUESTS_PER_MINUTE=100000000 \
  SWITCHBOARD_LOG_LEVEL=warn \
    "$BIN" serve --demo --data-dir "$WORK/data" --http 127.0.0.1:0 > "$WORK/out" 2> "$WORK/err" &
  echo $! > "$WORK/pid"
  for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/^listening //p' "$WORK/out")
}
stop_server() { kill "$(cat "$WORK/pid")"; wait "$(cat "$WORK/pid")" 2>/dev/null || true; rm -rf "$WORK/data"; }

chat() { # pairs
  local peak rate
  peak=$("$BIN" loadtest chat --url "$URL" --pairs "$1" --duration "$DURATION" --json)
  echo "chat pairs=$1 peak:      $peak"
  rate=$(python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['delivered_per_s']/2))" "$peak")
  echo "chat pairs=$1 half-peak: $("$BIN" loadtest chat --url "$URL" --pairs "$1" --duration "$DURATION" --rate "$rate" --json)"
}

start_server
chat 100
chat 1000
stop_server

start_server
echo "queues:                  $("$BIN" loadtest queues --url "$URL" --queues 50 --experts 1000 --seekers 400 --arrival-rate 200 --api-rps 200 --duration "$((DURATION * 4))" --churn 0.01 --json)"
if command -v wrk >/dev/null 2>&1; then
  echo "status API (wrk):        $(wrk -t2 -c64 -d10s "$URL/api/v1/queues/support/status" | grep Requests/sec)"
  echo "legacy status (wrk):     $(wrk -t2 -c64 -d10s "$URL/ITFramework/webclient?getSTStatus=Demo%20Support" | grep Requests/sec)"
else
  echo "status API: install wrk (apt-get install wrk) to measure"
fi
stop_server

start_server
echo "idle sessions=10000:     $("$BIN" loadtest idle --url "$URL" --sessions 10000 --hold 3 --json)"
echo "server RSS after idle test: $(grep -E '^process_resident_memory_bytes' <(curl -s "$URL/metrics"))"
stop_server

# Startup: process start to "listening" (ready to serve), median of 5.
startup() { # extra args
  local times=() t0 t1
  for _ in 1 2 3 4 5; do
    t0=$(date +%s%N)
    SWITCHBOARD_ADMIN_PASSWORD=bench "$BIN" serve --data-dir "$WORK/s" --http 127.0.0.1:0 "$@" > "$WORK/sout" 2>/dev/null &
    local pid=$!
    until grep -q listening "$WORK/sout" 2>/dev/null; do sleep 0.002; done
    t1=$(date +%s%N)
    kill $pid; wait $pid 2>/dev/null || true
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}
rm -rf "$WORK/s"
SWITCHBOARD_ADMIN_PASSWORD=bench "$BIN" serve --data-dir "$WORK/s" --http 127.0.0.1:0 > "$WORK/sout" 2>/dev/null & p=$!
until grep -q listening "$WORK/sout" 2>/dev/null; do sleep 0.01; done; kill $p; wait $p 2>/dev/null || true
echo "startup (existing SQLite data, median of 5): $(startup) ms"
echo "startup (fresh folder: creates the database and the admin, one run): $(rm -rf "$WORK/s"; t0=$(date +%s%N); SWITCHBOARD_ADMIN_PASSWORD=bench "$BIN" serve --data-dir "$WORK/f" --http 127.0.0.1:0 > "$WORK/fout" 2>/dev/null & p=$!; until grep -q listening "$WORK/fout" 2>/dev/null; do sleep 0.002; done; t1=$(date +%s%N); kill $p; wait $p 2>/dev/null; echo $(( (t1 - t0) / 1000000 ))) ms"
