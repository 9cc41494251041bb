//! The job kinds this build runs, by queue.

use super::Job;
use super::worker::{Handler, HandlerFuture, JobError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The queue of the system's own work.
pub const SYSTEM: &str = "system";

/// `noop`: does nothing, after `sleep_ms` of its payload if given (stopping early
/// when cancelled). Measures the queue itself (throughput, shutdown, leases).
fn noop(job: Job, cancel: CancellationToken) -> HandlerFuture {
    Box::pin(async move {
        let ms = job
            .payload
            .get("sleep_ms")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if ms > 0 {
            tokio::select! {
                _ = cancel.cancelled() => return Err(JobError::Retry("cancelled".into())),
                _ = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {}
            }
        }
        Ok(())
    })
}

/// Every handler of the `system` queue.
pub fn system() -> HashMap<&'static str, Handler> {
    HashMap::from([("noop", Arc::new(noop) as Handler)])
}
