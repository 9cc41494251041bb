//! Composing an outgoing message from a composer's body: load the conversation,
//! render a canned reply, check the channel's rules, turn it into the channel's
//! wire payload, and produce the [`NewMessage`] to store.

use super::placeholders::{self, Values};
use crate::channels::rules::{MediaCheck, OutgoingCheck, check_outgoing};
use crate::channels::transform::{self, MediaRef, Outgoing, SEND_STYLES};
use crate::channels::{Channel, MessageType};
use crate::domain::conversation_files;
pub use crate::domain::conversations::ConversationRow;
use crate::domain::messages::NewMessage;
use crate::feathers::schema::check_json_size;
use crate::feathers::{FeathersError, Principal, Result};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::str::FromStr;

/// The most bytes of JSON `messageData` (a template's data) may hold: it is stored
/// with the message, and again in its wire payload.
pub const MESSAGE_DATA_MAX_BYTES: usize = 16 * 1024;
/// The most characters of each media field (`s3_key`, `s3_path`, `file_name`,
/// `file_type`; bytes of JSON for `conversation_file_id`).
pub const MEDIA_FIELD_MAX_LEN: usize = 2048;

/// The body of every message create (Apex's field names). Which of the optional
/// groups a path accepts is checked by [`Body::only`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub conversation_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub message_text: Option<String>,
    pub message_type: Option<String>,
    pub s3_key: Option<String>,
    pub s3_path: Option<String>,
    pub file_name: Option<String>,
    pub file_type: Option<String>,
    pub file_size: Option<u64>,
    pub conversation_file_id: Option<Value>,
    #[serde(rename = "messageData")]
    pub message_data: Option<Value>,
    pub predefined_message_id: Option<i64>,
    pub variables: Option<Map<String, Value>>,
    /// Messenger/Instagram: reply under the `HUMAN_AGENT` tag (7 days after the contact's last message).
    pub human_agent: Option<bool>,
    /// SMS/iMessage only.
    pub send_style: Option<String>,
    pub reply_to_message_id: Option<i64>,
    /// Playground only.
    pub contact_id: Option<i64>,
    pub sender_type: Option<String>,
}

