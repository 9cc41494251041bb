//! `total` of `GET /conversations` stays exact (it comes from counts the database
//! maintains with triggers, not from `COUNT(*)`): after random writes through the
//! API, after writes the database makes itself (foreign-key `SET NULL` when a user,
//! an AI assistant or a stage goes), and after bulk SQL, every total equals
//! `COUNT(*)` over the same filter, for the organization written to and for one
//! that was not touched.

use crate::helpers::*;
use chrono::{Duration, TimeZone, Utc};
use migrations::current::COUNT_GROUPINGS as GROUPINGS;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const CHANNELS: [&str; 6] = [
    "whatsapp",
    "instagram",
    "messenger",
    "webchat",
    "sms",
    "playground",
];

/// xorshift64*: small, deterministic, good enough to pick writes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// One of `items` or `null`.
    fn pick_or_null(&mut self, items: &[i64]) -> Value {
        match self.below(items.len() + 1) {
            0 => Value::Null,
            i => json!(items[i - 1]),
        }
    }
}

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

/// A filter as a client sends it and the same filter as SQL.
struct Check {
    query: String,
    sql: String,
}

fn check(query: impl Into<String>, sql: impl Into<String>) -> Check {
    Check {
        query: query.into(),
        sql: sql.into(),
    }
}

/// The ids a filter list refers to.
struct Refs {
    user: i64,
    other_user: i64,
    bot: i64,
    pipeline: i64,
    stage: i64,
    other_stage: i64,
    contact: i64,
}

/// Filters that the counts answer (one per grouping and more) and some they do not.
fn checks(r: &Refs) -> Vec<Check> {
    let Refs {
        user: u,
        other_user: v,
        bot: b,
        pipeline: p,
        stage: s,
        other_stage: t,
        contact: c,
    } = *r;
    vec![
        check("", "1 = 1"),
        check("status=open", "status = 'open'"),
        check("status=closed", "status = 'closed'"),
        check("status[$ne]=open", "status <> 'open'"),
        check(
            format!("status=open&assigned_user_id={u}"),
            format!("status = 'open' AND assigned_user_id = {u}"),
        ),
        check("assigned_user_id=", "assigned_user_id IS NULL"),
        check(
            "assigned_user_id=&status=open",
            "assigned_user_id IS NULL AND status = 'open'",
        ),
        check(
            "channel[$ne]=playground&status=open",
            "channel <> 'playground' AND status = 'open'",
        ),
        check(
            "channel=sms&status=closed",
            "channel = 'sms' AND status = 'closed'",
        ),
        check(
            format!("status=open&pipeline_stage_id={s}"),
            format!("status = 'open' AND pipeline_stage_id = {s}"),
        ),
        check(
            format!("status=closed&pipeline_stage_id={t}"),
            format!("status = 'closed' AND pipeline_stage_id = {t}"),
        ),
        check(format!("pipeline_id={p}"), format!("pipeline_id = {p}")),
        check(
            format!("pipeline_id={p}&pipeline_stage_id="),
            format!("pipeline_id = {p} AND pipeline_stage_id IS NULL"),
        ),
        check("unread_count[$gt]=0", "unread_count > 0"),
        check(
            "unread_count=0&status=open",
            "unread_count = 0 AND status = 'open'",
        ),
        check(
            "waitingResponseOnly=true",
            "waiting_since IS NOT NULL AND status = 'open'",
        ),
        check(
            "waitingResponseOnly=false&status=closed",
            "status = 'closed'",
        ),
        check(
            format!("waitingResponseOnly=true&assigned_user_id={u}&unread_count[$gt]=0"),
            format!(
                "waiting_since IS NOT NULL AND status = 'open' AND assigned_user_id = {u} AND unread_count > 0"
            ),
        ),
        check(
            format!("assigned_user_id[$in][]={u}&assigned_user_id[$in][]={v}"),
            format!("assigned_user_id IN ({u}, {v})"),
        ),
        check(
            format!("assigned_user_id[$nin][]={u}&assigned_user_id[$nin][]="),
            format!("assigned_user_id NOT IN ({u}) AND assigned_user_id IS NOT NULL"),
        ),
        check(
            format!("channel[$in][]=sms&channel[$in][]=whatsapp&assigned_user_id[$ne]={u}"),
            format!(
                "channel IN ('sms', 'whatsapp') AND (assigned_user_id <> {u} OR assigned_user_id IS NULL)"
            ),
        ),
        check(
            "$or[0][status]=open&$or[1][status]=closed",
            "(status = 'open' OR status = 'closed')",
        ),
        check(
            "$or[0][assigned_user_id]=&$or[1][unread_count][$gt]=0",
            "(assigned_user_id IS NULL OR unread_count > 0)",
        ),
        check(
            format!("assigned_ai_assistant_id={b}&status=open"),
            format!("assigned_ai_assistant_id = {b} AND status = 'open'"),
        ),
        check(
            "assigned_ai_assistant_id=",
            "assigned_ai_assistant_id IS NULL",
        ),
        // Not answered by the counts: a real COUNT(*) behind the same API.
        check(
            format!("assigned_ai_assistant_id={b}&unread_count[$gt]=0"),
            format!("assigned_ai_assistant_id = {b} AND unread_count > 0"),
        ),
        check(format!("contact_id={c}"), format!("contact_id = {c}")),
        check(
            format!("contact_id={c}&status=open"),
            format!("contact_id = {c} AND status = 'open'"),
        ),
    ]
}

