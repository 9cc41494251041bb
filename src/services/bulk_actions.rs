//! `/conversations-bulk-actions`: one action over many conversations. Exactly one
//! target: `conversation_ids` (at most 10,000), `view_id` (a saved view's query) or
//! `filter` (any `/conversations` query: same parser, validation and virtual
//! filters; every match). The action's value is checked before any row changes;
//! `dry_run` answers the number of matches and stores nothing. Up to `sync_limit`
//! conversations the action completes before the answer; beyond, the answer is
//! `running` and a durable job does the rest in batches (`GET` shows how far).
//! `PATCH {status: "cancelled"}` stops a running one.

use super::common::{record_id, tenant_options, tenant_schema};
use super::conversations::ConversationsService;
use crate::auth::ADMIN;
use crate::domain::UnitOfWork;
use crate::domain::bulk_actions::{self, Action};
use crate::domain::conversations::Status;
use crate::feathers::{FeathersError, Field, FieldType, Id, Params, Result, Service, SqlService};
use crate::jobs::NewJob;
use crate::jobs::kinds::{BULK_RUN, SYSTEM};
use async_trait::async_trait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The most ids one action names.
pub const MAX_IDS: usize = 10_000;

pub fn schema() -> crate::feathers::Schema {
    use FieldType::*;
    tenant_schema(vec![
        Field::new("action", Enum(&Action::NAMES)).query(),
        Field::new("params", Json),
        Field::new("target", Json),
        Field::new(
            "status",
            Enum(&["running", "completed", "failed", "cancelled"]),
        )
        .query(),
        Field::new("total", Integer),
        Field::new("processed_count", Integer),
        Field::new("failed_count", Integer),
        Field::new("errors", Json),
        Field::new("created_by_user_id", Integer).nullable().query(),
        Field::new("finished_at", Timestamp).nullable().query(),
    ])
}

pub struct BulkActionsService {
    pub sql: SqlService,
    conversations: ConversationsService,
    /// Actions over at most this many conversations complete before the answer.
    sync_limit: u64,
}

impl BulkActionsService {
    pub fn new(
        db: DatabaseConnection,
        conversations: ConversationsService,
        sync_limit: u64,
    ) -> Self {
        Self {
            sql: Self::read_binding(db),
            conversations,
            sync_limit,
        }
    }

    /// How the records read: newest first.
    pub fn read_binding(db: DatabaseConnection) -> SqlService {
        use crate::feathers::Direction::Desc;
        let options = tenant_options("bulk_actions", schema())
            .default_sort(vec![("created_at", Desc), ("id", Desc)]);
        SqlService::new(db, options)
    }
}

/// `null` is a value (unassign), absence is not.
fn nullable_id<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::<i64>::deserialize(d)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    action: String,
    organization_id: Option<i64>,
    conversation_ids: Option<Vec<i64>>,
    view_id: Option<i64>,
    filter: Option<Map<String, Value>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default, deserialize_with = "nullable_id")]
    assigned_user_id: Option<Option<i64>>,
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable_id")]
    assigned_ai_assistant_id: Option<Option<i64>>,
    pipeline_id: Option<i64>,
    pipeline_stage_id: Option<i64>,
}

fn required<T>(value: Option<T>, field: &str, action: &str) -> Result<T> {
    value.ok_or_else(|| {
        FeathersError::unprocessable(format!("{action} needs {field}"))
            .with_data(json!({ "rule": "action_value", "action": action, "field": field }))
    })
}

impl Body {
    /// The action with its value (422 when the value is missing or wrong).
    fn action(&self) -> Result<Action> {
        let name = self.action.as_str();
        let value_keys = [
            (
                "assigned_user_id",
                self.assigned_user_id.is_some(),
                "assign",
            ),
            ("status", self.status.is_some(), "update_status"),
            (
                "assigned_ai_assistant_id",
                self.assigned_ai_assistant_id.is_some(),
                "assign_ai_assistant",
            ),
            ("pipeline_id", self.pipeline_id.is_some(), "move"),
            (
                "pipeline_stage_id",
                self.pipeline_stage_id.is_some(),
                "move",
            ),
        ];
        if let Some((key, _, _)) = value_keys
            .iter()
            .find(|(_, set, owner)| *set && *owner != name)
        {
            return Err(FeathersError::invalid(
                key,
                format!("is not a value of action {name}"),
            ));
        }
        Ok(match name {
            "assign" => Action::Assign(required(self.assigned_user_id, "assigned_user_id", name)?),
            "update_status" => {
                let status = required(self.status.as_deref(), "status", name)?;
                Action::UpdateStatus(Status::parse(status).ok_or_else(|| {
                    FeathersError::unprocessable(format!("status must be open or closed, not {status:?}"))
                        .with_data(json!({ "rule": "action_value", "field": "status", "allowed": ["open", "closed"] }))
                })?)
            }
            "assign_ai_assistant" => Action::AssignAiAssistant(required(
                self.assigned_ai_assistant_id,
                "assigned_ai_assistant_id",
                name,
            )?),
            "move" => Action::Move {
                pipeline_id: required(self.pipeline_id, "pipeline_id", name)?,
                pipeline_stage_id: required(self.pipeline_stage_id, "pipeline_stage_id", name)?,
            },
            "mark_read" => Action::MarkRead,
            "mark_unread" => Action::MarkUnread,
            "block" => Action::Block,
            "unblock" => Action::Unblock,
            "delete" => Action::Delete,
            other => {
                return Err(FeathersError::invalid(
                    "action",
                    format!("must be one of {}, not {other:?}", Action::NAMES.join(", ")),
                ));
            }
        })
    }
}

