//! Idempotency keys are scoped by the caller (organization and user), not only by
//! the organization: another user of the organization sending the same key makes a
//! request of its own instead of receiving the first user's answer. The table only
//! caches answers for 24 hours, so it is rebuilt empty rather than migrated.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_idempotency_per_caller"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

/// The table of answers by key: per caller (`user_id` in the key) or, as before
/// this migration, per organization.
fn table(per_caller: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(a("idempotency_keys"))
        .col(big_integer(a("organization_id")));
    let mut key = Index::create();
    key.col(a("organization_id"));
    if per_caller {
        t.col(big_integer(a("user_id")));
        key.col(a("user_id"));
    }
    key.col(a("key"));
    t.col(string(a("key")))
        .col(string(a("path")))
        .col(string(a("request_hash")))
        .col(integer(a("response_status")))
        .col(json_binary(a("response_body")))
        .col(timestamp_with_time_zone(a("created_at")))
        .primary_key(&mut key)
        .foreign_key(
            ForeignKey::create()
                .from(a("idempotency_keys"), a("organization_id"))
                .to(a("organizations"), a("id"))
                .on_delete(ForeignKeyAction::Cascade),
        );
    t
}

/// Empty, in the given shape, with its purge index.
async fn rebuild(m: &SchemaManager<'_>, per_caller: bool) -> Result<(), DbErr> {
    m.drop_table(Table::drop().table(a("idempotency_keys")).to_owned())
        .await?;
    m.create_table(table(per_caller)).await?;
    m.get_connection()
        .execute_unprepared(
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
        )
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rebuild(m, true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rebuild(m, false).await
    }
}
