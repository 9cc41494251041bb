//! Access tokens can be revoked, in the database so that it holds on every instance:
//!
//! - `users.token_version` (0 at first): every token carries the version it was
//!   issued at (claim `ver`) and is refused once the user's version has moved on.
//!   A password change, a role change (and an operator) bump it, which revokes all
//!   of the user's tokens at once. A counter rather than a "valid after" time: `iat`
//!   has second resolution and instances' clocks differ, while a version compares
//!   exactly, and a login racing the change gets the version it read with the hash
//!   it verified.
//! - `revoked_tokens`: single tokens revoked by `DELETE /authentication`, by `jti`,
//!   kept until the token would have expired anyway (rows past `expires_at` are
//!   pruned on each revocation).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_token_revocation"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

const EXPIRY_INDEX: &str = "revoked_tokens_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(a("users"))
                .add_column(big_integer(a("token_version")).default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("revoked_tokens"))
                .col(string(a("jti")).primary_key())
                .col(big_integer(a("organization_id")))
                .col(big_integer(a("user_id")))
                .col(timestamp_with_time_zone(a("expires_at")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("revoked_tokens"), a("organization_id"))
                        .to(a("organizations"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(a("revoked_tokens"), a("user_id"))
                        .to(a("users"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(EXPIRY_INDEX)
                .table(a("revoked_tokens"))
                .col(a("expires_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(a("revoked_tokens")).to_owned())
            .await?;
        m.get_connection()
            .execute_unprepared("ALTER TABLE users DROP COLUMN token_version")
            .await?;
        Ok(())
    }
}
