//! `/users`: the people of an organization. Everyone reads; admins create, change
//! roles and remove; a user may change their own name and password.
//!
//! A password change or a role change revokes every token the user holds (their
//! token version moves on); a removed user's tokens name nobody (ids are not reused).

use crate::auth::{ADMIN, ROLES, SharedAuth, find_user, password, revoke_user_tokens};
use crate::domain::UnitOfWork;
use crate::feathers::sql::WriteMode;
use crate::feathers::{
    Direction, FeathersError, Field, FieldType, Id, Params, Result, Schema, Service, SqlOptions,
    SqlService,
};
use async_trait::async_trait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

pub fn schema() -> Schema {
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", FieldType::Integer).query(),
            Field::new("email", FieldType::String)
                .query()
                .like()
                .required()
                .max_len(254),
            Field::new("first_name", FieldType::String)
                .nullable()
                .query()
                .like()
                .write()
                .max_len(100),
            Field::new("last_name", FieldType::String)
                .nullable()
                .query()
                .like()
                .write()
                .max_len(100),
            Field::new("role", FieldType::Enum(ROLES)).query().write(),
            Field::new("password_hash", FieldType::String).hidden(),
            Field::new("created_at", FieldType::Timestamp).query(),
            Field::new("updated_at", FieldType::Timestamp).query(),
        ],
    )
}

pub fn sql(db: DatabaseConnection) -> SqlService {
    SqlService::new(
        db,
        SqlOptions::new("users", schema())
            .tenant("organization_id")
            .timestamps("created_at", "updated_at")
            .paginate(10, Some(50))
            .default_sort(vec![("id", Direction::Asc)]),
    )
}

/// The user as clients see it (no hash), for the authentication answer.
pub async fn public_user(db: &DatabaseConnection, id: i64) -> Result<Value> {
    sql(db.clone())
        .read_by_ids(db, &[id], None)
        .await?
        .pop()
        .ok_or_else(|| FeathersError::no_record(id))
}

/// Users; every change clears the authentication cache (a role or a user may be gone).
pub struct UsersService(pub SqlService, pub SharedAuth);

const MIN_PASSWORD: usize = 8;

/// Takes `password` out of the body and hashes it off the HTTP workers (400 if too short).
async fn take_password(data: &mut Value) -> Result<Option<String>> {
    let Some(obj) = data.as_object_mut() else {
        return Ok(None);
    };
    let Some(value) = obj.shift_remove("password") else {
        return Ok(None);
    };
    let pass = value
        .as_str()
        .ok_or_else(|| FeathersError::invalid("password", "must be a string"))?;
    if pass.chars().count() < MIN_PASSWORD {
        return Err(FeathersError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        ));
    }
    password::hash_async(pass.to_string())
        .await
        .map(Some)
        .map_err(|e| FeathersError::general(e))
}

fn lowercase_email(data: &mut Value) {
    if let Some(email) = data
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
    {
        data["email"] = json!(email);
    }
}

#[async_trait]
impl Service for UsersService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
    async fn create(&self, mut data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let hash = take_password(&mut data)
            .await?
            .ok_or_else(|| FeathersError::invalid("password", "is required"))?;
        lowercase_email(&mut data);
        let email = data
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !email.contains('@') {
            return Err(FeathersError::invalid("email", "must be an email address"));
        }
        let mut fields = self.0.validate_data(&data, WriteMode::Create, params)?;
        let role_given = fields.iter().any(|(f, _)| f.name == "role");
        let role_field = self.0.schema().field("role").expect("role field");
        if !role_given {
            fields.push((
                role_field,
                crate::feathers::Typed::Str(crate::auth::AGENT.into()),
            ));
        }
        let txn = params.txn().await?;
        let id = self
            .0
            .insert(txn, &fields, &[("password_hash", hash.into())], params)
            .await?;
        self.0._get(txn, &id.to_string(), params).await
    }
    async fn patch(&self, id: Option<&Id>, mut data: Value, params: &Params) -> Result<Value> {
        let principal = params.principal()?;
        let own = id.is_some_and(|id| id.trim() == principal.user_id.to_string());
        if principal.role != ADMIN && (!own || data.get("role").is_some()) {
            return Err(FeathersError::forbidden(
                "Only an admin may change other users or roles",
            ));
        }
        let Some(id) = id else {
            return Err(FeathersError::method_not_allowed(
                "Can not patch multiple entries",
            ));
        };
        let hash = take_password(&mut data).await?;
        let txn = params.txn().await?;
        if data.get("role").is_some() {
            lock_admins(txn, principal.tenant_id).await?;
        }
        // The role before, when the patch names one: a change revokes the user's tokens.
        let user_id = crate::feathers::sql::parse_id(id)?;
        let new_role = data.get("role").cloned();
        let role_before = match new_role {
            Some(_) => find_user(txn, Some(user_id), None)
                .await?
                .filter(|u| u.organization_id == principal.tenant_id)
                .map(|u| u.role),
            None => None,
        };
        let mut result = self
            .0
            ._patch(txn, Some(id), data, params, WriteMode::Patch)
            .await?;
        let role_changed = matches!((&role_before, &new_role),
            (Some(before), Some(new)) if new != before.as_str());
        if role_changed {
            require_an_admin(txn, principal.tenant_id).await?;
        }
        if hash.is_some() || role_changed {
            revoke_user_tokens(txn, user_id).await?;
        }
        if let Some(hash) = hash {
            result = self
                .0
                .update_where(
                    txn,
                    self.0.scope(params)?.add(id_eq(id)?),
                    &[],
                    &[("password_hash", hash.into())],
                    None,
                )
                .await?
                .pop()
                .ok_or_else(|| FeathersError::no_record(id))?;
        }
        let auth = self.1.clone();
        UnitOfWork::of(params)?.after_commit(move || auth.cache.clear());
        Ok(result)
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let principal = params.principal()?;
        let txn = params.txn().await?;
        lock_admins(txn, principal.tenant_id).await?;
        let removed = self.0._remove(txn, id, params).await?;
        require_an_admin(txn, principal.tenant_id).await?;
        let auth = self.1.clone();
        UnitOfWork::of(params)?.after_commit(move || auth.cache.clear());
        Ok(removed)
    }
}

/// Locks the organization's admins (PostgreSQL) so that two changes that each leave
/// one admin cannot both pass [`require_an_admin`]: the second waits and sees the first.
async fn lock_admins<C: ConnectionTrait>(conn: &C, org: i64) -> Result<()> {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(()); // SQLite runs one write at a time
    }
    let mut q = Query::select();
    q.column(Alias::new("id"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("role")).eq(ADMIN))
        .lock(LockType::Update);
    conn.query_all(&q).await?;
    Ok(())
}

/// 409 when a demotion or a removal would leave the organization without an admin
/// (nobody could manage its users, keys or pipelines any more).
async fn require_an_admin<C: ConnectionTrait>(conn: &C, org: i64) -> Result<()> {
    let mut q = Query::select();
    q.column(Alias::new("id"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("role")).eq(ADMIN))
        .limit(1);
    if conn.query_one(&q).await?.is_none() {
        return Err(FeathersError::conflict(
            "An organization keeps at least one admin: make another user admin first",
        )
        .with_data(json!({ "rule": "last_admin" })));
    }
    Ok(())
}

fn id_eq(id: &Id) -> Result<sea_orm::sea_query::SimpleExpr> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait};
    Ok(Expr::col((Alias::new("users"), Alias::new("id"))).eq(crate::feathers::sql::parse_id(id)?))
}
