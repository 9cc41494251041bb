//! AgentPhone's events into our inbox, through the domain commands: the same for a
//! webhook delivery and for the history import. Each call runs in the caller's unit
//! of work (one delivery, one transaction) and is idempotent: a message AgentPhone
//! already told us of (by its id) changes nothing, an echo of our own send updates
//! that send's message, an echo of a send we do not know is stored once as outbound.

use super::inbound::{ActivityEvent, Event, MessageEvent, ReactionEvent};
use crate::domain::UnitOfWork;
use crate::domain::channel_accounts::Account;
use crate::domain::contacts::{self, ContactId};
use crate::domain::conversations::{self, NewConversation, ThreadUpdate};
use crate::domain::messages::{self, DeliveryUpdate, MessageId, NewMessage};
use crate::domain::provider_threads;
use crate::feathers::Result;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};

/// What an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A message (or reaction, or activity) stored.
    Stored(MessageId),
    /// Our own send's message, now known to be sent.
    Confirmed(MessageId),
    /// Already known: nothing changed.
    Known,
    /// Acknowledged, nothing to store (why).
    Ignored(String),
}

/// Applies one event for `account`, in `uow` (of the account's organization).
pub async fn apply(uow: &UnitOfWork, account: &Account, event: &Event) -> Result<Outcome> {
    match event {
        Event::Message(m) => message(uow, account, m).await,
        Event::Reaction(r) => reaction(uow, account, r).await,
        Event::Activity(a) => activity(uow, account, a).await,
        Event::Ignored(why) => Ok(Outcome::Ignored(why.clone())),
    }
}

/// The thread keys an event's conversation is known by.
fn thread_keys(
    conversation_id: Option<&str>,
    group_id: Option<&str>,
    number: &str,
    participant: &str,
) -> Vec<String> {
    provider_threads::keys(conversation_id, group_id, Some(number), Some(participant))
}

/// What the thread is, from a message event: for a new conversation and for the
/// provider state kept on it.
struct ThreadFacts<'a> {
    conversation_id: Option<&'a str>,
    number_id: Option<&'a str>,
    our_number: &'a str,
    participant: &'a str,
    contact_name: Option<&'a str>,
    group: Option<&'a super::inbound::Group>,
    at: DateTime<Utc>,
}

/// The AgentPhone state a conversation keeps in `metadata.agentphone`.
fn agentphone_state(facts: &ThreadFacts<'_>, account: &Account) -> Value {
    let number_id = facts
        .number_id
        .map(str::to_string)
        .or_else(|| account.number(facts.our_number).map(|n| n.id.clone()));
    json!({
        "conversation_id": facts.conversation_id,
        "number_id": number_id,
        "phone_number": facts.our_number,
        "group_id": facts.group.map(|g| g.group_id.clone()),
    })
}

/// The conversation of the thread, created (with its contact) when it is new; the
/// primary key of the thread keys makes two first messages at once share one.
async fn conversation_of(
    uow: &UnitOfWork,
    account: &Account,
    facts: &ThreadFacts<'_>,
) -> Result<i64> {
    let org = account.organization_id;
    let keys = thread_keys(
        facts.conversation_id,
        facts.group.map(|g| g.group_id.as_str()),
        facts.our_number,
        facts.participant,
    );
    let conn = uow.conn().await?;
    for _ in 0..2 {
        if let Some(id) = provider_threads::find(conn, account.id.0, &keys).await? {
            // What this event adds (its conversation id, say) names the thread from now on.
            provider_threads::link(conn, org, account.id.0, id, &keys).await?;
            return Ok(id);
        }
        let savepoint = conn.begin().await?;
        let (ContactId(contact), contact_new) = contacts::find_or_create_by_address(
            &savepoint,
            org,
            facts.participant,
            facts.contact_name,
        )
        .await?;
        let mut new = NewConversation::new(contact, "sms", facts.at);
        new.channel_account_id = Some(account.id.0);
        new.external_id = Some(match facts.group {
            Some(g) => g.group_id.clone(),
            None => facts.participant.to_string(),
        });
        new.is_group = facts.group.is_some();
        new.participants = facts.group.map(|g| g.participants.clone());
        new.metadata = Some(json!({ "agentphone": agentphone_state(facts, account) }));
        let id = conversations::insert(&savepoint, org, &new).await?.0;
        if provider_threads::link(&savepoint, org, account.id.0, id, &keys).await?
            == keys.len() as u64
        {
            savepoint.commit().await?;
            if contact_new {
                uow.record_read(contacts::PATH, "created", &[contact])
                    .await?;
            }
            uow.record_read(conversations::PATH, "created", &[id])
                .await?;
            return Ok(id);
        }
        // Another delivery made this thread's conversation meanwhile: use it.
        savepoint.rollback().await?;
    }
    Err(crate::feathers::FeathersError::general(
        "an AgentPhone thread's conversation could not be found or made",
    ))
}

