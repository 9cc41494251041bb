//! Outgoing messages to provider wire payloads: [`to_wire`] turns one stored
//! outgoing message into the JSON request body its channel's provider takes
//! (DESIGN.md section 5). Pure: no I/O, no clock, no database.
//!
//! | channel | payload |
//! |---|---|
//! | WhatsApp | Cloud API message object (`messaging_product: "whatsapp"`) |
//! | Messenger, Instagram | Send API body (`recipient`, `messaging_type`, `message`) |
//! | Webchat | a `message` event for the web widget |
//! | Playground | the same event, typed `playground_message` |
//! | SMS | AgentPhone `POST /v1/messages` body (snake_case) |
//!
//! The result is what the messages service stores in `messages.payload` and what
//! the delivery worker sends, after swapping each S3 `url` for a presigned GET
//! URL. A note is never delivered, so its payload is `null`.
//!
//! # One request, and a follow-up text
//!
//! The Send API (Messenger, Instagram) cannot put text on an attachment, and the
//! WhatsApp Cloud API has no caption on `audio`. Such a message with a caption
//! still comes back as **one** request body, the attachment, with the caption
//! in a top-level `"follow_up_text"` field that is not part of the provider's
//! body: the worker removes it, sends the attachment, then sends the text as a
//! second message to the same recipient (with the same `messaging_type`/`tag`).
//! [`split_follow_up`] does exactly that split.
//!
//! # What is checked here
//!
//! [`check_outgoing`](super::check_outgoing) is the place for the channel rules;
//! this module refuses only what it cannot represent, in the same terms, so a
//! message that passed the rules always transforms:
//!
//! - a type the channel cannot send ([`ChannelRules::can_send`](super::ChannelRules::can_send)):
//!   `template` outside WhatsApp, `location`, `reaction`, `activity`, a media type
//!   without a media rule (documents on SMS) → field `message_type`;
//! - `human_agent` on a channel without the extension → `human_agent`;
//! - a `text` message without text (blank counts as none) → `text`; a `text`
//!   message with an attachment, or a media message without one → `media`;
//! - an empty `recipient` → `recipient`;
//! - the WhatsApp `messageData` structure → `messageData` (API-DECISIONS.md,
//!   "Messages");
//! - an SMS `send_style` outside AgentPhone's list ([`SEND_STYLES`]) → `send_style`.
//!
//! What a channel cannot carry and the provider would drop anyway is left out
//! without an error: `send_style` outside SMS, `reply_to_external_id` outside
//! WhatsApp and SMS (Messenger, Instagram and the widgets get no reply
//! reference). A blank caption is no caption.

use std::fmt;

use serde_json::{Map, Value, json};

use super::{Channel, MessageType};

/// The top-level field that carries a caption the provider cannot attach to the
/// media itself; see the [module docs](self) and [`split_follow_up`].
pub const FOLLOW_UP_TEXT: &str = "follow_up_text";

/// The iMessage effects AgentPhone accepts as `send_style` (its OpenAPI enum,
/// `agentphone/NOTES.md` section 2). On SMS/MMS the platform drops the effect.
pub const SEND_STYLES: &[&str] = &[
    "celebration",
    "fireworks",
    "lasers",
    "love",
    "confetti",
    "balloons",
    "spotlight",
    "echo",
    "invisible",
    "gentle",
    "loud",
    "slam",
];

/// A stored attachment, referenced by its S3 location; the delivery worker swaps
/// `url` for a presigned GET URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRef<'a> {
    pub url: &'a str,
    pub mime: &'a str,
    pub file_name: Option<&'a str>,
    pub size: u64,
}

/// An outgoing message, as stored, about to be turned into a wire payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outgoing<'a> {
    pub channel: Channel,
    pub message_type: MessageType,
    /// The body of a text message, or the caption of a media message.
    pub text: Option<&'a str>,
    pub media: Option<MediaRef<'a>>,
    /// WhatsApp `messageData`: `{whatsapp_template_id, name, language, components}`.
    pub template: Option<&'a Value>,
    /// wa_id / phone (WhatsApp), PSID (Messenger), IGSID (Instagram), phone or
    /// `grp_` id (SMS), session (webchat, playground).
    pub recipient: &'a str,
    /// Send with the Messenger/Instagram `HUMAN_AGENT` tag.
    pub human_agent: bool,
    pub conversation_id: i64,
    /// Who sends: `user` or `automation`, and its id.
    pub sender_type: &'static str,
    pub sender_user_id: i64,
    /// SMS/iMessage effect (AgentPhone `send_style`).
    pub send_style: Option<&'a str>,
    /// The provider id of the message replied to.
    pub reply_to_external_id: Option<&'a str>,
}

