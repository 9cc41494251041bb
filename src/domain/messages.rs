//! Messages: storing one (and what it does to its conversation), removing one or
//! all of a conversation's, and the only SQL that writes the `messages` table.
//! Every statement starts from the organization; every change records its events.

use super::conversations;
use super::unit_of_work::UnitOfWork;
use crate::feathers::{FeathersError, Result};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value;

const TABLE: &str = "messages";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// The path whose events a channel's messages are.
pub fn path_of(channel: &str) -> String {
    format!("conversation-messages-{channel}")
}

/// A message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(pub i64);

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub organization_id: i64,
    pub conversation_id: i64,
    pub channel: String,
    pub direction: &'static str,
    pub message_type: String,
    pub sender_type: &'static str,
    pub sender_id: Option<i64>,
    pub text: Option<String>,
    pub media: Option<Value>,
    pub template: Option<Value>,
    pub payload: Option<Value>,
    pub reply_to_message_id: Option<i64>,
    pub send_style: Option<String>,
    pub delivery_status: Option<&'static str>,
    pub idempotency_key: Option<String>,
    /// A provider's message: the account it came through and its id there.
    pub channel_account_id: Option<i64>,
    pub external_id: Option<String>,
    /// How the provider carried it (`sms`, `mms`, `imessage`).
    pub transport: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NewMessage {
    /// The message as a client would see it once stored (`id` null): for previews.
    pub fn to_json(&self) -> Value {
        let ts = crate::feathers::schema::format_timestamp(&self.created_at);
        serde_json::json!({
            "id": null, "organization_id": self.organization_id, "conversation_id": self.conversation_id,
            "channel": self.channel, "direction": self.direction, "message_type": self.message_type,
            "sender_type": self.sender_type, "sender_id": self.sender_id, "text": self.text, "media": self.media,
            "template": self.template, "payload": self.payload, "channel_account_id": self.channel_account_id, "external_id": self.external_id,
            "reply_to_message_id": self.reply_to_message_id, "send_style": self.send_style, "transport": self.transport,
            "delivery_status": self.delivery_status, "error": null, "created_at": ts, "updated_at": ts,
        })
    }

    /// The job that delivers it, if a provider must: a queued outbound message of a
    /// channel with a delivery adapter (SMS and iMessage, through AgentPhone).
    pub fn delivery_kind(&self) -> Option<&'static str> {
        use crate::jobs::kinds::{AGENTPHONE_REACT, AGENTPHONE_SEND};
        if self.direction != "outbound" || self.delivery_status != Some("queued") {
            return None;
        }
        match (self.channel.as_str(), self.message_type.as_str()) {
            ("sms", "reaction") => Some(AGENTPHONE_REACT),
            ("sms", _) => Some(AGENTPHONE_SEND),
            _ => None,
        }
    }

    /// Whether it moves its conversation (notes, activities and reactions do not).
    pub fn counts_as_interaction(&self) -> bool {
        !NOT_INTERACTIONS.contains(&self.message_type.as_str())
    }
}

/// Message types that leave the conversation's preview and times alone.
const NOT_INTERACTIONS: [&str; 3] = ["note", "activity", "reaction"];

/// A short text for the inbox list: the text, or `[image]` and the like.
pub fn preview(message_type: &str, text: Option<&str>) -> String {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > 200 => t.chars().take(200).collect::<String>() + "…",
        Some(t) => t.to_string(),
        None => format!("[{message_type}]"),
    }
}

/// Stores the message, applies it to its conversation, records `created` (and the
/// conversation's `patched`); answers its id.
pub async fn create(uow: &UnitOfWork, m: &NewMessage) -> Result<MessageId> {
    let id = insert(uow.conn().await?, m).await?;
    uow.record_read(&path_of(&m.channel), "created", &[id.0])
        .await?;
    conversations::apply_message(uow, m).await?;
    if let Some(kind) = m.delivery_kind() {
        uow.enqueue(&crate::jobs::kinds::delivery(m.organization_id, kind, id.0))
            .await?;
    }
    Ok(id)
}

