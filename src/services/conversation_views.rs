//! `/conversation-views`: saved inbox views, a name and a stored Feathers query
//! over conversations. Everyone in the organization sees them; their owner or an
//! admin changes them. `GET /conversations?view_id=N` applies one.

use super::common::{create_owned, patch_owned, remove_owned, tenant_options, tenant_schema};
use crate::feathers::schema::Source;
use crate::feathers::{
    FeathersError, Field, FieldType, Id, Params, Query, Result, Service, SqlService,
};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde_json::Value;

pub fn schema() -> crate::feathers::Schema {
    tenant_schema(vec![
        Field::new("owner_user_id", FieldType::Integer)
            .nullable()
            .query(),
        Field::new("name", FieldType::String)
            .query()
            .like()
            .required()
            .write()
            .max_len(100)
            .non_blank(),
        // A stored query (filters and sort), not a document.
        Field::new("query", FieldType::Json)
            .required()
            .write()
            .max_bytes(16 * 1024),
    ])
}

pub struct ConversationViewsService(pub SqlService);

impl ConversationViewsService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(SqlService::new(
            db,
            tenant_options("conversation_views", schema()),
        ))
    }
}

/// A stored query must be a valid conversations query of the caller's organization.
fn check_query(data: &Value, params: &Params) -> Result<()> {
    let Some(query) = data.get("query") else {
        return Ok(());
    };
    if !query.is_object() || query.get("view_id").is_some() {
        return Err(FeathersError::invalid(
            "query",
            "must be a conversations query object without view_id",
        ));
    }
    let schema = super::conversations::schema();
    let invalid = |e: FeathersError| FeathersError::invalid("query", e.message);
    // Every key as stored, then the filters as they will be used: `/conversations`
    // ANDs them with the request's, one level down.
    Query::parse(query, &schema, Source::Query).map_err(invalid)?;
    let mut as_used = serde_json::Map::new();
    let stored = query.as_object().cloned().unwrap_or_default();
    super::conversations::with_view(&mut as_used, stored).map_err(invalid)?;
    let parsed = Query::parse(&Value::Object(as_used), &schema, Source::Query).map_err(invalid)?;
    let principal = params.principal()?;
    if parsed
        .filters
        .iter()
        .any(|f| names_other_org(f, principal.tenant_id))
    {
        return Err(FeathersError::forbidden(
            "organization_id must be the caller's own",
        ));
    }
    super::conversations::check_virtual_filters(&parsed.filters, principal)
        .map_err(|e| FeathersError::invalid("query", e.message))
}

fn names_other_org(filter: &crate::feathers::Filter, org: i64) -> bool {
    use crate::feathers::{Filter, Typed};
    match filter {
        Filter::And(parts) | Filter::Or(parts) => parts.iter().any(|f| names_other_org(f, org)),
        Filter::Cmp { field, values, .. } => {
            field == "organization_id" && values.iter().any(|v| *v != Typed::Int(org))
        }
        Filter::Virtual { .. } => false,
    }
}

#[async_trait]
impl Service for ConversationViewsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if !data.is_array() {
            check_query(&data, params)?;
        }
        create_owned(&self.0, data, params, "owner_user_id").await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        check_query(&data, params)?;
        patch_owned(&self.0, id, data, params, "owner_user_id").await
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        remove_owned(&self.0, id, params, "owner_user_id").await
    }
}
