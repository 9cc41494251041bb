//! The Feathers query language, typed: `$limit $skip $sort $select $or $and`
//! plus per-field `$in $nin $lt $lte $gt $gte $ne` (and `$like $ilike $notlike`
//! where the schema allows). Raw qs objects go in, a [`Query`] comes out, or a
//! 400 naming what was wrong. Nothing unknown passes silently.

use super::error::{FeathersError, Result};
use super::schema::{FieldType, Schema, Source, Typed, coerce};
use serde_json::{Map, Value};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Nin,
    Like,
    ILike,
    NotLike,
}

impl Op {
    fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "$ne" => Op::Ne,
            "$lt" => Op::Lt,
            "$lte" => Op::Lte,
            "$gt" => Op::Gt,
            "$gte" => Op::Gte,
            "$in" => Op::In,
            "$nin" => Op::Nin,
            "$like" => Op::Like,
            "$ilike" => Op::ILike,
            "$notlike" => Op::NotLike,
            _ => return None,
        })
    }
    fn is_like(self) -> bool {
        matches!(self, Op::Like | Op::ILike | Op::NotLike)
    }
    fn is_list(self) -> bool {
        matches!(self, Op::In | Op::Nin)
    }
}

/// A filter tree. Top-level filters are ANDed.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// `field op value`; `$in`/`$nin` carry several values.
    Cmp {
        field: String,
        op: Op,
        values: Vec<Typed>,
    },
    /// A key the service declared as a virtual filter.
    Virtual {
        name: String,
        value: Typed,
    },
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// A parsed, typed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `$limit` as asked (clamping is pagination's business).
    pub limit: Option<u64>,
    pub skip: u64,
    pub sort: Vec<(String, Direction)>,
    /// `$select`; the id is added when the result is shaped.
    pub select: Option<Vec<String>>,
    pub filters: Vec<Filter>,
}

impl Query {
    /// Parses a raw query object (strings from a URL, or typed JSON from a stored query).
    pub fn parse(raw: &Value, schema: &Schema, source: Source) -> Result<Self> {
        let Some(obj) = raw.as_object() else {
            return Err(FeathersError::bad_request("The query must be an object"));
        };
        let mut query = Query::default();
        for (key, value) in obj {
            match key.as_str() {
                "$limit" => query.limit = Some(non_negative("$limit", value, source)?),
                "$skip" => query.skip = non_negative("$skip", value, source)?,
                "$sort" => query.sort = parse_sort(value, schema)?,
                "$select" => query.select = Some(parse_select(value, schema)?),
                _ => query
                    .filters
                    .push(parse_entry(key, value, schema, source, 0)?),
            }
        }
        let (conditions, values) = size(&query.filters);
        if conditions > MAX_CONDITIONS {
            return Err(FeathersError::bad_request(format!(
                "The query has {conditions} conditions; at most {MAX_CONDITIONS} are allowed"
            )));
        }
        if values > MAX_VALUES {
            return Err(FeathersError::bad_request(format!(
                "The query has {values} values; at most {MAX_VALUES} are allowed"
            )));
        }
        Ok(query)
    }
}

const MAX_NESTING: usize = 5;
/// Bounds on one query, so that no request builds a statement the database refuses
/// (SQLite's expression depth and bind limits) or one that runs for seconds.
/// Branches of one `$or` or `$and`.
pub const MAX_BRANCHES: usize = 50;
/// Comparisons and virtual filters in one query.
pub const MAX_CONDITIONS: usize = 100;
/// Items of one `$in` or `$nin`.
pub const MAX_LIST: usize = 500;
/// Values in one query, list items included.
pub const MAX_VALUES: usize = 1000;
/// Characters of a `$like` pattern or of a virtual filter's text (`searchTerm`):
/// a pattern costs text length x pattern length per row.
pub const MAX_PATTERN: usize = 100;

/// (conditions, values) of a filter tree.
fn size(filters: &[Filter]) -> (usize, usize) {
    filters.iter().fold((0, 0), |(c, v), f| {
        let (fc, fv) = match f {
            Filter::And(parts) | Filter::Or(parts) => size(parts),
            Filter::Cmp { values, .. } => (1, values.len()),
            Filter::Virtual { .. } => (1, 1),
        };
        (c + fc, v + fv)
    })
}

