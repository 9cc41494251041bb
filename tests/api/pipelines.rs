//! Admin-written configuration: `/pipelines` with their ordered stages, and
//! `/ai-assistants`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

/// `[(name, position)]` of a pipeline's stages, in order.
fn stage_names(pipeline: &Value) -> Vec<(String, i64)> {
    pipeline["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stages: {pipeline}"))
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["position"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn stage_ids(pipeline: &Value) -> Vec<i64> {
    pipeline["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stages: {pipeline}"))
        .iter()
        .map(id_of)
        .collect()
}

fn named(names: &[&str]) -> Vec<(String, i64)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), i as i64))
        .collect()
}

async fn pipeline(app: &TestApp, name: &str, stages: &[&str]) -> Value {
    let stages: Vec<Value> = stages.iter().map(|s| json!({ "name": s })).collect();
    app.create("/pipelines", json!({ "name": name, "stages": stages }))
        .await
}

#[actix_web::test]
async fn create_orders_stages() {
    let app = spawn_app().await;
    let sales = pipeline(&app, "Sales", &["New", "Qualified", "Won"]).await;
    assert_eq!(sales["name"], "Sales");
    assert_eq!(sales["organization_id"], app.org.org_id);
    assert_eq!(stage_names(&sales), named(&["New", "Qualified", "Won"]));
    let ids = stage_ids(&sales);
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);

    let fetched = get_ok(&app, &format!("/pipelines/{}", id_of(&sales))).await;
    assert_eq!(fetched["stages"], sales["stages"]);
    let page = get_ok(&app, "/pipelines").await;
    assert_eq!(page["total"], 1);
    assert_eq!(records(&page)[0]["stages"], sales["stages"]);
    // Without stages in `$select`, none are embedded.
    let page = get_ok(&app, "/pipelines?$select[]=name").await;
    assert!(records(&page)[0].get("stages").is_none(), "{page}");

    let empty = app.create("/pipelines", json!({"name": "Empty"})).await;
    assert_eq!(empty["stages"], json!([]));

    for bad in [
        json!({"stages": [{"name": "x"}]}),
        json!({"name": "P", "stages": [{"name": "ok"}, {"name": "  "}]}),
        json!({"name": "P", "stages": [{"position": 1, "name": "x"}]}),
        json!({"name": "P", "stages": [{"id": ids[0], "name": "x"}]}),
        json!({"name": "P", "stages": {"name": "x"}}),
        json!({"name": "P", "stages": [{"name": "x".repeat(101)}]}),
    ] {
        let (status, body) = app.post("/pipelines", bad.clone()).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    let (status, body) = app
        .post(
            "/pipelines",
            json!({"name": "P", "stages": [{"name": "ok"}, {}]}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["stages.1"].is_array(), "{body}");
    assert_eq!(total_of(&app, "/pipelines?$limit=0").await, 2);
}

#[actix_web::test]
async fn patch_keeps_renames_adds_and_drops_stages() {
    let app = spawn_app().await;
    let sales = pipeline(&app, "Sales", &["New", "Qualified", "Won"]).await;
    let path = format!("/pipelines/{}", id_of(&sales));
    let [new, qualified, won] = stage_ids(&sales)[..] else {
        panic!("three stages")
    };
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let in_qualified = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    let in_new = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    patch_ok(
        &app,
        &format!("/conversations/{in_qualified}"),
        json!({"pipeline_stage_id": qualified}),
    )
    .await;
    patch_ok(
        &app,
        &format!("/conversations/{in_new}"),
        json!({"pipeline_stage_id": new}),
    )
    .await;

    // Reorder, rename one, add one, drop "Qualified".
    let patched = patch_ok(
        &app,
        &path,
        json!({"name": "Sales 2", "stages": [
            {"id": won, "name": "Won"},
            {"id": new, "name": "Fresh"},
            {"name": "Lost"},
        ]}),
    )
    .await;
    assert_eq!(patched["name"], "Sales 2");
    assert_eq!(stage_names(&patched), named(&["Won", "Fresh", "Lost"]));
    let ids = stage_ids(&patched);
    assert_eq!(ids[..2], [won, new]);
    assert!(![new, qualified, won].contains(&ids[2]), "a new stage id");
    assert_eq!(get_ok(&app, &path).await["stages"], patched["stages"]);

    // The conversation in the dropped stage keeps the pipeline, loses the stage.
    let dropped = get_ok(&app, &format!("/conversations/{in_qualified}")).await;
    assert_eq!(dropped["pipeline_stage_id"], Value::Null);
    assert_eq!(dropped["pipeline_id"], sales["id"]);
    let kept = get_ok(&app, &format!("/conversations/{in_new}")).await;
    assert_eq!(kept["pipeline_stage_id"], new);
    assert_eq!(
        total_of(
            &app,
            &format!("/conversations?pipeline_stage_id={qualified}&$limit=0")
        )
        .await,
        0
    );
    assert_eq!(
        total_of(
            &app,
            &format!("/conversations?pipeline_stage_id={new}&$limit=0")
        )
        .await,
        1
    );

    // A patch without stages leaves them alone.
    let renamed = patch_ok(&app, &path, json!({"name": "Sales 3"})).await;
    assert_eq!(renamed["stages"], patched["stages"]);

    // A stage of another pipeline is refused, and nothing changes.
    let support = pipeline(&app, "Support", &["Triage"]).await;
    let triage = stage_ids(&support)[0];
    let (status, body) = app
        .patch(
            &path,
            json!({"name": "Broken", "stages": [{"id": triage, "name": "Stolen"}]}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "stage_in_pipeline");
    let after = get_ok(&app, &path).await;
    assert_eq!(after["name"], "Sales 3");
    assert_eq!(after["stages"], patched["stages"]);
    let support_after = get_ok(&app, &format!("/pipelines/{}", id_of(&support))).await;
    assert_eq!(stage_names(&support_after), named(&["Triage"]));

    // Dropping every stage.
    let cleared = patch_ok(&app, &path, json!({"stages": []})).await;
    assert_eq!(cleared["stages"], json!([]));
    let kept = get_ok(&app, &format!("/conversations/{in_new}")).await;
    assert_eq!(kept["pipeline_stage_id"], Value::Null);
    assert_eq!(kept["pipeline_id"], sales["id"]);

    let (status, body) = app.patch("/pipelines", json!({"name": "All"})).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}

#[actix_web::test]
async fn remove_answers_the_pipeline_and_frees_its_conversations() {
    let app = spawn_app().await;
    let sales = pipeline(&app, "Sales", &["New", "Won"]).await;
    let path = format!("/pipelines/{}", id_of(&sales));
    let won = stage_ids(&sales)[1];
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let conversation = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"pipeline_stage_id": won}),
    )
    .await;

    let (status, removed) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "Sales");
    assert_eq!(removed["stages"], sales["stages"]);
    let (status, body) = app.get(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let conv = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(conv["pipeline_id"], Value::Null);
    assert_eq!(conv["pipeline_stage_id"], Value::Null);
    assert_eq!(
        total_of(
            &app,
            &format!("/conversations?pipeline_id={}&$limit=0", id_of(&sales))
        )
        .await,
        0
    );
    assert_eq!(
        total_of(&app, "/conversations?pipeline_id=&$limit=0").await,
        1
    );
}

