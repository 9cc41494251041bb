//! `/conversation-messages-{channel}` (find, get, soft remove on every channel),
//! `/conversation-messages-transform-outgoing-{channel}` (send, notes, preview,
//! media, templates), `/conversation-messages-sms`, `/conversation-messages-playground`,
//! and the tenant isolation of all of them.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CHANNELS: [&str; 6] = [
    "whatsapp",
    "instagram",
    "messenger",
    "webchat",
    "sms",
    "playground",
];
const SEND_CHANNELS: [&str; 4] = ["whatsapp", "instagram", "messenger", "webchat"];
use inbox_gateway::channels::transform::SEND_STYLES;

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn send_path(channel: &str) -> String {
    format!("/conversation-messages-transform-outgoing-{channel}")
}

fn read_path(channel: &str) -> String {
    format!("/conversation-messages-{channel}")
}

/// A conversation of the first organization on `channel`, with the contact's
/// window opened an hour ago; answers (contact id, conversation id).
async fn open_conversation(app: &TestApp, channel: &str) -> (i64, i64) {
    let (contact, conversation) = channel_conversation(app, &app.org, channel).await;
    let hour_ago = Utc::now() - Duration::hours(1);
    set_conversation_time(app, conversation, "last_inbound_at", Some(hour_ago)).await;
    (contact, conversation)
}

/// Asserts a 422 naming `rule`; answers its `data`.
fn assert_rule(status: StatusCode, body: &Value, rule: &str) -> Value {
    assert_error(status, body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], rule, "{body}");
    body["data"].clone()
}

#[actix_web::test]
async fn every_channel_path_finds_gets_and_soft_removes_only_its_own_messages() {
    let app = spawn_app().await;
    let org = app.org.org_id;
    let mut seeded = Vec::new();
    for channel in CHANNELS {
        let (contact, conversation) = channel_conversation(&app, &app.org, channel).await;
        let hello = insert_message(&app, org, conversation, channel, |d| {
            d.text = Some(format!("hello on {channel}"));
            d.sender_id = Some(contact);
            d.created_at = base_time();
        })
        .await;
        let reply = insert_message(&app, org, conversation, channel, |d| {
            d.direction = "outbound";
            d.sender_type = "user";
            d.sender_id = Some(app.org.user_id);
            d.text = Some(format!("reply on {channel}"));
            d.delivery_status = Some("sent");
            d.created_at = base_time() + Duration::minutes(1);
        })
        .await;
        seeded.push((channel, conversation, hello, reply));
    }

    for &(channel, conversation, hello, reply) in &seeded {
        let path = read_path(channel);
        let (status, body) = app.get(&path).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(
            body["errors"]["conversation_id"].is_array(),
            "{channel}: {body}"
        );

        let page = get_ok(&app, &format!("{path}?conversation_id={conversation}")).await;
        assert_eq!(page["total"], 2, "{channel}: {page}");
        assert_eq!(ids(&page), vec![reply, hello], "{channel}: newest first");
        let first = &records(&page)[0];
        assert_eq!(first["channel"], channel);
        assert_eq!(first["conversation_id"], conversation);
        assert_eq!(first["direction"], "outbound");
        assert_eq!(first["sender_type"], "user");
        assert_eq!(first["delivery_status"], "sent");
        assert_eq!(first["text"], format!("reply on {channel}"));
        assert_eq!(
            first["created_at"],
            api_time(base_time() + Duration::minutes(1))
        );

        let got = get_ok(&app, &format!("{path}/{hello}")).await;
        assert_eq!(id_of(&got), hello);
        assert_eq!(got["direction"], "inbound");
        assert_eq!(got["sender_type"], "contact");
        assert_eq!(got["delivery_status"], "received");
        assert_eq!(got["text"], format!("hello on {channel}"));

        // Through the path of any other channel the message does not exist.
        for &(other, other_conversation, _, _) in &seeded {
            if other == channel {
                continue;
            }
            let (status, body) = app.get(&format!("{}/{hello}", read_path(other))).await;
            assert_error(status, &body, 404, "NotFound");
            let page = get_ok(
                &app,
                &format!("{}?conversation_id={conversation}", read_path(other)),
            )
            .await;
            assert_eq!(page["total"], 0, "{channel} seen through {other}: {page}");
            assert_eq!(page["data"], json!([]));
            let (status, body) = app.delete(&format!("{}/{hello}", read_path(other))).await;
            assert_error(status, &body, 404, "NotFound");
            assert_ne!(other_conversation, conversation);
        }

        // Remove answers the record, then it is gone from find and get; the row stays.
        let (status, removed) = app.delete(&format!("{path}/{hello}")).await;
        assert_eq!(status, StatusCode::OK, "{channel}: {removed}");
        assert_eq!(id_of(&removed), hello);
        assert_eq!(removed["text"], format!("hello on {channel}"));
        assert_eq!(removed["conversation_id"], conversation);
        let (status, body) = app.get(&format!("{path}/{hello}")).await;
        assert_error(status, &body, 404, "NotFound");
        let page = get_ok(&app, &format!("{path}?conversation_id={conversation}")).await;
        assert_eq!(ids(&page), vec![reply], "{channel}");
        assert_eq!(page["total"], 1);
        let (status, body) = app.delete(&format!("{path}/{hello}")).await;
        assert_error(status, &body, 404, "NotFound");
        assert_eq!(stored_messages(&app, conversation).await, 2, "soft delete");
    }

    // Ids that do not parse or do not exist are 404.
    for bad in ["abc", "999999", "1.5"] {
        let (status, body) = app.get(&format!("/conversation-messages-sms/{bad}")).await;
        assert_error(status, &body, 404, "NotFound");
    }
    // The read paths of the four Meta/web channels do not create.
    for channel in SEND_CHANNELS {
        let (status, body) = app
            .post(
                &read_path(channel),
                json!({"conversation_id": seeded[0].1, "message_text": "hi"}),
            )
            .await;
        assert_error(status, &body, 405, "MethodNotAllowed");
    }
}

