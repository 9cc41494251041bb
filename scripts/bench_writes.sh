#!/usr/bin/env bash
# Write-path benchmark on PostgreSQL: seeds N conversations (as scripts/bench.sh does)
# into a fresh database, starts the release server, and measures
# PATCH /conversations/:id with wrk (64 connections, 2 threads, 20 s): once on
# conversations drawn uniformly from the seeded organization's (writers rarely
# collide), once with every connection patching the same one (contention). The
# bodies alternate {"status":"open"}, {"unread_count":0} and {"assigned_user_id":
# <a seeded agent>} (scripts/bench_writes.lua).
#   scripts/bench_writes.sh [CONVERSATIONS=100000] [MESSAGES=1000]
# BIN=path measures another build; BENCH_REUSE=1 measures the database seeded last
# time again (the server migrates it first: auto_migrate is on in the default
# configuration); BENCH_DURATION=10s shortens each run.
# Needs wrk (apt-get install wrk) and PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVERSATIONS="${1:-100000}"
MESSAGES="${2:-1000}"
DB="${BENCH_DB:-inbox_bench}"
PORT="${BENCH_PORT:-39100}"
DURATION="${BENCH_DURATION:-20s}"
BIN="${BIN:-target/release/inbox-gateway}"
command -v wrk >/dev/null || apt-get install -y -qq wrk
[ -x "$BIN" ] || cargo build --release
# The per-organization limit stays on (its cost is measured) but high enough for wrk.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=1000000000
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq)
if [ -n "${BENCH_REUSE:-}" ] && [ -f "/tmp/$DB.seed.json" ]; then
  SEED=$(cat "/tmp/$DB.seed.json")   # reuse the last seeded database
else
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  echo "seeding $CONVERSATIONS conversations and $MESSAGES messages..."
  START=$(date +%s.%N)
  SEED=$("$BIN" seed --conversations "$CONVERSATIONS" --messages "$MESSAGES")
  echo "seeded in $(echo "$(date +%s.%N) - $START" | bc) s: $SEED"
  echo "$SEED" > "/tmp/$DB.seed.json"
fi
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$SEED" "$1"; }
EMAIL=$(field admin_email); ORG=$(field organization_id)
"$BIN" serve > /tmp/inbox-bench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; tail -3 /tmp/inbox-bench-server.log >&2; exit 1; }
echo "build: $BIN; last migration: $("${PSQL[@]}" -c "SELECT MAX(version) FROM seaql_migrations")"
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
# The organization's conversation ids: one contiguous range when seeded (checked).
read -r LO HI COUNT < <("${PSQL[@]}" -F' ' -c \
  "SELECT MIN(id), MAX(id), COUNT(*) FROM conversations WHERE organization_id = $ORG AND deleted_at IS NULL")
[ "$COUNT" -eq $((HI - LO + 1)) ] || { echo "conversation ids $LO..$HI are not contiguous ($COUNT rows)" >&2; exit 1; }
AGENTS=$("${PSQL[@]}" -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM users WHERE organization_id = $ORG AND role = 'agent'")
echo "organization $ORG: conversations $LO..$HI ($COUNT), agents $AGENTS"
HOT=$(( (LO + HI) / 2 ))
URL="http://127.0.0.1:$PORT/conversations"
for body in '{"status":"open"}' '{"unread_count":0}' "{\"assigned_user_id\":${AGENTS%%,*}}"; do
  echo "PATCH /conversations/$HOT $body: $(curl -s -o /dev/null -w '%{http_code}' -XPATCH "$URL/$HOT" \
    -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$body")"
done
events() {   # the outbox's rows (m0013 on): one per patched conversation
  if [ "$("${PSQL[@]}" -c "SELECT to_regclass('events') IS NOT NULL")" = t ]; then
    "${PSQL[@]}" -c "SELECT COUNT(*) FROM events"
  else echo "no events table"; fi
}
run() {
  local name="$1"; shift
  # The same start for every build: no dead rows from the run before, a fresh checkpoint.
  "${PSQL[@]}" -c "VACUUM ANALYZE conversations" -c "CHECKPOINT"
  local before; before=$(events)
  echo; echo "### $name"
  wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -s scripts/bench_writes.lua "$URL" -- "$LO" "$HI" "$AGENTS" "$@" \
    | grep -E "Requests/sec|^requests:|Non-2xx|Socket errors"
  echo "events rows: $before -> $(events)"
}
# Warm up (connections, caches, plans) before measuring.
wrk -t2 -c64 -d5s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -s scripts/bench_writes.lua "$URL" -- "$LO" "$HI" "$AGENTS" >/dev/null
run "(w1) PATCH /conversations/:id, random conversation of $COUNT"
run "(w2) PATCH /conversations/$HOT, every connection the same conversation" "$HOT"
