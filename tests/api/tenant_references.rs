//! References between records never cross organizations: every reference field is
//! checked on its typed value (integer, float, form string alike), a foreign id and a
//! missing id get the same answer, and the database itself refuses a foreign one.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One organization's referable records: a user, an AI assistant, a pipeline with a stage.
struct Targets {
    user: i64,
    ai: i64,
    pipeline: i64,
    stage: i64,
}

async fn targets(app: &TestApp, tenant: &Tenant) -> Targets {
    let (_, user) = app
        .call_as(
            tenant,
            Method::POST,
            "/users",
            Some(json!({"email": format!("u-{}@x.test", uuid::Uuid::new_v4().simple()), "password": "user-password"})),
        )
        .await;
    let (_, ai) = app
        .call_as(
            tenant,
            Method::POST,
            "/ai-assistants",
            Some(json!({"name": "Bot"})),
        )
        .await;
    let (_, pipeline) = app
        .call_as(
            tenant,
            Method::POST,
            "/pipelines",
            Some(json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]})),
        )
        .await;
    Targets {
        user: user["id"].as_i64().expect("user"),
        ai: ai["id"].as_i64().expect("ai"),
        pipeline: pipeline["id"].as_i64().expect("pipeline"),
        stage: pipeline["stages"][1]["id"].as_i64().expect("stage"),
    }
}

/// A body in every encoding a client can send a number in: a JSON integer, a JSON
/// float and a form field. Answers (status, body) of each.
async fn each_encoding(
    app: &TestApp,
    method: Method,
    path: &str,
    base: &Value,
    field: &str,
    id: i64,
) -> Vec<(String, StatusCode, Value)> {
    let mut out = Vec::new();
    for (label, value) in [("integer", json!(id)), ("float", json!(id as f64))] {
        let mut body = base.clone();
        body[field] = value;
        let (status, answer) = app
            .call(method.clone(), path, Some(body), Some(&app.org.token))
            .await;
        out.push((label.to_string(), status, answer));
    }
    let mut form: Vec<(String, String)> = base
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map(str::to_owned).unwrap_or(v.to_string()),
            )
        })
        .collect();
    form.push((field.to_string(), id.to_string()));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let (status, answer) = send(
        app.request(method, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await;
    out.push(("form".to_string(), status, answer));
    out
}

fn assert_refused(results: &[(String, StatusCode, Value)], field: &str, id: i64) {
    for (label, status, body) in results {
        assert_error(*status, body, 422, "Unprocessable");
        assert_eq!(
            body["data"]["rule"], "reference_in_organization",
            "{label}: {body}"
        );
        assert_eq!(body["data"]["field"], field, "{label}: {body}");
        assert_eq!(
            body["message"],
            format!("{field} {id} does not exist in this organization"),
            "{label}: a foreign id and a missing id read the same"
        );
    }
}

#[actix_web::test]
async fn conversation_references_refuse_foreign_and_missing_ids_in_every_encoding() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let mine = targets(&app, &app.org).await;
    let theirs = targets(&app, &other).await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let conversation = create_conversation(
        &app,
        app.org.org_id,
        contact["id"].as_i64().unwrap(),
        "playground",
        "open",
    )
    .await;
    let path = format!("/conversations/{conversation}");
    let cases = [
        ("assigned_user_id", theirs.user, mine.user),
        ("assigned_ai_assistant_id", theirs.ai, mine.ai),
        ("pipeline_id", theirs.pipeline, mine.pipeline),
        ("pipeline_stage_id", theirs.stage, mine.stage),
    ];
    for (field, foreign, own) in cases {
        for id in [foreign, 9_999_999] {
            let results = each_encoding(&app, Method::PATCH, &path, &json!({}), field, id).await;
            assert_refused(&results, field, id);
        }
        // A JSON string is not a number in a JSON body.
        let (status, body) = app.patch(&path, json!({ field: own.to_string() })).await;
        assert_error(status, &body, 400, "BadRequest");
        // The caller's own record, in every encoding, is accepted.
        for (label, status, body) in
            each_encoding(&app, Method::PATCH, &path, &json!({}), field, own).await
        {
            assert_eq!(status, StatusCode::OK, "{field} {label}: {body}");
            assert_eq!(body[field], own, "{field} {label}");
        }
    }
    // A stage given alone brings its pipeline, whatever the encoding.
    let record = get_ok(&app, &path).await;
    assert_eq!(record["pipeline_id"], mine.pipeline);
    assert_eq!(record["pipeline_stage_id"], mine.stage);
    // Nothing of the other organization was stored.
    for column in [
        "assigned_user_id",
        "assigned_ai_assistant_id",
        "pipeline_id",
        "pipeline_stage_id",
    ] {
        let n = sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM conversations c WHERE c.{column} IS NOT NULL AND c.{column} IN \
                 (SELECT id FROM {} WHERE organization_id = {})",
                match column {
                    "assigned_user_id" => "users",
                    "assigned_ai_assistant_id" => "ai_assistants",
                    "pipeline_id" => "pipelines",
                    _ => "pipeline_stages",
                },
                other.org_id
            ),
        )
        .await;
        assert_eq!(n, 0, "{column} points into the other organization");
    }
}

