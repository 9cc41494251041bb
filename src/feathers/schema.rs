//! A service's schema, declared once: each field's type and what a client may do
//! with it. It drives query coercion and validation, data validation, `$select`
//! and output.

use super::error::{FeathersError, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// The type of a field, as it travels in JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    /// ISO 8601 in, `YYYY-MM-DDTHH:MM:SS.mmmZ` out.
    Timestamp,
    /// One of a closed list of strings.
    Enum(&'static [&'static str]),
    /// Any JSON value (stored as `jsonb` on PostgreSQL).
    Json,
}

/// A typed value: the result of coercing a query or data value.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    Null,
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    Json(Value),
}

/// One field of a schema. Build with [`Field::new`] and the flag methods.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub nullable: bool,
    /// May appear in a query (equality and the comparison operators).
    pub filter: bool,
    /// May appear in `$sort`.
    pub sort: bool,
    /// May be set by a client on create.
    pub create: bool,
    /// May be changed by a client on patch and update.
    pub patch: bool,
    /// Must be present on create.
    pub required: bool,
    /// `$like`, `$ilike` and `$notlike` are allowed on it.
    pub like: bool,
    /// Backed by a column; `false` for fields the service computes (embedded records).
    pub column: bool,
    /// Never sent to clients (a password hash).
    pub hidden: bool,
    pub max_len: Option<usize>,
    /// A JSON field's most bytes as serialized JSON, when written.
    pub max_bytes: Option<usize>,
    /// A string that must hold more than whitespace when written.
    pub non_blank: bool,
    /// An integer naming a row of this table in the caller's tenant: checked on the
    /// typed value before every write, in the write's transaction.
    pub references: Option<&'static str>,
    /// The smallest value a number may be written with.
    pub min: Option<i64>,
    /// The most items a list (a JSON array field) may be written with.
    pub max_items: Option<usize>,
}

impl Field {
    pub const fn new(name: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            ty,
            nullable: false,
            filter: false,
            sort: false,
            create: false,
            patch: false,
            required: false,
            like: false,
            column: true,
            hidden: false,
            max_len: None,
            max_bytes: None,
            non_blank: false,
            references: None,
            min: None,
            max_items: None,
        }
    }
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
    /// Filterable and sortable.
    pub const fn query(mut self) -> Self {
        self.filter = true;
        self.sort = true;
        self
    }
    pub const fn filter(mut self) -> Self {
        self.filter = true;
        self
    }
    /// Writable on create and patch.
    pub const fn write(mut self) -> Self {
        self.create = true;
        self.patch = true;
        self
    }
    /// Writable on create only.
    pub const fn create_only(mut self) -> Self {
        self.create = true;
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self.create = true;
        self
    }
    pub const fn like(mut self) -> Self {
        self.like = true;
        self
    }
    pub const fn computed(mut self) -> Self {
        self.column = false;
        self
    }
    pub const fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }
    pub const fn max_len(mut self, n: usize) -> Self {
        self.max_len = Some(n);
        self
    }
    /// At most `n` bytes of serialized JSON (a [`FieldType::Json`] field).
    pub const fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = Some(n);
        self
    }
    pub const fn non_blank(mut self) -> Self {
        self.non_blank = true;
        self
    }
    pub const fn references(mut self, table: &'static str) -> Self {
        self.references = Some(table);
        self
    }
    pub const fn min(mut self, n: i64) -> Self {
        self.min = Some(n);
        self
    }
    pub const fn max_items(mut self, n: usize) -> Self {
        self.max_items = Some(n);
        self
    }
}

/// A query key that is not a column; the service turns it into a condition.
#[derive(Debug, Clone)]
pub struct VirtualFilter {
    pub name: &'static str,
    pub ty: FieldType,
}

/// The schema of one service.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: &'static str,
    pub fields: Vec<Field>,
    pub virtuals: Vec<VirtualFilter>,
}

