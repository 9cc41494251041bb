//! Conversations: the commands that change them (create, patch, remove, what a
//! message does to its thread) and the only SQL that writes the `conversations`
//! table. Every statement starts from the organization; every change records its
//! events in the unit of work. Counts and deep-page versions follow by trigger.

use super::messages::{self, NewMessage};
use super::unit_of_work::UnitOfWork;
use crate::feathers::sql::missing_reference;
use crate::feathers::{FeathersError, Result};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, CaseStatement, Expr, ExprTrait, Func, Order, Query, SimpleExpr, UpdateStatement,
};
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value, json};

/// The path whose events conversations are.
pub const PATH: &str = "conversations";
const TABLE: &str = "conversations";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// A conversation's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationId(pub i64);

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Closed,
}

impl Status {
    pub const NAMES: [&'static str; 2] = ["open", "closed"];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Status::Open),
            "closed" => Some(Status::Closed),
            _ => None,
        }
    }
}

/// The conversation a message goes to, as the composer needs it.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: i64,
    pub organization_id: i64,
    pub channel: String,
    pub contact_id: i64,
    pub external_id: Option<String>,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// The live conversation `id` of `org`; 404 otherwise (another organization's too).
pub async fn load<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> Result<ConversationRow> {
    let cols = [
        "id",
        "organization_id",
        "channel",
        "contact_id",
        "external_id",
        "last_inbound_at",
    ];
    let mut q = Query::select();
    q.columns(cols.map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id))
        .and_where(Expr::col(c("deleted_at")).is_null());
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::no_record(id))?;
    Ok(ConversationRow {
        id: row.try_get("", "id")?,
        organization_id: row.try_get("", "organization_id")?,
        channel: row.try_get("", "channel")?,
        contact_id: row.try_get("", "contact_id")?,
        external_id: row.try_get("", "external_id")?,
        last_inbound_at: row.try_get("", "last_inbound_at")?,
    })
}

/// A new conversation (for ingest, imports and the playground): open, never
/// interacted with but at its creation time.
pub struct NewConversation<'a> {
    pub contact_id: i64,
    pub channel: &'a str,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    /// A provider's thread: the channel account it lives on, the participant's
    /// address (or group id) replies go to, the group roster, provider state.
    pub channel_account_id: Option<i64>,
    pub external_id: Option<String>,
    pub is_group: bool,
    pub participants: Option<Value>,
    pub metadata: Option<Value>,
}

impl<'a> NewConversation<'a> {
    /// An open conversation of no provider thread.
    pub fn new(contact_id: i64, channel: &'a str, created_at: DateTime<Utc>) -> Self {
        Self {
            contact_id,
            channel,
            status: Status::Open,
            created_at,
            channel_account_id: None,
            external_id: None,
            is_group: false,
            participants: None,
            metadata: None,
        }
    }
}

/// Stores a new conversation of the unit's organization; records `created`.
pub async fn create(
    uow: &UnitOfWork,
    org: i64,
    new: &NewConversation<'_>,
) -> Result<ConversationId> {
    let id = insert(uow.conn().await?, org, new).await?;
    uow.record_read(PATH, "created", &[id.0]).await?;
    Ok(id)
}

/// The INSERT alone, on any connection (the seed writes without events).
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    new: &NewConversation<'_>,
) -> Result<ConversationId> {
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "contact_id",
                "channel",
                "status",
                "last_interaction_at",
                "created_at",
                "updated_at",
                "channel_account_id",
                "external_id",
                "is_group",
                "participants",
                "metadata",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            new.contact_id.into(),
            new.channel.into(),
            new.status.as_str().into(),
            new.created_at.into(),
            new.created_at.into(),
            new.created_at.into(),
            new.channel_account_id.into(),
            new.external_id.clone().into(),
            new.is_group.into(),
            json_value(&new.participants),
            json_value(&new.metadata),
        ])
        .returning_col(c("id"));
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    Ok(ConversationId(row.try_get("", "id")?))
}

