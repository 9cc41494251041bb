//! No request can hold the database or answer 500 through the size of what it
//! asks: patterns, branches, lists and stored views are bounded (400 beyond), a
//! dangling LIKE escape is refused, and NUL characters are refused wherever they
//! come in (query, JSON body, form body, unauthenticated login).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn nul_characters_are_bad_requests_everywhere() {
    let app = spawn_app().await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let bodies = [
        ("/contacts", json!({"first_name": "a\u{0}b"})),
        ("/tags", json!({"name": "x\u{0}"})),
        (
            "/contacts",
            json!({"first_name": "a", "custom_fields_by_name": {"k\u{0}": "v"}}),
        ),
        (
            "/contacts",
            json!({"first_name": "a", "custom_fields_by_name": {"k": ["v\u{0}"]}}),
        ),
        (
            "/conversation-predefined-messages",
            json!({"title": "t", "content": "c\u{0}"}),
        ),
        (
            "/conversation-views",
            json!({"name": "v", "query": {"external_id": "a\u{0}"}}),
        ),
        (
            "/conversation-messages-playground",
            json!({"contact_id": contact["id"], "sender_type": "user", "message_text": "hi\u{0}"}),
        ),
    ];
    for (path, body) in bodies {
        let (status, err) = app.post(path, body.clone()).await;
        assert_error(status, &err, 400, "BadRequest");
        assert!(
            err["message"].as_str().unwrap().contains("NUL"),
            "{path} {body}: {err}"
        );
    }
    // A form body, query filters and search terms.
    let (status, err) = send(
        app.request(Method::POST, "/contacts")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("first_name=%00"),
    )
    .await;
    assert_error(status, &err, 400, "BadRequest");
    for query in [
        "/contacts?first_name=%00",
        "/users?email[$like]=%25%00%25",
        "/conversations?searchTerm=ab%00",
    ] {
        let (status, err) = app.get(query).await;
        assert_error(status, &err, 400, "BadRequest");
    }
    // Unauthenticated: the login email.
    let (status, err) = app
        .call(
            Method::POST,
            "/authentication",
            Some(json!({"strategy": "local", "email": "a\u{0}@example.com", "password": "x"})),
            None,
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
    assert_eq!(total_of(&app, "/contacts").await, 1, "nothing was stored");
}

#[actix_web::test]
async fn like_patterns_are_bounded_and_escape_the_same_on_both_databases() {
    let app = spawn_app().await;
    for name in ["100% sure", "100x sure", "back\\slash"] {
        create_contact(&app, json!({"first_name": name})).await;
    }
    let total = |q: String| {
        let app = &app;
        async move { total_of(app, &format!("/contacts?{q}")).await }
    };
    // `\%` is a literal percent sign, `\\` a backslash, on SQLite as on PostgreSQL.
    assert_eq!(
        total(format!("first_name[$like]={}", enc("100\\%%"))).await,
        1
    );
    assert_eq!(total(format!("first_name[$like]={}", enc("100%"))).await, 2);
    assert_eq!(
        total(format!("first_name[$ilike]={}", enc("%K\\\\S%"))).await,
        1
    );
    // A dangling escape and an overlong pattern are refused, not a 500.
    for pattern in ["abc\\".to_string(), format!("%{}", "a".repeat(100))] {
        let (status, err) = app
            .get(&format!("/contacts?first_name[$like]={}", enc(&pattern)))
            .await;
        assert_error(status, &err, 400, "BadRequest");
        let (status, err) = app
            .get(&format!("/users?email[$ilike]={}", enc(&pattern)))
            .await;
        assert_error(status, &err, 400, "BadRequest");
    }
    let (status, err) = app
        .get(&format!("/conversations?searchTerm={}", "a".repeat(101)))
        .await;
    assert_error(status, &err, 400, "BadRequest");
    // The longest pattern allowed, over long texts, answers promptly.
    for i in 0..30 {
        app.create(
            "/conversation-predefined-messages",
            json!({"title": format!("t{i}"), "content": "a".repeat(10_000)}),
        )
        .await;
    }
    let started = std::time::Instant::now();
    let (status, _) = app
        .get(&format!(
            "/conversation-predefined-messages?content[$like]={}",
            enc(&format!("%{}b", "a".repeat(98)))
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn branches_lists_and_conditions_are_bounded() {
    let app = spawn_app().await;
    let or = |n: usize| {
        (0..n)
            .map(|i| format!("$or[{i}][id]={i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    for path in ["/conversations", "/contacts", "/tags"] {
        let (status, _) = app.get(&format!("{path}?{}", or(50))).await;
        assert_eq!(status, StatusCode::OK, "{path}: 50 branches");
        for n in [51, 497] {
            let (status, err) = app.get(&format!("{path}?{}", or(n))).await;
            assert_error(status, &err, 400, "BadRequest");
        }
    }
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("id[$in][{i}]={i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (status, _) = app.get(&format!("/contacts?{}", list(500))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = app.get(&format!("/contacts?{}", list(501))).await;
    assert_error(status, &err, 400, "BadRequest");
    // Lists in bodies.
    let tags: Vec<i64> = (1..=101).collect();
    let (status, err) = app
        .post("/contacts", json!({"first_name": "a", "tag_ids": tags}))
        .await;
    assert_error(status, &err, 400, "BadRequest");
    let stages: Vec<Value> = (0..51).map(|i| json!({"name": format!("s{i}")})).collect();
    let (status, err) = app
        .post("/pipelines", json!({"name": "p", "stages": stages}))
        .await;
    assert_error(status, &err, 400, "BadRequest");
}

#[actix_web::test]
async fn stored_views_are_validated_as_they_are_used() {
    let app = spawn_app().await;
    // Too large a list, and nesting one level short of the maximum once wrapped.
    let ids: Vec<i64> = (0..501).collect();
    let (status, err) = app
        .post(
            "/conversation-views",
            json!({"name": "big", "query": {"contact_id": {"$in": ids}}}),
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
    let mut deep = json!({"status": "open"});
    for _ in 0..5 {
        deep = json!({"$or": [deep]});
    }
    let (status, err) = app
        .post(
            "/conversation-views",
            json!({"name": "deep", "query": deep}),
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
    // Whatever is saved can be used: first and deep pages, with a search term.
    let ids: Vec<i64> = (0..400).collect();
    let mut nested = json!({"status": "open"});
    for _ in 0..2 {
        nested = json!({"$or": [nested, {"contact_id": {"$in": ids.clone()}}]});
    }
    for query in [json!({"contact_id": {"$in": ids}}), nested] {
        let (status, view) = app
            .post("/conversation-views", json!({"name": "v", "query": query}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{view}");
        for extra in ["", "&$skip=1", "&searchTerm=ada"] {
            let (status, page) = app
                .get(&format!("/conversations?view_id={}{extra}", view["id"]))
                .await;
            assert_eq!(status, StatusCode::OK, "{extra}: {page}");
        }
    }
}
