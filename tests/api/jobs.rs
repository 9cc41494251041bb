//! Durable jobs: enqueued in the caller's transaction, run exactly once by
//! competing workers, retried with backoff, taken over when a worker dies with
//! its lease, finished or handed back at shutdown, cancellable; `/jobs` shows an
//! organization's jobs to its admins only.

use crate::helpers::*;
use chrono::Duration;
use inbox_gateway::domain::Actor;
use inbox_gateway::jobs::{Handler, Job, JobError, NewJob, Worker, WorkerConfig, enqueue};
use reqwest::{Method, StatusCode};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The queue of these tests (the app's own workers serve another one).
const QUEUE: &str = "test";

/// Runs of each job id, as the handler saw them.
type Runs = Arc<Mutex<HashMap<i64, u32>>>;

fn config() -> WorkerConfig {
    let mut c = WorkerConfig::new(QUEUE);
    c.poll = std::time::Duration::from_millis(50);
    c.lease = Duration::seconds(2);
    c.backoff_base = Duration::milliseconds(20);
    c.backoff_cap = Duration::milliseconds(200);
    c.shutdown_grace = std::time::Duration::from_millis(500);
    c
}

/// A handler that counts its runs, sleeps `sleep_ms`, and fails with `Retry` the
/// first `fail_times` attempts (`Fatal` when `fatal` is set).
fn counting(runs: Runs) -> HashMap<&'static str, Handler> {
    let handler: Handler = Arc::new(move |job: Job, cancel: CancellationToken| {
        let runs = runs.clone();
        Box::pin(async move {
            *runs.lock().unwrap().entry(job.id).or_default() += 1;
            let ms = job.payload["sleep_ms"].as_u64().unwrap_or(0);
            tokio::select! {
                _ = cancel.cancelled() => return Err(JobError::Retry("stopped".into())),
                _ = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {}
            }
            if job.payload["fatal"] == true {
                return Err(JobError::Fatal("cannot ever work".into()));
            }
            let fail_times = job.payload["fail_times"].as_i64().unwrap_or(0);
            if i64::from(job.attempts) <= fail_times {
                return Err(JobError::Retry(format!("attempt {} failed", job.attempts)));
            }
            Ok(())
        })
    });
    HashMap::from([("count", handler)])
}

fn job(org: Option<i64>, payload: serde_json::Value) -> NewJob {
    let mut j = NewJob::new(QUEUE, "count", payload);
    j.organization_id = org;
    j
}

async fn status_of(app: &TestApp, id: i64) -> (String, i64) {
    let status = sql_text(app, &format!("SELECT status FROM jobs WHERE id = {id}")).await;
    let attempts = sql_i64(
        app,
        &format!("SELECT CAST(attempts AS BIGINT) FROM jobs WHERE id = {id}"),
    )
    .await;
    (status, attempts)
}

async fn sql_text(app: &TestApp, sql: &str) -> String {
    use sea_orm::ConnectionTrait;
    let stmt = sea_orm::Statement::from_string(app.db.get_database_backend(), sql.to_string());
    app.db
        .query_one_raw(stmt)
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap()
}

