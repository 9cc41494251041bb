//! Conversation files: an object a client uploaded to S3 with a presigned PUT and
//! then registered (its size and type checked with HeadObject). Messages send them
//! by `conversation_file_id`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0016_conversation_files"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn fk(col: &str, to: &str) -> ForeignKeyCreateStatement {
    let mut f = ForeignKey::create();
    f.from(a("conversation_files"), a(col))
        .to(a(to), a("id"))
        .on_delete(ForeignKeyAction::Cascade);
    f
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("conversation_files"))
                .col(big_pk_auto(a("id")))
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("conversation_id")))
                .col(big_integer_null(a("created_by_user_id")))
                .col(string_len(a("s3_key"), 1024))
                .col(string_len(a("s3_path"), 2048))
                .col(string_len(a("file_name"), 1024))
                .col(string(a("file_type")))
                .col(big_integer(a("file_size")))
                .col(string(a("file_category")))
                .col(timestamp_with_time_zone(a("created_at")))
                .col(timestamp_with_time_zone(a("updated_at")))
                .foreign_key(&mut fk("organization_id", "organizations"))
                .foreign_key(&mut fk("conversation_id", "conversations"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in [
            // One record per object.
            "CREATE UNIQUE INDEX conversation_files_key ON conversation_files (s3_key)",
            "CREATE INDEX conversation_files_conversation ON conversation_files (organization_id, conversation_id, id)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(a("conversation_files"))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
