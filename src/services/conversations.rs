//! `/conversations`: inbox threads (find, get, patch, remove). Apex's fields and
//! filters, the virtual filters `searchTerm`, `waitingResponseOnly`, `tag_id` and
//! `view_id`, the contact embedded in every record, and exact totals from the
//! maintained counts.

use super::common::{PAGE_DEFAULT, PAGE_MAX, record_id};
use super::contacts::tagged;
use super::conversation_counts::ConversationCounter;
use crate::domain::UnitOfWork;
use crate::domain::conversations::{self, ConversationId, ConversationPatch, Status};
use crate::feathers::schema::Embed;
use crate::feathers::sql::{VirtualFilters, WriteMode};
use crate::feathers::{
    Direction, FeathersError, Field, FieldType, Filter, Id, JsonText, Params, Principal, Result,
    Schema, Service, SqlOptions, SqlService, Typed,
};
use async_trait::async_trait;
use sea_orm::sea_query::SelectStatement;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The channels, by their wire names (one vocabulary: `channels::Channel`).
pub const CHANNELS: &[&str] = &crate::channels::Channel::NAMES;
pub const STATUSES: &[&str] = &Status::NAMES;
/// `searchTerm` needs at least this many characters.
pub const SEARCH_MIN: usize = 2;
/// `messageSearchTerm` needs at least this many characters (a trigram).
pub const MESSAGE_SEARCH_MIN: usize = 3;
/// Up to this many matching contacts, a search is run as a list of contact ids.
const SEARCH_INLINE_MAX: usize = 500;

pub fn schema() -> Schema {
    use FieldType::*;
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", Integer).query(),
            Field::new("contact_id", Integer).query(),
            Field::new("channel", Enum(CHANNELS)).query(),
            Field::new("channel_account_id", Integer).nullable().query(),
            Field::new("external_id", String).nullable().query(),
            Field::new("status", Enum(STATUSES)).query().write(),
            Field::new("assigned_user_id", Integer)
                .nullable()
                .query()
                .write()
                .references("users"),
            Field::new("assigned_ai_assistant_id", Integer)
                .nullable()
                .query()
                .write()
                .references("ai_assistants"),
            Field::new("pipeline_id", Integer)
                .nullable()
                .query()
                .write()
                .references("pipelines"),
            Field::new("pipeline_stage_id", Integer)
                .nullable()
                .query()
                .write()
                .references("pipeline_stages"),
            Field::new("unread_count", Integer).query().write().min(0),
            Field::new("ai_context_cut", Timestamp)
                .nullable()
                .query()
                .write(),
            Field::new("ai_auto_assignment_disabled", Boolean)
                .query()
                .write(),
            Field::new("ai_auto_assignment_disabled_reason", String)
                .nullable()
                .write()
                .max_len(500),
            Field::new("blocked", Boolean).query().write(),
            Field::new("waiting_since", Timestamp).nullable().query(),
            Field::new("last_interaction_at", Timestamp).query(),
            Field::new("last_message_preview", String).nullable(),
            Field::new("last_inbound_at", Timestamp).nullable().query(),
            Field::new("is_group", Boolean).query(),
            Field::new("participants", Json).nullable(),
            Field::new("metadata", Json).nullable(),
            Field::new("created_at", Timestamp).query(),
            Field::new("updated_at", Timestamp).query(),
            Field::new("contact", Json).computed(),
        ],
    )
    .with_virtual("searchTerm", String)
    .with_virtual("messageSearchTerm", String)
    .with_virtual("waitingResponseOnly", Boolean)
    .with_virtual("tag_id", Integer)
}

fn col(name: &str) -> Expr {
    Expr::col((Alias::new("conversations"), Alias::new(name)))
}

/// `searchTerm`, `waitingResponseOnly` and `tag_id` as SQL.
struct ConversationFilters;

