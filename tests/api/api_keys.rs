//! `/api-keys`: admins create machine keys, shown once; a key authenticates as its
//! user in its organization through `x-api-key`; removing it revokes it.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Calls `path` with an `x-api-key` header and no other credentials.
async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("x-api-key", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    send(req).await
}

fn key_of(record: &Value) -> String {
    record["key"]
        .as_str()
        .unwrap_or_else(|| panic!("the create answer shows the key: {record}"))
        .to_string()
}

fn assert_no_secret(record: &Value) {
    assert!(record.get("key").is_none(), "key shown again: {record}");
    assert!(record.get("key_hash").is_none(), "key_hash shown: {record}");
}

#[actix_web::test]
async fn admin_creates_a_key_shown_once() {
    let app = spawn_app().await;
    let (status, created) = app.post("/api-keys", json!({"name": "Zapier"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = key_of(&created);
    assert!(key.len() >= 32, "a long random key: {key}");
    assert_eq!(created["name"], "Zapier");
    assert_eq!(
        created["user_id"], app.org.user_id,
        "defaults to the caller"
    );
    assert_eq!(created["organization_id"], app.org.org_id);
    assert_eq!(created["key_prefix"].as_str(), Some(&key[..8]));
    assert_eq!(created["last_used_at"], Value::Null);
    assert!(created.get("key_hash").is_none(), "{created}");
    let id = created["id"].as_i64().expect("numeric id");

    let (status, page) = app.get("/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
    assert_eq!(ids(&page), [id]);
    for record in records(&page) {
        assert_no_secret(record);
    }
    let (status, got) = app.get(&format!("/api-keys/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_no_secret(&got);
    assert_eq!(got["key_prefix"], created["key_prefix"]);
    let (status, err) = app.get("/api-keys?$select[]=key_hash").await;
    assert_error(status, &err, 400, "BadRequest");

    // Two keys are different.
    let (_, second) = app.post("/api-keys", json!({"name": "Make"})).await;
    assert_ne!(key_of(&second), key);

    // The name is required; the key and its hash are not for clients to set.
    for body in [
        json!({}),
        json!({"name": 5}),
        json!({"name": "x", "key_hash": "abc"}),
        json!({"name": "x", "key": "igk_mine"}),
        json!({"name": "x", "key_prefix": "igk_mine"}),
    ] {
        let (status, err) = app.post("/api-keys", body.clone()).await;
        assert_error(status, &err, 400, "BadRequest");
    }
    let (_, page) = app.get("/api-keys").await;
    assert_eq!(page["total"], 2);
}

#[actix_web::test]
async fn a_key_authenticates_as_its_user_in_its_organization() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let other = app.new_tenant("Other").await;
    let (_, created) = app.post("/api-keys", json!({"name": "Integration"})).await;
    let key = key_of(&created);

    let (status, page) = with_key(&app, Method::GET, "/users", &key, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut found = ids(&page);
    found.sort();
    assert_eq!(found, [app.org.user_id, agent.user_id]);
    let (status, me) = with_key(
        &app,
        Method::GET,
        &format!("/users/{}", app.org.user_id),
        &key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], app.org.email);
    let (status, err) = with_key(
        &app,
        Method::GET,
        &format!("/users/{}", other.user_id),
        &key,
        None,
    )
    .await;
    assert_error(status, &err, 404, "NotFound");

    // What it writes belongs to the key's organization.
    let (status, person) = with_key(
        &app,
        Method::POST,
        "/people",
        &key,
        Some(json!({"name": "ByKey"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{person}");
    let (_, mine) = app.get("/people").await;
    assert_eq!(mine, json!([person]));
    let (_, theirs) = app.call_as(&other, Method::GET, "/people", None).await;
    assert_eq!(theirs, json!([]));

    // A key of the other organization sees only that organization.
    let (status, their_key) = app
        .call_as(
            &other,
            Method::POST,
            "/api-keys",
            Some(json!({"name": "Theirs"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, page) = with_key(&app, Method::GET, "/users", &key_of(&their_key), None).await;
    assert_eq!(ids(&page), [other.user_id]);
    let (_, people) = with_key(&app, Method::GET, "/people", &key_of(&their_key), None).await;
    assert_eq!(people, json!([]));

    // A key made for an agent has the agent's rights.
    let (status, agent_key) = app
        .post(
            "/api-keys",
            json!({"name": "Agent's", "user_id": agent.user_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent_key}");
    assert_eq!(agent_key["user_id"], agent.user_id);
    let agent_key = key_of(&agent_key);
    let (status, _) = with_key(&app, Method::GET, "/users", &agent_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = with_key(
        &app,
        Method::POST,
        "/users",
        &agent_key,
        Some(json!({"email": "by-key@example.test", "password": "long-enough"})),
    )
    .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = with_key(&app, Method::GET, "/api-keys", &agent_key, None).await;
    assert_error(status, &err, 403, "Forbidden");
}

#[actix_web::test]
async fn unknown_keys_are_401() {
    let app = spawn_app().await;
    let (_, created) = app.post("/api-keys", json!({"name": "Real"})).await;
    let key = key_of(&created);
    let mut altered = key.clone();
    altered.replace_range(key.len() - 1.., if key.ends_with('0') { "1" } else { "0" });
    for bad in [
        "garbage",
        "igk_0000000000000000000000000000000000000000",
        altered.as_str(),
        &key[..8],
    ] {
        let (status, err) = with_key(&app, Method::GET, "/users", bad, None).await;
        assert_error(status, &err, 401, "NotAuthenticated");
    }
}

#[actix_web::test]
async fn agents_cannot_see_or_manage_keys() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let (_, created) = app.post("/api-keys", json!({"name": "Admin's"})).await;
    let id = created["id"].as_i64().unwrap();

    for (method, path, body) in [
        (Method::GET, "/api-keys".to_string(), None),
        (Method::GET, format!("/api-keys/{id}"), None),
        (
            Method::POST,
            "/api-keys".to_string(),
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, format!("/api-keys/{id}"), None),
    ] {
        let (status, err) = app.call_as(&agent, method.clone(), &path, body).await;
        assert_error(status, &err, 403, "Forbidden");
        assert!(err.get("key").is_none());
    }
    let (_, page) = app.get("/api-keys").await;
    assert_eq!(ids(&page), [id], "nothing created or removed");
}

#[actix_web::test]
async fn removing_a_key_revokes_it() {
    let app = spawn_app().await;
    let (_, created) = app.post("/api-keys", json!({"name": "Temporary"})).await;
    let (_, kept) = app.post("/api-keys", json!({"name": "Kept"})).await;
    let key = key_of(&created);
    let id = created["id"].as_i64().unwrap();
    let (status, _) = with_key(&app, Method::GET, "/users", &key, None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, removed) = app.delete(&format!("/api-keys/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["id"], id);
    assert_eq!(removed["name"], "Temporary");
    assert_no_secret(&removed);

    let (status, err) = with_key(&app, Method::GET, "/users", &key, None).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    let (status, err) = app.get(&format!("/api-keys/{id}")).await;
    assert_error(status, &err, 404, "NotFound");
    let (status, _) = with_key(&app, Method::GET, "/users", &key_of(&kept), None).await;
    assert_eq!(status, StatusCode::OK, "the other key still works");
}

#[actix_web::test]
async fn a_key_for_a_user_of_another_organization_is_unprocessable() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    for user_id in [other.user_id, 999_999] {
        let (status, err) = app
            .post("/api-keys", json!({"name": "Cross", "user_id": user_id}))
            .await;
        assert_error(status, &err, 422, "Unprocessable");
        assert_eq!(err["data"]["rule"], "reference_in_organization");
        assert!(err.get("key").is_none());
    }
    let (_, page) = app.get("/api-keys").await;
    assert_eq!(page["total"], 0);
    let (_, page) = app.call_as(&other, Method::GET, "/api-keys", None).await;
    assert_eq!(page["total"], 0);
}

#[actix_web::test]
async fn keys_of_another_organization_are_invisible() {
    let app = spawn_app().await;
    let (_, created) = app.post("/api-keys", json!({"name": "First's"})).await;
    let id = created["id"].as_i64().unwrap();
    let key = key_of(&created);
    let other = app.new_tenant("Other").await;
    let (_, theirs) = app
        .call_as(
            &other,
            Method::POST,
            "/api-keys",
            Some(json!({"name": "Other's"})),
        )
        .await;

    let (status, page) = app.call_as(&other, Method::GET, "/api-keys", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), [theirs["id"].as_i64().unwrap()]);
    let (_, page) = app.get("/api-keys").await;
    assert_eq!(ids(&page), [id]);

    for method in [Method::GET, Method::DELETE] {
        let (status, err) = app
            .call_as(&other, method.clone(), &format!("/api-keys/{id}"), None)
            .await;
        assert_error(status, &err, 404, "NotFound");
        assert_eq!(
            err["message"],
            format!("No record found for id '{id}'"),
            "{method}"
        );
    }
    let (status, _) = with_key(&app, Method::GET, "/users", &key, None).await;
    assert_eq!(status, StatusCode::OK, "the key survived");

    let mine = app.org.org_id;
    let (status, err) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/api-keys?organization_id={mine}"),
            None,
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = app
        .call_as(
            &other,
            Method::DELETE,
            &format!("/api-keys/{}?organization_id={mine}", theirs["id"]),
            None,
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = app
        .call_as(
            &other,
            Method::POST,
            "/api-keys",
            Some(json!({"name": "Planted", "organization_id": mine})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (_, page) = app.get("/api-keys").await;
    assert_eq!(ids(&page), [id], "nothing was planted");

    let (status, page) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/api-keys?organization_id={}", other.org_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
}
