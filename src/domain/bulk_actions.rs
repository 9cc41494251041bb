//! Bulk actions over conversations. The target is resolved once, when the action
//! starts, into its items (a fixed set of conversation ids: a row that starts
//! matching later is not touched); then batches run, each one set-based statement
//! through the conversations' own commands (the same rules and events as a single
//! patch or remove) and the items' and counts' update, in one unit of work, so a
//! restart resumes at the first pending item and changes no row twice. The only
//! SQL writing `bulk_actions` and `bulk_action_items`.

use super::conversations::{self, ConversationId, ConversationPatch, Status};
use super::unit_of_work::UnitOfWork;
use crate::feathers::{FeathersError, Result};
use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value, json};
use std::collections::HashSet;

pub const PATH: &str = "conversations-bulk-actions";
const TABLE: &str = "bulk_actions";
const ITEMS: &str = "bulk_action_items";
/// The most per-conversation errors an action keeps (the count goes on).
pub const MAX_ERRORS: usize = 100;

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// What a bulk action does to each conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Assign(Option<i64>),
    UpdateStatus(Status),
    AssignAiAssistant(Option<i64>),
    Move {
        pipeline_id: i64,
        pipeline_stage_id: i64,
    },
    MarkRead,
    MarkUnread,
    Block,
    Unblock,
    Delete,
}

