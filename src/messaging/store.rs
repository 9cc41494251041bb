//! The `messages` table: its schema as services show it, storing a message, and
//! what a message does to its conversation (all in the caller's transaction).

use crate::apex::{PAGE_DEFAULT, PAGE_MAX};
use crate::feathers::{Direction, FeathersError, Field, FieldType, Result, Schema, SqlOptions};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Order, Query};
use serde_json::Value;

pub const DIRECTIONS: &[&str] = &["inbound", "outbound"];
/// The message types, by their wire names (one vocabulary: `channels::MessageType`).
pub const MESSAGE_TYPES: &[&str] = &crate::channels::MessageType::NAMES;
pub const SENDER_TYPES: &[&str] = &["contact", "user", "ai", "automation", "system"];
pub const DELIVERY_STATUSES: &[&str] = &[
    "received",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "unconfirmed",
];
/// One record shape for every channel; fields a channel lacks are null.
pub fn schema() -> Schema {
    use FieldType::*;
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", Integer).query(),
            Field::new("conversation_id", Integer).query(),
            Field::new("channel", String).query(),
            Field::new("direction", Enum(DIRECTIONS)).query(),
            Field::new("message_type", Enum(MESSAGE_TYPES)).query(),
            Field::new("sender_type", Enum(SENDER_TYPES)).query(),
            Field::new("sender_id", Integer).nullable().query(),
            Field::new("text", String).nullable().query().like(),
            Field::new("media", Json).nullable(),
            Field::new("template", Json).nullable(),
            Field::new("payload", Json).nullable(),
            Field::new("channel_account_id", Integer).nullable().query(),
            Field::new("external_id", String).nullable().query(),
            Field::new("reply_to_message_id", Integer)
                .nullable()
                .query(),
            Field::new("send_style", String).nullable(),
            Field::new("transport", String).nullable().query(),
            Field::new("delivery_status", Enum(DELIVERY_STATUSES))
                .nullable()
                .query(),
            Field::new("error", Json).nullable(),
            Field::new("created_at", Timestamp).query(),
            Field::new("updated_at", Timestamp).query(),
        ],
    )
}

/// The messages of one channel, newest first, soft-deleted ones invisible.
pub fn options(channel: &'static str) -> SqlOptions {
    SqlOptions::new("messages", schema())
        .tenant("organization_id")
        .soft_delete("deleted_at")
        .timestamps("created_at", "updated_at")
        .paginate(PAGE_DEFAULT, Some(PAGE_MAX))
        .default_sort(vec![("created_at", Direction::Desc)])
        .fixed("channel", channel)
        .counter(std::sync::Arc::new(super::counts::MessageCounter {
            channel,
        }))
}

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct Draft {
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
    pub created_at: DateTime<Utc>,
}

impl Draft {
    /// The message as a client would see it once stored (`id` null): for previews.
    pub fn to_json(&self) -> Value {
        let ts = crate::feathers::schema::format_timestamp(&self.created_at);
        serde_json::json!({
            "id": null, "organization_id": self.organization_id, "conversation_id": self.conversation_id,
            "channel": self.channel, "direction": self.direction, "message_type": self.message_type,
            "sender_type": self.sender_type, "sender_id": self.sender_id, "text": self.text, "media": self.media,
            "template": self.template, "payload": self.payload, "channel_account_id": null, "external_id": null,
            "reply_to_message_id": self.reply_to_message_id, "send_style": self.send_style, "transport": null,
            "delivery_status": self.delivery_status, "error": null, "created_at": ts, "updated_at": ts,
        })
    }

    fn counts_as_interaction(&self) -> bool {
        !matches!(self.message_type.as_str(), "note" | "activity" | "reaction")
    }
}

/// A short text for the inbox list: the text, or `[image]` and the like.
pub fn preview(message_type: &str, text: Option<&str>) -> String {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > 200 => t.chars().take(200).collect::<String>() + "…",
        Some(t) => t.to_string(),
        None => format!("[{message_type}]"),
    }
}

