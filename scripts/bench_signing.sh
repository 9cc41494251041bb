#!/usr/bin/env bash
# POST /s3-url-signing on PostgreSQL: seeds N conversations into a fresh database,
# starts the release server with storage configured, and measures presigned-PUT
# signing with wrk (64 connections, 2 threads, 20 s; scripts/bench_signing.lua).
# Each request authenticates, loads the conversation (one query), checks the
# channel's limits and signs a PUT. The S3 endpoint is a closed port
# (127.0.0.1:9): signing is local CPU work, so every request still succeeds; a
# network round trip would fail it.
#   scripts/bench_signing.sh [CONVERSATIONS=10000]
# BIN=path measures another build; BENCH_DURATION=10s shortens the run.
# Needs wrk (apt-get install wrk) and PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
CONVERSATIONS="${1:-10000}"
DB="${BENCH_DB:-inbox_bench_signing}"
PORT="${BENCH_PORT:-39110}"
DURATION="${BENCH_DURATION:-20s}"
BIN="${BIN:-target/release/inbox-gateway}"
command -v wrk >/dev/null || apt-get install -y -qq wrk
[ -x "$BIN" ] || cargo build --release
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" APP_ENV=default RUST_LOG=warn PORT HOST=127.0.0.1 \
  APP__RATE_LIMIT_REQUESTS=1000000000 \
  S3_BUCKET=bench-files S3_REGION=us-east-1 S3_ENDPOINT=http://127.0.0.1:9 S3_FORCE_PATH_STYLE=true \
  AWS_ACCESS_KEY_ID=AKIABENCHKEY AWS_SECRET_ACCESS_KEY=bench-secret-key
PSQL=(psql -h 127.0.0.1 -U postgres -d "$DB" -Atq)
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
SEED=$("$BIN" seed --conversations "$CONVERSATIONS" --messages 0)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$SEED" "$1"; }
EMAIL=$(field admin_email); ORG=$(field organization_id)
"$BIN" serve > /tmp/inbox-bench-signing.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; tail -3 /tmp/inbox-bench-signing.log >&2; exit 1; }
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"bench-password\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
read -r LO HI COUNT < <("${PSQL[@]}" -F' ' -c \
  "SELECT MIN(id), MAX(id), COUNT(*) FROM conversations WHERE organization_id = $ORG AND deleted_at IS NULL")
[ "$COUNT" -eq $((HI - LO + 1)) ] || { echo "conversation ids $LO..$HI are not contiguous ($COUNT rows)" >&2; exit 1; }
URL="http://127.0.0.1:$PORT/s3-url-signing"
echo "organization $ORG: conversations $LO..$HI ($COUNT)"
echo "one answer: $(curl -s -XPOST "$URL" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"conversation_id\":$LO,\"file_name\":\"a.jpg\",\"file_type\":\"image/jpeg\",\"file_size\":100000}" | head -c 300)..."
wrk -t2 -c64 -d5s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -s scripts/bench_signing.lua "$URL" -- "$LO" "$HI" >/dev/null
echo; echo "### POST /s3-url-signing, random conversation of $COUNT"
wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -s scripts/bench_signing.lua "$URL" -- "$LO" "$HI" \
  | grep -E "Requests/sec|^requests:|Non-2xx|Socket errors"
