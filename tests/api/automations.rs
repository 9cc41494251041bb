//! `/automations` and `/automations-executions` through HTTP: steps checked on
//! write, the secret shown once, each step acting as the automation through the
//! domain (its events and rules), webhook steps against a local receiver (signed,
//! retried on 5xx, failing on 4xx, adding steps, refused private targets), waits
//! that end the job, idempotent triggers, disabled automations, a step that breaks
//! a channel rule, and a run killed mid-webhook that resumes where it stopped.

use crate::helpers::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers one call.
#[derive(Clone, Debug)]
enum Reply {
    Json(u16, Value),
    /// Answers after this long (a client with a shorter timeout gives up).
    Slow(Duration, u16, Value),
}

#[derive(Default)]
struct ReceiverState {
    script: VecDeque<Reply>,
    /// Each call: its headers of interest and raw body.
    calls: Vec<Call>,
}

#[derive(Clone, Debug)]
struct Call {
    signature: String,
    timestamp: String,
    id: String,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:0: scripted answers (then 200 `{}`), every call kept.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<ReceiverState>>>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let reply = {
        let mut s = state.lock().unwrap();
        s.calls.push(Call {
            signature: header("x-webhook-signature"),
            timestamp: header("x-webhook-timestamp"),
            id: header("x-webhook-id"),
            body: body.to_vec(),
        });
        s.script.pop_front()
    };
    let (delay, status, body) = match reply {
        Some(Reply::Json(status, body)) => (Duration::ZERO, status, body),
        Some(Reply::Slow(delay, status, body)) => (delay, status, body),
        None => (Duration::ZERO, 200, json!({})),
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

impl Receiver {
    async fn start() -> Self {
        let state: Arc<Mutex<ReceiverState>> = Default::default();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            handle,
        }
    }
    fn script(&self, replies: Vec<Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }
    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

async fn create_automation(app: &TestApp, steps: Value) -> Value {
    app.create(
        "/automations",
        json!({ "name": "Follow up", "trigger": "manual", "steps": steps }),
    )
    .await
}

async fn trigger(app: &TestApp, automation: i64, conversation: i64) -> Value {
    app.create(
        "/automations-executions",
        json!({
            "automation_id": automation,
            "organization_id": app.org.org_id,
            "conversation_id": conversation,
        }),
    )
    .await
}

/// Polls execution `id` until it is over (succeeded or failed).
async fn finished(app: &TestApp, id: i64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = get_ok(app, &format!("/automations-executions/{id}")).await;
        if matches!(run["status"].as_str(), Some("succeeded" | "failed")) {
            return run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never finished: {run}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// An open playground conversation of the first organization (outgoing messages
/// are delivered at once there; nothing leaves the system).
async fn conversation(app: &TestApp) -> (i64, i64) {
    let contact =
        create_contact(app, json!({ "first_name": "Ada", "phone": "+15550001111" })).await;
    let contact = id_of(&contact);
    let conversation =
        create_conversation(app, app.org.org_id, contact, "playground", "open").await;
    (contact, conversation)
}

#[actix_web::test]
async fn automations_are_admins_with_each_step_checked_on_write_and_the_secret_shown_once() {
    let app = spawn_app().await;
    let created = create_automation(
        &app,
        json!([
            {"type": "update_status", "status": "closed"},
            {"type": "wait", "seconds": 60},
            {"type": "webhook", "url": "https://hooks.example.com/run"},
        ]),
    )
    .await;
    let secret = created["secret"].as_str().expect("the secret, once");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{created}"
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["steps"][1], json!({"type": "wait", "seconds": 60}));
    assert!(created.get("secret_sealed").is_none());
    let id = id_of(&created);
    let read = get_ok(&app, &format!("/automations/{id}")).await;
    assert!(
        read.get("secret").is_none() && read.get("secret_sealed").is_none(),
        "{read}"
    );
    let sealed = sql_i64(
        &app,
        &format!(
            "SELECT COUNT(*) FROM automations WHERE id = {id} AND secret_sealed NOT LIKE '%whsec_%'"
        ),
    )
    .await;
    assert_eq!(sealed, 1, "the secret is sealed at rest");

    // Each bad step is a 422 naming its index and field; nothing is stored.
    let other = app.new_tenant("Other").await;
    let (_, foreign_user) = app.call_as(&other, Method::GET, "/users", None).await;
    let foreign_user = ids(&foreign_user)[0];
    for (steps, path) in [
        (
            json!([{"type": "update_status", "status": "snoozed"}]),
            "steps[0].status",
        ),
        (
            json!([{"type": "wait", "seconds": 1}, {"type": "teleport"}]),
            "steps[1].type",
        ),
        (json!([{"type": "wait", "seconds": 0}]), "steps[0].seconds"),
        (json!([{"type": "send_message"}]), "steps[0].text"),
        (
            json!([{"type": "assign", "assigned_user_id": foreign_user}]),
            "steps[0].assigned_user_id",
        ),
        (
            json!([{"type": "add_tag", "tag_id": 999999}]),
            "steps[0].tag_id",
        ),
        (
            json!([{"type": "webhook", "url": "ftp://example.com/x"}]),
            "steps[0].url",
        ),
        (
            json!([{"type": "webhook", "url": "https://169.254.169.254/latest/meta-data"}]),
            "steps[0].url",
        ),
        (
            json!([{"type": "webhook", "url": "https://[fd00:ec2::254]/"}]),
            "steps[0].url",
        ),
        (
            json!([{"type": "webhook", "url": "https://10.1.2.3/"}]),
            "steps[0].url",
        ),
        (
            json!([{"type": "update_status", "status": "open", "color": "red"}]),
            "steps[0].color",
        ),
    ] {
        let (status, body) = app
            .post("/automations", json!({"name": "bad", "steps": steps}))
            .await;
        assert_error(status, &body, 422, "Unprocessable");
        assert_eq!(body["data"]["path"], path, "{body}");
        assert_eq!(body["data"]["rule"], "automation_step", "{body}");
    }
    assert_eq!(total_of(&app, "/automations").await, 1);

    // Agents read, admins write.
    let agent = app.new_user(&app.org, "agent").await;
    let (status, body) = app
        .call_as(
            &agent,
            Method::POST,
            "/automations",
            Some(json!({"name": "x", "steps": []})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .call_as(
            &agent,
            Method::PATCH,
            &format!("/automations/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, _) = app
        .call_as(&agent, Method::GET, &format!("/automations/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Another organization sees none of it.
    let (status, _) = app
        .call_as(&other, Method::GET, &format!("/automations/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let patched = patch_ok(
        &app,
        &format!("/automations/{id}"),
        json!({"enabled": false, "steps": [{"type": "assign", "assigned_user_id": null}]}),
    )
    .await;
    assert_eq!(patched["enabled"], false);
    assert_eq!(
        patched["steps"],
        json!([{"type": "assign", "assigned_user_id": null}])
    );
    assert!(patched.get("secret").is_none());
    let events = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE path = 'automations'",
    )
    .await;
    assert_eq!(events, 2, "created and patched");
    let (status, _) = app.delete(&format!("/automations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total_of(&app, "/automations").await, 0);
}

#[actix_web::test]
async fn each_step_acts_through_the_domain_as_the_automation() {
    let app = spawn_app().await;
    let (contact, conversation) = conversation(&app).await;
    let agent = app.new_user(&app.org, "agent").await;
    let bot = app.create("/ai-assistants", json!({"name": "Bot"})).await;
    let pipeline = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]}),
        )
        .await;
    let stage = id_of(&pipeline["stages"][1]);
    let tag = app.create("/tags", json!({"name": "vip"})).await;
    let canned = app
        .create(
            "/conversation-predefined-messages",
            json!({"title": "hi", "content": "Hello {{contact.first_name}}"}),
        )
        .await;
    let automation = create_automation(
        &app,
        json!([
            {"type": "send_message", "text": "internal: follow up", "note": true},
            {"type": "send_message", "predefined_message_id": id_of(&canned)},
            {"type": "update_status", "status": "closed"},
            {"type": "assign", "assigned_user_id": agent.user_id},
            {"type": "assign_ai_assistant", "assigned_ai_assistant_id": id_of(&bot)},
            {"type": "move", "pipeline_id": id_of(&pipeline), "pipeline_stage_id": stage},
            {"type": "add_tag", "tag_id": id_of(&tag)},
        ]),
    )
    .await;
    // Automation engines trigger with an API key.
    let key = app.create("/api-keys", json!({"name": "engine"})).await;
    let (status, queued) = send(
        app.client
            .post(app.url("/automations-executions"))
            .header("x-api-key", key["key"].as_str().unwrap())
            .json(&json!({
                "automation_id": id_of(&automation),
                "organization_id": app.org.org_id,
                "conversation_id": conversation,
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{queued}");
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["triggered_by"]["type"], "api_key");
    assert_eq!(queued["steps_result"], json!([]));
    assert!(
        queued["initial_payload"]["conversation"]["id"] == conversation,
        "{queued}"
    );
    assert!(queued.get("steps").is_none() && queued.get("next_step").is_none());
    let run = finished(&app, id_of(&queued)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        run["started_at"].is_string() && run["finished_at"].is_string(),
        "{run}"
    );
    let results = run["steps_result"].as_array().unwrap();
    assert_eq!(results.len(), 7, "{run}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["status"], "succeeded", "{r}");
        assert!(r["duration_ms"].is_i64() && r["error"].is_null(), "{r}");
    }
    assert_eq!(results[6]["type"], "add_tag");

    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["status"], "closed");
    assert_eq!(record["assigned_user_id"], agent.user_id);
    assert_eq!(record["assigned_ai_assistant_id"], id_of(&bot));
    assert_eq!(record["pipeline_id"], id_of(&pipeline));
    assert_eq!(record["pipeline_stage_id"], stage);
    let contact = get_ok(&app, &format!("/contacts/{contact}")).await;
    assert_eq!(contact["tag_ids"], json!([id_of(&tag)]));
    let messages = get_ok(
        &app,
        &format!("/conversation-messages-playground?conversation_id={conversation}&$sort[id]=1"),
    )
    .await;
    let messages = records(&messages);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["message_type"], "note");
    assert_eq!(messages[1]["text"], "Hello Ada");
    for m in messages {
        assert_eq!(m["sender_type"], "automation", "{m}");
        assert_eq!(m["sender_id"], id_of(&automation), "{m}");
    }
    // Every write is an event of the automation as actor.
    let by_automation = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE CAST(actor AS TEXT) LIKE '%\"automation\"%' AND path = 'conversations'",
    )
    .await;
    assert!(
        by_automation >= 5,
        "{by_automation} conversation events by the automation"
    );
    let message_events = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE path = 'conversation-messages-playground' AND event = 'created'",
    )
    .await;
    assert_eq!(message_events, 2);
    let run_events = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE path = 'automations-executions'",
    )
    .await;
    assert_eq!(run_events, 1 + 1 + 7, "created, started, one per step");
}

#[actix_web::test]
async fn a_webhook_step_is_signed_carries_the_context_and_its_answer_adds_steps() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Reply::Json(
        200,
        json!({"ok": true, "steps": [{"type": "update_status", "status": "closed"}]}),
    )]);
    let (_, conversation) = conversation(&app).await;
    for text in ["first", "second", "third"] {
        let (status, body) = app
            .post(
                "/conversation-messages-playground",
                json!({"contact_id": conversation_record(&app, conversation).await["contact_id"], "sender_type": "contact", "message_text": text}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let automation = create_automation(
        &app,
        json!([{"type": "webhook", "url": receiver.url}, {"type": "assign", "assigned_user_id": app.org.user_id}]),
    )
    .await;
    let secret = automation["secret"].as_str().unwrap().to_string();
    let queued = trigger(&app, id_of(&automation), conversation).await;
    let run = finished(&app, id_of(&queued)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let results = run["steps_result"].as_array().unwrap();
    assert_eq!(
        results.len(),
        3,
        "the answer's step ran after the webhook: {run}"
    );
    assert_eq!(results[0]["output"]["status"], 200);
    assert_eq!(results[0]["output"]["added_steps"], 1);
    assert_eq!(results[1]["type"], "update_status");
    assert_eq!(results[2]["type"], "assign");
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["status"], "closed");
    assert_eq!(record["assigned_user_id"], app.org.user_id);

    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.signature,
        inbox_gateway::agentphone::signature::sign(&secret, &call.timestamp, &call.body),
        "signed with the automation's secret over timestamp.body"
    );
    assert!(call.signature.starts_with("sha256="));
    assert_eq!(call.id, format!("exec_{}_step_0", id_of(&queued)));
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["execution_id"], id_of(&queued));
    assert_eq!(body["conversation_id"], conversation);
    let texts: Vec<&str> = body["initial_payload"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["first", "second", "third"], "chronological");
    assert!(body["initial_payload"]["contact"]["id"].is_i64(), "{body}");
    assert_eq!(body["initial_payload"]["conversation"]["id"], conversation);
}

#[actix_web::test]
async fn a_webhook_5xx_or_timeout_is_retried_and_a_4xx_fails_the_run() {
    let app = spawn_app_with(|s| s.automation_webhook_timeout_ms = 500).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![
        Reply::Json(503, json!({"error": "busy"})),
        Reply::Slow(Duration::from_secs(2), 200, json!({})),
        Reply::Json(200, json!({})),
    ]);
    let (_, conversation) = conversation(&app).await;
    let automation = create_automation(
        &app,
        json!([{"type": "webhook", "url": receiver.url}, {"type": "update_status", "status": "closed"}]),
    )
    .await;
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&automation), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["steps_result"][0]["attempts"], 3, "{run}");
    let calls = receiver.calls();
    assert_eq!(calls.len(), 3);
    assert!(
        calls.iter().all(|c| c.id == calls[0].id),
        "one X-Webhook-ID for every attempt"
    );
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "closed"
    );

    // A 4xx fails the step and the run; the steps after it never run.
    receiver.script(vec![Reply::Json(404, json!({"error": "no such hook"}))]);
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&automation), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    let results = run["steps_result"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{run}");
    assert_eq!(results[0]["status"], "failed");
    assert_eq!(results[0]["error"]["data"]["status"], 404, "{run}");
    assert_eq!(results[0]["error"]["data"]["body"]["error"], "no such hook");
    assert_eq!(run["error"]["step"], 0, "{run}");
    assert_eq!(run["error"]["data"]["rule"], "webhook_status");
    assert_eq!(receiver.calls().len(), 4, "a 4xx is not retried");

    // A webhook answer with a bad step fails the run, naming the added step.
    receiver.script(vec![Reply::Json(
        200,
        json!({"steps": [{"type": "update_status", "status": "lost"}]}),
    )]);
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&automation), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["data"]["path"], "steps[1].status", "{run}");
}