/// A select of one `id` column: the caller's live conversations among `ids`.
fn live_among(org: i64, ids: &[i64]) -> sea_orm::sea_query::SelectStatement {
    let mut q = Query::select();
    q.column(Alias::new("id"))
        .from(Alias::new("conversations"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null())
        .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()));
    q
}

async fn count<C: ConnectionTrait>(
    conn: &C,
    matches: sea_orm::sea_query::SelectStatement,
) -> Result<i64> {
    let mut q = Query::select();
    q.expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from_subquery(matches, Alias::new("m"));
    Ok(match conn.query_one(&q).await? {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    })
}

#[async_trait]
impl Service for BulkActionsService {
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
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let body: Body = serde_json::from_value(data)
            .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))?;
        let principal = params.principal()?;
        let org = principal.tenant_id;
        if body.organization_id.is_some_and(|o| o != org) {
            return Err(FeathersError::forbidden(
                "organization_id must be the caller's own",
            ));
        }
        let targets = [
            body.conversation_ids.is_some(),
            body.view_id.is_some(),
            body.filter.is_some(),
        ];
        if targets.iter().filter(|t| **t).count() != 1 {
            return Err(FeathersError::bad_request(
                "Name exactly one target: conversation_ids, view_id or filter",
            ));
        }
        let action = body.action()?;
        if action == Action::Delete && principal.role != ADMIN {
            return Err(FeathersError::forbidden(
                "Only an admin may delete conversations",
            ));
        }
        let uow = UnitOfWork::of(params)?;
        let conn = uow.conn().await?;
        bulk_actions::check(conn, org, &action).await?;
        let resolved = if let Some(view) = body.view_id {
            let matches = (self.conversations)
                .matching(conn, json!({ "view_id": view }), params)
                .await?;
            Some((matches, json!({ "view_id": view })))
        } else if let Some(filter) = &body.filter {
            let matches = (self.conversations)
                .matching(conn, Value::Object(filter.clone()), params)
                .await?;
            Some((matches, json!({ "filter": filter })))
        } else {
            None
        };
        let mut not_found = Vec::new();
        let (matches, target) = match (resolved, &body.conversation_ids) {
            (Some(resolved), _) => resolved,
            (None, Some(ids)) => {
                if ids.len() > MAX_IDS {
                    return Err(FeathersError::invalid(
                        "conversation_ids",
                        format!("must name at most {MAX_IDS} conversations"),
                    ));
                }
                let ids: Vec<i64> = ids
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let live: BTreeSet<i64> = (conn.query_all(&live_among(org, &ids)).await?.iter())
                    .map(|r| r.try_get("", "id"))
                    .collect::<std::result::Result<_, _>>()?;
                not_found = ids
                    .iter()
                    .copied()
                    .filter(|id| !live.contains(id))
                    .collect();
                let live: Vec<i64> = live.into_iter().collect();
                (
                    live_among(org, &live),
                    json!({ "conversation_ids": ids.len() }),
                )
            }
            (None, None) => unreachable!("one target was checked above"),
        };
        if body.dry_run {
            let total = count(conn, matches).await? + not_found.len() as i64;
            return Ok(json!({
                "id": null, "action": action.name(), "params": action.params(), "target": target,
                "status": "completed", "total": total, "processed_count": 0, "failed_count": 0,
                "errors": [], "dry_run": true,
            }));
        }
        let (id, total) = bulk_actions::create(
            uow,
            org,
            principal.user_id,
            &action,
            target,
            matches,
            &not_found,
        )
        .await?;
        if total - not_found.len() as u64 <= self.sync_limit {
            bulk_actions::run_batch(uow, org, id, Ord::max(self.sync_limit, 1)).await?;
        } else {
            let payload = json!({ "bulk_action_id": id, "user_id": principal.user_id });
            let mut job = NewJob::new(SYSTEM, BULK_RUN, payload);
            job.organization_id = Some(org);
            job.max_attempts = 20;
            job.dedupe_key = Some(format!("{BULK_RUN}:{id}"));
            uow.enqueue(&job).await?;
        }
        let mut record = (uow.recorded(bulk_actions::PATH, id))
            .ok_or_else(|| FeathersError::general("a bulk action was not recorded"))?;
        record["dry_run"] = json!(false);
        Ok(record)
    }
    /// Only `{status: "cancelled"}`, on a running action.
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let id = record_id(id)?;
        if data != json!({ "status": "cancelled" }) {
            return Err(FeathersError::bad_request(
                "A bulk action can only be cancelled: patch {\"status\": \"cancelled\"}",
            ));
        }
        let uow = UnitOfWork::of(params)?;
        bulk_actions::cancel(uow, params.principal()?.tenant_id, id).await?;
        (uow.recorded(bulk_actions::PATH, id))
            .ok_or_else(|| FeathersError::general("a cancelled bulk action was not recorded"))
    }
}
