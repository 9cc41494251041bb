//! `searchTerm` on PostgreSQL: a trigram index over the text a conversation
//! search matches (contact name, email and phone), so `LIKE '%term%'` does not
//! scan every contact. SQLite keeps the plain scan.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_contact_search"
    }
}

/// The searchable text of a contact; the query must use this same expression.
pub const SEARCH_TEXT: &str = "LOWER(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '') || ' ' || \
     COALESCE(email, '') || ' ' || COALESCE(phone, ''))";

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
            "CREATE INDEX IF NOT EXISTS contacts_search_trgm ON contacts USING gin (({SEARCH_TEXT}) gin_trgm_ops)"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP INDEX IF EXISTS contacts_search_trgm")
                .await?;
        }
        Ok(())
    }
}
