//! Installing and removing the triggers that keep a derived table (counts,
//! versions) in step with its source: one trigger function on PostgreSQL,
//! row-level triggers on SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Runs the backend's statements (a function and its triggers, or SQLite's triggers).
pub async fn install(
    m: &SchemaManager<'_>,
    postgres: Vec<String>,
    sqlite: Vec<String>,
) -> Result<(), DbErr> {
    let statements = match m.get_database_backend() {
        DatabaseBackend::Postgres => postgres,
        _ => sqlite,
    };
    for sql in statements {
        m.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// Drops `triggers` on `table` and, on PostgreSQL, their `function`.
pub async fn remove(
    m: &SchemaManager<'_>,
    table: &str,
    triggers: &[&str],
    function: &str,
) -> Result<(), DbErr> {
    let db = m.get_connection();
    let postgres = m.get_database_backend() == DatabaseBackend::Postgres;
    for trigger in triggers {
        let on = if postgres {
            format!(" ON {table}")
        } else {
            String::new()
        };
        db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger}{on}"))
            .await?;
    }
    if postgres {
        db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {function}()"))
            .await?;
    }
    Ok(())
}
