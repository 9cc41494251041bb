//! A worker: claims due jobs of one queue, runs each under a lease that a
//! heartbeat extends (never a row lock or an open transaction: on SQLite that
//! would block every request), and records the outcome. Woken by a NOTIFY
//! (PostgreSQL) or an in-process notify; polls as the safety net.

use super::queue::{self, Job};
use chrono::{Duration, Utc};
use sea_orm::DatabaseConnection;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a run ended badly.
#[derive(Debug, Clone)]
pub enum JobError {
    /// Worth another try, after the backoff.
    Retry(String),
    /// Worth another try, not before this long (a provider's `Retry-After`).
    RetryAfter(String, Duration),
    /// Trying again cannot help: `failed` at once.
    Fatal(String),
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// Runs one kind of job. The token trips when the job is cancelled or its lease
/// is lost; a handler doing long work checks it between steps.
pub type Handler = Arc<dyn Fn(Job, CancellationToken) -> HandlerFuture + Send + Sync>;

/// Wakes this process's workers (enqueues on SQLite, NOTIFYs on PostgreSQL).
static WAKE: Notify = Notify::const_new();

/// Tells this process's workers that jobs may be due.
pub fn wake() {
    WAKE.notify_waiters();
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub queue: &'static str,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    pub lease: Duration,
    /// The safety net: claim at least this often without a wake-up.
    pub poll: std::time::Duration,
    /// On shutdown, how long running jobs may take to finish before they are
    /// stopped and handed back.
    pub shutdown_grace: std::time::Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl WorkerConfig {
    pub fn new(queue: &'static str) -> Self {
        Self {
            queue,
            concurrency: 4,
            lease: Duration::seconds(30),
            poll: std::time::Duration::from_secs(2),
            shutdown_grace: std::time::Duration::from_secs(10),
            backoff_base: Duration::seconds(1),
            backoff_cap: Duration::minutes(30),
        }
    }
}

pub struct Worker {
    db: DatabaseConnection,
    id: String,
    config: WorkerConfig,
    handlers: Arc<HashMap<&'static str, Handler>>,
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        config: WorkerConfig,
        handlers: HashMap<&'static str, Handler>,
    ) -> Self {
        let id = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            db,
            id,
            config,
            handlers: Arc::new(handlers),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims and runs jobs until `shutdown` trips; then claims nothing more, lets
    /// running jobs finish within the grace period, hands the rest back, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        let running_ids: Arc<Mutex<HashSet<i64>>> = Default::default();
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            // Register for a wake-up before claiming, so one sent meanwhile is not missed.
            let woken = WAKE.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let free = me.config.concurrency.saturating_sub(running.len());
            if free > 0 && !shutdown.is_cancelled() {
                match queue::claim(
                    &me.db,
                    me.config.queue,
                    &me.id,
                    free as u64,
                    me.config.lease,
                    Utc::now(),
                )
                .await
                {
                    Ok(jobs) => {
                        for job in jobs {
                            running_ids.lock().expect("ids").insert(job.id);
                            let (me, ids) = (me.clone(), running_ids.clone());
                            running.spawn(async move {
                                let id = job.id;
                                me.run_one(job).await;
                                ids.lock().expect("ids").remove(&id);
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.message, cause = %e.chain(), queue = me.config.queue, "claiming jobs failed")
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut woken => {}
                _ = tokio::time::sleep(me.config.poll) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Shutdown: no new claims; running jobs get the grace period.
        let grace = tokio::time::sleep(me.config.shutdown_grace);
        tokio::pin!(grace);
        while !running.is_empty() {
            tokio::select! {
                _ = &mut grace => break,
                _ = running.join_next() => {}
            }
        }
        // What is still running is stopped where it is and handed back: it runs again
        // from the start (handlers are written to be safe to repeat).
        running.abort_all();
        while running.join_next().await.is_some() {}
        let left: Vec<i64> = running_ids.lock().expect("ids").drain().collect();
        for id in left {
            match queue::release(&me.db, id, &me.id).await {
                Ok(_) => tracing::info!(job = id, "job handed back at shutdown"),
                Err(e) => {
                    tracing::warn!(job = id, error = %e.message, cause = %e.chain(), "could not hand a job back; its lease will expire")
                }
            }
        }
    }

    /// Runs one claimed job with its heartbeat, and records how it ended.
    async fn run_one(&self, job: Job) {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            let error = format!("no handler for job kind {:?}", job.kind);
            self.record(queue::fail(&self.db, &job, &self.id, &error, None).await);
            return;
        };
        let beat_every = (self.config.lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        let lease_lost = CancellationToken::new();
        let cancel_asked = CancellationToken::new();
        let token = CancellationToken::new();
        let work = handler(job.clone(), token.clone());
        tokio::pin!(work);
        let mut beat = tokio::time::interval(beat_every);
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                result = &mut work => break Some(result),
                _ = beat.tick() => match queue::heartbeat(&self.db, job.id, &self.id, self.config.lease).await {
                    Ok(None) => {
                        lease_lost.cancel();
                        token.cancel();
                        break None;
                    }
                    Ok(Some(true)) => {
                        cancel_asked.cancel();
                        token.cancel();
                    }
                    Ok(Some(false)) => {}
                    Err(e) => tracing::warn!(job = job.id, error = %e.message, cause = %e.chain(), "job heartbeat failed"),
                },
            }
        };
        let Some(result) = outcome else {
            tracing::warn!(job = job.id, "job lease lost; another worker owns it now");
            return;
        };
        let recorded = match result {
            _ if cancel_asked.is_cancelled() => queue::cancelled(&self.db, job.id, &self.id).await,
            Ok(()) => queue::complete(&self.db, job.id, &self.id).await,
            Err(JobError::Retry(error)) => {
                let random = uuid::Uuid::new_v4().as_u128() as u32;
                let delay = queue::backoff(
                    job.attempts,
                    self.config.backoff_base,
                    self.config.backoff_cap,
                    random,
                );
                tracing::info!(job = job.id, attempts = job.attempts, %error, "job failed, will retry");
                queue::fail(&self.db, &job, &self.id, &error, Some(Utc::now() + delay)).await
            }
            Err(JobError::RetryAfter(error, delay)) => {
                tracing::info!(job = job.id, attempts = job.attempts, %error, "job asked to wait before its retry");
                queue::fail(&self.db, &job, &self.id, &error, Some(Utc::now() + delay)).await
            }
            Err(JobError::Fatal(error)) => {
                tracing::warn!(job = job.id, %error, "job failed for good");
                queue::fail(&self.db, &job, &self.id, &error, None).await
            }
        };
        self.record(recorded);
    }

    fn record(&self, recorded: crate::feathers::Result<bool>) {
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!("a job's lease was lost before its outcome was recorded"),
            Err(e) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "could not record a job's outcome")
            }
        }
    }
}

/// Wakes this process's workers at every NOTIFY of an enqueue (any instance's).
pub async fn listen(database_url: String, shutdown: CancellationToken) {
    crate::db::listen(database_url, queue::CHANNEL, wake, shutdown).await
}

/// Finished jobs are kept this long (`GET /jobs` shows them), then pruned: the table
/// stays the size of the work in flight.
pub const DONE_JOB_RETENTION_DAYS: i64 = 7;

/// Prunes finished jobs every `every`.
pub async fn prune_periodically(db: DatabaseConnection, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let before = Utc::now() - Duration::days(DONE_JOB_RETENTION_DAYS);
        match queue::prune(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "finished jobs pruned"),
            Err(e) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "pruning finished jobs failed")
            }
        }
    }
}
