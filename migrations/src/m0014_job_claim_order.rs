//! Pending jobs in the order a worker claims them (priority, `run_at`, id), so a
//! claim reads the first due rows of the index instead of sorting every due job:
//! with a backlog of 20,000 the claim had become the queue's bottleneck.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_job_claim_order"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX jobs_pending_order ON jobs (queue, priority DESC, run_at, id) \
                 WHERE status = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS jobs_pending_order")
            .await?;
        Ok(())
    }
}
