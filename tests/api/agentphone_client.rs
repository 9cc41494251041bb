//! The AgentPhone client against the in-process fake: answers parse, and each failure
//! lands in the `CallError` that says whether a send may be repeated.

use std::time::{Duration, Instant};

use inbox_gateway::agentphone::client::{CallError, Client, Http};
use inbox_gateway::agentphone::signature;
use serde_json::{Value, json};

use crate::fake_agentphone::{
    FAKE_API_KEY, FAKE_FROM_NUMBER, FakeAgentPhone, SendReply, signed_headers,
};

fn http(timeout: Duration) -> Http {
    Http::new(Duration::from_secs(2), timeout).expect("the HTTP client builds")
}

fn client(fake: &FakeAgentPhone) -> Client {
    http(Duration::from_secs(10)).account(&fake.base_url, FAKE_API_KEY)
}

fn sms(to: &str, text: &str) -> Value {
    json!({"to_number": to, "body": text})
}

/// The `ApiError` of a `Status`, or a panic naming what came instead.
fn status_error<T: std::fmt::Debug>(
    result: Result<T, CallError>,
) -> (inbox_gateway::agentphone::ApiError, Option<Duration>) {
    match result {
        Err(CallError::Status { error, retry_after }) => (error, retry_after),
        other => panic!("expected CallError::Status, got {other:?}"),
    }
}

#[actix_web::test]
async fn agentphone_client_send_answers_the_sent_message_and_is_recorded() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    let body = json!({"to_number": "+15551234567", "body": "hello", "media_urls": ["https://x.test/a.png"]});
    let sent = client.send_message(&body).await.expect("sent");
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.channel, "sms");
    assert_eq!(sent.from_number, FAKE_FROM_NUMBER);
    assert_eq!(sent.to_number, "+15551234567");
    assert!(sent.id.starts_with("msg_"), "{sent:?}");
    assert_eq!(sent.media_urls, ["https://x.test/a.png"]);
    assert_eq!(sent.reply_parent_unresolved, None);
    assert_eq!(fake.sent(), [body]);
    assert_eq!(fake.send_attempts(), 1);
    let requests = fake.requests();
    assert_eq!(requests[0].0, "POST");
    assert_eq!(requests[0].1, "/v1/messages");

    // The same pair lands in the same conversation; the message list shows both, newest first.
    let conversation = sent.conversation_id.clone().expect("a conversation id");
    let second = client
        .send_message(&sms("+15551234567", "again"))
        .await
        .unwrap();
    assert_eq!(
        second.conversation_id.as_deref(),
        Some(conversation.as_str())
    );
    let page = client
        .conversation_messages(&conversation, 10, None)
        .await
        .unwrap();
    assert!(!page.has_more);
    let ids: Vec<&str> = page.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), sent.id.as_str()]);
    assert_eq!(page.data[1].direction, "outbound");
    assert_eq!(page.data[1].body, "hello");
    assert_eq!(page.data[1].media_urls, ["https://x.test/a.png"]);

    // Channel and threading variants.
    fake.script(vec![SendReply::Channel("imessage"), SendReply::Unresolved]);
    let imessage = client
        .send_message(&sms("+15557654321", "hi"))
        .await
        .unwrap();
    assert_eq!(imessage.channel, "imessage");
    let reply = json!({"to_number": "+15557654321", "body": "re", "reply_to_message_id": sent.id});
    let unthreaded = client.send_message(&reply).await.unwrap();
    assert_eq!(unthreaded.reply_parent_unresolved, Some(true));
    fake.set_channel("mms");
    assert_eq!(
        client
            .send_message(&sms("+1555", "x"))
            .await
            .unwrap()
            .channel,
        "mms"
    );
    assert_eq!(fake.sent().len(), 5);
}

#[actix_web::test]
async fn agentphone_client_rate_limit_is_a_status_with_retry_after() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.script(vec![SendReply::RateLimited(7)]);
    let (error, retry_after) = status_error(client.send_message(&sms("+15551234567", "hi")).await);
    assert_eq!(error.status, 429);
    assert_eq!(error.code.as_deref(), Some("RATE_LIMIT_EXCEEDED"));
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert!(fake.sent().is_empty());
    // Then the script is used up: Ok.
    client
        .send_message(&sms("+15551234567", "hi"))
        .await
        .unwrap();
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.send_attempts(), 2);
}

#[actix_web::test]
async fn agentphone_client_sent_then_500_is_a_status_although_sent() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.script(vec![SendReply::SentThen(500), SendReply::SentThen(502)]);
    let (error, retry_after) = status_error(client.send_message(&sms("+15551234567", "a")).await);
    assert_eq!(error.status, 500);
    assert_eq!(retry_after, None);
    let (error, _) = status_error(client.send_message(&sms("+15551234567", "b")).await);
    assert_eq!(error.status, 502);
    assert_eq!(error.message, "Bad Gateway");
    assert_eq!(fake.sent().len(), 2);
}

