//! Result rows as JSON, straight from the driver. Each column is decoded once into a
//! [`Cell`] (borrowing PostgreSQL's binary values where it can), then either written
//! as JSON text (pages for REST: object keys escaped once per request, not per row;
//! numbers and timestamps formatted without intermediate strings) or built into a
//! `serde_json::Value` where a service needs one.

use super::error::FeathersError;
use super::schema::Embed;
use super::schema::{Field, FieldType, format_timestamp, number_to_json};
use chrono::{DateTime, Datelike, Timelike, Utc};
use sea_orm::{QueryResult, TryGetable};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::postgres::{PgRow, PgValueFormat, PgValueRef};
use sqlx::{Row as _, ValueRef};
use std::borrow::Cow;

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

    /// The record's own columns: the id and `fields`.
    fn own_width(&self) -> usize {
        1 + self.fields.len()
    }

    /// The type of own column `index` (0 is the id).
    fn own_type(&self, index: usize) -> FieldType {
        match index {
            0 => FieldType::Integer,
            i => self.fields[i - 1].ty,
        }
    }

    /// Every column's name, in the order rows hold them.
    fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let own = std::iter::once(self.id).chain(self.fields.iter().map(|f| f.name));
        own.chain(
            self.embeds
                .iter()
                .flat_map(|e| e.columns.iter().map(|(name, _)| *name)),
        )
    }
}

/// One decoded column value.
enum Cell<'r> {
    Null,
    Str(Cow<'r, str>),
    Int(i64),
    Bool(bool),
    Num(f64),
    Time(DateTime<Utc>),
    /// PostgreSQL's jsonb text, written as it is.
    Raw(&'r RawValue),
    Json(Value),
}

type CellResult<'r> = Result<Cell<'r>, FeathersError>;

/// PostgreSQL's epoch (2000-01-01T00:00:00Z) in Unix microseconds.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

fn cell<'r>(row: &'r QueryResult, index: usize, ty: FieldType) -> CellResult<'r> {
    if let Some(pg) = row.try_as_pg_row()
        && ty != FieldType::Number
    {
        return pg_cell(pg, index, ty);
    }
    fn get<T: TryGetable>(row: &QueryResult, index: usize) -> Result<Option<T>, FeathersError> {
        (row.try_get_by_index::<Option<T>>(index)).map_err(|e| column_error(index, e))
    }
    let cell = match ty {
        FieldType::String | FieldType::Enum(_) => {
            get::<String>(row, index)?.map(|s| Cell::Str(s.into()))
        }
        FieldType::Integer => get(row, index)?.map(Cell::Int),
        FieldType::Boolean => get(row, index)?.map(Cell::Bool),
        FieldType::Number => get(row, index)?.map(Cell::Num),
        FieldType::Timestamp => get(row, index)?.map(Cell::Time),
        FieldType::Json => get(row, index)?.map(Cell::Json),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

/// A PostgreSQL column, decoded from its binary value without a copy. The schema fixes
/// each column's type, so the driver's per-value type check is skipped (its integer
/// decoder reads any integer width).
fn pg_cell(row: &PgRow, index: usize, ty: FieldType) -> CellResult<'_> {
    let raw: PgValueRef = row.try_get_raw(index).map_err(|e| column_error(index, e))?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    fn decode<'r, T: sqlx::Decode<'r, sqlx::Postgres>>(
        raw: PgValueRef<'r>,
        index: usize,
    ) -> Result<T, FeathersError> {
        T::decode(raw).map_err(|e| column_error(index, e))
    }
    Ok(match ty {
        FieldType::String | FieldType::Enum(_) => Cell::Str(Cow::Borrowed(decode(raw, index)?)),
        FieldType::Integer => Cell::Int(decode(raw, index)?),
        FieldType::Boolean => Cell::Bool(decode(raw, index)?),
        FieldType::Number => Cell::Num(decode(raw, index)?),
        FieldType::Timestamp if raw.format() == PgValueFormat::Text => {
            Cell::Time(decode(raw, index)?)
        }
        // timestamptz's binary value: microseconds since PostgreSQL's epoch, in UTC.
        FieldType::Timestamp => {
            let micros: i64 = decode(raw, index)?;
            let unix = micros.checked_add(PG_EPOCH_UNIX_MICROS);
            let time = unix.and_then(DateTime::from_timestamp_micros);
            Cell::Time(time.ok_or_else(|| column_error(index, "timestamp out of range"))?)
        }
        FieldType::Json => Cell::Raw(decode(raw, index)?),
    })
}