/// Every check's API total (as `tenant`) equals `COUNT(*)` of live rows of its organization.
async fn assert_exact(app: &TestApp, tenant: &Tenant, checks: &[Check], phase: &str) {
    for c in checks {
        let path = format!("/conversations?$limit=0&{}", c.query);
        let (status, body) = app.call_as(tenant, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{phase}: GET {path}: {body}");
        let expected = sql_i64(
            app,
            &format!(
                "SELECT COUNT(*) FROM conversations WHERE organization_id = {} AND deleted_at IS NULL AND {}",
                tenant.org_id, c.sql
            ),
        )
        .await;
        assert_eq!(
            body["total"].as_i64(),
            Some(expected),
            "{phase}: total of `{}` (org {})",
            c.query,
            tenant.org_id
        );
    }
    assert_counts_table(app, tenant.org_id, phase).await;
}

/// `key -> n` from a query answering a text key and a count.
async fn grouped(app: &TestApp, sql: &str) -> BTreeMap<String, i64> {
    let stmt = sea_orm::Statement::from_string(app.db.get_database_backend(), sql.to_string());
    app.db
        .query_all_raw(stmt)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<i64>(1).unwrap(),
            )
        })
        .collect()
}

/// For every grouping, the stored counts (summed over slots) are exactly the live
/// conversations per combination: no missing, extra or negative combination.
async fn assert_counts_table(app: &TestApp, org: i64, phase: &str) {
    for (g, dims) in GROUPINGS.iter().enumerate() {
        let key = |expr: &dyn Fn(&str) -> String| {
            dims.iter()
                .map(|d| format!("COALESCE(CAST({} AS TEXT), '~')", expr(d)))
                .collect::<Vec<_>>()
                .join(" || '|' || ")
        };
        let stored_key = key(&|d| d.to_string());
        let live_key = key(&|d| match d {
            "waiting" => "(r.waiting_since IS NOT NULL)".to_string(),
            "unread" => "(r.unread_count > 0)".to_string(),
            column => format!("r.{column}"),
        });
        let stored = grouped(
            app,
            &format!(
                "SELECT {stored_key} AS k, CAST(SUM(n) AS BIGINT) AS n FROM conversation_counts \
                 WHERE organization_id = {org} AND grp = {g} GROUP BY {stored_key} HAVING SUM(n) <> 0"
            ),
        )
        .await;
        let live = grouped(
            app,
            &format!(
                "SELECT {live_key} AS k, COUNT(*) AS n FROM conversations r \
                 WHERE r.organization_id = {org} AND r.deleted_at IS NULL GROUP BY {live_key}"
            ),
        )
        .await;
        assert_eq!(stored, live, "{phase}: grouping {g} {dims:?} of org {org}");
    }
}