#[actix_web::test]
async fn agentphone_client_hang_times_out_as_unknown() {
    let fake = FakeAgentPhone::start().await;
    let client = http(Duration::from_secs(1)).account(&fake.base_url, FAKE_API_KEY);
    fake.script(vec![SendReply::Hang, SendReply::SentThenHang]);

    let started = Instant::now();
    let result = client.send_message(&sms("+15551234567", "a")).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(CallError::Unknown(_))), "{result:?}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(fake.sent().is_empty());

    let result = client.send_message(&sms("+15551234567", "b")).await;
    assert!(matches!(result, Err(CallError::Unknown(_))), "{result:?}");
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.send_attempts(), 2);
}

#[actix_web::test]
async fn agentphone_client_closed_port_is_not_sent() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = http(Duration::from_secs(5)).account(&format!("http://127.0.0.1:{port}"), "sk_x");
    let result = client.send_message(&sms("+15551234567", "hi")).await;
    match result {
        Err(CallError::NotSent(text)) => assert!(!text.contains("sk_x"), "{text}"),
        other => panic!("expected NotSent, got {other:?}"),
    }
}

#[actix_web::test]
async fn agentphone_client_each_error_shape_comes_through() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    let validation = json!([{"loc": ["body", "to_number"], "msg": "Invalid phone number", "type": "value_error"}]);
    fake.script(vec![
        SendReply::Status(404, json!({"detail": "Reply target not found."})),
        SendReply::Status(422, json!({ "detail": validation })),
        SendReply::Status(
            402,
            json!({"error": {"message": "Insufficient balance", "code": "INSUFFICIENT_BALANCE", "type": "billing_error", "details": [{"balance": 0}]}}),
        ),
        SendReply::Status(403, json!({"error": "Destination restricted"})),
        SendReply::Status(400, json!({"message": "Unsupported feature", "code": "VALIDATION_ERROR"})),
        SendReply::Status(503, json!({"unexpected": "shape"})),
    ]);
    let next = async || status_error(client.send_message(&sms("+15551234567", "hi")).await).0;

    let e = next().await;
    assert_eq!(
        (e.status, e.message.as_str(), e.code.as_deref()),
        (404, "Reply target not found.", None)
    );
    let e = next().await;
    assert_eq!(
        (e.status, e.message.as_str()),
        (422, "Invalid phone number")
    );
    assert_eq!(e.details, Some(validation));
    let e = next().await;
    assert_eq!(
        (e.status, e.message.as_str()),
        (402, "Insufficient balance")
    );
    assert_eq!(e.code.as_deref(), Some("INSUFFICIENT_BALANCE"));
    assert_eq!(e.details, Some(json!([{"balance": 0}])));
    let e = next().await;
    assert_eq!(
        (e.status, e.message.as_str()),
        (403, "Destination restricted")
    );
    let e = next().await;
    assert_eq!((e.status, e.message.as_str()), (400, "Unsupported feature"));
    assert_eq!(e.code.as_deref(), Some("VALIDATION_ERROR"));
    let e = next().await;
    assert_eq!(
        (e.status, e.message.as_str()),
        (503, r#"{"unexpected":"shape"}"#)
    );
    assert_eq!(
        e.to_json(),
        json!({"status": 503, "code": null, "message": r#"{"unexpected":"shape"}"#, "details": null})
    );
    assert!(fake.sent().is_empty());
}

#[actix_web::test]
async fn agentphone_client_unconfirmed_is_409_delivery_unconfirmed() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.script(vec![SendReply::Unconfirmed]);
    let (error, _) = status_error(client.send_message(&sms("+15551234567", "hi")).await);
    assert_eq!(error.status, 409);
    assert_eq!(error.code.as_deref(), Some("DELIVERY_UNCONFIRMED"));
    assert_eq!(fake.sent().len(), 1);
}

#[actix_web::test]
async fn agentphone_client_redirects_are_not_followed() {
    let fake = FakeAgentPhone::start().await;
    let client =
        http(Duration::from_secs(5)).account(&format!("{}/redirect", fake.base_url), FAKE_API_KEY);
    let (error, _) = status_error(client.send_message(&sms("+15551234567", "hi")).await);
    assert_eq!(error.status, 307);
    assert_eq!(error.message, "Temporary Redirect");
    assert_eq!(fake.send_attempts(), 0);
    assert!(fake.sent().is_empty());
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.1).collect();
    assert_eq!(paths, ["/redirect/v1/messages"]);
}

