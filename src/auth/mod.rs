//! Authentication (JWT and API keys), roles, and the principal every service is scoped by.

pub mod api_key;
pub mod cache;
pub mod jwt;
pub mod password;

use crate::feathers::rest::Authenticator;
use crate::feathers::{FeathersError, Id, Params, Principal, Result, Service};
use async_trait::async_trait;
use cache::{Credential, PrincipalCache};
use jwt::JwtKeys;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub const ADMIN: &str = "admin";
pub const AGENT: &str = "agent";
/// The roles a user can have.
pub const ROLES: &[&str] = &[ADMIN, AGENT];

/// A user as authentication needs it.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
}

/// Loads a user by id or by email.
pub async fn find_user<C: ConnectionTrait>(
    db: &C,
    by_id: Option<i64>,
    by_email: Option<&str>,
) -> Result<Option<UserRow>> {
    let mut q = Query::select();
    q.columns(["id", "organization_id", "email", "role", "password_hash"].map(Alias::new))
        .from(Alias::new("users"));
    if let Some(id) = by_id {
        q.and_where(Expr::col(Alias::new("id")).eq(id));
    }
    if let Some(email) = by_email {
        q.and_where(Expr::col(Alias::new("email")).eq(email.to_lowercase()));
    }
    let Some(row) = db.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some(UserRow {
        id: row.try_get("", "id")?,
        organization_id: row.try_get("", "organization_id")?,
        email: row.try_get("", "email")?,
        role: row.try_get("", "role")?,
        password_hash: row.try_get("", "password_hash")?,
    }))
}

/// Reads the access token from `Authorization` as Feathers does: `Bearer`, `JWT` or bare.
pub fn bearer_token(headers: &HashMap<String, String>) -> Option<&str> {
    let value = headers.get("authorization")?.trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") =>
        {
            Some(token.trim())
        }
        Some(_) => None,
        None if !value.is_empty() => Some(value),
        None => None,
    }
}

/// The user id a token's `sub` carries.
fn user_id(claims: &jwt::Claims) -> Result<i64> {
    claims
        .sub
        .parse::<i64>()
        .map_err(|_| FeathersError::not_authenticated("jwt malformed"))
}

/// Resolves `Authorization` (JWT) or `x-api-key` to a principal.
pub struct AuthContext {
    pub db: DatabaseConnection,
    pub keys: JwtKeys,
    /// Callers resolved in the last few seconds.
    pub cache: PrincipalCache,
}

impl AuthContext {
    /// Verifies a token and loads its user, who must still exist.
    pub async fn user_for_token(&self, token: &str) -> Result<(UserRow, jwt::Claims)> {
        let claims = self.keys.verify(token)?;
        let user = self.user_for_claims(&claims).await?;
        Ok((user, claims))
    }