/// Scalar values in a raw query object (list items included): what
/// [`MAX_VALUES`] counts, for a service deciding whether it may add some.
pub fn raw_values(raw: &Value) -> usize {
    match raw {
        Value::Object(o) => o.values().map(raw_values).sum(),
        Value::Array(a) => a.iter().map(raw_values).sum(),
        _ => 1,
    }
}

/// 400 unless `text` is a usable pattern: short enough, and not ending in a lone
/// escape character (`\` escapes `%`, `_` and itself on both databases).
fn check_pattern(path: &str, text: &str) -> Result<()> {
    if text.chars().count() > MAX_PATTERN {
        return Err(FeathersError::invalid(
            path,
            format!("must be at most {MAX_PATTERN} characters"),
        ));
    }
    let trailing = text.chars().rev().take_while(|c| *c == '\\').count();
    if trailing % 2 == 1 {
        return Err(FeathersError::invalid(
            path,
            "must not end with an escape character (write \\\\ for a backslash)",
        ));
    }
    Ok(())
}

fn non_negative(path: &str, value: &Value, source: Source) -> Result<u64> {
    match coerce(path, FieldType::Integer, false, value, source)? {
        Typed::Int(n) if n >= 0 => Ok(n as u64),
        _ => Err(FeathersError::invalid(
            path,
            "must be a non-negative integer",
        )),
    }
}

fn parse_sort(value: &Value, schema: &Schema) -> Result<Vec<(String, Direction)>> {
    let Some(obj) = value.as_object() else {
        return Err(FeathersError::invalid(
            "$sort",
            "must be an object of field: 1 | -1",
        ));
    };
    obj.iter()
        .map(|(field, dir)| {
            let path = format!("$sort.{field}");
            if !schema.field(field).is_some_and(|f| f.sort) && field != schema.id {
                return Err(FeathersError::invalid(&path, "is not a sortable field"));
            }
            // adapter-commons runs parseInt on sort values: "1", 1 and "-1" all work.
            let n = match dir {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(1) | Some(0) => Ok((field.clone(), Direction::Asc)),
                Some(-1) => Ok((field.clone(), Direction::Desc)),
                _ => Err(FeathersError::invalid(&path, "must be 1 or -1")),
            }
        })
        .collect()
}

fn parse_select(value: &Value, schema: &Schema) -> Result<Vec<String>> {
    let Some(items) = value.as_array() else {
        return Err(FeathersError::invalid(
            "$select",
            "must be an array of field names",
        ));
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) if name == schema.id || schema.field(name).is_some_and(|f| !f.hidden) => {
                Ok(name.to_string())
            }
            _ => Err(FeathersError::invalid(
                "$select",
                format!("unknown field {item}"),
            )),
        })
        .collect()
}