/// Decoding or writing a column failed: say which.
fn column_error(index: usize, e: impl std::fmt::Display) -> FeathersError {
    FeathersError::general(format!("could not read a result row: column {index}: {e}"))
}

impl Cell<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Str(s) => write_str(out, s),
            Cell::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Num(f) => write_value(out, &number_to_json(*f)),
            Cell::Time(t) => write_timestamp(out, t),
            Cell::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Cell::Json(v) => write_value(out, v),
        }
    }

    fn into_value(self) -> Result<Value, FeathersError> {
        Ok(match self {
            Cell::Null => Value::Null,
            Cell::Str(s) => Value::String(s.into_owned()),
            Cell::Int(i) => Value::from(i),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Num(f) => number_to_json(f),
            Cell::Time(t) => Value::String(format_timestamp(&t)),
            Cell::Raw(raw) => serde_json::from_str(raw.get()).map_err(|e| {
                FeathersError::general(format!("could not read a json column: {e}"))
            })?,
            Cell::Json(v) => v,
        })
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// `2026-11-30T22:22:10.512Z`, as [`format_timestamp`] writes it (milliseconds,
/// truncated), without its general formatting machinery.
fn write_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return write_str(out, &format_timestamp(t));
    }
    let millis = t.timestamp_subsec_millis().min(999);
    let fields = [
        (year as u32, 4, b'-'),
        (t.month(), 2, b'-'),
        (t.day(), 2, b'T'),
        (t.hour(), 2, b':'),
        (t.minute(), 2, b':'),
        (t.second(), 2, b'.'),
        (millis, 3, b'Z'),
    ];
    out.push(b'"');
    for (n, width, after) in fields {
        let mut digits = [b'0'; 4];
        let mut n = n;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&digits[..width]);
        out.push(after);
    }
    out.push(b'"');
}

/// Writes rows of one shape as JSON text; object keys are escaped once, here.
pub struct RowWriter<'a> {
    shape: &'a RowShape<'a>,
    /// `"name":` for each column, in the order rows hold them.
    keys: Vec<Vec<u8>>,
    /// `"field":` for each embed.
    embed_keys: Vec<Vec<u8>>,
}

fn key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_str(&mut key, name);
    key.push(b':');
    key
}

impl<'a> RowWriter<'a> {
    pub fn new(shape: &'a RowShape<'a>) -> Self {
        RowWriter {
            shape,
            keys: shape.column_names().map(key).collect(),
            embed_keys: shape.embeds.iter().map(|e| key(e.field)).collect(),
        }
    }

    /// Appends one row as a JSON object.
    pub fn write_row(&self, out: &mut Vec<u8>, row: &QueryResult) -> Result<(), FeathersError> {
        let shape = self.shape;
        out.push(b'{');
        for index in 0..shape.own_width() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.keys[index]);
            cell(row, index, shape.own_type(index))?.write(out);
        }
        let mut first = shape.own_width();
        for (embed, embed_key) in shape.embeds.iter().zip(&self.embed_keys) {
            out.push(b',');
            out.extend_from_slice(embed_key);
            if embed_is_null(embed, row, first)? {
                out.extend_from_slice(b"null");
            } else {
                out.push(b'{');
                for (offset, (_, ty)) in embed.columns.iter().enumerate() {
                    if offset > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&self.keys[first + offset]);
                    cell(row, first + offset, *ty)?.write(out);
                }
                out.push(b'}');
            }
            first += embed.columns.len();
        }
        out.push(b'}');
        Ok(())
    }

    /// Appends the rows as a JSON array; [`answer_too_large`] as soon as `out` holds
    /// more than `max` bytes (so it never holds more than that and one row).
    pub fn write_rows(
        &self,
        out: &mut Vec<u8>,
        rows: &[QueryResult],
        max: usize,
    ) -> Result<(), FeathersError> {
        out.push(b'[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let before = out.len();
            self.write_row(out, row)?;
            if out.len() > max {
                return Err(answer_too_large(max));
            }
            if i == 0 {
                // Rows of one shape are about the same size: room for the rest at once
                // (within the bound).
                let rest = (out.len() - before + 16) * (rows.len() - 1);
                out.reserve(rest.min(max.saturating_sub(out.len())));
            }
        }
        out.push(b']');
        Ok(())
    }
}