/// Keeps what the event tells of the thread (its conversation id, roster, state).
async fn refresh_thread(
    uow: &UnitOfWork,
    account: &Account,
    id: i64,
    facts: &ThreadFacts<'_>,
    state: Option<&Value>,
) -> Result<()> {
    let org = account.organization_id;
    let Some(thread) = conversations::thread_of(uow.conn().await?, org, id).await? else {
        return Ok(());
    };
    let mut metadata = match thread.metadata.clone() {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut ours = match metadata.get("agentphone") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Value::Object(fresh) = agentphone_state(facts, account) {
        for (k, v) in fresh {
            if !v.is_null() {
                ours.insert(k, v);
            }
        }
    }
    metadata.insert("agentphone".into(), Value::Object(ours));
    if let Some(state) = state {
        metadata.insert("conversationState".into(), state.clone());
    }
    let metadata = Value::Object(metadata);
    let mut update = ThreadUpdate::default();
    if thread.metadata.as_ref() != Some(&metadata) {
        update.metadata = Some(metadata);
    }
    if thread.channel_account_id != Some(account.id.0) {
        update.channel_account_id = Some(account.id.0);
    }
    if let Some(g) = facts.group {
        update.is_group = (!thread.is_group).then_some(true);
        update.participants = Some(g.participants.clone());
    }
    conversations::update_thread(uow, org, id, &update).await
}

/// The message type of an inbound message with media, from the first URL's extension.
fn media_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "heic" | "heif" | "bmp" => "image",
        "mp4" | "mov" | "m4v" | "3gp" | "webm" => "video",
        "mp3" | "m4a" | "aac" | "amr" | "ogg" | "oga" | "wav" | "caf" => "audio",
        _ => "document",
    }
}

async fn message(uow: &UnitOfWork, account: &Account, m: &MessageEvent) -> Result<Outcome> {
    let org = account.organization_id;
    let conn = uow.conn().await?;
    let sent = DeliveryUpdate {
        status: "sent",
        error: Some(Value::Null),
        external_id: m.message_id.clone(),
        transport: Some(m.channel.clone()),
        channel_account_id: Some(account.id.0),
        ..Default::default()
    };
    if let Some(external) = &m.message_id
        && let Some((id, _, status)) = messages::by_external(conn, account.id.0, external).await?
    {
        // Known: an echo may still confirm a send whose answer we never had.
        let waiting = matches!(
            status.as_deref(),
            Some("queued" | "sending" | "unconfirmed")
        );
        if !m.inbound() && waiting {
            messages::set_delivery(uow, org, id, &["queued", "sending", "unconfirmed"], &sent)
                .await?;
            return Ok(Outcome::Confirmed(id));
        }
        return Ok(Outcome::Known);
    }
    let at = m.received_at.unwrap_or_else(Utc::now);
    let facts = ThreadFacts {
        conversation_id: m.conversation_id.as_deref(),
        number_id: m.number_id.as_deref(),
        our_number: m.our_number(),
        participant: m.participant(),
        contact_name: m.contact_name.as_deref(),
        group: m.group.as_ref(),
        at,
    };
    let conversation = conversation_of(uow, account, &facts).await?;
    refresh_thread(
        uow,
        account,
        conversation,
        &facts,
        m.conversation_state.as_ref(),
    )
    .await?;
    if !m.inbound()
        && let Some(id) = messages::pending_with_text(conn, org, conversation, &m.text).await?
    {
        // The echo of a send of ours that has no answer yet (or an unknown one).
        messages::set_delivery(uow, org, id, &["queued", "sending", "unconfirmed"], &sent).await?;
        return Ok(Outcome::Confirmed(id));
    }
    let message_type = match m.media_urls.first() {
        Some(url) => media_type(url),
        None => "text",
    };
    let media = m.media_urls.first().map(|url| {
        json!({ "url": url, "urls": m.media_urls, "file_name": null, "file_type": null, "file_size": 0 })
    });
    let new = NewMessage {
        organization_id: org,
        conversation_id: conversation,
        channel: "sms".into(),
        direction: if m.inbound() { "inbound" } else { "outbound" },
        message_type: message_type.into(),
        // An echo of a send made elsewhere (AgentPhone's console, another tool).
        sender_type: if m.inbound() { "contact" } else { "system" },
        sender_id: None,
        text: (!m.text.is_empty()).then(|| m.text.clone()),
        media,
        template: None,
        payload: Some(m.data.clone()),
        reply_to_message_id: None,
        send_style: None,
        delivery_status: Some(if m.inbound() { "received" } else { "sent" }),
        idempotency_key: None,
        channel_account_id: Some(account.id.0),
        external_id: m.message_id.clone(),
        transport: Some(m.channel.clone()),
        created_at: at,
    };
    Ok(Outcome::Stored(messages::create(uow, &new).await?))
}

