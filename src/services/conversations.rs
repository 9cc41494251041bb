//! `/conversations`: inbox threads (find, get, patch, remove). Apex's fields and
//! filters, the virtual filters `searchTerm`, `waitingResponseOnly`, `tag_id` and
//! `view_id`, the contact embedded in every record, and exact totals from the
//! maintained counts.

use super::common::{PAGE_DEFAULT, PAGE_MAX, single};
use super::contacts::tagged;
use super::conversation_counts::ConversationCounter;
use crate::auth::require_admin;
use crate::feathers::schema::Embed;
use crate::feathers::sql::{VirtualFilters, WriteMode, missing_reference};
use crate::feathers::{
    Direction, FeathersError, Field, FieldType, Filter, Id, JsonText, Params, Principal, Result,
    Schema, Service, SqlOptions, SqlService, Typed,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The channels, by their wire names (one vocabulary: `channels::Channel`).
pub const CHANNELS: &[&str] = &crate::channels::Channel::NAMES;
pub const STATUSES: &[&str] = &["open", "closed"];
/// `searchTerm` needs at least this many characters.
pub const SEARCH_MIN: usize = 2;
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

/// Contacts of `org` whose name, email or phone contains `term` (case-insensitive),
/// over the expression the trigram index covers on PostgreSQL.
fn contact_search(org: i64, term: &str) -> sea_orm::sea_query::SelectStatement {
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
    let pattern = LikeExpr::new(format!("%{escaped}%")).escape('\\');
    Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("contacts"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::cust(migrations::current::CONTACT_SEARCH_TEXT).like(pattern))
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

    /// Replaces `view_id` with the saved view's query: its filters are ANDed with
    /// the request's, and its `$sort` applies when the request has none.
    /// A find's params with the saved view and the search term resolved.
    async fn find_params(&self, params: &Params) -> Result<Params> {
        let params = self.resolve_view(params).await?;
        self.resolve_search(params).await
    }

    async fn resolve_view(&self, params: &Params) -> Result<Params> {
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
        let stored = load_view_query(&self.0.db, params.principal()?.tenant_id, id)
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

    /// A top-level `searchTerm` that matches few contacts becomes `contact_id $in [...]`:
    /// the planner then starts from those contacts' conversations instead of walking
    /// every open conversation in order looking for them. More matches keep the subquery.
    async fn resolve_search(&self, mut params: Params) -> Result<Params> {
        let Some(Value::String(term)) = params.query.get("searchTerm").cloned() else {
            return Ok(params);
        };
        let term = term.trim();
        let chars = term.chars().count();
        if !(SEARCH_MIN..=crate::feathers::query::MAX_PATTERN).contains(&chars) {
            return Ok(params); // the filter itself answers 400
        }
        let mut q = contact_search(params.principal()?.tenant_id, term);
        q.limit(SEARCH_INLINE_MAX as u64 + 1);
        let rows = self.0.db.query_all(&q).await?;
        let budget = crate::feathers::query::MAX_VALUES
            .saturating_sub(crate::feathers::query::raw_values(&params.query));
        if rows.len() > SEARCH_INLINE_MAX.min(budget) {
            return Ok(params);
        }
        let ids = rows
            .iter()
            .map(|r| r.try_get::<i64>("", "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let query = params.query.as_object_mut().expect("query object");
        query.shift_remove("searchTerm");
        let and = query
            .entry("$and")
            .or_insert_with(|| Value::Array(Vec::new()));
        match and {
            Value::Array(items) => items.push(json!({ "contact_id": { "$in": ids } })),
            _ => {
                return Err(FeathersError::invalid(
                    "$and",
                    "must be an array of conditions",
                ));
            }
        }
        Ok(params)
    }

    /// Keeps pipeline and stage consistent on the typed, reference-checked fields of a
    /// patch: a stage implies its pipeline; a new pipeline clears a stage of another.
    async fn pipeline_rules<'s, C: ConnectionTrait>(
        &'s self,
        conn: &C,
        conversation: i64,
        fields: &mut Vec<(&'s Field, Typed)>,
        org: i64,
    ) -> Result<()> {
        let typed = |fields: &[(&Field, Typed)], name: &str| {
            fields
                .iter()
                .find(|(f, _)| f.name == name)
                .map(|(_, v)| v.clone())
        };
        let schema = self.0.schema();
        let set = |fields: &mut Vec<(&'s Field, Typed)>, name: &str, value: Typed| {
            fields.retain(|(f, _)| f.name != name);
            fields.push((schema.field(name).expect("conversation field"), value));
        };
        match (
            typed(fields, "pipeline_stage_id"),
            typed(fields, "pipeline_id"),
        ) {
            (Some(Typed::Int(stage)), pipeline) => {
                let stage_pipeline = stage_pipeline(conn, org, stage)
                    .await?
                    .ok_or_else(|| missing_reference("pipeline_stage_id", stage))?;
                match pipeline {
                    None => set(fields, "pipeline_id", Typed::Int(stage_pipeline)),
                    Some(Typed::Int(p)) if p == stage_pipeline => {}
                    Some(p) => {
                        return Err(FeathersError::unprocessable("pipeline_stage_id is not a stage of pipeline_id").with_data(
                            json!({ "rule": "stage_in_pipeline", "pipeline_id": p.to_json(), "pipeline_stage_id": stage, "stage_pipeline_id": stage_pipeline }),
                        ));
                    }
                }
            }
            (None, Some(Typed::Null)) => set(fields, "pipeline_stage_id", Typed::Null),
            (None, Some(Typed::Int(p))) => {
                let mut q = Query::select();
                q.column(Alias::new("pipeline_id"))
                    .from(Alias::new("conversations"))
                    .and_where(Expr::col(Alias::new("id")).eq(conversation))
                    .and_where(Expr::col(Alias::new("organization_id")).eq(org));
                let current: Option<i64> = match conn.query_one(&q).await? {
                    Some(row) => row.try_get("", "pipeline_id")?,
                    None => None,
                };
                if current != Some(p) {
                    set(fields, "pipeline_stage_id", Typed::Null);
                }
            }
            _ => {}
        }
        Ok(())
    }
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

async fn stage_pipeline<C: ConnectionTrait>(conn: &C, org: i64, stage: i64) -> Result<Option<i64>> {
    let mut q = Query::select();
    q.column(Alias::new("pipeline_id"))
        .from(Alias::new("pipeline_stages"))
        .and_where(Expr::col(Alias::new("id")).eq(stage))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org));
    Ok(conn
        .query_one(&q)
        .await?
        .map(|r| r.try_get("", "pipeline_id"))
        .transpose()?)
}

#[async_trait]
impl Service for ConversationsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let params = self.find_params(params).await?;
        self.0._find(&self.0.db, &params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        let params = self.find_params(params).await?;
        self.0._find_raw(&self.0.db, &params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let params = self.resolve_view(params).await?;
        self.0._get(&self.0.db, id, &params).await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let conversation = single(id, "patch")?;
        let params = self.resolve_view(params).await?;
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let txn = self.0.db.begin().await?;
        let mut fields = self
            .0
            .validate_write(&txn, &data, WriteMode::Patch, &params)
            .await?;
        let org = params.principal()?.tenant_id;
        self.pipeline_rules(&txn, conversation, &mut fields, org)
            .await?;
        let result = self.0.patch_fields(&txn, id, &fields, &params).await?;
        txn.commit().await?;
        Ok(result)
    }
    /// Soft delete (admins only): the conversation disappears from every service.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        require_admin(params)?;
        let conversation = single(id, "remove")?;
        let params = self.resolve_view(params).await?;
        let txn = self.0.db.begin().await?;
        let result = self.0._remove(&txn, id, &params).await?;
        // Its messages go with it: invisible to every service from now on.
        let mut messages = Query::update();
        messages
            .table(Alias::new("messages"))
            .value(Alias::new("deleted_at"), Utc::now())
            .and_where(Expr::col(Alias::new("conversation_id")).eq(conversation))
            .and_where(Expr::col(Alias::new("organization_id")).eq(params.principal()?.tenant_id))
            .and_where(Expr::col(Alias::new("deleted_at")).is_null());
        txn.execute(&messages).await?;
        txn.commit().await?;
        Ok(result)
    }
}

/// A new conversation (for ingest, imports and the seed): open, never interacted
/// with but at its creation time. Answers its id.
pub struct NewConversation<'a> {
    pub organization_id: i64,
    pub contact_id: i64,
    pub channel: &'a str,
    pub status: &'a str,
    pub created_at: DateTime<Utc>,
}

pub async fn insert<C: ConnectionTrait>(conn: &C, new: &NewConversation<'_>) -> Result<i64> {
    let mut q = Query::insert();
    q.into_table(Alias::new("conversations"))
        .columns(
            [
                "organization_id",
                "contact_id",
                "channel",
                "status",
                "last_interaction_at",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            new.organization_id.into(),
            new.contact_id.into(),
            new.channel.into(),
            new.status.into(),
            new.created_at.into(),
            new.created_at.into(),
            new.created_at.into(),
        ])
        .returning_col(Alias::new("id"));
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    Ok(row.try_get("", "id")?)
}
