#!/usr/bin/env bash
# Job throughput on PostgreSQL: two Worker instances (8 jobs at once each, polling
# every 50 ms) on one database run N no-op jobs enqueued beforehand; prints jobs/s.
# It is the test two_workers_run_each_of_a_thousand_jobs_exactly_once in release
# mode with JOBS_BENCH_COUNT=N, so its assertions (each job ran exactly once, on
# its first attempt) still hold.
#   scripts/bench_jobs.sh [JOBS=1000]   (BENCH_RUNS=3: how many runs)
# Needs PostgreSQL on 127.0.0.1:5432 (TEST_DATABASE_URL overrides; the test creates
# and drops a database of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${1:-1000}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" RUST_LOG="${RUST_LOG:-warn}"
for _ in $(seq 1 "${BENCH_RUNS:-3}"); do
  JOBS_BENCH_COUNT="$JOBS" cargo test -q --release --test api -- --exact \
    jobs::two_workers_run_each_of_a_thousand_jobs_exactly_once --nocapture 2>&1 \
    | grep -E "jobs, two workers|panicked|FAILED|test result"
done
