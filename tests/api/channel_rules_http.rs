//! Every channel's sending rules through HTTP, with the cases generated from the
//! rule tables (`inbox_gateway::channels::rules`): text limits at the edge and one
//! past (Instagram in bytes), every allowed MIME type at the size limit, one byte
//! past it, a refused MIME type, the 24-hour window (23 h open, 25 h and
//! never-written closed; notes and templates exempt), templates only on WhatsApp,
//! and the `HUMAN_AGENT` tag (7 days) on Messenger and Instagram. A broken rule is
//! a 422 whose `data` names the rule, the limit and the actual value, and stores
//! nothing.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use inbox_gateway::channels::rules::{MIME_ALIASES, MediaRule, NOTE_TEXT_LIMIT, TextUnit};
use inbox_gateway::channels::{Channel, MessageType};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The types of a list, as wire names.
fn names(types: &[MessageType]) -> Value {
    json!(types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
}

/// A media message body for `message_type` with a file of `mime` and `size` bytes.
fn media(message_type: MessageType, mime: &str, size: u64) -> Value {
    json!({
        "message_type": message_type.as_str(),
        "s3_key": "org/1/conversations/1/u1/file.bin",
        "s3_path": "s3://files/org/1/conversations/1/u1/file.bin",
        "file_name": "file.bin",
        "file_type": mime,
        "file_size": size,
    })
}

fn text(body: &str) -> Value {
    json!({"message_type": "text", "message_text": body})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// A MIME type of the same kind that `rule` does not take.
fn refused_mime(rule: &MediaRule) -> &'static str {
    let candidates: &[&'static str] = match rule.message_type {
        MessageType::Image => &["image/webp", "image/gif", "image/bmp"],
        MessageType::Video => &["video/3gpp", "video/webm", "video/x-flv"],
        MessageType::Audio => &["audio/ogg", "audio/wav", "audio/flac"],
        _ => &["text/csv", "application/zip"],
    };
    candidates
        .iter()
        .copied()
        .find(|m| !rule.allows_mime(m))
        .expect("a refused type")
}

/// One conversation of one channel, and the messages sent to it so far.
struct Target<'a> {
    app: &'a TestApp,
    channel: Channel,
    contact: i64,
    conversation: i64,
    accepted: i64,
}

impl<'a> Target<'a> {
    async fn new(app: &'a TestApp, channel: Channel) -> Self {
        let (contact, conversation) = channel_conversation(app, &app.org, channel.as_str()).await;
        Target {
            app,
            channel,
            contact,
            conversation,
            accepted: 0,
        }
    }

    fn path(&self) -> String {
        match self.channel {
            Channel::Sms | Channel::Playground => {
                format!("/conversation-messages-{}", self.channel)
            }
            _ => format!("/conversation-messages-transform-outgoing-{}", self.channel),
        }
    }

    async fn set_last_inbound(&self, at: Option<DateTime<Utc>>) {
        set_conversation_time(self.app, self.conversation, "last_inbound_at", at).await;
    }

    async fn send(&self, mut body: Value) -> (StatusCode, Value) {
        body["conversation_id"] = json!(self.conversation);
        // Files live under their own conversation's prefix.
        let prefix = format!(
            "org/{}/conversations/{}/",
            self.app.org.org_id, self.conversation
        );
        for field in ["s3_key", "s3_path"] {
            if let Some(location) = body[field].as_str() {
                body[field] = json!(location.replace("org/1/conversations/1/", &prefix));
            }
        }
        if self.channel == Channel::Playground {
            body["contact_id"] = json!(self.contact);
            body["sender_type"] = json!("user");
        }
        self.app.post(&self.path(), body).await
    }

    /// Asserts the message is stored (201); answers it.
    async fn accepted(&mut self, body: Value, case: &str) -> Value {
        let (status, message) = self.send(body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{} {case}: {message}",
            self.channel
        );
        assert_eq!(message["conversation_id"], self.conversation);
        self.accepted += 1;
        message
    }

