//! Events: the outbox every unit of work writes in its own transaction, the
//! dispatcher that reads it into this process, and the streams clients read.

pub mod outbox;

pub use outbox::{Pending, Stored};

use tokio::sync::Notify;

/// Wakes this process's dispatcher: a unit of work committed events.
static WAKE: Notify = Notify::const_new();

/// Called after a commit that wrote events (PostgreSQL also NOTIFYs every instance).
pub fn wake() {
    WAKE.notify_one();
}

/// Resolves at the next [`wake`] (or at once if one came since the last wait).
pub async fn woken() {
    WAKE.notified().await;
}
