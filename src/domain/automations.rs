//! Automations and their executions: the step vocabulary and its validation (the
//! same for stored steps and for steps a webhook adds), the rule on webhook
//! targets, and the only SQL writing `automations` and `automation_executions`.
//! An execution records each step's result together with the step's own writes,
//! in one unit of work, guarded by the index of the next step: a run that is
//! retried resumes at the first step not recorded and never repeats one.

use super::conversations::Status;
use super::unit_of_work::UnitOfWork;
use crate::auth::sealing::Sealer;
use crate::feathers::schema::format_timestamp;
use crate::feathers::{FeathersError, Result};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PATH: &str = "automations";
pub const EXECUTIONS_PATH: &str = "automations-executions";
const TABLE: &str = "automations";
const EXECUTIONS: &str = "automation_executions";

/// The most steps an automation stores.
pub const MAX_STEPS: usize = 50;
/// The most steps one run follows, those its webhooks add included.
pub const MAX_PLAN: usize = 100;
/// The longest `wait` step: 30 days.
pub const MAX_WAIT_SECS: i64 = 30 * 24 * 3600;
/// The most characters of a `send_message` text.
pub const MAX_TEXT: usize = 4096;
/// The most bytes of JSON an `initial_payload` may hold.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// The most messages a built `initial_payload` carries.
pub const PAYLOAD_MESSAGES: u64 = 50;

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// How webhook targets are checked (`automation_webhook_allow_loopback`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookPolicy {
    /// Loopback targets (and `http://` URLs) are allowed: tests and local receivers.
    pub allow_loopback: bool,
}

/// One step of an automation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A message on the conversation: outgoing through the channel's composer and
    /// rules, or a note.
    SendMessage {
        text: Option<String>,
        predefined_message_id: Option<i64>,
        note: bool,
    },
    UpdateStatus(Status),
    Assign(Option<i64>),
    AssignAiAssistant(Option<i64>),
    Move {
        pipeline_id: i64,
        pipeline_stage_id: Option<i64>,
    },
    /// A tag on the conversation's contact.
    AddTag(i64),
    Wait(i64),
    Webhook(String),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::SendMessage { .. } => "send_message",
            Step::UpdateStatus(_) => "update_status",
            Step::Assign(_) => "assign",
            Step::AssignAiAssistant(_) => "assign_ai_assistant",
            Step::Move { .. } => "move",
            Step::AddTag(_) => "add_tag",
            Step::Wait(_) => "wait",
            Step::Webhook(_) => "webhook",
        }
    }

    /// The step as stored and answered.
    pub fn to_json(&self) -> Value {
        let mut v = match self {
            Step::SendMessage {
                text,
                predefined_message_id,
                note,
            } => {
                let mut m = Map::new();
                if let Some(t) = text {
                    m.insert("text".into(), json!(t));
                }
                if let Some(p) = predefined_message_id {
                    m.insert("predefined_message_id".into(), json!(p));
                }
                m.insert("note".into(), json!(note));
                Value::Object(m)
            }
            Step::UpdateStatus(s) => json!({ "status": s.as_str() }),
            Step::Assign(u) => json!({ "assigned_user_id": u }),
            Step::AssignAiAssistant(a) => json!({ "assigned_ai_assistant_id": a }),
            Step::Move {
                pipeline_id,
                pipeline_stage_id,
            } => json!({ "pipeline_id": pipeline_id, "pipeline_stage_id": pipeline_stage_id }),
            Step::AddTag(t) => json!({ "tag_id": t }),
            Step::Wait(s) => json!({ "seconds": s }),
            Step::Webhook(url) => json!({ "url": url }),
        };
        v["type"] = json!(self.kind());
        v
    }

    /// The references the step names: (field, table, id), each the organization's.
    fn references(&self) -> Vec<(&'static str, &'static str, i64)> {
        match self {
            Step::SendMessage {
                predefined_message_id: Some(p),
                ..
            } => vec![("predefined_message_id", "predefined_messages", *p)],
            Step::Assign(Some(u)) => vec![("assigned_user_id", "users", *u)],
            Step::AssignAiAssistant(Some(a)) => {
                vec![("assigned_ai_assistant_id", "ai_assistants", *a)]
            }
            Step::Move {
                pipeline_id,
                pipeline_stage_id,
            } => {
                let mut r = vec![("pipeline_id", "pipelines", *pipeline_id)];
                if let Some(s) = pipeline_stage_id {
                    r.push(("pipeline_stage_id", "pipeline_stages", *s));
                }
                r
            }
            Step::AddTag(t) => vec![("tag_id", "tags", *t)],
            _ => vec![],
        }
    }
}

