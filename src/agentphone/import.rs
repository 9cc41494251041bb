//! `agentphone-import`: an account's history at AgentPhone into our inbox. Every
//! message goes through [`ingest::apply`] in a unit of work of its own, claiming the
//! same receipt a webhook claims for it, so the import and the webhooks never store a
//! message twice, and a second run stores nothing.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::client::{CallError, Client};
use super::inbound::{Event, Group, MessageEvent};
use super::ingest::{self, Outcome};
use super::wire::{ConversationMessage, ConversationSummary};
use crate::delivery::AgentPhone;
use crate::domain::channel_accounts::{self, Account, AccountId};
use crate::domain::{Actor, Units, webhook_receipts};
use crate::feathers::error::ErrorKind;
use crate::feathers::{FeathersError, Result};

/// AgentPhone's largest page of conversations (and a safe one for messages).
const PAGE: u32 = 100;
/// Tries of one page: the first and three more.
const TRIES: u32 = 4;
/// The longest `Retry-After` waited out; a longer one is waited this long.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The errors a report keeps (the count goes on in `failed`).
const MAX_ERRORS: usize = 20;

/// How far an import is, after each conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub conversations_done: u64,
    /// From the first page's `total` while listing, then the conversations listed.
    pub conversations_total: Option<u64>,
    /// Messages read from AgentPhone so far.
    pub messages: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub account_id: i64,
    /// Conversations listed.
    pub conversations: u64,
    /// Messages read.
    pub messages: u64,
    pub stored: u64,
    /// Echoes that confirmed a send of ours.
    pub confirmed: u64,
    /// Already in the inbox (by a webhook or an earlier run).
    pub known: u64,
    pub ignored: u64,
    /// Pages that could not be read, and messages that could not be stored.
    pub failed: u64,
    /// The first [`MAX_ERRORS`] failures.
    pub errors: Vec<String>,
}

impl Report {
    fn fail(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error);
        }
    }
}

/// Imports every conversation of `account` with all its messages.
pub async fn run(
    units: &Units,
    agentphone: &AgentPhone,
    account: AccountId,
    progress: &dyn Fn(Progress),
) -> Result<Report> {
    let account = channel_accounts::load(&units.db, &agentphone.sealer, account)
        .await?
        .ok_or_else(|| FeathersError::not_found(format!("No channel account {}", account.0)))?;
    if account.provider != "agentphone" {
        return Err(FeathersError::bad_request(format!(
            "Channel account {} is a {} account, not an AgentPhone one",
            account.id.0, account.provider
        )));
    }
    let client = agentphone.client(&account);
    let mut report = Report {
        account_id: account.id.0,
        ..Report::default()
    };
    let mut at = Progress::default();
    // Listed first, then read: the list is ordered by the last message, so a
    // conversation that moves meanwhile shifts the offsets under a slow import.
    let conversations = list(&client, &mut report, &mut at, progress).await;
    report.conversations = conversations.len() as u64;
    at.conversations_total = Some(report.conversations);
    progress(at);
    for summary in &conversations {
        match history(&client, &summary.id).await {
            Ok(messages) => {
                at.messages += messages.len() as u64;
                report.messages += messages.len() as u64;
                for m in &messages {
                    let event = Event::Message(Box::new(event_of(summary, m)));
                    match apply(units, &account, &event).await {
                        Ok(Outcome::Stored(_)) => report.stored += 1,
                        Ok(Outcome::Confirmed(_)) => report.confirmed += 1,
                        Ok(Outcome::Known) => report.known += 1,
                        Ok(Outcome::Ignored(_)) => report.ignored += 1,
                        Err(e) => report.fail(format!(
                            "message {} of conversation {}: {}",
                            m.id,
                            summary.id,
                            describe(&e)
                        )),
                    }
                }
            }
            // Skipped whole: its older messages stored after newer ones would leave
            // its preview at an old message. A later run takes it.
            Err(e) => report.fail(format!("messages of conversation {}: {e}", summary.id)),
        }
        at.conversations_done += 1;
        progress(at);
    }
    Ok(report)
}

