//! Successful writes record Feathers events in the outbox, one per record, in
//! the write's own transaction.

use crate::helpers::*;
use inbox_gateway::events::outbox;
use serde_json::json;

#[actix_web::test]
async fn writes_publish_one_event_per_record() {
    let app = spawn_app().await;
    let created = app.create("/people", json!({"name": "Ev", "age": 1})).await;
    let (status, _) = app
        .patch(&format!("/people/{}", created["id"]), json!({"age": 2}))
        .await;
    assert_eq!(status, 200);
    app.create(
        "/people-multi",
        json!([{"name": "A", "created": true}, {"name": "B", "created": true}]),
    )
    .await;
    let (status, removed) = app.delete("/people-multi?created=true").await;
    assert_eq!(status, 200);
    assert_eq!(removed.as_array().unwrap().len(), 2);
    let (status, _) = app.patch("/people/999999", json!({"age": 3})).await;
    assert_eq!(status, 404, "a failed write publishes nothing");

    let mut seen = Vec::new();
    for event in outbox::after(&app.db, None, None, 0, 1000).await.unwrap() {
        assert_eq!(event.organization_id, app.org.org_id);
        seen.push((
            event.path,
            event.event,
            event.data["name"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let expected = [
        ("people", "created", "Ev"),
        ("people", "patched", "Ev"),
        ("people-multi", "created", "A"),
        ("people-multi", "created", "B"),
        ("people-multi", "removed", "A"),
        ("people-multi", "removed", "B"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(p, e, n)| (p.to_string(), e.to_string(), n.to_string()))
        .collect();
    assert_eq!(seen, expected);
}

/// Events never carry what an answer shows its caller alone: a new API key's
/// plaintext, a login's access token.
#[actix_web::test]
async fn events_carry_no_secret() {
    let app = spawn_app().await;
    let created = app.create("/api-keys", json!({"name": "ci"})).await;
    let key = created["key"].as_str().expect("the creator sees the key");
    let token = app.login(&app.org.email, "admin-password").await;
    let mut seen = 0;
    for event in outbox::after(&app.db, None, None, 0, 1000).await.unwrap() {
        seen += 1;
        let text = event.data.to_string();
        assert!(!text.contains(key), "{}: {text}", event.path);
        assert!(!text.contains(&token), "{}: {text}", event.path);
        assert_eq!(event.organization_id, app.org.org_id);
    }
    assert_eq!(seen, 1, "the key's created event, without the key");
}

/// The events recorded since `after`, as `(path, event, id)`.
async fn recorded(app: &TestApp, after: i64) -> Vec<(String, String, i64)> {
    (outbox::after(&app.db, None, None, after, 10_000)
        .await
        .unwrap())
    .into_iter()
    .map(|e| (e.path, e.event, e.data["id"].as_i64().unwrap_or(-1)))
    .collect()
}

fn ev(path: &str, event: &str, id: i64) -> (String, String, i64) {
    (path.to_string(), event.to_string(), id)
}

/// Every write of every service records its events, side effects included, in the
/// order they happened, with the actor; a refused write and a replayed
/// `Idempotency-Key` record nothing.
#[actix_web::test]
async fn every_write_records_its_events_side_effects_included() {
    let app = spawn_app().await;
    let last = || async { outbox::last_seq(&app.db).await.unwrap() };

    let tag = app.create("/tags", json!({"name": "vip"})).await;
    let tag_id = tag["id"].as_i64().unwrap();
    let contact = app
        .create(
            "/contacts",
            json!({"first_name": "Ada", "phone": "+15550001111", "tag_ids": [tag_id]}),
        )
        .await;
    let contact_id = contact["id"].as_i64().unwrap();
    let events = recorded(&app, 0).await;
    assert_eq!(
        events,
        vec![
            ev("tags", "created", tag_id),
            ev("contacts", "created", contact_id)
        ]
    );
    let stored = outbox::after(&app.db, None, None, 0, 10).await.unwrap();
    assert_eq!(
        stored[1].data["tag_ids"],
        json!([tag_id]),
        "the record as the create answered it"
    );
    assert_eq!(
        stored[1].actor,
        json!({"type": "user", "id": app.org.user_id})
    );

    // A playground message creates the conversation, the message, and moves the conversation.
    let before = last().await;
    let message = app
        .create(
            "/conversation-messages-playground",
            json!({"contact_id": contact_id, "sender_type": "contact", "message_text": "hi"}),
        )
        .await;
    let (message_id, conversation) = (
        message["id"].as_i64().unwrap(),
        message["conversation_id"].as_i64().unwrap(),
    );
    assert_eq!(
        recorded(&app, before).await,
        vec![
            ev("conversations", "created", conversation),
            ev("conversation-messages-playground", "created", message_id),
            ev("conversations", "patched", conversation),
        ]
    );
    let patched = outbox::after(&app.db, None, None, before, 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        patched.data["unread_count"], 1,
        "the conversation as it is after the message"
    );
    assert_eq!(patched.data["last_message_preview"], "hi");

    // A contact change patches the conversations that embed it.
    let before = last().await;
    patch_ok(
        &app,
        &format!("/contacts/{contact_id}"),
        json!({"first_name": "Ade"}),
    )
    .await;
    let events = recorded(&app, before).await;
    assert_eq!(
        events,
        vec![
            ev("conversations", "patched", conversation),
            ev("contacts", "patched", contact_id)
        ]
    );
    let embedded = outbox::after(&app.db, None, None, before, 10)
        .await
        .unwrap();
    assert_eq!(embedded[0].data["contact"]["first_name"], "Ade");

    // A conversation patch, then a refused one (nothing recorded).
    let before = last().await;
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"status": "closed"}),
    )
    .await;
    let (status, _) = app
        .patch(
            &format!("/conversations/{conversation}"),
            json!({"unread_count": -1}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        recorded(&app, before).await,
        vec![ev("conversations", "patched", conversation)]
    );

    // A message removal moves the preview; a conversation removal takes its messages.
    let second = app
        .create(
            "/conversation-messages-playground",
            json!({"contact_id": contact_id, "sender_type": "user", "message_text": "reply"}),
        )
        .await;
    let second_id = second["id"].as_i64().unwrap();
    let before = last().await;
    let (status, _) = app
        .delete(&format!("/conversation-messages-playground/{second_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        recorded(&app, before).await,
        vec![
            ev("conversation-messages-playground", "removed", second_id),
            ev("conversations", "patched", conversation),
        ]
    );
    let before = last().await;
    let (status, _) = app.delete(&format!("/conversations/{conversation}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        recorded(&app, before).await,
        vec![
            ev("conversation-messages-playground", "removed", message_id),
            ev("conversations", "removed", conversation),
        ]
    );

    // The other services, one write each way; a replayed create records nothing new.
    let before = last().await;
    let mut expected = Vec::new();
    for (path, body, patch) in [
        (
            "ai-assistants",
            json!({"name": "Bot"}),
            json!({"name": "Bot 2"}),
        ),
        (
            "pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}]}),
            json!({"name": "Sales 2"}),
        ),
        (
            "conversation-views",
            json!({"name": "Mine", "query": {"status": "open"}}),
            json!({"name": "Mine 2"}),
        ),
        (
            "conversation-predefined-messages",
            json!({"title": "Hi", "content": "Hello"}),
            json!({"title": "Hey"}),
        ),
        (
            "users",
            json!({"email": "agent-ev@acme.test", "password": "agent-password", "first_name": "Ag"}),
            json!({"first_name": "Ag 2"}),
        ),
        ("api-keys", json!({"name": "ci"}), json!(null)),
        ("tags", json!({"name": "new"}), json!({"name": "newer"})),
    ] {
        let created = app.create(&format!("/{path}"), body).await;
        let id = created["id"].as_i64().unwrap();
        expected.push(ev(path, "created", id));
        if !patch.is_null() {
            patch_ok(&app, &format!("/{path}/{id}"), patch).await;
            expected.push(ev(path, "patched", id));
        }
        let (status, body) = app.delete(&format!("/{path}/{id}")).await;
        assert_eq!(status, 200, "{path}: {body}");
        expected.push(ev(path, "removed", id));
    }
    let request = |key: &str| {
        app.request(reqwest::Method::POST, "/tags")
            .header("Idempotency-Key", key)
            .json(&json!({"name": "once"}))
    };
    let (status, once) = send(request("k-1")).await;
    assert_eq!(status, 201);
    let (status, again) = send(request("k-1")).await;
    assert_eq!((status, &again), (reqwest::StatusCode::CREATED, &once));
    expected.push(ev("tags", "created", once["id"].as_i64().unwrap()));
    assert_eq!(recorded(&app, before).await, expected);
}