/// A message that cannot be turned into a wire payload. `field` names the input
/// at fault (`message_type`, `messageData`, `text`, `media`, `recipient`,
/// `human_agent`, `send_style`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    pub field: &'static str,
    pub message: String,
}

impl TransformError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for TransformError {}

/// The wire payload of `msg` on its channel (see the [module docs](self) for
/// the shapes and what is refused). A note gives `Ok(Value::Null)` on every
/// channel.
pub fn to_wire(msg: &Outgoing<'_>) -> Result<Value, TransformError> {
    if msg.message_type == MessageType::Note {
        return Ok(Value::Null);
    }
    let rules = msg.channel.rules();
    if !rules.can_send(msg.message_type) {
        return Err(not_sendable(msg.channel, msg.message_type));
    }
    if msg.human_agent && rules.human_agent().is_none() {
        return Err(TransformError::new(
            "human_agent",
            format!("{} has no human-agent tag", msg.channel),
        ));
    }
    if msg.recipient.trim().is_empty() {
        return Err(TransformError::new("recipient", "the recipient is empty"));
    }
    let content = Content::of(msg)?;
    match msg.channel {
        Channel::Whatsapp => whatsapp(msg, content),
        Channel::Messenger | Channel::Instagram => send_api(msg, content),
        Channel::Webchat => widget_event("message", msg, content),
        Channel::Playground => widget_event("playground_message", msg, content),
        Channel::Sms => agentphone(msg, content),
    }
}

/// Splits a payload from [`to_wire`] into the request to send first and, when
/// it carries [`FOLLOW_UP_TEXT`], the text message to send right after it: for
/// WhatsApp a Cloud API text message to the same `to`, for Messenger and
/// Instagram a Send API text message with the same `recipient`,
/// `messaging_type` and `tag`. The reply `context` stays on the first request.
/// Any other payload comes back unchanged, with no follow-up.
pub fn split_follow_up(channel: Channel, mut payload: Value) -> (Value, Option<Value>) {
    let Some(body) = payload.as_object_mut() else {
        return (payload, None);
    };
    let Some(Value::String(text)) = body.remove(FOLLOW_UP_TEXT) else {
        return (payload, None);
    };
    let follow_up = match channel {
        Channel::Whatsapp => {
            let mut next = Map::new();
            for key in ["messaging_product", "recipient_type", "to"] {
                if let Some(v) = body.get(key) {
                    next.insert(key.to_owned(), v.clone());
                }
            }
            next.insert("type".to_owned(), json!("text"));
            next.insert(
                "text".to_owned(),
                json!({ "preview_url": false, "body": text }),
            );
            Value::Object(next)
        }
        Channel::Messenger | Channel::Instagram => {
            let mut next = Map::new();
            for key in ["recipient", "messaging_type", "tag"] {
                if let Some(v) = body.get(key) {
                    next.insert(key.to_owned(), v.clone());
                }
            }
            next.insert("message".to_owned(), json!({ "text": text }));
            Value::Object(next)
        }
        // These channels never get a follow-up from `to_wire`.
        Channel::Webchat | Channel::Playground | Channel::Sms => return (payload, None),
    };
    (payload, Some(follow_up))
}

/// Rewrites the media link of a payload from [`to_wire`] to `url`, in the field
/// `channel`'s provider fetches it from: AgentPhone `media_urls[0]`, WhatsApp
/// `{type}.link`, Messenger and Instagram `message.attachment.payload.url`, the
/// widgets' `message.media.url`. The stored payload keeps the file's S3 reference;
/// the delivery job swaps in a presigned GET URL when it runs (not when the message
/// is stored, so the link is fresh however long the job waited). Answers whether the
/// payload had a media link.
pub fn with_media_url(channel: Channel, payload: &mut Value, url: &str) -> bool {
    let slot = match channel {
        Channel::Sms => payload
            .get_mut("media_urls")
            .and_then(Value::as_array_mut)
            .and_then(|urls| urls.first_mut()),
        Channel::Whatsapp => {
            let kind = payload
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_owned);
            kind.and_then(|kind| payload.get_mut(&kind))
                .and_then(|object| object.get_mut("link"))
        }
        Channel::Messenger | Channel::Instagram => {
            payload.pointer_mut("/message/attachment/payload/url")
        }
        Channel::Webchat | Channel::Playground => payload.pointer_mut("/message/media/url"),
    };
    match slot {
        Some(link) if link.is_string() => {
            *link = Value::String(url.to_owned());
            true
        }
        _ => false,
    }
}

