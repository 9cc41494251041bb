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
        "sender": { "type": "user", "id": msg.sender_user_id },
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
mod tests {
    use super::*;

    const IMAGE: MediaRef<'static> = MediaRef {
        url: "s3://files/org1/photo.jpg",
        mime: "image/jpeg",
        file_name: Some("photo.jpg"),
        size: 120_000,
    };
    const VIDEO: MediaRef<'static> = MediaRef {
        url: "s3://files/org1/clip.mp4",
        mime: "video/mp4",
        file_name: Some("clip.mp4"),
        size: 2_000_000,
    };
    const AUDIO: MediaRef<'static> = MediaRef {
        url: "s3://files/org1/voice.mp3",
        mime: "audio/mpeg",
        file_name: None,
        size: 64_000,
    };
    const DOCUMENT: MediaRef<'static> = MediaRef {
        url: "s3://files/org1/invoice.pdf",
        mime: "application/pdf",
        file_name: Some("invoice.pdf"),
        size: 300_000,
    };

    /// A message with nothing set but the channel, type and recipient.
    fn base(channel: Channel, message_type: MessageType) -> Outgoing<'static> {
        Outgoing {
            channel,
            message_type,
            text: None,
            media: None,
            template: None,
            recipient: "R1",
            human_agent: false,
            conversation_id: 42,
            sender_user_id: 7,
            send_style: None,
            reply_to_external_id: None,
        }
    }

    fn text(channel: Channel, body: &'static str) -> Outgoing<'static> {
        Outgoing {
            text: Some(body),
            ..base(channel, MessageType::Text)
        }
    }

    fn media(
        channel: Channel,
        kind: MessageType,
        media: MediaRef<'static>,
        caption: Option<&'static str>,
    ) -> Outgoing<'static> {
        Outgoing {
            media: Some(media),
            text: caption,
            ..base(channel, kind)
        }
    }

    fn wire(msg: Outgoing<'_>) -> Value {
        to_wire(&msg).unwrap_or_else(|e| panic!("{msg:?}: {e}"))
    }

    fn error(msg: Outgoing<'_>) -> TransformError {
        match to_wire(&msg) {
            Ok(v) => panic!("{msg:?} transformed to {v}"),
            Err(e) => e,
        }
    }

    fn template_msg(data: &Value) -> Outgoing<'_> {
        Outgoing {
            template: Some(data),
            ..base(Channel::Whatsapp, MessageType::Template)
        }
    }

    fn template_data() -> Value {
        json!({
            "whatsapp_template_id": "1234567890",
            "name": "order_update",
            "language": "en_US",
            "components": [
                { "type": "body", "parameters": [{ "type": "text", "text": "Ada" }] }
            ],
            "conversation_id": 42,
        })
    }

    // ---- WhatsApp ----

    #[test]
    fn whatsapp_text() {
        assert_eq!(
            wire(text(Channel::Whatsapp, "Hello there")),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "text",
                "text": { "preview_url": false, "body": "Hello there" },
            })
        );
    }

    #[test]
    fn whatsapp_image_with_and_without_caption() {
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Image,
                IMAGE,
                Some("Look")
            )),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "image",
                "image": { "link": "s3://files/org1/photo.jpg", "caption": "Look" },
            })
        );
        let bare = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "R1",
            "type": "image",
            "image": { "link": "s3://files/org1/photo.jpg" },
        });
        assert_eq!(
            wire(media(Channel::Whatsapp, MessageType::Image, IMAGE, None)),
            bare
        );
        // A blank caption is no caption.
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Image,
                IMAGE,
                Some("  ")
            )),
            bare
        );
    }

    #[test]
    fn whatsapp_video_with_caption() {
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Video,
                VIDEO,
                Some("Clip")
            )),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "video",
                "video": { "link": "s3://files/org1/clip.mp4", "caption": "Clip" },
            })
        );
    }

    #[test]
    fn whatsapp_audio_has_no_caption_and_sends_text_next() {
        assert_eq!(
            wire(media(Channel::Whatsapp, MessageType::Audio, AUDIO, None)),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "audio",
                "audio": { "link": "s3://files/org1/voice.mp3" },
            })
        );
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Audio,
                AUDIO,
                Some("Listen")
            )),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "audio",
                "audio": { "link": "s3://files/org1/voice.mp3" },
                "follow_up_text": "Listen",
            })
        );
    }

    #[test]
    fn whatsapp_document_with_filename_and_caption() {
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Document,
                DOCUMENT,
                Some("Your invoice")
            )),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "document",
                "document": {
                    "link": "s3://files/org1/invoice.pdf",
                    "caption": "Your invoice",
                    "filename": "invoice.pdf",
                },
            })
        );
        let unnamed = MediaRef {
            file_name: None,
            ..DOCUMENT
        };
        assert_eq!(
            wire(media(
                Channel::Whatsapp,
                MessageType::Document,
                unnamed,
                None
            )),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "document",
                "document": { "link": "s3://files/org1/invoice.pdf" },
            })
        );
    }

    #[test]
    fn whatsapp_template_with_string_language() {
        let data = template_data();
        assert_eq!(
            wire(template_msg(&data)),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "template",
                "template": {
                    "name": "order_update",
                    "language": { "code": "en_US" },
                    "components": [
                        { "type": "body", "parameters": [{ "type": "text", "text": "Ada" }] }
                    ],
                },
            })
        );
    }

    #[test]
    fn whatsapp_template_with_object_language_and_no_components() {
        let data = json!({
            "whatsapp_template_id": "99",
            "name": "hello_world",
            "language": { "code": "en", "policy": "deterministic" },
            "components": [],
        });
        assert_eq!(
            wire(template_msg(&data)),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "template",
                "template": {
                    "name": "hello_world",
                    "language": { "code": "en" },
                    "components": [],
                },
            })
        );
    }

    #[test]
    fn whatsapp_template_ignores_text_and_media() {
        let data = template_data();
        let with_extras = Outgoing {
            text: Some("preview"),
            media: Some(IMAGE),
            ..template_msg(&data)
        };
        assert_eq!(wire(with_extras), wire(template_msg(&data)));
    }

    #[test]
    fn malformed_templates_are_refused() {
        let cases: Vec<(Value, &str)> = vec![
            (json!("order_update"), "messageData must be an object"),
            (
                json!({ "language": "en", "components": [] }),
                "messageData.name must be a non-empty string",
            ),
            (
                json!({ "name": "", "language": "en", "components": [] }),
                "messageData.name must be a non-empty string",
            ),
            (
                json!({ "name": 5, "language": "en", "components": [] }),
                "messageData.name must be a non-empty string",
            ),
            (
                json!({ "name": "t", "components": [] }),
                "messageData.language must be a language code or an object with a non-empty code",
            ),
            (
                json!({ "name": "t", "language": "", "components": [] }),
                "messageData.language must be a language code or an object with a non-empty code",
            ),
            (
                json!({ "name": "t", "language": { "policy": "deterministic" }, "components": [] }),
                "messageData.language must be a language code or an object with a non-empty code",
            ),
            (
                json!({ "name": "t", "language": 1, "components": [] }),
                "messageData.language must be a language code or an object with a non-empty code",
            ),
            (
                json!({ "name": "t", "language": "en" }),
                "messageData.components must be an array",
            ),
            (
                json!({ "name": "t", "language": "en", "components": { "type": "body" } }),
                "messageData.components must be an array",
            ),
            (
                json!({ "name": "t", "language": "en", "components": null }),
                "messageData.components must be an array",
            ),
            (
                json!({ "name": "t", "language": "en",
                        "components": [{ "type": "header" }, { "parameters": [] }] }),
                "messageData.components[1] must be an object with a string type",
            ),
            (
                json!({ "name": "t", "language": "en", "components": [{ "type": 3 }] }),
                "messageData.components[0] must be an object with a string type",
            ),
            (
                json!({ "name": "t", "language": "en", "components": ["body"] }),
                "messageData.components[0] must be an object with a string type",
            ),
        ];
        for (data, message) in cases {
            assert_eq!(
                error(template_msg(&data)),
                TransformError {
                    field: "messageData",
                    message: message.to_owned()
                },
                "{data}"
            );
        }
    }

    #[test]
    fn whatsapp_template_without_message_data_is_refused() {
        assert_eq!(
            error(base(Channel::Whatsapp, MessageType::Template)).field,
            "messageData"
        );
    }

    #[test]
    fn whatsapp_reply_adds_context() {
        let reply = Outgoing {
            reply_to_external_id: Some("wamid.HBgL"),
            ..text(Channel::Whatsapp, "Yes")
        };
        assert_eq!(
            wire(reply),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "text",
                "text": { "preview_url": false, "body": "Yes" },
                "context": { "message_id": "wamid.HBgL" },
            })
        );
        let data = template_data();
        let template_reply = Outgoing {
            reply_to_external_id: Some("wamid.X"),
            ..template_msg(&data)
        };
        assert_eq!(
            wire(template_reply)["context"],
            json!({ "message_id": "wamid.X" })
        );
    }

    #[test]
    fn whatsapp_ignores_send_style_and_refuses_human_agent() {
        let styled = Outgoing {
            send_style: Some("slam"),
            ..text(Channel::Whatsapp, "Hi")
        };
        assert_eq!(wire(styled), wire(text(Channel::Whatsapp, "Hi")));
        let tagged = Outgoing {
            human_agent: true,
            ..text(Channel::Whatsapp, "Hi")
        };
        assert_eq!(error(tagged).field, "human_agent");
    }

    // ---- Messenger and Instagram ----

    const SEND_API: [Channel; 2] = [Channel::Messenger, Channel::Instagram];

    #[test]
    fn send_api_text() {
        for channel in SEND_API {
            assert_eq!(
                wire(text(channel, "Hello")),
                json!({
                    "recipient": { "id": "R1" },
                    "messaging_type": "RESPONSE",
                    "message": { "text": "Hello" },
                }),
                "{channel}"
            );
        }
    }

    #[test]
    fn send_api_human_agent_tag() {
        for channel in SEND_API {
            let tagged = Outgoing {
                human_agent: true,
                ..text(channel, "Hello")
            };
            assert_eq!(
                wire(tagged),
                json!({
                    "recipient": { "id": "R1" },
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": { "text": "Hello" },
                }),
                "{channel}"
            );
        }
    }

    #[test]
    fn send_api_attachments() {
        let cases = [
            (MessageType::Image, IMAGE, "image"),
            (MessageType::Video, VIDEO, "video"),
            (MessageType::Audio, AUDIO, "audio"),
            (MessageType::Document, DOCUMENT, "file"),
        ];
        for channel in SEND_API {
            for (kind, file, wire_type) in cases {
                assert_eq!(
                    wire(media(channel, kind, file, None)),
                    json!({
                        "recipient": { "id": "R1" },
                        "messaging_type": "RESPONSE",
                        "message": {
                            "attachment": {
                                "type": wire_type,
                                "payload": { "url": file.url, "is_reusable": true },
                            }
                        },
                    }),
                    "{channel} {kind}"
                );
            }
        }
    }

    #[test]
    fn send_api_caption_becomes_follow_up_text() {
        for channel in SEND_API {
            let captioned = Outgoing {
                human_agent: true,
                ..media(channel, MessageType::Image, IMAGE, Some("Look"))
            };
            assert_eq!(
                wire(captioned),
                json!({
                    "recipient": { "id": "R1" },
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": {
                        "attachment": {
                            "type": "image",
                            "payload": { "url": "s3://files/org1/photo.jpg", "is_reusable": true },
                        }
                    },
                    "follow_up_text": "Look",
                }),
                "{channel}"
            );
            // Blank: no follow-up.
            assert!(
                wire(media(channel, MessageType::Image, IMAGE, Some(" ")))
                    .get(FOLLOW_UP_TEXT)
                    .is_none()
            );
        }
    }

    #[test]
    fn send_api_ignores_reply_and_send_style() {
        for channel in SEND_API {
            let extras = Outgoing {
                reply_to_external_id: Some("m_1"),
                send_style: Some("slam"),
                ..text(channel, "Hi")
            };
            assert_eq!(wire(extras), wire(text(channel, "Hi")), "{channel}");
        }
    }

    // ---- Webchat and playground ----

    const WIDGETS: [(Channel, &str); 2] = [
        (Channel::Webchat, "message"),
        (Channel::Playground, "playground_message"),
    ];

    #[test]
    fn widget_text() {
        for (channel, event) in WIDGETS {
            assert_eq!(
                wire(text(channel, "Hi!")),
                json!({
                    "type": event,
                    "conversation_id": 42,
                    "message": { "type": "text", "text": "Hi!", "media": null },
                    "sender": { "type": "user", "id": 7 },
                }),
                "{channel}"
            );
        }
    }

    #[test]
    fn widget_media() {
        let cases = [
            (MessageType::Image, IMAGE, Some("Look")),
            (MessageType::Video, VIDEO, None),
            (MessageType::Audio, AUDIO, Some("Listen")),
            (MessageType::Document, DOCUMENT, None),
        ];
        for (channel, event) in WIDGETS {
            for (kind, file, caption) in cases {
                assert_eq!(
                    wire(media(channel, kind, file, caption)),
                    json!({
                        "type": event,
                        "conversation_id": 42,
                        "message": {
                            "type": kind.as_str(),
                            "text": caption,
                            "media": {
                                "url": file.url,
                                "mime": file.mime,
                                "file_name": file.file_name,
                                "size": file.size,
                            },
                        },
                        "sender": { "type": "user", "id": 7 },
                    }),
                    "{channel} {kind}"
                );
            }
        }
        // Spelled out once: an unnamed file and a blank caption are null.
        assert_eq!(
            wire(media(Channel::Webchat, MessageType::Audio, AUDIO, Some(""))),
            json!({
                "type": "message",
                "conversation_id": 42,
                "message": {
                    "type": "audio",
                    "text": null,
                    "media": {
                        "url": "s3://files/org1/voice.mp3",
                        "mime": "audio/mpeg",
                        "file_name": null,
                        "size": 64000,
                    },
                },
                "sender": { "type": "user", "id": 7 },
            })
        );
    }

    // ---- SMS (AgentPhone) ----

    #[test]
    fn sms_text() {
        assert_eq!(
            wire(Outgoing {
                recipient: "+14155550100",
                ..text(Channel::Sms, "Your table is ready")
            }),
            json!({ "body": "Your table is ready", "to_number": "+14155550100" })
        );
    }

    #[test]
    fn sms_media_with_and_without_caption() {
        for (kind, file) in [
            (MessageType::Image, IMAGE),
            (MessageType::Video, VIDEO),
            (MessageType::Audio, AUDIO),
        ] {
            assert_eq!(
                wire(media(Channel::Sms, kind, file, Some("See this"))),
                json!({ "body": "See this", "to_number": "R1", "media_urls": [file.url] }),
                "{kind}"
            );
            assert_eq!(
                wire(media(Channel::Sms, kind, file, None)),
                json!({ "body": "", "to_number": "R1", "media_urls": [file.url] }),
                "{kind}"
            );
        }
    }

    #[test]
    fn sms_send_style_and_reply() {
        let full = Outgoing {
            recipient: "grp_abc",
            send_style: Some("confetti"),
            reply_to_external_id: Some("msg_123"),
            ..text(Channel::Sms, "Congrats!")
        };
        assert_eq!(
            wire(full),
            json!({
                "body": "Congrats!",
                "to_number": "grp_abc",
                "send_style": "confetti",
                "reply_to_message_id": "msg_123",
            })
        );
        let reply = Outgoing {
            reply_to_external_id: Some("msg_9"),
            ..media(Channel::Sms, MessageType::Image, IMAGE, None)
        };
        assert_eq!(
            wire(reply),
            json!({
                "body": "",
                "to_number": "R1",
                "media_urls": ["s3://files/org1/photo.jpg"],
                "reply_to_message_id": "msg_9",
            })
        );
    }

    #[test]
    fn sms_unknown_send_style_is_refused() {
        let bad = Outgoing {
            send_style: Some("Confetti"),
            ..text(Channel::Sms, "Hi")
        };
        assert_eq!(error(bad).field, "send_style");
        for style in SEND_STYLES {
            let ok = Outgoing {
                send_style: Some(style),
                ..text(Channel::Sms, "Hi")
            };
            assert_eq!(wire(ok)["send_style"], json!(style));
        }
    }

    #[test]
    fn sms_documents_are_not_sendable() {
        assert_eq!(
            error(media(Channel::Sms, MessageType::Document, DOCUMENT, None)),
            TransformError {
                field: "message_type",
                message: "sms cannot send document messages".to_owned()
            }
        );
    }

    // ---- Every channel ----

    #[test]
    fn notes_have_no_payload() {
        for channel in Channel::ALL {
            let note = Outgoing {
                text: Some("Called them, will follow up"),
                ..base(channel, MessageType::Note)
            };
            assert_eq!(to_wire(&note), Ok(Value::Null), "{channel}");
            // Whatever else is set: a note is never delivered.
            let odd = Outgoing {
                media: Some(IMAGE),
                recipient: "",
                human_agent: true,
                ..note
            };
            assert_eq!(to_wire(&odd), Ok(Value::Null), "{channel}");
        }
    }

    #[test]
    fn non_composable_types_are_refused() {
        for channel in Channel::ALL {
            for kind in [
                MessageType::Location,
                MessageType::Reaction,
                MessageType::Activity,
            ] {
                let msg = Outgoing {
                    text: Some("x"),
                    ..base(channel, kind)
                };
                assert_eq!(
                    error(msg),
                    TransformError {
                        field: "message_type",
                        message: format!("{kind} messages are not composed or sent"),
                    },
                    "{channel}"
                );
            }
        }
    }

    #[test]
    fn templates_outside_whatsapp_are_refused() {
        let data = template_data();
        for channel in Channel::ALL {
            if channel == Channel::Whatsapp {
                continue;
            }
            let msg = Outgoing {
                channel,
                ..template_msg(&data)
            };
            assert_eq!(
                error(msg),
                TransformError {
                    field: "message_type",
                    message: format!("templates are only available on whatsapp, not on {channel}"),
                }
            );
        }
    }

    #[test]
    fn content_must_match_the_message_type() {
        for channel in Channel::ALL {
            assert_eq!(
                error(base(channel, MessageType::Text)).field,
                "text",
                "{channel}"
            );
            assert_eq!(error(text(channel, " \n ")).field, "text", "{channel}");
            let with_media = Outgoing {
                media: Some(IMAGE),
                ..text(channel, "Hi")
            };
            assert_eq!(error(with_media).field, "media", "{channel}");
            assert_eq!(
                error(Outgoing {
                    text: Some("caption"),
                    ..base(channel, MessageType::Image)
                }),
                TransformError {
                    field: "media",
                    message: "image messages need an attachment".to_owned()
                },
                "{channel}"
            );
            let no_url = MediaRef { url: "", ..IMAGE };
            assert_eq!(
                error(media(channel, MessageType::Image, no_url, None)).field,
                "media"
            );
            let nobody = Outgoing {
                recipient: " ",
                ..text(channel, "Hi")
            };
            assert_eq!(error(nobody).field, "recipient", "{channel}");
        }
    }

    #[test]
    fn human_agent_only_on_send_api_channels() {
        for channel in [
            Channel::Whatsapp,
            Channel::Webchat,
            Channel::Sms,
            Channel::Playground,
        ] {
            let tagged = Outgoing {
                human_agent: true,
                ..text(channel, "Hi")
            };
            assert_eq!(
                error(tagged),
                TransformError {
                    field: "human_agent",
                    message: format!("{channel} has no human-agent tag"),
                }
            );
        }
    }

    /// Every type the rule tables let a channel send transforms to an object,
    /// and every other type (notes aside) is refused, so the two never disagree.
    #[test]
    fn agrees_with_the_rule_tables() {
        let data = template_data();
        for channel in Channel::ALL {
            for kind in MessageType::ALL {
                let msg = Outgoing {
                    channel,
                    message_type: kind,
                    text: Some("Hi"),
                    media: kind.is_media().then_some(IMAGE),
                    template: Some(&data),
                    ..base(channel, kind)
                };
                let result = to_wire(&msg);
                if kind == MessageType::Note {
                    assert_eq!(result, Ok(Value::Null));
                } else if channel.rules().can_send(kind) {
                    assert!(
                        result.as_ref().is_ok_and(Value::is_object),
                        "{channel} {kind}: {result:?}"
                    );
                } else {
                    assert_eq!(
                        result.map_err(|e| e.field),
                        Err("message_type"),
                        "{channel} {kind}"
                    );
                }
            }
        }
    }

    // ---- split_follow_up ----

    #[test]
    fn split_follow_up_for_send_api() {
        for channel in SEND_API {
            let payload = wire(Outgoing {
                human_agent: true,
                ..media(channel, MessageType::Video, VIDEO, Some("Watch"))
            });
            let (first, next) = split_follow_up(channel, payload);
            assert_eq!(
                first,
                json!({
                    "recipient": { "id": "R1" },
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": {
                        "attachment": {
                            "type": "video",
                            "payload": { "url": "s3://files/org1/clip.mp4", "is_reusable": true },
                        }
                    },
                })
            );
            assert_eq!(
                next,
                Some(json!({
                    "recipient": { "id": "R1" },
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "HUMAN_AGENT",
                    "message": { "text": "Watch" },
                }))
            );
        }
    }

    #[test]
    fn split_follow_up_for_whatsapp_audio() {
        let payload = wire(Outgoing {
            reply_to_external_id: Some("wamid.1"),
            ..media(Channel::Whatsapp, MessageType::Audio, AUDIO, Some("Listen"))
        });
        let (first, next) = split_follow_up(Channel::Whatsapp, payload);
        assert_eq!(
            first,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "audio",
                "audio": { "link": "s3://files/org1/voice.mp3" },
                "context": { "message_id": "wamid.1" },
            })
        );
        assert_eq!(
            next,
            Some(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "R1",
                "type": "text",
                "text": { "preview_url": false, "body": "Listen" },
            }))
        );
    }

    #[test]
    fn split_follow_up_leaves_other_payloads_alone() {
        for channel in Channel::ALL {
            let payload = wire(text(channel, "Hi"));
            assert_eq!(
                split_follow_up(channel, payload.clone()),
                (payload, None),
                "{channel}"
            );
        }
        assert_eq!(
            split_follow_up(Channel::Messenger, Value::Null),
            (Value::Null, None)
        );
    }

    #[test]
    fn error_display_names_the_field() {
        let e = TransformError::new("text", "a text message needs text");
        assert_eq!(e.to_string(), "text: a text message needs text");
    }
}
