//! Reads: the columns of a shape, the order, a page (with its total, from a counter
//! or a `COUNT`), deep pages from anchors, and records by id.

use super::*;

impl SqlService {
    /// What a result shows: the id, the visible fields and the embeds, narrowed by `$select`.
    pub(super) fn shape(&self, select: Option<&[String]>) -> RowShape<'_> {
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
    pub(super) fn select_columns(&self, stmt: &mut SelectStatement, shape: &RowShape) {
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
    pub(super) fn sort_keys<'a>(
        &'a self,
        sort: &'a [(String, Direction)],
    ) -> Vec<(&'a str, Direction, bool)> {
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

    pub(super) fn apply_sort(&self, stmt: &mut SelectStatement, sort: &[(String, Direction)]) {
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

    pub(super) fn col_ref(&self, name: &str) -> (Alias, Alias) {
        (Alias::new(self.options.table), Alias::new(name))
    }

    /// Rows matching `cond`, sorted and paged, shaped by `select`. A page past the first
    /// starts from an anchor where the service has them (see [`Anchors`]); otherwise
    /// it finds its ids first (an index-only scan can skip rows without reading them),
    /// then reads just those rows.
    ///
    /// `total`, a one-value query, is selected as the last column of every row (before
    /// an anchored page's version), so a page and its total take one round trip.
    pub(super) async fn query_rows<C: ConnectionTrait>(
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
            stmt.and_where(
                self.col(self.options.schema.id)
                    .binary(BinOper::In, crate::feathers::sql_text::subquery(ids)),
            );
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
    pub(super) fn anchored_page(
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
            .expr(crate::feathers::sql_text::version_sum(versions))
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
    pub(super) fn anchor_tenant(&self, query: &Query, params: &Params) -> Result<Option<i64>> {
        if self.options.anchors.is_none() || !query.filters.iter().all(|f| self.row_local(f)) {
            return Ok(None);
        }
        self.tenant_id(params)
    }

    pub(super) fn row_local(&self, filter: &Filter) -> bool {
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
    pub(super) async fn kept_page<C: ConnectionTrait>(
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
    pub(super) fn total_query(
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
    pub(super) async fn found<C: ConnectionTrait>(
        &self,
        conn: &C,
        params: &Params,
    ) -> Result<Found> {
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

    /// [`answer_too_large`](crate::feathers::rows::answer_too_large) before reading the page, when
    /// its fields with a [`Field::max_bytes`] already hold more than `max` bytes: such
    /// fields may hold records stored before their limit (up to the body limit each),
    /// which would otherwise be read whole into memory before the answer is refused.
    /// Costs one more statement, for services with such fields only.
    pub(super) async fn check_page_bytes<C: ConnectionTrait>(
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
        let capped: Vec<&str> = (shape.fields.iter())
            .filter(|f| f.max_bytes.is_some())
            .map(|f| f.name)
            .collect();
        if capped.is_empty() {
            return Ok(());
        }
        let mut stmt = SqlQuery::select();
        stmt.expr_as(
            crate::feathers::sql_text::stored_bytes(backend, table, &capped),
            Alias::new("bytes"),
        )
        .from(Alias::new(table))
        .cond_where(cond.clone());
        self.apply_sort(&mut stmt, &query.sort);
        let page = paged(backend.build(&stmt), Some(limit), query.skip);
        let sum = crate::feathers::sql_text::sum_of(page, "bytes");
        let bytes = match conn.query_one_raw(sum).await? {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        };
        if bytes > max as i64 {
            return Err(crate::feathers::rows::answer_too_large(max));
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
                    *left = (left.checked_sub(crate::feathers::schema::json_size(&record)))
                        .ok_or_else(|| crate::feathers::rows::answer_too_large(max))?;
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
}

/// Which rows of the matching ones: in `sort` order, `skip` then at most `limit`.
#[derive(Clone, Copy)]
pub(super) struct Paging<'a> {
    sort: &'a [(String, Direction)],
    limit: Option<u64>,
    skip: u64,
    /// Set when a deep page may start from an anchor: the tenant whose versions count.
    anchor_tenant: Option<i64>,
    /// What identifies the request's page statement (see [`Anchors::statement`]).
    request: Option<&'a str>,
}

/// A find's result before it is serialized.
pub(super) struct Found {
    /// `(total, limit, skip)` when the service paginates.
    page: Option<(i64, u64, u64)>,
    select: Option<Vec<String>>,
    rows: Vec<QueryResult>,
}
