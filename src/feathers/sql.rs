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
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, TransactionTrait,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// Page sizes: `default` when no `$limit` is given, `$limit` clamped to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Paginate {
    pub default: u64,
    pub max: Option<u64>,
}

/// Which methods may act on several records at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Multi {
    pub create: bool,
    pub patch: bool,
    pub remove: bool,
}

impl Multi {
    pub const ALL: Multi = Multi {
        create: true,
        patch: true,
        remove: true,
    };
}

/// Turns a service's virtual query keys into SQL conditions.
pub trait VirtualFilters: Send + Sync {
    fn condition(
        &self,
        name: &str,
        value: &Typed,
        principal: Option<&Principal>,
    ) -> Result<Condition>;

    /// Whether the filter reads only the row's own columns (no other table, no
    /// clock), so that it changes only when the row does (see [`Anchors`]).
    fn row_local(&self, _name: &str) -> bool {
        false
    }
}

/// Answers `total` without counting rows, when the filters allow it.
pub trait TotalCounter: Send + Sync {
    /// A query whose one row and column is the exact total, when maintained counts
    /// answer these filters; else `None` and the adapter counts with `COUNT(*)`.
    fn total_query(&self, tenant_id: Option<i64>, filters: &[Filter]) -> Option<SelectStatement>;
}