    /// Asserts a 422 for `rule` on this channel; answers its `data`.
    async fn refused(&self, body: Value, rule: &str, case: &str) -> Value {
        let (status, answer) = self.send(body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{} {case}: {answer}",
            self.channel
        );
        assert_error(status, &answer, 422, "Unprocessable");
        let data = &answer["data"];
        assert_eq!(data["rule"], rule, "{} {case}: {answer}", self.channel);
        assert_eq!(data["channel"], self.channel.as_str(), "{case}");
        data.clone()
    }

    /// Nothing was stored but what was accepted.
    async fn assert_stored(&self) {
        assert_eq!(
            stored_messages(self.app, self.conversation).await,
            self.accepted,
            "{}: refused messages must not be stored",
            self.channel
        );
    }
}

/// Text, notes, media and message types, generated from the channel's table.
async fn content_rules(app: &TestApp, channel: Channel) {
    let rules = channel.rules();
    let mut t = Target::new(app, channel).await;
    if rules.window.is_some() {
        t.set_last_inbound(Some(Utc::now() - Duration::hours(1)))
            .await;
    }

    // Text: at the limit, and one past it.
    let limit = rules.text_limit.expect("every channel limits text");
    let max = limit.max;
    match limit.unit {
        TextUnit::Chars => {
            // Characters, not bytes: two-byte characters up to the limit pass.
            let at_limit = "é".repeat(max);
            let message = t.accepted(text(&at_limit), "text at the limit").await;
            assert_eq!(message["text"], at_limit);
            let data = t
                .refused(
                    text(&"é".repeat(max + 1)),
                    "text_length",
                    "text past the limit",
                )
                .await;
            assert_eq!(data["unit"], "chars");
            assert_eq!(data["limit"], max);
            assert_eq!(data["actual"], max + 1);
            assert_eq!(data["message_type"], "text");
        }
        TextUnit::Bytes => {
            t.accepted(text(&"a".repeat(max)), "ASCII text at the byte limit")
                .await;
            t.accepted(
                text(&"é".repeat(max / 2)),
                "two-byte text at the byte limit",
            )
            .await;
            // Fewer characters than the limit, more bytes.
            let over = "é".repeat(max / 2 + 1);
            assert!(over.chars().count() < max && over.len() > max);
            let data = t
                .refused(text(&over), "text_length", "text past the byte limit")
                .await;
            assert_eq!(data["unit"], "bytes");
            assert_eq!(data["limit"], max);
            assert_eq!(data["actual"], over.len());
            let data = t
                .refused(
                    text(&"a".repeat(max + 1)),
                    "text_length",
                    "ASCII past the limit",
                )
                .await;
            assert_eq!(data["actual"], max + 1);
        }
    }
    t.refused(text("   "), "text_required", "blank text").await;
    t.refused(json!({}), "text_required", "no text at all")
        .await;

    // Notes: the same limit on every channel, no attachment.
    let note = |body: String| json!({"message_type": "note", "message_text": body});
    t.accepted(note("n".repeat(NOTE_TEXT_LIMIT.max)), "note at its limit")
        .await;
    let data = t
        .refused(
            note("n".repeat(NOTE_TEXT_LIMIT.max + 1)),
            "text_length",
            "note past its limit",
        )
        .await;
    assert_eq!(data["message_type"], "note");
    assert_eq!(data["limit"], NOTE_TEXT_LIMIT.max);
    assert_eq!(data["actual"], NOTE_TEXT_LIMIT.max + 1);
    t.refused(
        with(
            media(MessageType::Note, "image/png", 10),
            "message_text",
            json!("x"),
        ),
        "media_not_allowed",
        "note with a file",
    )
    .await;

    // Media: every allowed type at the size limit; one byte more; a refused type.
    for rule in rules.media {
        let kind = rule.message_type;
        for mime in rule.mime_types {
            let message = t
                .accepted(
                    media(kind, mime, rule.max_bytes),
                    &format!("{kind} {mime} at {} bytes", rule.max_bytes),
                )
                .await;
            assert_eq!(message["message_type"], kind.as_str());
            assert_eq!(message["media"]["file_type"], *mime);
            assert_eq!(message["media"]["file_size"], rule.max_bytes);
        }
        let data = t
            .refused(
                media(kind, rule.mime_types[0], rule.max_bytes + 1),
                "media_size",
                &format!("{kind} one byte too large"),
            )
            .await;
        assert_eq!(data["message_type"], kind.as_str());
        assert_eq!(data["limit"], rule.max_bytes);
        assert_eq!(data["actual"], rule.max_bytes + 1);

        let wrong = refused_mime(rule);
        let data = t
            .refused(
                media(kind, wrong, 1_000),
                "media_type",
                &format!("{kind} as {wrong}"),
            )
            .await;
        assert_eq!(data["message_type"], kind.as_str());
        assert_eq!(data["allowed"], json!(rule.mime_types));
        assert_eq!(data["actual"], wrong);

        t.refused(
            json!({"message_type": kind.as_str(), "message_text": "where is the file?"}),
            "media_required",
            &format!("{kind} without a file"),
        )
        .await;
        let data = t
            .refused(
                with(
                    media(kind, rule.mime_types[0], 1_000),
                    "message_text",
                    json!("c".repeat(max + 1)),
                ),
                "text_length",
                &format!("{kind} caption past the limit"),
            )
            .await;
        assert_eq!(data["message_type"], kind.as_str());
        assert_eq!(data["limit"], max);

        // Aliases and parameters name the same type.
        for (alias, canonical) in MIME_ALIASES {
            if rule.mime_types.contains(canonical) {
                t.accepted(
                    media(kind, alias, 1_000),
                    &format!("{kind} as alias {alias}"),
                )
                .await;
            }
        }
        let upper = format!("{}; name=x", rule.mime_types[0].to_uppercase());
        t.accepted(media(kind, &upper, 1_000), &format!("{kind} as {upper}"))
            .await;
    }
    for kind in [
        MessageType::Image,
        MessageType::Video,
        MessageType::Audio,
        MessageType::Document,
    ] {
        if rules.media_rule(kind).is_none() {
            let data = t
                .refused(
                    media(kind, "application/pdf", 1_000),
                    "message_type_not_sendable",
                    &format!("{kind} on a channel without it"),
                )
                .await;
            assert_eq!(data["message_type"], kind.as_str());
            assert_eq!(
                data["sendable_message_types"],
                names(&rules.sendable_types())
            );
        }
    }
    t.refused(
        with(
            media(MessageType::Text, "image/png", 10),
            "message_text",
            json!("hi"),
        ),
        "media_not_allowed",
        "text with a file",
    )
    .await;
    for kind in ["location", "reaction", "activity"] {
        t.refused(
            json!({"message_type": kind, "message_text": "x"}),
            "message_type_not_sendable",
            kind,
        )
        .await;
    }

    // Templates exist on WhatsApp only.
    if !rules.templates {
        let data = t
            .refused(
                json!({"message_type": "template"}),
                "templates_unsupported",
                "template",
            )
            .await;
        assert_eq!(data["supported_channels"], json!(["whatsapp"]));
    }

    // Without a window, a contact who never wrote (or wrote long ago) can be written to.
    if rules.window.is_none() {
        t.set_last_inbound(None).await;
        t.accepted(text("never wrote"), "no inbound message").await;
        t.set_last_inbound(Some(Utc::now() - Duration::days(30)))
            .await;
        t.accepted(text("wrote a month ago"), "old inbound message")
            .await;
    }
    t.assert_stored().await;
}

