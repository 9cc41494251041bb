//! `agentphone.send`: one outbound message to AgentPhone. AgentPhone has no
//! idempotency key, so only what is safe is repeated: a send that never reached it,
//! and a 429 after its `Retry-After`. After a timeout or a 5xx the message stays
//! `sending` and the next run first looks for it in the thread's AgentPhone message
//! list, sending again only if it is not there. `409 DELIVERY_UNCONFIRMED` ends
//! `unconfirmed` and is never retried; any other 4xx ends `failed` with the error.

use super::{Delivery, agentphone_state, job_message, retry, with_agentphone_state};
use crate::agentphone::{CallError, Client, ConversationMessage, SentMessage};
use crate::channels::Channel;
use crate::channels::transform::with_media_url;
use crate::domain::channel_accounts::Account;
use crate::domain::conversations::{self, Thread, ThreadUpdate};
use crate::domain::messages::{self, DeliveryUpdate, MessageId, Outbound};
use crate::domain::{Actor, provider_threads};
use crate::jobs::{Job, JobError};
use chrono::Duration as Span;
use serde_json::{Value, json};
use std::time::Duration;

/// What a send may follow: a message not yet known to be sent.
const UNSENT: &[&str] = &["queued", "sending"];
/// How long after the message was stored an AgentPhone message may be ours: the
/// clocks of the two sides differ a little.
const CLOCK_SLACK_SECS: i64 = 120;
/// When a 429 names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// An error as the message shows it.
fn error_of(code: &str, message: &str) -> Value {
    json!({ "status": null, "code": code, "message": message, "details": null })
}

/// Moves the message's delivery on in a unit of its own; answers whether it moved.
async fn step(
    d: &Delivery,
    org: i64,
    id: MessageId,
    from: &[&str],
    update: DeliveryUpdate,
) -> Result<bool, JobError> {
    let uow = d.units.begin(Some(org), Actor::System);
    let moved = messages::set_delivery(&uow, org, id, from, &update)
        .await
        .map_err(retry)?;
    uow.commit().await.map_err(retry)?;
    Ok(moved)
}

/// The request: the payload stored with the message, from the conversation's number
/// (else the account's agent, else its first number), replying to the parent's
/// AgentPhone id if it has one by now.
async fn request(
    d: &Delivery,
    msg: &Outbound,
    thread: &Thread,
    account: &Account,
) -> Result<Value, JobError> {
    let mut body = match &msg.payload {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            return Err(JobError::Fatal(
                "the message has no AgentPhone payload".into(),
            ));
        }
    };
    if let Some(number) = agentphone_state(thread, "number_id") {
        body.insert("number_id".into(), json!(number));
    } else if let Some(agent) = &account.settings.agent_id {
        body.insert("agent_id".into(), json!(agent));
    } else if let Some(number) = account.settings.numbers.first() {
        body.insert("number_id".into(), json!(number.id));
    }
    let mut body = Value::Object(body);
    if let Some(key) = media_key(msg) {
        // Checked by `run` before it gets here.
        let storage = d
            .storage
            .as_deref()
            .ok_or_else(|| JobError::Fatal("no storage".into()))?;
        let get = (storage.presign_download(&key, storage.delivery_ttl).await).map_err(retry)?;
        with_media_url(Channel::Sms, &mut body, &get.url);
    }
    let Value::Object(mut body) = body else {
        unreachable!("an object")
    };
    if !body.contains_key("reply_to_message_id")
        && let Some(parent) = msg.reply_to_message_id
        && let Some(parent) =
            messages::load_outbound(&d.units.db, msg.organization_id, MessageId(parent))
                .await
                .map_err(retry)?
        && let Some(external) = parent.external_id
    {
        body.insert("reply_to_message_id".into(), json!(external));
    }
    Ok(Value::Object(body))
}