/// Waits until `sql` (a count) reaches `n`, for at most `secs`.
async fn wait_for(app: &TestApp, sql: &str, n: i64, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let got = sql_i64(app, sql).await;
        if got == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {got}, waited for {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

fn start(
    db: &DatabaseConnection,
    runs: &Runs,
    c: WorkerConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let worker = Worker::new(db.clone(), c, counting(runs.clone()));
    let handle = tokio::spawn(worker.run(stop.clone()));
    (stop, handle)
}

/// `JOBS_BENCH_COUNT=N` runs it with N jobs instead of 1,000 and prints the rate to
/// stderr (`scripts/bench_jobs.sh`); the assertions stay the same.
#[actix_web::test]
async fn two_workers_run_each_of_a_thousand_jobs_exactly_once() {
    let n: usize = std::env::var("JOBS_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let app = spawn_app().await;
    let txn = app.db.begin().await.unwrap();
    for i in 0..n {
        enqueue(&txn, &job(Some(app.org.org_id), json!({ "i": i })))
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    let runs: Runs = Default::default();
    let started = std::time::Instant::now();
    let mut c = config();
    c.concurrency = 8;
    let (stop_a, a) = start(&app.db, &runs, c.clone());
    let (stop_b, b) = start(&app.db, &runs, c);
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'done'",
        n as i64,
        120.max(n as u64 / 20),
    )
    .await;
    let elapsed = started.elapsed();
    stop_a.cancel();
    stop_b.cancel();
    a.await.unwrap();
    b.await.unwrap();
    eprintln!(
        "{n} jobs, two workers: {:.0} jobs/s ({elapsed:?})",
        n as f64 / elapsed.as_secs_f64()
    );
    let counts: Vec<u32> = runs.lock().unwrap().values().copied().collect();
    assert_eq!(counts.len(), n);
    assert!(counts.iter().all(|n| *n == 1), "a job ran twice");
    assert_eq!(
        sql_i64(&app, "SELECT COUNT(*) FROM jobs WHERE attempts <> 1").await,
        0
    );
}

#[actix_web::test]
async fn failures_back_off_then_succeed_or_fail_for_good() {
    let app = spawn_app().await;
    let retried = enqueue(&app.db, &job(None, json!({"fail_times": 2})))
        .await
        .unwrap()
        .unwrap();
    let mut fatal = job(None, json!({"fatal": true}));
    fatal.max_attempts = 5;
    let fatal = enqueue(&app.db, &fatal).await.unwrap().unwrap();
    let mut short = job(None, json!({"fail_times": 10}));
    short.max_attempts = 3;
    let exhausted = enqueue(&app.db, &short).await.unwrap().unwrap();
    let runs: Runs = Default::default();
    let (stop, handle) = start(&app.db, &runs, config());
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status IN ('done', 'failed')",
        3,
        20,
    )
    .await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(status_of(&app, retried).await, ("done".into(), 3));
    assert_eq!(status_of(&app, fatal).await, ("failed".into(), 1));
    assert_eq!(status_of(&app, exhausted).await, ("failed".into(), 3));
    assert_eq!(
        sql_text(
            &app,
            &format!("SELECT last_error FROM jobs WHERE id = {exhausted}")
        )
        .await,
        "attempt 3 failed"
    );
    // The backoff is durable: a retried job's next run time moved past its failure.
    let moved = sql_i64(
        &app,
        &format!("SELECT COUNT(*) FROM jobs WHERE id = {retried} AND run_at > created_at"),
    )
    .await;
    assert_eq!(moved, 1);
}

#[actix_web::test]
async fn a_job_of_a_dead_worker_runs_again_once_its_lease_expires() {
    let app = spawn_app().await;
    let id = enqueue(&app.db, &job(None, json!({"sleep_ms": 60_000})))
        .await
        .unwrap()
        .unwrap();
    let runs: Runs = Default::default();
    // The first worker takes it and dies mid-job: no release, no heartbeat.
    let (_never, dead) = start(&app.db, &runs, config());
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'running'",
        1,
        10,
    )
    .await;
    while !runs.lock().unwrap().contains_key(&id) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    dead.abort();
    let _ = dead.await;
    exec_sql(
        &app,
        &format!("UPDATE jobs SET payload = '{{}}' WHERE id = {id}"),
    )
    .await;
    // Another worker claims it once the lease (2 s) is over, and finishes it.
    let (stop, handle) = start(&app.db, &runs, config());
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'done'",
        1,
        15,
    )
    .await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(status_of(&app, id).await, ("done".into(), 2));
    assert_eq!(runs.lock().unwrap()[&id], 2, "started twice, finished once");
}