/// What is sent, once the message type, text and attachment agree.
#[derive(Clone, Copy)]
enum Content<'a> {
    Text(&'a str),
    Media {
        kind: MessageType,
        media: MediaRef<'a>,
        caption: Option<&'a str>,
    },
    Template(&'a Value),
}

impl<'a> Content<'a> {
    fn of(msg: &Outgoing<'a>) -> Result<Self, TransformError> {
        let text = msg.text.filter(|t| !t.trim().is_empty());
        match msg.message_type {
            MessageType::Text => {
                if msg.media.is_some() {
                    return Err(TransformError::new(
                        "media",
                        "a text message has no attachment",
                    ));
                }
                text.map(Content::Text)
                    .ok_or_else(|| TransformError::new("text", "a text message needs text"))
            }
            // `text` and `media` of a template are not looked at, as in the rules.
            MessageType::Template => msg.template.map(Content::Template).ok_or_else(|| {
                TransformError::new("messageData", "a template message needs messageData")
            }),
            kind if kind.is_media() => {
                let media = msg.media.ok_or_else(|| {
                    TransformError::new("media", format!("{kind} messages need an attachment"))
                })?;
                if media.url.trim().is_empty() {
                    return Err(TransformError::new("media", "the attachment has no url"));
                }
                Ok(Content::Media {
                    kind,
                    media,
                    caption: text,
                })
            }
            other => Err(not_composable(other)),
        }
    }
}

fn not_composable(message_type: MessageType) -> TransformError {
    TransformError::new(
        "message_type",
        format!("{message_type} messages are not composed or sent"),
    )
}

fn not_sendable(channel: Channel, message_type: MessageType) -> TransformError {
    match message_type {
        MessageType::Location | MessageType::Reaction | MessageType::Activity => {
            not_composable(message_type)
        }
        MessageType::Template => TransformError::new(
            "message_type",
            format!("templates are only available on whatsapp, not on {channel}"),
        ),
        _ => TransformError::new(
            "message_type",
            format!("{channel} cannot send {message_type} messages"),
        ),
    }
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// WhatsApp Cloud API message object.
fn whatsapp(msg: &Outgoing<'_>, content: Content<'_>) -> Result<Value, TransformError> {
    let mut body = Map::new();
    body.insert("messaging_product".to_owned(), json!("whatsapp"));
    body.insert("recipient_type".to_owned(), json!("individual"));
    body.insert("to".to_owned(), json!(msg.recipient));
    let mut follow_up = None;
    match content {
        Content::Text(text) => {
            body.insert("type".to_owned(), json!("text"));
            body.insert(
                "text".to_owned(),
                json!({ "preview_url": false, "body": text }),
            );
        }
        Content::Media {
            kind,
            media,
            caption,
        } => {
            let mut object = Map::new();
            object.insert("link".to_owned(), json!(media.url));
            if kind == MessageType::Audio {
                // Audio has no caption on WhatsApp: the text goes next.
                follow_up = caption;
            } else if let Some(caption) = caption {
                object.insert("caption".to_owned(), json!(caption));
            }
            if kind == MessageType::Document
                && let Some(file_name) = non_blank(media.file_name)
            {
                object.insert("filename".to_owned(), json!(file_name));
            }
            body.insert("type".to_owned(), json!(kind.as_str()));
            body.insert(kind.as_str().to_owned(), Value::Object(object));
        }
        Content::Template(data) => {
            body.insert("type".to_owned(), json!("template"));
            body.insert("template".to_owned(), whatsapp_template(data)?);
        }
    }
    if let Some(id) = non_blank(msg.reply_to_external_id) {
        body.insert("context".to_owned(), json!({ "message_id": id }));
    }
    if let Some(text) = follow_up {
        body.insert(FOLLOW_UP_TEXT.to_owned(), json!(text));
    }
    Ok(Value::Object(body))
}

/// The Cloud API `template` object from `messageData`
/// `{whatsapp_template_id, name, language, components}`: `name` a non-empty
/// string, `language` a code or `{"code": ..}`, `components` an array of objects
/// each with a string `type` (passed on as given).
fn whatsapp_template(data: &Value) -> Result<Value, TransformError> {
    let bad = |message: String| TransformError::new("messageData", message);
    let data = data
        .as_object()
        .ok_or_else(|| bad("messageData must be an object".to_owned()))?;

    let name = data
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("messageData.name must be a non-empty string".to_owned()))?;

    let code = match data.get("language") {
        Some(Value::String(code)) => Some(code.as_str()),
        Some(Value::Object(language)) => language.get("code").and_then(Value::as_str),
        _ => None,
    }
    .filter(|c| !c.trim().is_empty())
    .ok_or_else(|| {
        bad(
            "messageData.language must be a language code or an object with a non-empty code"
                .to_owned(),
        )
    })?;

    let components = data
        .get("components")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messageData.components must be an array".to_owned()))?;
    for (i, component) in components.iter().enumerate() {
        let typed = component
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty());
        if !typed {
            return Err(bad(format!(
                "messageData.components[{i}] must be an object with a string type"
            )));
        }
    }

    Ok(json!({
        "name": name,
        "language": { "code": code },
        "components": components,
    }))
}

