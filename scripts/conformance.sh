#!/usr/bin/env bash
# Runs the Feathers conformance suite (../shared/feathers-conformance) against a
# freshly started server with the fixture on.
#   scripts/conformance.sh [DATABASE_URL]     default: a new SQLite file
# Exit code: the suite's (number of failing tests).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED_DIR:-$(cd .. && pwd)/shared}"
BIN="${BIN:-target/debug/inbox-gateway}"
WORK="$(mktemp -d)"
export APP_ENV=test
export DATABASE_URL="${1:-sqlite://$WORK/conformance.db?mode=rwc}"
export PORT="${CONFORMANCE_PORT:-38080}"
export HOST=127.0.0.1
EMAIL="conformance-$RANDOM$RANDOM@example.com"
"$BIN" create-admin --organization Conformance --email "$EMAIL" --password conformance-pass >/dev/null
"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/authentication" -H 'content-type: application/json' \
  -d "{\"strategy\":\"local\",\"email\":\"$EMAIL\",\"password\":\"conformance-pass\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
AUTH_TOKEN="$TOKEN" REPORTER="${REPORTER:-dot}" "$SHARED/feathers-conformance/run.sh" "http://127.0.0.1:$PORT" people
