//! References between tenant tables stay inside one organization, whatever the
//! code does: a row may only name a row of its own organization.
//!
//! PostgreSQL: every target gets a unique `(organization_id, id)` and every
//! reference a composite foreign key `(organization_id, column)` beside the
//! existing single-column one (`ON DELETE SET NULL (column)` keeps the
//! organization when the target goes). SQLite cannot add constraints to a table
//! or null one column of a composite key, so there a trigger per reference
//! refuses a row that names another organization's row, with the message of a
//! foreign key failure (the app answers both as 422).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_tenant_references"
    }
}

/// How a reference follows the removal of its target.
#[derive(Clone, Copy)]
enum OnDelete {
    Cascade,
    SetNull,
}

/// `(table, column, target table, on delete)`: every reference between tenant tables.
const REFERENCES: &[(&str, &str, &str, OnDelete)] = &[
    ("api_keys", "user_id", "users", OnDelete::Cascade),
    ("contacts", "owned_by_user_id", "users", OnDelete::SetNull),
    ("contacts", "created_by_user_id", "users", OnDelete::SetNull),
    ("contact_tags", "contact_id", "contacts", OnDelete::Cascade),
    ("contact_tags", "tag_id", "tags", OnDelete::Cascade),
    (
        "pipeline_stages",
        "pipeline_id",
        "pipelines",
        OnDelete::Cascade,
    ),
    (
        "conversation_views",
        "owner_user_id",
        "users",
        OnDelete::SetNull,
    ),
    ("conversations", "contact_id", "contacts", OnDelete::Cascade),
    (
        "conversations",
        "assigned_user_id",
        "users",
        OnDelete::SetNull,
    ),
    (
        "conversations",
        "assigned_ai_assistant_id",
        "ai_assistants",
        OnDelete::SetNull,
    ),
    (
        "conversations",
        "pipeline_id",
        "pipelines",
        OnDelete::SetNull,
    ),
    (
        "conversations",
        "pipeline_stage_id",
        "pipeline_stages",
        OnDelete::SetNull,
    ),
    (
        "messages",
        "conversation_id",
        "conversations",
        OnDelete::Cascade,
    ),
];

/// The name of the unique `(organization_id, id)` index of a target table; the
/// seed keeps these when it drops indexes for a bulk load (foreign keys need them).
pub fn org_key(table: &str) -> String {
    format!("{table}_org_key")
}

fn targets() -> Vec<&'static str> {
    let mut out: Vec<&str> = REFERENCES.iter().map(|r| r.2).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn postgres_up() -> Vec<String> {
    let mut out: Vec<String> = targets()
        .into_iter()
        .map(|t| {
            format!(
                "CREATE UNIQUE INDEX {} ON {t} (organization_id, id)",
                org_key(t)
            )
        })
        .collect();
    for (table, column, target, on_delete) in REFERENCES {
        let action = match on_delete {
            OnDelete::Cascade => "CASCADE".to_string(),
            OnDelete::SetNull => format!("SET NULL ({column})"),
        };
        out.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_org_fk \
             FOREIGN KEY (organization_id, {column}) REFERENCES {target} (organization_id, id) \
             ON DELETE {action}"
        ));
    }
    out
}

fn sqlite_trigger(table: &str, column: &str, target: &str, event: &str) -> String {
    let name = format!(
        "{table}_{column}_org_{}",
        event.split(' ').next().unwrap_or(event)
    );
    format!(
        "CREATE TRIGGER {name} BEFORE {event} ON {table} \
         WHEN NEW.{column} IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM {target} WHERE id = NEW.{column} AND organization_id = NEW.organization_id) \
         BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
    )
}

fn sqlite_up() -> Vec<String> {
    REFERENCES
        .iter()
        .flat_map(|(table, column, target, _)| {
            [
                sqlite_trigger(table, column, target, "INSERT"),
                sqlite_trigger(
                    table,
                    column,
                    target,
                    &format!("UPDATE OF {column}, organization_id"),
                ),
            ]
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let statements = match m.get_database_backend() {
            DatabaseBackend::Postgres => postgres_up(),
            _ => sqlite_up(),
        };
        for sql in statements {
            m.get_connection().execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let postgres = m.get_database_backend() == DatabaseBackend::Postgres;
        for (table, column, _, _) in REFERENCES {
            if postgres {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_{column}_org_fk"
                ))
                .await?;
            } else {
                for event in ["INSERT", "UPDATE"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS {table}_{column}_org_{event}"
                    ))
                    .await?;
                }
            }
        }
        if postgres {
            for t in targets() {
                db.execute_unprepared(&format!("DROP INDEX IF EXISTS {}", org_key(t)))
                    .await?;
            }
        }
        Ok(())
    }
}