impl VirtualFilters for ConversationFilters {
    fn condition(
        &self,
        name: &str,
        value: &Typed,
        principal: Option<&Principal>,
    ) -> Result<Condition> {
        let org = principal
            .map(|p| p.tenant_id)
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))?;
        Ok(match (name, value) {
            ("searchTerm", Typed::Str(term)) => {
                let term = term.trim();
                if term.chars().count() < SEARCH_MIN {
                    return Err(FeathersError::invalid(
                        "searchTerm",
                        format!("needs at least {SEARCH_MIN} characters"),
                    ));
                }
                Condition::all().add(col("contact_id").in_subquery(contact_search(org, term)))
            }
            ("messageSearchTerm", Typed::Str(term)) => {
                let term = term.trim();
                if term.chars().count() < MESSAGE_SEARCH_MIN {
                    return Err(FeathersError::invalid(
                        "messageSearchTerm",
                        format!("needs at least {MESSAGE_SEARCH_MIN} characters"),
                    ));
                }
                Condition::all().add(col("id").in_subquery(message_search(org, term)))
            }
            ("waitingResponseOnly", Typed::Bool(true)) => Condition::all()
                .add(col("waiting_since").is_not_null())
                .add(col("status").eq("open")),
            ("waitingResponseOnly", Typed::Bool(false)) => Condition::all(),
            ("tag_id", Typed::Int(tag)) => {
                Condition::all().add(col("contact_id").in_subquery(tagged(org, *tag)))
            }
            _ => {
                return Err(FeathersError::invalid(
                    name,
                    "is not a field that can be queried",
                ));
            }
        })
    }

    /// `waitingResponseOnly` reads the conversation itself; the others read contacts.
    fn row_local(&self, name: &str) -> bool {
        name == "waitingResponseOnly"
    }
}

/// Checks the values of the virtual filters in `filters` (e.g. `searchTerm` length),
/// as a find would, without running anything: for queries stored for later.
pub fn check_virtual_filters(filters: &[Filter], principal: &Principal) -> Result<()> {
    for filter in filters {
        match filter {
            Filter::And(parts) | Filter::Or(parts) => check_virtual_filters(parts, principal)?,
            Filter::Virtual { name, value } => {
                ConversationFilters.condition(name, value, Some(principal))?;
            }
            Filter::Cmp { .. } => {}
        }
    }
    Ok(())
}