/// The INSERT alone, with no effect and no event (seeding and test setup).
pub async fn insert<C: ConnectionTrait>(conn: &C, d: &NewMessage) -> Result<MessageId> {
    let json = |v: &Option<Value>| {
        Expr::val(
            v.clone()
                .map(Into::into)
                .unwrap_or(sea_orm::sea_query::Value::Json(None)),
        )
    };
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "conversation_id",
                "channel",
                "direction",
                "message_type",
                "sender_type",
                "sender_id",
                "text",
                "media",
                "template",
                "payload",
                "reply_to_message_id",
                "send_style",
                "delivery_status",
                "idempotency_key",
                "channel_account_id",
                "external_id",
                "transport",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            d.organization_id.into(),
            d.conversation_id.into(),
            d.channel.clone().into(),
            d.direction.into(),
            d.message_type.clone().into(),
            d.sender_type.into(),
            d.sender_id.into(),
            d.text.clone().into(),
            json(&d.media),
            json(&d.template),
            json(&d.payload),
            d.reply_to_message_id.into(),
            d.send_style.clone().into(),
            d.delivery_status.map(str::to_string).into(),
            d.idempotency_key.clone().into(),
            d.channel_account_id.into(),
            d.external_id.clone().into(),
            d.transport.clone().into(),
            d.created_at.into(),
            d.created_at.into(),
        ])
        .returning_col(c("id"));
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    Ok(MessageId(row.try_get("", "id")?))
}

/// Soft-deletes the live message `id` of `org` in `channel`, records `removed` (as it
/// was), and fixes its conversation's preview. 404 when there is no such message.
pub async fn remove(uow: &UnitOfWork, org: i64, channel: &str, id: MessageId) -> Result<()> {
    let conn = uow.conn().await?;
    let mut q = Query::select();
    q.columns([c("conversation_id"), c("created_at")])
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0))
        .and_where(Expr::col(c("channel")).eq(channel))
        .and_where(Expr::col(c("deleted_at")).is_null());
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::no_record(id.0))?;
    let conversation: i64 = row.try_get("", "conversation_id")?;
    let created_at: DateTime<Utc> = row.try_get("", "created_at")?;
    uow.record_read(&path_of(channel), "removed", &[id.0])
        .await?;
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("deleted_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0));
    conn.execute(&q).await?;
    conversations::fix_preview(uow, org, conversation, created_at).await
}

/// Soft-deletes every live message of these conversations (they are being
/// removed), recording `removed` for each as it was: one read per channel and one
/// statement.
pub async fn remove_all_of(uow: &UnitOfWork, org: i64, conversations: &[i64]) -> Result<()> {
    let conn = uow.conn().await?;
    let mut live = Query::select();
    live.columns([c("id"), c("channel")])
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).is_in(conversations.iter().copied()))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .order_by(c("id"), Order::Asc);
    let mut by_channel: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for row in conn.query_all(&live).await? {
        let channel: String = row.try_get("", "channel")?;
        by_channel
            .entry(channel)
            .or_default()
            .push(row.try_get("", "id")?);
    }
    for (channel, ids) in &by_channel {
        uow.record_read(&path_of(channel), "removed", ids).await?;
    }
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("deleted_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).is_in(conversations.iter().copied()))
        .and_where(Expr::col(c("deleted_at")).is_null());
    conn.execute(&q).await?;
    Ok(())
}

