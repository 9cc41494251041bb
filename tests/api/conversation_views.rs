//! `/conversation-views` (saved views: a name and a stored conversations query)
//! and applying one with `GET /conversations?view_id=N`.

use crate::helpers::*;
use chrono::{Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

fn id_set(body: &Value) -> Vec<i64> {
    let mut v = ids(body);
    v.sort();
    v
}

#[actix_web::test]
async fn create_stores_the_query() {
    let app = spawn_app().await;
    let query = json!({
        "status": "open",
        "channel": {"$ne": "playground"},
        "assigned_user_id": null,
        "$or": [{"unread_count": {"$gt": 0}}, {"waitingResponseOnly": true}],
        "$sort": {"created_at": 1},
        "$limit": 25,
    });
    let view = app
        .create(
            "/conversation-views",
            json!({"name": "Unassigned", "query": query}),
        )
        .await;
    assert_eq!(view["name"], "Unassigned");
    assert_eq!(view["query"], query);
    assert_eq!(view["owner_user_id"], app.org.user_id);
    assert_eq!(view["organization_id"], app.org.org_id);

    let fetched = get_ok(&app, &format!("/conversation-views/{}", id_of(&view))).await;
    assert_eq!(fetched["query"], query);
    let own_org = app
        .create(
            "/conversation-views",
            json!({"name": "Own org", "query": {"organization_id": app.org.org_id}}),
        )
        .await;
    assert_eq!(own_org["owner_user_id"], app.org.user_id);
    let page = get_ok(&app, "/conversation-views?name[$ilike]=un%25").await;
    assert_eq!(ids(&page), vec![id_of(&view)]);
    let page = get_ok(
        &app,
        &format!("/conversation-views?owner_user_id={}", app.org.user_id),
    )
    .await;
    assert_eq!(page["total"], 2);
}

#[actix_web::test]
async fn invalid_stored_queries_are_refused() {
    let app = spawn_app().await;
    for query in [
        json!({"nope": 1}),
        json!({"status": "pending"}),
        json!({"assigned_user_id": "me"}),
        json!({"unread_count": {"$regex": "1"}}),
        json!({"$sort": {"contact": 1}}),
        json!({"$select": ["secret"]}),
        json!({"searchTerm": "a"}),
        json!({"view_id": 1}),
        json!("status=open"),
        json!(["status", "open"]),
        json!(null),
    ] {
        let (status, body) = app
            .post(
                "/conversation-views",
                json!({"name": "Bad", "query": query.clone()}),
            )
            .await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["errors"]["query"].is_array(), "{query}: {body}");
    }
    let (status, body) = app
        .post("/conversation-views", json!({"name": "No query"}))
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post("/conversation-views", json!({"query": {"status": "open"}}))
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post(
            "/conversation-views",
            json!({"name": "V", "query": {}, "owner_user_id": 1}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");

    let other = app.new_tenant("Other").await;
    for query in [
        json!({"organization_id": other.org_id}),
        json!({"$or": [{"status": "open"}, {"organization_id": other.org_id}]}),
        json!({"organization_id": {"$in": [app.org.org_id, other.org_id]}}),
    ] {
        let (status, body) = app
            .post(
                "/conversation-views",
                json!({"name": "Theirs", "query": query}),
            )
            .await;
        assert_error(status, &body, 403, "Forbidden");
    }
    assert_eq!(total_of(&app, "/conversation-views?$limit=0").await, 0);

    // The same rules on patch; the stored query is unchanged.
    let view = app
        .create(
            "/conversation-views",
            json!({"name": "Open", "query": {"status": "open"}}),
        )
        .await;
    let path = format!("/conversation-views/{}", id_of(&view));
    let (status, body) = app.patch(&path, json!({"query": {"nope": 1}})).await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .patch(&path, json!({"query": {"organization_id": other.org_id}}))
        .await;
    assert_error(status, &body, 403, "Forbidden");
    assert_eq!(
        get_ok(&app, &path).await["query"],
        json!({"status": "open"})
    );
    let patched = patch_ok(&app, &path, json!({"query": {"status": "closed"}})).await;
    assert_eq!(patched["query"], json!({"status": "closed"}));
}

/// Six conversations; answers their ids in creation order:
/// 0 open sms, 1 open whatsapp, 2 closed sms, 3 open sms (unread), 4 open playground, 5 closed whatsapp.
async fn six_conversations(app: &TestApp) -> Vec<i64> {
    let contact = id_of(&create_contact(app, json!({"first_name": "Dana"})).await);
    let base = Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    for (i, (channel, status)) in [
        ("sms", "open"),
        ("whatsapp", "open"),
        ("sms", "closed"),
        ("sms", "open"),
        ("playground", "open"),
        ("whatsapp", "closed"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = base + Duration::hours(i as i64);
        out.push(create_conversation_at(app, app.org.org_id, contact, channel, status, at).await);
    }
    patch_ok(
        app,
        &format!("/conversations/{}", out[3]),
        json!({"unread_count": 2}),
    )
    .await;
    out
}

#[actix_web::test]
async fn view_id_ands_stored_and_requested_filters() {
    let app = spawn_app().await;
    let c = six_conversations(&app).await;
    let view = app
        .create(
            "/conversation-views",
            json!({"name": "Open inbox", "query": {
                "status": "open",
                "channel": {"$ne": "playground"},
                "$sort": {"created_at": 1},
                "$limit": 1,
                "$select": ["id"],
            }}),
        )
        .await;
    let v = id_of(&view);

    // Stored filters and sort; the stored $limit and $select do not apply.
    let page = get_ok(&app, &format!("/conversations?view_id={v}")).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 10);
    assert_eq!(ids(&page), vec![c[0], c[1], c[3]]);
    assert!(records(&page)[0]["status"].is_string(), "{page}");

    // The request's filters are ANDed with the view's.
    let page = get_ok(&app, &format!("/conversations?view_id={v}&channel=sms")).await;
    assert_eq!(ids(&page), vec![c[0], c[3]]);
    let page = get_ok(
        &app,
        &format!("/conversations?view_id={v}&unread_count[$gt]=0"),
    )
    .await;
    assert_eq!(ids(&page), vec![c[3]]);
    let page = get_ok(&app, &format!("/conversations?view_id={v}&status=closed")).await;
    assert_eq!(page["total"], 0);
    assert_eq!(ids(&page), Vec::<i64>::new());
    let page = get_ok(
        &app,
        &format!("/conversations?view_id={v}&$or[0][channel]=whatsapp&$or[1][unread_count][$gt]=0"),
    )
    .await;
    assert_eq!(id_set(&page), vec![c[1], c[3]]);

    // The request's $sort wins over the stored one; its paging applies.
    let page = get_ok(
        &app,
        &format!("/conversations?view_id={v}&$sort[created_at]=-1"),
    )
    .await;
    assert_eq!(ids(&page), vec![c[3], c[1], c[0]]);
    let page = get_ok(
        &app,
        &format!("/conversations?view_id={v}&$limit=1&$skip=1"),
    )
    .await;
    assert_eq!(page["total"], 3);
    assert_eq!(ids(&page), vec![c[1]]);

    // A view without $sort: the default order (most recent interaction first).
    let plain = app
        .create(
            "/conversation-views",
            json!({"name": "SMS", "query": {"channel": "sms"}}),
        )
        .await;
    let page = get_ok(&app, &format!("/conversations?view_id={}", id_of(&plain))).await;
    assert_eq!(ids(&page), vec![c[3], c[2], c[0]]);

    // A stored $or is kept intact.
    let either = app
        .create(
            "/conversation-views",
            json!({"name": "Closed or playground", "query": {
                "$or": [{"status": "closed"}, {"channel": "playground"}]
            }}),
        )
        .await;
    let page = get_ok(
        &app,
        &format!(
            "/conversations?view_id={}&channel[$ne]=whatsapp",
            id_of(&either)
        ),
    )
    .await;
    assert_eq!(id_set(&page), vec![c[2], c[4]]);

    // A view's query follows its patches.
    let path = format!("/conversation-views/{v}");
    patch_ok(&app, &path, json!({"query": {"status": "closed"}})).await;
    let page = get_ok(&app, &format!("/conversations?view_id={v}")).await;
    assert_eq!(id_set(&page), vec![c[2], c[5]]);
}

#[actix_web::test]
async fn unknown_or_foreign_view_ids_are_bad_requests() {
    let app = spawn_app().await;
    six_conversations(&app).await;
    let other = app.new_tenant("Other").await;
    let (status, theirs) = app
        .call_as(
            &other,
            Method::POST,
            "/conversation-views",
            Some(json!({"name": "Theirs", "query": {"status": "open"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");

    for path in [
        format!("/conversations?view_id={}", id_of(&theirs)),
        format!("/conversations?view_id={}", id_of(&theirs) + 1000),
        "/conversations?view_id=abc".to_string(),
        "/conversations?view_id=".to_string(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["errors"]["view_id"].is_array(), "{path}: {body}");
    }
    // Their view is theirs to use.
    let (status, page) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/conversations?view_id={}", id_of(&theirs)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 0);
}

#[actix_web::test]
async fn only_the_owner_or_an_admin_changes_a_view() {
    let app = spawn_app().await;
    let alice = app.new_user(&app.org, "agent").await;
    let bob = app.new_user(&app.org, "agent").await;
    let (status, view) = app
        .call_as(
            &alice,
            Method::POST,
            "/conversation-views",
            Some(json!({"name": "Alice's", "query": {"status": "open"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["owner_user_id"], alice.user_id);
    let path = format!("/conversation-views/{}", id_of(&view));

    // Everyone in the organization sees it.
    let (status, got) = app.call_as(&bob, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, page) = app
        .call_as(&bob, Method::GET, "/conversation-views", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id_of(&view)]);

    // Bob may not change or remove it.
    let (status, body) = app
        .call_as(
            &bob,
            Method::PATCH,
            &path,
            Some(json!({"name": "Bob's now"})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app.call_as(&bob, Method::DELETE, &path, None).await;
    assert_error(status, &body, 403, "Forbidden");
    assert_eq!(get_ok(&app, &path).await["name"], "Alice's");

    // Alice may; so may the admin.
    let (status, renamed) = app
        .call_as(&alice, Method::PATCH, &path, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Mine");
    let renamed = patch_ok(&app, &path, json!({"name": "Admin's edit"})).await;
    assert_eq!(renamed["name"], "Admin's edit");
    assert_eq!(renamed["owner_user_id"], alice.user_id);
    let (status, removed) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "Admin's edit");
    let (status, body) = app.get(&path).await;
    assert_error(status, &body, 404, "NotFound");

    // An agent removes their own view.
    let (status, own) = app
        .call_as(
            &bob,
            Method::POST,
            "/conversation-views",
            Some(json!({"name": "Bob's", "query": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let (status, body) = app
        .call_as(
            &bob,
            Method::DELETE,
            &format!("/conversation-views/{}", id_of(&own)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app.delete("/conversation-views").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}
