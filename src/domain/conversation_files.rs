//! Conversation files: objects in the bucket registered to one conversation (their
//! size and type checked against the store before they are stored here). The only
//! SQL writing `conversation_files`.

use super::unit_of_work::UnitOfWork;
use crate::feathers::{FeathersError, Result};
use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use std::collections::HashSet;

const TABLE: &str = "conversation_files";
pub const PATH: &str = "conversation-files";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// A file to register.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub conversation_id: i64,
    pub created_by_user_id: Option<i64>,
    pub s3_key: String,
    pub s3_path: String,
    pub file_name: String,
    pub file_type: String,
    pub file_size: u64,
    pub file_category: String,
}

/// A stored file, as messages and removes need it.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: i64,
    pub organization_id: i64,
    pub conversation_id: i64,
    pub s3_key: String,
    pub s3_path: String,
    pub file_name: String,
    pub file_type: String,
    pub file_size: u64,
    pub file_category: String,
}

/// Stores a file of `org`; records `created`. A second registration of the same
/// key is a 409.
pub async fn create(uow: &UnitOfWork, org: i64, new: &NewFile) -> Result<i64> {
    let conn = uow.conn().await?;
    if load_by_key(conn, &new.s3_key).await?.is_some() {
        return Err(
            FeathersError::conflict("This object is already registered").with_data(
                serde_json::json!({ "rule": "file_registered_once", "s3_key": new.s3_key }),
            ),
        );
    }
    let now = Utc::now();
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "conversation_id",
                "created_by_user_id",
                "s3_key",
                "s3_path",
                "file_name",
                "file_type",
                "file_size",
                "file_category",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            new.conversation_id.into(),
            new.created_by_user_id.into(),
            new.s3_key.clone().into(),
            new.s3_path.clone().into(),
            new.file_name.clone().into(),
            new.file_type.clone().into(),
            (new.file_size as i64).into(),
            new.file_category.clone().into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (conn.query_one(&q).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    let id: i64 = row.try_get("", "id")?;
    uow.record_read(PATH, "created", &[id]).await?;
    Ok(id)
}

/// Removes file `id` of `org` (404 when it is not theirs); records `removed` and
/// answers the removed file.
pub async fn remove(uow: &UnitOfWork, org: i64, id: i64) -> Result<File> {
    let conn = uow.conn().await?;
    let file = load(conn, org, id)
        .await?
        .ok_or_else(|| FeathersError::no_record(id))?;
    uow.record_read(PATH, "removed", &[id]).await?;
    let mut q = Query::delete();
    q.from_table(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    conn.execute(&q).await?;
    Ok(file)
}

const COLUMNS: [&str; 9] = [
    "id",
    "organization_id",
    "conversation_id",
    "s3_key",
    "s3_path",
    "file_name",
    "file_type",
    "file_size",
    "file_category",
];

fn of_row(r: &sea_orm::QueryResult) -> Result<File> {
    Ok(File {
        id: r.try_get("", "id")?,
        organization_id: r.try_get("", "organization_id")?,
        conversation_id: r.try_get("", "conversation_id")?,
        s3_key: r.try_get("", "s3_key")?,
        s3_path: r.try_get("", "s3_path")?,
        file_name: r.try_get("", "file_name")?,
        file_type: r.try_get("", "file_type")?,
        file_size: u64::try_from(r.try_get::<i64>("", "file_size")?).unwrap_or(0),
        file_category: r.try_get("", "file_category")?,
    })
}

/// File `id` of `org`.
pub async fn load<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> Result<Option<File>> {
    let mut q = Query::select();
    q.columns(COLUMNS.map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id));
    conn.query_one(&q).await?.as_ref().map(of_row).transpose()
}

/// The file registered for `key`, whoever owns it.
pub async fn load_by_key<C: ConnectionTrait>(conn: &C, key: &str) -> Result<Option<File>> {
    let mut q = Query::select();
    q.columns(COLUMNS.map(c))
        .from(c(TABLE))
        .and_where(Expr::col(c("s3_key")).eq(key));
    conn.query_one(&q).await?.as_ref().map(of_row).transpose()
}

/// Which of `keys` a file record names.
pub async fn named_keys<C: ConnectionTrait>(conn: &C, keys: &[String]) -> Result<HashSet<String>> {
    let mut named = HashSet::new();
    for chunk in keys.chunks(500) {
        let mut q = Query::select();
        q.column(c("s3_key"))
            .from(c(TABLE))
            .and_where(Expr::col(c("s3_key")).is_in(chunk.iter().cloned()));
        for row in conn.query_all(&q).await? {
            named.insert(row.try_get::<String>("", "s3_key")?);
        }
    }
    Ok(named)
}
