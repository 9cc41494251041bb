//! A query as a condition: the tenant and soft-delete scope every statement starts
//! from, the filters, and the tenant column a query may only name as the caller's.

use super::*;

impl SqlService {
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

    pub(super) fn filter_condition(&self, filter: &Filter, params: &Params) -> Result<Condition> {
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

    pub(super) fn field_type(&self, name: &str) -> (FieldType, bool) {
        match self.options.schema.field(name) {
            Some(f) => (f.ty, f.nullable),
            None => (FieldType::Integer, false), // the id
        }
    }

    pub(super) fn comparison(&self, field: &str, op: Op, values: &[Typed]) -> SimpleExpr {
        let (ty, nullable) = self.field_type(field);
        comparison(self.col(field), ty, nullable, op, values)
    }
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

pub(super) fn text(v: &Typed) -> String {
    match v {
        Typed::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    }
}

pub(super) fn check_tenant_value(column: &str, value: &Value, tenant: Option<i64>) -> Result<()> {
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

pub(super) fn check_tenant_filters(filters: &[Filter], column: &str, tenant: i64) -> Result<()> {
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