/// The ids of a conversation's newest `limit` live messages, newest first.
pub async fn newest_ids<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
    limit: u64,
) -> Result<Vec<i64>> {
    let mut q = Query::select();
    q.column(c("id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).eq(conversation))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .order_by(c("created_at"), Order::Desc)
        .order_by(c("id"), Order::Desc)
        .limit(limit);
    Ok((conn.query_all(&q).await?.iter())
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?)
}

/// The newest live message that moves the conversation: type, text, time.
pub async fn newest_interaction<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
) -> Result<Option<(String, Option<String>, DateTime<Utc>)>> {
    let mut latest = Query::select();
    latest
        .columns([c("message_type"), c("text"), c("created_at")])
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).eq(conversation))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .and_where(Expr::col(c("message_type")).is_not_in(NOT_INTERACTIONS))
        .order_by(c("created_at"), Order::Desc)
        .order_by(c("id"), Order::Desc)
        .limit(1);
    Ok(match conn.query_one(&latest).await? {
        Some(r) => Some((
            r.try_get("", "message_type")?,
            r.try_get("", "text")?,
            r.try_get("", "created_at")?,
        )),
        None => None,
    })
}

/// An outbound message as its delivery sees it.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub id: MessageId,
    pub organization_id: i64,
    pub conversation_id: i64,
    pub channel: String,
    pub message_type: String,
    pub text: Option<String>,
    pub payload: Option<Value>,
    /// The attachment as stored (`s3_key`, `s3_path`, ... or a web `url`).
    pub media: Option<Value>,
    pub delivery_status: Option<String>,
    pub attempts: i32,
    pub external_id: Option<String>,
    pub transport: Option<String>,
    pub reply_to_message_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// The live message `id` of `org` with what its delivery needs.
pub async fn load_outbound<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    id: MessageId,
) -> Result<Option<Outbound>> {
    let cols = [
        "id",
        "organization_id",
        "conversation_id",
        "channel",
        "message_type",
        "text",
        "payload",
        "media",
        "delivery_status",
        "attempts",
        "external_id",
        "transport",
        "reply_to_message_id",
        "created_at",
    ];
    let mut q = Query::select();
    q.columns(cols.map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0))
        .and_where(Expr::col(c("deleted_at")).is_null());
    let Some(r) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some(Outbound {
        id: MessageId(r.try_get("", "id")?),
        organization_id: r.try_get("", "organization_id")?,
        conversation_id: r.try_get("", "conversation_id")?,
        channel: r.try_get("", "channel")?,
        message_type: r.try_get("", "message_type")?,
        text: r.try_get("", "text")?,
        payload: r.try_get("", "payload")?,
        media: r.try_get("", "media")?,
        delivery_status: r.try_get("", "delivery_status")?,
        attempts: r.try_get("", "attempts")?,
        external_id: r.try_get("", "external_id")?,
        transport: r.try_get("", "transport")?,
        reply_to_message_id: r.try_get("", "reply_to_message_id")?,
        created_at: r.try_get("", "created_at")?,
    }))
}

/// The message a provider knows by `external_id` on `account`, live or not: its id,
/// channel and delivery status.
pub async fn by_external<C: ConnectionTrait>(
    conn: &C,
    account: i64,
    external_id: &str,
) -> Result<Option<(MessageId, String, Option<String>)>> {
    let mut q = Query::select();
    q.columns([c("id"), c("channel"), c("delivery_status")])
        .from(c(TABLE))
        .and_where(Expr::col(c("channel_account_id")).eq(account))
        .and_where(Expr::col(c("external_id")).eq(external_id));
    Ok(match conn.query_one(&q).await? {
        Some(r) => Some((
            MessageId(r.try_get("", "id")?),
            r.try_get("", "channel")?,
            r.try_get("", "delivery_status")?,
        )),
        None => None,
    })
}

/// One step of a delivery, as the message shows it.
#[derive(Debug, Clone, Default)]
pub struct DeliveryUpdate {
    pub status: &'static str,
    /// This step is a new attempt (the message counts it).
    pub attempt: bool,
    /// `Some(Null)` clears the last error.
    pub error: Option<Value>,
    pub external_id: Option<String>,
    pub transport: Option<String>,
    pub channel_account_id: Option<i64>,
    pub reply_parent_unresolved: Option<bool>,
}

