//! Contacts: their tags (the only SQL writing `contact_tags`), the rule that a
//! contact with conversations stays, and the conversations that embed a contact
//! (they change with it, so they record `patched`). The contact's own fields are
//! written by its schema-driven adapter, in the same unit of work.

use super::conversations;
use super::unit_of_work::UnitOfWork;
use crate::feathers::{FeathersError, Result};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Query};
use serde_json::json;
use std::collections::BTreeSet;

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// A contact's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactId(pub i64);

/// Replaces the contact's tags with `tags`, each of which must be a tag of `org`
/// (422 otherwise, the same for a missing and a foreign tag).
pub async fn set_tags(
    uow: &UnitOfWork,
    org: i64,
    contact: ContactId,
    tags: &BTreeSet<i64>,
) -> Result<()> {
    let conn = uow.conn().await?;
    if !tags.is_empty() {
        let mut q = Query::select();
        q.expr_as(Expr::cust("COUNT(*)"), c("n"))
            .from(c("tags"))
            .and_where(Expr::col(c("organization_id")).eq(org))
            .and_where(Expr::col(c("id")).is_in(tags.iter().copied()));
        let found: i64 = conn
            .query_one(&q)
            .await?
            .map(|r| r.try_get("", "n"))
            .transpose()?
            .unwrap_or(0);
        if found != tags.len() as i64 {
            return Err(FeathersError::unprocessable(
                "tag_ids names a tag that does not exist in this organization",
            )
            .with_data(json!({ "rule": "reference_in_organization", "field": "tag_ids" })));
        }
    }
    let mut delete = Query::delete();
    delete
        .from_table(c("contact_tags"))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("contact_id")).eq(contact.0));
    conn.execute(&delete).await?;
    if !tags.is_empty() {
        let mut insert = Query::insert();
        insert
            .into_table(c("contact_tags"))
            .columns(["organization_id", "contact_id", "tag_id"].map(c));
        for tag in tags {
            insert.values_panic([org.into(), contact.0.into(), (*tag).into()]);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// Adds tag `tag` (a tag of `org`, else 422) to the contact, if it has it not
/// already; records the contact `patched` when it changed. Answers whether it did.
pub async fn add_tag(uow: &UnitOfWork, org: i64, contact: ContactId, tag: i64) -> Result<bool> {
    let conn = uow.conn().await?;
    crate::feathers::sql::check_reference(conn, ("tags", "organization_id", org), "tag_id", tag)
        .await?;
    let mut has = Query::select();
    has.column(c("tag_id"))
        .from(c("contact_tags"))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("contact_id")).eq(contact.0))
        .and_where(Expr::col(c("tag_id")).eq(tag));
    if conn.query_one(&has).await?.is_some() {
        return Ok(false);
    }
    let mut insert = Query::insert();
    insert
        .into_table(c("contact_tags"))
        .columns(["organization_id", "contact_id", "tag_id"].map(c))
        .values_panic([org.into(), contact.0.into(), tag.into()]);
    conn.execute(&insert).await?;
    uow.record_read(PATH, "patched", &[contact.0]).await?;
    Ok(true)
}

/// 409 when the contact still has live conversations: they go first. On PostgreSQL
/// the contact's row is locked first, so a conversation created for it meanwhile
/// (its foreign key check takes a share lock on the row) waits for this removal and
/// then fails, instead of being deleted with the contact unseen.
pub async fn check_removable(uow: &UnitOfWork, org: i64, contact: ContactId) -> Result<()> {
    let conn = uow.conn().await?;
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let mut lock = Query::select();
        lock.column(c("id"))
            .from(c("contacts"))
            .and_where(Expr::col(c("organization_id")).eq(org))
            .and_where(Expr::col(c("id")).eq(contact.0))
            .lock(LockType::Update);
        conn.query_one(&lock).await?;
    }
    if conversations::contact_has_any(conn, org, contact.0).await? {
        return Err(
            FeathersError::conflict("The contact has conversations; remove them first")
                .with_data(json!({ "rule": "contact_has_conversations", "contact_id": contact.0 })),
        );
    }
    Ok(())
}

/// After the contact's fields changed: its conversations, which embed it, record
/// `patched` (their copy of it is kept equal by migration m0007's triggers).
pub async fn conversations_follow(uow: &UnitOfWork, org: i64, contact: ContactId) -> Result<()> {
    let ids = conversations::contact_conversations(uow.conn().await?, org, contact.0, None).await?;
    uow.record_read(conversations::PATH, "patched", &ids).await
}

/// The path whose events contacts are.
pub const PATH: &str = "contacts";

/// The contact of `org` at `address` (a phone number, or an email handle for
/// iMessage), created with `name` when there is none; answers it and whether it is
/// new. Records no event: the caller records `created` once the contact is sure to
/// stay (it may be made in a savepoint that a concurrent first message wins).
pub async fn find_or_create_by_address<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    address: &str,
    name: Option<&str>,
) -> Result<(ContactId, bool)> {
    let column = if address.contains('@') {
        "email"
    } else {
        "phone"
    };
    let mut q = Query::select();
    q.column(c("id"))
        .from(c("contacts"))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c(column)).eq(address))
        .order_by(c("id"), sea_orm::sea_query::Order::Asc)
        .limit(1);
    if let Some(row) = conn.query_one(&q).await? {
        return Ok((ContactId(row.try_get("", "id")?), false));
    }
    let (first, last) = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => match n.split_once(' ') {
            Some((f, l)) => (Some(f.to_string()), Some(l.trim().to_string())),
            None => (Some(n.to_string()), None),
        },
        None => (None, None),
    };
    let now = chrono::Utc::now();
    let mut insert = Query::insert();
    insert
        .into_table(c("contacts"))
        .columns(
            [
                "organization_id",
                column,
                "first_name",
                "last_name",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            address.into(),
            first.into(),
            last.into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (conn.query_one(&insert).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    Ok((ContactId(row.try_get("", "id")?), true))
}