impl Schema {
    pub fn new(id: &'static str, fields: Vec<Field>) -> Self {
        Self {
            id,
            fields,
            virtuals: Vec::new(),
        }
    }
    pub fn with_virtual(mut self, name: &'static str, ty: FieldType) -> Self {
        self.virtuals.push(VirtualFilter { name, ty });
        self
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn virtual_filter(&self, name: &str) -> Option<&VirtualFilter> {
        self.virtuals.iter().find(|v| v.name == name)
    }
    /// Column-backed fields, in declaration order.
    pub fn columns(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.column)
    }
    /// Fields a client may see, in declaration order.
    pub fn visible(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.hidden)
    }
}

/// A record embedded as `field` (a computed field of the schema): another table's row
/// whose id is the value of `key`, with `columns`, read from copies on the row itself
/// (column `prefix` + name; `key` stands for `id`) that the database keeps equal to
/// that row, so a page needs no join. Null when `key` is; left out when `$select` does
/// not name `field`.
#[derive(Debug, Clone)]
pub struct Embed {
    pub field: &'static str,
    pub key: &'static str,
    pub prefix: &'static str,
    pub columns: &'static [(&'static str, FieldType)],
}

/// 400 naming `path` when `value`, serialized as JSON, is longer than `max` bytes
/// (measured without writing it out).
pub fn check_json_size(path: &str, value: &Value, max: usize) -> Result<()> {
    let size = json_size(value);
    if size > max {
        return Err(FeathersError::invalid(
            path,
            format!("must be at most {max} bytes of JSON (it is {size})"),
        ));
    }
    Ok(())
}

/// The length of `value` serialized as JSON, counted without writing it out.
pub fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut size = Count(0);
    let _ = serde_json::to_writer(&mut size, value);
    size.0
}

/// How strictly a value is read: query strings carry only strings, JSON bodies carry types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// From a URL: every value is a string and is converted (Ajv `coerceTypes`).
    Query,
    /// From a JSON body: types must already match.
    Body,
}

/// Converts `value` to the field type, or a 400 naming `path`.
pub fn coerce(
    path: &str,
    ty: FieldType,
    nullable: bool,
    value: &Value,
    source: Source,
) -> Result<Typed> {
    let wrong = |expected: &str| FeathersError::invalid(path, format!("must be {expected}"));
    if value.is_null() {
        return if nullable {
            Ok(Typed::Null)
        } else {
            Err(wrong("not null"))
        };
    }
    if source == Source::Query
        && nullable
        && let Value::String(s) = value
        && (s.is_empty() || (s == "null" && ty != FieldType::String))
    {
        return Ok(Typed::Null);
    }
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match ty {
        FieldType::String => text(value).map(Typed::Str).ok_or_else(|| wrong("a string")),
        FieldType::Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(Typed::Str(s.to_owned())),
            _ => Err(wrong(&format!("one of {}", allowed.join(", ")))),
        },
        FieldType::Integer => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .map(Typed::Int)
                .ok_or_else(|| wrong("an integer")),
            Value::String(s) if source == Source::Query => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        s.parse::<f64>()
                            .ok()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    })
                    .map(Typed::Int)
                    .ok_or_else(|| wrong("an integer"))
            }
            _ => Err(wrong("an integer")),
        },
        FieldType::Number => match value {
            Value::Number(n) => n.as_f64().map(Typed::Num).ok_or_else(|| wrong("a number")),
            Value::String(s) if source == Source::Query => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && !s.trim().is_empty())
                .map(Typed::Num)
                .ok_or_else(|| wrong("a number")),
            _ => Err(wrong("a number")),
        },
        FieldType::Boolean => match value {
            Value::Bool(b) => Ok(Typed::Bool(*b)),
            Value::String(s) if source == Source::Query && s == "true" => Ok(Typed::Bool(true)),
            Value::String(s) if source == Source::Query && s == "false" => Ok(Typed::Bool(false)),
            _ => Err(wrong("a boolean")),
        },
        FieldType::Timestamp => value
            .as_str()
            .and_then(parse_timestamp)
            .map(Typed::Time)
            .ok_or_else(|| wrong("an ISO 8601 date-time")),
        FieldType::Json => Ok(Typed::Json(value.clone())),
    }
}

