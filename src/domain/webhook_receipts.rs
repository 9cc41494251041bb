//! The webhook deliveries already taken, per channel account: by the provider's
//! delivery id and by its message id, so a redelivery (the same delivery again,
//! or the same message in another delivery) stores nothing. Claimed first in the
//! delivery's own transaction: of ten identical deliveries at once, one claims
//! and the others wait for it, then find the claim; a delivery that fails rolls
//! its claim back with everything else. The only SQL writing `webhook_deliveries`.

use crate::feathers::Result;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

const TABLE: &str = "webhook_deliveries";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// Claims each of `keys` for `account`; answers false (nothing to do) when any was
/// taken before. Keys are claimed in a fixed order, so two deliveries sharing some
/// wait for each other instead of deadlocking.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    account: i64,
    event: &str,
    keys: &[String],
) -> Result<bool> {
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    keys.dedup();
    let now = Utc::now();
    for key in keys {
        let mut q = Query::insert();
        q.into_table(c(TABLE))
            .columns(["channel_account_id", "delivery_id", "event", "received_at"].map(c))
            .values_panic([account.into(), key.clone().into(), event.into(), now.into()])
            .on_conflict(
                OnConflict::columns([c("channel_account_id"), c("delivery_id")])
                    .do_nothing()
                    .to_owned(),
            );
        if conn.execute(&q).await?.rows_affected() == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Forgets receipts older than `before` (AgentPhone stops redelivering after about
/// a day; message ids stay deduplicated by the messages themselves).
pub async fn prune(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64> {
    let mut q = Query::delete();
    q.from_table(c(TABLE))
        .and_where(Expr::col(c("received_at")).lt(before));
    Ok(db.execute(&q).await?.rows_affected())
}
