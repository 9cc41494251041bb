#!/usr/bin/env bash
# Event stream latency on PostgreSQL: a fresh database with a seeded organization,
# the release server, N SSE streams (GET /events?paths=tags) and one writer creating
# tags at a steady rate; reports when each stream got each write, p50/p90/p99/max.
#   scripts/bench_stream.sh [CLIENTS=1000] [WRITES=200] [PER_SECOND=20]
# Needs PostgreSQL on 127.0.0.1:5432 and about CLIENTS + 100 open files per process.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-1000}"
WRITES="${2:-200}"
RATE="${3:-20}"
DB="${BENCH_DB:-inbox_stream_bench}"
PORT="${BENCH_PORT:-39110}"
BIN=target/release/inbox-gateway
CLIENT=target/release/examples/bench_stream
cargo build --release --quiet --bin inbox-gateway --example bench_stream
# One socket per stream, in the client and in the server.
ulimit -n "$(( CLIENTS + 1024 > $(ulimit -Hn) ? $(ulimit -Hn) : CLIENTS + 1024 ))"
echo "open files: $(ulimit -n)"
# The rate limit is off: the streams and the writes are one organization's.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=0
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
SEED=$("$BIN" seed --conversations 1000)
EMAIL=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['admin_email'])" "$SEED")
"$BIN" serve > /tmp/inbox-stream-bench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
echo "$(nproc) CPUs; server, PostgreSQL and client on this machine"
"$CLIENT" "http://127.0.0.1:$PORT" "$TOKEN" "$CLIENTS" "$WRITES" "$RATE"