impl Action {
    /// Every action's name, as the body names it.
    pub const NAMES: [&'static str; 9] = [
        "assign",
        "update_status",
        "assign_ai_assistant",
        "move",
        "mark_read",
        "mark_unread",
        "block",
        "unblock",
        "delete",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Action::Assign(_) => "assign",
            Action::UpdateStatus(_) => "update_status",
            Action::AssignAiAssistant(_) => "assign_ai_assistant",
            Action::Move { .. } => "move",
            Action::MarkRead => "mark_read",
            Action::MarkUnread => "mark_unread",
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Delete => "delete",
        }
    }

    /// The action's value under the conversation fields it sets (stored, and answered).
    pub fn params(&self) -> Value {
        match self {
            Action::Assign(user) => json!({ "assigned_user_id": user }),
            Action::UpdateStatus(status) => json!({ "status": status.as_str() }),
            Action::AssignAiAssistant(ai) => json!({ "assigned_ai_assistant_id": ai }),
            Action::Move {
                pipeline_id,
                pipeline_stage_id,
            } => {
                json!({ "pipeline_id": pipeline_id, "pipeline_stage_id": pipeline_stage_id })
            }
            _ => json!({}),
        }
    }

    /// Reads a stored action back (`name`, `params` as [`Action::params`] wrote them).
    pub fn stored(name: &str, params: &Value) -> Option<Self> {
        let id = |key: &str| params.get(key).and_then(Value::as_i64);
        Some(match name {
            "assign" => Action::Assign(id("assigned_user_id")),
            "update_status" => {
                Action::UpdateStatus(Status::parse(params.get("status")?.as_str()?)?)
            }
            "assign_ai_assistant" => Action::AssignAiAssistant(id("assigned_ai_assistant_id")),
            "move" => Action::Move {
                pipeline_id: id("pipeline_id")?,
                pipeline_stage_id: id("pipeline_stage_id")?,
            },
            "mark_read" => Action::MarkRead,
            "mark_unread" => Action::MarkUnread,
            "block" => Action::Block,
            "unblock" => Action::Unblock,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    /// The patch it applies (`None`: it removes).
    pub fn patch(&self) -> Option<ConversationPatch> {
        let mut p = ConversationPatch::default();
        match self {
            Action::Assign(user) => p.assigned_user_id = Some(*user),
            Action::UpdateStatus(status) => p.status = Some(*status),
            Action::AssignAiAssistant(ai) => p.assigned_ai_assistant_id = Some(*ai),
            Action::Move {
                pipeline_id,
                pipeline_stage_id,
            } => {
                p.pipeline_id = Some(Some(*pipeline_id));
                p.pipeline_stage_id = Some(Some(*pipeline_stage_id));
            }
            Action::MarkRead => p.unread_count = Some(0),
            Action::MarkUnread => p.unread_count = Some(1),
            Action::Block => p.blocked = Some(true),
            Action::Unblock => p.blocked = Some(false),
            Action::Delete => return None,
        }
        Some(p)
    }
}

/// Checks the action's value against the rules before any row changes (a
/// reference of another organization, a stage of another pipeline: 422).
pub async fn check<C: ConnectionTrait>(conn: &C, org: i64, action: &Action) -> Result<()> {
    if let Some(patch) = action.patch() {
        conversations::prepare(conn, org, &patch).await?;
    }
    Ok(())
}

/// A new action: its target's conversations (`matches`, a select of one `id`
/// column, already scoped to the organization) become its items; `not_found` are
/// ids the caller named that are not the organization's live conversations (failed
/// from the start). Answers its id and total; records `created`.
pub async fn create(
    uow: &UnitOfWork,
    org: i64,
    user: i64,
    action: &Action,
    target: Value,
    matches: SelectStatement,
    not_found: &[i64],
) -> Result<(i64, u64)> {
    let conn = uow.conn().await?;
    let now = Utc::now();
    let errors: Vec<Value> = (not_found.iter().take(MAX_ERRORS))
        .map(|id| json!({ "conversation_id": id, "message": "not found" }))
        .collect();
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "action",
                "params",
                "target",
                "status",
                "total",
                "processed_count",
                "failed_count",
                "errors",
                "created_by_user_id",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            action.name().into(),
            action.params().into(),
            target.into(),
            "running".into(),
            0i64.into(),
            0i64.into(),
            (not_found.len() as i64).into(),
            Value::Array(errors).into(),
            user.into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (conn.query_one(&q).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    let id: i64 = row.try_get("", "id")?;
    let mut items = Query::select();
    items
        .expr(Expr::val(id))
        .expr(Expr::col((c("m"), c("id"))))
        .expr(Expr::val("pending"))
        .from_subquery(matches, c("m"));
    let mut insert = Query::insert();
    insert
        .into_table(c(ITEMS))
        .columns(["bulk_action_id", "conversation_id", "state"].map(c))
        .select_from(items)
        .map_err(|e| FeathersError::general("a bulk action's items").with_cause(e))?;
    let matched = conn.execute(&insert).await?.rows_affected();
    let total = matched + not_found.len() as u64;
    let mut update = Query::update();
    update
        .table(c(TABLE))
        .value(c("total"), total as i64)
        .and_where(Expr::col(c("id")).eq(id));
    if matched == 0 {
        update
            .value(c("status"), "completed")
            .value(c("finished_at"), now);
    }
    conn.execute(&update).await?;
    uow.record_read(PATH, "created", &[id]).await?;
    Ok((id, total))
}

/// The state of an action a batch reads (its row locked on PostgreSQL).
struct Running {
    action: Action,
    status: String,
    errors: Vec<Value>,
}

async fn lock<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> Result<Running> {
    let mut q = Query::select();
    q.columns([c("action"), c("params"), c("status"), c("errors")])
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    if conn.get_database_backend() == DbBackend::Postgres {
        q.lock(LockType::Update);
    }
    let row = (conn.query_one(&q).await?).ok_or_else(|| FeathersError::no_record(id))?;
    let name: String = row.try_get("", "action")?;
    let params: Value = row.try_get("", "params")?;
    let errors: Value = row.try_get("", "errors")?;
    Ok(Running {
        action: Action::stored(&name, &params).ok_or_else(|| {
            FeathersError::general(format!("bulk action {id} has an unknown action {name:?}"))
        })?,
        status: row.try_get("", "status")?,
        errors: errors.as_array().cloned().unwrap_or_default(),
    })
}

/// Runs the next batch of at most `size` pending items of action `id` of `org`;
/// answers whether the action is finished (completed, or cancelled meanwhile).
pub async fn run_batch(uow: &UnitOfWork, org: i64, id: i64, size: u64) -> Result<bool> {
    let conn = uow.conn().await?;
    let mut running = lock(conn, org, id).await?;
    if running.status != "running" {
        return Ok(true);
    }
    let mut pending = Query::select();
    pending
        .column(c("conversation_id"))
        .from(c(ITEMS))
        .and_where(Expr::col(c("bulk_action_id")).eq(id))
        // A literal, not a bound value: the server plans statements generically, and
        // only `state = 'pending'` in the text lets the plan use the partial index
        // (with a bound state each batch walked every item done before it).
        .and_where(Expr::cust("state = 'pending'"))
        .order_by(c("conversation_id"), Order::Asc)
        .limit(size);
    let batch: Vec<ConversationId> = (conn.query_all(&pending).await?.iter())
        .map(|r| r.try_get("", "conversation_id").map(ConversationId))
        .collect::<Result<_, _>>()?;
    let changed = match (running.action.patch(), batch.is_empty()) {
        (_, true) => Vec::new(),
        (Some(patch), false) => {
            let patch = conversations::prepare(conn, org, &patch).await?;
            conversations::patch_prepared(uow, org, &batch, &patch).await?
        }
        (None, false) => conversations::remove_many(uow, org, &batch).await?,
    };
    // A conversation gone since the action started fails as "not found".
    let changed: HashSet<i64> = changed.iter().map(|c| c.0).collect();
    let failed: Vec<i64> = batch
        .iter()
        .map(|c| c.0)
        .filter(|id| !changed.contains(id))
        .collect();
    for conversation in failed
        .iter()
        .take(MAX_ERRORS.saturating_sub(running.errors.len()))
    {
        running
            .errors
            .push(json!({ "conversation_id": conversation, "message": "not found" }));
    }
    // The batch is the first pending items in conversation order: the failed ones
    // are named, the rest is the batch's range (read by the primary key; a list of a
    // thousand ids planned generically read every item: 1.8 s a batch of 100,000).
    if !failed.is_empty() {
        let mut q = Query::update();
        q.table(c(ITEMS))
            .value(c("state"), "failed")
            .and_where(Expr::col(c("bulk_action_id")).eq(id))
            .and_where(Expr::col(c("conversation_id")).is_in(failed.iter().copied()));
        conn.execute(&q).await?;
    }
    if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
        let mut q = Query::update();
        q.table(c(ITEMS))
            .value(c("state"), "done")
            .and_where(Expr::col(c("bulk_action_id")).eq(id))
            .and_where(Expr::col(c("conversation_id")).gte(first.0))
            .and_where(Expr::col(c("conversation_id")).lte(last.0))
            .and_where(Expr::cust("state = 'pending'"));
        conn.execute(&q).await?;
    }
    let finished = (batch.len() as u64) < size;
    let now = Utc::now();
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(
            c("processed_count"),
            Expr::col(c("processed_count")).add(changed.len() as i64),
        )
        .value(
            c("failed_count"),
            Expr::col(c("failed_count")).add(failed.len() as i64),
        )
        .value(c("errors"), Value::Array(running.errors))
        .value(c("updated_at"), now)
        .and_where(Expr::col(c("id")).eq(id));
    if finished {
        q.value(c("status"), "completed")
            .value(c("finished_at"), now);
    }
    conn.execute(&q).await?;
    uow.record_read(PATH, "patched", &[id]).await?;
    Ok(finished)
}

/// Cancels running action `id` of `org`: no batch runs after this one commits
/// (what is done stays done). 409 when it is no longer running.
pub async fn cancel(uow: &UnitOfWork, org: i64, id: i64) -> Result<()> {
    let conn = uow.conn().await?;
    let running = lock(conn, org, id).await?;
    if running.status != "running" {
        return Err(FeathersError::conflict(format!(
            "Bulk action {id} is {}; only a running one can be cancelled",
            running.status
        )));
    }
    let now = Utc::now();
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("status"), "cancelled")
        .value(c("finished_at"), now)
        .value(c("updated_at"), now)
        .and_where(Expr::col(c("id")).eq(id));
    conn.execute(&q).await?;
    uow.record_read(PATH, "patched", &[id]).await
}