impl Body {
    /// Parses a JSON body: unknown fields and wrong types are a 400 naming them.
    pub fn parse(data: Value) -> Result<Self> {
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let body: Self = serde_json::from_value(data)
            .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))?;
        if let Some(data) = &body.message_data {
            check_json_size("messageData", data, MESSAGE_DATA_MAX_BYTES)?;
        }
        // The media fields are stored with the message and in its wire payload.
        let media = [
            ("s3_key", &body.s3_key),
            ("s3_path", &body.s3_path),
            ("file_name", &body.file_name),
            ("file_type", &body.file_type),
        ];
        for (name, value) in media {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MEDIA_FIELD_MAX_LEN)
            {
                let message = format!("must be at most {MEDIA_FIELD_MAX_LEN} characters");
                return Err(FeathersError::invalid(name, message));
            }
        }
        if let Some(id) = &body.conversation_file_id {
            check_json_size("conversation_file_id", id, MEDIA_FIELD_MAX_LEN)?;
        }
        Ok(body)
    }

    /// 400 when a field outside `allowed` is set.
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        let set = [
            ("messageData", self.message_data.is_some()),
            (
                "predefined_message_id",
                self.predefined_message_id.is_some(),
            ),
            ("variables", self.variables.is_some()),
            ("human_agent", self.human_agent.is_some()),
            ("send_style", self.send_style.is_some()),
            ("reply_to_message_id", self.reply_to_message_id.is_some()),
            ("contact_id", self.contact_id.is_some()),
            ("sender_type", self.sender_type.is_some()),
        ];
        match set
            .iter()
            .find(|(name, present)| *present && !allowed.contains(name))
        {
            Some((name, _)) => Err(FeathersError::invalid(name, "is not accepted on this path")),
            None => Ok(()),
        }
    }

    /// The caller's organization; 403 if the body names another.
    pub fn check_organization(&self, principal: &Principal) -> Result<()> {
        match self.organization_id {
            Some(org) if org != principal.tenant_id => Err(FeathersError::forbidden(
                "organization_id must be the caller's own",
            )),
            _ => Ok(()),
        }
    }

    /// The media as stored (`None` without any). `conversation_file_id` names a
    /// registered file of `conversation` (403 otherwise: another conversation's or
    /// organization's file, or none) and supplies every media field; media fields
    /// given with it must name the same object. Without it, `file_type`, `file_size`
    /// and a location (`s3_key` or `s3_path`) are required together, and the location
    /// must lie under `conversation`'s prefix (403 otherwise): the payload's media URL
    /// is presigned from it, so a key of another organization would send that
    /// organization's file. A key registered as a file of this conversation is linked
    /// to it (`conversation_file_id`).
    pub async fn media<C: ConnectionTrait>(
        &self,
        conn: &C,
        conversation: &ConversationRow,
    ) -> Result<Option<Value>> {
        if let Some(given) = &self.conversation_file_id {
            let not_ours = || {
                FeathersError::forbidden(
                    "conversation_file_id must name a file of this conversation",
                )
                .with_data(
                    json!({ "rule": "file_in_conversation", "field": "conversation_file_id" }),
                )
            };
            let id = match given {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(not_ours)?;
            let file = conversation_files::load(conn, conversation.organization_id, id)
                .await?
                .filter(|f| f.conversation_id == conversation.id)
                .ok_or_else(not_ours)?;
            let agrees = self.s3_key.as_ref().is_none_or(|k| *k == file.s3_key)
                && self.s3_path.as_ref().is_none_or(|p| *p == file.s3_path);
            if !agrees {
                return Err(FeathersError::forbidden(
                    "s3_key and s3_path must name the file conversation_file_id names",
                )
                .with_data(json!({ "rule": "file_in_conversation", "field": "s3_key" })));
            }
            return Ok(Some(file_media(&file)));
        }
        let any = self.s3_key.is_some()
            || self.s3_path.is_some()
            || self.file_type.is_some()
            || self.file_size.is_some();
        if !any {
            return Ok(None);
        }
        let Some(file_type) = &self.file_type else {
            return Err(FeathersError::invalid(
                "file_type",
                "is required with media",
            ));
        };
        let Some(file_size) = self.file_size else {
            return Err(FeathersError::invalid(
                "file_size",
                "is required with media",
            ));
        };
        if self.s3_key.is_none() && self.s3_path.is_none() {
            return Err(FeathersError::invalid("s3_key", "is required with media"));
        }
        let prefix = file_prefix(conversation);
        if let Some(key) = &self.s3_key {
            check_file_key("s3_key", key, &prefix)?;
        }
        let mut path_key = None;
        if let Some(path) = &self.s3_path {
            let key = s3_object_key(path).ok_or_else(|| {
                FeathersError::invalid("s3_path", "must be s3://{bucket}/{s3_key}")
            })?;
            check_file_key("s3_path", key, &prefix)?;
            path_key = Some(key);
        }
        if let Some(key) = self.s3_key.as_deref().or(path_key)
            && let Some(file) = conversation_files::load_by_key(conn, key).await?
            && file.conversation_id == conversation.id
            && file.organization_id == conversation.organization_id
        {
            return Ok(Some(file_media(&file)));
        }
        Ok(Some(json!({
            "s3_key": self.s3_key, "s3_path": self.s3_path, "file_name": self.file_name,
            "file_type": file_type, "file_size": file_size, "conversation_file_id": null,
        })))
    }
}

/// A registered file as a message's media.
fn file_media(file: &conversation_files::File) -> Value {
    json!({
        "s3_key": file.s3_key, "s3_path": file.s3_path, "file_name": file.file_name,
        "file_type": file.file_type, "file_size": file.file_size,
        "file_category": file.file_category, "conversation_file_id": file.id,
    })
}

