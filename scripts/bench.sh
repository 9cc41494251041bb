#!/usr/bin/env bash
# Benchmark on PostgreSQL: seeds N conversations (M messages in one of them, and S
# more spread over all of them) into a fresh database, starts the release server,
# and measures with wrk (64 connections, 2 threads, 20 s each).
#   scripts/bench.sh [CONVERSATIONS=1000000] [MESSAGES=100000] [SPREAD=1000000]
# BENCH_REUSE=1 measures the database seeded last time again.
# Needs wrk (apt-get install wrk) and PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVERSATIONS="${1:-1000000}"
MESSAGES="${2:-100000}"
SPREAD="${3:-1000000}"
DB="${BENCH_DB:-inbox_bench}"
PORT="${BENCH_PORT:-39100}"
DURATION="${BENCH_DURATION:-20s}"
BIN="${BIN:-target/release/inbox-gateway}"
command -v wrk >/dev/null || apt-get install -y -qq wrk
[ -x "$BIN" ] || cargo build --release
# The per-organization limit stays on (its cost is measured) but high enough for wrk.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=1000000000
if [ -n "${BENCH_REUSE:-}" ] && [ -f "/tmp/$DB.seed.json" ]; then
  SEED=$(cat "/tmp/$DB.seed.json")   # reuse the last seeded database
else
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  echo "seeding $CONVERSATIONS conversations, $MESSAGES messages in one and $SPREAD spread over all..."
  START=$(date +%s.%N)
  SEED=$("$BIN" seed --conversations "$CONVERSATIONS" --messages "$MESSAGES" --spread-messages "$SPREAD")
  echo "seeded in $(echo "$(date +%s.%N) - $START" | bc) s: $SEED"
  echo "$SEED" > "/tmp/$DB.seed.json"
fi
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$SEED" "$1"; }
EMAIL=$(field admin_email); CONV=$(field message_conversation_id); CHANNEL=$(field message_channel)
"$BIN" serve > /tmp/inbox-bench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
ONE=$(curl -sf -g "http://127.0.0.1:$PORT/conversations?\$limit=1&\$select[]=id" -H "Authorization: Bearer $TOKEN" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
run() {
  local name="$1" path="$2"
  echo; echo "### $name: GET $path"
  curl -s -g "http://127.0.0.1:$PORT$path" -H "Authorization: Bearer $TOKEN" | head -c 160 || true; echo
  wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" \
    | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
}
# Warm up (connections, caches, plans) before measuring.
wrk -t2 -c64 -d5s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/conversations?\$limit=50&status=open" >/dev/null
run "(a) open, newest first" '/conversations?$limit=50&status=open&$sort[last_interaction_at]=-1'
run "(b) same, skip 5000" '/conversations?$limit=50&status=open&$sort[last_interaction_at]=-1&$skip=5000'
run "(a') open + assigned user" '/conversations?$limit=50&status=open&assigned_user_id=5&$sort[last_interaction_at]=-1'
run "(a'') open + channel not playground" '/conversations?$limit=50&status=open&channel[$ne]=playground&$sort[last_interaction_at]=-1'
run "(a3) open + pipeline stage" '/conversations?$limit=50&status=open&pipeline_stage_id=1&$sort[last_interaction_at]=-1'
run "(a4) open + whatsapp" '/conversations?$limit=50&status=open&channel=whatsapp&$sort[last_interaction_at]=-1'
run "(c) get by id" "/conversations/$ONE"
run "(d) open + searchTerm" '/conversations?$limit=50&status=open&$sort[last_interaction_at]=-1&searchTerm=first12345'
run "(s1) open + messageSearchTerm, one message" '/conversations?$limit=50&status=open&$sort[last_interaction_at]=-1&messageSearchTerm=ticket-123457'
run "(s2) open + messageSearchTerm, a seventh of them" '/conversations?$limit=50&status=open&$sort[last_interaction_at]=-1&messageSearchTerm=parcel'
run "(m1) messages, first page" "/conversation-messages-$CHANNEL?conversation_id=$CONV&\$limit=50&\$sort[created_at]=-1&message_type[\$ne]=reaction"
run "(m2) messages, skip 10000" "/conversation-messages-$CHANNEL?conversation_id=$CONV&\$limit=50&\$sort[created_at]=-1&message_type[\$ne]=reaction&\$skip=10000"
