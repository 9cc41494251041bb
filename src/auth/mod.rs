//! Authentication (JWT and API keys), roles, and the principal every service is scoped by.

pub mod api_key;
pub mod cache;
pub mod jwt;
pub mod password;
pub mod sealing;
pub mod throttle;

use crate::feathers::rest::Authenticator;
use crate::feathers::{FeathersError, Params, Principal, Result};
use async_trait::async_trait;
use cache::{Credential, PrincipalCache};
use jwt::JwtKeys;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::HashMap;
use std::sync::Arc;

pub const ADMIN: &str = "admin";
pub const AGENT: &str = "agent";
/// The roles a user can have.
pub const ROLES: &[&str] = &[ADMIN, AGENT];

/// How long a stream token is valid: long enough to open the stream with it.
pub const STREAM_TOKEN_SECS: i64 = 60;

/// A user as authentication needs it.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    /// Tokens issued at an older version are refused (see `jwt::Claims::ver`).
    pub token_version: i64,
}

const USER_COLUMNS: [&str; 6] = [
    "id",
    "organization_id",
    "email",
    "role",
    "password_hash",
    "token_version",
];

fn user_row(row: &sea_orm::QueryResult) -> Result<UserRow> {
    Ok(UserRow {
        id: row.try_get("", "id")?,
        organization_id: row.try_get("", "organization_id")?,
        email: row.try_get("", "email")?,
        role: row.try_get("", "role")?,
        password_hash: row.try_get("", "password_hash")?,
        token_version: row.try_get("", "token_version")?,
    })
}

/// Loads a user by id or by email.
pub async fn find_user<C: ConnectionTrait>(
    db: &C,
    by_id: Option<i64>,
    by_email: Option<&str>,
) -> Result<Option<UserRow>> {
    let mut q = Query::select();
    q.columns(USER_COLUMNS.map(Alias::new))
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
    user_row(&row).map(Some)
}

