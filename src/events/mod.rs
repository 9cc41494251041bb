//! Events: the outbox every unit of work writes in its own transaction, the
//! dispatcher that reads it into this process, and the streams clients read.

pub mod dispatcher;
pub mod outbox;
pub mod stream;

pub use dispatcher::Dispatcher;
pub use outbox::{Pending, Stored};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Wakes this process's dispatchers: a unit of work committed events.
static WAKE: Notify = Notify::const_new();

/// Called after a commit that wrote events (PostgreSQL also NOTIFYs every instance).
/// Every dispatcher of the process wakes (tests run many apps in one process).
pub fn wake() {
    WAKE.notify_waiters();
}

/// Resolves at the next [`wake`]: create it and `enable()` it before reading the
/// table, so that a wake sent meanwhile is not missed.
pub fn woken() -> Notified<'static> {
    WAKE.notified()
}