#[actix_web::test]
async fn find_filters_by_type_direction_sender_status_and_time() {
    let app = spawn_app().await;
    let org = app.org.org_id;
    let (contact, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (_, other_conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let t = |minutes: i64| base_time() + Duration::minutes(minutes);
    let inbound_text = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.sender_id = Some(contact);
        d.created_at = t(0);
    })
    .await;
    let reaction = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.message_type = "reaction".into();
        d.text = Some("👍".into());
        d.created_at = t(1);
    })
    .await;
    let reply = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.direction = "outbound";
        d.sender_type = "user";
        d.sender_id = Some(app.org.user_id);
        d.delivery_status = Some("read");
        d.created_at = t(2);
    })
    .await;
    let note = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.direction = "outbound";
        d.sender_type = "user";
        d.message_type = "note".into();
        d.delivery_status = None;
        d.created_at = t(3);
    })
    .await;
    let ai_image = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.direction = "outbound";
        d.sender_type = "ai";
        d.message_type = "image".into();
        d.text = None;
        d.media = Some(json!({"s3_key": "k", "file_type": "image/png", "file_size": 10}));
        d.delivery_status = Some("failed");
        d.created_at = t(4);
    })
    .await;
    let inbound_late = insert_message(&app, org, conversation, "whatsapp", |d| {
        d.created_at = t(60);
    })
    .await;
    // Another conversation's message never shows up.
    insert_message(&app, org, other_conversation, "whatsapp", |d| {
        d.created_at = t(2);
    })
    .await;

    let base = format!("/conversation-messages-whatsapp?conversation_id={conversation}");
    let cases: Vec<(String, Vec<i64>)> = vec![
        (
            String::new(),
            vec![inbound_late, ai_image, note, reply, reaction, inbound_text],
        ),
        (
            "message_type[$ne]=reaction".into(),
            vec![inbound_late, ai_image, note, reply, inbound_text],
        ),
        ("message_type=note".into(), vec![note]),
        (
            "message_type[$in][]=image&message_type[$in][]=reaction".into(),
            vec![ai_image, reaction],
        ),
        (
            "direction=inbound".into(),
            vec![inbound_late, reaction, inbound_text],
        ),
        ("direction=outbound".into(), vec![ai_image, note, reply]),
        ("sender_type=ai".into(), vec![ai_image]),
        ("sender_type=user".into(), vec![note, reply]),
        (
            "sender_type=contact&message_type[$ne]=reaction".into(),
            vec![inbound_late, inbound_text],
        ),
        ("delivery_status=failed".into(), vec![ai_image]),
        ("delivery_status=read".into(), vec![reply]),
        (
            "delivery_status=received".into(),
            vec![inbound_late, reaction, inbound_text],
        ),
        (
            format!(
                "created_at[$gte]={}&created_at[$lt]={}",
                api_time(t(1)),
                api_time(t(4))
            ),
            vec![note, reply, reaction],
        ),
        (
            format!("created_at[$gt]={}", api_time(t(4))),
            vec![inbound_late],
        ),
        (
            format!("created_at[$lte]={}", api_time(t(0))),
            vec![inbound_text],
        ),
        (
            format!(
                "direction=outbound&message_type[$ne]=note&created_at[$gte]={}",
                api_time(t(2))
            ),
            vec![ai_image, reply],
        ),
    ];
    for (filter, expected) in cases {
        let page = get_ok(&app, &format!("{base}&{filter}")).await;
        assert_eq!(ids(&page), expected, "filter {filter:?}: {page}");
        assert_eq!(page["total"], expected.len() as i64, "filter {filter:?}");
    }

    for bad in [
        "direction=sideways",
        "message_type=sticker",
        "created_at[$gte]=yesterday",
        "no_such_field=1",
    ] {
        let (status, body) = app.get(&format!("{base}&{bad}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn newest_first_with_id_tie_breaker_and_limit_at_most_fifty() {
    let app = spawn_app().await;
    let org = app.org.org_id;
    let (_, conversation) = channel_conversation(&app, &app.org, "sms").await;
    // 55 messages, created in pairs that share a timestamp.
    let mut created = Vec::new();
    for i in 0..55 {
        let at = base_time() + Duration::seconds(i / 2);
        let id = insert_message(&app, org, conversation, "sms", |d| {
            d.text = Some(format!("message {i}"));
            d.created_at = at;
        })
        .await;
        created.push((at, id));
    }
    let mut newest_first = created.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    let newest_first: Vec<i64> = newest_first.into_iter().map(|(_, id)| id).collect();
    let oldest_first: Vec<i64> = newest_first.iter().rev().copied().collect();

    let base = format!("/conversation-messages-sms?conversation_id={conversation}");
    let page = get_ok(&app, &base).await;
    assert_eq!(page["limit"], 10);
    assert_eq!(page["total"], 55);
    assert_eq!(ids(&page), newest_first[..10]);

    let page = get_ok(&app, &format!("{base}&$sort[created_at]=-1&$limit=5")).await;
    assert_eq!(ids(&page), newest_first[..5]);
    let page = get_ok(&app, &format!("{base}&$sort[created_at]=1&$limit=5")).await;
    assert_eq!(ids(&page), oldest_first[..5]);

    let page = get_ok(&app, &format!("{base}&$limit=60")).await;
    assert_eq!(page["limit"], 50);
    assert_eq!(records(&page).len(), 50);
    assert_eq!(page["total"], 55);

    // $skip pages cover every message once, in order.
    let mut paged = Vec::new();
    for skip in [0, 20, 40] {
        let page = get_ok(
            &app,
            &format!("{base}&$sort[created_at]=-1&$limit=20&$skip={skip}"),
        )
        .await;
        paged.extend(ids(&page));
    }
    assert_eq!(paged, newest_first);
}

#[actix_web::test]
async fn remove_fixes_the_preview_when_the_last_message_goes() {
    let app = spawn_app().await;
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let mut sent = Vec::new();
    for text in ["first", "second", "third"] {
        let message = app
            .create(
                &send_path("webchat"),
                json!({"conversation_id": conversation, "message_text": text}),
            )
            .await;
        sent.push(id_of(&message));
    }
    let note = app
        .create(
            &send_path("webchat"),
            json!({"conversation_id": conversation, "message_text": "internal", "message_type": "note"}),
        )
        .await;
    let preview = |c: &Value| c["last_message_preview"].clone();
    assert_eq!(
        preview(&conversation_record(&app, conversation).await),
        "third"
    );

    // Removing a note or an older message leaves the preview alone.
    let (status, _) = app
        .delete(&format!("/conversation-messages-webchat/{}", id_of(&note)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        preview(&conversation_record(&app, conversation).await),
        "third"
    );
    let (status, removed) = app
        .delete(&format!("/conversation-messages-webchat/{}", sent[1]))
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["text"], "second");
    assert_eq!(
        preview(&conversation_record(&app, conversation).await),
        "third"
    );

    // Removing the last one shows the newest remaining one.
    let (status, removed) = app
        .delete(&format!("/conversation-messages-webchat/{}", sent[2]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(removed["text"], "third");
    assert_eq!(
        preview(&conversation_record(&app, conversation).await),
        "first"
    );

    // And when nothing is left, there is no preview.
    let (status, _) = app
        .delete(&format!("/conversation-messages-webchat/{}", sent[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        preview(&conversation_record(&app, conversation).await),
        Value::Null
    );
    let page = get_ok(
        &app,
        &format!("/conversation-messages-webchat?conversation_id={conversation}"),
    )
    .await;
    assert_eq!(page["total"], 0);
}

#[actix_web::test]
async fn only_an_admin_or_the_sender_removes_a_message() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let other_agent = app.new_user(&app.org, "agent").await;
    let (contact, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let (status, by_agent) = app
        .call_as(
            &agent,
            Method::POST,
            &send_path("webchat"),
            Some(json!({"conversation_id": conversation, "message_text": "from the agent"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_agent}");
    assert_eq!(by_agent["sender_id"], agent.user_id);
    let inbound = insert_message(&app, app.org.org_id, conversation, "webchat", |d| {
        d.sender_id = Some(contact);
    })
    .await;
    let path = |id: i64| format!("/conversation-messages-webchat/{id}");

    let (status, body) = app
        .call_as(&other_agent, Method::DELETE, &path(id_of(&by_agent)), None)
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .call_as(&agent, Method::DELETE, &path(inbound), None)
        .await;
    assert_error(status, &body, 403, "Forbidden");
    // Both are still there.
    get_ok(&app, &path(id_of(&by_agent))).await;
    get_ok(&app, &path(inbound)).await;

    let (status, body) = app
        .call_as(&agent, Method::DELETE, &path(id_of(&by_agent)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.delete(&path(inbound)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = get_ok(
        &app,
        &format!("/conversation-messages-webchat?conversation_id={conversation}"),
    )
    .await;
    assert_eq!(page["total"], 0);
}

#[actix_web::test]
async fn sending_stores_a_queued_message_with_the_wire_payload_and_updates_the_conversation() {
    let app = spawn_app().await;
    for channel in SEND_CHANNELS {
        let (_, conversation) = open_conversation(&app, channel).await;
        let last_inbound = conversation_record(&app, conversation).await["last_inbound_at"].clone();
        let waiting = Utc::now() - Duration::minutes(50);
        set_conversation_time(&app, conversation, "waiting_since", Some(waiting)).await;
        patch_ok(
            &app,
            &format!("/conversations/{conversation}"),
            json!({"unread_count": 3}),
        )
        .await;

        let text = format!("Hello from {channel}");
        let (status, message) = app
            .post(
                &send_path(channel),
                json!({"conversation_id": conversation, "message_text": text, "message_type": "text"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{channel}: {message}");
        let id = id_of(&message);
        assert_eq!(message["conversation_id"], conversation);
        assert_eq!(message["organization_id"], app.org.org_id);
        assert_eq!(message["channel"], channel);
        assert_eq!(message["direction"], "outbound");
        assert_eq!(message["message_type"], "text");
        assert_eq!(message["sender_type"], "user");
        assert_eq!(message["sender_id"], app.org.user_id);
        assert_eq!(message["text"], text);
        assert_eq!(message["delivery_status"], "queued");
        let expected_payload = match channel {
            "whatsapp" => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "15550001111",
                "type": "text",
                "text": {"preview_url": false, "body": text},
            }),
            "instagram" => json!({
                "recipient": {"id": "IG-17841"},
                "messaging_type": "RESPONSE",
                "message": {"text": text},
            }),
            "messenger" => json!({
                "recipient": {"id": "PSID-2718"},
                "messaging_type": "RESPONSE",
                "message": {"text": text},
            }),
            _ => json!({
                "type": "message",
                "conversation_id": conversation,
                "message": {"type": "text", "text": text, "media": null},
                "sender": {"type": "user", "id": app.org.user_id},
            }),
        };
        assert_eq!(message["payload"], expected_payload, "{channel}");

        // What was answered is what is stored.
        let stored = get_ok(&app, &format!("{}/{id}", read_path(channel))).await;
        assert_eq!(stored, message, "{channel}");

        let after = conversation_record(&app, conversation).await;
        assert_eq!(
            after["last_interaction_at"], message["created_at"],
            "{channel}"
        );
        assert_eq!(after["last_message_preview"], text);
        assert_eq!(after["waiting_since"], Value::Null);
        assert_eq!(after["unread_count"], 0);
        assert_eq!(
            after["last_inbound_at"], last_inbound,
            "a reply is not inbound"
        );
        assert_eq!(stored_messages(&app, conversation).await, 1);
    }
}

#[actix_web::test]
async fn a_note_is_stored_never_delivered_and_changes_nothing_even_outside_the_window() {
    let app = spawn_app().await;
    let paths = SEND_CHANNELS.iter().map(|c| (*c, send_path(c))).chain([
        ("sms", "/conversation-messages-sms".to_string()),
        (
            "playground",
            "/conversation-messages-playground".to_string(),
        ),
    ]);
    for (channel, path) in paths {
        // Never written to: the window (where there is one) is closed.
        let (contact, conversation) = channel_conversation(&app, &app.org, channel).await;
        let earlier = base_time();
        set_conversation_time(&app, conversation, "last_interaction_at", Some(earlier)).await;
        set_conversation_time(&app, conversation, "waiting_since", Some(earlier)).await;
        patch_ok(
            &app,
            &format!("/conversations/{conversation}"),
            json!({"unread_count": 2}),
        )
        .await;
        let before = conversation_record(&app, conversation).await;

        let mut body = json!({
            "conversation_id": conversation,
            "message_type": "note",
            "message_text": "Customer prefers email",
        });
        if channel == "playground" {
            body["contact_id"] = json!(contact);
        }
        let (status, note) = app.post(&path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{channel}: {note}");
        assert_eq!(note["message_type"], "note");
        assert_eq!(note["direction"], "outbound");
        assert_eq!(note["sender_type"], "user");
        assert_eq!(note["text"], "Customer prefers email");
        assert_eq!(
            note["payload"],
            Value::Null,
            "{channel}: a note is never delivered"
        );
        assert_eq!(note["delivery_status"], Value::Null, "{channel}");
        let stored = get_ok(&app, &format!("{}/{}", read_path(channel), id_of(&note))).await;
        assert_eq!(stored["payload"], Value::Null);

        let after = conversation_record(&app, conversation).await;
        for field in [
            "last_interaction_at",
            "last_message_preview",
            "waiting_since",
            "unread_count",
            "last_inbound_at",
            "status",
        ] {
            assert_eq!(after[field], before[field], "{channel}: {field} changed");
        }
        assert_eq!(after["unread_count"], 2);
        assert_eq!(after["waiting_since"], api_time(earlier));
    }
}

#[actix_web::test]
async fn preview_answers_the_message_it_would_store_and_writes_nothing() {
    let app = spawn_app().await;
    for channel in SEND_CHANNELS {
        let (_, conversation) = open_conversation(&app, channel).await;
        patch_ok(
            &app,
            &format!("/conversations/{conversation}"),
            json!({"unread_count": 4}),
        )
        .await;
        let before = conversation_record(&app, conversation).await;
        let body = json!({"conversation_id": conversation, "message_text": "Preview me"});

        let (status, preview) = app
            .post(
                &format!("{}?$preview=true", send_path(channel)),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{channel}: {preview}");
        assert_eq!(preview["id"], Value::Null);
        assert_eq!(preview["direction"], "outbound");
        assert_eq!(preview["sender_type"], "user");
        assert_eq!(preview["delivery_status"], "queued");
        assert_eq!(preview["text"], "Preview me");
        assert!(preview["payload"].is_object(), "{channel}: {preview}");
        assert_eq!(stored_messages(&app, conversation).await, 0, "{channel}");
        assert_eq!(conversation_record(&app, conversation).await, before);

        // A rule broken in a preview is the same 422.
        let (status, body_422) = app
            .post(
                &format!("{}?$preview=true", send_path(channel)),
                json!({"conversation_id": conversation, "message_text": " "}),
            )
            .await;
        assert_rule(status, &body_422, "text_required");

        // The real send stores the same payload.
        let (status, sent) = app
            .post(&format!("{}?$preview=false", send_path(channel)), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        assert_eq!(sent["payload"], preview["payload"], "{channel}");
        assert_eq!(stored_messages(&app, conversation).await, 1);
    }
    let (_, conversation) = open_conversation(&app, "whatsapp").await;
    for query in ["$preview=maybe", "$preview=true&foo=1"] {
        let (status, body) = app
            .post(
                &format!("{}?{query}", send_path("whatsapp")),
                json!({"conversation_id": conversation, "message_text": "x"}),
            )
            .await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(stored_messages(&app, conversation).await, 0);
}

#[actix_web::test]
async fn sending_refuses_other_channels_other_organizations_and_malformed_bodies() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let mut by_channel = std::collections::HashMap::new();
    for channel in CHANNELS {
        by_channel.insert(channel, open_conversation(&app, channel).await.1);
    }
    let (_, foreign) = channel_conversation(&app, &other, "whatsapp").await;

    // A conversation of another channel: 400.
    for channel in SEND_CHANNELS {
        for (other_channel, conversation) in &by_channel {
            if *other_channel == channel {
                continue;
            }
            let (status, body) = app
                .post(
                    &send_path(channel),
                    json!({"conversation_id": conversation, "message_text": "hi"}),
                )
                .await;
            assert_error(status, &body, 400, "BadRequest");
        }
    }
    let (status, body) = app
        .post(
            "/conversation-messages-sms",
            json!({"conversation_id": by_channel["whatsapp"], "message_text": "hi"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");

    // Another organization's conversation, or none: 404.
    for conversation in [foreign, 999_999] {
        let (status, body) = app
            .post(
                &send_path("whatsapp"),
                json!({"conversation_id": conversation, "message_text": "hi"}),
            )
            .await;
        assert_error(status, &body, 404, "NotFound");
        let (status, body) = app
            .post(
                "/conversation-messages-sms",
                json!({"conversation_id": conversation, "message_text": "hi"}),
            )
            .await;
        assert_error(status, &body, 404, "NotFound");
    }
    assert_eq!(stored_messages(&app, foreign).await, 0);

    // A removed conversation is gone for sending too.
    let (_, removed) = open_conversation(&app, "webchat").await;
    let (status, _) = app.delete(&format!("/conversations/{removed}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            &send_path("webchat"),
            json!({"conversation_id": removed, "message_text": "hi"}),
        )
        .await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(stored_messages(&app, removed).await, 0);

    let wa = by_channel["whatsapp"];
    // organization_id: the caller's is accepted, another is 403.
    let (status, body) = app
        .post(
            &send_path("whatsapp"),
            json!({"conversation_id": wa, "message_text": "hi", "organization_id": other.org_id}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .post(
            &send_path("whatsapp"),
            json!({"conversation_id": wa, "message_text": "hi", "organization_id": app.org.org_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    for bad in [
        json!({"message_text": "no conversation"}),
        json!({"conversation_id": "abc", "message_text": "hi"}),
        json!({"conversation_id": wa, "message_text": "hi", "colour": "red"}),
        json!({"conversation_id": wa, "message_text": "hi", "send_style": "slam"}),
        json!({"conversation_id": wa, "message_text": "hi", "contact_id": 1}),
        json!({"conversation_id": wa, "message_text": "hi", "message_type": "sticker"}),
        json!({"conversation_id": wa, "message_text": 42}),
        json!({"conversation_id": wa, "message_type": "template"}),
        json!({"conversation_id": wa, "variables": {"a": "b"}, "message_text": "hi"}),
        json!({"conversation_id": wa, "message_type": "image", "s3_key": "k", "file_size": 10}),
        json!("just a string"),
    ] {
        let (status, body) = app.post(&send_path("whatsapp"), bad.clone()).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(stored_messages(&app, wa).await, 1);

    let (status, body) = app
        .call(
            Method::POST,
            &send_path("whatsapp"),
            Some(json!({"conversation_id": wa, "message_text": "hi"})),
            None,
        )
        .await;
    assert_error(status, &body, 401, "NotAuthenticated");
    let (status, body) = app.get(&send_path("whatsapp")).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}

#[actix_web::test]
async fn media_fields_are_stored_and_carried_in_the_wire_payload() {
    let app = spawn_app().await;
    let (_, wa) = open_conversation(&app, "whatsapp").await;
    let org = app.org.org_id;
    let media = |conv: i64, name: &str, mime: &str, size: u64| {
        json!({
            "s3_key": format!("org/{org}/conversations/{conv}/u1/{name}"),
            "s3_path": format!("s3://files/org/{org}/conversations/{conv}/u1/{name}"),
            "file_name": name,
            "file_type": mime,
            "file_size": size,
        })
    };
    // As stored: no registered file names the key.
    let stored = |conv: i64, name: &str, mime: &str, size: u64| {
        let mut m = media(conv, name, mime, size);
        m["conversation_file_id"] = Value::Null;
        m
    };
    let mut body = media(wa, "photo.jpg", "image/jpeg", 120_000);
    body["conversation_id"] = json!(wa);
    body["message_type"] = json!("image");
    body["message_text"] = json!("Look at this");
    let message = app.create(&send_path("whatsapp"), body).await;
    assert_eq!(message["message_type"], "image");
    assert_eq!(message["text"], "Look at this");
    assert_eq!(
        message["media"],
        stored(wa, "photo.jpg", "image/jpeg", 120_000)
    );
    assert_eq!(
        message["payload"],
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15550001111",
            "type": "image",
            "image": {"link": format!("s3://files/org/{org}/conversations/{wa}/u1/photo.jpg"), "caption": "Look at this"},
        })
    );
    assert_eq!(
        conversation_record(&app, wa).await["last_message_preview"],
        "Look at this"
    );

    // A document on Messenger: the Send API has no caption, the text follows.
    let (_, messenger) = open_conversation(&app, "messenger").await;
    let mut body = media(messenger, "invoice.pdf", "application/pdf", 300_000);
    body["conversation_id"] = json!(messenger);
    body["message_type"] = json!("document");
    body["message_text"] = json!("Your invoice");
    // A conversation_file_id must name a registered file of the conversation
    // (tests/api/files.rs): an opaque reference is not one.
    let mut opaque = body.clone();
    opaque["conversation_file_id"] = json!("65f0c0ffee");
    let (status, refused) = app.post(&send_path("messenger"), opaque).await;
    assert_error(status, &refused, 403, "Forbidden");
    let message = app.create(&send_path("messenger"), body).await;
    assert_eq!(message["media"]["file_name"], "invoice.pdf");
    assert_eq!(message["media"]["conversation_file_id"], Value::Null);
    assert_eq!(
        message["payload"],
        json!({
            "recipient": {"id": "PSID-2718"},
            "messaging_type": "RESPONSE",
            "message": {"attachment": {"type": "file", "payload": {
                "url": format!("s3://files/org/{org}/conversations/{messenger}/u1/invoice.pdf"), "is_reusable": true}}},
            "follow_up_text": "Your invoice",
        })
    );

    // An image without text: the preview says what it is.
    let (_, webchat) = open_conversation(&app, "webchat").await;
    let mut body = media(webchat, "pic.png", "image/png", 1_000);
    body["conversation_id"] = json!(webchat);
    body["message_type"] = json!("image");
    let message = app.create(&send_path("webchat"), body).await;
    assert_eq!(message["text"], Value::Null);
    assert_eq!(
        message["payload"]["message"]["media"],
        json!({"url": format!("s3://files/org/{org}/conversations/{webchat}/u1/pic.png"), "mime": "image/png",
               "file_name": "pic.png", "size": 1000})
    );
    assert_eq!(
        conversation_record(&app, webchat).await["last_message_preview"],
        "[image]"
    );

    // Media fields that do not describe a file are a 400.
    for bad in [
        json!({"message_type": "image", "file_type": "image/png", "file_size": 10}),
        json!({"message_type": "image", "s3_key": "k", "file_size": 10}),
        json!({"message_type": "image", "s3_key": "k", "file_type": "image/png"}),
        json!({"message_type": "image", "s3_key": "k", "file_type": "image/png", "file_size": -1}),
    ] {
        let mut bad = bad;
        bad["conversation_id"] = json!(webchat);
        let (status, body) = app.post(&send_path("webchat"), bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn whatsapp_templates_are_checked_and_stored_as_given() {
    let app = spawn_app().await;
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let data = json!({
        "whatsapp_template_id": "1234567890",
        "name": "order_update",
        "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
        "conversation_id": conversation,
    });
    // Never written to: only a template (or a note) can go.
    let message = app
        .create(
            &send_path("whatsapp"),
            json!({"conversation_id": conversation, "message_type": "template", "messageData": data}),
        )
        .await;
    assert_eq!(message["message_type"], "template");
    assert_eq!(message["template"], data);
    assert_eq!(message["delivery_status"], "queued");
    assert_eq!(
        message["payload"],
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15550001111",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
            },
        })
    );
    let after = conversation_record(&app, conversation).await;
    assert_eq!(after["last_message_preview"], "[template]");
    assert_eq!(after["last_interaction_at"], message["created_at"]);

    for bad in [
        json!({"language": "en_US", "components": []}),
        json!({"name": "x", "components": []}),
        json!({"name": "x", "language": "en_US", "components": {}}),
        json!({"name": "x", "language": "en_US", "components": [{"parameters": []}]}),
        json!("order_update"),
    ] {
        let (status, body) = app
            .post(
                &send_path("whatsapp"),
                json!({"conversation_id": conversation, "message_type": "template", "messageData": bad}),
            )
            .await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["errors"]["messageData"].is_array(), "{body}");
    }
    assert_eq!(stored_messages(&app, conversation).await, 1);
}

#[actix_web::test]
async fn sms_sends_text_mms_send_styles_and_replies_in_the_same_conversation() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let (contact, conversation) = channel_conversation(&app, &app.org, "sms").await;
    let (_, other_sms) = channel_conversation(&app, &app.org, "sms").await;
    let waiting = Utc::now() - Duration::minutes(5);
    set_conversation_time(&app, conversation, "waiting_since", Some(waiting)).await;
    let path = "/conversation-messages-sms";

    let text = app
        .create(
            path,
            json!({"conversation_id": conversation, "message_text": "Your table is ready"}),
        )
        .await;
    assert_eq!(text["channel"], "sms");
    assert_eq!(text["direction"], "outbound");
    assert_eq!(text["sender_type"], "user");
    assert_eq!(text["delivery_status"], "queued");
    assert_eq!(
        text["payload"],
        json!({"body": "Your table is ready", "to_number": "+15550001111"})
    );
    let after = conversation_record(&app, conversation).await;
    assert_eq!(after["last_message_preview"], "Your table is ready");
    assert_eq!(after["waiting_since"], Value::Null);
    assert_eq!(after["last_interaction_at"], text["created_at"]);

    let mms = app
        .create(
            path,
            json!({
                "conversation_id": conversation, "message_type": "image", "message_text": "Menu",
                "s3_key": format!("org/{}/conversations/{conversation}/u1/menu.png", app.org.org_id),
                "s3_path": format!("s3://files/org/{}/conversations/{conversation}/u1/menu.png", app.org.org_id),
                "file_name": "menu.png", "file_type": "image/png", "file_size": 200_000,
            }),
        )
        .await;
    assert_eq!(mms["message_type"], "image");
    assert_eq!(mms["delivery_status"], "queued");
    assert_eq!(
        mms["payload"],
        json!({"body": "Menu", "to_number": "+15550001111", "media_urls": [format!("s3://files/org/{}/conversations/{conversation}/u1/menu.png", app.org.org_id)]})
    );

    for &style in SEND_STYLES {
        let message = app
            .create(
                path,
                json!({"conversation_id": conversation, "message_text": "🎉", "send_style": style}),
            )
            .await;
        assert_eq!(message["send_style"], style);
        assert_eq!(message["payload"]["send_style"], style);
    }
    for style in ["shake", "Slam", ""] {
        let (status, body) = app
            .post(
                path,
                json!({"conversation_id": conversation, "message_text": "x", "send_style": style}),
            )
            .await;
        let data = assert_rule(status, &body, "send_style");
        assert_eq!(data["actual"], style);
        assert_eq!(data["allowed"], json!(SEND_STYLES));
    }

    // Replies: to a message of the same conversation only.
    let inbound = insert_message(&app, app.org.org_id, conversation, "sms", |d| {
        d.sender_id = Some(contact);
    })
    .await;
    set_message_external_id(&app, inbound, "SM-8841").await;
    let reply = app
        .create(
            path,
            json!({"conversation_id": conversation, "message_text": "Yes", "reply_to_message_id": inbound}),
        )
        .await;
    assert_eq!(reply["reply_to_message_id"], inbound);
    assert_eq!(reply["payload"]["reply_to_message_id"], "SM-8841");

    let elsewhere = insert_message(&app, app.org.org_id, other_sms, "sms", |_| {}).await;
    let (_, foreign_conversation) = channel_conversation(&app, &other, "sms").await;
    let foreign = insert_message(&app, other.org_id, foreign_conversation, "sms", |_| {}).await;
    let removed = insert_message(&app, app.org.org_id, conversation, "sms", |_| {}).await;
    let (status, _) = app.delete(&format!("{path}/{removed}")).await;
    assert_eq!(status, StatusCode::OK);
    let stored = stored_messages(&app, conversation).await;
    for target in [elsewhere, foreign, removed, 999_999] {
        let (status, body) = app
            .post(
                path,
                json!({"conversation_id": conversation, "message_text": "Yes", "reply_to_message_id": target}),
            )
            .await;
        let data = assert_rule(status, &body, "reply_in_conversation");
        assert_eq!(data["reply_to_message_id"], target);
    }
    assert_eq!(stored_messages(&app, conversation).await, stored);

    // SMS takes no template data and no Messenger tag.
    for bad in [
        json!({"conversation_id": conversation, "message_text": "x", "human_agent": true}),
        json!({"conversation_id": conversation, "message_type": "template", "messageData": {}}),
        json!({"conversation_id": conversation, "message_text": "x", "contact_id": contact}),
    ] {
        let (status, body) = app.post(path, bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }

    // A contact without a phone number cannot be texted.
    let no_phone = create_contact(&app, json!({"first_name": "Nobody"})).await;
    let unreachable =
        create_conversation(&app, app.org.org_id, id_of(&no_phone), "sms", "open").await;
    let (status, body) = app
        .post(
            path,
            json!({"conversation_id": unreachable, "message_text": "hi"}),
        )
        .await;
    assert_rule(status, &body, "recipient_known");
}

#[actix_web::test]
async fn playground_simulates_both_sides_of_a_conversation() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let path = "/conversation-messages-playground";
    let contact = id_of(&create_contact(&app, json!({"first_name": "Pat"})).await);
    let foreign_contact = create_contact_as(&app, &other, json!({"first_name": "Eve"})).await;

    let (status, body) = app
        .post(
            path,
            json!({"organization_id": other.org_id, "contact_id": contact, "message_text": "hi"}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    for missing in [foreign_contact, 999_999] {
        let (status, body) = app
            .post(path, json!({"contact_id": missing, "message_text": "hi"}))
            .await;
        let data = assert_rule(status, &body, "reference_in_organization");
        assert_eq!(data["field"], "contact_id");
    }
    let (status, body) = app.post(path, json!({"message_text": "hi"})).await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post(
            path,
            json!({"contact_id": contact, "message_text": "hi", "sender_type": "ai"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert_eq!(
        total_of(&app, "/conversations?channel=playground").await,
        0,
        "refused requests create no conversation"
    );

    // The contact writes: an inbound message in a new playground conversation.
    let first = app
        .create(
            path,
            json!({"organization_id": app.org.org_id, "contact_id": contact,
                   "sender_type": "contact", "message_text": "Hi, is anyone there?"}),
        )
        .await;
    let conversation = first["conversation_id"].as_i64().expect("conversation_id");
    assert_eq!(first["channel"], "playground");
    assert_eq!(first["direction"], "inbound");
    assert_eq!(first["sender_type"], "contact");
    assert_eq!(first["sender_id"], contact);
    assert_eq!(first["delivery_status"], "received");
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["channel"], "playground");
    assert_eq!(record["contact_id"], contact);
    assert_eq!(record["unread_count"], 1);
    assert_eq!(record["waiting_since"], first["created_at"]);
    assert_eq!(record["last_inbound_at"], first["created_at"]);
    assert_eq!(record["last_interaction_at"], first["created_at"]);
    assert_eq!(record["last_message_preview"], "Hi, is anyone there?");

    let second = app
        .create(
            path,
            json!({"contact_id": contact, "conversation_id": conversation,
                   "sender_type": "contact", "message_text": "Hello?"}),
        )
        .await;
    assert_eq!(second["conversation_id"], conversation, "reused");
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["unread_count"], 2);
    assert_eq!(
        record["waiting_since"], first["created_at"],
        "still waiting since the first"
    );
    assert_eq!(record["last_inbound_at"], second["created_at"]);

    // The user answers (the default sender): delivered at once.
    let answer = app
        .create(
            path,
            json!({"contact_id": contact, "message_text": "Yes, how can I help?"}),
        )
        .await;
    assert_eq!(answer["conversation_id"], conversation);
    assert_eq!(answer["direction"], "outbound");
    assert_eq!(answer["sender_type"], "user");
    assert_eq!(answer["sender_id"], app.org.user_id);
    assert_eq!(answer["delivery_status"], "delivered");
    assert_eq!(answer["payload"]["type"], "playground_message");
    assert_eq!(answer["payload"]["message"]["text"], "Yes, how can I help?");
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["unread_count"], 0);
    assert_eq!(record["waiting_since"], Value::Null);
    assert_eq!(record["last_interaction_at"], answer["created_at"]);
    assert_eq!(record["last_inbound_at"], second["created_at"]);
    assert_eq!(total_of(&app, "/conversations?channel=playground").await, 1);
    let page = get_ok(
        &app,
        &format!("/conversation-messages-playground?conversation_id={conversation}"),
    )
    .await;
    assert_eq!(
        ids(&page),
        vec![id_of(&answer), id_of(&second), id_of(&first)]
    );

    // A closed playground conversation is reopened by the contact.
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"status": "closed"}),
    )
    .await;
    let explicit = app
        .create(
            path,
            json!({"contact_id": contact, "sender_type": "user", "message_text": "Bye"}),
        )
        .await;
    assert_eq!(explicit["direction"], "outbound");
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "closed"
    );
    app.create(
        path,
        json!({"contact_id": contact, "sender_type": "contact", "message_text": "Wait"}),
    )
    .await;
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["status"], "open");
    assert_eq!(record["unread_count"], 1);

    // The conversation id, when given, must be this contact's playground conversation.
    let other_contact = id_of(&create_contact(&app, json!({"first_name": "Sam"})).await);
    let (status, body) = app
        .post(
            path,
            json!({"contact_id": other_contact, "conversation_id": conversation, "message_text": "x"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let own = app
        .create(
            path,
            json!({"contact_id": other_contact, "message_text": "Welcome"}),
        )
        .await;
    assert_ne!(own["conversation_id"], conversation);
    assert_eq!(total_of(&app, "/conversations?channel=playground").await, 2);

    // A blocked conversation stores the contact's message and stays as it is.
    let blocked = own["conversation_id"].as_i64().unwrap();
    patch_ok(
        &app,
        &format!("/conversations/{blocked}"),
        json!({"blocked": true}),
    )
    .await;
    let before = conversation_record(&app, blocked).await;
    let spam = app
        .create(
            path,
            json!({"contact_id": other_contact, "sender_type": "contact", "message_text": "spam"}),
        )
        .await;
    assert_eq!(spam["conversation_id"], blocked);
    let after = conversation_record(&app, blocked).await;
    assert_eq!(after["unread_count"], before["unread_count"]);
    assert_eq!(after["last_message_preview"], "Welcome");
    assert_eq!(after["waiting_since"], Value::Null);
}

#[actix_web::test]
async fn another_organizations_messages_and_conversations_are_not_found() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let mut theirs = Vec::new();
    for channel in CHANNELS {
        let (_, conversation) = channel_conversation(&app, &other, channel).await;
        let message = insert_message(&app, other.org_id, conversation, channel, |_| {}).await;
        theirs.push((channel, conversation, message));
    }
    for &(channel, conversation, message) in &theirs {
        let path = read_path(channel);
        let (status, body) = app.get(&format!("{path}/{message}")).await;
        assert_error(status, &body, 404, "NotFound");
        let (status, body) = app.delete(&format!("{path}/{message}")).await;
        assert_error(status, &body, 404, "NotFound");
        let page = get_ok(&app, &format!("{path}?conversation_id={conversation}")).await;
        assert_eq!(page["total"], 0, "{channel}: {page}");
        let (status, body) = app
            .get(&format!(
                "{path}?conversation_id={conversation}&organization_id={}",
                other.org_id
            ))
            .await;
        assert_error(status, &body, 403, "Forbidden");
        let page = get_ok(
            &app,
            &format!(
                "{path}?conversation_id={conversation}&organization_id={}",
                app.org.org_id
            ),
        )
        .await;
        assert_eq!(page["total"], 0);
        // Still there for its owner.
        let (status, body) = app
            .call_as(&other, Method::GET, &format!("{path}/{message}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if SEND_CHANNELS.contains(&channel) {
            let (status, body) = app
                .post(
                    &send_path(channel),
                    json!({"conversation_id": conversation, "message_type": "note", "message_text": "x"}),
                )
                .await;
            assert_error(status, &body, 404, "NotFound");
            let (status, body) = app
                .post(
                    &format!("{}?$preview=true", send_path(channel)),
                    json!({"conversation_id": conversation, "message_type": "note", "message_text": "x"}),
                )
                .await;
            assert_error(status, &body, 404, "NotFound");
        }
        assert_eq!(stored_messages(&app, conversation).await, 1);
    }
    let (status, body) = app
        .post(
            "/conversation-messages-sms",
            json!({"conversation_id": theirs[4].1, "message_text": "x", "organization_id": other.org_id}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
}

#[actix_web::test]
async fn messages_of_a_removed_conversation_disappear_with_it() {
    let app = spawn_app().await;
    let (_, conversation) = open_conversation(&app, "webchat").await;
    let (status, sent) = app
        .post(
            &send_path("webchat"),
            json!({"conversation_id": conversation, "message_text": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let list = format!("{}?conversation_id={conversation}", read_path("webchat"));
    assert_eq!(total_of(&app, &list).await, 1);

    let (status, _) = app.delete(&format!("/conversations/{conversation}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total_of(&app, &list).await, 0);
    let (status, body) = app
        .get(&format!("{}/{}", read_path("webchat"), id_of(&sent)))
        .await;
    assert_error(status, &body, 404, "NotFound");
}

#[actix_web::test]
async fn message_list_totals_match_a_real_count_after_writes() {
    let app = spawn_app().await;
    let org = app.org.org_id;
    let (_, sms) = channel_conversation(&app, &app.org, "sms").await;
    let (_, webchat) = channel_conversation(&app, &app.org, "webchat").await;
    let types = [
        "text", "reaction", "note", "image", "reaction", "text", "activity",
    ];
    let mut ids = Vec::new();
    for (i, message_type) in types.iter().cycle().take(40).enumerate() {
        let conversation = if i % 3 == 0 { webchat } else { sms };
        let channel = if i % 3 == 0 { "webchat" } else { "sms" };
        ids.push((
            channel,
            insert_message(&app, org, conversation, channel, |d| {
                d.message_type = message_type.to_string()
            })
            .await,
        ));
    }
    // Soft deletes through the API, a hard delete and a retyping in SQL.
    for (channel, id) in ids.iter().step_by(5) {
        let (status, body) = app.delete(&format!("{}/{id}", read_path(channel))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    exec_sql(
        &app,
        &format!("DELETE FROM messages WHERE id = {}", ids[1].1),
    )
    .await;
    exec_sql(
        &app,
        &format!(
            "UPDATE messages SET message_type = 'reaction' WHERE id = {}",
            ids[2].1
        ),
    )
    .await;

    let filters = [
        ("", ""),
        (
            "&message_type[$ne]=reaction",
            " AND message_type <> 'reaction'",
        ),
        ("&message_type=note", " AND message_type = 'note'"),
        (
            "&message_type[$in][]=text&message_type[$in][]=image",
            " AND message_type IN ('text', 'image')",
        ),
        (
            "&message_type[$nin][]=reaction&message_type[$nin][]=activity",
            " AND message_type NOT IN ('reaction', 'activity')",
        ),
        ("&direction=inbound", " AND direction = 'inbound'"),
    ];
    for (conversation, channel) in [(sms, "sms"), (webchat, "webchat")] {
        for (query, sql) in filters {
            let path = format!(
                "{}?conversation_id={conversation}{query}&$limit=0",
                read_path(channel)
            );
            let expected = sql_i64(
                &app,
                &format!(
                    "SELECT COUNT(*) FROM messages WHERE conversation_id = {conversation} AND deleted_at IS NULL{sql}"
                ),
            )
            .await;
            assert_eq!(total_of(&app, &path).await, expected, "{path}");
        }
    }
    // The wrong channel's path sees none of them, counted or not.
    let wrong = format!(
        "{}?conversation_id={sms}&message_type[$ne]=reaction&$limit=0",
        read_path("webchat")
    );
    assert_eq!(total_of(&app, &wrong).await, 0);
}
