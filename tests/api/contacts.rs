//! `/contacts` (with their tags as `tag_ids`) and `/tags`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

/// The ids of a find answer, sorted (for filters, where the order is not the point).
fn id_set(body: &Value) -> Vec<i64> {
    let mut v = ids(body);
    v.sort();
    v
}

async fn tag(app: &TestApp, name: &str) -> i64 {
    id_of(&app.create("/tags", json!({ "name": name })).await)
}

#[actix_web::test]
async fn create_sets_creator_and_embeds_tags() {
    let app = spawn_app().await;
    let (vip, lead) = (tag(&app, "vip").await, tag(&app, "lead").await);

    let contact = create_contact(
        &app,
        json!({
            "first_name": "Dana",
            "last_name": "Scully",
            "email": "dana@fbi.test",
            "phone": "+15550001",
            "custom_fields_by_name": {"badge": "X-1"},
            "tag_ids": [lead, vip],
        }),
    )
    .await;
    assert!(contact["id"].is_i64(), "{contact}");
    assert_eq!(contact["organization_id"], app.org.org_id);
    assert_eq!(contact["created_by_user_id"], app.org.user_id);
    assert_eq!(contact["first_name"], "Dana");
    assert_eq!(contact["custom_fields_by_name"], json!({"badge": "X-1"}));
    assert_eq!(contact["tag_ids"], json!([vip, lead]), "sorted by tag id");

    let fetched = get_ok(&app, &format!("/contacts/{}", id_of(&contact))).await;
    assert_eq!(fetched["tag_ids"], json!([vip, lead]));
    assert_eq!(fetched["created_by_user_id"], app.org.user_id);

    // The creator is whoever calls, not what the body says.
    let agent = app.new_user(&app.org, "agent").await;
    let (status, by_agent) = app
        .call_as(
            &agent,
            Method::POST,
            "/contacts",
            Some(json!({"first_name": "Fox"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_agent}");
    assert_eq!(by_agent["created_by_user_id"], agent.user_id);
    assert_eq!(by_agent["tag_ids"], json!([]));
    let (status, body) = app
        .post(
            "/contacts",
            json!({"first_name": "Eve", "created_by_user_id": agent.user_id}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["created_by_user_id"].is_array(), "{body}");

    // A contact can be owned by a user of the organization.
    let owned = create_contact(
        &app,
        json!({"first_name": "Walter", "owned_by_user_id": agent.user_id}),
    )
    .await;
    assert_eq!(owned["owned_by_user_id"], agent.user_id);
}

#[actix_web::test]
async fn patch_tag_ids_replaces_the_set() {
    let app = spawn_app().await;
    let (a, b, c) = (
        tag(&app, "a").await,
        tag(&app, "b").await,
        tag(&app, "c").await,
    );
    let contact = create_contact(&app, json!({"first_name": "Dana", "tag_ids": [a, b]})).await;
    let path = format!("/contacts/{}", id_of(&contact));

    let patched = patch_ok(&app, &path, json!({"tag_ids": [c, b]})).await;
    assert_eq!(patched["tag_ids"], json!([b, c]));
    assert_eq!(get_ok(&app, &path).await["tag_ids"], json!([b, c]));

    // A patch without tag_ids leaves the tags alone.
    let patched = patch_ok(&app, &path, json!({"last_name": "Scully"})).await;
    assert_eq!(patched["last_name"], "Scully");
    assert_eq!(patched["tag_ids"], json!([b, c]));

    // Duplicates collapse; an empty list removes every tag.
    let patched = patch_ok(&app, &path, json!({"tag_ids": [a, a]})).await;
    assert_eq!(patched["tag_ids"], json!([a]));
    let patched = patch_ok(&app, &path, json!({"tag_ids": []})).await;
    assert_eq!(patched["tag_ids"], json!([]));
    assert_eq!(get_ok(&app, &path).await["tag_ids"], json!([]));

    for bad in [json!("a"), json!([a, "b"]), json!({"id": a})] {
        let (status, body) = app.patch(&path, json!({ "tag_ids": bad })).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn references_to_another_organization_are_unprocessable() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let (status, their_tag) = app
        .call_as(
            &other,
            Method::POST,
            "/tags",
            Some(json!({"name": "theirs"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{their_tag}");
    let their_tag = id_of(&their_tag);
    let ours = tag(&app, "ours").await;

    // On create: nothing is stored.
    let (status, body) = app
        .post(
            "/contacts",
            json!({"first_name": "Dana", "tag_ids": [ours, their_tag]}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "reference_in_organization");
    assert_eq!(body["data"]["field"], "tag_ids");
    let (status, body) = app
        .post(
            "/contacts",
            json!({"first_name": "Dana", "owned_by_user_id": other.user_id}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "reference_in_organization");
    assert_eq!(body["data"]["field"], "owned_by_user_id");
    assert_eq!(total_of(&app, "/contacts?$limit=0").await, 0);

    // On patch: nothing changes.
    let contact = create_contact(&app, json!({"first_name": "Dana", "tag_ids": [ours]})).await;
    let path = format!("/contacts/{}", id_of(&contact));
    let (status, body) = app
        .patch(
            &path,
            json!({"first_name": "Changed", "tag_ids": [their_tag]}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["field"], "tag_ids");
    let (status, body) = app
        .patch(
            &path,
            json!({"first_name": "Changed", "owned_by_user_id": other.user_id}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["field"], "owned_by_user_id");
    let (status, body) = app.patch(&path, json!({"tag_ids": [987_654_321]})).await;
    assert_error(status, &body, 422, "Unprocessable");

    let after = get_ok(&app, &path).await;
    assert_eq!(after["first_name"], "Dana");
    assert_eq!(after["tag_ids"], json!([ours]));
    assert_eq!(after["owned_by_user_id"], Value::Null);
}

#[actix_web::test]
async fn find_by_tag_and_name() {
    let app = spawn_app().await;
    let (vip, lead) = (tag(&app, "vip").await, tag(&app, "lead").await);
    let dana = id_of(
        &create_contact(
            &app,
            json!({"first_name": "Dana", "last_name": "Scully", "tag_ids": [vip]}),
        )
        .await,
    );
    let dale = id_of(
        &create_contact(
            &app,
            json!({"first_name": "dale", "last_name": "Cooper", "tag_ids": [vip, lead]}),
        )
        .await,
    );
    let fox = id_of(
        &create_contact(
            &app,
            json!({"first_name": "Fox", "last_name": "Mulder", "tag_ids": [lead]}),
        )
        .await,
    );
    let _nobody = id_of(&create_contact(&app, json!({"email": "anon@example.test"})).await);

    assert_eq!(
        id_set(&get_ok(&app, &format!("/contacts?tag_id={vip}")).await),
        vec![dana, dale]
    );
    assert_eq!(
        id_set(&get_ok(&app, &format!("/contacts?tag_id={lead}")).await),
        vec![dale, fox]
    );
    assert_eq!(
        total_of(&app, &format!("/contacts?tag_id={}", lead + vip + 100)).await,
        0
    );
    assert_eq!(
        id_set(&get_ok(&app, "/contacts?first_name[$ilike]=DA%25").await),
        vec![dana, dale]
    );
    assert_eq!(
        id_set(&get_ok(&app, "/contacts?last_name[$ilike]=%25ul%25").await),
        vec![dana, fox]
    );
    assert_eq!(
        id_set(
            &get_ok(
                &app,
                &format!("/contacts?tag_id={vip}&first_name[$ilike]=dan%25")
            )
            .await
        ),
        vec![dana]
    );
    assert_eq!(
        id_set(&get_ok(&app, "/contacts?first_name=Fox").await),
        vec![fox]
    );

    // `$select` narrows the record; tag_ids only when asked for.
    let page = get_ok(&app, "/contacts?$select[]=first_name&$sort[id]=1").await;
    let first = &records(&page)[0];
    let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["first_name", "id"], "{first}");
    let page = get_ok(
        &app,
        &format!("/contacts?id={dale}&$select[]=first_name&$select[]=tag_ids"),
    )
    .await;
    assert_eq!(records(&page)[0]["tag_ids"], json!([vip, lead]));

    for bad in [
        "/contacts?tag_id=vip",
        "/contacts?tag_id[$in][]=1",
        "/contacts?nope=1",
        "/contacts?avatar_url=x",
    ] {
        let (status, body) = app.get(bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn remove_refuses_a_contact_with_conversations() {
    let app = spawn_app().await;
    let busy = id_of(&create_contact(&app, json!({"first_name": "Busy"})).await);
    let idle = create_contact(&app, json!({"first_name": "Idle"})).await;
    let conversation = create_conversation(&app, app.org.org_id, busy, "sms", "open").await;

    let (status, body) = app.delete(&format!("/contacts/{busy}")).await;
    assert_error(status, &body, 409, "Conflict");
    assert_eq!(body["data"]["rule"], "contact_has_conversations");
    get_ok(&app, &format!("/contacts/{busy}")).await;
    get_ok(&app, &format!("/conversations/{conversation}")).await;

    let (status, removed) = app.delete(&format!("/contacts/{}", id_of(&idle))).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["id"], idle["id"]);
    assert_eq!(removed["first_name"], "Idle");
    let (status, body) = app.get(&format!("/contacts/{}", id_of(&idle))).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete(&format!("/contacts/{}", id_of(&idle))).await;
    assert_error(status, &body, 404, "NotFound");

    // Once its conversations are removed, the contact can go.
    let (status, body) = app.delete(&format!("/conversations/{conversation}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.delete(&format!("/contacts/{busy}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total_of(&app, "/contacts?$limit=0").await, 0);

    // Multi patch and remove are not offered.
    let (status, body) = app.delete("/contacts").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    let (status, body) = app.patch("/contacts", json!({"first_name": "All"})).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}

#[actix_web::test]
async fn tags_crud() {
    let app = spawn_app().await;
    let vip = app.create("/tags", json!({"name": "vip"})).await;
    assert_eq!(vip["name"], "vip");
    assert_eq!(vip["organization_id"], app.org.org_id);
    assert!(vip["created_at"].as_str().unwrap().ends_with('Z'), "{vip}");
    let lead = tag(&app, "lead").await;

    let (status, body) = app.post("/tags", json!({})).await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["name"].is_array(), "{body}");
    let (status, body) = app.post("/tags", json!({"name": "x".repeat(101)})).await;
    assert_error(status, &body, 400, "BadRequest");

    // Any member may create tags.
    let agent = app.new_user(&app.org, "agent").await;
    let (status, body) = app
        .call_as(&agent, Method::POST, "/tags", Some(json!({"name": "hot"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let page = get_ok(&app, "/tags?name[$ilike]=V%25").await;
    assert_eq!(ids(&page), vec![id_of(&vip)]);
    assert_eq!(total_of(&app, "/tags?$limit=0").await, 3);

    let renamed = patch_ok(
        &app,
        &format!("/tags/{}", id_of(&vip)),
        json!({"name": "VIP"}),
    )
    .await;
    assert_eq!(renamed["name"], "VIP");

    // Removing a tag takes it off every contact.
    let contact = create_contact(
        &app,
        json!({"first_name": "Dana", "tag_ids": [id_of(&vip), lead]}),
    )
    .await;
    let (status, removed) = app.delete(&format!("/tags/{}", id_of(&vip))).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "VIP");
    let after = get_ok(&app, &format!("/contacts/{}", id_of(&contact))).await;
    assert_eq!(after["tag_ids"], json!([lead]));
    assert_eq!(
        total_of(&app, &format!("/contacts?tag_id={}", id_of(&vip))).await,
        0
    );
}