/// 422 naming step `index` and `field`.
pub fn step_error(index: usize, field: &str, message: impl std::fmt::Display) -> FeathersError {
    let path = if field.is_empty() {
        format!("steps[{index}]")
    } else {
        format!("steps[{index}].{field}")
    };
    FeathersError::unprocessable(format!("{path} {message}")).with_data(json!({
        "rule": "automation_step", "step": index, "field": field, "path": path,
    }))
}

/// Parses and checks `steps` (a JSON array); the first is numbered `offset` in errors.
pub fn parse_steps(value: &Value, offset: usize, policy: WebhookPolicy) -> Result<Vec<Step>> {
    let Some(items) = value.as_array() else {
        return Err(
            FeathersError::unprocessable("steps must be an array of steps")
                .with_data(json!({ "rule": "automation_step", "field": "steps" })),
        );
    };
    items
        .iter()
        .enumerate()
        .map(|(i, step)| parse_step(step, offset + i, policy))
        .collect()
}

fn parse_step(v: &Value, i: usize, policy: WebhookPolicy) -> Result<Step> {
    let Some(obj) = v.as_object() else {
        return Err(step_error(i, "", "must be an object"));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(step_error(i, "type", "must be a string")),
        None => return Err(step_error(i, "type", "is required")),
    };
    let allowed: &[&str] = match kind {
        "send_message" => &["text", "predefined_message_id", "note"],
        "update_status" => &["status"],
        "assign" => &["assigned_user_id"],
        "assign_ai_assistant" => &["assigned_ai_assistant_id"],
        "move" => &["pipeline_id", "pipeline_stage_id"],
        "add_tag" => &["tag_id"],
        "wait" => &["seconds"],
        "webhook" => &["url"],
        other => {
            return Err(step_error(
                i,
                "type",
                format!(
                    "must be one of send_message, update_status, assign, assign_ai_assistant, \
                     move, add_tag, wait, webhook, not {other:?}"
                ),
            ));
        }
    };
    if let Some(key) = obj
        .keys()
        .find(|k| *k != "type" && !allowed.contains(&k.as_str()))
    {
        return Err(step_error(
            i,
            key,
            format!("is not a field of a {kind} step"),
        ));
    }
    let id = |field: &str, required: bool| -> Result<Option<Option<i64>>> {
        match obj.get(field) {
            None if required => Err(step_error(i, field, "is required")),
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => match v.as_i64() {
                Some(n) if n > 0 => Ok(Some(Some(n))),
                _ => Err(step_error(i, field, "must be a positive integer id")),
            },
        }
    };
    Ok(match kind {
        "send_message" => {
            let text = match obj.get("text") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) if t.trim().is_empty() => {
                    return Err(step_error(i, "text", "must not be blank"));
                }
                Some(Value::String(t)) if t.chars().count() > MAX_TEXT => {
                    return Err(step_error(
                        i,
                        "text",
                        format!("must be at most {MAX_TEXT} characters"),
                    ));
                }
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => return Err(step_error(i, "text", "must be a string")),
            };
            let predefined_message_id = id("predefined_message_id", false)?.flatten();
            if text.is_none() && predefined_message_id.is_none() {
                return Err(step_error(
                    i,
                    "text",
                    "is required without predefined_message_id",
                ));
            }
            let note = match obj.get("note") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(step_error(i, "note", "must be a boolean")),
            };
            Step::SendMessage {
                text,
                predefined_message_id,
                note,
            }
        }
        "update_status" => match obj.get("status").and_then(Value::as_str).map(Status::parse) {
            Some(Some(s)) => Step::UpdateStatus(s),
            _ => return Err(step_error(i, "status", "must be open or closed")),
        },
        "assign" => Step::Assign(id("assigned_user_id", true)?.flatten()),
        "assign_ai_assistant" => {
            Step::AssignAiAssistant(id("assigned_ai_assistant_id", true)?.flatten())
        }
        "move" => {
            let Some(Some(pipeline_id)) = id("pipeline_id", true)? else {
                return Err(step_error(i, "pipeline_id", "must be a pipeline id"));
            };
            Step::Move {
                pipeline_id,
                pipeline_stage_id: id("pipeline_stage_id", false)?.flatten(),
            }
        }
        "add_tag" => match id("tag_id", true)? {
            Some(Some(t)) => Step::AddTag(t),
            _ => return Err(step_error(i, "tag_id", "must be a tag id")),
        },
        "wait" => match obj.get("seconds").and_then(Value::as_i64) {
            Some(s) if (1..=MAX_WAIT_SECS).contains(&s) => Step::Wait(s),
            _ => {
                return Err(step_error(
                    i,
                    "seconds",
                    format!("must be an integer from 1 to {MAX_WAIT_SECS}"),
                ));
            }
        },
        "webhook" => match obj.get("url") {
            Some(Value::String(url)) => {
                check_url(url, policy).map_err(|m| step_error(i, "url", m))?;
                Step::Webhook(url.clone())
            }
            _ => return Err(step_error(i, "url", "is required (a string)")),
        },
        _ => unreachable!("refused above"),
    })
}