#[actix_web::test]
async fn negative_counts_are_refused_in_every_encoding() {
    let app = spawn_app().await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let conversation = create_conversation(
        &app,
        app.org.org_id,
        contact["id"].as_i64().unwrap(),
        "playground",
        "open",
    )
    .await;
    let path = format!("/conversations/{conversation}");
    for (label, status, body) in
        each_encoding(&app, Method::PATCH, &path, &json!({}), "unread_count", -5).await
    {
        assert_error(status, &body, 400, "BadRequest");
        assert!(
            body["message"].as_str().unwrap().contains("0 or more"),
            "{label}: {body}"
        );
    }
    assert_eq!(get_ok(&app, &path).await["unread_count"], 0);
}

#[actix_web::test]
async fn contact_owners_and_api_key_users_stay_in_the_organization() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let theirs = targets(&app, &other).await;
    let mine = targets(&app, &app.org).await;
    for id in [theirs.user, 9_999_999] {
        let results = each_encoding(
            &app,
            Method::POST,
            "/contacts",
            &json!({"first_name": "x"}),
            "owned_by_user_id",
            id,
        )
        .await;
        assert_refused(&results, "owned_by_user_id", id);
        let results = each_encoding(
            &app,
            Method::POST,
            "/api-keys",
            &json!({"name": "k"}),
            "user_id",
            id,
        )
        .await;
        assert_refused(&results, "user_id", id);
    }
    // A JSON string is not a number in a JSON body.
    for (path, body) in [
        (
            "/contacts",
            json!({"first_name": "x", "owned_by_user_id": mine.user.to_string()}),
        ),
        (
            "/api-keys",
            json!({"name": "k", "user_id": mine.user.to_string()}),
        ),
    ] {
        let (status, err) = app.post(path, body).await;
        assert_error(status, &err, 400, "BadRequest");
    }
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let path = format!("/contacts/{}", contact["id"]);
    for id in [theirs.user, 9_999_999] {
        let results = each_encoding(
            &app,
            Method::PATCH,
            &path,
            &json!({}),
            "owned_by_user_id",
            id,
        )
        .await;
        assert_refused(&results, "owned_by_user_id", id);
    }
    let (status, body) = app
        .patch(&path, json!({"owned_by_user_id": mine.user as f64}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["owned_by_user_id"], mine.user);
    assert_eq!(
        total_of(&app, "/contacts").await,
        1,
        "no contact was created"
    );
    assert_eq!(
        sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM api_keys WHERE organization_id = {}",
                app.org.org_id
            )
        )
        .await,
        0
    );
}