#[actix_web::test]
async fn agents_read_pipelines_but_cannot_write_them() {
    let app = spawn_app().await;
    let sales = pipeline(&app, "Sales", &["New"]).await;
    let path = format!("/pipelines/{}", id_of(&sales));
    let agent = app.new_user(&app.org, "agent").await;

    let (status, page) = app.call_as(&agent, Method::GET, "/pipelines", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id_of(&sales)]);
    let (status, got) = app.call_as(&agent, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["stages"], sales["stages"]);

    let (status, body) = app
        .call_as(
            &agent,
            Method::POST,
            "/pipelines",
            Some(json!({"name": "Mine", "stages": [{"name": "A"}]})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"name": "Hijacked", "stages": []})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app.call_as(&agent, Method::DELETE, &path, None).await;
    assert_error(status, &body, 403, "Forbidden");

    let after = get_ok(&app, &path).await;
    assert_eq!(after["name"], "Sales");
    assert_eq!(after["stages"], sales["stages"]);
    assert_eq!(total_of(&app, "/pipelines?$limit=0").await, 1);
}

#[actix_web::test]
async fn ai_assistants_are_written_by_admins_only() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;

    let (status, body) = app
        .call_as(
            &agent,
            Method::POST,
            "/ai-assistants",
            Some(json!({"name": "Rogue"})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");

    let bot = app
        .create("/ai-assistants", json!({"name": "Helper"}))
        .await;
    assert_eq!(bot["name"], "Helper");
    assert_eq!(bot["organization_id"], app.org.org_id);
    let path = format!("/ai-assistants/{}", id_of(&bot));

    let (status, page) = app
        .call_as(&agent, Method::GET, "/ai-assistants", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![id_of(&bot)]);
    let (status, body) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app.call_as(&agent, Method::DELETE, &path, None).await;
    assert_error(status, &body, 403, "Forbidden");

    let (status, body) = app.post("/ai-assistants", json!({})).await;
    assert_error(status, &body, 400, "BadRequest");
    let renamed = patch_ok(&app, &path, json!({"name": "Helper 2"})).await;
    assert_eq!(renamed["name"], "Helper 2");
    assert_eq!(
        get_ok(&app, "/ai-assistants?name[$ilike]=helper%25").await["total"],
        1
    );

    // Removing an assistant unassigns its conversations.
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let conversation = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"assigned_ai_assistant_id": id_of(&bot)}),
    )
    .await;
    let (status, removed) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "Helper 2");
    let (status, body) = app.get(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let conv = get_ok(&app, &format!("/conversations/{conversation}")).await;
    assert_eq!(conv["assigned_ai_assistant_id"], Value::Null);
    assert_eq!(
        total_of(
            &app,
            &format!(
                "/conversations?assigned_ai_assistant_id={}&$limit=0",
                id_of(&bot)
            )
        )
        .await,
        0
    );
}
