//! What every organization-owned service shares: tenant scoping, timestamps,
//! Apex pagination (default 10, maximum 50), and reference checks.

use crate::feathers::sql::WriteMode;
use crate::feathers::sql::parse_id;
use crate::feathers::{
    Direction, FeathersError, Field, FieldType, Id, Params, Result, Schema, SqlOptions, SqlService,
};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Query};
use serde_json::Value;

pub use crate::apex::{PAGE_DEFAULT, PAGE_MAX};

/// `organization_id`, `created_at`, `updated_at`, followed by `fields`.
pub fn tenant_schema(fields: Vec<Field>) -> Schema {
    let mut all = vec![Field::new("organization_id", FieldType::Integer).query()];
    all.extend(fields);
    all.push(Field::new("created_at", FieldType::Timestamp).query());
    all.push(Field::new("updated_at", FieldType::Timestamp).query());
    Schema::new("id", all)
}

/// Options for a table owned by an organization.
pub fn tenant_options(table: &'static str, schema: Schema) -> SqlOptions {
    SqlOptions::new(table, schema)
        .tenant("organization_id")
        .timestamps("created_at", "updated_at")
        .paginate(PAGE_DEFAULT, Some(PAGE_MAX))
        .default_sort(vec![("id", Direction::Asc)])
}

/// 422 unless `id` names a row of `table` in the caller's organization (the same
/// answer for a missing row and another organization's).
pub async fn check_reference<C: ConnectionTrait>(
    conn: &C,
    params: &Params,
    field: &str,
    id: i64,
    table: &str,
) -> Result<()> {
    let org = params.principal()?.tenant_id;
    crate::feathers::sql::check_reference(conn, (table, "organization_id", org), field, id).await
}

/// The record id of a single-record call (its `single_record` hook has refused a
/// multi call before the service runs).
pub fn record_id(id: Option<&Id>) -> Result<i64> {
    parse_id(
        id.ok_or_else(|| FeathersError::general("a multi call reached a single-record method"))?,
    )
}

/// Applies `f` to each record of a find/get/patch/remove result (page, array or one).
pub fn records_mut(result: &mut Value) -> Vec<&mut Value> {
    if result.get("data").is_some_and(Value::is_array) && result.get("total").is_some() {
        return result["data"]
            .as_array_mut()
            .map(|a| a.iter_mut().collect())
            .unwrap_or_default();
    }
    match result {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(_) => vec![result],
        _ => Vec::new(),
    }
}

/// True when `$select` is absent or names `field` (for embedded, computed fields).
pub fn selected(params: &Params, field: &str) -> bool {
    match params.query.get("$select") {
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(field)),
        _ => true,
    }
}

/// 403 unless the caller is an admin or the user named by the record's `owner_field`
/// (404 first when the record is not the caller's organization's). Run in the write's
/// transaction: on PostgreSQL the row stays locked until it commits, so the check
/// holds for the write that follows.
async fn require_owner_or_admin<C: ConnectionTrait>(
    conn: &C,
    sql: &SqlService,
    id: &Id,
    params: &Params,
    owner_field: &str,
) -> Result<()> {
    let principal = params.principal()?;
    let mut q = Query::select();
    q.column(Alias::new(owner_field))
        .from(Alias::new(sql.options.table))
        .and_where(Expr::col(Alias::new("id")).eq(parse_id(id)?))
        .and_where(Expr::col(Alias::new("organization_id")).eq(principal.tenant_id));
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        q.lock(LockType::Update);
    }
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| FeathersError::no_record(id))?;
    let owner: Option<i64> = row.try_get("", owner_field)?;
    if principal.role != crate::auth::ADMIN && owner != Some(principal.user_id) {
        return Err(FeathersError::forbidden(
            "Only its owner or an admin may change this record",
        ));
    }
    Ok(())
}

/// Creates one record owned by the caller (`owner_field` set to the caller's user):
/// validated, inserted and read back in the call's unit of work.
pub async fn create_owned(
    sql: &SqlService,
    data: Value,
    params: &Params,
    owner_field: &'static str,
) -> Result<Value> {
    if data.is_array() {
        return Err(FeathersError::method_not_allowed(
            "Can not create multiple entries",
        ));
    }
    let txn = params.txn().await?;
    let fields = sql
        .validate_write(txn, &data, WriteMode::Create, params)
        .await?;
    let owner = [(owner_field, params.principal()?.user_id.into())];
    let id = sql.insert(txn, &fields, &owner, params).await?;
    sql._get(txn, &id.to_string(), params).await
}

/// Patches a record that only its owner or an admin may change: check and write in one transaction.
pub async fn patch_owned(
    sql: &SqlService,
    id: Option<&Id>,
    data: Value,
    params: &Params,
    owner_field: &str,
) -> Result<Value> {
    let key = record_id(id)?.to_string();
    let txn = params.txn().await?;
    require_owner_or_admin(txn, sql, &key, params, owner_field).await?;
    sql._patch(txn, id, data, params, WriteMode::Patch).await
}

/// Removes a record that only its owner or an admin may remove: check and delete in one transaction.
pub async fn remove_owned(
    sql: &SqlService,
    id: Option<&Id>,
    params: &Params,
    owner_field: &str,
) -> Result<Value> {
    let key = record_id(id)?.to_string();
    let txn = params.txn().await?;
    require_owner_or_admin(txn, sql, &key, params, owner_field).await?;
    sql._remove(txn, id, params).await
}
