//! `/conversations-bulk-actions` through the API: every action on every kind of
//! target, the value checked before any row changes, dry runs, tenant isolation,
//! large actions as a job with progress, a killed job resumed (each row changed
//! once), cancellation.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const PATH: &str = "/conversations-bulk-actions";

/// `n` open conversations of `tenant`, each with its own contact; answers their ids.
async fn conversations(app: &TestApp, tenant: &Tenant, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let contact = create_contact_as(app, tenant, json!({"first_name": format!("C{i}")})).await;
        ids.push(create_conversation(app, tenant.org_id, contact, "whatsapp", "open").await);
    }
    ids
}

async fn conversation(app: &TestApp, id: i64) -> Value {
    get_ok(app, &format!("/conversations/{id}")).await
}

async fn bulk(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post(PATH, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer
}

async fn events(app: &TestApp, path: &str, event: &str) -> i64 {
    sql_i64(
        app,
        &format!("SELECT COUNT(*) FROM events WHERE path = '{path}' AND event = '{event}'"),
    )
    .await
}

#[actix_web::test]
async fn each_action_applies_to_ids_views_and_filters() {
    let app = spawn_app().await;
    let ids = conversations(&app, &app.org, 4).await;
    let agent = app.new_user(&app.org, "agent").await;
    let ai = app.create("/ai-assistants", json!({"name": "Bot"})).await;
    let sales = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]}),
        )
        .await;
    let won = sales["stages"][1]["id"].as_i64().unwrap();

    let done = bulk(&app, json!({"action": "assign", "conversation_ids": &ids[..2], "assigned_user_id": agent.user_id})).await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["total"].as_i64(),
            done["processed_count"].as_i64()
        ),
        (Some("completed"), Some(2), Some(2)),
        "{done}"
    );
    assert_eq!(done["failed_count"], 0);
    assert_eq!(
        conversation(&app, ids[0]).await["assigned_user_id"],
        agent.user_id
    );
    assert_eq!(
        conversation(&app, ids[2]).await["assigned_user_id"],
        Value::Null
    );

    // A filter: every match of a /conversations query.
    let done = bulk(&app, json!({"action": "update_status", "filter": {"assigned_user_id": agent.user_id}, "status": "closed"})).await;
    assert_eq!(done["processed_count"], 2);
    assert_eq!(conversation(&app, ids[1]).await["status"], "closed");
    assert_eq!(conversation(&app, ids[3]).await["status"], "open");

    // A saved view's query.
    let view = app
        .create(
            "/conversation-views",
            json!({"name": "closed", "query": {"status": "closed"}}),
        )
        .await;
    let done = bulk(&app, json!({"action": "move", "view_id": view["id"], "pipeline_id": sales["id"], "pipeline_stage_id": won})).await;
    assert_eq!(done["processed_count"], 2);
    let moved = conversation(&app, ids[0]).await;
    assert_eq!(
        (
            moved["pipeline_id"].as_i64(),
            moved["pipeline_stage_id"].as_i64()
        ),
        (sales["id"].as_i64(), Some(won))
    );

    let all = json!(ids);
    bulk(&app, json!({"action": "assign_ai_assistant", "conversation_ids": all, "assigned_ai_assistant_id": ai["id"]})).await;
    assert_eq!(
        conversation(&app, ids[3]).await["assigned_ai_assistant_id"],
        ai["id"]
    );
    bulk(&app, json!({"action": "assign_ai_assistant", "conversation_ids": all, "assigned_ai_assistant_id": null})).await;
    assert_eq!(
        conversation(&app, ids[3]).await["assigned_ai_assistant_id"],
        Value::Null
    );
    bulk(
        &app,
        json!({"action": "mark_unread", "conversation_ids": all}),
    )
    .await;
    assert_eq!(conversation(&app, ids[2]).await["unread_count"], 1);
    bulk(
        &app,
        json!({"action": "mark_read", "conversation_ids": all}),
    )
    .await;
    assert_eq!(conversation(&app, ids[2]).await["unread_count"], 0);
    bulk(&app, json!({"action": "block", "conversation_ids": all})).await;
    assert_eq!(conversation(&app, ids[1]).await["blocked"], true);
    bulk(&app, json!({"action": "unblock", "conversation_ids": all})).await;
    assert_eq!(conversation(&app, ids[1]).await["blocked"], false);
    bulk(
        &app,
        json!({"action": "assign", "conversation_ids": all, "assigned_user_id": null}),
    )
    .await;
    assert_eq!(
        conversation(&app, ids[0]).await["assigned_user_id"],
        Value::Null
    );

    let patched_before = events(&app, "conversations", "patched").await;
    let done = bulk(
        &app,
        json!({"action": "delete", "conversation_ids": &ids[..3]}),
    )
    .await;
    assert_eq!(done["processed_count"], 3);
    assert_eq!(total_of(&app, "/conversations").await, 1);
    assert_eq!(events(&app, "conversations", "removed").await, 3);
    assert_eq!(
        events(&app, "conversations", "patched").await,
        patched_before
    );
    // Each action is a record to read back, newest first.
    let page = get_ok(&app, PATH).await;
    assert_eq!(page["total"], 11);
    assert_eq!(records(&page)[0]["action"], "delete");
}

