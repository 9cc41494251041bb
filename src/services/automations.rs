//! `/automations` (admins write; everyone reads) and `/automations-executions`
//! (create, find, get): automation definitions with ordered steps, and their runs
//! on a conversation. The webhook secret is in the create answer only; runs are
//! asynchronous (the create answers `queued`) and act as the automation.

use super::common::{record_id, tenant_options, tenant_schema};
use crate::auth::sealing::Sealer;
use crate::domain::UnitOfWork;
use crate::domain::automations::{
    self, AutomationPatch, EXECUTIONS_PATH, MAX_PAYLOAD_BYTES, MAX_STEPS, NewAutomation,
    NewExecution, PATH, PAYLOAD_MESSAGES, WebhookPolicy,
};
use crate::feathers::error::ErrorKind;
use crate::feathers::schema::json_size;
use crate::feathers::{FeathersError, Field, FieldType, Id, Params, Result, Service, SqlService};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn schema() -> crate::feathers::Schema {
    use FieldType::*;
    tenant_schema(vec![
        Field::new("name", String).query().like(),
        Field::new("enabled", Boolean).query(),
        Field::new("trigger", String).query(),
        Field::new("steps", Json),
        Field::new("secret_sealed", String).hidden(),
    ])
}

pub fn executions_schema() -> crate::feathers::Schema {
    use FieldType::*;
    tenant_schema(vec![
        Field::new("automation_id", Integer).query(),
        Field::new("conversation_id", Integer).query(),
        Field::new("status", String).query(),
        Field::new("initial_payload", Json),
        Field::new("steps", Json).hidden(),
        Field::new("steps_result", Json),
        Field::new("next_step", Integer).hidden(),
        Field::new("error", Json).nullable(),
        Field::new("triggered_by", Json),
        Field::new("started_at", Timestamp).nullable().query(),
        Field::new("finished_at", Timestamp).nullable().query(),
    ])
}

pub struct AutomationsService {
    pub sql: SqlService,
    sealer: Arc<Sealer>,
    policy: WebhookPolicy,
}

impl AutomationsService {
    pub fn new(db: DatabaseConnection, sealer: Arc<Sealer>, policy: WebhookPolicy) -> Self {
        Self {
            sql: SqlService::new(db, tenant_options("automations", schema())),
            sealer,
            policy,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    organization_id: Option<i64>,
    name: Option<String>,
    enabled: Option<bool>,
    trigger: Option<String>,
    steps: Option<Value>,
}

fn check_org(org: Option<i64>, params: &Params) -> Result<i64> {
    let own = params.principal()?.tenant_id;
    if org.is_some_and(|o| o != own) {
        return Err(FeathersError::forbidden(
            "organization_id must be the caller's own",
        ));
    }
    Ok(own)
}

impl Body {
    fn parse(data: Value) -> Result<Self> {
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let body: Self = serde_json::from_value(data)
            .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))?;
        if let Some(name) = &body.name {
            if name.trim().is_empty() {
                return Err(FeathersError::invalid("name", "must not be blank"));
            }
            if name.chars().count() > 100 {
                return Err(FeathersError::invalid(
                    "name",
                    "must be at most 100 characters",
                ));
            }
        }
        if let Some(trigger) = &body.trigger
            && trigger != "manual"
        {
            return Err(FeathersError::invalid(
                "trigger",
                format!("must be manual, not {trigger:?}"),
            ));
        }
        Ok(body)
    }
}

impl AutomationsService {
    /// The steps of a body, each checked (422 naming the step's index and field),
    /// references included.
    async fn steps(&self, uow: &UnitOfWork, org: i64, v: &Value) -> Result<Vec<automations::Step>> {
        if v.as_array().is_some_and(|a| a.len() > MAX_STEPS) {
            return Err(FeathersError::unprocessable(format!(
                "steps must hold at most {MAX_STEPS} steps"
            ))
            .with_data(json!({ "rule": "automation_step", "field": "steps" })));
        }
        let steps = automations::parse_steps(v, 0, self.policy)?;
        automations::check_references(uow.conn().await?, org, &steps, 0).await?;
        Ok(steps)
    }
}

#[async_trait]
impl Service for AutomationsService {
    /// The webhook secret is shown once, to its creator.
    fn secret_fields(&self) -> &'static [&'static str] {
        &["secret"]
    }
    async fn find(&self, params: &Params) -> Result<Value> {
        self.sql.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.sql.get(id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let body = Body::parse(data)?;
        let org = check_org(body.organization_id, params)?;
        let name = (body.name).ok_or_else(|| FeathersError::invalid("name", "is required"))?;
        let steps = (body.steps).ok_or_else(|| FeathersError::invalid("steps", "is required"))?;
        let uow = UnitOfWork::of(params)?;
        let steps = self.steps(uow, org, &steps).await?;
        let new = NewAutomation {
            name,
            enabled: body.enabled.unwrap_or(true),
            trigger: body.trigger.unwrap_or_else(|| "manual".into()),
            steps,
            secret: automations::new_secret(),
        };
        let id = automations::create(uow, &self.sealer, org, &new).await?;
        let mut record = (uow.recorded(PATH, id))
            .ok_or_else(|| FeathersError::general("a created automation was not recorded"))?;
        record["secret"] = json!(new.secret);
        Ok(record)
    }
    async fn update(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(FeathersError::method_not_allowed(
            "Method `update` is not supported by this endpoint; patch what changes.",
        ))
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let id = record_id(id)?;
        let body = Body::parse(data)?;
        let org = check_org(body.organization_id, params)?;
        let uow = UnitOfWork::of(params)?;
        let steps = match &body.steps {
            Some(v) => Some(self.steps(uow, org, v).await?),
            None => None,
        };
        let patch = AutomationPatch {
            name: body.name,
            enabled: body.enabled,
            trigger: body.trigger,
            steps,
        };
        automations::patch(uow, org, id, &patch).await?;
        (uow.recorded(PATH, id))
            .ok_or_else(|| FeathersError::general("a patched automation was not recorded"))
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let id = record_id(id)?;
        let uow = UnitOfWork::of(params)?;
        let org = params.principal()?.tenant_id;
        automations::remove(uow, org, id).await?;
        (uow.recorded(PATH, id))
            .ok_or_else(|| FeathersError::general("a removed automation was not recorded"))
    }
}

