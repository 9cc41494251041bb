//! Automations and their executions: an organization's automation definitions
//! (ordered steps, the webhook secret sealed at rest) and each run of one on a
//! conversation, with its plan, the result of every step and the step to run next.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0018_automations"
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
                .table(a("automations"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(string(a("name")))
                .col(boolean(a("enabled")))
                .col(string(a("trigger")))
                .col(json_binary(a("steps")))
                // AES-256-GCM of the webhook signing secret, hex; never answered.
                .col(text(a("secret_sealed")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .foreign_key(&mut fk("automations", "organization_id", "organizations"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("automation_executions"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("automation_id")))
                .col(big_integer(a("conversation_id")))
                .col(string(a("status")))
                .col(json_binary(a("initial_payload")))
                // The steps this run follows: the automation's at trigger time, plus
                // those its webhooks added.
                .col(json_binary(a("steps")))
                .col(json_binary(a("steps_result")))
                // The index of the first step not yet recorded.
                .col(integer(a("next_step")).default(0))
                .col(json_binary_null(a("error")))
                .col(json_binary(a("triggered_by")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .col(timestamp_with_time_zone_null(a("started_at")))
                .col(timestamp_with_time_zone_null(a("finished_at")))
                .foreign_key(&mut fk(
                    "automation_executions",
                    "organization_id",
                    "organizations",
                ))
                .foreign_key(&mut fk(
                    "automation_executions",
                    "automation_id",
                    "automations",
                ))
                .foreign_key(&mut fk(
                    "automation_executions",
                    "conversation_id",
                    "conversations",
                ))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            "CREATE INDEX automations_org ON automations (organization_id, id)",
            "CREATE INDEX automation_executions_org ON automation_executions (organization_id, id)",
            "CREATE INDEX automation_executions_automation ON automation_executions (organization_id, automation_id, id)",
            "CREATE INDEX automation_executions_conversation ON automation_executions (organization_id, conversation_id, id)",
            "CREATE INDEX automation_executions_status ON automation_executions (organization_id, status, id)",
            "CREATE INDEX automation_executions_created ON automation_executions (organization_id, created_at, id)",
            // The cascade from a removed automation or conversation.
            "CREATE INDEX automation_executions_automation_fk ON automation_executions (automation_id)",
            "CREATE INDEX automation_executions_conversation_fk ON automation_executions (conversation_id)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["automation_executions", "automations"] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