/// The object key of the message's file, when its media is one of ours (not a web
/// URL, such as a canned reply's or an inbound message's).
fn media_key(msg: &Outbound) -> Option<String> {
    let media = msg.media.as_ref()?;
    if let Some(key) = media.get("s3_key").and_then(Value::as_str) {
        return Some(key.to_string());
    }
    let path = media.get("s3_path").and_then(Value::as_str)?;
    crate::storage::keys::split_s3_path(path).map(|(_, key)| key.to_string())
}

/// A URL without its query: a presigned URL made at another attempt names the
/// same object with another signature.
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// Records a send AgentPhone accepted (or one found at AgentPhone): the message is
/// `sent` with AgentPhone's id and the transport used, and the thread learns its
/// AgentPhone conversation id.
async fn record_sent(
    d: &Delivery,
    msg: &Outbound,
    thread: &Thread,
    account: &Account,
    sent: &SentMessage,
) -> Result<(), JobError> {
    let org = msg.organization_id;
    let uow = d.units.begin(Some(org), Actor::System);
    let run = async {
        let conn = uow.conn().await?;
        // An echo of this send may have been stored first as a message of its own.
        if let Some((other, channel, _)) =
            messages::by_external(conn, account.id.0, &sent.id).await?
            && other != msg.id
        {
            messages::drop_echo(&uow, org, &channel, other).await?;
        }
        let update = DeliveryUpdate {
            status: "sent",
            error: Some(Value::Null),
            external_id: Some(sent.id.clone()),
            transport: Some(sent.channel.to_ascii_lowercase()),
            channel_account_id: Some(account.id.0),
            reply_parent_unresolved: sent.reply_parent_unresolved,
            ..Default::default()
        };
        messages::set_delivery(
            &uow,
            org,
            msg.id,
            &["queued", "sending", "unconfirmed"],
            &update,
        )
        .await?;
        if let Some(conversation_id) = &sent.conversation_id {
            let keys = provider_threads::keys(Some(conversation_id), None, None, None);
            provider_threads::link(conn, org, account.id.0, thread.id, &keys).await?;
            if agentphone_state(thread, "conversation_id").is_none()
                || thread.channel_account_id.is_none()
            {
                let metadata =
                    with_agentphone_state(thread, "conversation_id", json!(conversation_id));
                let update = ThreadUpdate {
                    channel_account_id: Some(account.id.0),
                    metadata: Some(metadata),
                    ..Default::default()
                };
                conversations::update_thread(&uow, org, thread.id, &update).await?;
            }
        }
        Ok::<_, crate::feathers::FeathersError>(())
    };
    run.await.map_err(retry)?;
    uow.commit().await.map_err(retry)?;
    Ok(())
}