/// What a webhook URL must be: `https` (or `http` where loopback is allowed), a
/// host, no credentials, at most 2,048 characters, and not an address the policy refuses.
fn check_url(url: &str, policy: WebhookPolicy) -> std::result::Result<(), String> {
    if url.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_loopback => {}
        other => return Err(format!("must be an https URL, not {other}")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let Some(host) = parsed.host_str() else {
        return Err("must name a host".into());
    };
    let ip = host_ip(host);
    if let Some(ip) = ip
        && let Some(why) = refused_target(ip, policy)
    {
        return Err(format!("is a {why} address, which webhooks may not reach"));
    }
    Ok(())
}

/// The address a URL's host is, when it is one (`[::1]` included).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Why a webhook may not connect to `ip` (`None`: it may): loopback (unless the
/// policy allows it), private, link-local, unique-local, unspecified, shared,
/// broadcast, multicast, and the cloud metadata addresses.
pub fn refused_target(ip: IpAddr, policy: WebhookPolicy) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, policy),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4, policy);
            }
            let first = v6.segments()[0];
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("metadata")
            } else if v6.is_loopback() {
                (!policy.allow_loopback).then_some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr, policy: WebhookPolicy) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("metadata")
    } else if ip.is_loopback() {
        (!policy.allow_loopback).then_some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("shared")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

/// 422 naming the step and field when a step names a record that is not `org`'s.
pub async fn check_references<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    steps: &[Step],
    offset: usize,
) -> Result<()> {
    for (i, step) in steps.iter().enumerate() {
        for (field, table, id) in step.references() {
            crate::feathers::sql::check_reference(conn, (table, "organization_id", org), field, id)
                .await
                .map_err(|_| {
                    step_error(
                        offset + i,
                        field,
                        format!("{id} does not exist in this organization"),
                    )
                })?;
        }
    }
    Ok(())
}

pub fn steps_json(steps: &[Step]) -> Value {
    Value::Array(steps.iter().map(Step::to_json).collect())
}

/// A new automation.
pub struct NewAutomation {
    pub name: String,
    pub enabled: bool,
    pub trigger: String,
    pub steps: Vec<Step>,
    /// The webhook signing secret, shown once.
    pub secret: String,
}

/// A change to an automation.
#[derive(Default)]
pub struct AutomationPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub trigger: Option<String>,
    pub steps: Option<Vec<Step>>,
}

/// A fresh webhook signing secret: `whsec_` and 64 hex characters.
pub fn new_secret() -> String {
    format!(
        "whsec_{}",
        crate::auth::api_key::hex(&crate::auth::api_key::random_bytes::<32>())
    )
}

