//! A change counter per organization for `conversations`, bumped by triggers in the
//! same transaction as every insert, update and delete of a conversation. Equal
//! counters in two snapshots mean the organization's conversations are the same in
//! both, which is what lets a deep page start from a remembered anchor (see
//! `inbox_gateway::feathers::anchors`).
//!
//! The counter of an organization is the sum of its rows' `v`. On PostgreSQL each
//! backend bumps its own slot (statement-level triggers, one upsert per statement and
//! organization), so concurrent writers do not queue on one row; SQLite has one writer
//! and one slot.

use crate::triggers;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_conversation_versions"
    }
}

const TABLE: &str = "conversation_versions";
const TRIGGERS: [&str; 3] = [
    "conversation_versions_insert",
    "conversation_versions_update",
    "conversation_versions_delete",
];

/// PostgreSQL: bumps the slot of this backend for every organization in `source`.
fn bump_organizations(source: &str) -> String {
    format!(
        "INSERT INTO {TABLE} (organization_id, slot, v) \
         SELECT DISTINCT organization_id, pg_backend_pid() % 16, 1 FROM ({source}) x ORDER BY 1 \
         ON CONFLICT (organization_id, slot) DO UPDATE SET v = {TABLE}.v + 1"
    )
}

/// Counts a change of `organization_id`'s conversations made with the triggers off
/// (a bulk load), so that no anchor read before it is trusted after it.
pub fn bump(organization_id: i64) -> String {
    format!(
        "INSERT INTO {TABLE} (organization_id, slot, v) VALUES ({organization_id}, 0, 1) \
         ON CONFLICT (organization_id, slot) DO UPDATE SET v = {TABLE}.v + 1"
    )
}

fn postgres() -> Vec<String> {
    let function = format!(
        "CREATE FUNCTION conversation_versions_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF TG_OP = 'INSERT' THEN {}; ELSIF TG_OP = 'DELETE' THEN {}; ELSE {}; END IF; RETURN NULL; END $$",
        bump_organizations("SELECT organization_id FROM new_rows"),
        bump_organizations("SELECT organization_id FROM old_rows"),
        bump_organizations(
            "SELECT organization_id FROM new_rows UNION SELECT organization_id FROM old_rows"
        ),
    );
    let [insert, update, delete] = TRIGGERS;
    vec![
        function,
        format!(
            "CREATE TRIGGER {insert} AFTER INSERT ON conversations REFERENCING NEW TABLE AS new_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION conversation_versions_bump()"
        ),
        format!(
            "CREATE TRIGGER {update} AFTER UPDATE ON conversations REFERENCING OLD TABLE AS old_rows \
             NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversation_versions_bump()"
        ),
        format!(
            "CREATE TRIGGER {delete} AFTER DELETE ON conversations REFERENCING OLD TABLE AS old_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION conversation_versions_bump()"
        ),
    ]
}

fn sqlite() -> Vec<String> {
    let bump = |alias: &str| {
        format!(
            "INSERT INTO {TABLE} (organization_id, slot, v) VALUES ({alias}.organization_id, 0, 1) \
             ON CONFLICT (organization_id, slot) DO UPDATE SET v = v + 1"
        )
    };
    let [insert, update, delete] = TRIGGERS;
    vec![
        format!(
            "CREATE TRIGGER {insert} AFTER INSERT ON conversations BEGIN {}; END",
            bump("NEW")
        ),
        format!(
            "CREATE TRIGGER {update} AFTER UPDATE ON conversations BEGIN {}; {}; END",
            bump("OLD"),
            bump("NEW")
        ),
        format!(
            "CREATE TRIGGER {delete} AFTER DELETE ON conversations BEGIN {}; END",
            bump("OLD")
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new(TABLE))
                .col(big_integer(Alias::new("organization_id")))
                .col(integer(Alias::new("slot")))
                .col(big_integer(Alias::new("v")))
                .primary_key(
                    Index::create()
                        .col(Alias::new("organization_id"))
                        .col(Alias::new("slot")),
                )
                .to_owned(),
        )
        .await?;
        triggers::install(m, postgres(), sqlite()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        triggers::remove(m, "conversations", &TRIGGERS, "conversation_versions_bump").await?;
        m.drop_table(
            Table::drop()
                .table(Alias::new(TABLE))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