/// How one table is served.
#[derive(Clone)]
pub struct SqlOptions {
    pub table: &'static str,
    pub schema: Arc<Schema>,
    /// `None`: find answers a plain array.
    pub paginate: Option<Paginate>,
    pub multi: Multi,
    /// Column holding the tenant id; every query and write is scoped to the caller's.
    pub tenant_column: Option<&'static str>,
    /// Column set by remove instead of deleting; rows with it set are invisible.
    pub soft_delete_column: Option<&'static str>,
    /// Columns the adapter stamps on create / on every write.
    pub created_at: Option<&'static str>,
    pub updated_at: Option<&'static str>,
    /// Sort used when the query has no `$sort`; the id is always the last key.
    pub default_sort: Vec<(&'static str, Direction)>,
    pub virtuals: Option<Arc<dyn VirtualFilters>>,
    pub counter: Option<Arc<dyn TotalCounter>>,
    /// Deep pages start from remembered anchors (needs a tenant and a versions table).
    pub anchors: Option<Arc<Anchors>>,
    /// Records embedded through a many-to-one key, from copies on the row.
    pub embeds: Vec<Embed>,
    /// Columns this service is bound to: every query matches them, every insert sets them
    /// (one table served by several paths, e.g. one per channel).
    pub fixed: Vec<(&'static str, sea_orm::sea_query::Value)>,
}

impl SqlOptions {
    /// A table with an id, no tenant, no pagination and no multi.
    pub fn new(table: &'static str, schema: Schema) -> Self {
        Self {
            table,
            schema: Arc::new(schema),
            paginate: None,
            multi: Multi::default(),
            tenant_column: None,
            soft_delete_column: None,
            created_at: None,
            updated_at: None,
            default_sort: Vec::new(),
            virtuals: None,
            counter: None,
            anchors: None,
            fixed: Vec::new(),
            embeds: Vec::new(),
        }
    }
    pub fn paginate(mut self, default: u64, max: Option<u64>) -> Self {
        self.paginate = Some(Paginate { default, max });
        self
    }
    pub fn multi(mut self, multi: Multi) -> Self {
        self.multi = multi;
        self
    }
    pub fn tenant(mut self, column: &'static str) -> Self {
        self.tenant_column = Some(column);
        if self.schema.field(column).is_none() {
            // A query may name the tenant column (only the caller's own value passes,
            // see `parse_query`), so it must parse even when the schema does not show it.
            Arc::make_mut(&mut self.schema)
                .fields
                .push(Field::new(column, FieldType::Integer).filter().hidden());
        }
        self
    }
    pub fn soft_delete(mut self, column: &'static str) -> Self {
        self.soft_delete_column = Some(column);
        self
    }
    pub fn timestamps(mut self, created_at: &'static str, updated_at: &'static str) -> Self {
        self.created_at = Some(created_at);
        self.updated_at = Some(updated_at);
        self
    }
    pub fn default_sort(mut self, sort: Vec<(&'static str, Direction)>) -> Self {
        self.default_sort = sort;
        self
    }
    pub fn virtuals(mut self, v: Arc<dyn VirtualFilters>) -> Self {
        self.virtuals = Some(v);
        self
    }
    pub fn fixed(
        mut self,
        column: &'static str,
        value: impl Into<sea_orm::sea_query::Value>,
    ) -> Self {
        self.fixed.push((column, value.into()));
        self
    }
    pub fn embed(mut self, embed: Embed) -> Self {
        self.embeds.push(embed);
        self
    }
    pub fn counter(mut self, c: Arc<dyn TotalCounter>) -> Self {
        self.counter = Some(c);
        self
    }
    /// Deep pages from anchors, validated by the per-tenant change counts the database
    /// keeps in `versions_table` (see [`Anchors`]).
    pub fn anchored(mut self, versions_table: &'static str) -> Self {
        self.anchors = Some(Arc::new(Anchors::new(versions_table)));
        self
    }
}

/// What a write is for: which fields are writable and which are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Update,
    Patch,
}

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

    fn col(&self, name: &str) -> Expr {
        col(self.options.table, name)
    }

    fn tenant_id(&self, params: &Params) -> Result<Option<i64>> {
        match self.options.tenant_column {
            Some(_) => Ok(Some(params.principal()?.tenant_id)),
            None => Ok(None),
        }
    }

    /// Parses `params.query` against the schema. A condition on the tenant column
    /// must name the caller's tenant (403 otherwise) and is then redundant.
    pub fn parse_query(&self, params: &Params) -> Result<Query> {
        let source = if params.provider.is_some() {
            Source::Query
        } else {
            Source::Body
        };
        let raw = if Value::is_null(&params.query) {
            &json!({})
        } else {
            &params.query
        };
        let query = Query::parse(raw, &self.options.schema, source)?;
        if let (Some(column), Some(tenant)) = (self.options.tenant_column, self.tenant_id(params)?)
        {
            check_tenant_filters(&query.filters, column, tenant)?;
        }
        Ok(query)
    }

    /// Tenant and soft-delete scope: the condition every statement starts from.
    pub fn scope(&self, params: &Params) -> Result<Condition> {
        let mut cond = Condition::all();
        if let (Some(column), Some(tenant)) = (self.options.tenant_column, self.tenant_id(params)?)
        {
            cond = cond.add(self.col(column).eq(tenant));
        }
        if let Some(column) = self.options.soft_delete_column {
            cond = cond.add(self.col(column).is_null());
        }
        for (column, value) in &self.options.fixed {
            cond = cond.add(self.col(column).eq(value.clone()));
        }
        Ok(cond)
    }

    /// Scope AND every filter of the query.
    pub fn condition(&self, query: &Query, params: &Params) -> Result<Condition> {
        let mut cond = self.scope(params)?;
        for filter in &query.filters {
            cond = cond.add(self.filter_condition(filter, params)?);
        }
        Ok(cond)
    }

    fn filter_condition(&self, filter: &Filter, params: &Params) -> Result<Condition> {
        Ok(match filter {
            Filter::And(parts) => parts.iter().try_fold(Condition::all(), |c, f| {
                Ok::<_, FeathersError>(c.add(self.filter_condition(f, params)?))
            })?,
            Filter::Or(parts) => parts.iter().try_fold(Condition::any(), |c, f| {
                Ok::<_, FeathersError>(c.add(self.filter_condition(f, params)?))
            })?,
            Filter::Cmp { field, op, values } => {
                Condition::all().add(self.comparison(field, *op, values))
            }
            Filter::Virtual { name, value } => match &self.options.virtuals {
                Some(v) => v.condition(name, value, params.principal.as_ref())?,
                None => {
                    return Err(FeathersError::invalid(
                        name,
                        "is not a field that can be queried",
                    ));
                }
            },
        })
    }

    fn field_type(&self, name: &str) -> (FieldType, bool) {
        match self.options.schema.field(name) {
            Some(f) => (f.ty, f.nullable),
            None => (FieldType::Integer, false), // the id
        }
    }

    fn comparison(&self, field: &str, op: Op, values: &[Typed]) -> SimpleExpr {
        let (ty, nullable) = self.field_type(field);
        comparison(self.col(field), ty, nullable, op, values)
    }

    /// What a result shows: the id, the visible fields and the embeds, narrowed by `$select`.
    fn shape(&self, select: Option<&[String]>) -> RowShape<'_> {
        let shown = |name: &str| select.is_none_or(|s| s.iter().any(|n| n == name));
        RowShape {
            id: self.options.schema.id,
            fields: (self.options.schema.columns())
                .filter(|f| !f.hidden && shown(f.name))
                .collect(),
            embeds: self
                .options
                .embeds
                .iter()
                .filter(|e| shown(e.field))
                .collect(),
        }
    }