/// Stores a new automation of `org`; records `created`.
pub async fn create(
    uow: &UnitOfWork,
    sealer: &Sealer,
    org: i64,
    new: &NewAutomation,
) -> Result<i64> {
    let now = Utc::now();
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "name",
                "enabled",
                "trigger",
                "steps",
                "secret_sealed",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            new.name.clone().into(),
            new.enabled.into(),
            new.trigger.clone().into(),
            steps_json(&new.steps).into(),
            sealer.seal(org, new.secret.as_bytes()).into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (uow.conn().await?.query_one(&q).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    let id: i64 = row.try_get("", "id")?;
    uow.record_read(PATH, "created", &[id]).await?;
    Ok(id)
}

/// Applies `patch` to automation `id` of `org` (404 when it is not theirs); records `patched`.
pub async fn patch(uow: &UnitOfWork, org: i64, id: i64, patch: &AutomationPatch) -> Result<()> {
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("updated_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    if let Some(name) = &patch.name {
        q.value(c("name"), name.clone());
    }
    if let Some(enabled) = patch.enabled {
        q.value(c("enabled"), enabled);
    }
    if let Some(trigger) = &patch.trigger {
        q.value(c("trigger"), trigger.clone());
    }
    if let Some(steps) = &patch.steps {
        q.value(c("steps"), steps_json(steps));
    }
    if uow.conn().await?.execute(&q).await?.rows_affected() == 0 {
        return Err(FeathersError::no_record(id));
    }
    uow.record_read(PATH, "patched", &[id]).await
}

/// Removes automation `id` of `org` and its executions; records `removed`.
pub async fn remove(uow: &UnitOfWork, org: i64, id: i64) -> Result<()> {
    let conn = uow.conn().await?;
    uow.record_read(PATH, "removed", &[id]).await?;
    let mut runs = Query::delete();
    runs.from_table(c(EXECUTIONS))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("automation_id")).eq(id));
    conn.execute(&runs).await?;
    let mut q = Query::delete();
    q.from_table(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    if conn.execute(&q).await?.rows_affected() == 0 {
        return Err(FeathersError::no_record(id));
    }
    Ok(())
}

/// An automation as its runs need it, its secret open.
#[derive(Debug, Clone)]
pub struct Automation {
    pub id: i64,
    pub organization_id: i64,
    pub enabled: bool,
    pub steps: Vec<Step>,
    pub secret: String,
}