#[actix_web::test]
async fn one_target_and_a_valid_value_or_nothing_changes() {
    let app = spawn_app().await;
    let ids = conversations(&app, &app.org, 2).await;
    let other = app.new_tenant("Other").await;
    let sales = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}]}),
        )
        .await;
    let support = app
        .create(
            "/pipelines",
            json!({"name": "Support", "stages": [{"name": "Open"}]}),
        )
        .await;
    let before = events(&app, "conversations", "patched").await;
    let refused = [
        (json!({"action": "block"}), 400),
        (
            json!({"action": "block", "conversation_ids": ids, "filter": {}}),
            400,
        ),
        (json!({"action": "explode", "conversation_ids": ids}), 400),
        (
            json!({"action": "block", "conversation_ids": ids, "status": "open"}),
            400,
        ),
        (
            json!({"action": "update_status", "conversation_ids": ids, "status": "snoozed"}),
            422,
        ),
        (
            json!({"action": "update_status", "conversation_ids": ids}),
            422,
        ),
        (
            json!({"action": "assign", "conversation_ids": ids, "assigned_user_id": other.user_id}),
            422,
        ),
        (
            json!({"action": "move", "conversation_ids": ids, "pipeline_id": sales["id"], "pipeline_stage_id": support["stages"][0]["id"]}),
            422,
        ),
        (json!({"action": "block", "filter": {"$limit": 5}}), 400),
        (json!({"action": "block", "filter": {"nonsense": 1}}), 400),
        (
            json!({"action": "block", "conversation_ids": (0..10_001).collect::<Vec<i64>>()}),
            400,
        ),
        (
            json!({"action": "block", "conversation_ids": ids, "organization_id": other.org_id}),
            403,
        ),
    ];
    for (body, code) in refused {
        let (status, answer) = app.post(PATH, body.clone()).await;
        assert_eq!(status.as_u16(), code, "{body} -> {answer}");
        assert!(answer["name"].is_string(), "{answer}");
    }
    // An agent may not delete.
    let agent = app.new_user(&app.org, "agent").await;
    let (status, answer) = app
        .call_as(
            &agent,
            Method::POST,
            PATH,
            Some(json!({"action": "delete", "conversation_ids": ids})),
        )
        .await;
    assert_error(status, &answer, 403, "Forbidden");
    assert_eq!(events(&app, "conversations", "patched").await, before);
    assert_eq!(total_of(&app, PATH).await, 0);
    assert_eq!(total_of(&app, "/conversations").await, 2);
}

#[actix_web::test]
async fn a_dry_run_counts_and_changes_nothing() {
    let app = spawn_app().await;
    let ids = conversations(&app, &app.org, 3).await;
    let answer = bulk(&app, json!({"action": "update_status", "filter": {"status": "open"}, "status": "closed", "dry_run": true})).await;
    assert_eq!(
        (answer["total"].as_i64(), answer["dry_run"].as_bool()),
        (Some(3), Some(true)),
        "{answer}"
    );
    assert_eq!(answer["processed_count"], 0);
    assert_eq!(conversation(&app, ids[0]).await["status"], "open");
    assert_eq!(total_of(&app, PATH).await, 0);
}

