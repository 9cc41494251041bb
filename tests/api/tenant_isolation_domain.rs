//! Tenant isolation on the domain services (`/contacts`, `/tags`, `/ai-assistants`,
//! `/pipelines`, `/conversation-views`, `/conversations`): another organization's
//! records are as if they did not exist, its id in a query or body is a 403, and
//! references to its records are refused.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

/// One organization's records, one of each kind.
struct Records {
    agent: i64,
    tag: i64,
    contact: i64,
    bot: i64,
    pipeline: i64,
    stage: i64,
    view: i64,
    conversation: i64,
}

impl Records {
    /// `(path, id)` of every record.
    fn all(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("/tags", self.tag),
            ("/contacts", self.contact),
            ("/ai-assistants", self.bot),
            ("/pipelines", self.pipeline),
            ("/conversation-views", self.view),
            ("/conversations", self.conversation),
        ]
    }
}

/// Creates one record of each kind in `tenant`'s organization, through the API
/// (conversations are inserted: they have no REST create).
async fn records_of(app: &TestApp, tenant: &Tenant, name: &str) -> Records {
    let post = |path: &'static str, body: Value| async move {
        let (status, record) = app.call_as(tenant, Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {record}");
        record
    };
    let agent = app.new_user(tenant, "agent").await.user_id;
    let tag = id_of(&post("/tags", json!({ "name": format!("{name} tag") })).await);
    let contact = id_of(
        &post(
            "/contacts",
            json!({"first_name": name, "last_name": "Person", "email": format!("{}@example.test", name.to_lowercase()), "tag_ids": [tag]}),
        )
        .await,
    );
    let bot = id_of(&post("/ai-assistants", json!({ "name": format!("{name} bot") })).await);
    let pipeline = post(
        "/pipelines",
        json!({"name": format!("{name} pipeline"), "stages": [{"name": "New"}, {"name": "Won"}]}),
    )
    .await;
    let stage = id_of(&pipeline["stages"][0]);
    let view = id_of(
        &post(
            "/conversation-views",
            json!({"name": format!("{name} view"), "query": {"status": "open"}}),
        )
        .await,
    );
    let conversation = create_conversation(app, tenant.org_id, contact, "whatsapp", "open").await;
    let (status, body) = app
        .call_as(
            tenant,
            Method::PATCH,
            &format!("/conversations/{conversation}"),
            Some(json!({"assigned_user_id": agent, "assigned_ai_assistant_id": bot, "pipeline_stage_id": stage, "unread_count": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Records {
        agent,
        tag,
        contact,
        bot,
        pipeline: id_of(&pipeline),
        stage,
        view,
        conversation,
    }
}

/// A record as its own organization sees it.
async fn as_owner(app: &TestApp, owner: &Tenant, path: &str, id: i64) -> Value {
    let (status, body) = app
        .call_as(owner, Method::GET, &format!("{path}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{path}/{id}: {body}");
    body
}

#[actix_web::test]
async fn every_method_on_their_ids_is_not_found() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Theirs").await;
    let missing = 900_000_000_i64;

    let mut before = Vec::new();
    for (path, id) in theirs.all() {
        before.push(as_owner(&app, &other, path, id).await);
    }
    let bodies = |path: &str| match path {
        "/tags" | "/ai-assistants" | "/pipelines" => json!({"name": "Renamed"}),
        "/contacts" => json!({"first_name": "Renamed"}),
        "/conversation-views" => json!({"name": "Renamed", "query": {"status": "closed"}}),
        _ => json!({"status": "closed", "unread_count": 0}),
    };
    for (path, id) in theirs.all() {
        let one = format!("{path}/{id}");
        let (status, body) = app.get(&one).await;
        assert_error(status, &body, 404, "NotFound");
        let (status, body) = app.get(&format!("{one}?$select[]=id")).await;
        assert_error(status, &body, 404, "NotFound");
        let (status, body) = app.patch(&one, bodies(path)).await;
        assert_error(status, &body, 404, "NotFound");
        let (status, body) = app.delete(&one).await;
        assert_error(status, &body, 404, "NotFound");

        // PUT answers exactly as for an id that does not exist at all.
        let (status, body) = app.put(&one, bodies(path)).await;
        let (missing_status, missing_body) =
            app.put(&format!("{path}/{missing}"), bodies(path)).await;
        assert_eq!(status, missing_status, "PUT {one}: {body}");
        assert_eq!(body["name"], missing_body["name"], "PUT {one}: {body}");
        assert!(status.is_client_error(), "PUT {one}: {status} {body}");
    }
    // Pipelines: a stages-only patch too.
    let (status, body) = app
        .patch(
            &format!("/pipelines/{}", theirs.pipeline),
            json!({"stages": [{"name": "Mine now"}]}),
        )
        .await;
    assert_error(status, &body, 404, "NotFound");

    // Their records are untouched.
    for ((path, id), was) in theirs.all().into_iter().zip(before) {
        let now = as_owner(&app, &other, path, id).await;
        assert_eq!(now, was, "{path}/{id} changed");
    }
    // And ours still work with the same calls.
    for (path, id) in ours.all() {
        let one = format!("{path}/{id}");
        get_ok(&app, &one).await;
        patch_ok(&app, &one, bodies(path)).await;
    }
}

#[actix_web::test]
async fn find_never_lists_their_records() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Zebediah").await;

    for ((path, our_id), (_, their_id)) in ours.all().into_iter().zip(theirs.all()) {
        let page = get_ok(&app, &format!("{path}?$limit=50")).await;
        assert_eq!(ids(&page), vec![our_id], "{path}: {page}");
        assert_eq!(page["total"], 1, "{path}");
        let page = get_ok(&app, &format!("{path}?id={their_id}")).await;
        assert_eq!(page["total"], 0, "{path}: {page}");
        let page = get_ok(
            &app,
            &format!("{path}?id[$in][]={their_id}&id[$in][]={our_id}"),
        )
        .await;
        assert_eq!(ids(&page), vec![our_id], "{path}");
        let page = get_ok(
            &app,
            &format!("{path}?$or[0][id]={their_id}&$or[1][id]={our_id}"),
        )
        .await;
        assert_eq!(ids(&page), vec![our_id], "{path}");
    }

    // Filters naming their records find nothing.
    for query in [
        format!("/conversations?contact_id={}", theirs.contact),
        format!("/conversations?tag_id={}", theirs.tag),
        format!("/conversations?assigned_user_id={}", theirs.agent),
        format!("/conversations?assigned_user_id={}", other.user_id),
        format!("/conversations?assigned_ai_assistant_id={}", theirs.bot),
        format!("/conversations?pipeline_id={}", theirs.pipeline),
        format!("/conversations?pipeline_stage_id={}", theirs.stage),
        format!(
            "/conversations?pipeline_stage_id={}&status=open",
            theirs.stage
        ),
        "/conversations?searchTerm=zebediah".to_string(),
        "/conversations?channel=whatsapp&status=open&unread_count[$gt]=0&assigned_user_id[$ne]="
            .to_string(),
        format!("/contacts?tag_id={}", theirs.tag),
        "/contacts?first_name[$ilike]=zeb%25".to_string(),
        format!("/contacts?owned_by_user_id={}", other.user_id),
        "/tags?name[$ilike]=zeb%25".to_string(),
        format!("/conversation-views?owner_user_id={}", other.user_id),
    ] {
        let page = get_ok(&app, &query).await;
        let expected = if query.starts_with("/conversations?channel=") {
            1
        } else {
            0
        };
        assert_eq!(page["total"], expected, "{query}: {page}");
        assert!(
            !ids(&page).contains(&theirs.conversation),
            "{query}: {page}"
        );
    }
}

#[actix_web::test]
async fn their_organization_id_is_forbidden_in_queries_and_bodies() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Theirs").await;
    let (mine, them) = (app.org.org_id, other.org_id);

    for (path, id) in ours.all() {
        for query in [
            format!("organization_id={them}"),
            format!("organization_id[$in][]={them}"),
            format!("organization_id[$in][]={mine}&organization_id[$in][]={them}"),
            format!("organization_id[$ne]={mine}"),
            format!("$or[0][organization_id]={them}&$or[1][id]={id}"),
            "organization_id=abc".to_string(),
        ] {
            let (status, body) = app.get(&format!("{path}?{query}")).await;
            assert!(
                status == StatusCode::FORBIDDEN
                    || (query.ends_with("abc") && status == StatusCode::BAD_REQUEST),
                "{path}?{query}: {status} {body}"
            );
            if status == StatusCode::FORBIDDEN {
                assert_error(status, &body, 403, "Forbidden");
            }
            let (status, body) = app.get(&format!("{path}/{id}?{query}")).await;
            assert!(
                status.is_client_error() && status != StatusCode::OK,
                "{path}/{id}?{query}: {body}"
            );
        }
        let (status, body) = app
            .get(&format!("{path}/{id}?organization_id={them}"))
            .await;
        assert_error(status, &body, 403, "Forbidden");
        // Our own organization is accepted (and redundant).
        let page = get_ok(&app, &format!("{path}?organization_id={mine}")).await;
        assert_eq!(ids(&page), vec![id], "{path}");
        get_ok(&app, &format!("{path}/{id}?organization_id={mine}")).await;
    }

    // In a create body.
    for (path, body) in [
        ("/tags", json!({"name": "t"})),
        ("/contacts", json!({"first_name": "c"})),
        ("/ai-assistants", json!({"name": "b"})),
        (
            "/pipelines",
            json!({"name": "p", "stages": [{"name": "s"}]}),
        ),
        ("/conversation-views", json!({"name": "v", "query": {}})),
    ] {
        let mut foreign = body.clone();
        foreign["organization_id"] = json!(them);
        let (status, answer) = app.post(path, foreign).await;
        assert_error(status, &answer, 403, "Forbidden");
        let mut own = body.clone();
        own["organization_id"] = json!(mine);
        let created = app.create(path, own).await;
        assert_eq!(created["organization_id"], mine, "{path}");
    }
    // In a patch body.
    for (path, id) in ours.all() {
        let (status, answer) = app
            .patch(&format!("{path}/{id}"), json!({ "organization_id": them }))
            .await;
        assert_error(status, &answer, 403, "Forbidden");
        let (status, answer) = app
            .patch(
                &format!("{path}/{id}"),
                json!({ "organization_id": them.to_string() }),
            )
            .await;
        assert_error(status, &answer, 403, "Forbidden");
        let record = get_ok(&app, &format!("{path}/{id}")).await;
        assert_eq!(record["organization_id"], mine, "{path}/{id}");
    }
    // Nothing landed in their organization.
    for (path, _) in theirs.all() {
        let (status, page) = app
            .call_as(&other, Method::GET, &format!("{path}?$limit=0"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 1, "{path}: {page}");
    }
}

#[actix_web::test]
async fn select_reveals_nothing_of_theirs() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Theirs").await;

    let page = get_ok(
        &app,
        "/conversations?$select[]=organization_id&$select[]=contact_id&$select[]=contact&$select[]=assigned_user_id&$limit=50",
    )
    .await;
    assert_eq!(page["total"], 1);
    let record = &records(&page)[0];
    assert_eq!(record["organization_id"], app.org.org_id);
    assert_eq!(record["contact"]["id"], ours.contact);
    assert_eq!(record["contact"]["first_name"], "Ours");
    assert_eq!(record["assigned_user_id"], ours.agent);

    let page = get_ok(
        &app,
        "/contacts?$select[]=tag_ids&$select[]=organization_id",
    )
    .await;
    assert_eq!(records(&page).len(), 1);
    assert_eq!(records(&page)[0]["tag_ids"], json!([ours.tag]));
    let page = get_ok(&app, "/pipelines?$select[]=stages").await;
    assert_eq!(records(&page).len(), 1);
    let stages: Vec<i64> = records(&page)[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert!(stages.contains(&ours.stage) && !stages.contains(&theirs.stage));
    let page = get_ok(
        &app,
        "/conversation-views?$select[]=query&$select[]=owner_user_id",
    )
    .await;
    assert_eq!(ids(&page), vec![ours.view]);

    // Fields nobody may select are refused, not silently answered.
    for bad in [
        "/conversations?$select[]=deleted_at",
        "/conversations?$select[]=organization",
        "/contacts?$select[]=contact_tags",
        "/pipelines?$select[]=pipeline_stages",
    ] {
        let (status, body) = app.get(bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn references_to_their_records_are_unprocessable() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Theirs").await;
    let conversation = format!("/conversations/{}", ours.conversation);
    let before = get_ok(&app, &conversation).await;

    for (body, field) in [
        (
            json!({"assigned_user_id": theirs.agent}),
            "assigned_user_id",
        ),
        (
            json!({"assigned_user_id": other.user_id}),
            "assigned_user_id",
        ),
        (
            json!({"assigned_ai_assistant_id": theirs.bot}),
            "assigned_ai_assistant_id",
        ),
        (json!({"pipeline_id": theirs.pipeline}), "pipeline_id"),
        (
            json!({"pipeline_stage_id": theirs.stage}),
            "pipeline_stage_id",
        ),
    ] {
        let (status, answer) = app.patch(&conversation, body.clone()).await;
        assert_error(status, &answer, 422, "Unprocessable");
        assert_eq!(answer["data"]["field"], field, "{body}: {answer}");
    }
    let (status, answer) = app
        .patch(
            &conversation,
            json!({"pipeline_id": ours.pipeline, "pipeline_stage_id": theirs.stage}),
        )
        .await;
    assert_error(status, &answer, 422, "Unprocessable");
    assert_eq!(get_ok(&app, &conversation).await, before);

    let contact = format!("/contacts/{}", ours.contact);
    for body in [
        json!({"tag_ids": [theirs.tag]}),
        json!({"tag_ids": [ours.tag, theirs.tag]}),
        json!({"owned_by_user_id": theirs.agent}),
    ] {
        let (status, answer) = app.patch(&contact, body.clone()).await;
        assert_error(status, &answer, 422, "Unprocessable");
        let (status, answer) = app.post("/contacts", body.clone()).await;
        assert_error(status, &answer, 422, "Unprocessable");
    }
    assert_eq!(get_ok(&app, &contact).await["tag_ids"], json!([ours.tag]));

    let (status, answer) = app
        .patch(
            &format!("/pipelines/{}", ours.pipeline),
            json!({"stages": [{"id": theirs.stage, "name": "Stolen"}]}),
        )
        .await;
    assert_error(status, &answer, 422, "Unprocessable");
    assert_eq!(answer["data"]["rule"], "stage_in_pipeline");

    // Their stage, tag and pipeline are intact.
    let pipeline = as_owner(&app, &other, "/pipelines", theirs.pipeline).await;
    assert_eq!(pipeline["stages"][0]["id"], theirs.stage);
    assert_eq!(pipeline["stages"][0]["name"], "New");
    let contact = as_owner(&app, &other, "/contacts", theirs.contact).await;
    assert_eq!(contact["tag_ids"], json!([theirs.tag]));
}

#[actix_web::test]
async fn their_view_id_is_a_bad_request() {
    let app = spawn_app().await;
    let ours = records_of(&app, &app.org, "Ours").await;
    let other = app.new_tenant("Other").await;
    let theirs = records_of(&app, &other, "Theirs").await;

    for query in [
        format!("view_id={}", theirs.view),
        format!("view_id={}&status=open", theirs.view),
        format!("view_id={}&$limit=0", theirs.view),
    ] {
        let (status, body) = app.get(&format!("/conversations?{query}")).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["errors"]["view_id"].is_array(), "{body}");
    }
    let (status, body) = app
        .get(&format!(
            "/conversations/{}?view_id={}",
            ours.conversation, theirs.view
        ))
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let page = get_ok(&app, &format!("/conversations?view_id={}", ours.view)).await;
    assert_eq!(ids(&page), vec![ours.conversation]);
    // Their view applied by them shows only theirs.
    let (status, page) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/conversations?view_id={}", theirs.view),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![theirs.conversation]);
}
