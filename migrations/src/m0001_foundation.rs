//! Organizations, users, API keys, contacts and tags, AI assistants, pipelines,
//! saved views, conversations with their maintained counts, and the
//! conformance fixture table.

use crate::conversation_counts;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_foundation"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

/// A table with a 64-bit id, its organization, and creation/update times.
fn tenant_table(name: &str) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(a(name))
        .col(big_pk_auto(a("id")))
        .col(big_integer(a("organization_id")))
        .col(timestamp_with_time_zone(a("created_at")))
        .col(timestamp_with_time_zone(a("updated_at")))
        .foreign_key(
            ForeignKey::create()
                .from(a(name), a("organization_id"))
                .to(a("organizations"), a("id"))
                .on_delete(ForeignKeyAction::Cascade),
        );
    t
}

fn fk(
    table: &str,
    column: &str,
    target: &str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create();
    f.from(a(table), a(column))
        .to(a(target), a("id"))
        .on_delete(on_delete);
    f
}

fn index(table: &str, name: &str, columns: &str, filter: &str) -> String {
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!(" WHERE {filter}")
    };
    format!("CREATE INDEX {name} ON {table} ({columns}){filter}")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("organizations"))
                .col(big_pk_auto(a("id")))
                .col(string(a("name")))
                .col(timestamp_with_time_zone(a("created_at")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("users")
                .col(string_uniq(a("email")))
                .col(string(a("password_hash")))
                .col(string_null(a("first_name")))
                .col(string_null(a("last_name")))
                .col(string(a("role")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("api_keys")
                .col(big_integer(a("user_id")))
                .col(string(a("name")))
                .col(string(a("key_prefix")))
                .col(string_uniq(a("key_hash")))
                .col(timestamp_with_time_zone_null(a("last_used_at")))
                .foreign_key(&mut fk(
                    "api_keys",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("contacts")
                .col(string_null(a("first_name")))
                .col(string_null(a("last_name")))
                .col(string_null(a("email")))
                .col(string_null(a("phone")))
                .col(string_null(a("phone_country_code")))
                .col(string_null(a("phone_country_iso")))
                .col(string_null(a("channel_whatsapp_wa_id")))
                .col(string_null(a("channel_instagram_user_id")))
                .col(string_null(a("avatar_url")))
                .col(big_integer_null(a("owned_by_user_id")))
                .col(big_integer_null(a("created_by_user_id")))
                .col(json_binary_null(a("custom_fields_by_name")))
                .foreign_key(&mut fk(
                    "contacts",
                    "owned_by_user_id",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "contacts",
                    "created_by_user_id",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(tenant_table("tags").col(string(a("name"))).to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table(a("contact_tags"))
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("contact_id")))
                .col(big_integer(a("tag_id")))
                .primary_key(Index::create().col(a("contact_id")).col(a("tag_id")))
                .foreign_key(&mut fk(
                    "contact_tags",
                    "contact_id",
                    "contacts",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "contact_tags",
                    "tag_id",
                    "tags",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("ai_assistants")
                .col(string(a("name")))
                .to_owned(),
        )
        .await?;
        m.create_table(tenant_table("pipelines").col(string(a("name"))).to_owned())
            .await?;
        m.create_table(
            tenant_table("pipeline_stages")
                .col(big_integer(a("pipeline_id")))
                .col(string(a("name")))
                .col(big_integer(a("position")))
                .foreign_key(&mut fk(
                    "pipeline_stages",
                    "pipeline_id",
                    "pipelines",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("conversation_views")
                .col(big_integer_null(a("owner_user_id")))
                .col(string(a("name")))
                .col(json_binary(a("query")))
                .foreign_key(&mut fk(
                    "conversation_views",
                    "owner_user_id",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            tenant_table("conversations")
                .col(big_integer(a("contact_id")))
                .col(string(a("channel")))
                .col(big_integer_null(a("channel_account_id")))
                .col(string_null(a("external_id")))
                .col(string(a("status")))
                .col(big_integer_null(a("assigned_user_id")))
                .col(big_integer_null(a("assigned_ai_assistant_id")))
                .col(big_integer_null(a("pipeline_id")))
                .col(big_integer_null(a("pipeline_stage_id")))
                .col(big_integer(a("unread_count")).default(0))
                .col(timestamp_with_time_zone_null(a("ai_context_cut")))
                .col(boolean(a("ai_auto_assignment_disabled")).default(false))
                .col(string_null(a("ai_auto_assignment_disabled_reason")))
                .col(boolean(a("blocked")).default(false))
                .col(timestamp_with_time_zone_null(a("waiting_since")))
                .col(timestamp_with_time_zone(a("last_interaction_at")))
                .col(text_null(a("last_message_preview")))
                .col(timestamp_with_time_zone_null(a("last_inbound_at")))
                .col(boolean(a("is_group")).default(false))
                .col(json_binary_null(a("participants")))
                .col(json_binary_null(a("metadata")))
                .col(timestamp_with_time_zone_null(a("deleted_at")))
                .foreign_key(&mut fk(
                    "conversations",
                    "contact_id",
                    "contacts",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "conversations",
                    "assigned_user_id",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "conversations",
                    "assigned_ai_assistant_id",
                    "ai_assistants",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "conversations",
                    "pipeline_id",
                    "pipelines",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "conversations",
                    "pipeline_stage_id",
                    "pipeline_stages",
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;

        let mut counts = Table::create();
        counts
            .table(a("conversation_counts"))
            .col(big_integer(a("organization_id")))
            .col(integer(a("grp")))
            .col(string(a("combo")))
            .col(integer(a("slot")))
            .col(string_null(a("status")))
            .col(string_null(a("channel")))
            .col(big_integer_null(a("assigned_user_id")))
            .col(big_integer_null(a("assigned_ai_assistant_id")))
            .col(big_integer_null(a("pipeline_id")))
            .col(big_integer_null(a("pipeline_stage_id")))
            .col(boolean_null(a("waiting")))
            .col(boolean_null(a("unread")))
            .col(big_integer(a("n")))
            .primary_key(
                Index::create()
                    .col(a("organization_id"))
                    .col(a("grp"))
                    .col(a("combo"))
                    .col(a("slot")),
            );
        m.create_table(counts).await?;

        m.create_table(
            Table::create()
                .table(a("people"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(string_null(a("name")))
                .col(double_null(a("age")))
                .col(boolean_null(a("created")))
                .to_owned(),
        )
        .await?;

        let live = "deleted_at IS NULL";
        let recency = "last_interaction_at DESC, id DESC";
        let mut statements = vec![
            index("users", "users_org", "organization_id, id", ""),
            index("api_keys", "api_keys_org", "organization_id, id", ""),
            index("contacts", "contacts_org", "organization_id, id", ""),
            index(
                "contacts",
                "contacts_org_email",
                "organization_id, email",
                "",
            ),
            index(
                "contacts",
                "contacts_org_phone",
                "organization_id, phone",
                "",
            ),
            index("tags", "tags_org", "organization_id, id", ""),
            index(
                "contact_tags",
                "contact_tags_org_tag",
                "organization_id, tag_id, contact_id",
                "",
            ),
            index(
                "ai_assistants",
                "ai_assistants_org",
                "organization_id, id",
                "",
            ),
            index("pipelines", "pipelines_org", "organization_id, id", ""),
            index(
                "pipeline_stages",
                "pipeline_stages_pipeline",
                "organization_id, pipeline_id, position",
                "",
            ),
            index(
                "conversation_views",
                "conversation_views_org",
                "organization_id, id",
                "",
            ),
            index("people", "people_org", "organization_id, id", ""),
            index(
                "conversations",
                "conv_org_recent",
                &format!("organization_id, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_status",
                &format!("organization_id, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_user",
                &format!("organization_id, assigned_user_id, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_ai",
                &format!("organization_id, assigned_ai_assistant_id, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_channel",
                &format!("organization_id, channel, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_pipeline",
                &format!("organization_id, pipeline_id, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_stage",
                &format!("organization_id, pipeline_stage_id, status, {recency}"),
                live,
            ),
            index(
                "conversations",
                "conv_org_contact",
                "organization_id, contact_id",
                live,
            ),
            index(
                "conversations",
                "conv_org_created",
                "organization_id, created_at, id",
                live,
            ),
            index(
                "conversations",
                "conv_org_waiting",
                &format!("organization_id, status, {recency}"),
                &format!("{live} AND waiting_since IS NOT NULL"),
            ),
            index(
                "conversations",
                "conv_org_unread",
                &format!("organization_id, status, {recency}"),
                &format!("{live} AND unread_count > 0"),
            ),
        ];
        statements.extend(match m.get_database_backend() {
            DatabaseBackend::Postgres => conversation_counts::postgres_triggers(),
            _ => conversation_counts::sqlite_triggers(),
        });
        let db = m.get_connection();
        for sql in statements {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "people",
            "conversation_counts",
            "conversations",
            "conversation_views",
            "pipeline_stages",
            "pipelines",
            "ai_assistants",
            "contact_tags",
            "tags",
            "contacts",
            "api_keys",
            "users",
            "organizations",
        ] {
            m.drop_table(Table::drop().table(a(table)).if_exists().to_owned())
                .await?;
        }
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS conversation_counts_apply()")
                .await?;
        }
        Ok(())
    }
}