/// The customer-service window, templates and the `HUMAN_AGENT` tag.
async fn window_rules(app: &TestApp, channel: Channel) {
    let rules = channel.rules();
    let window = rules.window.expect("a channel with a window");
    let allowed_outside = names(&rules.allowed_outside_window());
    let mut t = Target::new(app, channel).await;
    let template = json!({
        "message_type": "template",
        "messageData": {"whatsapp_template_id": "42", "name": "follow_up", "language": "en",
                        "components": []},
    });
    let image = media(MessageType::Image, "image/jpeg", 1_000);

    // Never written: closed.
    let data = t
        .refused(text("hi"), "customer_service_window", "never written")
        .await;
    assert_eq!(data["last_inbound_at"], Value::Null);
    assert_eq!(data["window_hours"], window.hours);
    assert_eq!(data["allowed_message_types"], allowed_outside);
    t.accepted(
        json!({"message_type": "note", "message_text": "call them"}),
        "note, never written",
    )
    .await;
    if rules.templates {
        t.accepted(template.clone(), "template, never written")
            .await;
    }

    // 23 hours ago: open.
    t.set_last_inbound(Some(Utc::now() - Duration::hours(23)))
        .await;
    t.accepted(text("inside the window"), "text at 23 h").await;
    t.accepted(image.clone(), "image at 23 h").await;

    // 25 hours ago: closed for text and media, open for notes and templates.
    let wrote = Utc::now() - Duration::hours(25);
    t.set_last_inbound(Some(wrote)).await;
    for (body, case) in [
        (text("too late"), "text at 25 h"),
        (image.clone(), "image at 25 h"),
    ] {
        let data = t.refused(body, "customer_service_window", case).await;
        assert_eq!(data["last_inbound_at"], api_time(wrote), "{case}");
        assert_eq!(data["window_hours"], window.hours);
        assert_eq!(data["allowed_message_types"], allowed_outside);
    }
    t.accepted(
        json!({"message_type": "note", "message_text": "they went quiet"}),
        "note at 25 h",
    )
    .await;
    if rules.templates {
        let message = t.accepted(template.clone(), "template at 25 h").await;
        assert_eq!(message["payload"]["type"], "template");
    } else {
        let data = t
            .refused(template.clone(), "templates_unsupported", "template")
            .await;
        assert_eq!(data["supported_channels"], json!(["whatsapp"]));
    }

    match window.human_agent {
        Some(agent) => {
            let hours = i64::from(agent.hours);
            assert_eq!(agent.tag, "HUMAN_AGENT");
            assert_eq!(hours, 7 * 24);
            let tagged = |body: Value| with(body, "human_agent", json!(true));
            let data = t
                .refused(
                    text("too late"),
                    "customer_service_window",
                    "untagged at 25 h",
                )
                .await;
            assert_eq!(
                data["human_agent"],
                json!({"tag": "HUMAN_AGENT", "window_hours": hours, "requested": false})
            );
            let message = t
                .accepted(tagged(text("a human here")), "tagged at 25 h")
                .await;
            assert_eq!(message["payload"]["messaging_type"], "MESSAGE_TAG");
            assert_eq!(message["payload"]["tag"], "HUMAN_AGENT");
            t.set_last_inbound(Some(Utc::now() - Duration::hours(hours - 1)))
                .await;
            t.accepted(
                tagged(text("still within 7 days")),
                "tagged at 7 days - 1 h",
            )
            .await;
            t.accepted(tagged(image.clone()), "tagged image at 7 days - 1 h")
                .await;
            let wrote = Utc::now() - Duration::hours(hours + 1);
            t.set_last_inbound(Some(wrote)).await;
            let data = t
                .refused(
                    tagged(text("a week later")),
                    "customer_service_window",
                    "tagged at 7 days + 1 h",
                )
                .await;
            assert_eq!(data["window_hours"], hours);
            assert_eq!(data["last_inbound_at"], api_time(wrote));
            assert_eq!(
                data["human_agent"],
                json!({"tag": "HUMAN_AGENT", "window_hours": hours, "requested": true})
            );
            t.set_last_inbound(None).await;
            t.refused(
                tagged(text("hello?")),
                "customer_service_window",
                "tagged, never written",
            )
            .await;
            // Inside the standard window the tag is allowed too, and carried.
            t.set_last_inbound(Some(Utc::now() - Duration::hours(1)))
                .await;
            let message = t.accepted(tagged(text("tagged")), "tagged at 1 h").await;
            assert_eq!(message["payload"]["tag"], "HUMAN_AGENT");
            let message = t.accepted(text("untagged"), "untagged at 1 h").await;
            assert_eq!(message["payload"]["messaging_type"], "RESPONSE");
            assert!(message["payload"].get("tag").is_none());
        }
        None => {
            t.set_last_inbound(Some(Utc::now() - Duration::hours(1)))
                .await;
            let data = t
                .refused(
                    with(text("hi"), "human_agent", json!(true)),
                    "human_agent_unsupported",
                    "tag on a channel without it",
                )
                .await;
            assert_eq!(
                data["supported_channels"],
                json!(["instagram", "messenger"])
            );
        }
    }
    t.assert_stored().await;
}

