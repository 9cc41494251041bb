//! The job kinds this build runs, by queue.

use super::Job;
use super::worker::{Handler, HandlerFuture, JobError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The queue of the system's own work.
pub const SYSTEM: &str = "system";
/// The queue of deliveries to providers (its own workers, so a backlog of sends
/// never delays the system's work).
pub const DELIVERY: &str = "delivery";
/// The queue of automation runs (its own workers: a run waits on webhooks).
pub const AUTOMATIONS: &str = "automations";
/// Runs an automation execution from its next step (`{execution_id, from_step}`).
pub const AUTOMATION_RUN: &str = "automation.run";
/// Sends an outbound SMS/iMessage message through AgentPhone (`{message_id}`).
pub const AGENTPHONE_SEND: &str = "agentphone.send";
/// Sends a stored reaction through AgentPhone (`{message_id}` of the reaction).
pub const AGENTPHONE_REACT: &str = "agentphone.react";

/// Runs a bulk action's batches until it is finished (`{bulk_action_id, user_id}`).
pub const BULK_RUN: &str = "bulk.run";

/// The job that delivers message `id` of `org` (`kind` one of the delivery kinds):
/// one per message ever (its dedupe key), many attempts.
pub fn delivery(org: i64, kind: &'static str, id: i64) -> super::NewJob {
    let mut job = super::NewJob::new(DELIVERY, kind, serde_json::json!({ "message_id": id }));
    job.organization_id = Some(org);
    job.max_attempts = 12;
    job.dedupe_key = Some(format!("{kind}:{id}"));
    job
}

/// The job that runs execution `id` of `org` from step `from_step` on, due at
/// `run_at`: one per execution and starting step (a `wait` enqueues the next).
pub fn automation_run(
    org: i64,
    id: i64,
    from_step: usize,
    run_at: chrono::DateTime<chrono::Utc>,
) -> super::NewJob {
    let payload = serde_json::json!({ "execution_id": id, "from_step": from_step });
    let mut job = super::NewJob::new(AUTOMATIONS, AUTOMATION_RUN, payload);
    job.organization_id = Some(org);
    job.run_at = run_at;
    job.max_attempts = 6;
    job.dedupe_key = Some(format!("{AUTOMATION_RUN}:{id}:{from_step}"));
    job
}

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