/// 400 naming the first string or key of `value` that holds a NUL character:
/// PostgreSQL's text and jsonb cannot store one, and no client means one.
/// `path` names `value` itself (`query`, `body`).
pub fn refuse_nul(value: &Value, path: &str) -> Result<()> {
    let nul = |s: &str| s.contains('\0');
    match value {
        Value::String(s) if nul(s) => Err(FeathersError::invalid(
            path,
            "must not contain a NUL character",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| refuse_nul(v, &format!("{path}.{i}"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let inner = format!("{path}.{}", k.replace('\0', "\\u0000"));
            if nul(k) {
                return Err(FeathersError::invalid(
                    &inner,
                    "must not contain a NUL character",
                ));
            }
            refuse_nul(v, &inner)
        }),
        _ => Ok(()),
    }
}

/// Any ISO 8601 date-time (with offset) or a plain date (midnight UTC).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        })
}

/// The wire form of a timestamp: UTC with milliseconds.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Typed {
    /// Back to JSON, as a client sees it.
    pub fn to_json(&self) -> Value {
        match self {
            Typed::Null => Value::Null,
            Typed::Str(s) => Value::String(s.clone()),
            Typed::Int(i) => Value::from(*i),
            Typed::Num(f) => number_to_json(*f),
            Typed::Bool(b) => Value::Bool(*b),
            Typed::Time(t) => Value::String(format_timestamp(t)),
            Typed::Json(v) => v.clone(),
        }
    }
}

/// Integral floats go out as integers (`10`, not `10.0`).
pub fn number_to_json(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(ty: FieldType, v: Value) -> Result<Typed> {
        coerce("f", ty, false, &v, Source::Query)
    }

    #[test]
    fn query_strings_coerce_like_ajv() {
        assert_eq!(q(FieldType::Number, json!("19")).unwrap(), Typed::Num(19.0));
        assert_eq!(
            q(FieldType::Number, json!("1e3")).unwrap(),
            Typed::Num(1000.0)
        );
        assert_eq!(q(FieldType::Number, json!(" 5")).unwrap(), Typed::Num(5.0));
        assert!(q(FieldType::Number, json!("")).is_err());
        assert!(q(FieldType::Number, json!("abc")).is_err());
        assert_eq!(q(FieldType::Integer, json!("-1")).unwrap(), Typed::Int(-1));
        assert!(q(FieldType::Integer, json!("1.5")).is_err());
        assert_eq!(
            q(FieldType::Boolean, json!("true")).unwrap(),
            Typed::Bool(true)
        );
        for bad in ["1", "0", "yes", ""] {
            assert!(q(FieldType::Boolean, json!(bad)).is_err(), "{bad}");
        }
        assert!(q(FieldType::Enum(&["open", "closed"]), json!("pending")).is_err());
        assert!(q(FieldType::Timestamp, json!("yesterday")).is_err());
        assert!(q(FieldType::Timestamp, json!("2026-11-23")).is_ok());
    }

    #[test]
    fn nullable_fields_read_empty_as_null() {
        let v = coerce("f", FieldType::Integer, true, &json!(""), Source::Query).unwrap();
        assert_eq!(v, Typed::Null);
        assert!(coerce("f", FieldType::Integer, false, &json!(null), Source::Body).is_err());
    }

    #[test]
    fn nul_characters_are_refused_where_they_are() {
        assert!(refuse_nul(&json!({"a": ["x", {"b": "ok"}]}), "body").is_ok());
        let err = refuse_nul(&json!({"a": ["x", {"b": "o\0k"}]}), "body").unwrap_err();
        assert_eq!(err.code(), 400);
        assert!(
            err.to_json().to_string().contains("body.a.1.b"),
            "{}",
            err.to_json()
        );
        assert!(refuse_nul(&json!({"k\0": 1}), "query").is_err());
    }

    #[test]
    fn bodies_keep_their_types() {
        assert!(coerce("f", FieldType::Integer, false, &json!("5"), Source::Body).is_err());
        assert_eq!(
            coerce("f", FieldType::Integer, false, &json!(5), Source::Body).unwrap(),
            Typed::Int(5)
        );
        assert_eq!(number_to_json(10.0), json!(10));
        assert_eq!(number_to_json(1.5), json!(1.5));
    }
}