#[actix_web::test]
async fn whatsapp_content_rules() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Whatsapp).await;
}

#[actix_web::test]
async fn whatsapp_window_and_templates() {
    let app = spawn_app().await;
    window_rules(&app, Channel::Whatsapp).await;
}

#[actix_web::test]
async fn instagram_content_rules_count_bytes() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Instagram).await;
}

#[actix_web::test]
async fn instagram_window_and_human_agent() {
    let app = spawn_app().await;
    window_rules(&app, Channel::Instagram).await;
}

#[actix_web::test]
async fn messenger_content_rules() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Messenger).await;
}

#[actix_web::test]
async fn messenger_window_and_human_agent() {
    let app = spawn_app().await;
    window_rules(&app, Channel::Messenger).await;
}

#[actix_web::test]
async fn webchat_rules_and_no_window() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Webchat).await;
    let t = Target::new(&app, Channel::Webchat).await;
    for body in [
        with(text("hi"), "human_agent", json!(true)),
        json!({"message_type": "template", "messageData": {"name": "x", "language": "en", "components": []}}),
    ] {
        let (status, answer) = t.send(body).await;
        assert_error(status, &answer, 422, "Unprocessable");
    }
    t.assert_stored().await;
}

#[actix_web::test]
async fn sms_rules_and_no_window() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Sms).await;
    // Template data and the Messenger tag are not SMS fields.
    let t = Target::new(&app, Channel::Sms).await;
    for body in [
        with(text("hi"), "human_agent", json!(true)),
        json!({"message_type": "template", "messageData": {"name": "x", "language": "en", "components": []}}),
    ] {
        let (status, answer) = t.send(body).await;
        assert_error(status, &answer, 400, "BadRequest");
    }
    t.assert_stored().await;
}

