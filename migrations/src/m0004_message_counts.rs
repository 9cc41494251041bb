//! Live messages per conversation and message type, kept by triggers in the
//! same transaction as every insert, update and delete of `messages`, so a
//! message list's `total` is a sum of a few rows instead of a count of them all.

use crate::triggers;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_message_counts"
    }
}

const UPSERT: &str =
    "INSERT INTO message_counts (organization_id, conversation_id, message_type, n)";
const ON_CONFLICT: &str =
    "ON CONFLICT (conversation_id, message_type) DO UPDATE SET n = message_counts.n + excluded.n";

/// The net change of `source` (rows with a `d` of +1/-1) per conversation and type.
fn apply(source: &str) -> String {
    format!(
        "{UPSERT} SELECT organization_id, conversation_id, message_type, SUM(d) FROM ({source}) x \
         GROUP BY organization_id, conversation_id, message_type HAVING SUM(d) <> 0 \
         ORDER BY conversation_id, message_type {ON_CONFLICT}"
    )
}

fn live(table: &str, d: i32) -> String {
    format!(
        "SELECT organization_id, conversation_id, message_type, {d} AS d FROM {table} WHERE deleted_at IS NULL"
    )
}

/// PostgreSQL's trigger function; its upsert locks count rows in key order (see
/// `conversation_counts::postgres_function`).
pub fn postgres_function() -> String {
    format!(
        "CREATE OR REPLACE FUNCTION message_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF TG_OP = 'INSERT' THEN {}; ELSIF TG_OP = 'DELETE' THEN {}; ELSE {}; END IF; RETURN NULL; END $$",
        apply(&live("new_rows", 1)),
        apply(&live("old_rows", -1)),
        apply(&format!(
            "{} UNION ALL {}",
            live("new_rows", 1),
            live("old_rows", -1)
        )),
    )
}

fn postgres() -> Vec<String> {
    vec![
        postgres_function(),
        "CREATE TRIGGER message_counts_insert AFTER INSERT ON messages REFERENCING NEW TABLE AS new_rows \
         FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply()"
            .into(),
        "CREATE TRIGGER message_counts_update AFTER UPDATE ON messages REFERENCING OLD TABLE AS old_rows \
         NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply()"
            .into(),
        "CREATE TRIGGER message_counts_delete AFTER DELETE ON messages REFERENCING OLD TABLE AS old_rows \
         FOR EACH STATEMENT EXECUTE FUNCTION message_counts_apply()"
            .into(),
    ]
}

fn sqlite() -> Vec<String> {
    let row = |alias: &str, d: i32| {
        format!(
            "SELECT {alias}.organization_id AS organization_id, {alias}.conversation_id AS conversation_id, \
             {alias}.message_type AS message_type, {d} AS d WHERE {alias}.deleted_at IS NULL"
        )
    };
    vec![
        format!(
            "CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN {}; END",
            apply(&row("NEW", 1))
        ),
        format!(
            "CREATE TRIGGER message_counts_update AFTER UPDATE OF deleted_at, message_type, conversation_id ON messages \
             BEGIN {}; {}; END",
            apply(&row("OLD", -1)),
            apply(&row("NEW", 1))
        ),
        format!(
            "CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN {}; END",
            apply(&row("OLD", -1))
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("message_counts"))
                .col(big_integer(Alias::new("organization_id")))
                .col(big_integer(Alias::new("conversation_id")))
                .col(string(Alias::new("message_type")))
                .col(big_integer(Alias::new("n")))
                .primary_key(
                    Index::create()
                        .col(Alias::new("conversation_id"))
                        .col(Alias::new("message_type")),
                )
                .to_owned(),
        )
        .await?;
        // Messages stored before this migration are counted once, here.
        m.get_connection()
            .execute_unprepared(&apply(&live("messages", 1)))
            .await?;
        triggers::install(m, postgres(), sqlite()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let triggers = [
            "message_counts_insert",
            "message_counts_update",
            "message_counts_delete",
        ];
        triggers::remove(m, "messages", &triggers, "message_counts_apply").await?;
        m.drop_table(
            Table::drop()
                .table(Alias::new("message_counts"))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
