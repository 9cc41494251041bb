//! Result rows as JSON, straight from the driver: rows serialize themselves, so a page
//! is written as text in one pass (no `serde_json::Value` per field), and the same code
//! builds a `Value` where a service needs one (`serde_json::to_value`).

use super::schema::{Field, FieldType, format_timestamp, number_to_json};
use super::sql::Embed;
use chrono::{DateTime, Utc};
use sea_orm::{QueryResult, TryGetable};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

/// The shape of a selected row: the id column first, then `fields`, then each embed's
/// columns (rows are read by index in that order).
pub struct RowShape<'a> {
    pub id: &'static str,
    pub fields: Vec<&'a Field>,
    pub embeds: Vec<&'a Embed>,
}

impl RowShape<'_> {
    /// How many columns a row of this shape has.
    pub fn width(&self) -> usize {
        1 + self.fields.len() + self.embeds.iter().map(|e| e.columns.len()).sum::<usize>()
    }
}

/// One row, serialized as the record a client sees.
pub struct Row<'a> {
    pub shape: &'a RowShape<'a>,
    pub row: &'a QueryResult,
}

/// A list of rows, serialized as a JSON array.
pub struct Rows<'a> {
    pub shape: &'a RowShape<'a>,
    pub rows: &'a [QueryResult],
}

/// A Feathers page: `{total, limit, skip, data}`.
pub struct Page<'a> {
    pub total: i64,
    pub limit: u64,
    pub skip: u64,
    pub data: Rows<'a>,
}

/// One column, by index, as JSON of the field's type.
struct Column<'a> {
    row: &'a QueryResult,
    index: usize,
    ty: FieldType,
}

fn get<T: TryGetable, E: serde::ser::Error>(row: &QueryResult, index: usize) -> Result<T, E> {
    row.try_get_by_index::<T>(index)
        .map_err(|e| E::custom(format!("column {index}: {e}")))
}

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (row, i) = (self.row, self.index);
        if let Some(pg) = row.try_as_pg_row() {
            // The common types borrow PostgreSQL's binary values as they are.
            match self.ty {
                FieldType::String | FieldType::Enum(_) => {
                    return pg_get::<Option<&str>, _>(pg, i)?.serialize(s);
                }
                FieldType::Integer => return pg_get::<Option<i64>, _>(pg, i)?.serialize(s),
                FieldType::Boolean => return pg_get::<Option<bool>, _>(pg, i)?.serialize(s),
                FieldType::Timestamp => {
                    return pg_get::<Option<DateTime<Utc>>, _>(pg, i)?
                        .map(|t| format_timestamp(&t))
                        .serialize(s);
                }
                // jsonb: its text is written as it is, never parsed into a `Value`.
                FieldType::Json => {
                    return pg_get::<Option<&RawValue>, _>(pg, i)?.serialize(s);
                }
                FieldType::Number => {}
            }
        }
        match self.ty {
            FieldType::String | FieldType::Enum(_) => {
                get::<Option<String>, _>(row, i)?.serialize(s)
            }
            FieldType::Integer => get::<Option<i64>, _>(row, i)?.serialize(s),
            FieldType::Boolean => get::<Option<bool>, _>(row, i)?.serialize(s),
            FieldType::Number => get::<Option<f64>, _>(row, i)?
                .map(number_to_json)
                .serialize(s),
            FieldType::Timestamp => get::<Option<DateTime<Utc>>, _>(row, i)?
                .map(|t| format_timestamp(&t))
                .serialize(s),
            FieldType::Json => get::<Option<Value>, _>(row, i)?.serialize(s),
        }
    }
}

/// Column `index` of a PostgreSQL row, decoded without a copy. The schema fixes each
/// column's type, so the driver's per-value type check is skipped (its integer decoder
/// reads any integer width).
fn pg_get<'r, T: sqlx::Decode<'r, sqlx::Postgres>, E: serde::ser::Error>(
    row: &'r PgRow,
    index: usize,
) -> Result<T, E> {
    row.try_get_unchecked::<T, _>(index)
        .map_err(|e| E::custom(format!("column {index}: {e}")))
}

/// An embedded record's columns, or null when the join found none.
struct Embedded<'a> {
    embed: &'a Embed,
    row: &'a QueryResult,
    first: usize,
}

impl Serialize for Embedded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let columns = self.embed.columns;
        let id_at = columns.iter().position(|(name, _)| *name == "id");
        if let Some(at) = id_at
            && get::<Option<i64>, S::Error>(self.row, self.first + at)?.is_none()
        {
            return s.serialize_none();
        }
        let mut map = s.serialize_map(Some(columns.len()))?;
        for (offset, (name, ty)) in columns.iter().enumerate() {
            let column = Column {
                row: self.row,
                index: self.first + offset,
                ty: *ty,
            };
            map.serialize_entry(name, &column)?;
        }
        map.end()
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = self.shape;
        let row = self.row;
        let mut map = s.serialize_map(Some(1 + shape.fields.len() + shape.embeds.len()))?;
        let id = Column {
            row,
            index: 0,
            ty: FieldType::Integer,
        };
        map.serialize_entry(shape.id, &id)?;
        for (i, field) in shape.fields.iter().enumerate() {
            let column = Column {
                row,
                index: i + 1,
                ty: field.ty,
            };
            map.serialize_entry(field.name, &column)?;
        }
        let mut first = shape.fields.len() + 1;
        for embed in &shape.embeds {
            map.serialize_entry(embed.field, &Embedded { embed, row, first })?;
            first += embed.columns.len();
        }
        map.end()
    }
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows {
            seq.serialize_element(&Row {
                shape: self.shape,
                row,
            })?;
        }
        seq.end()
    }
}

impl Serialize for Page<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut page = s.serialize_struct("Page", 4)?;
        page.serialize_field("total", &self.total)?;
        page.serialize_field("limit", &self.limit)?;
        page.serialize_field("skip", &self.skip)?;
        page.serialize_field("data", &self.data)?;
        page.end()
    }
}

/// Serialization failed only if a column did not decode: say which.
pub fn column_error(e: impl std::fmt::Display) -> super::FeathersError {
    super::FeathersError::general(format!("could not read a result row: {e}"))
}