/// Messenger / Instagram Send API body.
fn send_api(msg: &Outgoing<'_>, content: Content<'_>) -> Result<Value, TransformError> {
    let mut body = Map::new();
    body.insert("recipient".to_owned(), json!({ "id": msg.recipient }));
    match msg.channel.rules().human_agent() {
        Some(rule) if msg.human_agent => {
            body.insert("messaging_type".to_owned(), json!("MESSAGE_TAG"));
            body.insert("tag".to_owned(), json!(rule.tag));
        }
        _ => {
            body.insert("messaging_type".to_owned(), json!("RESPONSE"));
        }
    }
    match content {
        Content::Text(text) => {
            body.insert("message".to_owned(), json!({ "text": text }));
        }
        Content::Media {
            kind,
            media,
            caption,
        } => {
            let attachment_type = match kind {
                MessageType::Document => "file",
                other => other.as_str(),
            };
            body.insert(
                "message".to_owned(),
                json!({
                    "attachment": {
                        "type": attachment_type,
                        "payload": { "url": media.url, "is_reusable": true },
                    }
                }),
            );
            if let Some(caption) = caption {
                body.insert(FOLLOW_UP_TEXT.to_owned(), json!(caption));
            }
        }
        // Unreachable: the rules give templates to WhatsApp only.
        Content::Template(_) => return Err(not_sendable(msg.channel, MessageType::Template)),
    }
    Ok(Value::Object(body))
}

/// Web widget event (webchat `message`, playground `playground_message`).
fn widget_event(
    event_type: &str,
    msg: &Outgoing<'_>,
    content: Content<'_>,
) -> Result<Value, TransformError> {
    let (text, media) = match content {
        Content::Text(text) => (Some(text), Value::Null),
        Content::Media { media, caption, .. } => (
            caption,
            json!({
                "url": media.url,
                "mime": media.mime,
                "file_name": media.file_name,
                "size": media.size,
            }),
        ),
        // Unreachable: the rules give templates to WhatsApp only.
        Content::Template(_) => return Err(not_sendable(msg.channel, MessageType::Template)),
    };
    Ok(json!({
        "type": event_type,
        "conversation_id": msg.conversation_id,
        "message": {
            "type": msg.message_type.as_str(),
            "text": text,
            "media": media,
        },
        "sender": { "type": msg.sender_type, "id": msg.sender_user_id },
    }))
}

/// AgentPhone `POST /v1/messages` body. Absent options are omitted, as the SDK
/// does.
fn agentphone(msg: &Outgoing<'_>, content: Content<'_>) -> Result<Value, TransformError> {
    let mut body = Map::new();
    match content {
        Content::Text(text) => {
            body.insert("body".to_owned(), json!(text));
            body.insert("to_number".to_owned(), json!(msg.recipient));
        }
        Content::Media { media, caption, .. } => {
            body.insert("body".to_owned(), json!(caption.unwrap_or("")));
            body.insert("to_number".to_owned(), json!(msg.recipient));
            body.insert("media_urls".to_owned(), json!([media.url]));
        }
        // Unreachable: the rules give templates to WhatsApp only.
        Content::Template(_) => return Err(not_sendable(msg.channel, MessageType::Template)),
    }
    if let Some(style) = msg.send_style {
        if !SEND_STYLES.contains(&style) {
            return Err(TransformError::new(
                "send_style",
                format!(
                    "'{style}' is not a send style; one of: {}",
                    SEND_STYLES.join(", ")
                ),
            ));
        }
        body.insert("send_style".to_owned(), json!(style));
    }
    if let Some(id) = non_blank(msg.reply_to_external_id) {
        body.insert("reply_to_message_id".to_owned(), json!(id));
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests;
