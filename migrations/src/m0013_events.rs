//! The event outbox: one row per record a write created, updated, patched or
//! removed, written in the write's own transaction. `seq` comes from the one row of
//! `event_counter`, incremented in that transaction just before it commits: the row
//! lock orders writers, so `seq` order is commit order (a `bigserial` is assigned at
//! insert, and a reader could see 101 before 100 commits and skip 100 for ever).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_events"
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
                .table(a("events"))
                .col(big_integer(a("seq")).primary_key())
                .col(big_integer(a("organization_id")))
                .col(string(a("path")))
                .col(string(a("event")))
                .col(json_binary(a("data")))
                // {"type": "user" | "api-key" | "automation" | "system" | "provider", "id"?}
                .col(json_binary(a("actor")))
                .col(timestamp_with_time_zone(a("created_at")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("events"), a("organization_id"))
                        .to(a("organizations"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("event_counter"))
                .col(integer(a("id")).primary_key())
                .col(big_integer(a("seq")))
                // The last seq pruned: a cursor before it has missed events (a reset).
                .col(big_integer(a("pruned_through")).default(0))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            "INSERT INTO event_counter (id, seq, pruned_through) VALUES (1, 0, 0)",
            // A stream's replay: its organization's events after a seq.
            "CREATE INDEX events_org_seq ON events (organization_id, seq)",
            "CREATE INDEX events_created ON events (created_at)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["event_counter", "events"] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