struct World {
    users: Vec<i64>,
    bots: Vec<i64>,
    /// `(pipeline, its stages)`.
    pipelines: Vec<(i64, Vec<i64>)>,
    contacts: Vec<i64>,
    conversations: Vec<i64>,
}

/// An organization with users, assistants, pipelines, contacts and `n` conversations
/// spread over channels, statuses, waiting and the first few assignments.
async fn populate(app: &TestApp, tenant: &Tenant, n: usize, seed: u64) -> World {
    let mut rng = Rng(seed);
    let call = |method: Method, path: String, body: Value| async move {
        let (status, answer) = app.call_as(tenant, method, &path, Some(body.clone())).await;
        assert!(status.is_success(), "{path} {body}: {status} {answer}");
        answer
    };
    let mut users = vec![tenant.user_id];
    for _ in 0..3 {
        users.push(app.new_user(tenant, "agent").await.user_id);
    }
    let mut bots = Vec::new();
    for name in ["Helper", "Closer"] {
        bots.push(id_of(
            &call(
                Method::POST,
                "/ai-assistants".into(),
                json!({ "name": name }),
            )
            .await,
        ));
    }
    let mut pipelines = Vec::new();
    for (name, stages) in [
        ("Sales", vec!["New", "Qualified", "Won"]),
        ("Support", vec!["Triage", "Done"]),
    ] {
        let stages: Vec<Value> = stages.iter().map(|s| json!({ "name": s })).collect();
        let p = call(
            Method::POST,
            "/pipelines".into(),
            json!({"name": name, "stages": stages}),
        )
        .await;
        let ids: Vec<i64> = p["stages"].as_array().unwrap().iter().map(id_of).collect();
        pipelines.push((id_of(&p), ids));
    }
    let mut contacts = Vec::new();
    for i in 0..6 {
        contacts.push(id_of(
            &call(
                Method::POST,
                "/contacts".into(),
                json!({"first_name": format!("Contact {i}")}),
            )
            .await,
        ));
    }
    let base = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let mut conversations = Vec::new();
    for i in 0..n {
        let status = if i % 3 == 0 { "closed" } else { "open" };
        let channel = CHANNELS[i % CHANNELS.len()];
        // A contact has one live playground conversation: each gets a contact of its own.
        let contact = if channel == "playground" {
            id_of(
                &call(
                    Method::POST,
                    "/contacts".into(),
                    json!({"first_name": format!("Playground {i}")}),
                )
                .await,
            )
        } else {
            contacts[i % contacts.len()]
        };
        let id = create_conversation_at(
            app,
            tenant.org_id,
            contact,
            channel,
            status,
            base + Duration::minutes(i as i64),
        )
        .await;
        if i % 4 == 0 {
            set_conversation_time(app, id, "waiting_since", Some(base)).await;
        }
        if i % 2 == 0 {
            let (pipeline, stages) = &pipelines[rng.below(2)];
            let body = json!({
                "assigned_user_id": rng.pick_or_null(&users),
                "unread_count": rng.below(3),
                "pipeline_id": pipeline,
                "pipeline_stage_id": rng.pick_or_null(stages),
            });
            call(Method::PATCH, format!("/conversations/{id}"), body).await;
        }
        conversations.push(id);
    }
    World {
        users,
        bots,
        pipelines,
        contacts,
        conversations,
    }
}

