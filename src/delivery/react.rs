//! `agentphone.react`: a stored reaction (a message of type `reaction`, its text the
//! tapback, linked to the message it is on) sent as an AgentPhone tapback. Unlike a
//! message, a tapback sent twice shows once, so any failure that may be transient is
//! retried.

use super::{Delivery, job_message, retry};
use crate::agentphone::CallError;
use crate::domain::Actor;
use crate::domain::conversations;
use crate::domain::messages::{self, DeliveryUpdate, MessageId};
use crate::jobs::{Job, JobError};
use serde_json::Value;

async fn finish(
    d: &Delivery,
    org: i64,
    id: MessageId,
    update: DeliveryUpdate,
) -> Result<(), JobError> {
    let uow = d.units.begin(Some(org), Actor::System);
    messages::set_delivery(&uow, org, id, &["queued", "sending"], &update)
        .await
        .map_err(retry)?;
    uow.commit().await.map_err(retry).map(drop)
}

fn failed(error: Value) -> DeliveryUpdate {
    DeliveryUpdate {
        status: "failed",
        attempt: true,
        error: Some(error),
        ..Default::default()
    }
}

pub async fn run(d: &Delivery, job: &Job) -> Result<(), JobError> {
    let (org, id) = job_message(job)?;
    let id = MessageId(id);
    let db = &d.units.db;
    let Some(reaction) = messages::load_outbound(db, org, id).await.map_err(retry)? else {
        return Ok(());
    };
    if !matches!(
        reaction.delivery_status.as_deref(),
        Some("queued" | "sending")
    ) {
        return Ok(());
    }
    let target = match reaction.reply_to_message_id {
        Some(t) => messages::load_outbound(db, org, MessageId(t))
            .await
            .map_err(retry)?,
        None => None,
    };
    let Some(external) = target.and_then(|t| t.external_id) else {
        let error = serde_json::json!({"code": "NO_TARGET", "message": "The message reacted to is gone or was never sent"});
        return finish(d, org, id, failed(error)).await;
    };
    let Some(thread) = conversations::thread_of(db, org, reaction.conversation_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    let Some(account) = d.account_for(org, &thread).await.map_err(retry)? else {
        let error = serde_json::json!({"code": "NO_CHANNEL_ACCOUNT", "message": "The organization has no AgentPhone account"});
        return finish(d, org, id, failed(error)).await;
    };
    let last = job.attempts >= job.max_attempts;
    let tapback = reaction.text.clone().unwrap_or_default();
    let _permit = d.limits.acquire(account.id.0).await;
    match d.client(&account).react(&external, &tapback).await {
        Ok(sent) => {
            let update = DeliveryUpdate {
                status: "sent",
                attempt: true,
                error: Some(Value::Null),
                external_id: Some(sent.id),
                transport: Some(sent.channel.to_ascii_lowercase()),
                channel_account_id: Some(account.id.0),
                ..Default::default()
            };
            finish(d, org, id, update).await
        }
        Err(CallError::Status { error, retry_after }) if error.status == 429 && !last => {
            let wait = retry_after.unwrap_or(std::time::Duration::from_secs(30));
            d.limits.pause(account.id.0, wait);
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(30));
            Err(JobError::RetryAfter(
                format!("AgentPhone rate limit: {error}"),
                wait,
            ))
        }
        Err(CallError::Status { error, .. }) if error.status < 500 || last => {
            finish(d, org, id, failed(error.to_json())).await
        }
        Err(e) if last => {
            let error = serde_json::json!({"code": "NOT_SENT", "message": e.to_string()});
            finish(d, org, id, failed(error)).await
        }
        Err(e) => Err(JobError::Retry(e.to_string())),
    }
}