#[actix_web::test]
async fn a_webhook_target_that_resolves_to_a_private_address_is_refused() {
    // Loopback not allowed here: `localhost` resolves to 127.0.0.1 at run time.
    let app = spawn_app_with(|s| s.automation_webhook_allow_loopback = false).await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post(
            "/automations",
            json!({"name": "plain http", "steps": [{"type": "webhook", "url": receiver.url}]}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["path"], "steps[0].url", "{body}");
    let (_, conversation) = conversation(&app).await;
    let automation = create_automation(
        &app,
        json!([{"type": "webhook", "url": format!("https://localhost:{port}/hook")}, {"type": "update_status", "status": "closed"}]),
    )
    .await;
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&automation), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["data"]["rule"], "webhook_target", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{run}"
    );
    assert!(receiver.calls().is_empty(), "nothing was sent");
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "open"
    );
}

#[actix_web::test]
async fn a_retried_trigger_answers_the_first_execution() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    let automation =
        create_automation(&app, json!([{"type": "update_status", "status": "closed"}])).await;
    let body = json!({"automation_id": id_of(&automation), "conversation_id": conversation});
    let post = |body: &Value| {
        app.request(Method::POST, "/automations-executions")
            .header("Idempotency-Key", "trigger-1")
            .json(body)
    };
    let (status, first) = send(post(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = send(post(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(id_of(&again), id_of(&first));
    let (status, other) = send(post(&json!({"automation_id": id_of(&automation), "conversation_id": conversation, "initial_payload": null}))).await;
    assert_error(status, &other, 409, "Conflict");
    finished(&app, id_of(&first)).await;
    assert_eq!(total_of(&app, "/automations-executions").await, 1);
    let runs = sql_i64(
        &app,
        "SELECT COUNT(*) FROM jobs WHERE kind = 'automation.run'",
    )
    .await;
    assert_eq!(runs, 1, "one run enqueued");
}

#[actix_web::test]
async fn a_trigger_is_refused_for_a_disabled_automation_or_anything_not_the_callers() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    let automation = app
        .create(
            "/automations",
            json!({"name": "off", "enabled": false, "steps": [{"type": "update_status", "status": "closed"}]}),
        )
        .await;
    let (status, body) = app
        .post(
            "/automations-executions",
            json!({"automation_id": id_of(&automation), "conversation_id": conversation}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "automation_enabled", "{body}");
    patch_ok(
        &app,
        &format!("/automations/{}", id_of(&automation)),
        json!({"enabled": true}),
    )
    .await;

    let other = app.new_tenant("Other").await;
    let (status, body) = app
        .post(
            "/automations-executions",
            json!({"automation_id": id_of(&automation), "organization_id": other.org_id, "conversation_id": conversation}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    // The other organization can name neither this automation nor this conversation.
    let (status, body) = app
        .call_as(
            &other,
            Method::POST,
            "/automations-executions",
            Some(json!({"automation_id": id_of(&automation), "conversation_id": conversation})),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["field"], "automation_id", "{body}");
    let theirs = app
        .call_as(
            &other,
            Method::POST,
            "/automations",
            Some(json!({"name": "t", "steps": []})),
        )
        .await
        .1;
    let (status, body) = app
        .call_as(
            &other,
            Method::POST,
            "/automations-executions",
            Some(json!({"automation_id": id_of(&theirs), "conversation_id": conversation})),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["field"], "conversation_id", "{body}");
    assert_eq!(total_of(&app, "/automations-executions").await, 0);
    let (status, body) = app
        .post("/automations-executions", json!({"automation_id": id_of(&automation), "conversation_id": conversation, "initial_payload": {"conversation": {}}}))
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post(
            "/automations-executions",
            json!({"automation_id": id_of(&automation)}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
}

#[actix_web::test]
async fn an_initial_payload_beyond_one_mib_is_a_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4 << 20).await;
    let (_, conversation) = conversation(&app).await;
    let automation =
        create_automation(&app, json!([{"type": "update_status", "status": "closed"}])).await;
    let big = "x".repeat(1 << 20);
    let (status, body) = app
        .post(
            "/automations-executions",
            json!({"automation_id": id_of(&automation), "conversation_id": conversation,
                   "initial_payload": {"conversation": {"id": conversation, "note": big}, "contact": null, "messages": []}}),
        )
        .await;
    assert_error(status, &body, 413, "PayloadTooLarge");
    let given = json!({"conversation": {"id": conversation}, "contact": null, "messages": [{"text": "given"}]});
    let run = app
        .create(
            "/automations-executions",
            json!({"automation_id": id_of(&automation), "conversation_id": conversation, "initial_payload": given}),
        )
        .await;
    assert_eq!(run["initial_payload"], given, "kept as given");
}

#[actix_web::test]
async fn a_step_that_breaks_a_channel_rule_fails_the_run_with_the_rules_data_and_nothing_half_done()
{
    let app = spawn_app().await;
    // WhatsApp: a free-form message needs an inbound one within 24 hours; there is none.
    let (contact, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let tag = app.create("/tags", json!({"name": "tried"})).await;
    let automation = create_automation(
        &app,
        json!([
            {"type": "add_tag", "tag_id": id_of(&tag)},
            {"type": "send_message", "text": "Are you still there?"},
            {"type": "update_status", "status": "closed"},
        ]),
    )
    .await;
    let events_before = sql_i64(&app, "SELECT COUNT(*) FROM events").await;
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&automation), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    let results = run["steps_result"].as_array().unwrap();
    assert_eq!(
        results.len(),
        2,
        "the step after the failure never ran: {run}"
    );
    assert_eq!(results[0]["status"], "succeeded");
    assert_eq!(results[1]["status"], "failed");
    let error = &results[1]["error"];
    assert_eq!(error["code"], 422, "{error}");
    assert_eq!(error["name"], "Unprocessable", "{error}");
    assert!(error["data"]["rule"].is_string(), "the 422's data: {error}");
    assert_eq!(run["error"]["step"], 1);
    assert_eq!(run["error"]["data"], error["data"]);
    // Nothing of the failed step, nothing after it.
    assert_eq!(stored_messages(&app, conversation).await, 0);
    let record = conversation_record(&app, conversation).await;
    assert_eq!(record["status"], "open");
    let contact = get_ok(&app, &format!("/contacts/{contact}")).await;
    assert_eq!(
        contact["tag_ids"],
        json!([id_of(&tag)]),
        "the step before it stays done"
    );
    let message_events = sql_i64(
        &app,
        &format!("SELECT COUNT(*) FROM events WHERE path = 'conversation-messages-whatsapp' OR (path = 'conversations' AND seq > {events_before})"),
    )
    .await;
    assert_eq!(message_events, 0, "no event of a rolled-back write");

    // A move to a stage of another pipeline fails the same way, before any write.
    let sales = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}]}),
        )
        .await;
    let support = app
        .create(
            "/pipelines",
            json!({"name": "Support", "stages": [{"name": "Triage"}]}),
        )
        .await;
    let mover = create_automation(
        &app,
        json!([{"type": "move", "pipeline_id": id_of(&sales), "pipeline_stage_id": id_of(&support["stages"][0])}]),
    )
    .await;
    let run = finished(
        &app,
        id_of(&trigger(&app, id_of(&mover), conversation).await),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["data"]["rule"], "stage_in_pipeline", "{run}");
    assert!(conversation_record(&app, conversation).await["pipeline_id"].is_null());
}

