//! Writes: a body validated against the schema (references included), insert,
//! update and remove, each answering the records as they are afterwards.

use super::filters::check_tenant_value;
use super::*;

impl SqlService {
    /// Validates a write body against the schema: known, writable, well-typed fields.
    /// The id is ignored (it comes from the URL); the tenant column must be the caller's.
    pub fn validate_data(
        &self,
        data: &Value,
        mode: WriteMode,
        params: &Params,
    ) -> Result<Vec<(&Field, Typed)>> {
        let Some(obj) = data.as_object() else {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        };
        let schema = &self.options.schema;
        let source = if params
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            Source::Query
        } else {
            Source::Body
        };
        let mut out = Vec::new();
        for (key, value) in obj {
            if key == schema.id && mode != WriteMode::Create {
                continue;
            }
            if Some(key.as_str()) == self.options.tenant_column {
                check_tenant_value(key, value, self.tenant_id(params)?)?;
                continue;
            }
            let field = schema
                .field(key)
                .filter(|f| {
                    if mode == WriteMode::Create {
                        f.create
                    } else {
                        f.patch
                    }
                })
                .ok_or_else(|| FeathersError::invalid(key, "is not a field that can be written"))?;
            let typed = coerce(key, field.ty, field.nullable, value, source)?;
            if let (Some(max), Typed::Json(json)) = (field.max_bytes, &typed) {
                crate::feathers::schema::check_json_size(key, json, max)?;
            }
            if let (Some(max), Typed::Str(s)) = (field.max_len, &typed)
                && s.chars().count() > max
            {
                return Err(FeathersError::invalid(
                    key,
                    format!("must be at most {max} characters"),
                ));
            }
            if let (true, Typed::Str(s)) = (field.non_blank, &typed)
                && s.trim().is_empty()
            {
                return Err(FeathersError::invalid(key, "must not be empty"));
            }
            if let (Some(min), Typed::Int(n)) = (field.min, &typed)
                && *n < min
            {
                return Err(FeathersError::invalid(
                    key,
                    format!("must be {min} or more"),
                ));
            }
            if let (Some(max), Typed::Json(Value::Array(items))) = (field.max_items, &typed)
                && items.len() > max
            {
                return Err(FeathersError::invalid(
                    key,
                    format!("has {} items; at most {max} are allowed", items.len()),
                ));
            }
            out.push((field, typed));
        }
        if mode != WriteMode::Patch {
            for f in schema.fields.iter().filter(|f| f.required) {
                if !obj.contains_key(f.name) {
                    return Err(FeathersError::invalid(f.name, "is required"));
                }
            }
        }
        if mode == WriteMode::Update {
            // A replace sets every writable field the body leaves out to null.
            let missing: Vec<&Field> = schema
                .fields
                .iter()
                .filter(|f| f.patch && f.column && f.nullable && !obj.contains_key(f.name))
                .collect();
            out.extend(missing.into_iter().map(|f| (f, Typed::Null)));
        }
        Ok(out)
    }

    /// [`Self::validate_data`], then every reference field checked on its typed value:
    /// it must name a row of its table in the caller's tenant. The one gate every
    /// write passes, so a float, a form string or a foreign id cannot slip by; a
    /// foreign id and a missing one get the same 422.
    pub async fn validate_write<C: ConnectionTrait>(
        &self,
        conn: &C,
        data: &Value,
        mode: WriteMode,
        params: &Params,
    ) -> Result<Vec<(&Field, Typed)>> {
        let fields = self.validate_data(data, mode, params)?;
        self.check_references(conn, &fields, params).await?;
        Ok(fields)
    }

    /// 422 unless each reference in `fields` names a row of the caller's tenant.
    pub async fn check_references<C: ConnectionTrait>(
        &self,
        conn: &C,
        fields: &[(&Field, Typed)],
        params: &Params,
    ) -> Result<()> {
        let (Some(tenant_column), Some(tenant)) =
            (self.options.tenant_column, self.tenant_id(params)?)
        else {
            return Ok(());
        };
        for (field, value) in fields {
            if let (Some(table), Typed::Int(id)) = (field.references, value) {
                check_reference(conn, (table, tenant_column, tenant), field.name, *id).await?;
            }
        }
        Ok(())
    }

    /// The timestamp columns of a write, stamped by the database inside the statement
    /// (F9): a patch waiting for a row lock takes its time once it has the lock, so the
    /// write that commits last carries the latest `updated_at`. PostgreSQL: the clock
    /// when the row is written (`clock_timestamp()`; a create's two columns share the
    /// statement's time); SQLite: the time as the driver writes it
    /// (`2026-12-01T10:00:00.123+00:00`, milliseconds), so text order stays time order.
    pub(super) fn stamps(
        &self,
        mode: WriteMode,
        backend: sea_orm::DatabaseBackend,
    ) -> Vec<(&'static str, SimpleExpr)> {
        let now = match (backend, mode) {
            (sea_orm::DatabaseBackend::Postgres, WriteMode::Create) => "statement_timestamp()",
            _ => now_sql(backend),
        };
        let mut out = Vec::new();
        if let (WriteMode::Create, Some(c)) = (mode, self.options.created_at) {
            out.push((c, Expr::cust(now)));
        }
        if let Some(u) = self.options.updated_at {
            out.push((u, Expr::cust(now)));
        }
        out
    }

    /// Inserts one validated record plus `extra` columns the service sets itself; answers its id.
    pub async fn insert<C: ConnectionTrait>(
        &self,
        conn: &C,
        fields: &[(&Field, Typed)],
        extra: &[(&str, sea_orm::sea_query::Value)],
        params: &Params,
    ) -> Result<i64> {
        let mut columns: Vec<Alias> = Vec::new();
        let mut values: Vec<SimpleExpr> = Vec::new();
        for (f, v) in fields.iter().filter(|(f, _)| f.column) {
            columns.push(Alias::new(f.name));
            values.push(Expr::val(sql_value(f.ty, v)));
        }
        if let (Some(column), Some(tenant)) = (self.options.tenant_column, self.tenant_id(params)?)
        {
            columns.push(Alias::new(column));
            values.push(Expr::val(tenant));
        }
        let fixed = self.options.fixed.iter().map(|(c, v)| (*c, v.clone()));
        let stamps = self.stamps(WriteMode::Create, conn.get_database_backend());
        for (name, v) in stamps.into_iter().chain(
            fixed
                .chain(extra.iter().cloned())
                .map(|(c, v)| (c, Expr::val(v))),
        ) {
            columns.push(Alias::new(name));
            values.push(v);
        }
        let mut stmt = SqlQuery::insert();
        stmt.into_table(Alias::new(self.options.table))
            .columns(columns)
            .values(values)
            .map_err(|e| FeathersError::general(e))?
            .returning_col(Alias::new(self.options.schema.id));
        let row = conn
            .query_one(&stmt)
            .await?
            .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
        Ok(row.try_get::<i64>("", self.options.schema.id)?)
    }

    /// Feathers `_create`: one record, or several when multi create is allowed.
    pub async fn _create<C: ConnectionTrait>(
        &self,
        conn: &C,
        data: Value,
        params: &Params,
    ) -> Result<Value> {
        let query = self.parse_query(params)?;
        let select = query.select.as_deref();
        let items = match data {
            Value::Array(items) => {
                if !self.options.multi.create {
                    return Err(FeathersError::method_not_allowed(
                        "Can not create multiple entries",
                    ));
                }
                items
            }
            single => {
                let fields = self
                    .validate_write(conn, &single, WriteMode::Create, params)
                    .await?;
                let id = self.insert(conn, &fields, &[], params).await?;
                return self
                    .read_by_ids(conn, &[id], select)
                    .await?
                    .pop()
                    .ok_or_else(|| FeathersError::no_record(id));
            }
        };
        let mut ids = Vec::with_capacity(items.len());
        for item in &items {
            let fields = self
                .validate_write(conn, item, WriteMode::Create, params)
                .await?;
            ids.push(self.insert(conn, &fields, &[], params).await?);
        }
        Ok(Value::Array(self.read_by_ids(conn, &ids, select).await?))
    }

    /// Runs `UPDATE ... SET fields WHERE cond` and answers the updated rows re-read, by id.
    pub async fn update_where<C: ConnectionTrait>(
        &self,
        conn: &C,
        cond: Condition,
        fields: &[(&Field, Typed)],
        extra: &[(&str, sea_orm::sea_query::Value)],
        select: Option<&[String]>,
    ) -> Result<Vec<Value>> {
        let mut values: Vec<(&str, sea_orm::sea_query::Value)> = fields
            .iter()
            .filter(|(f, _)| f.column)
            .map(|(f, v)| (f.name, sql_value(f.ty, v)))
            .collect();
        values.extend(extra.iter().cloned());
        let stamps = self.stamps(WriteMode::Patch, conn.get_database_backend());
        let id = Alias::new(self.options.schema.id);
        let rows = if values.is_empty() && stamps.is_empty() {
            // Nothing to change (an empty patch on a table without timestamps): the matches as they are.
            let mut stmt = SqlQuery::select();
            stmt.column(id)
                .from(Alias::new(self.options.table))
                .cond_where(cond);
            conn.query_all(&stmt).await?
        } else {
            let mut stmt = SqlQuery::update();
            stmt.table(Alias::new(self.options.table)).cond_where(cond);
            for (name, v) in values {
                stmt.value(Alias::new(name), v);
            }
            for (name, v) in stamps {
                stmt.value(Alias::new(name), v);
            }
            stmt.returning_col(id);
            conn.query_all(&stmt).await?
        };
        let mut ids = self.returned_ids(rows)?;
        ids.sort_unstable();
        self.read_by_ids(conn, &ids, select).await
    }

    pub(super) fn returned_ids(&self, rows: Vec<QueryResult>) -> Result<Vec<i64>> {
        Ok(rows
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0))
            .collect::<Result<Vec<_>, _>>()?)
    }

    pub(super) fn id_condition(
        &self,
        id: Option<&Id>,
        query: &Query,
        params: &Params,
    ) -> Result<Condition> {
        let cond = self.condition(query, params)?;
        Ok(match id {
            Some(id) => cond.add(self.col(self.options.schema.id).eq(parse_id(id)?)),
            None => cond,
        })
    }

    pub(super) fn check_multi(&self, id: Option<&Id>, allowed: bool, method: &str) -> Result<()> {
        if id.is_none() && !allowed {
            return Err(FeathersError::method_not_allowed(format!(
                "Can not {method} multiple entries"
            )));
        }
        Ok(())
    }

    /// Feathers `_patch` (and `_update` with [`WriteMode::Update`]).
    pub async fn _patch<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Option<&Id>,
        data: Value,
        params: &Params,
        mode: WriteMode,
    ) -> Result<Value> {
        self.check_multi(id, self.options.multi.patch, "patch")?;
        let fields = self.validate_write(conn, &data, mode, params).await?;
        self.patch_fields(conn, id, &fields, params).await
    }

    /// Writes already validated `fields` to the record `id` (or every match of the query).
    pub async fn patch_fields<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Option<&Id>,
        fields: &[(&Field, Typed)],
        params: &Params,
    ) -> Result<Value> {
        let query = self.parse_query(params)?;
        let cond = self.id_condition(id, &query, params)?;
        let rows = self
            .update_where(conn, cond, fields, &[], query.select.as_deref())
            .await?;
        single_or_many(id, rows)
    }

    /// Feathers `_remove`: deletes (or soft-deletes) and answers the removed records.
    pub async fn _remove<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Option<&Id>,
        params: &Params,
    ) -> Result<Value> {
        self.check_multi(id, self.options.multi.remove, "remove")?;
        let query = self.parse_query(params)?;
        let cond = self.id_condition(id, &query, params)?;
        let select = query.select.as_deref();
        // Read what is about to go (shaped as asked, as it was), then remove exactly what
        // matched: a soft delete only sets its column, so the answer is the record as it was.
        let by_id = [(self.options.schema.id.to_string(), Direction::Asc)];
        let rows = self
            .select_rows(conn, cond.clone(), &by_id, None, 0, select)
            .await?;
        let returning = Alias::new(self.options.schema.id);
        let removed = match self.options.soft_delete_column {
            Some(column) => {
                let mut stmt = SqlQuery::update();
                stmt.table(Alias::new(self.options.table))
                    .value(Alias::new(column), Utc::now())
                    .cond_where(cond)
                    .returning_col(returning);
                conn.query_all(&stmt).await?
            }
            None => {
                let mut stmt = SqlQuery::delete();
                stmt.from_table(Alias::new(self.options.table))
                    .cond_where(cond)
                    .returning_col(returning);
                conn.query_all(&stmt).await?
            }
        };
        let removed: std::collections::HashSet<i64> =
            self.returned_ids(removed)?.into_iter().collect();
        let id_field = self.options.schema.id;
        let rows = rows
            .into_iter()
            .filter(|r| r[id_field].as_i64().is_some_and(|i| removed.contains(&i)))
            .collect();
        single_or_many(id, rows)
    }
}

/// The time an UPDATE stamps, as SQL (see [`SqlService::stamps`]).
pub fn now_sql(backend: sea_orm::DatabaseBackend) -> &'static str {
    match backend {
        sea_orm::DatabaseBackend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
        _ => "clock_timestamp()",
    }
}

/// 422 unless `id` names a row of `table` whose `tenant_column` is `tenant`: the one
/// reference check, for schema fields and for services' own references alike.
pub async fn check_reference<C: ConnectionTrait>(
    conn: &C,
    (table, tenant_column, tenant): (&str, &str, i64),
    field: &str,
    id: i64,
) -> Result<()> {
    let mut q = SqlQuery::select();
    q.expr(Expr::val(1))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new(tenant_column)).eq(tenant));
    match conn.query_one(&q).await? {
        Some(_) => Ok(()),
        None => Err(missing_reference(field, id)),
    }
}

/// The answer to a reference that is not a row of the caller's tenant: the same
/// whether the row is missing or another tenant's, so it tells nothing about others.
pub fn missing_reference(field: &str, id: i64) -> FeathersError {
    FeathersError::unprocessable(format!("{field} {id} does not exist in this organization"))
        .with_data(json!({ "rule": "reference_in_organization", "field": field, "value": id }))
}
