//! A contact has at most one live playground conversation: two first messages
//! sent at once on PostgreSQL created two. Duplicates left by that race are
//! soft-deleted (the oldest stays), then a unique index makes it impossible.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_one_playground_conversation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "UPDATE conversations SET deleted_at = updated_at \
             WHERE channel = 'playground' AND deleted_at IS NULL AND EXISTS \
             (SELECT 1 FROM conversations o WHERE o.organization_id = conversations.organization_id \
              AND o.contact_id = conversations.contact_id AND o.channel = 'playground' \
              AND o.deleted_at IS NULL AND o.id < conversations.id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX conversations_one_playground ON conversations (organization_id, contact_id) \
             WHERE channel = 'playground' AND deleted_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS conversations_one_playground")
            .await?;
        Ok(())
    }
}
