//! `/conversation-predefined-messages`: canned replies visible to the whole
//! organization (find sorted by title, `title[$ilike]`, get, create, patch,
//! remove), changed only by their creator or an admin, isolated per
//! organization; and sending one with `predefined_message_id`, which renders its
//! placeholders or answers a 422 listing the unknown and missing ones.

use crate::helpers::*;
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PATH: &str = "/conversation-predefined-messages";

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

fn titles(page: &Value) -> Vec<String> {
    records(page)
        .iter()
        .map(|r| r["title"].as_str().expect("title").to_string())
        .collect()
}

/// Creates a canned reply as `tenant`; answers it.
async fn create_as(app: &TestApp, tenant: &Tenant, body: Value) -> Value {
    let (status, record) = app
        .call(Method::POST, PATH, Some(body), Some(&tenant.token))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    record
}

#[actix_web::test]
async fn create_get_patch_remove_and_find_sorted_by_title() {
    let app = spawn_app().await;
    let thanks = app
        .create(
            PATH,
            json!({"title": "Thanks", "content": "Thank you, {{contact.first_name}}!"}),
        )
        .await;
    assert!(thanks["id"].is_i64(), "{thanks}");
    assert_eq!(thanks["organization_id"], app.org.org_id);
    assert_eq!(thanks["title"], "Thanks");
    assert_eq!(thanks["content"], "Thank you, {{contact.first_name}}!");
    assert_eq!(thanks["message_type"], "text", "text by default");
    assert_eq!(thanks["media_url"], Value::Null);
    assert_eq!(thanks["filename"], Value::Null);
    assert_eq!(thanks["mime_type"], Value::Null);
    assert_eq!(thanks["created_by_user_id"], app.org.user_id);
    assert!(
        thanks["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(thanks["updated_at"].is_string());

    let menu = app
        .create(
            PATH,
            json!({
                "title": "Menu", "content": "Our menu", "message_type": "image",
                "media_url": "org/1/predefined/menu.png", "filename": "menu.png", "mime_type": "image/png",
                "organization_id": app.org.org_id,
            }),
        )
        .await;
    assert_eq!(menu["message_type"], "image");
    assert_eq!(menu["media_url"], "org/1/predefined/menu.png");
    assert_eq!(menu["filename"], "menu.png");
    assert_eq!(menu["mime_type"], "image/png");
    let greeting = app
        .create(
            PATH,
            json!({"title": "Greeting", "content": "Hello {{contact.first_name}}"}),
        )
        .await;
    // Titles need not be unique.
    let greeting_again = app
        .create(PATH, json!({"title": "Greeting", "content": "Hi there"}))
        .await;
    let closing = app
        .create(
            PATH,
            json!({"title": "Closing", "content": "Have a nice day"}),
        )
        .await;

    let page = get_ok(&app, PATH).await;
    assert_eq!(page["total"], 5);
    assert_eq!(
        titles(&page),
        ["Closing", "Greeting", "Greeting", "Menu", "Thanks"]
    );
    assert_eq!(
        ids(&page),
        vec![
            id_of(&closing),
            id_of(&greeting),
            id_of(&greeting_again),
            id_of(&menu),
            id_of(&thanks)
        ]
    );
    let page = get_ok(&app, &format!("{PATH}?$sort[title]=-1")).await;
    assert_eq!(
        ids(&page),
        vec![
            id_of(&thanks),
            id_of(&menu),
            id_of(&greeting_again),
            id_of(&greeting),
            id_of(&closing)
        ]
    );
    let page = get_ok(&app, &format!("{PATH}?title[$ilike]=%25GREET%25")).await;
    assert_eq!(ids(&page), vec![id_of(&greeting), id_of(&greeting_again)]);
    assert_eq!(page["total"], 2);
    let page = get_ok(&app, &format!("{PATH}?title[$ilike]=th%25")).await;
    assert_eq!(ids(&page), vec![id_of(&thanks)]);
    let page = get_ok(&app, &format!("{PATH}?message_type=image")).await;
    assert_eq!(ids(&page), vec![id_of(&menu)]);
    let page = get_ok(&app, &format!("{PATH}?$limit=2&$skip=2")).await;
    assert_eq!(ids(&page), vec![id_of(&greeting_again), id_of(&menu)]);

    let got = get_ok(&app, &format!("{PATH}/{}", id_of(&thanks))).await;
    assert_eq!(got, thanks);

    let patched = patch_ok(
        &app,
        &format!("{PATH}/{}", id_of(&thanks)),
        json!({"title": "Thank you", "content": "Many thanks!"}),
    )
    .await;
    assert_eq!(patched["title"], "Thank you");
    assert_eq!(patched["content"], "Many thanks!");
    assert_eq!(patched["created_by_user_id"], app.org.user_id);
    let patched = patch_ok(
        &app,
        &format!("{PATH}/{}", id_of(&thanks)),
        json!({"message_type": "document", "media_url": "org/1/terms.pdf",
               "filename": "terms.pdf", "mime_type": "application/pdf"}),
    )
    .await;
    assert_eq!(patched["message_type"], "document");
    assert_eq!(patched["filename"], "terms.pdf");
    assert_eq!(patched["title"], "Thank you");
    assert_eq!(
        get_ok(&app, &format!("{PATH}/{}", id_of(&thanks))).await,
        patched
    );

    let (status, removed) = app.delete(&format!("{PATH}/{}", id_of(&closing))).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["title"], "Closing");
    let (status, body) = app.get(&format!("{PATH}/{}", id_of(&closing))).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete(&format!("{PATH}/{}", id_of(&closing))).await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(total_of(&app, PATH).await, 4);

    // Validation.
    for bad in [
        json!({"content": "no title"}),
        json!({"title": "No content"}),
        json!({"title": "x".repeat(201), "content": "x"}),
        json!({"title": "", "content": "x"}),
        json!({"title": "  ", "content": "x"}),
        json!({"title": "Sticker", "content": "x", "message_type": "sticker"}),
        json!({"title": 5, "content": "x"}),
        json!({"title": "Colour", "content": "x", "colour": "red"}),
    ] {
        let (status, body) = app.post(PATH, bad.clone()).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    for bad in [
        json!({"message_type": "sticker"}),
        json!({"title": null}),
        json!({"title": " "}),
        json!({"content": 7}),
    ] {
        let (status, body) = app
            .patch(&format!("{PATH}/{}", id_of(&menu)), bad.clone())
            .await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(total_of(&app, PATH).await, 4);
    for bad in ["abc", "999999"] {
        let (status, body) = app.get(&format!("{PATH}/{bad}")).await;
        assert_error(status, &body, 404, "NotFound");
    }
}

#[actix_web::test]
async fn the_creator_is_set_by_the_server() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let (status, body) = app
        .call(
            Method::POST,
            PATH,
            Some(json!({"title": "Mine", "content": "x", "created_by_user_id": app.org.user_id})),
            Some(&agent.token),
        )
        .await;
    // Not a client's to set.
    assert_error(status, &body, 400, "BadRequest");
    assert_eq!(total_of(&app, PATH).await, 0);
    let record = create_as(&app, &agent, json!({"title": "Mine", "content": "x"})).await;
    assert_eq!(record["created_by_user_id"], agent.user_id);
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("{PATH}/{}", id_of(&record)),
            Some(json!({"created_by_user_id": app.org.user_id})),
            Some(&agent.token),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let got = get_ok(&app, &format!("{PATH}/{}", id_of(&record))).await;
    assert_eq!(got["created_by_user_id"], agent.user_id);
}

#[actix_web::test]
async fn only_the_creator_or_an_admin_changes_a_predefined_message() {
    let app = spawn_app().await;
    let author = app.new_user(&app.org, "agent").await;
    let colleague = app.new_user(&app.org, "agent").await;
    let by_author = create_as(&app, &author, json!({"title": "Agent's", "content": "a"})).await;
    let by_admin = app
        .create(PATH, json!({"title": "Admin's", "content": "b"}))
        .await;
    let path = |r: &Value| format!("{PATH}/{}", id_of(r));

    // Everyone in the organization sees both.
    for member in [&author, &colleague] {
        let (status, page) = app.call_as(member, Method::GET, PATH, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 2);
        let (status, _) = app
            .call_as(member, Method::GET, &path(&by_admin), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    // Another agent: neither patch nor remove.
    for record in [&by_author, &by_admin] {
        let (status, body) = app
            .call_as(
                &colleague,
                Method::PATCH,
                &path(record),
                Some(json!({"title": "Mine now"})),
            )
            .await;
        assert_error(status, &body, 403, "Forbidden");
        let (status, body) = app
            .call_as(&colleague, Method::DELETE, &path(record), None)
            .await;
        assert_error(status, &body, 403, "Forbidden");
    }
    let (status, body) = app
        .call_as(
            &author,
            Method::PATCH,
            &path(&by_admin),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    assert_eq!(get_ok(&app, &path(&by_admin)).await["content"], "b");
    assert_eq!(get_ok(&app, &path(&by_author)).await["title"], "Agent's");

    // Its creator and an admin can.
    let (status, body) = app
        .call_as(
            &author,
            Method::PATCH,
            &path(&by_author),
            Some(json!({"content": "by the author"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"], "by the author");
    let body = patch_ok(&app, &path(&by_author), json!({"title": "Reviewed"})).await;
    assert_eq!(body["title"], "Reviewed");
    assert_eq!(body["created_by_user_id"], author.user_id);
    let (status, body) = app
        .call_as(&author, Method::DELETE, &path(&by_author), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.delete(&path(&by_admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total_of(&app, PATH).await, 0);

    // An admin removes an agent's reply too.
    let by_colleague = create_as(
        &app,
        &colleague,
        json!({"title": "Colleague's", "content": "c"}),
    )
    .await;
    let (status, body) = app.delete(&path(&by_colleague)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn another_organizations_predefined_messages_are_not_found() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let theirs = create_as(
        &app,
        &other,
        json!({"title": "Secret", "content": "theirs"}),
    )
    .await;
    app.create(PATH, json!({"title": "Ours", "content": "ours"}))
        .await;
    let path = format!("{PATH}/{}", id_of(&theirs));

    let (status, body) = app.get(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.patch(&path, json!({"title": "Taken"})).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let page = get_ok(&app, PATH).await;
    assert_eq!(titles(&page), ["Ours"]);
    let page = get_ok(&app, &format!("{PATH}?title=Secret")).await;
    assert_eq!(page["total"], 0);

    let (status, body) = app
        .get(&format!("{PATH}?organization_id={}", other.org_id))
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .post(
            PATH,
            json!({"title": "Planted", "content": "x", "organization_id": other.org_id}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");

    // Sending another organization's reply is refused like a reply that does not exist.
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    for id in [id_of(&theirs), 999_999] {
        let (status, body) = app
            .post(
                "/conversation-messages-transform-outgoing-webchat",
                json!({"conversation_id": conversation, "predefined_message_id": id}),
            )
            .await;
        assert_error(status, &body, 422, "Unprocessable");
        assert_eq!(body["data"]["rule"], "reference_in_organization");
        assert_eq!(body["data"]["field"], "predefined_message_id");
        assert!(
            !body.to_string().contains("theirs"),
            "no content leaks: {body}"
        );
    }
    assert_eq!(stored_messages(&app, conversation).await, 0);

    // Untouched for its owner.
    let (status, body) = app.call_as(&other, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "Secret");
}

#[actix_web::test]
async fn sending_a_predefined_message_renders_its_placeholders() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let send = "/conversation-messages-transform-outgoing-webchat";
    let reply = create_as(
        &app,
        &agent,
        json!({
            "title": "Order",
            "content": "Hi {{contact.first_name}} {{ contact.last_name }}, I'm {{user.first_name}}. \
                        Ref #{{conversation.id}}, order {{order}} ({{count}} items).",
        }),
    )
    .await;
    let (status, message) = app
        .call_as(
            &agent,
            Method::POST,
            send,
            Some(json!({
                "conversation_id": conversation,
                "predefined_message_id": id_of(&reply),
                "variables": {"order": "A-17", "count": 3},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let expected = format!("Hi Ada Lovelace, I'm Test. Ref #{conversation}, order A-17 (3 items).");
    assert_eq!(message["text"], expected);
    assert_eq!(message["message_type"], "text");
    assert_eq!(message["payload"]["message"]["text"], expected);
    assert_eq!(
        conversation_record(&app, conversation).await["last_message_preview"],
        expected
    );
    // The canned reply itself is unchanged.
    assert!(
        get_ok(&app, &format!("{PATH}/{}", id_of(&reply))).await["content"]
            .as_str()
            .unwrap()
            .contains("{{order}}")
    );

    // Unknown placeholders and ones without a value: 422 listing them, nothing stored.
    let stored = stored_messages(&app, conversation).await;
    let (status, body) = app
        .call_as(
            &agent,
            Method::POST,
            send,
            Some(
                json!({"conversation_id": conversation, "predefined_message_id": id_of(&reply),
                        "variables": {"order": "A-17"}}),
            ),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "placeholders");
    assert_eq!(body["data"]["unknown"], json!(["count"]));
    assert_eq!(body["data"]["missing"], json!([]));

    let no_last_name = create_contact(&app, json!({"first_name": "Bo"})).await;
    let bare = create_conversation(
        &app,
        app.org.org_id,
        id_of(&no_last_name),
        "webchat",
        "open",
    )
    .await;
    let tricky = app
        .create(
            PATH,
            json!({"title": "Tricky", "content": "{{contact.last_name}} {{coupon}} {{contact.nickname}} {{contact.first_name}}"}),
        )
        .await;
    let (status, body) = app
        .post(
            send,
            json!({"conversation_id": bare, "predefined_message_id": id_of(&tricky)}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "placeholders");
    assert_eq!(
        body["data"]["unknown"],
        json!(["coupon", "contact.nickname"])
    );
    assert_eq!(body["data"]["missing"], json!(["contact.last_name"]));
    // A variable supplies an unknown name, not a missing contact field.
    let (status, body) = app
        .post(
            send,
            json!({"conversation_id": bare, "predefined_message_id": id_of(&tricky),
                   "variables": {"coupon": "SAVE10", "contact.nickname": "B"}}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["unknown"], json!([]));
    assert_eq!(body["data"]["missing"], json!(["contact.last_name"]));
    for bad in [
        json!({"conversation_id": conversation, "predefined_message_id": id_of(&reply),
               "variables": {"order": {"id": 1}, "count": 1}}),
        json!({"conversation_id": conversation, "predefined_message_id": id_of(&reply),
               "variables": ["A-17"]}),
        json!({"conversation_id": conversation, "predefined_message_id": "one"}),
    ] {
        let (status, body) = app.post(send, bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(stored_messages(&app, conversation).await, stored);
    assert_eq!(stored_messages(&app, bare).await, 0);

    // A canned reply with media sends its file and its rendered text as the caption.
    let menu = app
        .create(
            PATH,
            json!({"title": "Menu", "content": "Today's menu, {{contact.first_name}}", "message_type": "image",
                   "media_url": "s3://files/org/1/predefined/menu.png", "filename": "menu.png", "mime_type": "image/png"}),
        )
        .await;
    let message = app
        .create(
            send,
            json!({"conversation_id": conversation, "predefined_message_id": id_of(&menu)}),
        )
        .await;
    assert_eq!(message["message_type"], "image");
    assert_eq!(message["text"], "Today's menu, Ada");
    assert_eq!(
        message["payload"]["message"]["media"]["url"],
        "s3://files/org/1/predefined/menu.png"
    );
    assert_eq!(message["payload"]["message"]["media"]["mime"], "image/png");
    assert_eq!(message["payload"]["message"]["text"], "Today's menu, Ada");

    // The same rendering in a preview on WhatsApp, and on the playground.
    let (contact, whatsapp) = channel_conversation(&app, &app.org, "whatsapp").await;
    set_conversation_time(
        &app,
        whatsapp,
        "last_inbound_at",
        Some(Utc::now() - Duration::hours(2)),
    )
    .await;
    let simple = app
        .create(
            PATH,
            json!({"title": "Hello", "content": "Hello {{contact.first_name}}, this is #{{conversation.id}}"}),
        )
        .await;
    let (status, preview) = app
        .post(
            "/conversation-messages-transform-outgoing-whatsapp?$preview=true",
            json!({"conversation_id": whatsapp, "predefined_message_id": id_of(&simple)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let rendered = format!("Hello Ada, this is #{whatsapp}");
    assert_eq!(preview["text"], rendered);
    assert_eq!(preview["payload"]["text"]["body"], rendered);
    assert_eq!(stored_messages(&app, whatsapp).await, 0);
    let played = app
        .create(
            "/conversation-messages-playground",
            json!({"contact_id": contact, "predefined_message_id": id_of(&simple)}),
        )
        .await;
    let playground = played["conversation_id"].as_i64().unwrap();
    assert_eq!(played["text"], format!("Hello Ada, this is #{playground}"));
}

/// Like a title here, the names of the other records a user picks from a list
/// (tags, pipelines, AI assistants, API keys, views) must hold more than spaces.
#[actix_web::test]
async fn names_and_titles_must_not_be_blank() {
    let app = spawn_app().await;
    let bodies = [
        ("/tags", json!({})),
        ("/pipelines", json!({})),
        ("/ai-assistants", json!({})),
        ("/api-keys", json!({})),
        ("/conversation-views", json!({"query": {"status": "open"}})),
    ];
    for (path, rest) in bodies {
        for blank in ["", " \t "] {
            let mut body = rest.clone();
            body["name"] = json!(blank);
            let (status, err) = app.post(path, body).await;
            assert_error(status, &err, 400, "BadRequest");
            assert!(err["errors"]["name"].is_array(), "{path}: {err}");
        }
        let mut body = rest.clone();
        body["name"] = json!("Fine");
        let (status, created) = app.post(path, body).await;
        assert_eq!(status.as_u16(), 201, "{path}: {created}");
    }
}