/// Moves the delivery of message `id` of `org` on, if its status is one of `from`
/// (what a step may follow: a delivery never goes back from `sent`); records
/// `patched`. Answers whether it moved.
pub async fn set_delivery(
    uow: &UnitOfWork,
    org: i64,
    id: MessageId,
    from: &[&str],
    update: &DeliveryUpdate,
) -> Result<bool> {
    let conn = uow.conn().await?;
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("delivery_status"), update.status)
        .value(c("updated_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0))
        .and_where(Expr::col(c("delivery_status")).is_in(from.iter().copied()))
        .returning(Query::returning().column(c("channel")));
    if update.attempt {
        q.value(c("attempts"), Expr::col(c("attempts")).add(1));
    }
    if let Some(error) = &update.error {
        let value = match error {
            Value::Null => sea_orm::sea_query::Value::Json(None),
            other => other.clone().into(),
        };
        q.value(c("error"), Expr::val(value));
    }
    if let Some(external) = &update.external_id {
        q.value(c("external_id"), external.clone());
    }
    if let Some(transport) = &update.transport {
        q.value(c("transport"), transport.clone());
    }
    if let Some(account) = update.channel_account_id {
        q.value(c("channel_account_id"), account);
    }
    if let Some(unresolved) = update.reply_parent_unresolved {
        q.value(c("reply_parent_unresolved"), unresolved);
    }
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(false);
    };
    let channel: String = row.try_get("", "channel")?;
    uow.record_read(&path_of(&channel), "patched", &[id.0])
        .await?;
    Ok(true)
}

/// Soft-deletes a message stored from a provider's echo before its send was known
/// to be ours (the send's own message carries it now); records `removed`.
pub async fn drop_echo(uow: &UnitOfWork, org: i64, channel: &str, id: MessageId) -> Result<()> {
    uow.record_read(&path_of(channel), "removed", &[id.0])
        .await?;
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("deleted_at"), Utc::now())
        .value(c("external_id"), Option::<String>::None)
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0));
    uow.conn().await?.execute(&q).await?;
    Ok(())
}

/// The newest outbound message of a conversation still waiting for its send's
/// outcome with this text: an echo of a send we made but have no answer for yet.
pub async fn pending_with_text<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
    text: &str,
) -> Result<Option<MessageId>> {
    let mut q = Query::select();
    q.column(c("id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).eq(conversation))
        .and_where(Expr::col(c("direction")).eq("outbound"))
        .and_where(Expr::col(c("external_id")).is_null())
        .and_where(Expr::col(c("delivery_status")).is_in(["queued", "sending", "unconfirmed"]))
        .and_where(Expr::col(c("text")).eq(text))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .order_by(c("id"), Order::Desc)
        .limit(1);
    Ok(match conn.query_one(&q).await? {
        Some(r) => Some(MessageId(r.try_get("", "id")?)),
        None => None,
    })
}

/// The object keys the media of a conversation's messages name (`s3_key`, or the
/// key of `s3_path`), removed messages included: the orphan sweep keeps them.
pub async fn media_keys<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
) -> Result<std::collections::HashSet<String>> {
    let mut q = Query::select();
    q.column(c("media"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).eq(conversation))
        .and_where(Expr::col(c("media")).is_not_null());
    let mut keys = std::collections::HashSet::new();
    for row in conn.query_all(&q).await? {
        let Some(media) = row.try_get::<Option<Value>>("", "media")? else {
            continue;
        };
        if let Some(key) = media.get("s3_key").and_then(Value::as_str) {
            keys.insert(key.to_string());
        }
        if let Some((_, key)) = media
            .get("s3_path")
            .and_then(Value::as_str)
            .and_then(crate::storage::keys::split_s3_path)
        {
            keys.insert(key.to_string());
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_are_short_and_say_what_media_is() {
        assert_eq!(preview("text", Some(" hi ")), "hi");
        assert_eq!(preview("image", None), "[image]");
        assert_eq!(preview("image", Some("")), "[image]");
        let long = "x".repeat(300);
        assert_eq!(preview("text", Some(&long)).chars().count(), 201);
    }
}