#[actix_web::test]
async fn playground_rules_and_no_window() {
    let app = spawn_app().await;
    content_rules(&app, Channel::Playground).await;
    // What the contact "sends" in the playground follows the same table.
    let t = Target::new(&app, Channel::Playground).await;
    let limit = Channel::Playground.rules().text_limit.unwrap().max;
    let path = "/conversation-messages-playground";
    let (status, answer) = app
        .post(
            path,
            json!({"contact_id": t.contact, "sender_type": "contact", "message_text": "x".repeat(limit + 1)}),
        )
        .await;
    assert_error(status, &answer, 422, "Unprocessable");
    assert_eq!(answer["data"]["rule"], "text_length");
    assert_eq!(answer["data"]["actual"], limit + 1);
    let mut body = media(MessageType::Image, "image/bmp", 1_000);
    let key = format!(
        "org/{}/conversations/{}/u1/file.bin",
        app.org.org_id, t.conversation
    );
    body["s3_path"] = json!(format!("s3://files/{key}"));
    body["s3_key"] = json!(key);
    body["contact_id"] = json!(t.contact);
    body["sender_type"] = json!("contact");
    let (status, answer) = app.post(path, body).await;
    assert_error(status, &answer, 422, "Unprocessable");
    assert_eq!(answer["data"]["rule"], "media_type");
    // The media of a message is a file of its own conversation, never another's.
    let (status, answer) = app
        .post(
            path,
            json!({"contact_id": t.contact, "sender_type": "contact", "message_type": "image",
                   "file_type": "image/png", "file_size": 10, "s3_key": "org/1/conversations/999/u1/a.png"}),
        )
        .await;
    assert_error(status, &answer, 403, "Forbidden");
    t.assert_stored().await;
}
