//! `Idempotency-Key` on creates: the same key with the same body answers the first
//! result and stores nothing new; the same key with another body (or path) is a 409.
//! Keys live per caller (organization and user) for 24 hours, then are purged; the
//! saved answer is written in the same transaction as the work it describes.

use crate::feathers::{Around, Context, FeathersError, Next, Params, Result};
use async_trait::async_trait;
use chrono::{Duration, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long a key is remembered.
pub const KEY_TTL_HOURS: i64 = 24;

/// Whose keys: a key is only ever replayed to the user who sent it.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub organization_id: i64,
    pub user_id: i64,
}

impl Caller {
    pub fn of(params: &Params) -> Result<Self> {
        let principal = params.principal()?;
        Ok(Self {
            organization_id: principal.tenant_id,
            user_id: principal.user_id,
        })
    }
}

/// The app's around hook on every create: with an `Idempotency-Key`, a replay
/// answers the saved result (nothing runs, nothing is recorded), a new key runs the
/// create and saves its answer in the same unit of work. The key covers the path,
/// the query and the body. A create without a caller (a login) has no keys, and a
/// dry run neither uses nor answers one.
pub struct IdempotentCreate {
    /// Mixed into every request hash: a body may carry a password (`POST /users`), and
    /// an unkeyed hash of it stored in the table could be brute-forced offline.
    pub pepper: [u8; 32],
}

#[async_trait]
impl Around for IdempotentCreate {
    async fn run(&self, ctx: &mut Context, next: Next<'_>) -> Result<()> {
        let (Some(_), Some(key), false) = (&ctx.params.principal, key(&ctx.params)?, ctx.dry_run)
        else {
            return next.run(ctx).await;
        };
        let caller = Caller::of(&ctx.params)?;
        let request = format!("{}?{}", ctx.path, ctx.params.query);
        let hash = request_hash(
            &self.pepper,
            &request,
            ctx.data.as_ref().unwrap_or(&Value::Null),
        );
        if let Some(saved) = replay(ctx.params.txn().await?, caller, &key, &hash).await? {
            ctx.result = Some(saved);
            return Ok(());
        }
        next.run(ctx).await?;
        let result = ctx.result.as_ref().unwrap_or(&Value::Null);
        save(
            ctx.params.txn().await?,
            caller,
            &key,
            &ctx.path,
            &hash,
            result,
        )
        .await
    }
}

/// Deletes the keys older than their 24 hours; answers how many went.
pub async fn purge_expired<C: ConnectionTrait>(conn: &C) -> Result<u64> {
    let mut q = Query::delete();
    q.from_table(Alias::new("idempotency_keys")).and_where(
        Expr::col(Alias::new("created_at")).lt(Utc::now() - Duration::hours(KEY_TTL_HOURS)),
    );
    Ok(conn.execute(&q).await?.rows_affected())
}

/// Purges expired keys every `every`, for as long as the process runs.
pub async fn purge_periodically(db: sea_orm::DatabaseConnection, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match purge_expired(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
            Err(e) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "idempotency key purge failed")
            }
        }
    }
}

/// The request's key, if any: 1 to 255 visible ASCII characters (400 otherwise).
pub fn key(params: &Params) -> Result<Option<String>> {
    let Some(key) = params.header("idempotency-key") else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FeathersError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_string()))
}

/// A stable hash of the request, keyed by `pepper`: path and body with object keys sorted.
pub fn request_hash(pepper: &[u8], path: &str, body: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&map[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = format!("{path}\n");
    canonical(body, &mut text);
    let mut hasher = Sha256::new();
    hasher.update(pepper);
    hasher.update(text.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The saved answer for this key, or `None` to go ahead; 409 when the key was used
/// for a different request.
pub async fn replay<C: ConnectionTrait>(
    conn: &C,
    caller: Caller,
    key: &str,
    hash: &str,
) -> Result<Option<Value>> {
    let mut q = Query::select();
    q.columns([Alias::new("request_hash"), Alias::new("response_body")])
        .from(Alias::new("idempotency_keys"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(caller.organization_id))
        .and_where(Expr::col(Alias::new("user_id")).eq(caller.user_id))
        .and_where(Expr::col(Alias::new("key")).eq(key))
        .and_where(
            Expr::col(Alias::new("created_at")).gt(Utc::now() - Duration::hours(KEY_TTL_HOURS)),
        );
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    if row.try_get::<String>("", "request_hash")? != hash {
        return Err(FeathersError::conflict(
            "This Idempotency-Key was already used for a different request",
        ));
    }
    Ok(Some(row.try_get("", "response_body")?))
}

/// Saves the answer under the key (replacing an expired entry). A key saved meanwhile
/// by a concurrent request is a 409, and the caller's transaction rolls back.
pub async fn save<C: ConnectionTrait>(
    conn: &C,
    caller: Caller,
    key: &str,
    path: &str,
    hash: &str,
    body: &Value,
) -> Result<()> {
    let mut q = Query::insert();
    q.into_table(Alias::new("idempotency_keys"))
        .columns(
            [
                "organization_id",
                "user_id",
                "key",
                "path",
                "request_hash",
                "response_status",
                "response_body",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            caller.organization_id.into(),
            caller.user_id.into(),
            key.into(),
            path.into(),
            hash.into(),
            201i32.into(),
            body.clone().into(),
            Utc::now().into(),
        ])
        .on_conflict(
            OnConflict::columns(["organization_id", "user_id", "key"].map(Alias::new))
                .update_columns(
                    [
                        "path",
                        "request_hash",
                        "response_status",
                        "response_body",
                        "created_at",
                    ]
                    .map(Alias::new),
                )
                .action_and_where(
                    Expr::col((Alias::new("idempotency_keys"), Alias::new("created_at")))
                        .lt(Utc::now() - Duration::hours(KEY_TTL_HOURS)),
                )
                .to_owned(),
        );
    if conn.execute(&q).await?.rows_affected() == 0 {
        return Err(FeathersError::conflict(
            "A request with this Idempotency-Key is already being processed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::request_hash;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_but_not_values_or_path() {
        let h = |pepper: &[u8], path: &str, body| request_hash(pepper, path, &body);
        let a = h(b"p", "/x", json!({"a": 1, "b": {"c": [1, 2]}}));
        assert_eq!(a, h(b"p", "/x", json!({"b": {"c": [1, 2]}, "a": 1})));
        assert_ne!(a, h(b"p", "/x", json!({"a": 2, "b": {"c": [1, 2]}})));
        assert_ne!(a, h(b"p", "/y", json!({"a": 1, "b": {"c": [1, 2]}})));
        assert_ne!(
            a,
            h(b"q", "/x", json!({"a": 1, "b": {"c": [1, 2]}})),
            "keyed"
        );
    }
}