/// A JSON column's value (SQL NULL for `None`).
fn json_value(v: &Option<Value>) -> Expr {
    Expr::val(
        v.clone()
            .map(Into::into)
            .unwrap_or(sea_orm::sea_query::Value::Json(None)),
    )
}

/// The contact's live playground conversation, if it has one.
pub async fn playground_of<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    contact: i64,
) -> Result<Option<ConversationId>> {
    let mut q = Query::select();
    q.column(c("id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("contact_id")).eq(contact))
        .and_where(Expr::col(c("channel")).eq("playground"))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .order_by(c("id"), Order::Asc)
        .limit(1);
    Ok(conn
        .query_one(&q)
        .await?
        .map(|r| r.try_get("", "id").map(ConversationId))
        .transpose()?)
}

/// True when the contact has a live conversation.
pub async fn contact_has_any<C: ConnectionTrait>(conn: &C, org: i64, contact: i64) -> Result<bool> {
    Ok(!contact_conversations(conn, org, contact, Some(1))
        .await?
        .is_empty())
}

/// The live conversations of a contact (they embed it: a contact change patches them).
pub async fn contact_conversations<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    contact: i64,
    limit: Option<u64>,
) -> Result<Vec<i64>> {
    let mut q = Query::select();
    q.column(c("id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("contact_id")).eq(contact))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .order_by(c("id"), Order::Asc);
    if let Some(limit) = limit {
        q.limit(limit);
    }
    let rows = conn.query_all(&q).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?)
}

/// A change to conversations, field by field: `None` leaves a field alone,
/// `Some(None)` clears it. What `PATCH /conversations/:id`, bulk actions and
/// automations all apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationPatch {
    pub status: Option<Status>,
    pub assigned_user_id: Option<Option<i64>>,
    pub assigned_ai_assistant_id: Option<Option<i64>>,
    pub pipeline_id: Option<Option<i64>>,
    pub pipeline_stage_id: Option<Option<i64>>,
    pub unread_count: Option<i64>,
    pub ai_context_cut: Option<Option<DateTime<Utc>>>,
    pub ai_auto_assignment_disabled: Option<bool>,
    pub ai_auto_assignment_disabled_reason: Option<Option<String>>,
    pub blocked: Option<bool>,
}

impl ConversationPatch {
    /// The references it names, by field and table: each must be the organization's.
    fn references(&self) -> Vec<(&'static str, &'static str, i64)> {
        [
            ("assigned_user_id", "users", self.assigned_user_id),
            (
                "assigned_ai_assistant_id",
                "ai_assistants",
                self.assigned_ai_assistant_id,
            ),
            ("pipeline_id", "pipelines", self.pipeline_id),
            (
                "pipeline_stage_id",
                "pipeline_stages",
                self.pipeline_stage_id,
            ),
        ]
        .into_iter()
        .filter_map(|(field, table, v)| Some((field, table, v.flatten()?)))
        .collect()
    }
}

/// Applies `patch` to the live conversations `ids` of `org` in one statement and
/// records `patched` for each; answers the ids it changed (others are not the
/// organization's, or gone). The rules: references must be the organization's (422,
/// the same for a missing and a foreign id), a negative unread count is refused, a
/// stage brings its pipeline (a stage of another pipeline than the one given is a
/// 422), and a new pipeline clears a stage that is not one of its own.
pub async fn patch(
    uow: &UnitOfWork,
    org: i64,
    ids: &[ConversationId],
    patch: &ConversationPatch,
) -> Result<Vec<ConversationId>> {
    let conn = uow.conn().await?;
    let patch = prepare(conn, org, patch).await?;
    patch_prepared(uow, org, ids, &patch).await
}

/// Checks `patch` against the rules and completes it (a stage brings its
/// pipeline): what [`patch`] applies. A bulk action checks once, before any row.
pub async fn prepare<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    patch: &ConversationPatch,
) -> Result<ConversationPatch> {
    let mut patch = patch.clone();
    if patch.unread_count.is_some_and(|n| n < 0) {
        return Err(FeathersError::invalid("unread_count", "must be 0 or more"));
    }
    for (field, table, id) in patch.references() {
        crate::feathers::sql::check_reference(conn, (table, "organization_id", org), field, id)
            .await?;
    }
    if let Some(Some(stage)) = patch.pipeline_stage_id {
        let stage_pipeline = stage_pipeline(conn, org, stage)
            .await?
            .ok_or_else(|| missing_reference("pipeline_stage_id", stage))?;
        match patch.pipeline_id {
            None => patch.pipeline_id = Some(Some(stage_pipeline)),
            Some(Some(p)) if p == stage_pipeline => {}
            Some(p) => {
                return Err(FeathersError::unprocessable(
                    "pipeline_stage_id is not a stage of pipeline_id",
                )
                .with_data(json!({ "rule": "stage_in_pipeline", "pipeline_id": p, "pipeline_stage_id": stage, "stage_pipeline_id": stage_pipeline })));
            }
        }
    }
    Ok(patch)
}

