//! AgentPhone through the API: channel accounts and their secrets, delivery of SMS and
//! iMessage messages against the in-process fake AgentPhone (every send outcome, a
//! restart between store and send, two workers), signed webhooks (forged, stale,
//! replayed, ten at once), echoes, reactions, groups, typing and backgrounds.

use crate::fake_agentphone::{FAKE_API_KEY, FakeAgentPhone, SendReply, signed_headers};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "whsec_test_secret";
const OUR_NUMBER: &str = "+15550001111";
const THEIR_NUMBER: &str = "+15557654321";

/// An AgentPhone account of `tenant` whose API is `fake`; answers its id.
async fn account(app: &TestApp, tenant: &Tenant, fake: &FakeAgentPhone) -> i64 {
    let (status, body) = app
        .call(
            Method::POST,
            "/channel-accounts",
            Some(json!({
                "channel": "sms", "provider": "agentphone", "name": "Main line",
                "settings": {"agent_id": "agt_1", "numbers": [{"id": "num_1", "phone_number": OUR_NUMBER}], "base_url": fake.base_url},
                "secrets": {"api_key": FAKE_API_KEY, "webhook_secret": SECRET},
            })),
            Some(&tenant.token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

/// A contact at THEIR_NUMBER and an open SMS conversation with it.
async fn sms_conversation(app: &TestApp, tenant: &Tenant) -> i64 {
    let contact = create_contact_as(
        app,
        tenant,
        json!({"first_name": "Grace", "phone": THEIR_NUMBER}),
    )
    .await;
    create_conversation(app, tenant.org_id, contact, "sms", "open").await
}

async fn send_text(app: &TestApp, conversation: i64, text: &str) -> Value {
    let (status, body) = app
        .post(
            "/conversation-messages-sms",
            json!({"conversation_id": conversation, "message_text": text}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["delivery_status"], "queued");
    body
}

/// The message once `done` holds for it (the delivery worker runs in the app).
async fn wait_for(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let message = get_ok(app, &format!("/conversation-messages-sms/{id}")).await;
        if done(&message) {
            return message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "message never got there: {message}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn settled(m: &Value) -> bool {
    !matches!(m["delivery_status"].as_str(), Some("queued" | "sending"))
}

/// Posts a webhook body signed with `secret` at `timestamp`.
async fn webhook(
    app: &TestApp,
    account: i64,
    secret: &str,
    timestamp: i64,
    delivery: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = app
        .client
        .post(app.url(&format!("/webhooks/agentphone/{account}")));
    for (name, value) in signed_headers(secret, &bytes, timestamp, delivery) {
        req = req.header(name, value);
    }
    send(req.body(bytes)).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn inbound(message_id: &str, text: &str) -> Value {
    json!({"event": "agent.message", "channel": "sms", "timestamp": "2026-12-01T00:00:00Z",
        "conversationState": {"stage": "new"},
        "data": {"messageId": message_id, "conversationId": "conv_77", "numberId": "num_1",
                 "from": THEIR_NUMBER, "to": OUR_NUMBER, "message": text, "direction": "inbound",
                 "receivedAt": chrono::Utc::now().to_rfc3339(), "contact": {"name": "Grace Hopper"}}})
}

async fn sms_messages(app: &TestApp, conversation: i64) -> Vec<Value> {
    let page = get_ok(
        app,
        &format!("/conversation-messages-sms?conversation_id={conversation}&$limit=50"),
    )
    .await;
    records(&page).clone()
}

#[actix_web::test]
async fn channel_accounts_never_show_their_secrets() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let record = get_ok(&app, &format!("/channel-accounts/{id}")).await;
    let text = record.to_string();
    assert!(
        !text.contains(FAKE_API_KEY) && !text.contains(SECRET) && !text.contains("secrets"),
        "{text}"
    );
    assert_eq!(record["settings"]["numbers"][0]["phone_number"], OUR_NUMBER);
    let page = get_ok(&app, "/channel-accounts").await;
    assert!(!page.to_string().contains(SECRET));
    // At rest the secrets are sealed: the row holds neither.
    let sealed = sql_i64(&app, &format!(
        "SELECT COUNT(*) FROM channel_accounts WHERE id = {id} AND (secrets_sealed LIKE '%{SECRET}%' OR secrets_sealed LIKE '%{FAKE_API_KEY}%')"
    )).await;
    assert_eq!(sealed, 0);
    // Nor does any event.
    let events = sql_i64(
        &app,
        &format!("SELECT COUNT(*) FROM events WHERE CAST(data AS TEXT) LIKE '%{SECRET}%'"),
    )
    .await;
    assert_eq!(events, 0);
    // A secret changes alone; the other stays.
    let patched = patch_ok(
        &app,
        &format!("/channel-accounts/{id}"),
        json!({"secrets": {"webhook_secret": "whsec_new"}}),
    )
    .await;
    assert!(!patched.to_string().contains("whsec_new"));
    let (status, _) = webhook(&app, id, SECRET, now(), "del_old", &inbound("m_old", "hi")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = webhook(
        &app,
        id,
        "whsec_new",
        now(),
        "del_new",
        &inbound("m_new", "hi"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn channel_accounts_are_for_admins_and_checked() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let agent = app.new_user(&app.org, "agent").await;
    let (status, body) = app
        .call(Method::GET, "/channel-accounts", None, Some(&agent.token))
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let other = app.new_tenant("Other").await;
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/channel-accounts/{id}"),
            None,
            Some(&other.token),
        )
        .await;
    assert_error(status, &body, 404, "NotFound");
    let base = json!({"channel": "sms", "provider": "agentphone", "name": "x",
        "settings": {"agent_id": "agt_1"}, "secrets": {"api_key": "k", "webhook_secret": "s"}});
    let cases = [
        ("/channel", json!("whatsapp")),
        ("/provider", json!("twilio")),
        ("/name", json!("  ")),
        ("/settings", json!({"numbers": []})),
        (
            "/settings",
            json!({"agent_id": "a", "numbers": [{"id": "n", "phone_number": "5551234"}]}),
        ),
        ("/settings", json!({"agent_id": "a", "base_url": "ftp://x"})),
        ("/settings", json!({"agent_id": "a", "extra": 1})),
        ("/secrets", json!({"api_key": "k"})),
    ];
    for (pointer, value) in cases {
        let mut body = base.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        let (status, answer) = app.post("/channel-accounts", body.clone()).await;
        assert_error(status, &answer, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn a_message_is_sent_once_with_what_agentphone_used() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![SendReply::Channel("imessage")]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let queued = send_text(&app, conversation, "Hello Grace").await;
    let sent = wait_for(&app, queued["id"].as_i64().unwrap(), settled).await;
    assert_eq!(sent["delivery_status"], "sent", "{sent}");
    assert_eq!(sent["transport"], "imessage");
    assert_eq!(sent["attempts"], 1);
    assert!(
        sent["external_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_"))
    );
    assert_eq!(sent["error"], Value::Null);
    let bodies = fake.sent();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["to_number"], THEIR_NUMBER);
    assert_eq!(bodies[0]["body"], "Hello Grace");
    assert_eq!(bodies[0]["agent_id"], "agt_1");
    // Each step is an event: the attempt (`sending`) and its outcome (`sent`).
    let steps = sql_i64(&app, "SELECT COUNT(*) FROM events WHERE path = 'conversation-messages-sms' AND event = 'patched'").await;
    assert_eq!(steps, 2);
    let outcome = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE path = 'conversation-messages-sms' AND event = 'patched' \
         AND CAST(data AS TEXT) LIKE '%\"sent\"%' AND CAST(actor AS TEXT) LIKE '%system%'",
    ).await;
    assert_eq!(outcome, 1);
    // The conversation learned its AgentPhone thread.
    let record = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert!(
        record["metadata"]["agentphone"]["conversation_id"]
            .as_str()
            .is_some(),
        "{record}"
    );
}

#[actix_web::test]
async fn a_rate_limit_waits_its_retry_after_then_sends() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![SendReply::RateLimited(1)]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let started = std::time::Instant::now();
    let queued = send_text(&app, conversation, "after the limit").await;
    let sent = wait_for(&app, queued["id"].as_i64().unwrap(), |m| {
        m["delivery_status"] == "sent"
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not waited"
    );
    assert_eq!(sent["attempts"], 2);
    assert_eq!((fake.send_attempts(), fake.sent().len()), (2, 1));
}

#[actix_web::test]
async fn a_5xx_or_timeout_after_the_send_went_out_never_sends_again() {
    let app = spawn_app_with(|s| s.agentphone_timeout_ms = 500).await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![SendReply::SentThen(502), SendReply::SentThenHang]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    for text in ["one", "two"] {
        let queued = send_text(&app, conversation, text).await;
        let sent = wait_for(&app, queued["id"].as_i64().unwrap(), settled).await;
        assert_eq!(sent["delivery_status"], "sent", "{sent}");
        assert_eq!(
            sent["attempts"], 1,
            "found at AgentPhone, not sent again: {sent}"
        );
        assert!(sent["external_id"].is_string());
    }
    let bodies: Vec<Value> = fake.sent().iter().map(|b| b["body"].clone()).collect();
    assert_eq!(bodies, vec![json!("one"), json!("two")]);
    assert_eq!(fake.send_attempts(), 2);
}

#[actix_web::test]
async fn a_5xx_before_anything_went_out_is_sent_again() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![SendReply::Status(
        503,
        json!({"detail": "Service Unavailable"}),
    )]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let queued = send_text(&app, conversation, "again").await;
    let sent = wait_for(&app, queued["id"].as_i64().unwrap(), settled).await;
    assert_eq!(sent["delivery_status"], "sent");
    assert_eq!(sent["attempts"], 2);
    assert_eq!((fake.send_attempts(), fake.sent().len()), (2, 1));
}

#[actix_web::test]
async fn unconfirmed_is_never_retried_and_4xx_fail_with_the_error() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![
        SendReply::Unconfirmed,
        SendReply::Status(403, json!({"error": {"code": "UNREGISTERED_NUMBER", "message": "Register your 10DLC number"}})),
        SendReply::Status(400, json!({"message": "Unsupported destination"})),
    ]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let expected = [
        (
            "unconfirmed",
            Some("DELIVERY_UNCONFIRMED"),
            "may have been sent",
        ),
        (
            "failed",
            Some("UNREGISTERED_NUMBER"),
            "Register your 10DLC number",
        ),
        ("failed", None, "Unsupported destination"),
    ];
    for (i, (status, code, message)) in expected.into_iter().enumerate() {
        let queued = send_text(&app, conversation, &format!("m{i}")).await;
        let done = wait_for(&app, queued["id"].as_i64().unwrap(), settled).await;
        assert_eq!(done["delivery_status"], status, "{done}");
        assert_eq!(done["error"]["code"].as_str(), code);
        assert!(
            done["error"]["message"].as_str().unwrap().contains(message),
            "{done}"
        );
        assert_eq!(done["attempts"], 1);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.send_attempts(), 3, "none of them was tried again");
}

#[actix_web::test]
async fn a_message_stored_before_a_crash_is_sent_once_after_the_restart() {
    // The first instance stores and dies before any worker delivers.
    let first = spawn_app_with(|s| s.delivery_concurrency = 0).await;
    let fake = FakeAgentPhone::start().await;
    account(&first, &first.org, &fake).await;
    let conversation = sms_conversation(&first, &first.org).await;
    let queued = send_text(&first, conversation, "survives").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.send_attempts(), 0);
    // A new instance on the same database finds the job and sends it.
    // Same configuration: the same secret opens the accounts' sealed secrets.
    another_instance(&first, |_| {}).await;
    let sent = wait_for(&first, queued["id"].as_i64().unwrap(), settled).await;
    assert_eq!(sent["delivery_status"], "sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.sent().len(), 1);
}

#[actix_web::test]
async fn two_workers_send_a_thousand_messages_exactly_once() {
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        return; // two instances on one database: PostgreSQL
    }
    let app = spawn_app_with(|s| {
        s.delivery_concurrency = 0;
        s.rate_limit_requests = 100_000;
    })
    .await;
    let fake = FakeAgentPhone::start().await;
    fake.set_latency(Duration::from_millis(5));
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    // Stored first, then two instances' workers race for them.
    let n = 1000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let posts = chunk.iter().map(|i| {
            let app = &app;
            async move { send_text(app, conversation, &format!("bulk {i}")).await }
        });
        futures_util::future::join_all(posts).await;
    }
    for _ in 0..2 {
        another_instance(&app, |s| {
            s.agentphone_account_concurrency = 16;
        })
        .await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while sql_i64(
        &app,
        "SELECT COUNT(*) FROM messages WHERE delivery_status = 'sent'",
    )
    .await
        < n
    {
        assert!(std::time::Instant::now() < deadline, "not all sent in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut bodies: Vec<String> = fake
        .sent()
        .iter()
        .map(|b| b["body"].as_str().unwrap().to_string())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len() as i64, n);
    assert_eq!(fake.sent().len() as i64, n, "some message went out twice");
}

#[actix_web::test]
async fn forged_stale_and_unknown_webhooks_are_401_and_store_nothing() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let body = inbound("msg_forged", "hello");
    let cases = [
        (id, "whsec_wrong", now()),
        (id, SECRET, now() - 310),
        (id, SECRET, now() + 310),
        (id + 1000, SECRET, now()),
    ];
    for (account, secret, at) in cases {
        let (status, answer) = webhook(&app, account, secret, at, "del_1", &body).await;
        assert_error(status, &answer, 401, "NotAuthenticated");
    }
    // Unsigned.
    let (status, answer) = send(
        app.client
            .post(app.url(&format!("/webhooks/agentphone/{id}")))
            .json(&body),
    )
    .await;
    assert_error(status, &answer, 401, "NotAuthenticated");
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM messages").await, 0);
    // A refused delivery did not mark its ids seen: the genuine one is stored.
    let (status, answer) = webhook(&app, id, SECRET, now(), "del_1", &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("stored")),
        "{answer}"
    );
    // Malformed JSON and a body that is not an object are 400.
    for raw in ["{not json", "[1,2]"] {
        let ts = now().to_string();
        let req = app
            .client
            .post(app.url(&format!("/webhooks/agentphone/{id}")))
            .header("X-Webhook-Timestamp", &ts)
            .header(
                "X-Webhook-Signature",
                inbox_gateway::agentphone::signature::sign(SECRET, &ts, raw.as_bytes()),
            )
            .body(raw);
        let (status, answer) = send(req).await;
        assert_error(status, &answer, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn an_inbound_message_makes_its_contact_and_conversation_and_opens_it() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let mut body = inbound("msg_in_1", "Is this open?");
    body["data"]["mediaUrls"] = json!(["https://cdn.agentphone.test/a.jpg"]);
    let (status, answer) = webhook(&app, id, SECRET, now(), "del_in_1", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let page = get_ok(&app, "/conversations?channel=sms").await;
    let conversation = records(&page)[0].clone();
    assert_eq!(conversation["unread_count"], 1);
    assert_eq!(conversation["status"], "open");
    assert!(
        conversation["last_inbound_at"].is_string() && conversation["waiting_since"].is_string()
    );
    assert_eq!(conversation["last_message_preview"], "Is this open?");
    assert_eq!(
        conversation["metadata"]["conversationState"],
        json!({"stage": "new"})
    );
    assert_eq!(conversation["channel_account_id"], id);
    let contact = get_ok(&app, &format!("/contacts/{}", conversation["contact_id"])).await;
    assert_eq!(
        (contact["phone"].as_str(), contact["first_name"].as_str()),
        (Some(THEIR_NUMBER), Some("Grace"))
    );
    let conversation_id = conversation["id"].as_i64().unwrap();
    let messages = sms_messages(&app, conversation_id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["sender_type"], "contact");
    assert_eq!(messages[0]["message_type"], "image");
    assert_eq!(
        messages[0]["media"]["url"],
        "https://cdn.agentphone.test/a.jpg"
    );
    // Closed, then another message from the same thread: reopened, same conversation.
    patch_ok(
        &app,
        &format!("/conversations/{conversation_id}"),
        json!({"status": "closed", "unread_count": 0}),
    )
    .await;
    let (status, _) = webhook(
        &app,
        id,
        SECRET,
        now(),
        "del_in_2",
        &inbound("msg_in_2", "hello?"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let record = get_ok(&app, &format!("/conversations/{conversation_id}")).await;
    assert_eq!(
        (record["status"].as_str(), record["unread_count"].as_i64()),
        (Some("open"), Some(1))
    );
    assert_eq!(total_of(&app, "/conversations?channel=sms").await, 1);
    // A blocked conversation stays closed.
    patch_ok(
        &app,
        &format!("/conversations/{conversation_id}"),
        json!({"status": "closed", "blocked": true}),
    )
    .await;
    webhook(
        &app,
        id,
        SECRET,
        now(),
        "del_in_3",
        &inbound("msg_in_3", "let me in"),
    )
    .await;
    let record = get_ok(&app, &format!("/conversations/{conversation_id}")).await;
    assert_eq!(record["status"], "closed");
}

#[actix_web::test]
async fn redeliveries_store_one_message_even_ten_at_once() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let body = inbound("msg_dup", "only once");
    let at = now();
    let deliveries = (0..10).map(|_| webhook(&app, id, SECRET, at, "del_dup", &body));
    let answers = futures_util::future::join_all(deliveries).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let stored = answers
        .iter()
        .filter(|(_, a)| a["status"] == "stored")
        .count();
    assert_eq!(stored, 1, "{answers:?}");
    // The same message in another delivery, and the same delivery later: nothing new.
    let (_, again) = webhook(&app, id, SECRET, now(), "del_other", &body).await;
    assert_eq!(again["status"], "duplicate");
    let (_, again) = webhook(&app, id, SECRET, now(), "del_dup", &body).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM messages").await, 1);
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM conversations").await, 1);
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM contacts").await, 1);
}

#[actix_web::test]
async fn echoes_confirm_our_send_or_are_stored_once_as_outbound() {
    let app = spawn_app_with(|s| s.delivery_concurrency = 0).await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    // A thread we know, with a send of ours whose answer never came.
    webhook(&app, id, SECRET, now(), "del_a", &inbound("msg_a", "hi")).await;
    let conversation = records(&get_ok(&app, "/conversations?channel=sms").await)[0]["id"]
        .as_i64()
        .unwrap();
    let ours = send_text(&app, conversation, "our reply").await;
    let echo = |message_id: &str, text: &str| {
        json!({"event": "agent.message", "channel": "imessage", "data": {
            "messageId": message_id, "conversationId": "conv_77", "from": OUR_NUMBER, "to": THEIR_NUMBER,
            "message": text, "direction": "outbound"}})
    };
    let (_, answer) = webhook(
        &app,
        id,
        SECRET,
        now(),
        "del_echo1",
        &echo("msg_ours", "our reply"),
    )
    .await;
    assert_eq!(answer["status"], "confirmed", "{answer}");
    let confirmed = get_ok(&app, &format!("/conversation-messages-sms/{}", ours["id"])).await;
    assert_eq!(
        (
            confirmed["delivery_status"].as_str(),
            confirmed["external_id"].as_str()
        ),
        (Some("sent"), Some("msg_ours"))
    );
    assert_eq!(confirmed["transport"], "imessage");
    // An echo of a send made elsewhere: stored once, as outbound.
    for delivery in ["del_echo2", "del_echo3"] {
        webhook(
            &app,
            id,
            SECRET,
            now(),
            delivery,
            &echo("msg_elsewhere", "sent from the console"),
        )
        .await;
    }
    let messages = sms_messages(&app, conversation).await;
    let elsewhere: Vec<&Value> = messages
        .iter()
        .filter(|m| m["external_id"] == "msg_elsewhere")
        .collect();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(
        (
            elsewhere[0]["direction"].as_str(),
            elsewhere[0]["sender_type"].as_str()
        ),
        (Some("outbound"), Some("system"))
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| m["direction"] == "inbound")
            .count(),
        1
    );
    let record = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(
        record["unread_count"], 0,
        "our reply read the thread; echoes are not unread"
    );
}

#[actix_web::test]
async fn reactions_need_imessage_and_are_stored_both_ways() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    fake.script(vec![
        SendReply::Channel("sms"),
        SendReply::Channel("imessage"),
    ]);
    let over_sms = send_text(&app, conversation, "plain sms").await;
    let over_sms = wait_for(&app, over_sms["id"].as_i64().unwrap(), settled).await;
    let (status, body) = app
        .post(
            "/conversation-message-reactions",
            json!({"message_id": over_sms["id"], "reaction": "love"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let over_imessage = send_text(&app, conversation, "blue bubble").await;
    let over_imessage = wait_for(&app, over_imessage["id"].as_i64().unwrap(), settled).await;
    let (status, body) = app
        .post(
            "/conversation-message-reactions",
            json!({"message_id": over_imessage["id"], "reaction": "wink"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, reaction) = app
        .post(
            "/conversation-message-reactions",
            json!({"message_id": over_imessage["id"], "reaction": "love"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reaction}");
    assert_eq!(
        (
            reaction["message_type"].as_str(),
            reaction["reply_to_message_id"].as_i64()
        ),
        (Some("reaction"), over_imessage["id"].as_i64())
    );
    let reaction = wait_for(&app, reaction["id"].as_i64().unwrap(), settled).await;
    assert_eq!(reaction["delivery_status"], "sent", "{reaction}");
    let target = over_imessage["external_id"].as_str().unwrap();
    assert!(fake.requests().iter().any(|(m, p, b)| m == "POST"
        && p == &format!("/v1/messages/{target}/reactions")
        && b["reaction"] == "love"));
    // Another organization's message is not found.
    let other = app.new_tenant("Other").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/conversation-message-reactions",
            Some(json!({"message_id": over_imessage["id"], "reaction": "like"})),
            Some(&other.token),
        )
        .await;
    assert_error(status, &body, 404, "NotFound");
    // Their tapback on our message arrives by webhook and is stored on it.
    let tapback = json!({"event": "agent.reaction", "channel": "imessage", "data": {
        "messageId": target, "reactionType": "laugh", "fromNumber": THEIR_NUMBER, "direction": "inbound"}});
    let (_, answer) = webhook(&app, id, SECRET, now(), "del_r1", &tapback).await;
    assert_eq!(answer["status"], "stored", "{answer}");
    let messages = sms_messages(&app, conversation).await;
    let theirs: Vec<&Value> = messages
        .iter()
        .filter(|m| m["message_type"] == "reaction" && m["direction"] == "inbound")
        .collect();
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        (
            theirs[0]["text"].as_str(),
            theirs[0]["reply_to_message_id"].as_i64()
        ),
        (Some("laugh"), over_imessage["id"].as_i64())
    );
}

#[actix_web::test]
async fn a_group_keeps_its_roster_and_replies_go_to_the_group() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    let roster = json!([{"identifier": THEIR_NUMBER, "name": "Grace"}, {"identifier": "+15553334444", "name": null}]);
    let body = json!({"event": "agent.message", "channel": "imessage", "data": {
        "messageId": "msg_g1", "conversationId": "conv_g", "from": "+15553334444", "to": OUR_NUMBER,
        "message": "hi all", "direction": "inbound", "senderIdentifier": "+15553334444",
        "group": {"isGroup": true, "groupId": "grp_1", "groupName": "Team", "participants": roster}}});
    let (status, answer) = webhook(&app, id, SECRET, now(), "del_g1", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let conversation = records(&get_ok(&app, "/conversations?channel=sms").await)[0].clone();
    assert_eq!(conversation["is_group"], true);
    assert_eq!(conversation["participants"], roster);
    let conversation_id = conversation["id"].as_i64().unwrap();
    let messages = sms_messages(&app, conversation_id).await;
    assert_eq!(messages[0]["payload"]["senderIdentifier"], "+15553334444");
    let reply = send_text(&app, conversation_id, "hi team").await;
    wait_for(&app, reply["id"].as_i64().unwrap(), settled).await;
    assert_eq!(fake.sent()[0]["to_number"], "grp_1");
}

#[actix_web::test]
async fn typing_and_backgrounds_reach_agentphone() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    // No AgentPhone thread yet: a clear 400.
    let (status, body) = app
        .post(
            "/conversation-typing",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    fake.set_channel("imessage");
    let first = send_text(&app, conversation, "first").await;
    wait_for(&app, first["id"].as_i64().unwrap(), settled).await;
    let (status, body) = app
        .post(
            "/conversation-typing",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/conversation-backgrounds",
            json!({"conversation_id": conversation, "image_url": "http://insecure"}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post(
            "/conversation-backgrounds",
            json!({"conversation_id": conversation, "image_url": "https://img.test/bg.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let record = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(
        record["metadata"]["agentphone"]["background_url"],
        "https://img.test/bg.png"
    );
    let (status, body) = app
        .delete(&format!("/conversation-backgrounds/{conversation}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("POST /v1/conversations/") && p.ends_with("/typing")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("DELETE /v1/conversations/") && p.ends_with("/background"))
    );
    // Another organization's conversation is not found.
    let other = app.new_tenant("Other").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/conversation-typing",
            Some(json!({"conversation_id": conversation})),
            Some(&other.token),
        )
        .await;
    assert_error(status, &body, 404, "NotFound");
}

#[actix_web::test]
async fn webhooks_land_in_their_accounts_organization_only() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let ours = account(&app, &app.org, &fake).await;
    let other = app.new_tenant("Other").await;
    let theirs = account(&app, &other, &fake).await;
    patch_ok(
        &app,
        &format!("/channel-accounts/{ours}"),
        json!({"secrets": {"webhook_secret": "whsec_ours"}}),
    )
    .await;
    // Their account's URL with our secret: refused.
    let (status, _) = webhook(
        &app,
        theirs,
        "whsec_ours",
        now(),
        "del_x",
        &inbound("msg_x", "hi"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = webhook(
        &app,
        theirs,
        SECRET,
        now(),
        "del_y",
        &inbound("msg_y", "for them"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total_of(&app, "/conversations?channel=sms").await, 0);
    let (_, page) = app
        .call(
            Method::GET,
            "/conversations?channel=sms",
            None,
            Some(&other.token),
        )
        .await;
    assert_eq!(page["total"], 1);
    // The same AgentPhone message id on our account is ours, not a duplicate of theirs.
    let (_, answer) = webhook(
        &app,
        ours,
        "whsec_ours",
        now(),
        "del_y",
        &inbound("msg_y", "for us"),
    )
    .await;
    assert_eq!(answer["status"], "stored");
    assert_eq!(total_of(&app, "/conversations?channel=sms").await, 1);
}

#[actix_web::test]
async fn an_account_has_at_most_its_limit_of_sends_in_flight() {
    let app = spawn_app_with(|s| s.agentphone_account_concurrency = 2).await;
    let fake = FakeAgentPhone::start().await;
    fake.set_latency(Duration::from_millis(150));
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            send_text(&app, conversation, &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in ids {
        wait_for(&app, id, settled).await;
    }
    assert_eq!(fake.sent().len(), 8);
    assert_eq!(
        fake.max_concurrent_sends(),
        2,
        "the 16 delivery slots were held to the account's 2"
    );
}

#[actix_web::test]
async fn webhooks_are_not_counted_by_the_request_limit() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 5).await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    for i in 0..10 {
        let (status, answer) = webhook(
            &app,
            id,
            SECRET,
            now(),
            &format!("del_{i}"),
            &inbound(&format!("msg_{i}"), "hi"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM messages").await, 10);
}

/// A server killed (SIGKILL) while AgentPhone is taking its send: the message went out,
/// its outcome was never recorded. The next instance takes the job once its lease
/// ends, finds the send at AgentPhone and records it: one send, no second.
#[actix_web::test]
async fn a_server_killed_mid_send_leaves_one_send_that_the_next_one_finds() {
    let app = spawn_app_with(|s| {
        s.delivery_concurrency = 0;
        s.job_lease_secs = 2;
    })
    .await;
    let fake = FakeAgentPhone::start().await;
    fake.script(vec![SendReply::SentThenHang]);
    account(&app, &app.org, &fake).await;
    let conversation = sms_conversation(&app, &app.org).await;
    let queued = send_text(&app, conversation, "in flight").await;
    let id = queued["id"].as_i64().unwrap();
    let (mut server, _) = start_binary(
        &app.database_url,
        &[
            ("JWT_SECRET", app.jwt_secret.as_str()),
            ("APP__DELIVERY_CONCURRENCY", "2"),
            ("APP__JOB_LEASE_SECS", "2"),
            ("APP__AGENTPHONE_TIMEOUT_MS", "2000"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.sent().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the binary never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    let stuck = get_ok(&app, &format!("/conversation-messages-sms/{id}")).await;
    assert_eq!(stuck["delivery_status"], "sending", "{stuck}");
    another_instance(&app, |s| {
        s.job_lease_secs = 2;
    })
    .await;
    let sent = wait_for(&app, id, settled).await;
    assert_eq!(sent["delivery_status"], "sent", "{sent}");
    assert_eq!(sent["attempts"], 1);
    assert_eq!((fake.send_attempts(), fake.sent().len()), (1, 1));
}

#[actix_web::test]
async fn a_send_that_never_reached_agentphone_is_sent_when_it_can_be() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    // Nothing listens there: the connection is refused before anything is written.
    patch_ok(
        &app,
        &format!("/channel-accounts/{id}"),
        json!({"settings": {"agent_id": "agt_1", "base_url": "http://127.0.0.1:9"}}),
    )
    .await;
    let conversation = sms_conversation(&app, &app.org).await;
    let queued = send_text(&app, conversation, "eventually").await;
    let id_message = queued["id"].as_i64().unwrap();
    let waiting = wait_for(&app, id_message, |m| {
        m["attempts"] == 1 && m["delivery_status"] == "queued"
    })
    .await;
    assert_eq!(waiting["error"]["code"], "NOT_SENT", "{waiting}");
    patch_ok(
        &app,
        &format!("/channel-accounts/{id}"),
        json!({"settings": {"agent_id": "agt_1", "base_url": fake.base_url}}),
    )
    .await;
    let sent = wait_for(&app, id_message, settled).await;
    assert_eq!(
        (sent["delivery_status"].as_str(), sent["attempts"].as_i64()),
        (Some("sent"), Some(2))
    );
    assert_eq!(fake.sent().len(), 1);
}

#[actix_web::test]
async fn calls_and_shared_contacts_are_activity_and_unknown_events_are_acknowledged() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let id = account(&app, &app.org, &fake).await;
    webhook(&app, id, SECRET, now(), "del_m", &inbound("msg_m", "hi")).await;
    let call = json!({"event": "agent.call_ended", "data": {
        "from": THEIR_NUMBER, "to": OUR_NUMBER, "durationSeconds": 42, "direction": "inbound"}});
    let (_, answer) = webhook(&app, id, SECRET, now(), "del_call", &call).await;
    assert_eq!(answer["status"], "stored", "{answer}");
    let shared = json!({"event": "agent.contact_shared", "data": {"conversationId": "conv_77"}});
    let (_, answer) = webhook(&app, id, SECRET, now(), "del_shared", &shared).await;
    assert_eq!(answer["status"], "stored", "{answer}");
    let (status, answer) = webhook(
        &app,
        id,
        SECRET,
        now(),
        "del_new",
        &json!({"event": "agent.future_thing", "data": {}}),
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
    let conversation = records(&get_ok(&app, "/conversations?channel=sms").await)[0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(total_of(&app, "/conversations?channel=sms").await, 1);
    let activity: Vec<String> = sms_messages(&app, conversation)
        .await
        .iter()
        .filter(|m| m["message_type"] == "activity")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(activity.len(), 2, "{activity:?}");
    assert!(
        activity.contains(&"Call ended (42 s)".to_string())
            && activity.contains(&"Contact shared".to_string())
    );
    // Activity moves nothing: the preview is still the message.
    assert_eq!(
        get_ok(&app, &format!("/conversations/{conversation}")).await["last_message_preview"],
        "hi"
    );
}