    /// Selects the id, `fields` and the embedded columns, in that order (rows are read by index).
    fn select_columns(&self, stmt: &mut SelectStatement, shape: &RowShape) {
        let table = self.options.table;
        stmt.column((Alias::new(table), Alias::new(self.options.schema.id)));
        for f in &shape.fields {
            stmt.column((Alias::new(table), Alias::new(f.name)));
        }
        for e in &shape.embeds {
            for (column, _) in e.columns {
                let own = match *column {
                    "id" => Alias::new(e.key),
                    column => Alias::new(format!("{}{column}", e.prefix)),
                };
                stmt.column((Alias::new(table), own));
            }
        }
    }

    /// The sort a find uses: its `$sort` (or the default), then the id, which breaks
    /// ties in the direction of the last key so that `$skip` pages are stable. Each
    /// key with whether its column is nullable.
    fn sort_keys<'a>(&'a self, sort: &'a [(String, Direction)]) -> Vec<(&'a str, Direction, bool)> {
        let id = self.options.schema.id;
        let given: Vec<(&str, Direction)> = if sort.is_empty() {
            (self.options.default_sort.iter())
                .map(|(f, d)| (*f, *d))
                .collect()
        } else {
            sort.iter().map(|(f, d)| (f.as_str(), *d)).collect()
        };
        // The id is unique: keys after it order nothing. Without it, it breaks ties in
        // the last key's direction.
        let id_at = given.iter().position(|(f, _)| *f == id);
        let id_dir = match id_at {
            Some(i) => given[i].1,
            None => given.last().map_or(Direction::Asc, |(_, d)| *d),
        };
        let mut keys: Vec<(&str, Direction, bool)> = given[..id_at.unwrap_or(given.len())]
            .iter()
            .map(|&(f, d)| {
                let nullable = self.options.schema.field(f).is_some_and(|f| f.nullable);
                (f, d, nullable)
            })
            .collect();
        keys.push((id, id_dir, false));
        keys
    }

    fn apply_sort(&self, stmt: &mut SelectStatement, sort: &[(String, Direction)]) {
        for (field, dir, nullable) in self.sort_keys(sort) {
            let order = if dir == Direction::Asc {
                Order::Asc
            } else {
                Order::Desc
            };
            if nullable {
                // PostgreSQL's default everywhere: nulls are larger than any value.
                let nulls = if dir == Direction::Asc {
                    NullOrdering::Last
                } else {
                    NullOrdering::First
                };
                stmt.order_by_with_nulls(self.col_ref(field), order, nulls);
            } else {
                stmt.order_by(self.col_ref(field), order);
            }
        }
    }

    fn col_ref(&self, name: &str) -> (Alias, Alias) {
        (Alias::new(self.options.table), Alias::new(name))
    }

    /// Rows matching `cond`, sorted and paged, shaped by `select`. A page past the first
    /// starts from an anchor where the service has them (see [`Anchors`]); otherwise
    /// it finds its ids first (an index-only scan can skip rows without reading them),
    /// then reads just those rows.
    ///
    /// `total`, a one-value query, is selected as the last column of every row (before
    /// an anchored page's version), so a page and its total take one round trip.
    async fn query_rows<C: ConnectionTrait>(
        &self,
        conn: &C,
        cond: Condition,
        paging: Paging<'_>,
        shape: &RowShape<'_>,
        total: Option<SelectStatement>,
    ) -> Result<Vec<QueryResult>> {
        let Paging {
            sort,
            limit,
            skip,
            anchor_tenant,
            request,
        } = paging;
        let table = Alias::new(self.options.table);
        let mut stmt = SqlQuery::select();
        stmt.from(table.clone());
        self.select_columns(&mut stmt, shape);
        let version_at = shape.width() + usize::from(total.is_some());
        if let Some(total) = total {
            stmt.expr(Expr::SubQuery(None, Box::new(total.into())));
        }
        self.apply_sort(&mut stmt, sort);
        let backend = conn.get_database_backend();
        let anchored = match anchor_tenant {
            Some(tenant) if skip > 0 => self.anchored_page(backend, &cond, sort, skip, tenant),
            _ => None,
        };
        let statement = if let Some(page) = &anchored {
            stmt.expr(page.version_column.clone())
                .cond_where(cond)
                .and_where(page.condition.clone());
            paged(backend.build(&stmt), limit, 0)
        } else if skip > 0 {
            let mut ids = SqlQuery::select();
            ids.column((table.clone(), Alias::new(self.options.schema.id)))
                .from(table)
                .cond_where(cond);
            self.apply_sort(&mut ids, sort);
            let ids = paged(backend.build(&ids), limit, skip);
            stmt.and_where(self.col(self.options.schema.id).binary(
                BinOper::In,
                Expr::cust_with_values(
                    format!("({})", ids.sql),
                    ids.values.map(|v| v.0).unwrap_or_default(),
                ),
            ));
            backend.build(&stmt)
        } else {
            stmt.cond_where(cond);
            paged(backend.build(&stmt), limit, 0)
        };
        let kept = (anchored.as_ref())
            .and_then(|page| Some((page.anchored_at?, request?, statement.clone())));
        let rows = conn.query_all_raw(statement).await?;
        if let (Some(page), Some(anchors), Some(first)) =
            (anchored, &self.options.anchors, rows.first())
        {
            let id = first.try_get_by_index::<i64>(0)?;
            let version = first.try_get_by_index::<i64>(version_at)?;
            match kept {
                // Built from an anchor that is still current: worth keeping as it is.
                Some((seen, request, statement)) if seen == version => {
                    anchors.keep_statement(request.to_owned(), statement, version)
                }
                _ => anchors.remember(page, id, version),
            }
        }
        Ok(rows)
    }

    /// A deep page's start as an anchor, when the service keeps versions and the sort
    /// allows it: keys in one direction, none nullable (see [`Anchors`]).
    fn anchored_page(
        &self,
        backend: DbBackend,
        cond: &Condition,
        sort: &[(String, Direction)],
        skip: u64,
        tenant: i64,
    ) -> Option<AnchoredPage> {
        let anchors = self.options.anchors.as_ref()?;
        let tenant_column = self.options.tenant_column?;
        let keys = self.sort_keys(sort);
        let direction = keys.first()?.1;
        if keys
            .iter()
            .any(|(_, d, nullable)| *d != direction || *nullable)
        {
            return None;
        }
        let mut keyed = SqlQuery::select();
        for (field, _, _) in &keys {
            keyed.column(self.col_ref(field));
        }
        keyed
            .from(Alias::new(self.options.table))
            .cond_where(cond.clone());
        let mut sorted = keyed.clone();
        self.apply_sort(&mut sorted, sort);
        let versions = anchors.versions_table;
        let mut version = SqlQuery::select();
        version
            .expr(Expr::cust(format!(
                r#"CAST(COALESCE(SUM("{versions}"."v"), 0) AS BIGINT)"#
            )))
            .from(Alias::new(versions))
            .and_where(col(versions, tenant_column).eq(tenant));
        let query = AnchorQuery {
            at_skip: paged(backend.build(&sorted), Some(1), skip),
            keyed,
            id: self.col(self.options.schema.id),
            keys: keys.iter().map(|(field, _, _)| self.col(field)).collect(),
            ascending: direction == Direction::Asc,
            version,
        };
        Some(anchors.page(backend, query))
    }

    /// The tenant whose versions vouch for this find's anchors, when it may use them:
    /// the service keeps versions and every filter reads only the row's own columns.
    fn anchor_tenant(&self, query: &Query, params: &Params) -> Result<Option<i64>> {
        if self.options.anchors.is_none() || !query.filters.iter().all(|f| self.row_local(f)) {
            return Ok(None);
        }
        self.tenant_id(params)
    }

    fn row_local(&self, filter: &Filter) -> bool {
        match filter {
            Filter::And(parts) | Filter::Or(parts) => parts.iter().all(|f| self.row_local(f)),
            Filter::Cmp { .. } => true,
            Filter::Virtual { name, .. } => {
                (self.options.virtuals.as_ref()).is_some_and(|v| v.row_local(name))
            }
        }
    }

    /// [`Self::query_rows`] as records.
    pub async fn select_rows<C: ConnectionTrait>(
        &self,
        conn: &C,
        cond: Condition,
        sort: &[(String, Direction)],
        limit: Option<u64>,
        skip: u64,
        select: Option<&[String]>,
    ) -> Result<Vec<Value>> {
        let shape = self.shape(select);
        let rows = self
            .query_rows(
                conn,
                cond,
                Paging {
                    sort,
                    limit,
                    skip,
                    anchor_tenant: None,
                    request: None,
                },
                &shape,
                None,
            )
            .await?;
        rows.iter().map(|row| row_value(&shape, row)).collect()
    }

    /// The rows of the statement kept for `request` (see [`Anchors::statement`]), when
    /// there is one and the page is not past the end.
    async fn kept_page<C: ConnectionTrait>(
        &self,
        conn: &C,
        request: Option<&str>,
        shape: &RowShape<'_>,
    ) -> Result<Option<Vec<QueryResult>>> {
        let (Some(request), Some(anchors)) = (request, &self.options.anchors) else {
            return Ok(None);
        };
        let Some((statement, seen)) = anchors.statement(request) else {
            return Ok(None);
        };
        let rows = conn.query_all_raw(statement).await?;
        // Each row carries the total, then the version the page was read at. Rows read
        // at another version are exact too (the skipping branch ran), but the anchor is
        // out of date: the next request builds the page anew and refreshes it.
        let Some(first) = rows.first() else {
            anchors.forget_statement(request);
            return Ok(None); // past the end: the total is asked for alone
        };
        if first.try_get_by_index::<i64>(shape.width() + 1)? != seen {
            anchors.forget_statement(request);
        }
        Ok(Some(rows))
    }

    /// A query for the exact number of rows matching the find: the counter's when it
    /// answers these filters, else `COUNT(*)`.
    fn total_query(
        &self,
        cond: &Condition,
        query: &Query,
        params: &Params,
    ) -> Result<SelectStatement> {
        let tenant = self.tenant_id(params)?;
        if let Some(counted) = (self.options.counter.as_ref())
            .and_then(|counter| counter.total_query(tenant, &query.filters))
        {
            return Ok(counted);
        }
        let mut stmt = SqlQuery::select();
        stmt.expr(Expr::cust("COUNT(*)"))
            .from(Alias::new(self.options.table))
            .cond_where(cond.clone());
        Ok(stmt)
    }

    /// Runs a find: the total (when paginated) and the page's rows.
    async fn found<C: ConnectionTrait>(&self, conn: &C, params: &Params) -> Result<Found> {
        let query = self.parse_query(params)?;
        let shape = self.shape(query.select.as_deref());
        let anchor_tenant = self.anchor_tenant(&query, params)?;
        let Some(paginate) = self.options.paginate else {
            let cond = self.condition(&query, params)?;
            let paging = Paging {
                sort: &query.sort,
                limit: query.limit,
                skip: query.skip,
                anchor_tenant,
                request: None,
            };
            let rows = self.query_rows(conn, cond, paging, &shape, None).await?;
            return Ok(Found {
                page: None,
                select: query.select,
                rows,
            });
        };
        let limit = match query.limit {
            Some(l) => paginate.max.map_or(l, |max| Ord::min(l, max)),
            None => paginate.default,
        };
        // A deep page asked again is served by the statement built for it last time.
        // (None past `MAX_KEY_BYTES` of key material: such a request keeps nothing.)
        let request = (anchor_tenant.is_some() && query.skip > 0 && limit > 0)
            .then(|| {
                anchors::bounded_key(format_args!(
                    "{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{}\u{0}{limit}",
                    params.principal, query.filters, query.sort, query.select, query.skip
                ))
            })
            .flatten();
        if let Some(rows) = self.kept_page(conn, request.as_deref(), &shape).await? {
            let total = rows[0].try_get_by_index::<Option<i64>>(shape.width())?;
            return Ok(Found {
                page: Some((total.unwrap_or(0), limit, query.skip)),
                select: query.select,
                rows,
            });
        }
        let cond = self.condition(&query, params)?;
        if let (Some(max), true) = (params.max_answer_bytes, limit > 0) {
            self.check_page_bytes(conn, &cond, &query, limit, &shape, max)
                .await?;
        }
        let total_query = self.total_query(&cond, &query, params)?;
        let rows = if limit > 0 {
            let paging = Paging {
                sort: &query.sort,
                limit: Some(limit),
                skip: query.skip,
                anchor_tenant,
                request: request.as_deref(),
            };
            let total = Some(total_query.clone());
            self.query_rows(conn, cond, paging, &shape, total).await?
        } else {
            Vec::new()
        };
        // Every row carries the total last; an empty page asks for it alone.
        let total = match rows.first() {
            Some(row) => row.try_get_by_index::<Option<i64>>(shape.width())?,
            None => conn
                .query_one(&total_query)
                .await?
                .map(|row| row.try_get_by_index::<Option<i64>>(0))
                .transpose()?
                .flatten(),
        };
        let page = Some((total.unwrap_or(0), limit, query.skip));
        Ok(Found {
            page,
            select: query.select,
            rows,
        })
    }

    /// [`answer_too_large`](super::rows::answer_too_large) before reading the page, when
    /// its fields with a [`Field::max_bytes`] already hold more than `max` bytes: such
    /// fields may hold records stored before their limit (up to the body limit each),
    /// which would otherwise be read whole into memory before the answer is refused.
    /// Costs one more statement, for services with such fields only.
    async fn check_page_bytes<C: ConnectionTrait>(
        &self,
        conn: &C,
        cond: &Condition,
        query: &Query,
        limit: u64,
        shape: &RowShape<'_>,
        max: usize,
    ) -> Result<()> {
        let backend = conn.get_database_backend();
        let table = self.options.table;
        let sizes: Vec<String> = (shape.fields.iter())
            .filter(|f| f.max_bytes.is_some())
            .map(|f| match backend {
                DbBackend::Postgres => {
                    format!(r#"COALESCE(octet_length("{table}"."{}"::text), 0)"#, f.name)
                }
                _ => format!(
                    r#"COALESCE(length(CAST("{table}"."{}" AS BLOB)), 0)"#,
                    f.name
                ),
            })
            .collect();
        if sizes.is_empty() {
            return Ok(());
        }
        let mut stmt = SqlQuery::select();
        stmt.expr_as(Expr::cust(sizes.join(" + ")), Alias::new("bytes"))
            .from(Alias::new(table))
            .cond_where(cond.clone());
        self.apply_sort(&mut stmt, &query.sort);
        let page = paged(backend.build(&stmt), Some(limit), query.skip);
        let sum = Statement {
            sql: format!(
                "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM ({}) AS page_bytes",
                page.sql
            ),
            ..page
        };
        let bytes = match conn.query_one_raw(sum).await? {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        };
        if bytes > max as i64 {
            return Err(super::rows::answer_too_large(max));
        }
        Ok(())
    }

    /// Feathers `_find`: a page when paginated, else an array.
    pub async fn _find<C: ConnectionTrait>(&self, conn: &C, params: &Params) -> Result<Value> {
        let found = self.found(conn, params).await?;
        let shape = self.shape(found.select.as_deref());
        let mut left = params.max_answer_bytes;
        let data = (found.rows.iter())
            .map(|row| {
                let record = row_value(&shape, row)?;
                // Stop before building more than the REST answer may hold.
                if let Some(left) = &mut left {
                    let max = params.max_answer_bytes.unwrap_or_default();
                    *left = (left.checked_sub(super::schema::json_size(&record)))
                        .ok_or_else(|| super::rows::answer_too_large(max))?;
                }
                Ok(record)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(match found.page {
            Some((total, limit, skip)) => {
                json!({"total": total, "limit": limit, "skip": skip, "data": data})
            }
            None => Value::Array(data),
        })
    }

    /// [`Self::_find`] written straight to JSON text, the fast path for REST.
    pub async fn _find_raw<C: ConnectionTrait>(
        &self,
        conn: &C,
        params: &Params,
    ) -> Result<JsonText> {
        let found = self.found(conn, params).await?;
        let shape = self.shape(found.select.as_deref());
        let writer = RowWriter::new(&shape);
        let max = params.max_answer_bytes.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        match found.page {
            Some(page) => write_page(&mut out, page, &writer, &found.rows, max)?,
            None => writer.write_rows(&mut out, &found.rows, max)?,
        }
        Ok(JsonText(out))
    }

    /// Feathers `_get`: the record with this id that also matches the query, else 404.
    pub async fn _get<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &Id,
        params: &Params,
    ) -> Result<Value> {
        let query = self.parse_query(params)?;
        let key = parse_id(id)?;
        let cond = self
            .condition(&query, params)?
            .add(self.col(self.options.schema.id).eq(key));
        let rows = self
            .select_rows(conn, cond, &[], Some(1), 0, query.select.as_deref())
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| FeathersError::no_record(id))
    }

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
                super::schema::check_json_size(key, json, max)?;
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
            let (Some(table), Typed::Int(id)) = (field.references, value) else {
                continue;
            };
            let mut q = SqlQuery::select();
            q.expr(Expr::val(1))
                .from(Alias::new(table))
                .and_where(Expr::col(Alias::new("id")).eq(*id))
                .and_where(Expr::col(Alias::new(tenant_column)).eq(tenant));
            if conn.query_one(&q).await?.is_none() {
                return Err(missing_reference(field.name, *id));
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
    fn stamps(
        &self,
        mode: WriteMode,
        backend: sea_orm::DatabaseBackend,
    ) -> Vec<(&'static str, SimpleExpr)> {
        let now = match (backend, mode) {
            (sea_orm::DatabaseBackend::Sqlite, _) => "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
            (_, WriteMode::Create) => "statement_timestamp()",
            _ => "clock_timestamp()",
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

    /// Records by id, in the order of `ids`.
    pub async fn read_by_ids<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &[i64],
        select: Option<&[String]>,
    ) -> Result<Vec<Value>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let cond =
            Condition::all().add(self.col(self.options.schema.id).is_in(ids.iter().copied()));
        let rows = self.select_rows(conn, cond, &[], None, 0, select).await?;
        let id_field = self.options.schema.id;
        let mut by_id: std::collections::HashMap<i64, Value> = rows
            .into_iter()
            .filter_map(|r| Some((r[id_field].as_i64()?, r)))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
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

    fn returned_ids(&self, rows: Vec<QueryResult>) -> Result<Vec<i64>> {
        Ok(rows
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0))
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn id_condition(&self, id: Option<&Id>, query: &Query, params: &Params) -> Result<Condition> {
        let cond = self.condition(query, params)?;
        Ok(match id {
            Some(id) => cond.add(self.col(self.options.schema.id).eq(parse_id(id)?)),
            None => cond,
        })
    }

    fn check_multi(&self, id: Option<&Id>, allowed: bool, method: &str) -> Result<()> {
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

/// The answer to a reference that is not a row of the caller's tenant: the same
/// whether the row is missing or another tenant's, so it tells nothing about others.
pub fn missing_reference(field: &str, id: i64) -> FeathersError {
    FeathersError::unprocessable(format!("{field} {id} does not exist in this organization"))
        .with_data(json!({ "rule": "reference_in_organization", "field": field, "value": id }))
}

/// `column op values` with Feathers semantics: `$ne`/`$nin` keep nulls of a nullable
/// column, `$in: []` matches nothing, a null operand means IS NULL.
pub fn comparison(c: Expr, ty: FieldType, nullable: bool, op: Op, values: &[Typed]) -> SimpleExpr {
    let v = |i: usize| sql_value(ty, &values[i]);
    let is_null = values.first() == Some(&Typed::Null);
    match op {
        Op::Eq if is_null => c.is_null(),
        Op::Eq => c.eq(v(0)),
        Op::Ne if is_null => c.is_not_null(),
        // `$ne` keeps rows where the field is null (a null is not equal to the value).
        Op::Ne if nullable => c.clone().ne(v(0)).or(c.is_null()),
        Op::Ne => c.ne(v(0)),
        Op::Lt => c.lt(v(0)),
        Op::Lte => c.lte(v(0)),
        Op::Gt => c.gt(v(0)),
        Op::Gte => c.gte(v(0)),
        Op::In | Op::Nin => {
            let has_null = values.contains(&Typed::Null);
            let list: Vec<_> = values
                .iter()
                .filter(|v| **v != Typed::Null)
                .map(|x| sql_value(ty, x))
                .collect();
            let base = if list.is_empty() {
                Expr::cust("1 = 0")
            } else {
                c.clone().is_in(list)
            };
            match (op, has_null) {
                (Op::In, false) => base,
                (Op::In, true) => base.or(c.is_null()),
                (_, true) => base.not().and(c.is_not_null()),
                (_, false) if nullable => base.not().or(c.is_null()),
                (_, false) => base.not(),
            }
        }
        // `\` escapes on both databases (PostgreSQL's default, SQLite has none).
        Op::Like => c.like(LikeExpr::new(text(&values[0])).escape('\\')),
        Op::NotLike => c.not_like(LikeExpr::new(text(&values[0])).escape('\\')),
        Op::ILike => Expr::expr(Func::lower(c))
            .like(LikeExpr::new(text(&values[0]).to_lowercase()).escape('\\')),
    }
}

/// Which rows of the matching ones: in `sort` order, `skip` then at most `limit`.
#[derive(Clone, Copy)]
struct Paging<'a> {
    sort: &'a [(String, Direction)],
    limit: Option<u64>,
    skip: u64,
    /// Set when a deep page may start from an anchor: the tenant whose versions count.
    anchor_tenant: Option<i64>,
    /// What identifies the request's page statement (see [`Anchors::statement`]).
    request: Option<&'a str>,
}

/// A find's result before it is serialized.
struct Found {
    /// `(total, limit, skip)` when the service paginates.
    page: Option<(i64, u64, u64)>,
    select: Option<Vec<String>>,
    rows: Vec<QueryResult>,
}

/// Appends `LIMIT`/`OFFSET` as literals. As bound parameters they would make
/// PostgreSQL plan every execution anew: a generic plan must assume an unknown LIMIT
/// reads a tenth of the table, so the plan cache keeps re-planning (measured: planning
/// was a third of the database's time on a page query, and halved its throughput).
fn paged(mut statement: Statement, limit: Option<u64>, skip: u64) -> Statement {
    use std::fmt::Write;
    if let Some(limit) = limit {
        let _ = write!(statement.sql, " LIMIT {limit}");
    } else if skip > 0 {
        // SQLite allows OFFSET only after a LIMIT; -1 means none there, and PostgreSQL
        // reads `LIMIT ALL` the same way.
        statement
            .sql
            .push_str(if statement.db_backend == DbBackend::Sqlite {
                " LIMIT -1"
            } else {
                " LIMIT ALL"
            });
    }
    if skip > 0 {
        let _ = write!(statement.sql, " OFFSET {skip}");
    }
    statement
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

fn text(v: &Typed) -> String {
    match v {
        Typed::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    }
}

fn check_tenant_value(column: &str, value: &Value, tenant: Option<i64>) -> Result<()> {
    let given = value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
    match (given, tenant) {
        (Some(g), Some(t)) if g == t => Ok(()),
        _ => Err(FeathersError::forbidden(format!(
            "{column} must be the caller's own"
        ))),
    }
}

fn check_tenant_filters(filters: &[Filter], column: &str, tenant: i64) -> Result<()> {
    for filter in filters {
        match filter {
            Filter::And(parts) | Filter::Or(parts) => check_tenant_filters(parts, column, tenant)?,
            Filter::Cmp { field, op, values } if field == column => {
                let own = values.iter().all(|v| *v == Typed::Int(tenant));
                if !(own && matches!(op, Op::Eq | Op::In)) {
                    return Err(FeathersError::forbidden(format!(
                        "{column} must be the caller's own"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
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
        let txn = self.db.begin().await?;
        let result = self._create(&txn, data, params).await?;
        txn.commit().await?;
        Ok(result)
    }
    async fn update(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let txn = self.db.begin().await?;
        let result = self
            ._patch(&txn, id, data, params, WriteMode::Update)
            .await?;
        txn.commit().await?;
        Ok(result)
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let txn = self.db.begin().await?;
        let result = self
            ._patch(&txn, id, data, params, WriteMode::Patch)
            .await?;
        txn.commit().await?;
        Ok(result)
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let txn = self.db.begin().await?;
        let result = self._remove(&txn, id, params).await?;
        txn.commit().await?;
        Ok(result)
    }
}
