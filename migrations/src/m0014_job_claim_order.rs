//! The jobs a worker claims, each kind in its own index in claim order: pending
//! ones by priority, `run_at` and id, running ones by the end of their lease. A
//! claim then reads the first rows of an index instead of sorting (or walking)
//! every pending job: with a backlog of 20,000 the claim had become the queue's
//! bottleneck.

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
        let db = m.get_connection();
        for sql in [
            "CREATE INDEX jobs_pending_order ON jobs (queue, priority DESC, run_at, id) \
             WHERE status = 'pending'",
            "CREATE INDEX jobs_lease_end ON jobs (queue, locked_until, id) WHERE status = 'running'",
            "DROP INDEX IF EXISTS jobs_claim",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for sql in [
            "CREATE INDEX jobs_claim ON jobs (queue, run_at) WHERE status IN ('pending', 'running')",
            "DROP INDEX IF EXISTS jobs_lease_end",
            "DROP INDEX IF EXISTS jobs_pending_order",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