/// `%term%` for LIKE, lower-cased, with LIKE's own characters escaped.
fn contains_pattern(term: &str) -> LikeExpr {
    let escaped: String = term
        .to_lowercase()
        .chars()
        .flat_map(|c| {
            if matches!(c, '%' | '_' | '\\') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// Contacts of `org` whose name, email or phone contains `term` (case-insensitive),
/// over the expression the trigram index covers on PostgreSQL.
fn contact_search(org: i64, term: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("contacts"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(
            Expr::cust(migrations::current::CONTACT_SEARCH_TEXT).like(contains_pattern(term)),
        )
        .to_owned()
}

/// The conversations (as `conversation_id`, once per matching message) of `org`
/// with a live message whose text contains `term` (case-insensitive), over the
/// expression the trigram index covers on PostgreSQL (m0019).
fn message_search(org: i64, term: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("conversation_id"))
        .from(Alias::new("messages"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null())
        .and_where(
            Expr::cust(migrations::current::MESSAGE_SEARCH_TEXT).like(contains_pattern(term)),
        )
        .to_owned()
}

pub struct ConversationsService(pub SqlService);

impl ConversationsService {
    pub fn new(db: DatabaseConnection) -> Self {
        let options = SqlOptions::new("conversations", schema())
            .tenant("organization_id")
            .soft_delete("deleted_at")
            .timestamps("created_at", "updated_at")
            .paginate(PAGE_DEFAULT, Some(PAGE_MAX))
            .default_sort(vec![("last_interaction_at", Direction::Desc)])
            .virtuals(Arc::new(ConversationFilters))
            .counter(Arc::new(ConversationCounter))
            .anchored("conversation_versions")
            .embed(Embed {
                field: "contact",
                key: "contact_id",
                // Kept equal to the contact by migration m0007's triggers.
                prefix: migrations::current::CONTACT_COPY_PREFIX,
                columns: &[
                    ("id", FieldType::Integer),
                    ("first_name", FieldType::String),
                    ("last_name", FieldType::String),
                    ("email", FieldType::String),
                    ("phone", FieldType::String),
                    ("avatar_url", FieldType::String),
                ],
            });
        Self(SqlService::new(db, options))
    }

    /// The caller's live conversations a find with `query` would match, every one
    /// (no page): a select of their `id`, for bulk actions. `$limit` and `$skip` are
    /// refused (a bulk target is every match), `$sort` and `$select` mean nothing.
    pub async fn matching<C: ConnectionTrait>(
        &self,
        conn: &C,
        query: Value,
        params: &Params,
    ) -> Result<SelectStatement> {
        let Value::Object(mut query) = query else {
            return Err(FeathersError::invalid(
                "filter",
                "must be an object (a conversations query)",
            ));
        };
        for key in ["$limit", "$skip"] {
            if query.contains_key(key) {
                return Err(FeathersError::invalid(
                    &format!("filter.{key}"),
                    "is not taken: a bulk action applies to every match",
                ));
            }
        }
        query.shift_remove("$sort");
        query.shift_remove("$select");
        let mut params = params.clone();
        params.query = Value::Object(query);
        let params = self.find_params(conn, &params).await?;
        let parsed = self.0.parse_query(&params)?;
        let condition = self.0.condition(&parsed, &params)?;
        let mut q = sea_orm::sea_query::Query::select();
        q.column((
            sea_orm::sea_query::Alias::new("conversations"),
            sea_orm::sea_query::Alias::new("id"),
        ))
        .from(sea_orm::sea_query::Alias::new("conversations"))
        .cond_where(condition);
        Ok(q)
    }

    /// Replaces `view_id` with the saved view's query: its filters are ANDed with
    /// the request's, and its `$sort` applies when the request has none.
    /// A find's params with the saved view and the search term resolved.
    async fn find_params<C: ConnectionTrait>(&self, conn: &C, params: &Params) -> Result<Params> {
        let params = self.resolve_view(conn, params).await?;
        self.resolve_search(conn, params).await
    }

    async fn resolve_view<C: ConnectionTrait>(&self, conn: &C, params: &Params) -> Result<Params> {
        let mut params = params.clone();
        let Some(view_id) = crate::feathers::query::take_key(&mut params.query, "view_id") else {
            return Ok(params);
        };
        let id = match &view_id {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| FeathersError::invalid("view_id", "must be an integer"))?;
        let stored = load_view_query(conn, params.principal()?.tenant_id, id)
            .await?
            .ok_or_else(|| {
                FeathersError::invalid(
                    "view_id",
                    format!("{id} is not a saved view of this organization"),
                )
            })?;
        let Value::Object(stored) = stored else {
            return Ok(params);
        };
        with_view(params.query.as_object_mut().expect("query object"), stored)?;
        Ok(params)
    }

    /// A top-level `searchTerm` that matches few contacts becomes `contact_id $in
    /// [...]`, a `messageSearchTerm` that matches few messages `id $in [...]`: the
    /// planner then starts from those rows instead of walking every open conversation
    /// in order looking for them. More matches keep the subquery.
    async fn resolve_search<C: ConnectionTrait>(&self, conn: &C, params: Params) -> Result<Params> {
        let org = params.principal()?.tenant_id;
        let params = inline_matches(
            conn,
            params,
            "searchTerm",
            SEARCH_MIN,
            "contact_id",
            |term| contact_search(org, term),
        )
        .await?;
        inline_matches(
            conn,
            params,
            "messageSearchTerm",
            MESSAGE_SEARCH_MIN,
            "id",
            |term| message_search(org, term),
        )
        .await
    }
}

/// Replaces the top-level search `key` with `column $in [ids]` when its `search`
/// finds at most [`SEARCH_INLINE_MAX`] rows (read with a limit: a common term costs
/// no full count).
async fn inline_matches<C: ConnectionTrait>(
    conn: &C,
    mut params: Params,
    key: &str,
    min: usize,
    column: &str,
    search: impl Fn(&str) -> sea_orm::sea_query::SelectStatement,
) -> Result<Params> {
    let Some(Value::String(term)) = params.query.get(key).cloned() else {
        return Ok(params);
    };
    let term = term.trim();
    let chars = term.chars().count();
    if !(min..=crate::feathers::query::MAX_PATTERN).contains(&chars) {
        return Ok(params); // the filter itself answers 400
    }
    let mut q = search(term);
    q.limit(SEARCH_INLINE_MAX as u64 + 1);
    let rows = conn.query_all(&q).await?;
    let budget = crate::feathers::query::MAX_VALUES
        .saturating_sub(crate::feathers::query::raw_values(&params.query));
    if rows.len() > SEARCH_INLINE_MAX.min(budget) {
        return Ok(params);
    }
    let mut ids = rows
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    let query = params.query.as_object_mut().expect("query object");
    query.shift_remove(key);
    let and = query
        .entry("$and")
        .or_insert_with(|| Value::Array(Vec::new()));
    match and {
        Value::Array(items) => items.push(json!({ column: { "$in": ids } })),
        _ => {
            return Err(FeathersError::invalid(
                "$and",
                "must be an array of conditions",
            ));
        }
    }
    Ok(params)
}

/// Applies a saved view's query to a request's: its filters are ANDed with the
/// request's (one level down), its `$sort` applies when the request has none, its
/// `$limit`, `$skip` and `$select` are the request's business.
pub fn with_view(query: &mut Map<String, Value>, mut stored: Map<String, Value>) -> Result<()> {
    if let Some(sort) = stored.shift_remove("$sort") {
        query.entry("$sort").or_insert(sort);
    }
    for key in ["$limit", "$skip", "$select"] {
        stored.shift_remove(key);
    }
    if stored.is_empty() {
        return Ok(());
    }
    match query
        .entry("$and")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(items) => {
            items.push(Value::Object(stored));
            Ok(())
        }
        _ => Err(FeathersError::invalid(
            "$and",
            "must be an array of conditions",
        )),
    }
}

/// The stored query of a view of `org`, if there is one.
async fn load_view_query<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> Result<Option<Value>> {
    let mut q = sea_orm::sea_query::Query::select();
    q.column(Alias::new("query"))
        .from(Alias::new("conversation_views"))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org));
    Ok(conn
        .query_one(&q)
        .await?
        .map(|r| r.try_get::<Value>("", "query"))
        .transpose()?)
}

#[async_trait]
impl Service for ConversationsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let params = self.find_params(&self.0.db, params).await?;
        self.0._find(&self.0.db, &params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        let params = self.find_params(&self.0.db, params).await?;
        self.0._find_raw(&self.0.db, &params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let params = self.resolve_view(&self.0.db, params).await?;
        self.0._get(&self.0.db, id, &params).await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let conversation = ConversationId(record_id(id)?);
        let params = self.resolve_view(&self.0.db, params).await?;
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let command = command(&self.0.validate_data(&data, WriteMode::Patch, &params)?)?;
        let uow = UnitOfWork::of(&params)?;
        let query = self.0.parse_query(&params)?;
        if !query.filters.is_empty() {
            // A patch with a query changes the record only if it matches (Feathers).
            self.0
                ._get(uow.conn().await?, &conversation.0.to_string(), &params)
                .await?;
        }
        let org = params.principal()?.tenant_id;
        if conversations::patch(uow, org, &[conversation], &command)
            .await?
            .is_empty()
        {
            return Err(FeathersError::no_record(conversation.0));
        }
        let select = query.select.as_deref();
        if select.is_none()
            && let Some(record) = uow.recorded(conversations::PATH, conversation.0)
        {
            return Ok(record);
        }
        let answer = self
            .0
            .read_by_ids(uow.conn().await?, &[conversation.0], select)
            .await?;
        answer
            .into_iter()
            .next()
            .ok_or_else(|| FeathersError::no_record(conversation.0))
    }
    /// Soft delete (admins only, a hook): the conversation and its messages disappear
    /// from every service.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let conversation = ConversationId(record_id(id)?);
        let params = self.resolve_view(&self.0.db, params).await?;
        let uow = UnitOfWork::of(&params)?;
        // The answer is the record as it was, shaped as asked (and 404 unless it matches).
        let record = self
            .0
            ._get(uow.conn().await?, &conversation.0.to_string(), &params)
            .await?;
        conversations::remove(uow, params.principal()?.tenant_id, conversation).await?;
        Ok(record)
    }
}

