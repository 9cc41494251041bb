//! Operator commands that run outside the HTTP API.

use crate::auth::{ADMIN, password};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

/// Creates an organization and its first admin; answers `(organization_id, user_id)`.
pub async fn create_admin(
    db: &DatabaseConnection,
    organization: &str,
    email: &str,
    pass: &str,
) -> Result<(i64, i64), String> {
    if organization.trim().is_empty() || !email.contains('@') || pass.chars().count() < 8 {
        return Err(
            "need an organization name, an email address and a password of at least 8 characters"
                .into(),
        );
    }
    let hash = password::hash_async(pass.to_string()).await?;
    let now = chrono::Utc::now();
    let txn = db.begin().await.map_err(|e| e.to_string())?;
    let mut org = Query::insert();
    org.into_table(Alias::new("organizations"))
        .columns([Alias::new("name"), Alias::new("created_at")])
        .values_panic([organization.trim().into(), now.into()])
        .returning_col(Alias::new("id"));
    let org_id: i64 = txn
        .query_one(&org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no organization id")?
        .try_get("", "id")
        .map_err(|e| e.to_string())?;
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
                format!("a user with email {email} already exists")
            }
            _ => e.to_string(),
        })?
        .ok_or("no user id")?
        .try_get("", "id")
        .map_err(|e| e.to_string())?;
    txn.commit().await.map_err(|e| e.to_string())?;
    Ok((org_id, user_id))
}