#[actix_web::test]
async fn agentphone_client_messages_page_parses_and_pages_by_time() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.add_message(
        "conv_group",
        json!({
            "id": "cm_inbound", "body": "photo", "fromNumber": "+15552223333",
            "toNumber": FAKE_FROM_NUMBER, "direction": "inbound",
            "receivedAt": "2020-01-01T00:00:00.000Z", "senderIdentifier": "+15552223333",
            "channel": "imessage", "mediaUrl": "https://x.test/p.jpg",
            "mediaUrls": ["https://x.test/p.jpg"], "reactions": [],
            "replyTo": {"messageId": "cm_0", "message": "earlier", "mediaUrls": []}
        }),
    );
    let page = client
        .conversation_messages("conv_group", 50, None)
        .await
        .unwrap();
    let m = &page.data[0];
    assert_eq!(m.sender_identifier.as_deref(), Some("+15552223333"));
    assert_eq!(m.channel.as_deref(), Some("imessage"));
    assert_eq!(m.media_url.as_deref(), Some("https://x.test/p.jpg"));
    assert_eq!(m.reply_to.as_ref().unwrap()["messageId"], "cm_0");
    assert_eq!(m.received_at, "2020-01-01T00:00:00.000Z");

    let mut ids = Vec::new();
    let mut conversation = String::new();
    for text in ["one", "two", "three"] {
        let sent = client
            .send_message(&sms("+15551234567", text))
            .await
            .unwrap();
        conversation = sent.conversation_id.unwrap();
        ids.push(sent.id);
    }
    let first = client
        .conversation_messages(&conversation, 2, None)
        .await
        .unwrap();
    assert!(first.has_more);
    let got: Vec<&str> = first.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = first.data.last().unwrap().received_at.clone();
    let rest = client
        .conversation_messages(&conversation, 2, Some(&cursor))
        .await
        .unwrap();
    assert!(!rest.has_more);
    let got: Vec<&str> = rest.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str()]);
    let query = fake.requests().last().unwrap().1.clone();
    assert!(
        query.starts_with(&format!(
            "/v1/conversations/{conversation}/messages?limit=2&before="
        )),
        "{query}"
    );

    // An offset cursor survives the query string ('+' is not a space).
    let offset_cursor = "2100-01-01T00:00:00+00:00";
    let all = client
        .conversation_messages(&conversation, 10, Some(offset_cursor))
        .await
        .unwrap();
    assert_eq!(all.data.len(), 3);

    // Ids are one encoded path segment; an unknown conversation is a 404.
    let (error, _) = status_error(client.conversation_messages("conv 1/x", 5, None).await);
    assert_eq!(error.status, 404);
    let path = fake.requests().last().unwrap().1.clone();
    assert_eq!(path, "/v1/conversations/conv%201%2Fx/messages?limit=5");
    let (error, _) = status_error(client.conversation_messages("conv_nope", 5, None).await);
    assert_eq!(error.message, "Conversation not found");
}

#[actix_web::test]
async fn agentphone_client_conversations_page_parses() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.add_conversation(json!({
        "id": "conv_old_group", "agentId": "agt_1", "phoneNumberId": "num_1",
        "phoneNumber": FAKE_FROM_NUMBER, "participant": "grp_1", "isGroup": true,
        "groupId": "grp_1", "groupName": "Team",
        "participants": [{"identifier": "+15552223333", "name": "Ann"}, {"identifier": "bo@x.test", "name": null}],
        "lastMessageAt": "2020-01-01T00:00:00Z", "lastMessagePreview": "hi", "messageCount": 4,
        "metadata": {"ticket": 42}, "createdAt": "2019-01-01T00:00:00Z"
    }));
    let sent = client
        .send_message(&sms("+15551234567", "new"))
        .await
        .unwrap();

    let page = client.conversations(1, 0).await.unwrap();
    assert!(page.has_more);
    assert_eq!(page.total, Some(2));
    assert_eq!(page.data.len(), 1);
    let newest = &page.data[0];
    assert_eq!(Some(newest.id.clone()), sent.conversation_id);
    assert_eq!(newest.participant, "+15551234567");
    assert!(!newest.is_group);

    let page = client.conversations(10, 1).await.unwrap();
    assert!(!page.has_more);
    let group = &page.data[0];
    assert_eq!(group.id, "conv_old_group");
    assert!(group.is_group);
    assert_eq!(group.agent_id.as_deref(), Some("agt_1"));
    assert_eq!(group.group_name.as_deref(), Some("Team"));
    let participants = group.participants.as_ref().unwrap();
    assert_eq!(participants[0].name.as_deref(), Some("Ann"));
    assert_eq!(participants[1].name, None);
    assert_eq!(group.metadata, Some(json!({"ticket": 42})));
    assert_eq!(
        group.last_message_at.as_deref(),
        Some("2020-01-01T00:00:00Z")
    );
    assert_eq!(
        fake.requests().last().unwrap().1,
        "/v1/conversations?limit=10&offset=1"
    );
}

