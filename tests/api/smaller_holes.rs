//! The smaller holes of the security review, each closed: message creates read
//! their query string, `Idempotency-Key` is refused when unreadable, scoped by
//! caller and purged, and two first playground messages for one contact at once
//! end in one conversation.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

const PLAYGROUND: &str = "/conversation-messages-playground";

fn playground_body(contact: i64) -> Value {
    json!({"contact_id": contact, "sender_type": "user", "message_text": "hello"})
}

#[actix_web::test]
async fn message_creates_check_their_query_string() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let id = contact["id"].as_i64().unwrap();
    let (status, err) = app
        .post(
            &format!("{PLAYGROUND}?organization_id={}", other.org_id),
            playground_body(id),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    for junk in ["junk=1", "$select[]=nope"] {
        let (status, err) = app
            .post(&format!("{PLAYGROUND}?{junk}"), playground_body(id))
            .await;
        assert_error(status, &err, 400, "BadRequest");
    }
    let (_, sms) = channel_conversation(&app, &app.org, "sms").await;
    let (status, err) = app
        .post(
            &format!(
                "/conversation-messages-sms?organization_id={}",
                other.org_id
            ),
            json!({"conversation_id": sms, "message_text": "x"}),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    assert_eq!(
        sql_i64(&app, "SELECT COUNT(*) FROM messages").await,
        0,
        "nothing stored"
    );
    // The caller's own organization is fine.
    let (status, body) = app
        .post(
            &format!("{PLAYGROUND}?organization_id={}", app.org.org_id),
            playground_body(id),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[actix_web::test]
async fn idempotency_keys_are_readable_scoped_by_caller_and_purged() {
    let app = spawn_app().await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let id = contact["id"].as_i64().unwrap();
    let post = |token: String, key: HeaderValue| {
        let app = &app;
        async move {
            send(
                app.client
                    .post(app.url(PLAYGROUND))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&playground_body(id)),
            )
            .await
        }
    };
    // Not visible ASCII: refused, not silently ignored.
    let (status, err) = post(
        app.org.token.clone(),
        HeaderValue::from_bytes("clé-ключ".as_bytes()).unwrap(),
    )
    .await;
    assert_error(status, &err, 400, "BadRequest");
    assert_eq!(sql_i64(&app, "SELECT COUNT(*) FROM messages").await, 0);
    // The same key from another user of the organization is that user's own request.
    let agent = app.new_user(&app.org, "agent").await;
    let key = HeaderValue::from_static("order-42");
    let (status, first) = post(app.org.token.clone(), key.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post(app.org.token.clone(), key.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], first["id"], "replayed to its own sender");
    let (status, theirs) = post(agent.token.clone(), key.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["id"], first["id"], "never another user's answer");
    assert_eq!(theirs["sender_id"], agent.user_id);
    // Keys older than their 24 hours are purged.
    exec_sql(
        &app,
        "UPDATE idempotency_keys SET created_at = '2020-01-01 00:00:00+00:00'",
    )
    .await;
    let purged = inbox_gateway::messaging::idempotency::purge_expired(&app.db)
        .await
        .expect("purge");
    assert_eq!(purged, 2);
    assert_eq!(
        sql_i64(&app, "SELECT COUNT(*) FROM idempotency_keys").await,
        0
    );
}

#[actix_web::test]
async fn concurrent_first_playground_messages_share_one_conversation() {
    let app = spawn_app().await;
    for round in 0..3 {
        let contact = create_contact(&app, json!({"first_name": format!("C{round}")})).await;
        let id = contact["id"].as_i64().unwrap();
        let sends = (0..8).map(|_| app.post(PLAYGROUND, playground_body(id)));
        let answers = futures_util::future::join_all(sends).await;
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
        }
        let conversations: std::collections::HashSet<i64> = answers
            .iter()
            .map(|(_, b)| b["conversation_id"].as_i64().unwrap())
            .collect();
        assert_eq!(conversations.len(), 1, "round {round}: {conversations:?}");
        assert_eq!(
            sql_i64(
                &app,
                &format!(
                    "SELECT COUNT(*) FROM conversations WHERE contact_id = {id} AND channel = 'playground'"
                )
            )
            .await,
            1
        );
    }
}

/// A contact removal racing the insert of a conversation for that contact (another
/// transaction, not yet committed) waits for it and refuses with 409, instead of
/// deleting the contact and, by cascade, the conversation it never saw. PostgreSQL
/// only: SQLite runs one write at a time.
#[actix_web::test]
async fn a_contact_removal_never_cascades_a_conversation_created_meanwhile() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return;
    }
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let id = contact["id"].as_i64().unwrap();
    let other = inbox_gateway::db::connect(&app.database_url, 1)
        .await
        .expect("connect");
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "INSERT INTO conversations (organization_id, contact_id, channel, status, last_interaction_at, created_at, updated_at) \
         VALUES ({}, {id}, 'sms', 'open', now(), now(), now())",
        app.org.org_id
    ))
    .await
    .unwrap();
    let path = format!("/contacts/{id}");
    let removal = app.delete(&path);
    let commit = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        txn.commit().await.unwrap();
    };
    let ((status, body), ()) = futures_util::future::join(removal, commit).await;
    assert_error(status, &body, 409, "Conflict");
    assert_eq!(
        sql_i64(
            &app,
            &format!("SELECT COUNT(*) FROM conversations WHERE contact_id = {id}")
        )
        .await,
        1,
        "the conversation created meanwhile is still there"
    );
}