/// Every conversation of the account, each once; a page that cannot be read ends the
/// list (what follows it is unknown), as a failure in `report`.
async fn list(
    client: &Client,
    report: &mut Report,
    at: &mut Progress,
    progress: &dyn Fn(Progress),
) -> Vec<ConversationSummary> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = match retried(|| client.conversations(PAGE, offset)).await {
            Ok(page) => page,
            Err(e) => {
                report.fail(format!("conversations at offset {offset}: {e}"));
                break;
            }
        };
        if offset == 0 {
            at.conversations_total = page.total;
            progress(*at);
        }
        let read = page.data.len() as u64;
        for summary in page.data {
            if seen.insert(summary.id.clone()) {
                all.push(summary);
            }
        }
        if !page.has_more || read == 0 {
            break;
        }
        offset += read;
    }
    all
}

/// All messages of one conversation, oldest first. Pages go back by `before` (strictly
/// older than the oldest so far), so messages sharing the boundary's exact time with
/// it, split over two pages, cannot all be read: AgentPhone has no finer cursor.
async fn history(client: &Client, conversation: &str) -> Result<Vec<ConversationMessage>, String> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = retried(|| client.conversation_messages(conversation, PAGE, before.as_deref()))
            .await
            .map_err(|e| e.to_string())?;
        let oldest = (page.data.iter())
            .filter_map(|m| Some((time(&m.received_at)?, &m.received_at)))
            .min_by_key(|(t, _)| *t);
        let cursor = oldest
            .filter(|(t, _)| before.as_deref().and_then(time).is_none_or(|b| *t < b))
            .map(|(_, text)| text.clone());
        all.extend(page.data);
        if !page.has_more {
            break;
        }
        // Asked again, AgentPhone would answer the same page for good.
        before = Some(cursor.ok_or("a page said it has more but none is older")?);
    }
    Ok(oldest_first(all))
}

/// Messages in the order they were received, each once: AgentPhone's pages are newest
/// first (undocumented, so sorted here), a message without a readable time last.
fn oldest_first(mut messages: Vec<ConversationMessage>) -> Vec<ConversationMessage> {
    let mut seen = HashSet::new();
    messages.retain(|m| seen.insert(m.id.clone()));
    // Reversed first: among equal times, the order AgentPhone gave them, oldest first.
    messages.reverse();
    messages
        .sort_by_key(|m| time(&m.received_at).map_or((1, DateTime::<Utc>::MIN_UTC), |t| (0, t)));
    messages
}

/// An error with its causes (an opaque "Internal server error" says nothing alone).
fn describe(e: &FeathersError) -> String {
    match e.chain() {
        chain if chain.is_empty() => e.message.clone(),
        chain => format!("{}: {chain}", e.message),
    }
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A call of AgentPhone, tried up to [`TRIES`] times while it may succeed later.
async fn retried<T, F, Fut>(call: F) -> Result<T, CallError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut tried = 1;
    loop {
        match call().await {
            Err(e) if tried < TRIES => match wait(&e, tried) {
                Some(pause) => {
                    tokio::time::sleep(pause).await;
                    tried += 1;
                }
                None => return Err(e),
            },
            outcome => return outcome,
        }
    }
}

/// How long to wait before try `tried + 1`, or `None` when another try cannot help (a
/// refused key, a missing conversation). Reads are safe to repeat whatever happened.
fn wait(error: &CallError, tried: u32) -> Option<Duration> {
    let backoff = Duration::from_millis(250 << (tried - 1).min(6));
    match error {
        CallError::NotSent(_) | CallError::Unknown(_) => Some(backoff),
        CallError::Status { error, retry_after } => match error.status {
            429 => Some(retry_after.unwrap_or(backoff).min(MAX_WAIT)),
            408 | 500.. => Some(retry_after.unwrap_or(backoff).min(MAX_WAIT)),
            _ => None,
        },
    }
}