#[actix_web::test]
async fn agentphone_client_wrong_key_is_401() {
    let fake = FakeAgentPhone::start().await;
    let client = http(Duration::from_secs(5)).account(&fake.base_url, "sk_wrong");
    let (error, _) = status_error(client.send_message(&sms("+15551234567", "hi")).await);
    assert_eq!(
        (error.status, error.message.as_str()),
        (401, "Invalid API key")
    );
    assert!(fake.sent().is_empty());
    assert_eq!(fake.send_attempts(), 1);
    let (error, _) = status_error(client.conversations(5, 0).await);
    assert_eq!(error.status, 401);
    assert!(!format!("{client:?}").contains("sk_wrong"));

    fake.set_api_key("sk_wrong");
    client
        .send_message(&sms("+15551234567", "hi"))
        .await
        .unwrap();
}

#[actix_web::test]
async fn agentphone_client_reactions_typing_and_backgrounds() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    let sms_message = client
        .send_message(&sms("+15551234567", "sms"))
        .await
        .unwrap();
    let (error, _) = status_error(client.react(&sms_message.id, "love").await);
    assert_eq!(error.status, 400);

    fake.script(vec![SendReply::Channel("imessage")]);
    let imessage = client
        .send_message(&sms("+15557654321", "imsg"))
        .await
        .unwrap();
    let reaction = client.react(&imessage.id, "love").await.unwrap();
    assert_eq!(reaction.reaction_type, "love");
    assert_eq!(reaction.message_id, imessage.id);
    assert!(reaction.channel.eq_ignore_ascii_case("imessage"));
    let (error, _) = status_error(client.react("msg_unknown", "like").await);
    assert_eq!(error.status, 404);
    let (method, path, body) = fake.requests().iter().rev().nth(1).cloned().unwrap();
    assert_eq!(
        (method.as_str(), body),
        ("POST", json!({"reaction": "love"}))
    );
    assert_eq!(path, format!("/v1/messages/{}/reactions", imessage.id));

    let conversation = imessage.conversation_id.unwrap();
    let typing = client.typing(&conversation).await.unwrap();
    assert_eq!(
        (typing.conversation_id.as_str(), typing.status.as_str()),
        (conversation.as_str(), "sent")
    );
    let background = client
        .set_background(&conversation, "https://x.test/bg.png")
        .await
        .unwrap();
    assert_eq!(background.conversation_id, conversation);
    assert_eq!(background.has_background, Some(true));
    assert_eq!(
        fake.requests().last().unwrap().2,
        json!({"image_url": "https://x.test/bg.png"})
    );
    client.delete_background(&conversation).await.unwrap();
    assert_eq!(fake.requests().last().unwrap().0, "DELETE");
    let (error, _) = status_error(client.delete_background("conv_unknown").await);
    assert_eq!(
        (error.status, error.message.as_str()),
        (404, "Conversation not found")
    );
}

#[actix_web::test]
async fn agentphone_client_fake_counts_concurrent_sends() {
    let fake = FakeAgentPhone::start().await;
    let client = client(&fake);
    fake.set_latency(Duration::from_millis(300));
    let bodies = [
        sms("+15550000001", "a"),
        sms("+15550000002", "b"),
        sms("+15550000003", "c"),
    ];
    let (a, b, c) = tokio::join!(
        client.send_message(&bodies[0]),
        client.send_message(&bodies[1]),
        client.send_message(&bodies[2]),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(fake.max_concurrent_sends(), 3);
    assert_eq!(fake.sent().len(), 3);
}

#[actix_web::test]
async fn agentphone_client_signed_headers_verify() {
    let body = br#"{"event":"agent.message","channel":"sms","data":{"from":"+15551234567","message":"hi"}}"#;
    let headers = signed_headers("whsec_test_secret", body, 1_700_000_000, "del_1");
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("X-Webhook-Signature").as_deref(),
        Some("sha256=8b09ab48dcf61d80fdd49b10d281c229476733bdfa6e8526023ba6f054f54db5")
    );
    assert_eq!(get("X-Webhook-Timestamp").as_deref(), Some("1700000000"));
    assert_eq!(get("X-Webhook-ID").as_deref(), Some("del_1"));
    assert_eq!(get("X-Webhook-Event").as_deref(), Some("agent.message"));
    assert_eq!(get("Content-Type").as_deref(), Some("application/json"));
    let verified = signature::verify(
        "whsec_test_secret",
        get("X-Webhook-Timestamp").as_deref(),
        get("X-Webhook-Signature").as_deref(),
        body,
        1_700_000_100,
    );
    assert_eq!(verified, Ok(()));
}