pub struct ExecutionsService {
    pub sql: SqlService,
    sealer: Arc<Sealer>,
}

impl ExecutionsService {
    pub fn new(db: DatabaseConnection, sealer: Arc<Sealer>) -> Self {
        Self {
            sql: SqlService::new(
                db,
                tenant_options("automation_executions", executions_schema()),
            ),
            sealer,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    automation_id: Option<i64>,
    organization_id: Option<i64>,
    conversation_id: Option<i64>,
    initial_payload: Option<Value>,
}

/// 400 unless a given `initial_payload` is Apex's: an object with `conversation`
/// (an object), `contact` (an object or null) and `messages` (at most 50); 413
/// beyond 1 MiB.
fn check_payload(payload: &Value) -> Result<()> {
    let size = json_size(payload);
    if size > MAX_PAYLOAD_BYTES {
        return Err(FeathersError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "initial_payload must be at most {MAX_PAYLOAD_BYTES} bytes of JSON (it is {size})"
            ),
        ));
    }
    let Some(obj) = payload.as_object() else {
        return Err(FeathersError::invalid(
            "initial_payload",
            "must be an object",
        ));
    };
    if !obj.get("conversation").is_some_and(Value::is_object) {
        return Err(FeathersError::invalid(
            "initial_payload.conversation",
            "is required (an object)",
        ));
    }
    if !obj
        .get("contact")
        .is_some_and(|c| c.is_object() || c.is_null())
    {
        return Err(FeathersError::invalid(
            "initial_payload.contact",
            "is required (an object or null)",
        ));
    }
    match obj.get("messages").and_then(Value::as_array) {
        Some(m) if m.len() as u64 <= PAYLOAD_MESSAGES => Ok(()),
        Some(_) => Err(FeathersError::invalid(
            "initial_payload.messages",
            format!("must hold at most {PAYLOAD_MESSAGES} messages"),
        )),
        None => Err(FeathersError::invalid(
            "initial_payload.messages",
            "is required (an array)",
        )),
    }
}

#[async_trait]
impl Service for ExecutionsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.sql.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.sql.get(id, params).await
    }
    /// Triggers a run: 201 with the `queued` execution; the run follows as a job.
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let body: TriggerBody = serde_json::from_value(data)
            .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))?;
        let org = check_org(body.organization_id, params)?;
        let automation_id = (body.automation_id)
            .ok_or_else(|| FeathersError::invalid("automation_id", "is required"))?;
        let conversation_id = (body.conversation_id)
            .ok_or_else(|| FeathersError::invalid("conversation_id", "is required"))?;
        if let Some(payload) = &body.initial_payload {
            check_payload(payload)?;
        }
        let uow = UnitOfWork::of(params)?;
        let conn = uow.conn().await?;
        let automation = automations::load(conn, &self.sealer, org, automation_id)
            .await?
            .ok_or_else(|| {
                crate::feathers::sql::missing_reference("automation_id", automation_id)
            })?;
        if !automation.enabled {
            return Err(FeathersError::unprocessable(format!(
                "automation {automation_id} is disabled"
            ))
            .with_data(json!({ "rule": "automation_enabled", "automation_id": automation_id })));
        }
        if let Err(e) = crate::domain::conversations::load(conn, org, conversation_id).await {
            return Err(match e.kind {
                ErrorKind::NotFound => {
                    crate::feathers::sql::missing_reference("conversation_id", conversation_id)
                }
                _ => e,
            });
        }
        let initial_payload = match body.initial_payload {
            Some(p) => p,
            None => automations::context(uow, org, conversation_id).await?,
        };
        let principal = params.principal()?;
        let triggered_by = match principal.strategy.as_str() {
            // The key acts as its user: `id` is that user's.
            "api-key" => json!({ "type": "api_key", "id": principal.user_id }),
            _ => json!({ "type": "user", "id": principal.user_id }),
        };
        let new = NewExecution {
            automation_id,
            conversation_id,
            initial_payload,
            steps: automation.steps,
            triggered_by,
        };
        let id = automations::create_execution(uow, org, &new).await?;
        (uow.recorded(EXECUTIONS_PATH, id))
            .ok_or_else(|| FeathersError::general("a created execution was not recorded"))
    }
}