/// One random write through the API on a live conversation of `w`.
async fn random_write(app: &TestApp, w: &mut World, rng: &mut Rng, removed: &mut usize) {
    let at = rng.below(w.conversations.len());
    let id = w.conversations[at];
    let path = format!("/conversations/{id}");
    let (pipeline, stages) = w.pipelines[rng.below(w.pipelines.len())].clone();
    let body = match rng.below(10) {
        0 => json!({"status": rng.pick(&["open", "closed"])}),
        1 => json!({"assigned_user_id": rng.pick_or_null(&w.users)}),
        2 => json!({"assigned_ai_assistant_id": rng.pick_or_null(&w.bots)}),
        3 => json!({"pipeline_stage_id": rng.pick_or_null(&stages)}),
        4 => json!({"pipeline_id": rng.pick_or_null(&[pipeline])}),
        5 => json!({"unread_count": rng.below(4)}),
        6 => json!({
            "status": rng.pick(&["open", "closed"]),
            "assigned_user_id": rng.pick_or_null(&w.users),
            "unread_count": rng.below(2),
        }),
        7 if *removed < 12 => {
            let (status, body) = app.delete(&path).await;
            assert_eq!(status, StatusCode::OK, "DELETE {path}: {body}");
            w.conversations.swap_remove(at);
            *removed += 1;
            return;
        }
        8 => {
            // Refused (stage of another pipeline): must change nothing.
            let other = w
                .pipelines
                .iter()
                .find(|(p, _)| *p != pipeline)
                .map(|(_, s)| s[0]);
            match other {
                Some(foreign_stage) => {
                    let body = json!({"status": "closed", "pipeline_id": pipeline, "pipeline_stage_id": foreign_stage});
                    let (status, answer) = app.patch(&path, body).await;
                    assert_error(status, &answer, 422, "Unprocessable");
                    return;
                }
                None => json!({"blocked": true}),
            }
        }
        _ => json!({
            "pipeline_id": pipeline,
            "pipeline_stage_id": rng.pick(&stages),
            "assigned_ai_assistant_id": rng.pick_or_null(&w.bots),
            "status": "open",
        }),
    };
    patch_ok(app, &path, body).await;
}