/// Whether an AgentPhone message is this send: outbound, the same text and media,
/// sent after the message was stored, and no other message of ours already.
async fn is_ours(
    d: &Delivery,
    account: &Account,
    msg: &Outbound,
    body: &Value,
    m: &ConversationMessage,
) -> bool {
    let text = body.get("body").and_then(Value::as_str).unwrap_or_default();
    let media: Vec<&str> = (body
        .get("media_urls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten())
    .filter_map(Value::as_str)
    .collect();
    let at =
        chrono::DateTime::parse_from_rfc3339(&m.received_at).map(|t| t.with_timezone(&chrono::Utc));
    let after = at.is_ok_and(|t| t >= msg.created_at - Span::seconds(CLOCK_SLACK_SECS));
    let same_media = (m.media_urls.iter())
        .map(|u| without_query(u))
        .eq(media.iter().map(|u| without_query(u)));
    if m.direction != "outbound" || m.body != text || !after || !same_media {
        return false;
    }
    matches!(
        messages::by_external(&d.units.db, account.id.0, &m.id).await,
        Ok(None)
    )
}

/// Looks for an earlier attempt of this send at AgentPhone: in the thread's newest
/// messages (the thread found by its AgentPhone id, else among the newest threads by
/// our number and the recipient).
async fn find_earlier(
    d: &Delivery,
    client: &Client,
    account: &Account,
    msg: &Outbound,
    thread: &Thread,
    body: &Value,
) -> Result<Option<SentMessage>, CallError> {
    let to = body
        .get("to_number")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let conversation_id = match agentphone_state(thread, "conversation_id") {
        Some(id) => Some(id.to_string()),
        None => {
            let page = client.conversations(100, 0).await?;
            (page.data.into_iter())
                .find(|c| c.participant == to || c.group_id.as_deref() == Some(to))
                .map(|c| c.id)
        }
    };
    let Some(conversation_id) = conversation_id else {
        return Ok(None);
    };
    let page = client
        .conversation_messages(&conversation_id, 50, None)
        .await?;
    for m in page.data {
        if is_ours(d, account, msg, body, &m).await {
            return Ok(Some(SentMessage {
                id: m.id,
                status: "sent".into(),
                channel: m.channel.unwrap_or_else(|| "sms".into()),
                from_number: m.from_number,
                to_number: m.to_number,
                conversation_id: Some(conversation_id),
                media_urls: m.media_urls,
                reply_to_message_id: None,
                reply_parent_unresolved: None,
            }));
        }
    }
    Ok(None)
}

/// What a failed attempt leaves: the message's status and error, and the job's
/// next try (none: it ends here).
#[derive(Debug)]
struct Verdict {
    status: &'static str,
    error: Value,
    retry: Option<JobError>,
}

/// The rules of the module's docs, for one failed attempt (`last`: no try is left).
fn verdict(e: CallError, last: bool) -> Verdict {
    let (status, error, retry) = match e {
        CallError::NotSent(e) => (
            if last { "failed" } else { "queued" },
            error_of("NOT_SENT", &e),
            Some(JobError::Retry(format!("AgentPhone not reached: {e}"))),
        ),
        CallError::Unknown(e) => (
            if last { "unconfirmed" } else { "sending" },
            error_of("OUTCOME_UNKNOWN", &e),
            Some(JobError::Retry(format!("outcome unknown: {e}"))),
        ),
        CallError::Status { error, retry_after } => {
            let stored = error.to_json();
            match error.status {
                429 => {
                    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    let wait = Span::from_std(wait).unwrap_or(Span::seconds(30));
                    let retry =
                        JobError::RetryAfter(format!("AgentPhone rate limit: {error}"), wait);
                    (if last { "failed" } else { "queued" }, stored, Some(retry))
                }
                409 if error.code.as_deref() == Some("DELIVERY_UNCONFIRMED") => {
                    ("unconfirmed", stored, None)
                }
                408 | 500..=599 => (
                    if last { "unconfirmed" } else { "sending" },
                    stored,
                    Some(JobError::Retry(format!("AgentPhone {error}"))),
                ),
                _ => ("failed", stored, None),
            }
        }
    };
    Verdict {
        status,
        error,
        retry: retry.filter(|_| !last),
    }
}

pub async fn run(d: &Delivery, job: &Job) -> Result<(), JobError> {
    let (org, id) = job_message(job)?;
    let id = MessageId(id);
    let db = &d.units.db;
    let Some(msg) = messages::load_outbound(db, org, id).await.map_err(retry)? else {
        return Ok(()); // removed before it went out
    };
    if !UNSENT.contains(&msg.delivery_status.as_deref().unwrap_or("")) {
        return Ok(()); // done by an earlier run (or an echo)
    }
    let Some(thread) = conversations::thread_of(db, org, msg.conversation_id)
        .await
        .map_err(retry)?
    else {
        return Ok(());
    };
    let Some(account) = d.account_for(org, &thread).await.map_err(retry)? else {
        let error = error_of(
            "NO_CHANNEL_ACCOUNT",
            "The organization has no AgentPhone account to send through",
        );
        let failed = DeliveryUpdate {
            status: "failed",
            error: Some(error),
            ..Default::default()
        };
        step(d, org, id, UNSENT, failed).await?;
        return Ok(());
    };
    if media_key(&msg).is_some() && d.storage.is_none() {
        let error = error_of(
            "NO_STORAGE",
            "The message has a file but no file storage is configured to link it from",
        );
        let failed = DeliveryUpdate {
            status: "failed",
            error: Some(error),
            ..Default::default()
        };
        step(d, org, id, UNSENT, failed).await?;
        return Ok(());
    }
    let client = d.client(&account);
    let body = request(d, &msg, &thread, &account).await?;
    let last = job.attempts >= job.max_attempts;
    if msg.delivery_status.as_deref() == Some("sending") {
        // An earlier attempt's outcome is unknown: it may have gone out.
        match find_earlier(d, &client, &account, &msg, &thread, &body).await {
            Ok(Some(sent)) => return record_sent(d, &msg, &thread, &account, &sent).await,
            Ok(None) => {}
            Err(e) if last => {
                let error = error_of(
                    "OUTCOME_UNKNOWN",
                    &format!("An attempt may have been sent; checking failed: {e}"),
                );
                step(
                    d,
                    org,
                    id,
                    UNSENT,
                    DeliveryUpdate {
                        status: "unconfirmed",
                        error: Some(error),
                        ..Default::default()
                    },
                )
                .await?;
                return Ok(());
            }
            Err(e) => {
                return Err(JobError::Retry(format!(
                    "could not check for an earlier attempt: {e}"
                )));
            }
        }
    }
    let _permit = d.limits.acquire(account.id.0).await;
    let attempt = DeliveryUpdate {
        status: "sending",
        attempt: true,
        ..Default::default()
    };
    if !step(d, org, id, UNSENT, attempt).await? {
        return Ok(());
    }
    match client.send_message(&body).await {
        Ok(sent) => record_sent(d, &msg, &thread, &account, &sent).await,
        Err(e) => {
            if let CallError::Status { error, retry_after } = &e
                && error.status == 429
            {
                // The account's other sends wait too.
                d.limits
                    .pause(account.id.0, retry_after.unwrap_or(DEFAULT_RETRY_AFTER));
            }
            let verdict = verdict(e, last);
            let update = DeliveryUpdate {
                status: verdict.status,
                error: Some(verdict.error),
                ..Default::default()
            };
            step(d, org, id, &["sending"], update).await?;
            verdict.retry.map_or(Ok(()), Err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agentphone::ApiError;

    fn status(status: u16, code: Option<&str>) -> CallError {
        CallError::Status {
            error: ApiError {
                status,
                code: code.map(str::to_string),
                message: "m".into(),
                details: None,
            },
            retry_after: Some(Duration::from_secs(7)),
        }
    }

    #[test]
    fn only_what_is_safe_is_tried_again() {
        let cases = [
            (CallError::NotSent("refused".into()), "queued", true),
            (CallError::Unknown("timeout".into()), "sending", true),
            (status(429, Some("RATE_LIMIT_EXCEEDED")), "queued", true),
            (
                status(409, Some("DELIVERY_UNCONFIRMED")),
                "unconfirmed",
                false,
            ),
            (status(409, None), "failed", false),
            (status(502, None), "sending", true),
            (status(408, None), "sending", true),
            (status(400, None), "failed", false),
            (status(401, None), "failed", false),
        ];
        for (e, expected, retried) in cases {
            let shown = format!("{e:?}");
            let v = verdict(e, false);
            assert_eq!(
                (v.status, v.retry.is_some()),
                (expected, retried),
                "{shown}"
            );
        }
        assert!(
            matches!(verdict(status(429, None), false).retry, Some(JobError::RetryAfter(_, w)) if w == Span::seconds(7))
        );
    }

    #[test]
    fn the_last_try_settles_every_message() {
        for (e, expected) in [
            (CallError::NotSent("x".into()), "failed"),
            (CallError::Unknown("x".into()), "unconfirmed"),
            (status(503, None), "unconfirmed"),
            (status(429, None), "failed"),
        ] {
            let v = verdict(e, true);
            assert_eq!((v.status, v.retry.is_none()), (expected, true));
        }
    }
}