async fn reaction(uow: &UnitOfWork, account: &Account, r: &ReactionEvent) -> Result<Outcome> {
    let org = account.organization_id;
    let conn = uow.conn().await?;
    let Some((target, _, _)) = messages::by_external(conn, account.id.0, &r.message_id).await?
    else {
        return Ok(Outcome::Ignored(format!(
            "a reaction to message {} we do not have",
            r.message_id
        )));
    };
    let Some(target) = messages::load_outbound(conn, org, target).await? else {
        return Ok(Outcome::Ignored("a reaction to a removed message".into()));
    };
    let inbound = r.direction != "outbound";
    let new = NewMessage {
        organization_id: org,
        conversation_id: target.conversation_id,
        channel: "sms".into(),
        direction: if inbound { "inbound" } else { "outbound" },
        message_type: "reaction".into(),
        sender_type: if inbound { "contact" } else { "system" },
        sender_id: None,
        text: Some(r.reaction.clone()),
        media: None,
        template: None,
        payload: Some(
            json!({ "messageId": r.message_id, "fromNumber": r.from_number, "reactionType": r.reaction }),
        ),
        reply_to_message_id: Some(target.id.0),
        send_style: None,
        delivery_status: Some(if inbound { "received" } else { "sent" }),
        idempotency_key: None,
        channel_account_id: Some(account.id.0),
        external_id: None,
        transport: Some("imessage".into()),
        created_at: r.created_at.unwrap_or_else(Utc::now),
    };
    Ok(Outcome::Stored(messages::create(uow, &new).await?))
}

async fn activity(uow: &UnitOfWork, account: &Account, a: &ActivityEvent) -> Result<Outcome> {
    let (Some(from), Some(to)) = (a.from.as_deref(), a.to.as_deref()) else {
        // Without both ends the thread cannot be named unless AgentPhone names it.
        let conn = uow.conn().await?;
        let keys = provider_threads::keys(a.conversation_id.as_deref(), None, None, None);
        return match provider_threads::find(conn, account.id.0, &keys).await? {
            Some(conversation) => store_activity(uow, account, conversation, a).await,
            None => Ok(Outcome::Ignored(format!("{} of no known thread", a.event))),
        };
    };
    let inbound = account.number(to).is_some() || account.number(from).is_none();
    let (ours, theirs) = if inbound { (to, from) } else { (from, to) };
    let facts = ThreadFacts {
        conversation_id: a.conversation_id.as_deref(),
        number_id: a.number_id.as_deref(),
        our_number: ours,
        participant: theirs,
        contact_name: None,
        group: None,
        at: Utc::now(),
    };
    let conversation = conversation_of(uow, account, &facts).await?;
    store_activity(uow, account, conversation, a).await
}

async fn store_activity(
    uow: &UnitOfWork,
    account: &Account,
    conversation: i64,
    a: &ActivityEvent,
) -> Result<Outcome> {
    let new = NewMessage {
        organization_id: account.organization_id,
        conversation_id: conversation,
        channel: "sms".into(),
        direction: "inbound",
        message_type: "activity".into(),
        sender_type: "system",
        sender_id: None,
        text: Some(a.summary.clone()),
        media: None,
        template: None,
        payload: Some(json!({ "event": a.event, "data": a.data })),
        reply_to_message_id: None,
        send_style: None,
        delivery_status: None,
        idempotency_key: None,
        channel_account_id: Some(account.id.0),
        external_id: None,
        transport: None,
        created_at: Utc::now(),
    };
    Ok(Outcome::Stored(messages::create(uow, &new).await?))
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type("https://x/a.JPG?sig=1"), "image");
        assert_eq!(media_type("https://x/v.mov"), "video");
        assert_eq!(media_type("https://x/memo.m4a"), "audio");
        assert_eq!(media_type("https://x/file"), "document");
    }
}
