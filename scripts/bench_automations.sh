#!/usr/bin/env bash
# Automation runs on PostgreSQL: a fresh database with a seeded organization, the
# release server (webhook targets on loopback allowed), a local webhook receiver,
# and N executions of `[webhook → receiver, update_status closed]` triggered through
# POST /automations-executions; reports runs per second from the first trigger to
# the last run finished (examples/bench_automations.rs).
#   scripts/bench_automations.sh [RUNS=1000] [CONVERSATIONS=1000]
# APP__AUTOMATION_CONCURRENCY sets the runs the server runs at once (default 8).
# Needs PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1000}"
CONVERSATIONS="${2:-1000}"
DB="${BENCH_DB:-inbox_automations_bench}"
PORT="${BENCH_PORT:-39120}"
BIN=target/release/inbox-gateway
CLIENT=target/release/examples/bench_automations
cargo build --release --quiet --bin inbox-gateway --example bench_automations
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=0 APP__AUTOMATION_WEBHOOK_ALLOW_LOOPBACK=true
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq)
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
SEED=$("$BIN" seed --conversations "$CONVERSATIONS" --messages "$CONVERSATIONS")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$SEED" "$1"; }
EMAIL=$(field admin_email); ORG=$(field organization_id)
"$BIN" serve > /tmp/inbox-automations-bench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; tail -3 /tmp/inbox-automations-bench-server.log >&2; exit 1; }
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
read -r LO HI < <("${PSQL[@]}" -F' ' -c \
  "SELECT MIN(id), MAX(id) FROM conversations WHERE organization_id = $ORG AND deleted_at IS NULL")
echo "build: $BIN; organization $ORG: conversations $LO..$HI; automation concurrency ${APP__AUTOMATION_CONCURRENCY:-8}"
"$CLIENT" "http://127.0.0.1:$PORT" "$TOKEN" "$LO" "$HI" "$RUNS"
echo "events by automations: $("${PSQL[@]}" -c "SELECT COUNT(*) FROM events WHERE actor->>'type' = 'automation'")"
echo "jobs: $("${PSQL[@]}" -c "SELECT status || '=' || COUNT(*) FROM jobs WHERE kind = 'automation.run' GROUP BY status")"