/// Whatever the code does, the database refuses a row naming another organization's
/// row, and the other organization's deletes therefore never touch ours.
#[actix_web::test]
async fn the_database_refuses_cross_organization_references() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let theirs = targets(&app, &other).await;
    let mine = targets(&app, &app.org).await;
    let contact = create_contact(&app, json!({"first_name": "Ada"})).await;
    let contact_id = contact["id"].as_i64().unwrap();
    let conversation =
        create_conversation(&app, app.org.org_id, contact_id, "playground", "open").await;
    use sea_orm::ConnectionTrait;
    for (column, id) in [
        ("assigned_user_id", theirs.user),
        ("assigned_ai_assistant_id", theirs.ai),
        ("pipeline_id", theirs.pipeline),
        ("pipeline_stage_id", theirs.stage),
    ] {
        let sql = format!("UPDATE conversations SET {column} = {id} WHERE id = {conversation}");
        assert!(
            app.db.execute_unprepared(&sql).await.is_err(),
            "{column}: the database accepted another organization's id"
        );
    }
    let sql = format!(
        "UPDATE contacts SET owned_by_user_id = {} WHERE id = {contact_id}",
        theirs.user
    );
    assert!(app.db.execute_unprepared(&sql).await.is_err());
    // Our own ids are fine, and the other organization removing its records leaves ours.
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"assigned_user_id": mine.user, "pipeline_stage_id": mine.stage}),
    )
    .await;
    let (status, _) = app
        .call_as(
            &other,
            Method::DELETE,
            &format!("/users/{}", theirs.user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call_as(
            &other,
            Method::DELETE,
            &format!("/pipelines/{}", theirs.pipeline),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(record["assigned_user_id"], mine.user);
    assert_eq!(record["pipeline_stage_id"], mine.stage);
    // Removing our own user nulls only the reference, never the organization.
    app.delete(&format!("/users/{}", mine.user)).await;
    let record = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(record["assigned_user_id"], Value::Null);
    assert_eq!(record["organization_id"], app.org.org_id);
}

/// A message's media is a file of its own conversation: a key of another
/// organization or conversation, or one that climbs out of the prefix, is a 403
/// and nothing is stored.
#[actix_web::test]
async fn message_media_must_be_a_file_of_the_conversation() {
    let app = spawn_app().await;
    let other = app.new_tenant("Other").await;
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (_, theirs) = channel_conversation(&app, &other, "whatsapp").await;
    set_conversation_time(
        &app,
        conversation,
        "last_inbound_at",
        Some(chrono::Utc::now()),
    )
    .await;
    let org = app.org.org_id;
    let path = "/conversation-messages-transform-outgoing-whatsapp";
    let body = |location: Value| {
        let mut b = json!({"conversation_id": conversation, "message_type": "image",
                           "file_type": "image/png", "file_size": 100});
        for (k, v) in location.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for location in [
        json!({"s3_key": "org-2/private/passport.png"}),
        json!({"s3_key": format!("org/{}/conversations/{theirs}/u1/a.png", other.org_id)}),
        json!({"s3_key": format!("org/{org}/conversations/{}/u1/a.png", conversation + 1000)}),
        json!({"s3_key": format!("org/{org}/conversations/{conversation}/../../../org/{}/x.png", other.org_id)}),
        json!({"s3_key": format!("org/{org}/conversations/{conversation}/")}),
        json!({"s3_path": format!("s3://files/org/{}/conversations/{theirs}/u1/a.png", other.org_id)}),
        json!({"s3_key": format!("org/{org}/conversations/{conversation}/u1/a.png"),
               "s3_path": format!("s3://files/org/{}/x.png", other.org_id)}),
    ] {
        let (status, err) = app.post(path, body(location.clone())).await;
        assert_error(status, &err, 403, "Forbidden");
        assert_eq!(err["data"]["rule"], "file_in_conversation", "{location}");
    }
    let own = format!("org/{org}/conversations/{conversation}/u1/a.png");
    let (status, message) = app.post(path, body(json!({"s3_key": own}))).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["payload"]["image"]["link"], own);
    assert_eq!(stored_messages(&app, conversation).await, 1);
    // A canned reply's media is a web URL or a key of the caller's organization.
    let reply = app
        .create(
            "/conversation-predefined-messages",
            json!({"title": "t", "content": "see", "message_type": "image",
                   "media_url": format!("org/{}/predefined/x.png", other.org_id), "mime_type": "image/png"}),
        )
        .await;
    let (status, err) = app
        .post(
            path,
            json!({"conversation_id": conversation, "predefined_message_id": reply["id"]}),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    assert_eq!(stored_messages(&app, conversation).await, 1);
}
