//! The job that carries a large bulk action through: batch after batch, each in a
//! unit of work of its own, until the action is finished or cancelled. Killed in the
//! middle, it runs again and resumes at the first pending item (the items of a
//! committed batch are no longer pending).

use crate::domain::{Actor, Units, bulk_actions};
use crate::jobs::kinds::BULK_RUN;
use crate::jobs::worker::{Handler, HandlerFuture};
use crate::jobs::{Job, JobError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn retry(e: crate::feathers::FeathersError) -> JobError {
    JobError::Retry(format!("{}: {}", e.message, e.chain()))
}

async fn run(
    units: &Units,
    job: &Job,
    stop: &CancellationToken,
    batch: u64,
) -> Result<(), JobError> {
    let org = job
        .organization_id
        .ok_or_else(|| JobError::Fatal("a bulk job has no organization".into()))?;
    let field = |k: &str| job.payload.get(k).and_then(|v| v.as_i64());
    let id = field("bulk_action_id")
        .ok_or_else(|| JobError::Fatal("a bulk job has no bulk_action_id".into()))?;
    let user =
        field("user_id").ok_or_else(|| JobError::Fatal("a bulk job has no user_id".into()))?;
    loop {
        if stop.is_cancelled() {
            return Err(JobError::Retry("stopped between batches".into()));
        }
        let uow = units.begin(Some(org), Actor::User(user));
        let finished = bulk_actions::run_batch(&uow, org, id, batch)
            .await
            .map_err(retry)?;
        uow.commit().await.map_err(retry)?;
        if finished {
            return Ok(());
        }
    }
}

/// The bulk job's handler, batches of `batch` conversations.
pub fn handlers(units: Units, batch: u64) -> HashMap<&'static str, Handler> {
    let handler: Handler = Arc::new(move |job: Job, stop: CancellationToken| -> HandlerFuture {
        let units = units.clone();
        Box::pin(async move { run(&units, &job, &stop, batch.max(1)).await })
    });
    HashMap::from([(BULK_RUN, handler)])
}
