//! Durable jobs: work a change asks for (a delivery, a bulk batch, an automation
//! run), enqueued in the same transaction as the change, claimed by any instance
//! under a lease, retried with backoff, kept with their last error.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_jobs"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("jobs"))
                .col(big_pk_auto(a("id")))
                // Null for the system's own work; a tenant's jobs go with it.
                .col(big_integer_null(a("organization_id")))
                .col(string(a("queue")))
                .col(string(a("kind")))
                .col(json_binary(a("payload")))
                // pending, running, done, failed, cancelled
                .col(string(a("status")))
                .col(integer(a("priority")).default(0))
                .col(timestamp_with_time_zone(a("run_at")))
                .col(integer(a("attempts")).default(0))
                .col(integer(a("max_attempts")))
                .col(string_null(a("locked_by")))
                .col(timestamp_with_time_zone_null(a("locked_until")))
                .col(boolean(a("cancel_requested")).default(false))
                .col(text_null(a("last_error")))
                .col(string_null(a("dedupe_key")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .col(timestamp_with_time_zone_null(a("finished_at")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("jobs"), a("organization_id"))
                        .to(a("organizations"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            // What a worker claims: due pending jobs and running ones whose lease ran out.
            "CREATE INDEX jobs_claim ON jobs (queue, run_at) WHERE status IN ('pending', 'running')",
            "CREATE INDEX jobs_org ON jobs (organization_id, id)",
            // One job per dedupe key, ever (a message is delivered once).
            "CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(a("jobs")).if_exists().to_owned())
            .await
    }
}
