//! The dispatcher: one per app instance, it reads the outbox in seq order (every
//! instance's commits, since the table is shared) and hands each event to this
//! process's streams through a broadcast channel. Woken by a commit (in-process, and
//! by NOTIFY from any instance on PostgreSQL); polls as the safety net, because a
//! notification sent while the listener reconnects is lost.

use super::{Stored, outbox};
use crate::feathers::Result;
use crate::feathers::registry::Position;
use sea_orm::{DatabaseConnection, TransactionTrait};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events read per query while catching up.
const BATCH: u64 = 500;
/// The safety net: read the table at least this often without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// Events a stream may fall behind the dispatcher before it backfills from the table.
pub const BUFFER: usize = 4096;

pub struct Dispatcher {
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<Stored>>,
    /// The last seq dispatched; -1 until the dispatcher has read where the table ends.
    position: AtomicI64,
}

impl Dispatcher {
    pub fn new(db: DatabaseConnection, buffer: usize) -> Self {
        Self {
            db,
            sender: broadcast::channel(buffer).0,
            position: AtomicI64::new(-1),
        }
    }

    /// Every event dispatched from now on, in seq order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stored>> {
        self.sender.subscribe()
    }

    /// The last seq dispatched (`None` before [`Self::start`] read it).
    pub fn position(&self) -> Option<i64> {
        Some(self.position.load(Ordering::Acquire)).filter(|seq| *seq >= 0)
    }

    /// Takes the present as the starting point: what was committed before is not
    /// dispatched (a stream reads it from the table).
    pub async fn start(&self) -> Result<i64> {
        if let Some(seq) = self.position() {
            return Ok(seq);
        }
        let seq = outbox::last_seq(&self.db).await?;
        self.position.store(seq, Ordering::Release);
        Ok(seq)
    }

    /// Dispatches everything committed after the position, in pages, until caught up.
    pub async fn catch_up(&self) -> Result<()> {
        let mut last = self.start().await?;
        loop {
            let batch = outbox::after(&self.db, None, None, last, BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for event in batch {
                last = event.seq;
                // No receiver is not an error: nobody is listening on this instance.
                let _ = self.sender.send(Arc::new(event));
                self.position.store(last, Ordering::Release);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Catches up at each wake-up and at least every second, until `stop` trips.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let woken = super::woken();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e.message, cause = %e.chain(), "event dispatch failed; retrying");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut woken => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

impl Position for Dispatcher {
    fn last_seq(&self) -> Option<i64> {
        self.position()
    }
}

/// Wakes this process's dispatcher at every NOTIFY of any instance's commit.
pub async fn listen(database_url: String, stop: CancellationToken) {
    crate::db::listen(database_url, outbox::CHANNEL, super::wake, stop).await
}

/// Deletes the events older than `retention` in a transaction of its own; answers
/// how many went. A stream whose cursor they held gets a `reset`.
pub async fn prune(db: &DatabaseConnection, retention: chrono::Duration) -> Result<u64> {
    let txn = db.begin().await?;
    let gone = outbox::prune(&txn, chrono::Utc::now() - retention).await?;
    txn.commit().await?;
    Ok(gone)
}

/// [`prune`] every `every`, for ever (the task is aborted at shutdown).
pub async fn prune_periodically(
    db: DatabaseConnection,
    retention: chrono::Duration,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match prune(&db, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "events past their retention pruned"),
            Err(e) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "event prune failed")
            }
        }
    }
}