/// One key of a condition object: a field, a virtual filter, `$or` or `$and`.
fn parse_entry(
    key: &str,
    value: &Value,
    schema: &Schema,
    source: Source,
    depth: usize,
) -> Result<Filter> {
    if depth > MAX_NESTING {
        return Err(FeathersError::bad_request("The query is nested too deeply"));
    }
    match key {
        "$or" | "$and" => {
            let Some(items) = value.as_array() else {
                return Err(FeathersError::invalid(
                    key,
                    "must be an array of conditions",
                ));
            };
            if items.len() > MAX_BRANCHES {
                return Err(FeathersError::invalid(
                    key,
                    format!(
                        "has {} branches; at most {MAX_BRANCHES} are allowed",
                        items.len()
                    ),
                ));
            }
            let groups = items
                .iter()
                .map(|item| parse_group(key, item, schema, source, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            Ok(if key == "$or" {
                Filter::Or(groups)
            } else {
                Filter::And(groups)
            })
        }
        _ if key.starts_with('$') => Err(FeathersError::invalid(key, "is not a valid filter")),
        _ => {
            if let Some(v) = schema.virtual_filter(key) {
                if value.is_object() || value.is_array() {
                    return Err(FeathersError::invalid(key, "takes a single value"));
                }
                let value = coerce(key, v.ty, false, value, source)?;
                if let Typed::Str(text) = &value
                    && text.chars().count() > MAX_PATTERN
                {
                    return Err(FeathersError::invalid(
                        key,
                        format!("must be at most {MAX_PATTERN} characters"),
                    ));
                }
                return Ok(Filter::Virtual {
                    name: key.to_string(),
                    value,
                });
            }
            let field = match schema.field(key) {
                Some(f) if f.filter && f.column => f,
                _ if key == schema.id => return parse_id_condition(key, value, source),
                _ => {
                    return Err(FeathersError::invalid(
                        key,
                        "is not a field that can be queried",
                    ));
                }
            };
            parse_field(key, field.ty, field.nullable, field.like, value, source)
        }
    }
}

fn parse_id_condition(key: &str, value: &Value, source: Source) -> Result<Filter> {
    parse_field(key, FieldType::Integer, false, false, value, source)
}

fn parse_group(
    key: &str,
    item: &Value,
    schema: &Schema,
    source: Source,
    depth: usize,
) -> Result<Filter> {
    let Some(obj) = item.as_object() else {
        return Err(FeathersError::invalid(
            key,
            "must be an array of condition objects",
        ));
    };
    let parts = obj
        .iter()
        .map(|(k, v)| parse_entry(k, v, schema, source, depth))
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter::And(parts))
}

fn parse_field(
    name: &str,
    ty: FieldType,
    nullable: bool,
    like: bool,
    value: &Value,
    source: Source,
) -> Result<Filter> {
    let Some(ops) = value.as_object() else {
        if value.is_array() {
            return Err(FeathersError::invalid(
                name,
                "takes one value; use $in for several",
            ));
        }
        let typed = coerce(name, ty, nullable, value, source)?;
        return Ok(Filter::Cmp {
            field: name.to_string(),
            op: Op::Eq,
            values: vec![typed],
        });
    };
    if ops.is_empty() {
        return Err(FeathersError::invalid(name, "has an empty condition"));
    }
    let parts = ops
        .iter()
        .map(|(op_key, operand)| {
            let path = format!("{name}.{op_key}");
            let op = Op::from_key(op_key)
                .filter(|op| like || !op.is_like())
                .ok_or_else(|| FeathersError::invalid(&path, "is not an allowed operator"))?;
            let values = if op.is_list() {
                let Some(items) = operand.as_array() else {
                    return Err(FeathersError::invalid(&path, "must be an array"));
                };
                if items.len() > MAX_LIST {
                    return Err(FeathersError::invalid(
                        &path,
                        format!("has {} items; at most {MAX_LIST} are allowed", items.len()),
                    ));
                }
                items
                    .iter()
                    .map(|v| coerce(&path, ty, nullable, v, source))
                    .collect::<Result<Vec<_>>>()?
            } else if op.is_like() {
                let pattern = coerce(&path, FieldType::String, false, operand, source)?;
                if let Typed::Str(text) = &pattern {
                    check_pattern(&path, text)?;
                }
                vec![pattern]
            } else {
                vec![coerce(
                    &path,
                    ty,
                    nullable && matches!(op, Op::Ne),
                    operand,
                    source,
                )?]
            };
            Ok(Filter::Cmp {
                field: name.to_string(),
                op,
                values,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(if parts.len() == 1 {
        parts.into_iter().next().unwrap()
    } else {
        Filter::And(parts)
    })
}

/// Removes `key` from a raw query object and returns its value (for service-specific keys).
pub fn take_key(raw: &mut Value, key: &str) -> Option<Value> {
    raw.as_object_mut()
        .and_then(|o: &mut Map<String, Value>| o.shift_remove(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feathers::schema::Field;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(
            "id",
            vec![
                Field::new("name", FieldType::String).query().like(),
                Field::new("age", FieldType::Number).query(),
                Field::new("created", FieldType::Boolean).query(),
                Field::new("secret", FieldType::String).hidden(),
            ],
        )
        .with_virtual("searchTerm", FieldType::String)
    }

    fn parse(v: Value) -> Result<Query> {
        Query::parse(&v, &schema(), Source::Query)
    }

    #[test]
    fn parses_paging_sort_and_select() {
        let q = parse(
            json!({"$limit":"5","$skip":"10","$sort":{"age":"-1","name":"1"},"$select":["name"]}),
        )
        .unwrap();
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.skip, 10);
        assert_eq!(
            q.sort,
            vec![
                ("age".into(), Direction::Desc),
                ("name".into(), Direction::Asc)
            ]
        );
        assert_eq!(q.select, Some(vec!["name".into()]));
    }

    #[test]
    fn coerces_field_values_and_operators() {
        let q = parse(
            json!({"age":{"$gt":"19","$lte":"30"},"created":"true","name":{"$in":["a","b"]}}),
        )
        .unwrap();
        assert_eq!(q.filters.len(), 3);
        assert_eq!(
            q.filters[1],
            Filter::Cmp {
                field: "created".into(),
                op: Op::Eq,
                values: vec![Typed::Bool(true)]
            }
        );
        let nested = parse(json!({"$or":[{"name":"a"},{"age":{"$gt":"2"}}]})).unwrap();
        assert!(matches!(&nested.filters[0], Filter::Or(groups) if groups.len() == 2));
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        for bad in [
            json!({"nope":"1"}),
            json!({"age":{"$regex":"1"}}),
            json!({"$foo":"1"}),
            json!({"age":"abc"}),
            json!({"created":"1"}),
            json!({"name":{"$in":"a"}}),
            json!({"$select":"name"}),
            json!({"$select":["secret"]}),
            json!({"$sort":{"secret":1}}),
            json!({"$limit":"-1"}),
            json!({"age":{"$like":"1%"}}),
            json!({"name":["a","b"]}),
            json!({"searchTerm":{"$in":["a"]}}),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code(), 400, "{bad}");
        }
    }

    #[test]
    fn bounds_branches_lists_conditions_and_patterns() {
        let branches: Vec<Value> = (0..=MAX_BRANCHES).map(|i| json!({"age": i})).collect();
        assert_eq!(parse(json!({"$or": branches})).unwrap_err().code(), 400);
        let list: Vec<Value> = (0..=MAX_LIST).map(|i| json!(i.to_string())).collect();
        assert_eq!(
            parse(json!({"age": {"$in": list}})).unwrap_err().code(),
            400
        );
        let ok: Vec<Value> = (0..MAX_LIST).map(|i| json!(i.to_string())).collect();
        assert!(parse(json!({"age": {"$nin": ok.clone()}})).is_ok());
        let many =
            json!({"$and": [{"age": {"$in": ok.clone()}}, {"age": {"$nin": ok}}, {"age": "1"}]});
        assert_eq!(
            parse(many).unwrap_err().code(),
            400,
            "values over the total"
        );
        let conditions: Vec<Value> = (0..MAX_BRANCHES)
            .map(|i| json!({"age": {"$gt": i.to_string(), "$lt": "100", "$ne": "5"}}))
            .collect();
        assert_eq!(parse(json!({"$or": conditions})).unwrap_err().code(), 400);
        let long = "a".repeat(MAX_PATTERN + 1);
        assert_eq!(
            parse(json!({"name": {"$like": long}})).unwrap_err().code(),
            400
        );
        assert_eq!(
            parse(json!({"searchTerm": "b".repeat(MAX_PATTERN + 1)}))
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            parse(json!({"name": {"$ilike": "abc\\"}}))
                .unwrap_err()
                .code(),
            400
        );
        assert!(parse(json!({"name": {"$ilike": "abc\\\\"}})).is_ok());
        assert!(parse(json!({"name": {"$like": "a".repeat(MAX_PATTERN)}})).is_ok());
    }

    #[test]
    fn like_only_where_allowed() {
        let q = parse(json!({"name":{"$ilike":"da%"}})).unwrap();
        assert!(matches!(&q.filters[0], Filter::Cmp { op: Op::ILike, .. }));
    }

    #[test]
    fn virtual_filters_are_typed() {
        let q = parse(json!({"searchTerm":"bob"})).unwrap();
        assert_eq!(
            q.filters[0],
            Filter::Virtual {
                name: "searchTerm".into(),
                value: Typed::Str("bob".into())
            }
        );
    }
}