#[actix_web::test]
async fn shutdown_lets_short_jobs_finish_and_hands_long_ones_back() {
    let app = spawn_app().await;
    let short = enqueue(&app.db, &job(None, json!({"sleep_ms": 200})))
        .await
        .unwrap()
        .unwrap();
    let long = enqueue(&app.db, &job(None, json!({"sleep_ms": 60_000})))
        .await
        .unwrap()
        .unwrap();
    let runs: Runs = Default::default();
    let (stop, handle) = start(&app.db, &runs, config());
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'running'",
        2,
        10,
    )
    .await;
    stop.cancel();
    let started = std::time::Instant::now();
    handle.await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(status_of(&app, short).await, ("done".into(), 1));
    // Handed back: due again, this run not counted, no lease.
    assert_eq!(status_of(&app, long).await, ("pending".into(), 0));
    assert_eq!(
        sql_i64(
            &app,
            &format!("SELECT COUNT(*) FROM jobs WHERE id = {long} AND locked_by IS NULL")
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn dedupe_keys_and_rolled_back_enqueues_add_nothing() {
    let app = spawn_app().await;
    let mut first = job(None, json!({}));
    first.dedupe_key = Some("deliver:message:1".into());
    assert!(enqueue(&app.db, &first).await.unwrap().is_some());
    assert!(enqueue(&app.db, &first).await.unwrap().is_none());
    // A unit of work dropped without its commit takes its jobs with it.
    let unit = app.units.begin(None, Actor::System);
    unit.enqueue(&job(None, json!({}))).await.unwrap();
    drop(unit);
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM jobs").await, 1);
}

#[actix_web::test]
async fn jobs_are_cancelled_pending_or_running() {
    let app = spawn_app().await;
    let org = app.org.org_id;
    let mut later = job(Some(org), json!({}));
    later.run_at = chrono::Utc::now() + Duration::hours(1);
    let pending = enqueue(&app.db, &later).await.unwrap().unwrap();
    let running = enqueue(&app.db, &job(Some(org), json!({"sleep_ms": 60_000})))
        .await
        .unwrap()
        .unwrap();
    let runs: Runs = Default::default();
    let mut c = config();
    c.lease = Duration::milliseconds(600); // heartbeat every 200 ms
    let (stop, handle) = start(&app.db, &runs, c);
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'running'",
        1,
        10,
    )
    .await;
    use inbox_gateway::jobs::queue::cancel;
    cancel(&app.db, org, pending).await.unwrap();
    cancel(&app.db, org, running).await.unwrap();
    let other = app.new_tenant("Other").await;
    assert_eq!(
        cancel(&app.db, other.org_id, running)
            .await
            .unwrap_err()
            .code(),
        404
    );
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'cancelled'",
        2,
        10,
    )
    .await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(runs.lock().unwrap().get(&pending), None, "never ran");
}

#[actix_web::test]
async fn admins_read_their_organizations_jobs() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let mine = enqueue(&app.db, &job(Some(app.org.org_id), json!({"x": 1})))
        .await
        .unwrap()
        .unwrap();
    let theirs = enqueue(&app.db, &job(Some(other.org_id), json!({"x": 2})))
        .await
        .unwrap()
        .unwrap();
    enqueue(&app.db, &job(None, json!({}))).await.unwrap();
    let page = get_ok(&app, "/jobs?status=pending").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["data"][0]["id"], mine);
    assert_eq!(page["data"][0]["kind"], "count");
    assert_eq!(page["data"][0]["status"], "pending");
    let (status, err) = app.get(&format!("/jobs/{theirs}")).await;
    assert_error(status, &err, 404, "NotFound");
    let agent = app.new_user(&app.org, "agent").await;
    let (status, err) = app.call_as(&agent, Method::GET, "/jobs", None).await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, _) = app
        .call(
            Method::POST,
            "/jobs",
            Some(json!({"kind": "count"})),
            Some(&app.org.token),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The server binary with its job workers on `database_url`, and a short lease.
fn serve(app: &TestApp) -> Server {
    start_binary(
        &app.database_url,
        &[
            ("JWT_SECRET", app.jwt_secret.as_str()),
            ("APP__JOB_CONCURRENCY", "2"),
            ("APP__JOB_LEASE_SECS", "2"),
            ("APP__JOB_SHUTDOWN_GRACE_SECS", "1"),
        ],
    )
    .0
}

/// `serve`'s workers run the `system` queue: a server killed with SIGKILL mid-job
/// loses nothing (the job runs again once its lease expires, and completes once);
/// one stopped with SIGTERM finishes a short job, hands a long one back, and exits.
#[actix_web::test]
async fn jobs_survive_a_killed_server_and_a_stopped_one_hands_them_back() {
    use inbox_gateway::jobs::kinds::SYSTEM;
    let app = spawn_app_with(|s| s.job_concurrency = 0).await;
    let noop = |ms: u64| NewJob::new(SYSTEM, "noop", json!({ "sleep_ms": ms }));
    let long = enqueue(&app.db, &noop(60_000)).await.unwrap().unwrap();
    let mut server = serve(&app);
    wait_for(
        &app,
        &format!("SELECT COUNT(*) FROM jobs WHERE id = {long} AND status = 'running'"),
        1,
        60,
    )
    .await;
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    // Still running on paper, its lease running out; a shorter run this time.
    exec_sql(
        &app,
        &format!("UPDATE jobs SET payload = '{{\"sleep_ms\": 0}}' WHERE id = {long}"),
    )
    .await;
    let mut server = serve(&app);
    wait_for(
        &app,
        &format!("SELECT COUNT(*) FROM jobs WHERE id = {long} AND status = 'done'"),
        1,
        30,
    )
    .await;
    assert_eq!(status_of(&app, long).await, ("done".into(), 2));
    // SIGTERM with one short and one long job running.
    let short = enqueue(&app.db, &noop(300)).await.unwrap().unwrap();
    let long = enqueue(&app.db, &noop(60_000)).await.unwrap().unwrap();
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'running'",
        2,
        30,
    )
    .await;
    let pid = server.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let exited = tokio::task::spawn_blocking(move || server.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exited.success(), "{exited}");
    assert_eq!(status_of(&app, short).await, ("done".into(), 1));
    assert_eq!(status_of(&app, long).await, ("pending".into(), 0));
}

