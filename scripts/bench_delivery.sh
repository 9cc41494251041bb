#!/usr/bin/env bash
# AgentPhone delivery throughput on PostgreSQL: for each account concurrency (the
# default 4, then HIGH), a fresh database, an organization and its admin
# (create-admin), the release server (AGENTPHONE_BASE_URL pointing at nothing: the
# account's settings.base_url names the fake), then examples/bench_delivery.rs: a fake
# AgentPhone answering each send after LATENCY_MS, CONVERSATIONS SMS conversations,
# MESSAGES messages enqueued and drained; sends/s, what the fake saw, CPU per send.
#   scripts/bench_delivery.sh [MESSAGES=2000] [HIGH=16] [CONVERSATIONS=100] [LATENCY_MS=50]
# DELIVERY_CONCURRENCY=n sets the delivery jobs a server runs at once (default 16,
# which caps HIGH). This machine's PostgreSQL runs with autovacuum off: the example
# analyzes the tables before the enqueue and before the drain, as autovacuum's
# auto-analyze would have by then (BENCH_ANALYZE=0: not). BENCH_DONE_JOBS=n first
# stores n finished delivery jobs (the history a running instance accumulates: finished
# jobs are kept). Needs PostgreSQL on 127.0.0.1:5432 (trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${1:-2000}"
HIGH="${2:-16}"
CONVERSATIONS="${3:-100}"
LATENCY_MS="${4:-50}"
DB="${BENCH_DB:-bench_delivery}"
PORT="${BENCH_PORT:-39130}"
BIN=target/release/inbox-gateway
CLIENT=target/release/examples/bench_delivery
cargo build --release --quiet --bin inbox-gateway --example bench_delivery
# The rate limit is off: every request is one organization's. Port 9 (discard) has no listener.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=0 AGENTPHONE_BASE_URL=http://127.0.0.1:9
if [ -n "${DELIVERY_CONCURRENCY:-}" ]; then export APP__DELIVERY_CONCURRENCY="$DELIVERY_CONCURRENCY"; fi
echo "$(nproc) CPUs; server, PostgreSQL, client and fake on this machine; delivery_concurrency ${DELIVERY_CONCURRENCY:-16 (default)}"
STATUS=0
for CONCURRENCY in 4 "$HIGH"; do
  echo; echo "### agentphone_account_concurrency $CONCURRENCY (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  "$BIN" create-admin --organization Bench --email admin@bench.test --password bench-password >/dev/null
  if [ "${BENCH_DONE_JOBS:-0}" -gt 0 ]; then
    psql -h 127.0.0.1 -U postgres -d "$DB" -qc "INSERT INTO jobs (organization_id, queue, kind, payload, status, run_at,
      attempts, max_attempts, created_at, updated_at, finished_at) SELECT NULL, 'delivery', 'agentphone.send', '{}', 'done',
      now(), 1, 12, now(), now(), now() FROM generate_series(1, $BENCH_DONE_JOBS)"
    echo "$BENCH_DONE_JOBS finished jobs stored beforehand"
  fi
  APP__AGENTPHONE_ACCOUNT_CONCURRENCY="$CONCURRENCY" "$BIN" serve > /tmp/inbox-delivery-bench-server.log 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; tail -3 /tmp/inbox-delivery-bench-server.log >&2; exit 1; }
  TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
    -d '{"strategy":"local","email":"admin@bench.test","password":"bench-password"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
  "$CLIENT" "http://127.0.0.1:$PORT" "$TOKEN" "$SERVER" "$DB" "$CONCURRENCY" "$MESSAGES" "$CONVERSATIONS" "$LATENCY_MS" || STATUS=1
  SENT=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq -c \
    "SELECT COUNT(*) FILTER (WHERE delivery_status = 'sent') || ' ' || COUNT(*) FROM messages WHERE direction = 'outbound'")
  echo "PostgreSQL: ${SENT% *} of ${SENT#* } outbound messages sent (expected $MESSAGES of $MESSAGES)"
  [ "$SENT" = "$MESSAGES $MESSAGES" ] || STATUS=1
  echo "jobs: $(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq -c \
    "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, COUNT(*) n FROM jobs WHERE kind = 'agentphone.send' AND organization_id IS NOT NULL GROUP BY status) s"), \
attempts per message: $(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq -c \
    "SELECT MIN(attempts) || '-' || MAX(attempts) FROM messages WHERE direction = 'outbound'")"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
done
exit "$STATUS"