/// Revokes every token of `user_id` issued so far (bumps its token version); part of
/// the caller's transaction. The caller clears the principal cache once committed.
pub async fn revoke_user_tokens<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<()> {
    let mut q = Query::update();
    q.table(Alias::new("users"))
        .value(
            Alias::new("token_version"),
            Expr::col(Alias::new("token_version")).add(1),
        )
        .and_where(Expr::col(Alias::new("id")).eq(user_id));
    db.execute(&q).await?;
    Ok(())
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

fn token_credential(claims: &jwt::Claims) -> Result<Credential> {
    Ok(Credential::Token {
        jti: claims.jti.clone(),
        user_id: user_id(claims)?,
        organization_id: claims.organization_id,
    })
}

/// Resolves `Authorization` (JWT) or `x-api-key` to a principal.
pub struct AuthContext {
    pub db: DatabaseConnection,
    pub keys: JwtKeys,
    /// Callers resolved in the last few seconds.
    pub cache: PrincipalCache,
    /// Failed logins per email and client address.
    pub throttle: throttle::LoginThrottle,
}

impl AuthContext {
    /// Verifies a token and loads its user, who must still exist.
    pub async fn user_for_token(&self, token: &str) -> Result<(UserRow, jwt::Claims)> {
        let claims = self.keys.verify(token)?;
        let user = self.user_for_claims(&claims).await?;
        Ok((user, claims))
    }

    /// The user a verified token names, in the token's organization, if the token is
    /// not revoked: not logged out (`revoked_tokens`) and issued at the user's current
    /// token version. One query: the user, and the token's revocation if any.
    async fn user_for_claims(&self, claims: &jwt::Claims) -> Result<UserRow> {
        let (u, r) = (Alias::new("u"), Alias::new("r"));
        let mut q = Query::select();
        for column in USER_COLUMNS {
            q.column((u.clone(), Alias::new(column)));
        }
        q.expr_as(
            Expr::col((r.clone(), Alias::new("jti"))),
            Alias::new("revoked_jti"),
        )
        .from_as(Alias::new("users"), u.clone())
        .left_join(
            sea_orm::sea_query::TableRef::Table(
                Alias::new("revoked_tokens").into(),
                Some(r.clone().into()),
            ),
            Expr::col((r, Alias::new("jti"))).eq(claims.jti.as_str()),
        )
        .and_where(Expr::col((u.clone(), Alias::new("id"))).eq(user_id(claims)?))
        .and_where(Expr::col((u, Alias::new("organization_id"))).eq(claims.organization_id));
        let row = self
            .db
            .query_one(&q)
            .await?
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))?;
        let user = user_row(&row)?;
        let revoked: Option<String> = row.try_get("", "revoked_jti")?;
        if revoked.is_some() || claims.ver != user.token_version {
            return Err(FeathersError::not_authenticated(
                "The access token has been revoked",
            ));
        }
        Ok(user)
    }

    /// The principal for a verified token: its user must still exist, in the token's
    /// organization, and the token must not be revoked.
    async fn principal_for_token(&self, token: &str) -> Result<Principal> {
        let claims = self.keys.verify(token)?;
        let credential = token_credential(&claims)?;
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
        self.cache.insert(generation, credential, principal.clone());
        Ok(principal)
    }

    /// Revokes one verified token (logout): recorded until it expires, for every
    /// instance; this instance forgets it at once. Prunes revocations of tokens that
    /// have expired since.
    pub async fn revoke_token(&self, claims: &jwt::Claims) -> Result<()> {
        let now = chrono::Utc::now();
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("revoked_tokens"))
            .columns(["jti", "organization_id", "user_id", "expires_at"].map(Alias::new))
            .values_panic([
                claims.jti.clone().into(),
                claims.organization_id.into(),
                user_id(claims)?.into(),
                expires_at.into(),
            ])
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(Alias::new("jti"))
                    .do_nothing()
                    .to_owned(),
            );
        self.db.execute(&insert).await?;
        let mut prune = Query::delete();
        prune
            .from_table(Alias::new("revoked_tokens"))
            .and_where(Expr::col(Alias::new("expires_at")).lt(now));
        self.db.execute(&prune).await?;
        self.cache.remove(&token_credential(claims)?);
        Ok(())
    }

    /// A stream token for `principal` ([`jwt::STREAM_TOKEN_TYPE`], valid
    /// [`STREAM_TOKEN_SECS`]): browsers' EventSource cannot send headers, so the
    /// stream takes it in its URL, where a long-lived access token does not belong.
    pub async fn issue_stream_token(&self, principal: &Principal) -> Result<String> {
        let user = find_user(&self.db, Some(principal.user_id), None)
            .await?
            .filter(|u| u.organization_id == principal.tenant_id)
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))?;
        let (token, _) = self.keys.issue_typed(
            jwt::STREAM_TOKEN_TYPE,
            STREAM_TOKEN_SECS,
            user.id,
            user.organization_id,
            user.token_version,
        )?;
        Ok(token)
    }

    /// The principal a stream token names; refused like an access token when its
    /// user is gone or its tokens were revoked since.
    pub async fn principal_for_stream_token(&self, token: &str) -> Result<Principal> {
        let claims = self.keys.verify_typed(token, jwt::STREAM_TOKEN_TYPE)?;
        let user = self.user_for_claims(&claims).await?;
        Ok(Principal {
            tenant_id: user.organization_id,
            user_id: user.id,
            role: user.role,
            strategy: "stream-token".into(),
        })
    }

    async fn principal_for_api_key(&self, key: &str) -> Result<Principal> {
        let credential = Credential::ApiKey(api_key::hash(key));
        if let Some(principal) = self.cache.get(&credential) {
            return Ok(principal);
        }
        let generation = self.cache.generation();
        let principal = self.read_api_key(key).await?;
        self.cache.insert(generation, credential, principal.clone());
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

/// Only admins may call the methods this hook is declared for (403 for others).
pub struct AdminOnly;

#[async_trait]
impl crate::feathers::Hook for AdminOnly {
    async fn run(&self, ctx: &mut crate::feathers::Context) -> Result<()> {
        require_admin(&ctx.params).map(|_| ())
    }
}

/// [`AdminOnly`], as hooks are declared.
pub fn admin_only() -> Arc<dyn crate::feathers::Hook> {
    Arc::new(AdminOnly)
}

/// Shared handle used by services that authenticate.
pub type SharedAuth = Arc<AuthContext>;
