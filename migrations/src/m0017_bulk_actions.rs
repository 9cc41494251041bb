//! Bulk actions over conversations: the action (what, by whom, how far) and its
//! items, the fixed set of conversations it was resolved to when it started, each
//! `pending` until the batch that handles it commits (so a restart resumes where it
//! stopped and never changes a row twice).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0017_bulk_actions"
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
                .table(a("bulk_actions"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(string(a("action")))
                .col(json_binary(a("params")))
                .col(json_binary(a("target")))
                .col(string(a("status")))
                .col(big_integer(a("total")).default(0))
                .col(big_integer(a("processed_count")).default(0))
                .col(big_integer(a("failed_count")).default(0))
                .col(json_binary(a("errors")))
                .col(big_integer_null(a("created_by_user_id")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .col(timestamp_with_time_zone_null(a("finished_at")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("bulk_actions"), a("organization_id"))
                        .to(a("organizations"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("bulk_action_items"))
                .col(big_integer(a("bulk_action_id")))
                .col(big_integer(a("conversation_id")))
                .col(string(a("state")))
                .primary_key(
                    Index::create()
                        .col(a("bulk_action_id"))
                        .col(a("conversation_id")),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(a("bulk_action_items"), a("bulk_action_id"))
                        .to(a("bulk_actions"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            "CREATE INDEX bulk_actions_org ON bulk_actions (organization_id, created_at DESC, id DESC)",
            // The next batch: the first pending items in conversation order.
            "CREATE INDEX bulk_action_items_pending ON bulk_action_items (bulk_action_id, conversation_id) \
             WHERE state = 'pending'",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["bulk_action_items", "bulk_actions"] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
