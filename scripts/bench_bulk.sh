#!/usr/bin/env bash
# Bulk action benchmark on PostgreSQL: seeds N conversations into a fresh database,
# starts the release server, asks for `update_status` over all of them
# (POST /conversations-bulk-actions with an empty filter) and times it from the
# request to `completed`; then checks the totals and the events in the database.
#   scripts/bench_bulk.sh [CONVERSATIONS=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
CONVERSATIONS="${1:-100000}"
DB="${BENCH_DB:-inbox_bench_bulk}"
PORT="${BENCH_PORT:-39110}"
BIN="${BIN:-target/release/inbox-gateway}"
[ -x "$BIN" ] || cargo build --release
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DB" -tAc)
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
echo "seeding $CONVERSATIONS conversations..."
SEED=$("$BIN" seed --conversations "$CONVERSATIONS")
EMAIL=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['admin_email'])" "$SEED")
"$BIN" serve > /tmp/inbox-bench-bulk.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
EVENTS_BEFORE=$("${PSQL[@]}" "SELECT COUNT(*) FROM events WHERE path = 'conversations' AND event = 'patched'")
START=$(date +%s.%N)
ANSWER=$(curl -sf -XPOST "http://127.0.0.1:$PORT/conversations-bulk-actions" -H "Authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"action": "update_status", "status": "open", "filter": {}}')
ANSWERED=$(date +%s.%N)
ID=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['id'])" "$ANSWER")
echo "answered in $(echo "$ANSWERED - $START" | bc) s: $ANSWER" | head -c 400; echo
while true; do
  STATUS=$("${PSQL[@]}" "SELECT status FROM bulk_actions WHERE id = $ID")
  [ "$STATUS" != running ] && break
  sleep 0.05
done
END=$(date +%s.%N)
echo "status $STATUS after $(echo "$END - $START" | bc) s"
"${PSQL[@]}" "SELECT 'total ' || total || ', processed ' || processed_count || ', failed ' || failed_count FROM bulk_actions WHERE id = $ID"
echo "open conversations: $("${PSQL[@]}" "SELECT COUNT(*) FROM conversations WHERE status = 'open' AND deleted_at IS NULL")"
EVENTS_AFTER=$("${PSQL[@]}" "SELECT COUNT(*) FROM events WHERE path = 'conversations' AND event = 'patched'")
echo "conversation patched events: $((EVENTS_AFTER - EVENTS_BEFORE))"
echo "bulk action patched events (batches): $("${PSQL[@]}" "SELECT COUNT(*) FROM events WHERE path = 'conversations-bulk-actions' AND event = 'patched'")"