/// Applies a patch [`prepare`] checked, in one statement; records `patched` for
/// each conversation it changed and answers them.
pub async fn patch_prepared(
    uow: &UnitOfWork,
    org: i64,
    ids: &[ConversationId],
    patch: &ConversationPatch,
) -> Result<Vec<ConversationId>> {
    let conn = uow.conn().await?;
    let mut q = Query::update();
    q.table(c(TABLE));
    set(&mut q, patch, conn.get_database_backend());
    q.and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).is_in(ids.iter().map(|id| id.0)))
        .and_where(Expr::col(c("deleted_at")).is_null())
        .returning_col(c("id"));
    let changed: Vec<i64> = (conn.query_all(&q).await?.iter())
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?;
    uow.record_read(PATH, "patched", &changed).await?;
    Ok(changed.into_iter().map(ConversationId).collect())
}

/// The SET list of a patch (and `updated_at`, stamped by the database as the
/// generic adapter does, so the write that commits last has the latest time).
fn set(q: &mut UpdateStatement, p: &ConversationPatch, backend: DbBackend) {
    if let Some(v) = p.status {
        q.value(c("status"), v.as_str());
    }
    if let Some(v) = p.assigned_user_id {
        q.value(c("assigned_user_id"), v);
    }
    if let Some(v) = p.assigned_ai_assistant_id {
        q.value(c("assigned_ai_assistant_id"), v);
    }
    if let Some(v) = p.pipeline_id {
        q.value(c("pipeline_id"), v);
        if p.pipeline_stage_id.is_none() {
            // A stage of another pipeline goes; one of the new pipeline stays.
            let keep: SimpleExpr = match v {
                Some(pipeline) => CaseStatement::new()
                    .case(
                        Expr::col(c("pipeline_stage_id")).in_subquery(
                            Query::select()
                                .column(c("id"))
                                .from(c("pipeline_stages"))
                                .and_where(Expr::col(c("pipeline_id")).eq(pipeline))
                                .to_owned(),
                        ),
                        Expr::col(c("pipeline_stage_id")),
                    )
                    .finally(Expr::val(Option::<i64>::None))
                    .into(),
                None => Expr::val(Option::<i64>::None),
            };
            q.value(c("pipeline_stage_id"), keep);
        }
    }
    if let Some(v) = p.pipeline_stage_id {
        q.value(c("pipeline_stage_id"), v);
    }
    if let Some(v) = p.unread_count {
        q.value(c("unread_count"), v);
    }
    if let Some(v) = p.ai_context_cut {
        q.value(c("ai_context_cut"), v);
    }
    if let Some(v) = p.ai_auto_assignment_disabled {
        q.value(c("ai_auto_assignment_disabled"), v);
    }
    if let Some(v) = &p.ai_auto_assignment_disabled_reason {
        q.value(c("ai_auto_assignment_disabled_reason"), v.clone());
    }
    if let Some(v) = p.blocked {
        q.value(c("blocked"), v);
    }
    q.value(
        c("updated_at"),
        Expr::cust(crate::feathers::sql::now_sql(backend)),
    );
}

