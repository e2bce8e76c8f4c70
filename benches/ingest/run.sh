#!/bin/bash
# One ingest run: starts the server on CONFIG, waits for /readyz, drives it with wrk (16
# keep-alive connections, 2 threads) running SCRIPT for SECONDS, and prints requests/s and the
# server's CPU per request (utime + stime from /proc). Run from the repository root:
#   BIN=target/release/coda bash benches/ingest/run.sh benches/ingest/bench.toml memories.lua 10
# Interleave two builds (BIN=...) to compare them side by side on a noisy machine.
set -euo pipefail
CONF=$1
SCRIPT=$2
SECS=${3:-10}
BIN=${BIN:-target/release/coda}
rm -rf target/ingest-bench
"$BIN" serve --config "$CONF" > /tmp/coda-ingest-server.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -sf http://127.0.0.1:18765/readyz > /dev/null && break
  sleep 0.05
done
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
C0=$(cpu)
OUT=$(wrk -t2 -c16 -d"${SECS}s" -s "benches/ingest/$SCRIPT" http://127.0.0.1:18765)
C1=$(cpu)
REQS=$(echo "$OUT" | awk '/requests in/{print $1}')
RPS=$(echo "$OUT" | awk '/Requests\/sec/{print $2}')
echo "$SCRIPT on $CONF: $RPS req/s, server CPU $(echo "scale=1; ($C1 - $C0) * 1000000 / $TCK / $REQS" | bc) µs/request"
echo "$OUT" | grep -i "non-2xx\|socket errors" || true
