//! `Idempotency-Key` on every create (an around hook of the app): the messaging
//! paths (transform-outgoing on every channel, SMS, playground), predefined
//! messages and every other service: a retry with the
//! same key and body answers the first result and stores nothing; the same key
//! with another body (or on another path) is a 409; keys belong to one
//! organization and live 24 hours; a preview uses no key.

use crate::helpers::*;
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// POSTs `body` as `tenant` with an `Idempotency-Key`.
async fn post_with_key(
    app: &TestApp,
    tenant: &Tenant,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    send(
        app.client
            .request(Method::POST, app.url(path))
            .bearer_auth(&tenant.token)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

/// The same, with the body sent as raw JSON text.
async fn post_raw_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: String,
) -> (StatusCode, Value) {
    send(
        app.request(Method::POST, path)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await
}

/// One create path, a conversation (or none) whose rows it writes, and two different bodies.
struct Case {
    path: String,
    conversation: Option<i64>,
    body: Value,
    other_body: Value,
}

async fn cases(app: &TestApp, tenant: &Tenant) -> Vec<Case> {
    let mut out = Vec::new();
    for channel in ["whatsapp", "instagram", "messenger", "webchat", "sms"] {
        let (_, conversation) = channel_conversation(app, tenant, channel).await;
        let hour_ago = Utc::now() - Duration::hours(1);
        set_conversation_time(app, conversation, "last_inbound_at", Some(hour_ago)).await;
        let path = if channel == "sms" {
            "/conversation-messages-sms".to_string()
        } else {
            format!("/conversation-messages-transform-outgoing-{channel}")
        };
        out.push(Case {
            path,
            conversation: Some(conversation),
            body: json!({"conversation_id": conversation, "message_text": "Your order shipped"}),
            other_body: json!({"conversation_id": conversation, "message_text": "Your order shipped!"}),
        });
    }
    let contact = create_contact_as(app, tenant, json!({"first_name": "Pat"})).await;
    let conversation = create_conversation(app, tenant.org_id, contact, "playground", "open").await;
    out.push(Case {
        path: "/conversation-messages-playground".into(),
        conversation: Some(conversation),
        body: json!({"contact_id": contact, "sender_type": "contact", "message_text": "Hello?"}),
        other_body: json!({"contact_id": contact, "sender_type": "user", "message_text": "Hello?"}),
    });
    out.push(Case {
        path: "/conversation-predefined-messages".into(),
        conversation: None,
        body: json!({"title": "Shipped", "content": "Your order shipped"}),
        other_body: json!({"title": "Shipped", "content": "Your order has shipped"}),
    });
    out
}

/// Rows the case's path writes: the conversation's messages, or the organization's canned replies.
async fn rows(app: &TestApp, tenant: &Tenant, case: &Case) -> i64 {
    match case.conversation {
        Some(conversation) => stored_messages(app, conversation).await,
        None => {
            sql_i64(
                app,
                &format!(
                    "SELECT COUNT(*) FROM predefined_messages WHERE organization_id = {}",
                    tenant.org_id
                ),
            )
            .await
        }
    }
}

#[actix_web::test]
async fn a_retry_with_the_same_key_answers_the_first_result_and_stores_nothing() {
    let app = spawn_app().await;
    let tenant = app.org.clone();
    for (i, case) in cases(&app, &tenant).await.iter().enumerate() {
        let key = format!("order-42-shipped-{i}");
        let (status, first) = post_with_key(&app, &tenant, &case.path, &key, &case.body).await;
        assert_eq!(status, StatusCode::CREATED, "{}: {first}", case.path);
        assert!(first["id"].is_i64(), "{first}");
        assert_eq!(rows(&app, &tenant, case).await, 1, "{}", case.path);
        let conversation_before = match case.conversation {
            Some(id) => conversation_record(&app, id).await,
            None => Value::Null,
        };

        for _ in 0..2 {
            let (status, again) = post_with_key(&app, &tenant, &case.path, &key, &case.body).await;
            assert_eq!(status, StatusCode::CREATED, "{}: {again}", case.path);
            assert_eq!(again, first, "{}: the first answer", case.path);
        }
        // The same body with its keys in another order is the same request.
        let mut fields: Vec<(String, Value)> = case
            .body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.reverse();
        let reordered = format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", json!(k)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let (status, again) = post_raw_with_key(&app, &case.path, &key, reordered).await;
        assert_eq!(status, StatusCode::CREATED, "{}: {again}", case.path);
        assert_eq!(again, first);
        assert_eq!(
            rows(&app, &tenant, case).await,
            1,
            "{}: retries store nothing",
            case.path
        );
        if let Some(id) = case.conversation {
            assert_eq!(
                conversation_record(&app, id).await,
                conversation_before,
                "{}: a retry does not touch the conversation",
                case.path
            );
        }

        // The same key with another body: 409, nothing stored.
        let (status, body) = post_with_key(&app, &tenant, &case.path, &key, &case.other_body).await;
        assert_error(status, &body, 409, "Conflict");
        assert_eq!(rows(&app, &tenant, case).await, 1, "{}", case.path);

        // Another key with the same body is another message.
        let (status, second) =
            post_with_key(&app, &tenant, &case.path, &format!("{key}-b"), &case.body).await;
        assert_eq!(status, StatusCode::CREATED, "{second}");
        assert_ne!(second["id"], first["id"]);
        // And without a key every request is a new one.
        let (status, third) = app.post(&case.path, case.body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{third}");
        assert_eq!(rows(&app, &tenant, case).await, 3, "{}", case.path);
    }
}

#[actix_web::test]
async fn the_playground_replay_does_not_count_the_message_twice() {
    let app = spawn_app().await;
    let contact = id_of(&create_contact(&app, json!({"first_name": "Pat"})).await);
    let body = json!({"contact_id": contact, "sender_type": "contact", "message_text": "Anyone?"});
    let path = "/conversation-messages-playground";
    let (status, first) = post_with_key(&app, &app.org, path, "pg-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_with_key(&app, &app.org, path, "pg-1", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    let conversation = first["conversation_id"].as_i64().unwrap();
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["unread_count"], 1);
    assert_eq!(total_of(&app, "/conversations?channel=playground").await, 1);
    assert_eq!(stored_messages(&app, conversation).await, 1);
}

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

#[actix_web::test]
async fn keys_belong_to_one_organization() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let ours = cases(&app, &app.org).await;
    let theirs = cases(&app, &other).await;
    for (our, their) in ours.iter().zip(&theirs) {
        let key = "shared-key-1";
        let (status, first) = post_with_key(&app, &app.org, &our.path, key, &our.body).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        // The other organization's identical key and body is its own request.
        let (status, mine) = post_with_key(&app, &other, &their.path, key, &their.body).await;
        assert_eq!(status, StatusCode::CREATED, "{}: {mine}", their.path);
        assert_ne!(mine["id"], first["id"]);
        assert_eq!(mine["organization_id"], other.org_id);
        assert_eq!(rows(&app, &other, their).await, 1);
        // The first organization's body under the same key never answers its record to
        // the other: a conflict with the other's own use of the key (its own answer when
        // the bodies are the same), or a conversation it cannot see.
        let (status, body) = post_with_key(&app, &other, &our.path, key, &our.body).await;
        if our.body == their.body {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body, mine);
        } else {
            assert_error(status, &body, 409, "Conflict");
        }
        assert_ne!(body["id"], first["id"]);
        assert_eq!(rows(&app, &app.org, our).await, 1);
        assert_eq!(rows(&app, &other, their).await, 1);
        // Cleanup for the next path: each organization keeps the key per path.
        exec_sql(&app, "DELETE FROM idempotency_keys").await;
    }
}

#[actix_web::test]
async fn a_key_used_on_another_path_is_a_conflict() {
    let app = spawn_app().await;
    let all = cases(&app, &app.org).await;
    let (webchat, sms) = (&all[3], &all[4]);
    let (status, _) = post_with_key(&app, &app.org, &webchat.path, "k-1", &webchat.body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = post_with_key(&app, &app.org, &sms.path, "k-1", &sms.body).await;
    assert_error(status, &body, 409, "Conflict");
    assert_eq!(rows(&app, &app.org, sms).await, 0);
}

#[actix_web::test]
async fn a_preview_neither_uses_nor_answers_a_key() {
    let app = spawn_app().await;
    let all = cases(&app, &app.org).await;
    let webchat = &all[3];
    let preview_path = format!("{}?$preview=true", webchat.path);
    let (status, preview) =
        post_with_key(&app, &app.org, &preview_path, "p-1", &webchat.other_body).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    // The key is still free: another body under it is stored, not a conflict.
    let (status, sent) = post_with_key(&app, &app.org, &webchat.path, "p-1", &webchat.body).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(rows(&app, &app.org, webchat).await, 1);
    assert_eq!(count_keys(&app).await, 1);
}

async fn count_keys(app: &TestApp) -> i64 {
    sql_i64(app, "SELECT COUNT(*) FROM idempotency_keys").await
}

#[actix_web::test]
async fn keys_are_kept_for_24_hours() {
    let app = spawn_app().await;
    let all = cases(&app, &app.org).await;
    let sms = &all[4];
    let (status, first) = post_with_key(&app, &app.org, &sms.path, "day-1", &sms.body).await;
    assert_eq!(status, StatusCode::CREATED);

    // 23 hours later it still answers the first result.
    age_keys(&app, Duration::hours(23)).await;
    let (status, again) = post_with_key(&app, &app.org, &sms.path, "day-1", &sms.body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    let (status, body) = post_with_key(&app, &app.org, &sms.path, "day-1", &sms.other_body).await;
    assert_error(status, &body, 409, "Conflict");

    // 25 hours later the key is forgotten: the request is a new one.
    age_keys(&app, Duration::hours(25)).await;
    let (status, later) = post_with_key(&app, &app.org, &sms.path, "day-1", &sms.other_body).await;
    assert_eq!(status, StatusCode::CREATED, "{later}");
    assert_ne!(later["id"], first["id"]);
    assert_eq!(later["text"], "Your order shipped!");
    // ... and the new answer is the one kept.
    let (status, again) = post_with_key(&app, &app.org, &sms.path, "day-1", &sms.other_body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, later);
    assert_eq!(rows(&app, &app.org, sms).await, 2);
}

/// Moves the creation time of every saved key to `age` ago. Setup only.
async fn age_keys(app: &TestApp, age: Duration) {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Query};
    let mut update = Query::update();
    update
        .table(Alias::new("idempotency_keys"))
        .value(Alias::new("created_at"), Utc::now() - age);
    app.db.execute(&update).await.expect("age keys");
}

#[actix_web::test]
async fn malformed_keys_are_refused() {
    let app = spawn_app().await;
    let all = cases(&app, &app.org).await;
    let webchat = &all[3];
    for key in ["".to_string(), "has space".into(), "k".repeat(256)] {
        let (status, body) =
            post_with_key(&app, &app.org, &webchat.path, &key, &webchat.body).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(rows(&app, &app.org, webchat).await, 0);
    let (status, _) = post_with_key(
        &app,
        &app.org,
        &webchat.path,
        &"k".repeat(255),
        &webchat.body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn concurrent_retries_store_one_message() {
    let app = spawn_app().await;
    let all = cases(&app, &app.org).await;
    let webchat = &all[3];
    let attempt = || post_with_key(&app, &app.org, &webchat.path, "burst-1", &webchat.body);
    let (a, b, c, d) = tokio::join!(attempt(), attempt(), attempt(), attempt());
    let answers = [a, b, c, d];
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert!(!created.is_empty(), "{answers:?}");
    for (status, body) in &answers {
        match *status {
            StatusCode::CREATED => assert_eq!(body, created[0]),
            _ => assert_error(*status, body, 409, "Conflict"),
        }
    }
    assert_eq!(rows(&app, &app.org, webchat).await, 1, "{answers:?}");
}

/// Every other create honours the key too: the same key and body answer the first
/// record and store nothing more; another body under it is a 409 and stores nothing.
#[actix_web::test]
async fn every_create_honours_the_key() {
    let app = spawn_app().await;
    let pipeline = |name: &str| json!({"name": name, "stages": [{"name": "New"}]});
    let user = |email: &str| json!({"email": email, "password": "agent-password"});
    for (path, table, body, other) in [
        (
            "/users",
            "users",
            user("key-a@acme.test"),
            user("key-b@acme.test"),
        ),
        (
            "/api-keys",
            "api_keys",
            json!({"name": "a"}),
            json!({"name": "b"}),
        ),
        (
            "/contacts",
            "contacts",
            json!({"first_name": "A"}),
            json!({"first_name": "B"}),
        ),
        ("/tags", "tags", json!({"name": "a"}), json!({"name": "b"})),
        (
            "/ai-assistants",
            "ai_assistants",
            json!({"name": "a"}),
            json!({"name": "b"}),
        ),
        ("/pipelines", "pipelines", pipeline("a"), pipeline("b")),
        (
            "/conversation-views",
            "conversation_views",
            json!({"name": "a", "query": {"status": "open"}}),
            json!({"name": "b", "query": {"status": "open"}}),
        ),
    ] {
        let count = format!("SELECT COUNT(*) FROM {table}");
        let before = sql_i64(&app, &count).await;
        let key = format!("key{path}");
        let (status, first) = post_with_key(&app, &app.org, path, &key, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {first}");
        let (status, again) = post_with_key(&app, &app.org, path, &key, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {again}");
        assert_eq!(again, first, "{path}: the first answer, replayed");
        let (status, conflict) = post_with_key(&app, &app.org, path, &key, &other).await;
        assert_error(status, &conflict, 409, "Conflict");
        assert_eq!(sql_i64(&app, &count).await, before + 1, "{path}: one row");
    }
    assert_eq!(count_keys(&app).await, 7, "one key per create");
}