/// Automation `id` of `org`, if it is theirs.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    org: i64,
    id: i64,
) -> Result<Option<Automation>> {
    let mut q = Query::select();
    q.columns(["id", "enabled", "steps", "secret_sealed"].map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    let sealed: String = row.try_get("", "secret_sealed")?;
    let secret = sealer.open(org, &sealed).map_err(|e| {
        FeathersError::general("an automation's secret does not open").with_cause(e)
    })?;
    let steps: Value = row.try_get("", "steps")?;
    Ok(Some(Automation {
        id: row.try_get("", "id")?,
        organization_id: org,
        enabled: row.try_get("", "enabled")?,
        steps: stored_steps(&steps)?,
        secret: String::from_utf8(secret)
            .map_err(|_| FeathersError::general("an automation's secret is not text"))?,
    }))
}

/// Steps as stored (validated on write): parsed without the target policy, which
/// the run applies at connection time.
fn stored_steps(v: &Value) -> Result<Vec<Step>> {
    parse_steps(
        v,
        0,
        WebhookPolicy {
            allow_loopback: true,
        },
    )
    .map_err(|e| FeathersError::general(format!("stored steps do not parse: {}", e.message)))
}

// Executions.

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// A new execution.
pub struct NewExecution {
    pub automation_id: i64,
    pub conversation_id: i64,
    pub initial_payload: Value,
    pub steps: Vec<Step>,
    pub triggered_by: Value,
}

/// Stores a queued execution of `org` and enqueues its run, in the unit's
/// transaction; records `created`.
pub async fn create_execution(uow: &UnitOfWork, org: i64, new: &NewExecution) -> Result<i64> {
    let now = Utc::now();
    let mut q = Query::insert();
    q.into_table(c(EXECUTIONS))
        .columns(
            [
                "organization_id",
                "automation_id",
                "conversation_id",
                "status",
                "initial_payload",
                "steps",
                "steps_result",
                "next_step",
                "triggered_by",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            new.automation_id.into(),
            new.conversation_id.into(),
            QUEUED.into(),
            new.initial_payload.clone().into(),
            steps_json(&new.steps).into(),
            json!([]).into(),
            0i32.into(),
            new.triggered_by.clone().into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (uow.conn().await?.query_one(&q).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    let id: i64 = row.try_get("", "id")?;
    uow.enqueue(&crate::jobs::kinds::automation_run(org, id, 0, now))
        .await?;
    uow.record_read(EXECUTIONS_PATH, "created", &[id]).await?;
    Ok(id)
}

/// An execution as its run sees it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub id: i64,
    pub organization_id: i64,
    pub automation_id: i64,
    pub conversation_id: i64,
    pub status: String,
    pub initial_payload: Value,
    pub steps: Vec<Step>,
    pub steps_result: Vec<Value>,
    pub next_step: usize,
}

/// Execution `id` of `org`.
pub async fn load_execution<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    id: i64,
) -> Result<Option<Execution>> {
    let cols = [
        "id",
        "automation_id",
        "conversation_id",
        "status",
        "initial_payload",
        "steps",
        "steps_result",
        "next_step",
    ];
    let mut q = Query::select();
    q.columns(cols.map(c))
        .from(c(EXECUTIONS))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    let steps: Value = row.try_get("", "steps")?;
    let results: Value = row.try_get("", "steps_result")?;
    let next: i32 = row.try_get("", "next_step")?;
    Ok(Some(Execution {
        id: row.try_get("", "id")?,
        organization_id: org,
        automation_id: row.try_get("", "automation_id")?,
        conversation_id: row.try_get("", "conversation_id")?,
        status: row.try_get("", "status")?,
        initial_payload: row.try_get("", "initial_payload")?,
        steps: stored_steps(&steps)?,
        steps_result: results.as_array().cloned().unwrap_or_default(),
        next_step: Ord::max(next, 0) as usize,
    }))
}

/// `queued` → `running` (and `started_at`); records `patched`. False when it was
/// no longer queued.
pub async fn start(uow: &UnitOfWork, org: i64, id: i64) -> Result<bool> {
    let now = Utc::now();
    let mut q = Query::update();
    q.table(c(EXECUTIONS))
        .value(c("status"), RUNNING)
        .value(c("started_at"), now)
        .value(c("updated_at"), now)
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id))
        .and_where(Expr::col(c("status")).eq(QUEUED));
    let started = uow.conn().await?.execute(&q).await?.rows_affected() > 0;
    if started {
        uow.record_read(EXECUTIONS_PATH, "patched", &[id]).await?;
    }
    Ok(started)
}

/// Takes step `index` of running execution `id` for this unit: on PostgreSQL the
/// row stays locked until the unit ends, so no other run records it meanwhile.
/// False when the step is already recorded (or the run is over): do nothing.
pub async fn claim_step(uow: &UnitOfWork, org: i64, id: i64, index: usize) -> Result<bool> {
    let mut q = Query::update();
    q.table(c(EXECUTIONS))
        .value(c("next_step"), Expr::col(c("next_step")))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id))
        .and_where(Expr::col(c("status")).eq(RUNNING))
        .and_where(Expr::col(c("next_step")).eq(index as i32));
    Ok(uow.conn().await?.execute(&q).await?.rows_affected() > 0)
}

/// How a recorded step leaves its run.
pub enum After {
    /// Go on with the next step (or succeed when there is none).
    Next,
    /// The step failed: so does the run, with `error`.
    Fail(Value),
}

/// One step's result: `{index, type, status, output, error, attempts, started_at,
/// finished_at, duration_ms}`.
pub struct StepResult {
    pub index: usize,
    pub kind: &'static str,
    pub ok: bool,
    pub output: Value,
    pub error: Value,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
}

