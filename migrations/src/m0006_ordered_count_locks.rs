//! Count upserts lock their rows in key order. Two inbound messages on PostgreSQL,
//! each updating its conversation (unread +1 moves it between count rows), could
//! otherwise lock two shared count rows in opposite orders and deadlock (seen under
//! concurrent ingest). Replaces the trigger functions of m0001 and m0004 with the
//! ordered ones; SQLite has a single writer and keeps its triggers.

use crate::{conversation_counts, m0004_message_counts};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_ordered_count_locks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(&conversation_counts::postgres_function())
            .await?;
        db.execute_unprepared(&m0004_message_counts::postgres_function())
            .await?;
        Ok(())
    }

    /// The unordered functions are not restored: they were the bug.
    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