/// One event, as a webhook applies it; a conflict with a webhook storing the same
/// thread or message at that moment is tried once more.
async fn apply(units: &Units, account: &Account, event: &Event) -> Result<Outcome> {
    match apply_once(units, account, event).await {
        Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::Unavailable) => {
            apply_once(units, account, event).await
        }
        outcome => outcome,
    }
}

/// Claims the message's webhook receipt (a webhook with it waits for this unit, or
/// this one for the webhook's) and applies the event, in one unit of work.
async fn apply_once(units: &Units, account: &Account, event: &Event) -> Result<Outcome> {
    let uow = units.begin(Some(account.organization_id), Actor::Provider("agentphone"));
    if let Event::Message(m) = event
        && let Some(id) = &m.message_id
    {
        let keys = [format!("message:{id}")];
        if !webhook_receipts::claim(uow.conn().await?, account.id.0, "agent.message", &keys).await?
        {
            return Ok(Outcome::Known);
        }
    }
    let outcome = ingest::apply(&uow, account, event).await?;
    uow.commit().await?;
    Ok(outcome)
}

/// A message of the history as the webhook would have told it.
pub fn event_of(summary: &ConversationSummary, m: &ConversationMessage) -> MessageEvent {
    let group = summary.is_group.then(|| Group {
        // A group's participant is its group id when AgentPhone leaves `groupId` out.
        group_id: (summary.group_id.clone()).unwrap_or_else(|| summary.participant.clone()),
        name: summary.group_name.clone(),
        participants: match &summary.participants {
            Some(p) => json!(p),
            None => Value::Null,
        },
    });
    let media_urls = if m.media_urls.is_empty() {
        m.media_url.iter().cloned().collect()
    } else {
        m.media_urls.clone()
    };
    MessageEvent {
        message_id: Some(m.id.clone()),
        conversation_id: Some(summary.id.clone()),
        number_id: Some(summary.phone_number_id.clone()),
        from: m.from_number.clone(),
        to: m.to_number.clone(),
        text: m.body.clone(),
        direction: m.direction.clone(),
        channel: m.channel.clone().unwrap_or_else(|| "sms".into()),
        received_at: time(&m.received_at),
        media_urls,
        contact_name: None,
        sender_identifier: m.sender_identifier.clone(),
        group,
        conversation_state: summary.metadata.clone().filter(|s| !s.is_null()),
        data: serde_json::to_value(m).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agentphone::ApiError;
    use serde_json::from_value;

    fn summary(extra: Value) -> ConversationSummary {
        let mut base = json!({
            "id": "conv_1", "phoneNumberId": "num_1", "phoneNumber": "+15550001111",
            "participant": "+15552223333", "metadata": null
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        from_value(base).unwrap()
    }

    fn message(id: &str, at: &str, extra: Value) -> ConversationMessage {
        let mut base = json!({
            "id": id, "body": "hi", "fromNumber": "+15552223333", "toNumber": "+15550001111",
            "direction": "inbound", "receivedAt": at
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        from_value(base).unwrap()
    }

    #[test]
    fn a_one_to_one_message_is_an_event_of_its_conversation() {
        let s = summary(json!({"metadata": {"stage": "lead"}}));
        let m = message(
            "msg_1",
            "2026-01-02T03:04:05.678Z",
            json!({"mediaUrl": "https://x/a.jpg"}),
        );
        let e = event_of(&s, &m);
        assert_eq!(e.message_id.as_deref(), Some("msg_1"));
        assert_eq!(e.conversation_id.as_deref(), Some("conv_1"));
        assert_eq!(e.number_id.as_deref(), Some("num_1"));
        assert_eq!(
            (e.from.as_str(), e.to.as_str()),
            ("+15552223333", "+15550001111")
        );
        assert_eq!(e.participant(), "+15552223333");
        assert_eq!(e.text, "hi");
        assert_eq!(e.channel, "sms");
        assert_eq!(e.received_at, time("2026-01-02T03:04:05.678Z"));
        assert_eq!(e.media_urls, vec!["https://x/a.jpg"]);
        assert_eq!(e.group, None);
        assert_eq!(e.conversation_state, Some(json!({"stage": "lead"})));
        assert_eq!(e.data["id"], "msg_1");
        assert_eq!(e.data["receivedAt"], "2026-01-02T03:04:05.678Z");
    }

    #[test]
    fn a_group_message_carries_the_roster() {
        let s = summary(json!({
            "participant": "grp_9", "isGroup": true, "groupId": "grp_9", "groupName": "Team",
            "participants": [{"identifier": "+15552223333", "name": "Ann"}, {"identifier": "b@x.test"}]
        }));
        let m = message(
            "msg_2",
            "2026-01-02T00:00:00Z",
            json!({"senderIdentifier": "+15552223333", "channel": "imessage",
                   "mediaUrl": "https://x/old.png", "mediaUrls": ["https://x/1.png", "https://x/2.png"]}),
        );
        let e = event_of(&s, &m);
        let group = e.group.as_ref().expect("a group");
        assert_eq!(group.group_id, "grp_9");
        assert_eq!(group.name.as_deref(), Some("Team"));
        assert_eq!(
            group.participants,
            json!([{"identifier": "+15552223333", "name": "Ann"}, {"identifier": "b@x.test", "name": null}])
        );
        assert_eq!(e.sender_identifier.as_deref(), Some("+15552223333"));
        assert_eq!(e.channel, "imessage");
        assert_eq!(e.media_urls, vec!["https://x/1.png", "https://x/2.png"]);
        assert_eq!(e.conversation_state, None);
        // Without `groupId`, the participant names the group.
        let s = summary(json!({"participant": "grp_7", "isGroup": true}));
        let e = event_of(&s, &m);
        assert_eq!(e.group.unwrap().group_id, "grp_7");
    }

    #[test]
    fn an_outbound_message_is_an_echo_to_the_participant() {
        let m = message(
            "msg_3",
            "not a time",
            json!({"direction": "outbound", "fromNumber": "+15550001111", "toNumber": "+15552223333"}),
        );
        let e = event_of(&summary(json!({})), &m);
        assert!(!e.inbound());
        assert_eq!(e.participant(), "+15552223333");
        assert_eq!(e.received_at, None);
        assert!(e.media_urls.is_empty());
    }

    #[test]
    fn history_is_applied_oldest_first_each_message_once() {
        let newest_first = vec![
            message("m3", "2026-01-03T00:00:00Z", json!({})),
            message("m2b", "2026-01-02T00:00:00Z", json!({})),
            message("m2a", "2026-01-02T00:00:00Z", json!({})),
            message("mx", "garbled", json!({})),
            message("m1", "2026-01-01T00:00:00+01:00", json!({})),
            message("m3", "2026-01-03T00:00:00Z", json!({})),
        ];
        let ids: Vec<String> = oldest_first(newest_first)
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["m1", "m2a", "m2b", "m3", "mx"]);
    }

    #[test]
    fn only_errors_a_later_try_may_mend_are_retried() {
        let status = |status: u16, retry_after: Option<u64>| CallError::Status {
            error: ApiError::parse(status, b""),
            retry_after: retry_after.map(Duration::from_secs),
        };
        assert_eq!(wait(&status(429, Some(3)), 1), Some(Duration::from_secs(3)));
        assert_eq!(wait(&status(429, Some(3600)), 1), Some(MAX_WAIT));
        assert_eq!(
            wait(&status(429, None), 2),
            Some(Duration::from_millis(500))
        );
        assert_eq!(wait(&status(503, None), 3), Some(Duration::from_secs(1)));
        assert_eq!(
            wait(&CallError::Unknown("reset".into()), 1),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            wait(&CallError::NotSent("refused".into()), 1),
            Some(Duration::from_millis(250))
        );
        for permanent in [400, 401, 403, 404, 422] {
            assert_eq!(wait(&status(permanent, None), 1), None, "{permanent}");
        }
    }
}