    /// The user a verified token names, in the token's organization.
    async fn user_for_claims(&self, claims: &jwt::Claims) -> Result<UserRow> {
        find_user(&self.db, Some(user_id(claims)?), None)
            .await?
            .filter(|u| u.organization_id == claims.organization_id)
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))
    }

    /// The principal for a verified token: its user must still exist, in the token's
    /// organization.
    async fn principal_for_token(&self, token: &str) -> Result<Principal> {
        let claims = self.keys.verify(token)?;
        let credential = Credential::User {
            id: user_id(&claims)?,
            organization_id: claims.organization_id,
        };
        if let Some(principal) = self.cache.get(&credential) {
            return Ok(principal);
        }
        let generation = self.cache.generation();
        let user = self.user_for_claims(&claims).await?;
        let principal = Principal {
            tenant_id: user.organization_id,
            user_id: user.id,
            role: user.role,
            strategy: "jwt".into(),
        };
        self.cache.insert(credential, principal.clone(), generation);
        Ok(principal)
    }

    async fn principal_for_api_key(&self, key: &str) -> Result<Principal> {
        let credential = Credential::ApiKey(api_key::hash(key));
        if let Some(principal) = self.cache.get(&credential) {
            return Ok(principal);
        }
        let generation = self.cache.generation();
        let principal = self.read_api_key(key).await?;
        self.cache.insert(credential, principal.clone(), generation);
        Ok(principal)
    }

    async fn read_api_key(&self, key: &str) -> Result<Principal> {
        let mut q = Query::select();
        q.expr_as(
            Expr::col((Alias::new("k"), Alias::new("id"))),
            Alias::new("key_id"),
        )
        .expr_as(
            Expr::col((Alias::new("u"), Alias::new("id"))),
            Alias::new("user_id"),
        )
        .expr_as(
            Expr::col((Alias::new("u"), Alias::new("organization_id"))),
            Alias::new("organization_id"),
        )
        .expr_as(
            Expr::col((Alias::new("u"), Alias::new("role"))),
            Alias::new("role"),
        )
        .from_as(Alias::new("api_keys"), Alias::new("k"))
        .inner_join(
            sea_orm::sea_query::TableRef::Table(
                Alias::new("users").into(),
                Some(Alias::new("u").into()),
            ),
            Expr::col((Alias::new("u"), Alias::new("id")))
                .equals((Alias::new("k"), Alias::new("user_id")))
                .and(
                    Expr::col((Alias::new("u"), Alias::new("organization_id")))
                        .equals((Alias::new("k"), Alias::new("organization_id"))),
                ),
        )
        .and_where(Expr::col((Alias::new("k"), Alias::new("key_hash"))).eq(api_key::hash(key)));
        let row = self
            .db
            .query_one(&q)
            .await?
            .ok_or_else(|| FeathersError::not_authenticated("Invalid API key"))?;
        let key_id: i64 = row.try_get("", "key_id")?;
        // Record use at most once a minute: a write per request would cost more than it tells.
        let now = chrono::Utc::now();
        let mut touch = Query::update();
        touch
            .table(Alias::new("api_keys"))
            .value(Alias::new("last_used_at"), now)
            .and_where(Expr::col(Alias::new("id")).eq(key_id))
            .and_where(
                Expr::col(Alias::new("last_used_at"))
                    .is_null()
                    .or(Expr::col(Alias::new("last_used_at"))
                        .lt(now - chrono::Duration::seconds(60))),
            );
        self.db.execute(&touch).await?;
        Ok(Principal {
            tenant_id: row.try_get("", "organization_id")?,
            user_id: row.try_get("", "user_id")?,
            role: row.try_get("", "role")?,
            strategy: "api-key".into(),
        })
    }
}

#[async_trait]
impl Authenticator for AuthContext {
    async fn authenticate(&self, headers: &HashMap<String, String>) -> Result<Option<Principal>> {
        if let Some(key) = headers.get("x-api-key") {
            return self.principal_for_api_key(key.trim()).await.map(Some);
        }
        let Some(token) = bearer_token(headers) else {
            return Ok(None);
        };
        self.principal_for_token(token).await.map(Some)
    }
}

/// 403 unless the caller is an admin.
pub fn require_admin(params: &Params) -> Result<&Principal> {
    let principal = params.principal()?;
    if principal.role != ADMIN {
        return Err(FeathersError::forbidden("Only an admin may do this"));
    }
    Ok(principal)
}

/// Wraps a service so that only admins may write (create, update, patch, remove).
pub struct AdminWrites<S>(pub S);

#[async_trait]
impl<S: Service> Service for AdminWrites<S> {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<crate::feathers::JsonText> {
        self.0.find_raw(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        require_admin(params)?;
        self.0.create(data, params).await
    }
    async fn update(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        require_admin(params)?;
        self.0.update(id, data, params).await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        require_admin(params)?;
        self.0.patch(id, data, params).await
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        require_admin(params)?;
        self.0.remove(id, params).await
    }
}

/// Shared handle used by services that authenticate.
pub type SharedAuth = Arc<AuthContext>;
