#!/usr/bin/env bash
# AgentPhone webhook ingest on PostgreSQL: a fresh database, an organization and
# its admin (create-admin), the release server, one AgentPhone channel account, then
# examples/bench_webhooks.rs sends MESSAGES signed agent.message deliveries over
# CONVERSATIONS conversations from SENDERS senders, 20% of them delivered twice.
# Afterwards counts the stored SMS messages straight from PostgreSQL: MESSAGES
# distinct external ids and MESSAGES rows (nothing lost, nothing stored twice).
#   scripts/bench_webhooks.sh [MESSAGES=20000] [CONVERSATIONS=2000] [SENDERS=16]
# This machine's PostgreSQL runs with autovacuum off, so tables filled during the run
# would keep the planner's empty-table guesses (lookups by id scanning the organization's
# rows through another index): the script runs ANALYZE every BENCH_ANALYZE_SECS (5; 0
# never), as autovacuum's auto-analyze would. BENCH_DB_SET='synchronous_commit=off' (any
# name=value) sets that on the database for an experiment. Needs PostgreSQL on
# 127.0.0.1:5432 (trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${1:-20000}"
CONVERSATIONS="${2:-2000}"
SENDERS="${3:-16}"
DB="${BENCH_DB:-bench_webhooks}"
PORT="${BENCH_PORT:-39120}"
BIN=target/release/inbox-gateway
CLIENT=target/release/examples/bench_webhooks
cargo build --release --quiet --bin inbox-gateway --example bench_webhooks
# The rate limit is off: every delivery is one organization's.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=0
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq)
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
if [ -n "${BENCH_DB_SET:-}" ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "ALTER DATABASE $DB SET ${BENCH_DB_SET%%=*} = '${BENCH_DB_SET#*=}'"
  echo "database setting: $BENCH_DB_SET"
fi
"$BIN" create-admin --organization Bench --email admin@bench.test --password bench-password >/dev/null
"$BIN" serve > /tmp/inbox-webhooks-bench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; tail -3 /tmp/inbox-webhooks-bench-server.log >&2; exit 1; }
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d '{"strategy":"local","email":"admin@bench.test","password":"bench-password"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
SECRET=whsec_bench
ACCOUNT=$(curl -sf -XPOST "http://127.0.0.1:$PORT/channel-accounts" -H "Authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"channel\":\"sms\",\"provider\":\"agentphone\",\"name\":\"bench\",
  \"settings\":{\"agent_id\":\"agt_1\",\"numbers\":[{\"id\":\"num_1\",\"phone_number\":\"+15550001111\"}]},
  \"secrets\":{\"api_key\":\"sk_x\",\"webhook_secret\":\"$SECRET\"}}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "$(nproc) CPUs; server, PostgreSQL and client on this machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "channel account $ACCOUNT; last migration: $("${PSQL[@]}" -c "SELECT MAX(version) FROM seaql_migrations")"
ANALYZE_SECS="${BENCH_ANALYZE_SECS:-5}"
echo "ANALYZE every ${ANALYZE_SECS} s (0: never; autovacuum: $("${PSQL[@]}" -c "SHOW autovacuum"))"
if [ "$ANALYZE_SECS" != 0 ]; then
  while sleep "$ANALYZE_SECS"; do "${PSQL[@]}" -c "ANALYZE" 2>/dev/null || true; done &
  ANALYZER=$!
  trap 'kill $SERVER $ANALYZER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
fi
STATUS=0
"$CLIENT" "http://127.0.0.1:$PORT" "$ACCOUNT" "$SECRET" "$SERVER" "$DB" "$MESSAGES" "$CONVERSATIONS" "$SENDERS" || STATUS=$?
read -r TOTAL DISTINCT CONVS < <("${PSQL[@]}" -F' ' -c \
  "SELECT COUNT(*), COUNT(DISTINCT external_id), COUNT(DISTINCT conversation_id) FROM messages WHERE channel = 'sms'")
echo "PostgreSQL: $TOTAL sms messages, $DISTINCT distinct external ids, in $CONVS conversations (expected $MESSAGES, $MESSAGES, $CONVERSATIONS)"
echo "lost: $((MESSAGES - DISTINCT)), stored twice: $((TOTAL - DISTINCT))"
[ "$TOTAL" -eq "$MESSAGES" ] && [ "$DISTINCT" -eq "$MESSAGES" ] && [ "$CONVS" -eq "$CONVERSATIONS" ] || STATUS=1
exit "$STATUS"