/// Soft-deletes conversation `id` of `org` and its live messages (invisible to every
/// service from now on); records `removed` for each message and for the
/// conversation. 404 when it is not the organization's live conversation.
pub async fn remove(uow: &UnitOfWork, org: i64, id: ConversationId) -> Result<()> {
    if remove_many(uow, org, &[id]).await?.is_empty() {
        return Err(FeathersError::no_record(id.0));
    }
    Ok(())
}

/// Soft-deletes the live conversations `ids` of `org` and their live messages, a
/// statement for each table whatever their number; records `removed` for every
/// message and conversation (as they were); answers the conversations removed.
pub async fn remove_many(
    uow: &UnitOfWork,
    org: i64,
    ids: &[ConversationId],
) -> Result<Vec<ConversationId>> {
    let conn = uow.conn().await?;
    let mut live = Query::select();
    live.column(c("id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).is_in(ids.iter().map(|id| id.0)))
        .and_where(Expr::col(c("deleted_at")).is_null());
    if conn.get_database_backend() == DbBackend::Postgres {
        live.lock(sea_orm::sea_query::LockType::Update);
    }
    let live: Vec<i64> = (conn.query_all(&live).await?.iter())
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?;
    if live.is_empty() {
        return Ok(Vec::new());
    }
    messages::remove_all_of(uow, org, &live).await?;
    uow.record_read(PATH, "removed", &live).await?;
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("deleted_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).is_in(live.iter().copied()))
        .and_where(Expr::col(c("deleted_at")).is_null());
    conn.execute(&q).await?;
    Ok(live.into_iter().map(ConversationId).collect())
}

/// What a stored message does to its conversation; records `patched` when it
/// changes. Outbound (not a note): the interaction time and preview move,
/// `waiting_since` clears, and a user's reply marks it read. Inbound: the same plus
/// unread +1, `last_inbound_at`, waiting since now (if not already), and a closed
/// conversation reopens, unless it is blocked, which leaves it untouched. Notes,
/// activities and reactions change nothing.
pub async fn apply_message(uow: &UnitOfWork, m: &NewMessage) -> Result<()> {
    if !m.counts_as_interaction() {
        return Ok(());
    }
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("last_interaction_at"), m.created_at)
        .value(
            c("last_message_preview"),
            messages::preview(&m.message_type, m.text.as_deref()),
        )
        .value(c("updated_at"), m.created_at)
        .and_where(Expr::col(c("organization_id")).eq(m.organization_id))
        .and_where(Expr::col(c("id")).eq(m.conversation_id));
    if m.direction == "inbound" {
        q.value(c("last_inbound_at"), m.created_at)
            .value(c("unread_count"), Expr::col(c("unread_count")).add(1))
            .value(
                c("waiting_since"),
                // Portable: a `?` placeholder in custom SQL is not one on PostgreSQL.
                Func::coalesce([Expr::col(c("waiting_since")), Expr::val(m.created_at)]),
            )
            .value(c("status"), "open")
            .and_where(Expr::col(c("blocked")).eq(false));
    } else {
        q.value(
            c("waiting_since"),
            sea_orm::sea_query::Value::ChronoDateTimeUtc(None),
        );
        if m.sender_type == "user" {
            q.value(c("unread_count"), 0i64);
        }
    }
    if uow.conn().await?.execute(&q).await?.rows_affected() > 0 {
        uow.record_read(PATH, "patched", &[m.conversation_id])
            .await?;
    }
    Ok(())
}

/// After a message is removed: if it was the newest, the preview shows the newest
/// remaining one (and the conversation records `patched`).
pub async fn fix_preview(
    uow: &UnitOfWork,
    org: i64,
    conversation: i64,
    removed_at: DateTime<Utc>,
) -> Result<()> {
    let conn = uow.conn().await?;
    let newest = messages::newest_interaction(conn, org, conversation).await?;
    if newest.as_ref().is_some_and(|(_, _, at)| *at > removed_at) {
        return Ok(());
    }
    let preview = newest.map(|(t, text, _)| messages::preview(&t, text.as_deref()));
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("last_message_preview"), preview)
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(conversation));
    if conn.execute(&q).await?.rows_affected() > 0 {
        uow.record_read(PATH, "patched", &[conversation]).await?;
    }
    Ok(())
}