#[actix_web::test]
async fn a_wait_step_ends_the_job_and_the_run_resumes_at_its_time() {
    let app = spawn_app().await;
    let (_, conversation) = conversation(&app).await;
    let automation = create_automation(
        &app,
        json!([{"type": "wait", "seconds": 2}, {"type": "update_status", "status": "closed"}]),
    )
    .await;
    let queued = trigger(&app, id_of(&automation), conversation).await;
    let id = id_of(&queued);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let run = get_ok(&app, &format!("/automations-executions/{id}")).await;
        if run["steps_result"].as_array().is_some_and(|r| r.len() == 1) {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(waiting["status"], "running", "{waiting}");
    assert!(waiting["steps_result"][0]["output"]["resume_at"].is_string());
    // No worker holds it: the first job is done, the next one waits in the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let jobs = get_ok(&app, "/jobs?kind=automation.run&$sort[id]=1").await;
    let jobs = records(&jobs);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "done");
    assert_eq!(jobs[1]["status"], "pending", "{jobs:?}");
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "open"
    );
    let run = finished(&app, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "closed"
    );
}

#[actix_web::test]
async fn executions_are_found_by_automation_conversation_status_and_time_and_only_by_their_organization()
 {
    let app = spawn_app().await;
    let (_, first) = conversation(&app).await;
    let (_, second) = conversation(&app).await;
    let closes =
        create_automation(&app, json!([{"type": "update_status", "status": "closed"}])).await;
    let fails = create_automation(&app, json!([{"type": "add_tag", "tag_id": id_of(&app.create("/tags", json!({"name": "t"})).await)}])).await;
    exec_sql(&app, "DELETE FROM tags").await; // its run will fail
    let mut ids = Vec::new();
    for (automation, conversation) in [(&closes, first), (&closes, second), (&fails, first)] {
        let run = trigger(&app, id_of(automation), conversation).await;
        ids.push(id_of(&finished(&app, id_of(&run)).await));
    }
    let q = |query: &str| format!("/automations-executions?{query}");
    assert_eq!(
        total_of(&app, &q(&format!("automation_id={}", id_of(&closes)))).await,
        2
    );
    assert_eq!(
        total_of(&app, &q(&format!("conversation_id={first}"))).await,
        2
    );
    assert_eq!(total_of(&app, &q("status=failed")).await, 1);
    assert_eq!(total_of(&app, &q("status=succeeded")).await, 2);
    assert_eq!(
        total_of(&app, &q("created_at[$gt]=2000-01-01T00:00:00Z")).await,
        3
    );
    assert_eq!(
        total_of(&app, &q("created_at[$lt]=2000-01-01T00:00:00Z")).await,
        0
    );
    let page = get_ok(&app, &q("$limit=1&$skip=1&$sort[id]=1")).await;
    assert_eq!(ids_of(&page), [ids[1]]);
    assert_eq!(page["total"], 3);

    let other = app.new_tenant("Other").await;
    let (status, page) = app
        .call_as(&other, Method::GET, "/automations-executions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 0);
    let (status, _) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/automations-executions/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/automations-executions/{}", ids[0]),
            Some(json!({"status": "queued"})),
            Some(&app.org.token),
        )
        .await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}

