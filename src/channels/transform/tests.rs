//! Wire payloads, channel by channel.

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
        sender_type: "user",
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

#[test]
fn the_media_link_is_rewritten_in_each_channels_field() {
    let url = "https://bucket.example/org/1/x.jpg?X-Amz-Signature=abc";
    let cases = [
        (Channel::Sms, "/media_urls/0"),
        (Channel::Whatsapp, "/image/link"),
        (Channel::Messenger, "/message/attachment/payload/url"),
        (Channel::Instagram, "/message/attachment/payload/url"),
        (Channel::Webchat, "/message/media/url"),
        (Channel::Playground, "/message/media/url"),
    ];
    for (channel, pointer) in cases {
        let mut payload = to_wire(&media(channel, MessageType::Image, IMAGE, Some("hi"))).unwrap();
        assert_eq!(
            payload.pointer(pointer),
            Some(&json!(IMAGE.url)),
            "{channel}: {payload}"
        );
        let before = payload.clone();
        assert!(with_media_url(channel, &mut payload, url), "{channel}");
        assert_eq!(payload.pointer(pointer), Some(&json!(url)), "{channel}");
        // Nothing else changes.
        let mut back = payload.clone();
        *back.pointer_mut(pointer).unwrap() = json!(IMAGE.url);
        assert_eq!(back, before, "{channel}");
    }
    let mut document = to_wire(&media(
        Channel::Whatsapp,
        MessageType::Document,
        DOCUMENT,
        None,
    ))
    .unwrap();
    assert!(with_media_url(Channel::Whatsapp, &mut document, url));
    assert_eq!(document["document"]["link"], url);
    assert_eq!(document["document"]["filename"], "invoice.pdf");
    let mut plain = to_wire(&text(Channel::Sms, "no media")).unwrap();
    assert!(!with_media_url(Channel::Sms, &mut plain, url));
    assert!(plain.get("media_urls").is_none());
}