/// The object key of an `s3://{bucket}/{key}` path.
fn s3_object_key(path: &str) -> Option<&str> {
    let (_, key) = path.strip_prefix("s3://")?.split_once('/')?;
    Some(key)
}

/// Where a conversation's files live in the bucket (API-DECISIONS.md, Files).
fn file_prefix(conversation: &ConversationRow) -> String {
    format!(
        "org/{}/conversations/{}/",
        conversation.organization_id, conversation.id
    )
}

/// 403 unless `key` lies under `prefix`, with no `..` or empty segment to escape it.
fn check_file_key(field: &str, key: &str, prefix: &str) -> Result<()> {
    let inside = key.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.split('/').all(|s| !s.is_empty() && s != "..")
    });
    if inside {
        return Ok(());
    }
    Err(FeathersError::forbidden(format!(
        "{field} must name a file of this conversation (under {prefix})"
    ))
    .with_data(json!({ "rule": "file_in_conversation", "field": field, "prefix": prefix })))
}

/// 403 unless a canned reply's `media_url` is a web URL or a key of the caller's
/// organization (its canned-reply files live under `org/{organization_id}/`).
fn check_predefined_media(url: &str, org: i64) -> Result<()> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let key = s3_object_key(url).unwrap_or(url);
    check_file_key("media_url", key, &format!("org/{org}/"))
}

/// One row as strings by column name (nulls as `None`).
async fn strings<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    cols: &[&str],
    id: i64,
    org: i64,
) -> Result<Option<Map<String, Value>>> {
    let mut q = Query::select();
    q.columns(cols.iter().map(|c| Alias::new(*c)))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org));
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    let mut out = Map::new();
    for c in cols {
        out.insert(
            (*c).to_string(),
            json!(row.try_get::<Option<String>>("", c)?),
        );
    }
    Ok(Some(out))
}

fn text_of<'a>(row: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

/// Who sends an outgoing message: a user (a REST caller), or an automation.
#[derive(Debug, Clone, Copy)]
pub enum Sender {
    User { organization_id: i64, user_id: i64 },
    Automation { organization_id: i64, id: i64 },
}

impl Sender {
    pub fn of(principal: &Principal) -> Self {
        Sender::User {
            organization_id: principal.tenant_id,
            user_id: principal.user_id,
        }
    }
    pub fn organization_id(&self) -> i64 {
        match *self {
            Sender::User {
                organization_id, ..
            }
            | Sender::Automation {
                organization_id, ..
            } => organization_id,
        }
    }
    /// The message's `sender_type` and `sender_id`.
    pub fn kind_and_id(&self) -> (&'static str, i64) {
        match *self {
            Sender::User { user_id, .. } => ("user", user_id),
            Sender::Automation { id, .. } => ("automation", id),
        }
    }
}

/// Everything an outgoing message needs besides the body.
pub struct Context<'a> {
    pub channel: Channel,
    pub conversation: &'a ConversationRow,
    pub sender: Sender,
    pub now: DateTime<Utc>,
    /// What a sent message's `delivery_status` starts as (`queued`; `delivered` on the playground).
    pub initial_status: &'static str,
}

