//! `messageSearchTerm` on PostgreSQL: a trigram index over the lower-case text of
//! live messages, so `LIKE '%term%'` over a million messages reads the index's
//! matches instead of every message. SQLite keeps the plain scan.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0019_message_search"
    }
}

/// The searchable text of a message; the query must use this same expression.
pub const SEARCH_TEXT: &str = "LOWER(text)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS messages_search_trgm ON messages USING gin (({SEARCH_TEXT}) gin_trgm_ops) \
             WHERE deleted_at IS NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP INDEX IF EXISTS messages_search_trgm")
                .await?;
        }
        Ok(())
    }
}
