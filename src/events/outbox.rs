//! The `events` table: written by a unit of work in its own transaction, read by
//! the dispatcher (everything after the last seq it saw) and by streams catching up
//! (one organization's events after a cursor).

use crate::feathers::{FeathersError, Result};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

/// The PostgreSQL channel a commit with events NOTIFYs (the payload is empty: the
/// table is the truth).
pub const CHANNEL: &str = "inbox_events";

/// An event a unit of work has collected and not yet written.
#[derive(Debug, Clone)]
pub struct Pending {
    pub path: String,
    /// `created`, `updated`, `patched` or `removed`.
    pub event: &'static str,
    pub data: Value,
}

/// An event as stored: what streams send.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub organization_id: i64,
    pub path: String,
    pub event: String,
    pub data: Value,
    pub actor: Value,
    pub created_at: DateTime<Utc>,
}

/// The columns of an event row, in the order `append` writes them.
const COLUMNS: [&str; 7] = [
    "seq",
    "organization_id",
    "path",
    "event",
    "data",
    "actor",
    "created_at",
];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

/// Writes `events` for `organization` in the caller's transaction, numbered after
/// every event committed before: the counter row is taken (and locked until the
/// commit) here, so call it last, just before the commit. Answers the last seq.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    organization: i64,
    actor: &Value,
    events: &[Pending],
) -> Result<Option<i64>> {
    if events.is_empty() {
        return Ok(None);
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        return append_postgres(conn, organization, actor, events).await;
    }
    let take = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE event_counter SET seq = seq + ? WHERE id = 1 RETURNING seq",
        [(events.len() as i64).into()],
    );
    let last: i64 = conn
        .query_one_raw(take)
        .await?
        .ok_or_else(|| FeathersError::general("the event counter row is missing"))?
        .try_get("", "seq")?;
    let first = last - events.len() as i64 + 1;
    let now = Utc::now();
    let mut q = Query::insert();
    q.into_table(a("events")).columns(COLUMNS.map(a));
    for (i, e) in events.iter().enumerate() {
        q.values_panic([
            (first + i as i64).into(),
            organization.into(),
            e.path.clone().into(),
            e.event.into(),
            e.data.clone().into(),
            actor.clone().into(),
            now.into(),
        ]);
    }
    conn.execute(&q).await?;
    Ok(Some(last))
}

/// PostgreSQL: the counter row is locked from its UPDATE to the COMMIT, and every
/// writer of every organization waits for it, so the time it is held is the write
/// path's ceiling. Hence one statement takes the numbers and inserts every event
/// (the events travel as one JSON array), and the NOTIFY (delivered at commit
/// anyway) is sent before it. SQL as text: a data-modifying CTE sea-query cannot
/// build.
const APPEND_POSTGRES: &str = "WITH taken AS (\
        UPDATE event_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq), \
    stored AS (\
        INSERT INTO events (seq, organization_id, path, event, data, actor, created_at) \
        SELECT taken.seq - $1 + e.ord, $2, e.path, e.event, e.data, $3, $4 \
        FROM taken, jsonb_to_recordset($5::jsonb) AS e(ord bigint, path text, event text, data jsonb) \
        RETURNING seq) \
    SELECT max(seq) AS seq FROM stored";

async fn append_postgres<C: ConnectionTrait>(
    conn: &C,
    organization: i64,
    actor: &Value,
    events: &[Pending],
) -> Result<Option<i64>> {
    let notify = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, '')",
        [CHANNEL.into()],
    );
    conn.execute_raw(notify).await?;
    let rows: Vec<Value> = (events.iter().enumerate())
        .map(|(i, e)| serde_json::json!({"ord": i + 1, "path": e.path, "event": e.event, "data": e.data}))
        .collect();
    let append = Statement::from_sql_and_values(
        DbBackend::Postgres,
        APPEND_POSTGRES,
        [
            (events.len() as i64).into(),
            organization.into(),
            actor.clone().into(),
            Utc::now().into(),
            Value::Array(rows).into(),
        ],
    );
    let last: Option<i64> = conn
        .query_one_raw(append)
        .await?
        .ok_or_else(|| FeathersError::general("the event counter row is missing"))?
        .try_get("", "seq")?;
    last.map(Some)
        .ok_or_else(|| FeathersError::general("the event counter row is missing"))
}

/// Up to `limit` events after `since`, in seq order: of one organization (and of
/// some paths) for a stream, of all for the dispatcher.
pub async fn after<C: ConnectionTrait>(
    conn: &C,
    organization: Option<i64>,
    paths: Option<&[String]>,
    since: i64,
    limit: u64,
) -> Result<Vec<Stored>> {
    let mut q = Query::select();
    q.columns(COLUMNS.map(a))
        .from(a("events"))
        .and_where(Expr::col(a("seq")).gt(since))
        .order_by(a("seq"), Order::Asc)
        .limit(limit);
    if let Some(org) = organization {
        q.and_where(Expr::col(a("organization_id")).eq(org));
    }
    if let Some(paths) = paths {
        q.and_where(Expr::col(a("path")).is_in(paths.iter().cloned()));
    }
    let rows = conn.query_all(&q).await?;
    rows.iter()
        .map(|row| {
            Ok(Stored {
                seq: row.try_get("", "seq")?,
                organization_id: row.try_get("", "organization_id")?,
                path: row.try_get("", "path")?,
                event: row.try_get("", "event")?,
                data: row.try_get("", "data")?,
                actor: row.try_get("", "actor")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// The last seq committed (0 before the first event).
pub async fn last_seq<C: ConnectionTrait>(conn: &C) -> Result<i64> {
    let mut q = Query::select();
    q.column(a("seq"))
        .from(a("event_counter"))
        .and_where(Expr::col(a("id")).eq(1));
    Ok(match conn.query_one(&q).await? {
        Some(row) => row.try_get("", "seq")?,
        None => 0,
    })
}

/// The last seq pruned (0 when nothing was): a cursor before it has lost events.
pub async fn pruned_through<C: ConnectionTrait>(conn: &C) -> Result<i64> {
    let mut q = Query::select();
    q.column(a("pruned_through"))
        .from(a("event_counter"))
        .and_where(Expr::col(a("id")).eq(1));
    Ok(match conn.query_one(&q).await? {
        Some(row) => row.try_get("", "pruned_through")?,
        None => 0,
    })
}

/// Deletes the events older than `before` and remembers the last seq that went;
/// answers how many went. Run it in a transaction of its own.
pub async fn prune<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64> {
    let mut last = Query::select();
    last.expr_as(Expr::col(a("seq")).max(), a("last"))
        .from(a("events"))
        .and_where(Expr::col(a("created_at")).lt(before));
    let Some(last) = conn
        .query_one(&last)
        .await?
        .and_then(|r| r.try_get::<Option<i64>>("", "last").ok().flatten())
    else {
        return Ok(0);
    };
    let mut q = Query::delete();
    q.from_table(a("events"))
        .and_where(Expr::col(a("seq")).lte(last));
    let gone = conn.execute(&q).await?.rows_affected();
    let mut mark = Query::update();
    mark.table(a("event_counter"))
        .value(a("pruned_through"), last)
        .and_where(Expr::col(a("id")).eq(1))
        .and_where(Expr::col(a("pruned_through")).lt(last));
    conn.execute(&mark).await?;
    Ok(gone)
}