/// A validated patch body as the domain's typed command.
fn command(fields: &[(&Field, Typed)]) -> Result<ConversationPatch> {
    let id = |v: &Typed| match v {
        Typed::Int(n) => Some(*n),
        _ => None,
    };
    let mut patch = ConversationPatch::default();
    for (field, value) in fields {
        match (field.name, value) {
            ("status", Typed::Str(s)) => patch.status = Status::parse(s),
            ("assigned_user_id", v) => patch.assigned_user_id = Some(id(v)),
            ("assigned_ai_assistant_id", v) => patch.assigned_ai_assistant_id = Some(id(v)),
            ("pipeline_id", v) => patch.pipeline_id = Some(id(v)),
            ("pipeline_stage_id", v) => patch.pipeline_stage_id = Some(id(v)),
            ("unread_count", Typed::Int(n)) => patch.unread_count = Some(*n),
            ("ai_context_cut", Typed::Time(t)) => patch.ai_context_cut = Some(Some(*t)),
            ("ai_context_cut", Typed::Null) => patch.ai_context_cut = Some(None),
            ("ai_auto_assignment_disabled", Typed::Bool(b)) => {
                patch.ai_auto_assignment_disabled = Some(*b)
            }
            ("ai_auto_assignment_disabled_reason", Typed::Str(s)) => {
                patch.ai_auto_assignment_disabled_reason = Some(Some(s.clone()))
            }
            ("ai_auto_assignment_disabled_reason", Typed::Null) => {
                patch.ai_auto_assignment_disabled_reason = Some(None)
            }
            ("blocked", Typed::Bool(b)) => patch.blocked = Some(*b),
            (name, _) => {
                return Err(FeathersError::invalid(
                    name,
                    "is not a field that can be written",
                ));
            }
        }
    }
    Ok(patch)
}
