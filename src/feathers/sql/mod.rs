//! The generic SQL adapter: Feathers' six methods over any table described by a
//! [`Schema`], on sea-query (what `@feathersjs/knex` is to Feathers). Domain
//! services wrap it and add their rules; the hook-less `_find`/`_get`/... take a
//! connection so a wrapper can run them inside its own transaction.

use super::anchors::{self, AnchorQuery, AnchoredPage, Anchors};
use super::error::{FeathersError, Result};
use super::query::{Direction, Filter, Op, Query};
use super::rows::{RowShape, RowWriter, row_value, write_page};
use super::schema::{Embed, Field, FieldType, Schema, Source, Typed, coerce};
use super::service::{Id, JsonText, Params, Principal, Service};
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{
    Alias, BinOper, Condition, Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order,
    Query as SqlQuery, SelectStatement, SimpleExpr,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult};
use serde_json::{Value, json};
use std::sync::Arc;

mod filters;
mod options;
mod reads;
mod writes;

use super::sql_text::paged;
pub use filters::comparison;
pub use options::{Multi, Paginate, SqlOptions, TotalCounter, VirtualFilters, WriteMode};
pub use writes::{check_reference, missing_reference, now_sql};

/// The generic service over one table.
#[derive(Clone)]
pub struct SqlService {
    pub db: DatabaseConnection,
    pub options: SqlOptions,
}

fn col(table: &str, name: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(name)))
}

/// A typed value as a bound SQL value of the field's type (typed NULLs included).
pub fn sql_value(ty: FieldType, v: &Typed) -> sea_orm::sea_query::Value {
    use sea_orm::sea_query::Value as V;
    match (v, ty) {
        (Typed::Null, FieldType::String | FieldType::Enum(_)) => V::String(None),
        (Typed::Null, FieldType::Integer) => V::BigInt(None),
        (Typed::Null, FieldType::Number) => V::Double(None),
        (Typed::Null, FieldType::Boolean) => V::Bool(None),
        (Typed::Null, FieldType::Timestamp) => V::ChronoDateTimeUtc(None),
        (Typed::Null, FieldType::Json) => V::Json(None),
        (Typed::Int(i), FieldType::Number) => V::Double(Some(*i as f64)),
        (Typed::Str(s), _) => V::String(Some(s.clone())),
        (Typed::Int(i), _) => V::BigInt(Some(*i)),
        (Typed::Num(f), _) => V::Double(Some(*f)),
        (Typed::Bool(b), _) => V::Bool(Some(*b)),
        (Typed::Time(t), _) => V::ChronoDateTimeUtc(Some(*t)),
        (Typed::Json(j), _) => V::Json(Some(Box::new(j.clone()))),
    }
}

/// Parses an id from a URL; one that does not parse matches no record (404, as Feathers).
pub fn parse_id(id: &str) -> Result<i64> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| FeathersError::no_record(id))
}

impl SqlService {
    pub fn new(db: DatabaseConnection, options: SqlOptions) -> Self {
        Self { db, options }
    }

    pub fn schema(&self) -> &Schema {
        &self.options.schema
    }

    pub(super) fn col(&self, name: &str) -> Expr {
        col(self.options.table, name)
    }

    pub(super) fn tenant_id(&self, params: &Params) -> Result<Option<i64>> {
        match self.options.tenant_column {
            Some(_) => Ok(Some(params.principal()?.tenant_id)),
            None => Ok(None),
        }
    }
}

fn single_or_many(id: Option<&Id>, rows: Vec<Value>) -> Result<Value> {
    match id {
        Some(id) => rows
            .into_iter()
            .next()
            .ok_or_else(|| FeathersError::no_record(id)),
        None => Ok(Value::Array(rows)),
    }
}

#[async_trait]
impl Service for SqlService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self._find(&self.db, params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        self._find_raw(&self.db, params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self._get(&self.db, id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        self._create(params.txn().await?, data, params).await
    }
    async fn update(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        (self._patch(params.txn().await?, id, data, params, WriteMode::Update)).await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        (self._patch(params.txn().await?, id, data, params, WriteMode::Patch)).await
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        self._remove(params.txn().await?, id, params).await
    }
}
