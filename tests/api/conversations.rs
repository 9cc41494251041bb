//! `/conversations`: order and paging, every Apex filter, the embedded contact,
//! patch (status, assignment, pipeline and stage, unread, AI fields, blocking),
//! and remove (a soft delete, admins only).

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
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

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap()
}

/// The ids matching a find, sorted, after checking that `total` agrees.
async fn matching(app: &TestApp, query: &str) -> Vec<i64> {
    let body = get_ok(app, &format!("/conversations?$limit=50&{query}")).await;
    let found = id_set(&body);
    assert_eq!(
        body["total"].as_i64(),
        Some(found.len() as i64),
        "total of {query}: {body}"
    );
    found
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

#[actix_web::test]
async fn default_order_is_most_recent_interaction_then_id() {
    let app = spawn_app().await;
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let mut created = Vec::new();
    for i in 0..12 {
        let at = base_time() + Duration::minutes(i);
        created
            .push(create_conversation_at(&app, app.org.org_id, contact, "sms", "open", at).await);
    }
    // Two conversations share the latest interaction time; the higher id comes first.
    let latest = base_time() + Duration::hours(5);
    set_conversation_time(&app, created[2], "last_interaction_at", Some(latest)).await;
    set_conversation_time(&app, created[7], "last_interaction_at", Some(latest)).await;

    let mut expected = vec![created[7], created[2]];
    expected.extend(
        created
            .iter()
            .rev()
            .filter(|id| **id != created[2] && **id != created[7]),
    );
    let page = get_ok(&app, "/conversations").await;
    assert_eq!(page["total"], 12);
    assert_eq!(page["limit"], 10);
    assert_eq!(page["skip"], 0);
    assert_eq!(ids(&page), expected[..10]);
    let page = get_ok(&app, "/conversations?$skip=10").await;
    assert_eq!(ids(&page), expected[10..]);
    assert_eq!(page["total"], 12);
    // Past the end: no rows, and still the exact total (read apart from the page then).
    let page = get_ok(&app, "/conversations?$skip=12&status=open").await;
    assert_eq!((page["total"].clone(), ids(&page).len()), (json!(12), 0));
    let page = get_ok(&app, "/conversations?$limit=1").await;
    assert_eq!(
        records(&page)[0]["last_interaction_at"],
        "2026-01-10T05:00:00.000Z"
    );

    // Explicit sorts; the id breaks ties in the same direction.
    let page = get_ok(&app, "/conversations?$sort[created_at]=1&$limit=3").await;
    assert_eq!(ids(&page), created[..3]);
    let page = get_ok(&app, "/conversations?$sort[status]=1&$limit=3").await;
    assert_eq!(ids(&page), created[..3]);
    let page = get_ok(&app, "/conversations?$sort[status]=-1&$limit=3").await;
    assert_eq!(ids(&page), vec![created[11], created[10], created[9]]);

    // $limit 0 answers only the total.
    let page = get_ok(&app, "/conversations?$limit=0").await;
    assert_eq!(page["total"], 12);
    assert_eq!(page["data"], json!([]));
    for bad in [
        "/conversations?$limit=-1",
        "/conversations?$limit=ten",
        "/conversations?$sort[contact]=1",
        "/conversations?$sort[created_at]=up",
    ] {
        let (status, body) = app.get(bad).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn limit_defaults_to_ten_and_is_clamped_at_fifty() {
    let app = spawn_app().await;
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    for i in 0..55 {
        let at = base_time() + Duration::minutes(i);
        create_conversation_at(&app, app.org.org_id, contact, "whatsapp", "open", at).await;
    }
    let page = get_ok(&app, "/conversations").await;
    assert_eq!(
        (page["limit"].as_i64(), records(&page).len()),
        (Some(10), 10)
    );
    let page = get_ok(&app, "/conversations?$limit=60").await;
    assert_eq!(page["limit"], 50);
    assert_eq!(records(&page).len(), 50);
    assert_eq!(page["total"], 55);
    let page = get_ok(&app, "/conversations?$limit=50&$skip=50").await;
    assert_eq!(records(&page).len(), 5);
    let page = get_ok(&app, "/conversations?$limit=7").await;
    assert_eq!(records(&page).len(), 7);
}

/// The conversations every filter test reads, and what they are.
struct Fixture {
    agent: Tenant,
    bot: i64,
    pipeline: i64,
    stages: Vec<i64>,
    vip: i64,
    /// Contacts: Dana Scully, Fox Mulder, Walter Skinner, a nameless one.
    contacts: Vec<i64>,
    /// `c[i]` was created at base + i hours.
    c: Vec<i64>,
}

/// c0 open sms Dana (agent, unread 3, waiting, stage 0)
/// c1 open whatsapp Fox (unassigned, waiting)
/// c2 closed sms Walter (agent, waiting: closed so not waiting for a response)
/// c3 open playground Dana (bot, unread 1)
/// c4 closed instagram nameless (stage 1)
/// c5 open webchat Fox (bot, agent)
async fn fixture(app: &TestApp) -> Fixture {
    let agent = app.new_user(&app.org, "agent").await;
    let bot = id_of(&app.create("/ai-assistants", json!({"name": "Bot"})).await);
    let pipeline = app
        .create(
            "/pipelines",
            json!({"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]}),
        )
        .await;
    let stages: Vec<i64> = pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    let vip = id_of(&app.create("/tags", json!({"name": "vip"})).await);
    let mut contacts = Vec::new();
    for body in [
        json!({"first_name": "Dana", "last_name": "Scully", "email": "dana@fbi.test", "phone": "+15550001", "tag_ids": [vip]}),
        json!({"first_name": "Fox", "last_name": "Mulder", "email": "FOX@fbi.test", "phone": "+15550002"}),
        json!({"first_name": "Walter", "last_name": "Skinner", "email": "walter@ad.test", "phone": "+447900123", "tag_ids": [vip]}),
        json!({"email": "anon_1%@example.test"}),
    ] {
        contacts.push(id_of(&create_contact(app, body).await));
    }
    let mut c = Vec::new();
    for (i, (contact, channel, status)) in [
        (0, "sms", "open"),
        (1, "whatsapp", "open"),
        (2, "sms", "closed"),
        (0, "playground", "open"),
        (3, "instagram", "closed"),
        (1, "webchat", "open"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = base_time() + Duration::hours(i as i64);
        c.push(
            create_conversation_at(app, app.org.org_id, contacts[contact], channel, status, at)
                .await,
        );
    }
    let patch = |id: i64, body: Value| async move {
        patch_ok(app, &format!("/conversations/{id}"), body).await;
    };
    patch(
        c[0],
        json!({"assigned_user_id": agent.user_id, "unread_count": 3, "pipeline_stage_id": stages[0]}),
    )
    .await;
    patch(c[2], json!({"assigned_user_id": agent.user_id})).await;
    patch(
        c[3],
        json!({"assigned_ai_assistant_id": bot, "unread_count": 1}),
    )
    .await;
    patch(c[4], json!({"pipeline_stage_id": stages[1]})).await;
    patch(
        c[5],
        json!({"assigned_ai_assistant_id": bot, "assigned_user_id": agent.user_id}),
    )
    .await;
    for i in [0, 1, 2] {
        set_conversation_time(app, c[i], "waiting_since", Some(base_time())).await;
    }
    Fixture {
        agent,
        bot,
        pipeline: id_of(&pipeline),
        stages,
        vip,
        contacts,
        c,
    }
}

#[actix_web::test]
async fn every_apex_filter() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let c = &f.c;
    let all = sorted(c.clone());
    assert_eq!(matching(&app, "").await, all);

    assert_eq!(
        matching(&app, "status=open").await,
        vec![c[0], c[1], c[3], c[5]]
    );
    assert_eq!(matching(&app, "status=closed").await, vec![c[2], c[4]]);
    assert_eq!(matching(&app, "channel=sms").await, vec![c[0], c[2]]);
    assert_eq!(
        matching(&app, "channel[$ne]=playground").await,
        vec![c[0], c[1], c[2], c[4], c[5]]
    );
    assert_eq!(
        matching(&app, "channel[$ne]=playground&status=open").await,
        vec![c[0], c[1], c[5]]
    );
    assert_eq!(
        matching(&app, "channel[$in][]=sms&channel[$in][]=webchat").await,
        vec![c[0], c[2], c[5]]
    );
    let agent = f.agent.user_id;
    assert_eq!(
        matching(&app, &format!("assigned_user_id={agent}")).await,
        vec![c[0], c[2], c[5]]
    );
    assert_eq!(
        matching(&app, "assigned_user_id=").await,
        vec![c[1], c[3], c[4]]
    );
    assert_eq!(
        matching(&app, "assigned_user_id=&status=open").await,
        vec![c[1], c[3]]
    );
    assert_eq!(
        matching(&app, &format!("assigned_user_id[$ne]={agent}")).await,
        vec![c[1], c[3], c[4]]
    );
    assert_eq!(
        matching(&app, &format!("assigned_ai_assistant_id={}", f.bot)).await,
        vec![c[3], c[5]]
    );
    assert_eq!(
        matching(&app, "assigned_ai_assistant_id=").await,
        vec![c[0], c[1], c[2], c[4]]
    );
    assert_eq!(
        matching(&app, &format!("pipeline_id={}", f.pipeline)).await,
        vec![c[0], c[4]]
    );
    assert_eq!(
        matching(&app, &format!("pipeline_stage_id={}", f.stages[1])).await,
        vec![c[4]]
    );
    assert_eq!(
        matching(
            &app,
            &format!("pipeline_stage_id={}&status=open", f.stages[0])
        )
        .await,
        vec![c[0]]
    );
    assert_eq!(
        matching(&app, "unread_count[$gt]=0").await,
        vec![c[0], c[3]]
    );
    assert_eq!(
        matching(&app, "unread_count=0").await,
        vec![c[1], c[2], c[4], c[5]]
    );
    assert_eq!(matching(&app, "unread_count[$gte]=2").await, vec![c[0]]);

    // created_at: start and end of a range, both inclusive, any ISO 8601.
    assert_eq!(
        matching(
            &app,
            "created_at[$gte]=2026-01-10T01:00:00.000Z&created_at[$lte]=2026-01-10T03:00:00Z"
        )
        .await,
        vec![c[1], c[2], c[3]]
    );
    assert_eq!(
        matching(&app, "created_at[$gte]=2026-01-10T04:00:00.000Z").await,
        vec![c[4], c[5]]
    );
    assert_eq!(
        matching(&app, "created_at[$lte]=2026-01-10").await,
        vec![c[0]]
    );
    assert_eq!(
        matching(&app, "created_at[$gte]=2026-01-11").await,
        Vec::<i64>::new()
    );

    // waitingResponseOnly: waiting and open.
    assert_eq!(
        matching(&app, "waitingResponseOnly=true").await,
        vec![c[0], c[1]]
    );
    assert_eq!(matching(&app, "waitingResponseOnly=false").await, all);
    assert_eq!(
        matching(
            &app,
            &format!("waitingResponseOnly=true&assigned_user_id={agent}")
        )
        .await,
        vec![c[0]]
    );

    // tag_id: a tag of the contact.
    assert_eq!(
        matching(&app, &format!("tag_id={}", f.vip)).await,
        vec![c[0], c[2], c[3]]
    );
    assert_eq!(
        matching(&app, &format!("tag_id={}&channel=sms&status=open", f.vip)).await,
        vec![c[0]]
    );

    // Combinations with $or and $in.
    assert_eq!(
        matching(&app, "$or[0][status]=closed&$or[1][unread_count][$gt]=0").await,
        vec![c[0], c[2], c[3], c[4]]
    );
    assert_eq!(
        matching(
            &app,
            &format!("assigned_user_id[$in][]={agent}&assigned_user_id[$in][]=")
        )
        .await,
        all
    );
    assert_eq!(
        matching(&app, &format!("contact_id={}", f.contacts[1])).await,
        vec![c[1], c[5]]
    );
    assert_eq!(matching(&app, &format!("id={}", c[4])).await, vec![c[4]]);

    for bad in [
        "status=pending",
        "channel=telegram",
        "assigned_user_id=me",
        "unread_count[$gt]=many",
        "created_at[$gte]=yesterday",
        "waitingResponseOnly=yes",
        "tag_id=vip",
        "searchTerm[$in][]=dana",
        "deleted_at=",
        "last_message_preview=hi",
        "contact=1",
        "nope=1",
        "status[$regex]=o",
    ] {
        let (status, body) = app.get(&format!("/conversations?{bad}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn search_term_matches_contact_name_email_and_phone() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let c = &f.c;
    for (term, expected) in [
        ("dana", vec![c[0], c[3]]),
        ("SCULLY", vec![c[0], c[3]]),
        ("mULder", vec![c[1], c[5]]),
        ("Fox%20Mul", vec![c[1], c[5]]),
        ("fbi.test", vec![c[0], c[1], c[3], c[5]]),
        ("fox@FBI", vec![c[1], c[5]]),
        ("5550002", vec![c[1], c[5]]),
        ("%2B44", vec![c[2]]),
        ("anon_1%25", vec![c[4]]),
        ("%20dana%20", vec![c[0], c[3]]),
        ("zz", vec![]),
        ("%25%25", vec![]),
        ("__", vec![]),
    ] {
        assert_eq!(
            matching(&app, &format!("searchTerm={term}")).await,
            sorted(expected),
            "searchTerm={term}"
        );
    }
    assert_eq!(
        matching(
            &app,
            "searchTerm=fbi.test&status=open&channel[$ne]=playground"
        )
        .await,
        vec![c[0], c[1], c[5]]
    );
    for short in ["d", "", "%20x%20", "%25"] {
        let (status, body) = app.get(&format!("/conversations?searchTerm={short}")).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["errors"]["searchTerm"].is_array(), "{short}: {body}");
    }
}

#[actix_web::test]
async fn contact_is_embedded_unless_select_leaves_it_out() {
    let app = spawn_app().await;
    let dana = create_contact(
        &app,
        json!({"first_name": "Dana", "last_name": "Scully", "email": "dana@fbi.test",
               "phone": "+15550001", "avatar_url": "https://cdn.test/d.png", "custom_fields_by_name": {"x": 1}}),
    )
    .await;
    let nameless = create_contact(&app, json!({"phone": "+15550009"})).await;
    let c1 = create_conversation(&app, app.org.org_id, id_of(&dana), "sms", "open").await;
    let c2 = create_conversation(&app, app.org.org_id, id_of(&nameless), "sms", "open").await;
    let expected_dana = json!({
        "id": dana["id"], "first_name": "Dana", "last_name": "Scully", "email": "dana@fbi.test",
        "phone": "+15550001", "avatar_url": "https://cdn.test/d.png",
    });
    let expected_nameless = json!({
        "id": nameless["id"], "first_name": null, "last_name": null, "email": null,
        "phone": "+15550009", "avatar_url": null,
    });

    let page = get_ok(&app, "/conversations?$sort[id]=1").await;
    assert_eq!(records(&page)[0]["contact"], expected_dana);
    assert_eq!(records(&page)[1]["contact"], expected_nameless);
    let got = get_ok(&app, &format!("/conversations/{c1}")).await;
    assert_eq!(got["contact"], expected_dana);
    assert_eq!(got["contact_id"], dana["id"]);
    for field in [
        "organization_id",
        "channel",
        "status",
        "unread_count",
        "assigned_user_id",
        "assigned_ai_assistant_id",
        "pipeline_id",
        "pipeline_stage_id",
        "ai_context_cut",
        "ai_auto_assignment_disabled",
        "ai_auto_assignment_disabled_reason",
        "blocked",
        "last_interaction_at",
        "created_at",
    ] {
        assert!(got.get(field).is_some(), "{field} missing: {got}");
    }
    assert!(got.get("deleted_at").is_none(), "{got}");

    // $select without contact: no contact; with it: the contact, even without contact_id.
    let page = get_ok(&app, "/conversations?$select[]=status&$sort[id]=1").await;
    let first = &records(&page)[0];
    assert!(first.get("contact").is_none(), "{first}");
    assert_eq!(first.as_object().unwrap().len(), 2, "{first}");
    let got = get_ok(&app, &format!("/conversations/{c2}?$select[]=id")).await;
    assert!(got.get("contact").is_none(), "{got}");
    let page = get_ok(
        &app,
        "/conversations?$select[]=id&$select[]=contact&$sort[id]=1",
    )
    .await;
    assert_eq!(records(&page)[0]["contact"], expected_dana);
    assert_eq!(records(&page)[1]["contact"], expected_nameless);
    assert!(records(&page)[0].get("status").is_none());
    let got = get_ok(
        &app,
        &format!("/conversations/{c1}?$select[]=contact_id&$select[]=contact"),
    )
    .await;
    assert_eq!(got["contact"], expected_dana);

    // A patch answers the same shape as get.
    let patched = patch_ok(
        &app,
        &format!("/conversations/{c2}"),
        json!({"unread_count": 1}),
    )
    .await;
    assert_eq!(patched["contact"], expected_nameless);

    // The contact's changes show in the embedded copy.
    patch_ok(
        &app,
        &format!("/contacts/{}", id_of(&dana)),
        json!({"first_name": "Danielle"}),
    )
    .await;
    let got = get_ok(&app, &format!("/conversations/{c1}")).await;
    assert_eq!(got["contact"]["first_name"], "Danielle");
}

#[actix_web::test]
async fn patch_status_assignment_and_flags() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let path = format!("/conversations/{}", f.c[1]);

    let closed = patch_ok(&app, &path, json!({"status": "closed"})).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(get_ok(&app, &path).await["status"], "closed");
    let assigned = patch_ok(&app, &path, json!({"assigned_user_id": f.agent.user_id})).await;
    assert_eq!(assigned["assigned_user_id"], f.agent.user_id);
    assert_eq!(assigned["status"], "closed", "assigning does not reopen");
    let reopened = patch_ok(&app, &path, json!({"status": "open"})).await;
    assert_eq!(reopened["status"], "open");
    assert_eq!(
        reopened["assigned_user_id"], f.agent.user_id,
        "status changes do not unassign"
    );
    let unassigned = patch_ok(&app, &path, json!({"assigned_user_id": null})).await;
    assert_eq!(unassigned["assigned_user_id"], Value::Null);

    // Someone of another organization cannot be assigned.
    let other = app.new_tenant("Other").await;
    let (status, body) = app
        .patch(
            &path,
            json!({"assigned_user_id": other.user_id, "status": "closed"}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "reference_in_organization");
    assert_eq!(body["data"]["field"], "assigned_user_id");
    let (status, body) = app
        .patch(&path, json!({"assigned_user_id": 987_654_321}))
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    let after = get_ok(&app, &path).await;
    assert_eq!(after["assigned_user_id"], Value::Null);
    assert_eq!(after["status"], "open", "a refused patch changes nothing");

    // AI assistants.
    let with_ai = patch_ok(&app, &path, json!({"assigned_ai_assistant_id": f.bot})).await;
    assert_eq!(with_ai["assigned_ai_assistant_id"], f.bot);
    let (status, their_bot) = app
        .call_as(
            &other,
            Method::POST,
            "/ai-assistants",
            Some(json!({"name": "Theirs"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{their_bot}");
    let (status, body) = app
        .patch(
            &path,
            json!({"assigned_ai_assistant_id": id_of(&their_bot)}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["field"], "assigned_ai_assistant_id");
    let no_ai = patch_ok(&app, &path, json!({"assigned_ai_assistant_id": null})).await;
    assert_eq!(no_ai["assigned_ai_assistant_id"], Value::Null);

    // Unread: mark unread (1), mark read (0).
    assert_eq!(
        patch_ok(&app, &path, json!({"unread_count": 1})).await["unread_count"],
        1
    );
    assert_eq!(
        patch_ok(&app, &path, json!({"unread_count": 0})).await["unread_count"],
        0
    );

    // AI context cut: any ISO 8601 in, UTC with milliseconds out.
    let cut = patch_ok(
        &app,
        &path,
        json!({"ai_context_cut": "2026-03-01T10:00:00+02:00"}),
    )
    .await;
    assert_eq!(cut["ai_context_cut"], "2026-03-01T08:00:00.000Z");
    assert_eq!(
        get_ok(&app, &path).await["ai_context_cut"],
        "2026-03-01T08:00:00.000Z"
    );
    let uncut = patch_ok(&app, &path, json!({"ai_context_cut": null})).await;
    assert_eq!(uncut["ai_context_cut"], Value::Null);

    // AI auto-assignment off with a reason, then on again.
    let off = patch_ok(
        &app,
        &path,
        json!({"ai_auto_assignment_disabled": true, "ai_auto_assignment_disabled_reason": "VIP, humans only"}),
    )
    .await;
    assert_eq!(off["ai_auto_assignment_disabled"], true);
    assert_eq!(
        off["ai_auto_assignment_disabled_reason"],
        "VIP, humans only"
    );
    let on = patch_ok(
        &app,
        &path,
        json!({"ai_auto_assignment_disabled": false, "ai_auto_assignment_disabled_reason": null}),
    )
    .await;
    assert_eq!(on["ai_auto_assignment_disabled"], false);
    assert_eq!(on["ai_auto_assignment_disabled_reason"], Value::Null);

    // Block and unblock.
    assert_eq!(
        patch_ok(&app, &path, json!({"blocked": true})).await["blocked"],
        true
    );
    assert_eq!(get_ok(&app, &path).await["blocked"], true);
    assert_eq!(matching(&app, "blocked=true").await, vec![f.c[1]]);
    assert_eq!(
        patch_ok(&app, &path, json!({"blocked": false})).await["blocked"],
        false
    );

    // An agent may patch too (e.g. take over a thread).
    let (status, taken) = app
        .call_as(
            &f.agent,
            Method::PATCH,
            &path,
            Some(json!({"assigned_user_id": f.agent.user_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["assigned_user_id"], f.agent.user_id);
}

#[actix_web::test]
async fn patch_keeps_pipeline_and_stage_consistent() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let path = format!("/conversations/{}", f.c[1]);
    let support = app
        .create(
            "/pipelines",
            json!({"name": "Support", "stages": [{"name": "Triage"}, {"name": "Done"}]}),
        )
        .await;
    let support_id = id_of(&support);
    let triage = id_of(&support["stages"][0]);
    let done = id_of(&support["stages"][1]);

    // A stage implies its pipeline.
    let moved = patch_ok(&app, &path, json!({"pipeline_stage_id": f.stages[1]})).await;
    assert_eq!(moved["pipeline_stage_id"], f.stages[1]);
    assert_eq!(moved["pipeline_id"], f.pipeline);

    // A stage that is not in the given pipeline.
    let (status, body) = app
        .patch(
            &path,
            json!({"pipeline_id": support_id, "pipeline_stage_id": f.stages[0]}),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "stage_in_pipeline");
    let after = get_ok(&app, &path).await;
    assert_eq!(
        (
            after["pipeline_id"].as_i64(),
            after["pipeline_stage_id"].as_i64()
        ),
        (Some(f.pipeline), Some(f.stages[1]))
    );

    // Both, consistent.
    let moved = patch_ok(
        &app,
        &path,
        json!({"pipeline_id": support_id, "pipeline_stage_id": done}),
    )
    .await;
    assert_eq!(
        (
            moved["pipeline_id"].as_i64(),
            moved["pipeline_stage_id"].as_i64()
        ),
        (Some(support_id), Some(done))
    );

    // The same pipeline again keeps the stage; another pipeline clears it.
    let same = patch_ok(&app, &path, json!({"pipeline_id": support_id})).await;
    assert_eq!(same["pipeline_stage_id"], done);
    let other = patch_ok(&app, &path, json!({"pipeline_id": f.pipeline})).await;
    assert_eq!(other["pipeline_id"], f.pipeline);
    assert_eq!(other["pipeline_stage_id"], Value::Null);

    // Moving within a pipeline by stage alone.
    let staged = patch_ok(&app, &path, json!({"pipeline_stage_id": triage})).await;
    assert_eq!(staged["pipeline_id"], support_id);
    let staged = patch_ok(&app, &path, json!({"pipeline_stage_id": null})).await;
    assert_eq!(staged["pipeline_stage_id"], Value::Null);
    assert_eq!(
        staged["pipeline_id"], support_id,
        "clearing the stage keeps the pipeline"
    );

    // Clearing the pipeline clears the stage.
    patch_ok(&app, &path, json!({"pipeline_stage_id": done})).await;
    let cleared = patch_ok(&app, &path, json!({"pipeline_id": null})).await;
    assert_eq!(cleared["pipeline_id"], Value::Null);
    assert_eq!(cleared["pipeline_stage_id"], Value::Null);

    // Unknown pipeline or stage.
    for body in [
        json!({"pipeline_id": 987_654_321}),
        json!({"pipeline_stage_id": 987_654_321}),
    ] {
        let (status, answer) = app.patch(&path, body.clone()).await;
        assert_error(status, &answer, 422, "Unprocessable");
        assert_eq!(
            answer["data"]["rule"], "reference_in_organization",
            "{body}"
        );
    }
    assert_eq!(
        matching(&app, &format!("pipeline_id={support_id}")).await,
        Vec::<i64>::new()
    );
}

#[actix_web::test]
async fn patch_validates_the_body() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let path = format!("/conversations/{}", f.c[0]);
    for body in [
        json!({"nope": 1}),
        json!({"status": "pending"}),
        json!({"status": null}),
        json!({"unread_count": -1}),
        json!({"unread_count": "1"}),
        json!({"unread_count": 1.5}),
        json!({"assigned_user_id": "5"}),
        json!({"ai_context_cut": "yesterday"}),
        json!({"blocked": "true"}),
        json!({"ai_auto_assignment_disabled_reason": "x".repeat(501)}),
        json!({"channel": "whatsapp"}),
        json!({"contact_id": f.contacts[1]}),
        json!({"last_interaction_at": "2026-01-01T00:00:00Z"}),
        json!({"waiting_since": null}),
        json!({"contact": {"first_name": "X"}}),
        json!({"deleted_at": "2026-01-01T00:00:00Z"}),
        json!([{"status": "closed"}]),
        json!("closed"),
    ] {
        let (status, answer) = app.patch(&path, body).await;
        assert_error(status, &answer, 400, "BadRequest");
    }
    let after = get_ok(&app, &path).await;
    assert_eq!(after["status"], "open");
    assert_eq!(after["unread_count"], 3);
    assert_eq!(after["channel"], "sms");
    assert_eq!(after["contact_id"], f.contacts[0]);
}

#[actix_web::test]
async fn remove_is_a_soft_delete_for_admins() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let victim = f.c[0];
    let path = format!("/conversations/{victim}");

    let (status, body) = app.call_as(&f.agent, Method::DELETE, &path, None).await;
    assert_error(status, &body, 403, "Forbidden");

    let before = get_ok(&app, &path).await;
    let (status, removed) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    // The record as it was, `updated_at` included.
    assert_eq!(removed, before);
    assert_eq!(removed["id"], victim);
    assert_eq!(removed["status"], "open");
    assert_eq!(removed["unread_count"], 3);
    assert_eq!(removed["assigned_user_id"], f.agent.user_id);
    assert_eq!(removed["contact"]["first_name"], "Dana");

    let (status, body) = app.get(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.patch(&path, json!({"status": "closed"})).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete(&path).await;
    assert_error(status, &body, 404, "NotFound");
    let rest: Vec<i64> = f.c[1..].to_vec();
    assert_eq!(matching(&app, "").await, sorted(rest));
    assert_eq!(
        matching(&app, &format!("id={victim}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        matching(&app, &format!("assigned_user_id={}", f.agent.user_id)).await,
        vec![f.c[2], f.c[5]]
    );
    assert_eq!(matching(&app, "unread_count[$gt]=0").await, vec![f.c[3]]);
    assert_eq!(
        matching(&app, "waitingResponseOnly=true").await,
        vec![f.c[1]]
    );
    assert_eq!(
        matching(&app, &format!("searchTerm=dana&tag_id={}", f.vip)).await,
        vec![f.c[3]]
    );
    // The row is still there, marked deleted.
    assert_eq!(
        sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM conversations WHERE id = {victim} AND deleted_at IS NOT NULL"
            )
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn methods_conversations_do_not_offer() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let one = format!("/conversations/{}", f.c[0]);

    let (status, body) = app
        .patch("/conversations", json!({"status": "closed"}))
        .await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    let (status, body) = app.delete("/conversations").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    let (status, body) = app.delete("/conversations?status=open").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    let (status, body) = app
        .post(
            "/conversations",
            json!({"contact_id": f.contacts[0], "channel": "sms", "status": "open"}),
        )
        .await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    let (status, body) = app.put(&one, json!({"status": "closed"})).await;
    assert_error(status, &body, 405, "MethodNotAllowed");

    // Nothing changed.
    assert_eq!(matching(&app, "status=open").await.len(), 4);
    assert_eq!(matching(&app, "").await.len(), 6);
    let (status, _) = app.call(Method::GET, "/conversations", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_page_shows_each_record_as_get_does() {
    // Pages are written as JSON text straight from the rows, single records through
    // `Value`s: both must show the same record, to the character.
    let app = spawn_app().await;
    let odd = create_contact(
        &app,
        json!({"first_name": "Zoë \"Z\"", "last_name": "O'Brien\\\n✓", "phone": "+15550100"}),
    )
    .await;
    let plain = create_contact(&app, json!({"phone": "+15550101"})).await;
    let c1 = create_conversation(&app, app.org.org_id, id_of(&odd), "whatsapp", "open").await;
    let c2 = create_conversation(&app, app.org.org_id, id_of(&plain), "sms", "closed").await;
    exec_sql(
        &app,
        &format!(
            r#"UPDATE conversations SET metadata = '{{"tags":["a","b\"c"],"n":null,"x":1.5}}',
               participants = '[{{"phone":"+1"}}]', last_message_preview = 'tab	and ✓'
               WHERE id = {c1}"#
        ),
    )
    .await;
    let micros =
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::microseconds(123_456);
    set_conversation_time(&app, c1, "last_interaction_at", Some(micros)).await;
    let before_1970 =
        Utc.with_ymd_and_hms(1969, 7, 20, 20, 17, 40).unwrap() + Duration::microseconds(999_999);
    set_conversation_time(&app, c1, "waiting_since", Some(before_1970)).await;

    let page = get_ok(&app, "/conversations?$sort[id]=1").await;
    assert_eq!(ids(&page), vec![c1, c2]);
    for record in records(&page) {
        let got = get_ok(&app, &format!("/conversations/{}", id_of(record))).await;
        assert_eq!(record, &got);
    }
    let first = &records(&page)[0];
    assert_eq!(first["last_interaction_at"], "2026-03-04T05:06:07.123Z");
    assert_eq!(first["waiting_since"], "1969-07-20T20:17:40.999Z");
    assert_eq!(
        first["metadata"],
        json!({"tags": ["a", "b\"c"], "n": null, "x": 1.5})
    );
    assert_eq!(first["participants"], json!([{"phone": "+1"}]));
    assert_eq!(first["last_message_preview"], "tab\tand ✓");
    assert_eq!(first["contact"]["first_name"], "Zoë \"Z\"");
    assert_eq!(first["contact"]["last_name"], "O'Brien\\\n✓");
    assert_eq!(records(&page)[1]["metadata"], Value::Null);
}