/// A job enqueued while its worker waits runs at once, not at the next poll: a
/// NOTIFY at commit on PostgreSQL, the unit's in-process wake-up at commit on SQLite.
#[actix_web::test]
async fn an_enqueued_job_wakes_its_worker() {
    let app = spawn_app().await;
    let stop = CancellationToken::new();
    let listener = tokio::spawn(inbox_gateway::jobs::worker::listen(
        app.database_url.clone(),
        stop.clone(),
    ));
    let runs: Runs = Default::default();
    let mut c = config();
    c.poll = std::time::Duration::from_secs(60);
    let (stop_worker, worker) = start(&app.db, &runs, c);
    // Let the worker make its first (empty) claim and the listener connect.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    // Enqueued in a unit of work, as the change that asks for it: its commit wakes.
    let unit = app.units.begin(Some(app.org.org_id), Actor::System);
    unit.enqueue(&job(None, json!({}))).await.unwrap();
    unit.commit().await.unwrap();
    wait_for(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE status = 'done'",
        1,
        10,
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    stop_worker.cancel();
    stop.cancel();
    worker.await.unwrap();
    listener.await.unwrap();
}

/// Jobs that finished well are pruned once past their retention; failed ones stay.
#[actix_web::test]
async fn finished_jobs_are_pruned_and_failed_ones_kept() {
    let app = spawn_app_with(|s| s.job_concurrency = 0).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            enqueue(&app.db, &job(None, json!({})))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let old = "TIMESTAMP '2020-01-01 00:00:00'";
    let old = if app.database_url.starts_with("sqlite") {
        "'2020-01-01T00:00:00+00:00'"
    } else {
        old
    };
    for (id, status) in ids.iter().zip(["done", "cancelled", "failed"]) {
        exec_sql(
            &app,
            &format!("UPDATE jobs SET status = '{status}', finished_at = {old} WHERE id = {id}"),
        )
        .await;
    }
    let recent = enqueue(&app.db, &job(None, json!({})))
        .await
        .unwrap()
        .unwrap();
    exec_sql(
        &app,
        &format!("UPDATE jobs SET status = 'done', finished_at = updated_at WHERE id = {recent}"),
    )
    .await;
    let before = chrono::Utc::now() - Duration::days(7);
    assert_eq!(
        inbox_gateway::jobs::queue::prune(&app.db, before)
            .await
            .unwrap(),
        2
    );
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM jobs").await, 2);
    assert_eq!(
        sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM jobs WHERE id IN ({}, {recent})",
                ids[2]
            )
        )
        .await,
        2
    );
}