impl StepResult {
    fn to_json(&self, finished: DateTime<Utc>) -> Value {
        json!({
            "index": self.index, "type": self.kind,
            "status": if self.ok { SUCCEEDED } else { FAILED },
            "output": self.output, "error": self.error, "attempts": self.attempts,
            "started_at": format_timestamp(&self.started_at),
            "finished_at": format_timestamp(&finished),
            "duration_ms": Ord::max((finished - self.started_at).num_milliseconds(), 0),
        })
    }
}

/// Records step `result` of `exec` (claimed in this unit, see [`claim_step`]): the
/// result appended, the next step moved on, `added` steps inserted after it, and
/// the run finished when the step failed or was the last; records `patched`.
pub async fn record_step(
    uow: &UnitOfWork,
    exec: &Execution,
    result: &StepResult,
    added: &[Step],
    after: After,
) -> Result<()> {
    let now = Utc::now();
    let mut results = exec.steps_result.clone();
    results.push(result.to_json(now));
    let next = result.index + 1;
    let mut q = Query::update();
    q.table(c(EXECUTIONS))
        .value(c("steps_result"), Value::Array(results))
        .value(c("next_step"), next as i32)
        .value(c("updated_at"), now)
        .and_where(Expr::col(c("organization_id")).eq(exec.organization_id))
        .and_where(Expr::col(c("id")).eq(exec.id))
        .and_where(Expr::col(c("next_step")).eq(result.index as i32));
    let mut plan = exec.steps.len();
    if !added.is_empty() {
        let mut steps = exec.steps.clone();
        steps.splice(next..next, added.iter().cloned());
        plan = steps.len();
        q.value(c("steps"), steps_json(&steps));
    }
    match after {
        After::Fail(error) => {
            q.value(c("status"), FAILED)
                .value(c("error"), error)
                .value(c("finished_at"), now);
        }
        After::Next if next >= plan => {
            q.value(c("status"), SUCCEEDED).value(c("finished_at"), now);
        }
        After::Next => {}
    }
    if uow.conn().await?.execute(&q).await?.rows_affected() == 0 {
        return Err(FeathersError::general(
            "a claimed step was recorded by another run",
        ));
    }
    uow.record_read(EXECUTIONS_PATH, "patched", &[exec.id])
        .await
}

/// Ends a running execution whose plan is done (no step left: an empty plan).
pub async fn succeed_empty(uow: &UnitOfWork, exec: &Execution) -> Result<()> {
    let now = Utc::now();
    let mut q = Query::update();
    q.table(c(EXECUTIONS))
        .value(c("status"), SUCCEEDED)
        .value(c("finished_at"), now)
        .value(c("updated_at"), now)
        .and_where(Expr::col(c("organization_id")).eq(exec.organization_id))
        .and_where(Expr::col(c("id")).eq(exec.id))
        .and_where(Expr::col(c("status")).eq(RUNNING));
    if uow.conn().await?.execute(&q).await?.rows_affected() > 0 {
        uow.record_read(EXECUTIONS_PATH, "patched", &[exec.id])
            .await?;
    }
    Ok(())
}

/// The context a run starts from when the trigger gives none (Apex's): the
/// conversation and its contact as `get` shows them, and its newest
/// [`PAYLOAD_MESSAGES`] live messages in chronological order.
pub async fn context(uow: &UnitOfWork, org: i64, conversation_id: i64) -> Result<Value> {
    let conn = uow.conn().await?;
    let row = super::conversations::load(conn, org, conversation_id).await?;
    let conversation = (uow
        .read(super::conversations::PATH, &[conversation_id])
        .await?)
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let contact = (uow.read(super::contacts::PATH, &[row.contact_id]).await?)
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let ids = super::messages::newest_ids(conn, org, conversation_id, PAYLOAD_MESSAGES).await?;
    let mut messages = uow
        .read(&super::messages::path_of(&row.channel), &ids)
        .await?;
    let position = |m: &Value| {
        let id = m["id"].as_i64().unwrap_or_default();
        std::cmp::Reverse(ids.iter().position(|i| *i == id).unwrap_or(usize::MAX))
    };
    messages.sort_by_key(position);
    Ok(json!({ "conversation": conversation, "contact": contact, "messages": messages }))
}