#[actix_web::test]
async fn another_organizations_rows_are_never_touched() {
    let app = spawn_app().await;
    let mine = conversations(&app, &app.org, 2).await;
    let other = app.new_tenant("Other").await;
    let theirs = conversations(&app, &other, 2).await;
    let their_view = {
        let (status, view) = app
            .call(
                Method::POST,
                "/conversation-views",
                Some(json!({"name": "all", "query": {}})),
                Some(&other.token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        view
    };
    let mut ids = mine.clone();
    ids.extend(&theirs);
    let done = bulk(
        &app,
        json!({"action": "update_status", "conversation_ids": ids, "status": "closed"}),
    )
    .await;
    assert_eq!(
        (
            done["processed_count"].as_i64(),
            done["failed_count"].as_i64()
        ),
        (Some(2), Some(2)),
        "{done}"
    );
    let failed: Vec<i64> = done["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversation_id"].as_i64().unwrap())
        .collect();
    assert_eq!(failed, theirs);
    assert!(
        done["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"] == "not found")
    );
    // Their organization in a filter is a 403, their view a 400.
    let (status, _) = app
        .post(
            PATH,
            json!({"action": "block", "filter": {"organization_id": other.org_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            PATH,
            json!({"action": "block", "view_id": their_view["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An empty filter is every conversation of the caller's organization, and only those.
    let done = bulk(&app, json!({"action": "block", "filter": {}})).await;
    assert_eq!(done["processed_count"], 2);
    for id in theirs {
        let (_, c) = app
            .call(
                Method::GET,
                &format!("/conversations/{id}"),
                None,
                Some(&other.token),
            )
            .await;
        assert_eq!(
            (c["status"].as_str(), c["blocked"].as_bool()),
            (Some("open"), Some(false))
        );
    }
    // Their bulk action is not ours to read.
    let (status, _) = app
        .call(
            Method::GET,
            &format!("{PATH}/{}", done["id"]),
            None,
            Some(&other.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The action once `done` holds for it.
async fn wait_for(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let action = get_ok(app, &format!("{PATH}/{id}")).await;
        if done(&action) {
            return action;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never got there: {action}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_large_action_runs_as_a_job_in_batches() {
    let app = spawn_app_with(|s| {
        s.bulk_sync_limit = 10;
        s.bulk_batch_size = 7;
    })
    .await;
    let ids = conversations(&app, &app.org, 40).await;
    let started = bulk(
        &app,
        json!({"action": "update_status", "filter": {}, "status": "closed"}),
    )
    .await;
    assert_eq!(
        (started["status"].as_str(), started["total"].as_i64()),
        (Some("running"), Some(40)),
        "{started}"
    );
    let done = wait_for(&app, started["id"].as_i64().unwrap(), |a| {
        a["status"] != "running"
    })
    .await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["processed_count"].as_i64(),
            done["failed_count"].as_i64()
        ),
        (Some("completed"), Some(40), Some(0))
    );
    assert!(done["finished_at"].is_string());
    assert_eq!(total_of(&app, "/conversations?status=closed").await, 40);
    assert_eq!(
        events(&app, "conversations", "patched").await,
        40,
        "one event a row"
    );
    // A patched event on the action per batch (6 of 7 and one of 5).
    assert_eq!(
        events(&app, "conversations-bulk-actions", "patched").await,
        6
    );
    // The target was fixed at the start: a conversation made later is not touched.
    let late = conversations(&app, &app.org, 1).await[0];
    assert_eq!(conversation(&app, late).await["status"], "open");
    assert!(
        ids.contains(
            &records(&get_ok(&app, "/conversations?$limit=1&$sort[id]=1").await)[0]["id"]
                .as_i64()
                .unwrap()
        )
    );
}

#[actix_web::test]
async fn a_running_action_can_be_cancelled() {
    // No worker here: the action waits in its job until another instance runs it.
    let app = spawn_app_with(|s| {
        s.bulk_sync_limit = 2;
        s.job_concurrency = 0;
    })
    .await;
    conversations(&app, &app.org, 5).await;
    let started = bulk(&app, json!({"action": "block", "filter": {}})).await;
    let id = started["id"].as_i64().unwrap();
    let (status, answer) = app
        .patch(&format!("{PATH}/{id}"), json!({"status": "completed"}))
        .await;
    assert_error(status, &answer, 400, "BadRequest");
    let cancelled = patch_ok(
        &app,
        &format!("{PATH}/{id}"),
        json!({"status": "cancelled"}),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, answer) = app
        .patch(&format!("{PATH}/{id}"), json!({"status": "cancelled"}))
        .await;
    assert_error(status, &answer, 409, "Conflict");
    another_instance(&app, |_| {}).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sql_i64(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE kind = 'bulk.run' AND status = 'done'",
    )
    .await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total_of(&app, "/conversations?blocked=true").await, 0);
    assert_eq!(
        get_ok(&app, &format!("{PATH}/{id}")).await["processed_count"],
        0
    );
}

/// A server killed (SIGKILL) in the middle of a large action: the next instance
/// resumes it, and every conversation is changed exactly once (one event each).
#[actix_web::test]
async fn a_killed_bulk_job_resumes_and_changes_every_row_once() {
    let app = spawn_app_with(|s| {
        s.bulk_sync_limit = 10;
        s.job_concurrency = 0;
        s.job_lease_secs = 2;
    })
    .await;
    let n = 400;
    conversations(&app, &app.org, n).await;
    let started = bulk(
        &app,
        json!({"action": "update_status", "filter": {}, "status": "closed"}),
    )
    .await;
    let id = started["id"].as_i64().unwrap();
    let (mut server, _) = start_binary(
        &app.database_url,
        &[
            ("JWT_SECRET", app.jwt_secret.as_str()),
            ("APP__JOB_CONCURRENCY", "1"),
            ("APP__JOB_LEASE_SECS", "2"),
            ("APP__BULK_BATCH_SIZE", "2"),
        ],
    );
    let progress = format!("SELECT processed_count FROM bulk_actions WHERE id = {id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sql_i64(&app, &progress).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the binary never started the action"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    let at_kill = sql_i64(&app, &progress).await;
    assert!(
        at_kill < n as i64,
        "finished before the kill ({at_kill}); make it slower"
    );
    another_instance(&app, |s| {
        s.job_lease_secs = 2;
        s.bulk_batch_size = 50;
    })
    .await;
    let done = wait_for(&app, id, |a| a["status"] != "running").await;
    assert_eq!(
        (
            done["processed_count"].as_i64(),
            done["failed_count"].as_i64()
        ),
        (Some(n as i64), Some(0)),
        "{done}"
    );
    assert_eq!(
        total_of(&app, "/conversations?status=closed").await,
        n as i64
    );
    assert_eq!(
        events(&app, "conversations", "patched").await,
        n as i64,
        "a row changed twice, or not at all"
    );
}

#[actix_web::test]
async fn a_retried_bulk_action_with_its_key_is_not_run_twice() {
    let app = spawn_app().await;
    conversations(&app, &app.org, 2).await;
    let view = app
        .create(
            "/conversation-views",
            json!({"name": "open", "query": {"status": "open"}}),
        )
        .await;
    let body = json!({"action": "mark_unread", "view_id": view["id"]});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let req = app
            .request(Method::POST, PATH)
            .header("Idempotency-Key", "bulk-1")
            .json(&body);
        let (status, answer) = send(req).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answers.push(answer);
    }
    assert_eq!(answers[0]["id"], answers[1]["id"]);
    assert_eq!(total_of(&app, PATH).await, 1);
}

#[actix_web::test]
async fn message_search_finds_conversations_by_their_live_messages() {
    let app = spawn_app().await;
    let ids = conversations(&app, &app.org, 4).await;
    let text = |t: &'static str| {
        move |m: &mut inbox_gateway::domain::messages::NewMessage| m.text = Some(t.into())
    };
    insert_message(
        &app,
        app.org.org_id,
        ids[0],
        "whatsapp",
        text("Where is my PARCEL?"),
    )
    .await;
    insert_message(
        &app,
        app.org.org_id,
        ids[1],
        "whatsapp",
        text("the parcel arrived, thanks"),
    )
    .await;
    let removed = insert_message(
        &app,
        app.org.org_id,
        ids[2],
        "whatsapp",
        text("parcel 100%_off"),
    )
    .await;
    exec_sql(
        &app,
        &format!("UPDATE messages SET deleted_at = created_at WHERE id = {removed}"),
    )
    .await;
    insert_message(
        &app,
        app.org.org_id,
        ids[3],
        "whatsapp",
        text("nothing to see"),
    )
    .await;
    let other = app.new_tenant("Other").await;
    let theirs = conversations(&app, &other, 1).await[0];
    insert_message(
        &app,
        other.org_id,
        theirs,
        "whatsapp",
        text("my parcel too"),
    )
    .await;

    let page = get_ok(&app, "/conversations?messageSearchTerm=parcel&$sort[id]=1").await;
    assert_eq!(ids_of(&page), vec![ids[0], ids[1]], "{page}");
    assert_eq!(page["total"], 2);
    // LIKE's own characters are plain text.
    assert_eq!(
        total_of(&app, "/conversations?messageSearchTerm=100%25_").await,
        0
    );
    let (status, body) = app.get("/conversations?messageSearchTerm=pa").await;
    assert_error(status, &body, 400, "BadRequest");
    // With other filters, and as a bulk target.
    assert_eq!(
        total_of(
            &app,
            &format!("/conversations?messageSearchTerm=arrived&id={}", ids[1])
        )
        .await,
        1
    );
    let done = bulk(&app, json!({"action": "update_status", "status": "closed", "filter": {"messageSearchTerm": "PARCEL"}})).await;
    assert_eq!(done["processed_count"], 2);
    assert_eq!(conversation(&app, ids[2]).await["status"], "open");
}

fn ids_of(page: &Value) -> Vec<i64> {
    records(page)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn every_action_works_on_every_kind_of_target() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let ai = app.create("/ai-assistants", json!({"name": "Bot"})).await;
    let sales = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}]}),
        )
        .await;
    let stage = sales["stages"][0]["id"].clone();
    // (action and value, the field it sets, the value it gets)
    let actions = [
        (
            json!({"action": "assign", "assigned_user_id": agent.user_id}),
            "assigned_user_id",
            json!(agent.user_id),
        ),
        (
            json!({"action": "update_status", "status": "closed"}),
            "status",
            json!("closed"),
        ),
        (
            json!({"action": "assign_ai_assistant", "assigned_ai_assistant_id": ai["id"]}),
            "assigned_ai_assistant_id",
            ai["id"].clone(),
        ),
        (
            json!({"action": "move", "pipeline_id": sales["id"], "pipeline_stage_id": stage}),
            "pipeline_stage_id",
            stage.clone(),
        ),
        (json!({"action": "mark_unread"}), "unread_count", json!(1)),
        (json!({"action": "mark_read"}), "unread_count", json!(0)),
        (json!({"action": "block"}), "blocked", json!(true)),
        (json!({"action": "unblock"}), "blocked", json!(false)),
    ];
    for kind in ["conversation_ids", "view_id", "filter"] {
        let ids = conversations(&app, &app.org, 2).await;
        // The target: these two conversations, however it is named.
        let filter = json!({"id": {"$in": ids}});
        let target = match kind {
            "conversation_ids" => json!(ids),
            "view_id" => app
                .create(
                    "/conversation-views",
                    json!({"name": format!("v{}", ids[0]), "query": filter}),
                )
                .await["id"]
                .clone(),
            _ => filter,
        };
        for (action, field, value) in &actions {
            let mut body = action.clone();
            body[kind] = target.clone();
            let done = bulk(&app, body.clone()).await;
            assert_eq!(done["processed_count"], 2, "{body} -> {done}");
            for id in &ids {
                assert_eq!(
                    &conversation(&app, *id).await[*field],
                    value,
                    "{kind}: {body}"
                );
            }
        }
        let done = bulk(&app, json!({"action": "delete", kind: target})).await;
        assert_eq!(done["processed_count"], 2, "{kind} delete -> {done}");
        for id in &ids {
            let (status, _) = app.get(&format!("/conversations/{id}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    }
}