async fn stage_pipeline<C: ConnectionTrait>(conn: &C, org: i64, stage: i64) -> Result<Option<i64>> {
    let mut q = Query::select();
    q.column(c("pipeline_id"))
        .from(c("pipeline_stages"))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(stage));
    Ok(conn
        .query_one(&q)
        .await?
        .map(|r| r.try_get("", "pipeline_id"))
        .transpose()?)
}

/// A conversation's provider thread, as delivery and ingest see it.
#[derive(Debug, Clone)]
pub struct Thread {
    pub id: i64,
    pub contact_id: i64,
    pub channel: String,
    pub channel_account_id: Option<i64>,
    /// Where replies go: the participant's address, or the group id.
    pub external_id: Option<String>,
    pub is_group: bool,
    pub metadata: Option<Value>,
}

/// The thread of the live conversation `id` of `org`.
pub async fn thread_of<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> Result<Option<Thread>> {
    let cols = [
        "id",
        "contact_id",
        "channel",
        "channel_account_id",
        "external_id",
        "is_group",
        "metadata",
    ];
    let mut q = Query::select();
    q.columns(cols.map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id))
        .and_where(Expr::col(c("deleted_at")).is_null());
    let Some(r) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some(Thread {
        id: r.try_get("", "id")?,
        contact_id: r.try_get("", "contact_id")?,
        channel: r.try_get("", "channel")?,
        channel_account_id: r.try_get("", "channel_account_id")?,
        external_id: r.try_get("", "external_id")?,
        is_group: r.try_get("", "is_group")?,
        metadata: r.try_get("", "metadata")?,
    }))
}

/// What a provider tells of a thread: the account it is on, its state (kept in
/// `metadata`), its group roster. Only what is given changes.
#[derive(Debug, Clone, Default)]
pub struct ThreadUpdate {
    pub channel_account_id: Option<i64>,
    pub metadata: Option<Value>,
    pub is_group: Option<bool>,
    pub participants: Option<Value>,
}

/// Applies `update` to conversation `id` of `org`; records `patched` when it changed anything.
pub async fn update_thread(
    uow: &UnitOfWork,
    org: i64,
    id: i64,
    update: &ThreadUpdate,
) -> Result<()> {
    let mut q = Query::update();
    q.table(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    let mut any = false;
    if let Some(account) = update.channel_account_id {
        q.value(c("channel_account_id"), account);
        any = true;
    }
    if let Some(metadata) = &update.metadata {
        q.value(c("metadata"), json_value(&Some(metadata.clone())));
        any = true;
    }
    if let Some(is_group) = update.is_group {
        q.value(c("is_group"), is_group);
        any = true;
    }
    if let Some(participants) = &update.participants {
        q.value(c("participants"), json_value(&Some(participants.clone())));
        any = true;
    }
    if !any {
        return Ok(());
    }
    q.value(c("updated_at"), Utc::now());
    if uow.conn().await?.execute(&q).await?.rows_affected() > 0 {
        uow.record_read(PATH, "patched", &[id]).await?;
    }
    Ok(())
}
