//! Messages of every channel in one table, canned replies, and the
//! `Idempotency-Key` store.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_messages"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn org_fk(table: &str) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create();
    f.from(a(table), a("organization_id"))
        .to(a("organizations"), a("id"))
        .on_delete(ForeignKeyAction::Cascade);
    f
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("messages"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("conversation_id")))
                .col(string(a("channel")))
                .col(string(a("direction")))
                .col(string(a("message_type")))
                .col(string(a("sender_type")))
                .col(big_integer_null(a("sender_id")))
                .col(text_null(a("text")))
                .col(json_binary_null(a("media")))
                .col(json_binary_null(a("template")))
                .col(json_binary_null(a("payload")))
                .col(big_integer_null(a("channel_account_id")))
                .col(string_null(a("external_id")))
                .col(big_integer_null(a("reply_to_message_id")))
                .col(string_null(a("send_style")))
                .col(string_null(a("transport")))
                .col(string_null(a("delivery_status")))
                .col(json_binary_null(a("error")))
                .col(string_null(a("idempotency_key")))
                .col(timestamp_with_time_zone_null(a("deleted_at")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .foreign_key(&mut org_fk("messages"))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("messages"), a("conversation_id"))
                        .to(a("conversations"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(a("predefined_messages"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(string(a("title")))
                .col(text(a("content")))
                .col(string(a("message_type")))
                .col(text_null(a("media_url")))
                .col(string_null(a("filename")))
                .col(string_null(a("mime_type")))
                .col(big_integer_null(a("created_by_user_id")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .foreign_key(&mut org_fk("predefined_messages"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(a("idempotency_keys"))
                .col(big_integer(a("organization_id")))
                .col(string(a("key")))
                .col(string(a("path")))
                .col(string(a("request_hash")))
                .col(integer(a("response_status")))
                .col(json_binary(a("response_body")))
                .col(timestamp_with_time_zone(a("created_at")))
                .primary_key(Index::create().col(a("organization_id")).col(a("key")))
                .foreign_key(&mut org_fk("idempotency_keys"))
                .to_owned(),
        )
        .await?;

        let db = m.get_connection();
        for sql in [
            // The message list of a conversation, newest first, and `$skip` pages over it.
            "CREATE INDEX messages_conversation ON messages (organization_id, conversation_id, created_at DESC, id DESC) \
             WHERE deleted_at IS NULL",
            "CREATE INDEX messages_org_created ON messages (organization_id, created_at)",
            // Provider message ids are unique per channel account (webhook dedupe).
            "CREATE UNIQUE INDEX messages_external ON messages (channel_account_id, external_id) \
             WHERE external_id IS NOT NULL",
            "CREATE INDEX predefined_messages_org_title ON predefined_messages (organization_id, title, id)",
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["idempotency_keys", "predefined_messages", "messages"] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
