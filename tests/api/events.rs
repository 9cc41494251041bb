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
