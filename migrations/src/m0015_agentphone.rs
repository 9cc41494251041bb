//! AgentPhone: channel accounts (settings, and secrets sealed at rest), the
//! AgentPhone threads each conversation is known by, the webhook deliveries
//! already taken (redeliveries store nothing), and a message's delivery attempts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0015_agentphone"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn fk(from: &str, col: &str, to: &str) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create();
    f.from(a(from), a(col))
        .to(a(to), a("id"))
        .on_delete(ForeignKeyAction::Cascade);
    f
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("channel_accounts"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(string(a("channel")))
                .col(string(a("provider")))
                .col(string(a("name")))
                .col(json_binary(a("settings")))
                // AES-256-GCM of the secrets' JSON, hex; never answered.
                .col(text(a("secrets_sealed")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .foreign_key(&mut fk(
                    "channel_accounts",
                    "organization_id",
                    "organizations",
                ))
                .to_owned(),
        )
        .await?;
        // Each key an AgentPhone thread is known by (`conv:` its conversation id,
        // `grp:` its group id, `pair:` our number and the participant) names one
        // conversation of ours.
        m.create_table(
            Table::create()
                .table(a("agentphone_threads"))
                .col(big_integer(a("channel_account_id")))
                .col(string(a("thread_key")))
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("conversation_id")))
                .primary_key(
                    Index::create()
                        .col(a("channel_account_id"))
                        .col(a("thread_key")),
                )
                .foreign_key(&mut fk(
                    "agentphone_threads",
                    "channel_account_id",
                    "channel_accounts",
                ))
                .foreign_key(&mut fk(
                    "agentphone_threads",
                    "conversation_id",
                    "conversations",
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("webhook_deliveries"))
                .col(big_integer(a("channel_account_id")))
                .col(string(a("delivery_id")))
                .col(string(a("event")))
                .col(timestamp_with_time_zone(a("received_at")))
                .primary_key(
                    Index::create()
                        .col(a("channel_account_id"))
                        .col(a("delivery_id")),
                )
                .foreign_key(&mut fk(
                    "webhook_deliveries",
                    "channel_account_id",
                    "channel_accounts",
                ))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            // One column an ALTER: SQLite takes no more.
            "ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE messages ADD COLUMN reply_parent_unresolved BOOLEAN",
            "CREATE INDEX channel_accounts_org ON channel_accounts (organization_id, channel, id)",
            "CREATE INDEX agentphone_threads_conversation ON agentphone_threads (conversation_id)",
            "CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at)",
            // Inbound messages find their contact by phone or handle.
            "CREATE INDEX contacts_phone ON contacts (organization_id, phone)",
            "CREATE INDEX contacts_email ON contacts (organization_id, email)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS contacts_email",
            "DROP INDEX IF EXISTS contacts_phone",
            "ALTER TABLE messages DROP COLUMN reply_parent_unresolved",
            "ALTER TABLE messages DROP COLUMN attempts",
        ] {
            db.execute_unprepared(sql).await?;
        }
        for table in [
            "webhook_deliveries",
            "agentphone_threads",
            "channel_accounts",
        ] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