/// Inserts the draft; answers its id.
pub async fn insert<C: ConnectionTrait>(conn: &C, d: &Draft) -> Result<i64> {
    let json = |v: &Option<Value>| {
        Expr::val(
            v.clone()
                .map(Into::into)
                .unwrap_or(sea_orm::sea_query::Value::Json(None)),
        )
    };
    let mut q = Query::insert();
    q.into_table(Alias::new("messages"))
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
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
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
            d.created_at.into(),
            d.created_at.into(),
        ])
        .returning_col(Alias::new("id"));
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    Ok(row.try_get("", "id")?)
}

/// What a stored message does to its conversation. Outbound (not a note): the
/// interaction time and preview move, `waiting_since` clears, and a user's reply
/// marks it read. Inbound: the same plus unread +1, `last_inbound_at`, waiting
/// since now (if not already), and a closed conversation reopens, unless it is
/// blocked, which leaves it untouched. Notes and activities change nothing.
pub async fn apply_to_conversation<C: ConnectionTrait>(conn: &C, d: &Draft) -> Result<()> {
    if !d.counts_as_interaction() {
        return Ok(());
    }
    let c = |name: &str| Alias::new(name);
    let mut q = Query::update();
    q.table(c("conversations"))
        .value(c("last_interaction_at"), d.created_at)
        .value(
            c("last_message_preview"),
            preview(&d.message_type, d.text.as_deref()),
        )
        .value(c("updated_at"), d.created_at)
        .and_where(Expr::col(c("id")).eq(d.conversation_id))
        .and_where(Expr::col(c("organization_id")).eq(d.organization_id));
    if d.direction == "inbound" {
        q.value(c("last_inbound_at"), d.created_at)
            .value(c("unread_count"), Expr::col(c("unread_count")).add(1))
            .value(
                c("waiting_since"),
                // Portable: a `?` placeholder in custom SQL is not one on PostgreSQL.
                Func::coalesce([Expr::col(c("waiting_since")), Expr::val(d.created_at)]),
            )
            .value(c("status"), "open")
            .and_where(Expr::col(c("blocked")).eq(false));
    } else {
        q.value(
            c("waiting_since"),
            sea_orm::sea_query::Value::ChronoDateTimeUtc(None),
        );
        if d.sender_type == "user" {
            q.value(c("unread_count"), 0i64);
        }
    }
    conn.execute(&q).await?;
    Ok(())
}

/// After a message is removed: if it was the newest, the preview shows the newest remaining one.
pub async fn fix_preview<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
    removed_at: DateTime<Utc>,
) -> Result<()> {
    let c = |name: &str| Alias::new(name);
    let mut latest = Query::select();
    latest
        .columns([c("message_type"), c("text"), c("created_at")])
        .from(c("messages"))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("conversation_id")).eq(conversation))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .and_where(Expr::col(c("message_type")).is_not_in(["note", "activity", "reaction"]))
        .order_by(c("created_at"), Order::Desc)
        .order_by(c("id"), Order::Desc)
        .limit(1);
    let row = conn.query_one(&latest).await?;
    let newest: Option<(String, Option<String>, DateTime<Utc>)> = match &row {
        Some(r) => Some((
            r.try_get("", "message_type")?,
            r.try_get("", "text")?,
            r.try_get("", "created_at")?,
        )),
        None => None,
    };
    if newest.as_ref().is_some_and(|(_, _, at)| *at > removed_at) {
        return Ok(());
    }
    let preview = newest.map(|(t, text, _)| preview(&t, text.as_deref()));
    let mut q = Query::update();
    q.table(c("conversations"))
        .value(c("last_message_preview"), preview)
        .and_where(Expr::col(c("id")).eq(conversation))
        .and_where(Expr::col(c("organization_id")).eq(org));
    conn.execute(&q).await?;
    Ok(())
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
