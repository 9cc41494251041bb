//! Every piece of SQL this layer writes as text rather than through sea-query's
//! builder, in one place to read and review: literal `LIMIT`/`OFFSET`, a built
//! statement used as a subquery, and the deep-page statements' templates. No value
//! is ever formatted into them: values stay bound; only numbers the code computed
//! (limits, offsets, placeholder positions) and identifiers from static schemas are.

use sea_orm::sea_query::Expr;
use sea_orm::{DbBackend, Statement};

/// Appends `LIMIT`/`OFFSET` as literals. As bound parameters they would make
/// PostgreSQL plan every execution anew: a generic plan must assume an unknown LIMIT
/// reads a tenth of the table, so the plan cache keeps re-planning (measured: planning
/// was a third of the database's time on a page query, and halved its throughput).
pub fn paged(mut statement: Statement, limit: Option<u64>, skip: u64) -> Statement {
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

/// `(statement)` as an expression, its values still bound: an `IN (SELECT ...)` of ids.
pub fn subquery(statement: Statement) -> Expr {
    Expr::cust_with_values(
        format!("({})", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    )
}

/// The bytes `columns` of a row of `table` hold as stored (text or JSON), summed.
pub fn stored_bytes(backend: DbBackend, table: &str, columns: &[&str]) -> Expr {
    let sizes: Vec<String> = columns
        .iter()
        .map(|column| match backend {
            DbBackend::Postgres => {
                format!(r#"COALESCE(octet_length("{table}"."{column}"::text), 0)"#)
            }
            _ => format!(r#"COALESCE(length(CAST("{table}"."{column}" AS BLOB)), 0)"#),
        })
        .collect();
    Expr::cust(sizes.join(" + "))
}

/// `SELECT SUM(column)` over the rows of `statement` (0 when there are none).
pub fn sum_of(statement: Statement, column: &str) -> Statement {
    Statement {
        sql: format!(
            "SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM ({}) AS summed",
            statement.sql
        ),
        ..statement
    }
}

/// The sum of a versions table's counters (`"table"."v"`), 0 when it has none.
pub fn version_sum(versions_table: &str) -> Expr {
    Expr::cust(format!(
        r#"CAST(COALESCE(SUM("{versions_table}"."v"), 0) AS BIGINT)"#
    ))
}

/// A built statement as an expression (its placeholders renumbered where it lands).
pub fn embed(statement: Statement) -> Expr {
    Expr::cust_with_values(
        statement.sql,
        statement.values.map(|v| v.0).unwrap_or_default(),
    )
}

/// `template` with each `{}` replaced by the next of `parts`.
pub fn compose(backend: DbBackend, template: &str, parts: Vec<Expr>) -> Expr {
    let mut sql = String::new();
    for (i, piece) in template.split("{}").enumerate() {
        if i > 0 {
            match backend {
                DbBackend::Postgres => sql.push_str(&format!("${i}")),
                _ => sql.push('?'),
            }
        }
        sql.push_str(piece);
    }
    Expr::cust_with_exprs(sql, parts)
}