/// An embed whose join found nothing (its `id` column is null) is written as `null`.
fn embed_is_null(embed: &Embed, row: &QueryResult, first: usize) -> Result<bool, FeathersError> {
    match embed.columns.iter().position(|(name, _)| *name == "id") {
        Some(at) => Ok(matches!(
            cell(row, first + at, FieldType::Integer)?,
            Cell::Null
        )),
        None => Ok(false),
    }
}

/// 400 for a find whose answer would hold more than `max` bytes of JSON.
pub fn answer_too_large(max: usize) -> FeathersError {
    FeathersError::bad_request(format!(
        "The answer would be larger than {max} bytes: ask for fewer records ($limit) or fewer fields ($select)"
    ))
    .with_data(serde_json::json!({ "maxAnswerBytes": max }))
}

/// A Feathers page as JSON text: `{"total":..,"limit":..,"skip":..,"data":[..]}`, at
/// most about `max` bytes (see [`RowWriter::write_rows`]).
pub fn write_page(
    out: &mut Vec<u8>,
    (total, limit, skip): (i64, u64, u64),
    rows: &RowWriter,
    data: &[QueryResult],
    max: usize,
) -> Result<(), FeathersError> {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"total\":");
    out.extend_from_slice(n.format(total).as_bytes());
    out.extend_from_slice(b",\"limit\":");
    out.extend_from_slice(n.format(limit).as_bytes());
    out.extend_from_slice(b",\"skip\":");
    out.extend_from_slice(n.format(skip).as_bytes());
    out.extend_from_slice(b",\"data\":");
    rows.write_rows(out, data, max)?;
    out.push(b'}');
    Ok(())
}

/// One row as a `Value`, for services that work on records.
pub fn row_value(shape: &RowShape, row: &QueryResult) -> Result<Value, FeathersError> {
    let mut record = Map::new();
    for index in 0..shape.own_width() {
        let name = if index == 0 {
            shape.id
        } else {
            shape.fields[index - 1].name
        };
        record.insert(
            name.into(),
            cell(row, index, shape.own_type(index))?.into_value()?,
        );
    }
    let mut first = shape.own_width();
    for embed in &shape.embeds {
        let value = if embed_is_null(embed, row, first)? {
            Value::Null
        } else {
            let mut fields = Map::new();
            for (offset, (name, ty)) in embed.columns.iter().enumerate() {
                fields.insert(
                    (*name).into(),
                    cell(row, first + offset, *ty)?.into_value()?,
                );
            }
            Value::Object(fields)
        };
        record.insert(embed.field.into(), value);
        first += embed.columns.len();
    }
    Ok(Value::Object(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_format_timestamp_writes_them() {
        let cases = [
            "2026-11-30T22:22:10.512Z",
            "1999-01-02T03:04:05.000Z",
            "0001-01-01T00:00:00.999Z",
            "1969-12-31T23:59:59.001Z",
        ];
        for text in cases {
            let t: DateTime<Utc> = text.parse().unwrap();
            let mut out = Vec::new();
            write_timestamp(&mut out, &t);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("\"{}\"", format_timestamp(&t))
            );
        }
        // Sub-millisecond digits are truncated, like chrono's millisecond format.
        let t: DateTime<Utc> = "2026-01-01T00:00:00.999999Z".parse().unwrap();
        let mut out = Vec::new();
        write_timestamp(&mut out, &t);
        assert_eq!(out, b"\"2026-01-01T00:00:00.999Z\"");
        assert_eq!(format_timestamp(&t), "2026-01-01T00:00:00.999Z");
    }

    #[test]
    fn timestamps_outside_four_digit_years_fall_back_to_chrono() {
        let t: DateTime<Utc> = "+10000-01-01T00:00:00Z".parse().unwrap();
        let mut out = Vec::new();
        write_timestamp(&mut out, &t);
        assert_eq!(out, format!("\"{}\"", format_timestamp(&t)).into_bytes());
    }

    #[test]
    fn cells_write_valid_json() {
        let cells = [
            (Cell::Null, "null"),
            (
                Cell::Str("a \"quoted\"\n line".into()),
                r#""a \"quoted\"\n line""#,
            ),
            (Cell::Int(-42), "-42"),
            (Cell::Bool(true), "true"),
            (Cell::Num(10.0), "10"),
            (Cell::Num(2.5), "2.5"),
        ];
        for (cell, text) in cells {
            let mut out = Vec::new();
            cell.write(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }
}