/// Turns a composer body into the message to store (outbound, from the caller).
pub async fn outgoing<C: ConnectionTrait>(
    conn: &C,
    body: &Body,
    ctx: &Context<'_>,
) -> Result<NewMessage> {
    let org = ctx.sender.organization_id();
    let (sender_type, sender_id) = ctx.sender.kind_and_id();
    let conv = ctx.conversation;
    let contact = strings(
        conn,
        "contacts",
        &[
            "first_name",
            "last_name",
            "phone",
            "channel_whatsapp_wa_id",
            "channel_instagram_user_id",
        ],
        conv.contact_id,
        org,
    )
    .await?
    .unwrap_or_default();

    // A canned reply supplies text, type and media the body leaves out; its placeholders are rendered.
    let predefined = match body.predefined_message_id {
        Some(id) => Some(
            strings(conn, "predefined_messages", &["content", "message_type", "media_url", "filename", "mime_type"], id, org)
                .await?
                .ok_or_else(|| {
                    FeathersError::unprocessable(format!("predefined_message_id {id} does not exist in this organization"))
                        .with_data(json!({ "rule": "reference_in_organization", "field": "predefined_message_id", "value": id }))
                })?,
        ),
        None => None,
    };
    let type_name = body
        .message_type
        .as_deref()
        .or_else(|| predefined.as_ref().and_then(|p| text_of(p, "message_type")))
        .unwrap_or("text");
    let message_type = MessageType::from_str(type_name).map_err(|_| {
        FeathersError::invalid("message_type", format!("unknown type {type_name:?}"))
    })?;
    let mut text = body.message_text.clone().or_else(|| {
        predefined
            .as_ref()
            .and_then(|p| text_of(p, "content").map(str::to_string))
    });
    if predefined.is_some() {
        if let Some(t) = &text {
            // An automation has no first name: `{{user.first_name}}` renders as a missing value.
            let user = match ctx.sender {
                Sender::User { user_id, .. } => {
                    strings(conn, "users", &["first_name"], user_id, org)
                        .await?
                        .unwrap_or_default()
                }
                Sender::Automation { .. } => Map::new(),
            };
            let mut values = Values::from([
                (
                    "contact.first_name".into(),
                    text_of(&contact, "first_name").map(str::to_string),
                ),
                (
                    "contact.last_name".into(),
                    text_of(&contact, "last_name").map(str::to_string),
                ),
                (
                    "user.first_name".into(),
                    text_of(&user, "first_name").map(str::to_string),
                ),
                ("conversation.id".into(), Some(conv.id.to_string())),
            ]);
            for (k, v) in body.variables.iter().flatten() {
                let value = match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => {
                        return Err(FeathersError::invalid(
                            &format!("variables.{k}"),
                            "must be a string or a number",
                        ));
                    }
                };
                values.insert(k.clone(), value);
            }
            text = Some(placeholders::render(t, &values)?);
        }
    } else if body.variables.is_some() {
        return Err(FeathersError::invalid(
            "variables",
            "needs predefined_message_id",
        ));
    }

    let mut media = body.media(conn, conv).await?;
    if media.is_none()
        && let Some(url) = predefined.as_ref().and_then(|p| text_of(p, "media_url"))
    {
        check_predefined_media(url, org)?;
        let p = predefined.as_ref().expect("predefined");
        media = Some(
            json!({ "url": url, "file_name": text_of(p, "filename"), "file_type": text_of(p, "mime_type"), "file_size": 0 }),
        );
    }
    let media_mime = media
        .as_ref()
        .and_then(|m| m["file_type"].as_str())
        .unwrap_or("application/octet-stream")
        .to_string();
    let media_size = media
        .as_ref()
        .and_then(|m| m["file_size"].as_u64())
        .unwrap_or(0);
    let media_url = media
        .as_ref()
        .and_then(|m| {
            m["s3_path"]
                .as_str()
                .or(m["s3_key"].as_str())
                .or(m["url"].as_str())
        })
        .unwrap_or_default()
        .to_string();
    let media_name = media
        .as_ref()
        .and_then(|m| m["file_name"].as_str())
        .map(str::to_string);

    let human_agent = body.human_agent.unwrap_or(false);
    let mut check = OutgoingCheck::new(message_type);
    check.text = text.as_deref();
    check.media = media.as_ref().map(|_| MediaCheck {
        mime: &media_mime,
        size: media_size,
    });
    check.last_inbound_at = conv.last_inbound_at;
    check.human_agent = human_agent;
    check_outgoing(ctx.channel, &check, ctx.now)?;

    if let Some(style) = &body.send_style
        && !SEND_STYLES.contains(&style.as_str())
    {
        return Err(FeathersError::unprocessable(format!(
            "send_style {style:?} is not an iMessage effect"
        ))
        .with_data(json!({ "rule": "send_style", "allowed": SEND_STYLES, "actual": style })));
    }
    let reply_to_external = match body.reply_to_message_id {
        Some(id) => Some(reply_target(conn, org, conv.id, id).await?),
        None => None,
    };
    if message_type == MessageType::Template && body.message_data.is_none() {
        return Err(FeathersError::invalid(
            "messageData",
            "is required for a template",
        ));
    }
    let recipient = match ctx.channel {
        Channel::Whatsapp => text_of(&contact, "channel_whatsapp_wa_id")
            .or(text_of(&contact, "phone"))
            .map(str::to_string),
        Channel::Instagram => text_of(&contact, "channel_instagram_user_id")
            .map(str::to_string)
            .or(conv.external_id.clone()),
        Channel::Messenger => conv.external_id.clone(),
        Channel::Sms => conv
            .external_id
            .clone()
            .or(text_of(&contact, "phone").map(str::to_string)),
        Channel::Webchat | Channel::Playground => Some(
            conv.external_id
                .clone()
                .unwrap_or_else(|| conv.id.to_string()),
        ),
    };
    let recipient = match (recipient, message_type) {
        (Some(r), _) => r,
        (None, MessageType::Note) => String::new(),
        (None, _) => {
            return Err(FeathersError::unprocessable("The contact has no address on this channel").with_data(
                json!({ "rule": "recipient_known", "channel": ctx.channel.as_str(), "conversation_id": conv.id }),
            ));
        }
    };
    let payload = transform::to_wire(&Outgoing {
        channel: ctx.channel,
        message_type,
        text: text.as_deref(),
        media: media.as_ref().map(|_| MediaRef {
            url: &media_url,
            mime: &media_mime,
            file_name: media_name.as_deref(),
            size: media_size,
        }),
        template: body.message_data.as_ref(),
        recipient: &recipient,
        human_agent,
        conversation_id: conv.id,
        sender_type,
        sender_user_id: sender_id,
        send_style: body.send_style.as_deref(),
        reply_to_external_id: reply_to_external
            .as_ref()
            .and_then(|(_, ext)| ext.as_deref()),
    })
    .map_err(|e| FeathersError::invalid(e.field, e.message))?;
    let note = message_type == MessageType::Note;
    Ok(NewMessage {
        organization_id: org,
        conversation_id: conv.id,
        channel: ctx.channel.as_str().to_string(),
        direction: "outbound",
        message_type: message_type.as_str().to_string(),
        sender_type,
        sender_id: Some(sender_id),
        text,
        media,
        template: body.message_data.clone(),
        payload: (!Value::is_null(&payload)).then_some(payload),
        reply_to_message_id: reply_to_external.map(|(id, _)| id),
        send_style: body.send_style.clone(),
        delivery_status: (!note).then_some(ctx.initial_status),
        idempotency_key: None,
        channel_account_id: None,
        external_id: None,
        transport: None,
        created_at: ctx.now,
    })
}

/// The message replied to: one of the same conversation (422 otherwise); answers
/// its id and provider id.
async fn reply_target<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    conversation: i64,
    id: i64,
) -> Result<(i64, Option<String>)> {
    let mut q = Query::select();
    q.columns([Alias::new("id"), Alias::new("external_id")])
        .from(Alias::new("messages"))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("conversation_id")).eq(conversation))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null());
    match conn.query_one(&q).await? {
        Some(row) => Ok((row.try_get("", "id")?, row.try_get("", "external_id")?)),
        None => Err(FeathersError::unprocessable("reply_to_message_id is not a message of this conversation")
            .with_data(json!({ "rule": "reply_in_conversation", "reply_to_message_id": id, "conversation_id": conversation }))),
    }
}