fn ids_of(page: &Value) -> Vec<i64> {
    ids(page)
}

#[actix_web::test]
async fn a_run_killed_mid_webhook_resumes_at_the_first_step_not_recorded() {
    let app = spawn_app_with(|s| {
        s.automation_concurrency = 0;
        s.job_lease_secs = 2;
    })
    .await;
    let receiver = Receiver::start().await;
    // The first call hangs past the kill; the next instance's call is answered.
    receiver.script(vec![Reply::Slow(Duration::from_secs(60), 200, json!({}))]);
    let (_, conversation) = conversation(&app).await;
    let automation = create_automation(
        &app,
        json!([
            {"type": "send_message", "text": "once", "note": true},
            {"type": "webhook", "url": receiver.url},
            {"type": "update_status", "status": "closed"},
        ]),
    )
    .await;
    let id = id_of(&trigger(&app, id_of(&automation), conversation).await);
    let (mut server, _) = start_binary(
        &app.database_url,
        &[
            ("JWT_SECRET", app.jwt_secret.as_str()),
            ("APP__AUTOMATION_CONCURRENCY", "2"),
            ("APP__JOB_LEASE_SECS", "2"),
            ("APP__AUTOMATION_WEBHOOK_TIMEOUT_MS", "3000"),
            ("APP__AUTOMATION_WEBHOOK_ALLOW_LOOPBACK", "true"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while receiver.calls().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the binary never called"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    let stuck = get_ok(&app, &format!("/automations-executions/{id}")).await;
    assert_eq!(stuck["status"], "running", "{stuck}");
    assert_eq!(
        stuck["steps_result"].as_array().unwrap().len(),
        1,
        "{stuck}"
    );

    another_instance(&app, |s| {
        s.job_lease_secs = 2;
    })
    .await;
    let run = finished(&app, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let results = run["steps_result"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{run}");
    assert_eq!(
        stored_messages(&app, conversation).await,
        1,
        "the committed step was not repeated"
    );
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "the unrecorded webhook step ran again");
    assert_eq!(calls[0].id, calls[1].id, "with the same X-Webhook-ID");
    assert_eq!(
        conversation_record(&app, conversation).await["status"],
        "closed"
    );
}
