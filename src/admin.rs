//! Operator commands that run outside the HTTP API.

use crate::auth::{ADMIN, password};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

/// Why `create-admin` could not create the organization and its admin.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("need an organization name, an email address and a password of at least 8 characters")]
    Invalid,
    #[error("a user with email {0} already exists")]
    EmailTaken(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("the database refused the organization or its admin")]
    Database(#[from] DbErr),
}

/// Creates an organization and its first admin; answers `(organization_id, user_id)`.
pub async fn create_admin(
    db: &DatabaseConnection,
    organization: &str,
    email: &str,
    pass: &str,
) -> Result<(i64, i64), AdminError> {
    if organization.trim().is_empty() || !email.contains('@') || pass.chars().count() < 8 {
        return Err(AdminError::Invalid);
    }
    let hash = password::hash_async(pass.to_string())
        .await
        .map_err(AdminError::Hash)?;
    let now = chrono::Utc::now();
    let txn = db.begin().await?;
    let mut org = Query::insert();
    org.into_table(Alias::new("organizations"))
        .columns([Alias::new("name"), Alias::new("created_at")])
        .values_panic([organization.trim().into(), now.into()])
        .returning_col(Alias::new("id"));
    let org_id: i64 = txn
        .query_one(&org)
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?
        .try_get("", "id")?;
    let mut user = Query::insert();
    user.into_table(Alias::new("users"))
        .columns(
            [
                "organization_id",
                "email",
                "password_hash",
                "role",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            org_id.into(),
            email.trim().to_lowercase().into(),
            hash.into(),
            ADMIN.into(),
            now.into(),
            now.into(),
        ])
        .returning_col(Alias::new("id"));
    let user_id: i64 = txn
        .query_one(&user)
        .await
        .map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                AdminError::EmailTaken(email.to_string())
            }
            _ => AdminError::Database(e),
        })?
        .ok_or_else(|| DbErr::RecordNotInserted)?
        .try_get("", "id")?;
    txn.commit().await?;
    Ok((org_id, user_id))
}