#[actix_web::test]
async fn totals_stay_exact_under_random_writes_and_bulk_sql() {
    let app = spawn_app().await;
    let other = app.new_tenant("Untouched").await;
    let mut w = populate(&app, &app.org, 60, 0x9E37_79B9_7F4A_7C15).await;
    let theirs = populate(&app, &other, 24, 0xD1B5_4A32_D192_ED03).await;
    let refs = |w: &World| Refs {
        user: w.users[1],
        other_user: w.users[2],
        bot: w.bots[0],
        pipeline: w.pipelines[0].0,
        stage: w.pipelines[0].1[0],
        other_stage: w.pipelines[1].1[0],
        contact: w.contacts[1],
    };
    // Fixed once: a removed record's id still works as a filter (it matches nothing).
    let ours = checks(&refs(&w));
    let their_checks = checks(&refs(&theirs));
    assert!(ours.len() >= 15);
    assert_exact(&app, &app.org, &ours, "after setup").await;
    assert_exact(&app, &other, &their_checks, "other org after setup").await;

    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut removed = 0;
    for _ in 0..50 {
        random_write(&app, &mut w, &mut rng, &mut removed).await;
    }
    assert_exact(&app, &app.org, &ours, "after 50 random writes").await;

    // Writes the database makes itself: a user, an assistant, a stage and a pipeline go away.
    let gone_user = w.users.pop().unwrap();
    let touched = format!(
        "SELECT COUNT(*) FROM conversations WHERE deleted_at IS NULL AND pipeline_id = {}",
        w.pipelines[1].0
    );
    assert!(
        sql_i64(&app, &touched).await > 0,
        "the pipeline removal moves rows"
    );
    let (status, body) = app.delete(&format!("/users/{gone_user}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gone_bot = w.bots.pop().unwrap();
    let (status, body) = app.delete(&format!("/ai-assistants/{gone_bot}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (sales, stages) = w.pipelines[0].clone();
    let kept: Vec<Value> = [stages[0], stages[2]]
        .iter()
        .map(|s| json!({"id": s, "name": format!("Stage {s}")}))
        .collect();
    patch_ok(
        &app,
        &format!("/pipelines/{sales}"),
        json!({ "stages": kept }),
    )
    .await;
    w.pipelines[0].1 = vec![stages[0], stages[2]];
    let (support, support_stages) = w.pipelines.pop().unwrap();
    let (status, body) = app.delete(&format!("/pipelines/{support}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let replacement = app
        .create(
            "/pipelines",
            json!({"name": "Support 2", "stages": [{"name": "Open"}, {"name": "Solved"}]}),
        )
        .await;
    w.pipelines.push((
        id_of(&replacement),
        replacement["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect(),
    ));
    assert_eq!(
        sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM conversations WHERE assigned_user_id = {gone_user} \
                 OR assigned_ai_assistant_id = {gone_bot} OR pipeline_stage_id IN ({}, {}, {}) \
                 OR pipeline_id = {support}",
                stages[1], support_stages[0], support_stages[1]
            ),
        )
        .await,
        0
    );
    assert_exact(&app, &app.org, &ours, "after foreign-key updates").await;

    for _ in 0..50 {
        random_write(&app, &mut w, &mut rng, &mut removed).await;
    }
    assert!(removed > 0, "some removes among the writes");
    assert_exact(&app, &app.org, &ours, "after 100 random writes").await;

    // Bulk SQL: one statement moving many rows at once, then a bulk soft and hard delete.
    let org = app.org.org_id;
    let open_sms = sql_i64(
        &app,
        &format!("SELECT COUNT(*) FROM conversations WHERE organization_id = {org} AND channel = 'sms' AND status = 'open' AND deleted_at IS NULL"),
    )
    .await;
    assert!(open_sms > 1, "the bulk update moves several rows");
    exec_sql(
        &app,
        &format!("UPDATE conversations SET status = 'closed' WHERE organization_id = {org} AND channel = 'sms'"),
    )
    .await;
    assert_eq!(
        total_of(&app, "/conversations?channel=sms&status=open&$limit=0").await,
        0
    );
    assert_exact(&app, &app.org, &ours, "after bulk close").await;
    exec_sql(
        &app,
        &format!(
            "UPDATE conversations SET unread_count = unread_count + 1, assigned_user_id = NULL \
             WHERE organization_id = {org} AND status = 'open'"
        ),
    )
    .await;
    exec_sql(
        &app,
        &format!(
            "UPDATE conversations SET deleted_at = created_at WHERE organization_id = {org} AND channel = 'playground'"
        ),
    )
    .await;
    exec_sql(
        &app,
        &format!(
            "DELETE FROM conversations WHERE organization_id = {org} AND channel = 'instagram' AND status = 'closed'"
        ),
    )
    .await;
    assert_exact(&app, &app.org, &ours, "after bulk updates and deletes").await;
    assert_eq!(
        total_of(&app, "/conversations?channel=playground&$limit=0").await,
        0
    );

    // The other organization saw none of it.
    assert_exact(&app, &other, &their_checks, "other org at the end").await;
    let (status, page) = app
        .call_as(&other, Method::GET, "/conversations?$limit=0", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 24);
}

#[actix_web::test]
async fn counts_start_empty_and_follow_inserts() {
    let app = spawn_app().await;
    let checks = checks(&Refs {
        user: app.org.user_id,
        other_user: app.org.user_id,
        bot: 1,
        pipeline: 1,
        stage: 1,
        other_stage: 2,
        contact: 1,
    });
    assert_exact(&app, &app.org, &checks, "empty").await;
    assert_eq!(total_of(&app, "/conversations?$limit=0").await, 0);
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    for (i, channel) in CHANNELS.iter().enumerate() {
        create_conversation(
            &app,
            app.org.org_id,
            contact,
            channel,
            if i % 2 == 0 { "open" } else { "closed" },
        )
        .await;
    }
    assert_exact(&app, &app.org, &checks, "after inserts").await;
    assert_eq!(
        total_of(&app, "/conversations?status=open&$limit=0").await,
        3
    );
    assert_eq!(
        total_of(&app, "/conversations?channel[$ne]=playground&$limit=0").await,
        5
    );
}
