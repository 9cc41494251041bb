//! Which conversation of ours a provider's thread is: AgentPhone names one by its
//! conversation id, its group id, or our number and the participant, and any of
//! these may be all a webhook or an import carries. Each key names one
//! conversation per channel account (the primary key makes a race of two first
//! messages create one conversation). The only SQL writing `agentphone_threads`.

use crate::feathers::Result;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};

const TABLE: &str = "agentphone_threads";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// The keys a thread is known by, from what is known of it.
pub fn keys(
    conversation_id: Option<&str>,
    group_id: Option<&str>,
    number: Option<&str>,
    participant: Option<&str>,
) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(id) = conversation_id.filter(|s| !s.is_empty()) {
        keys.push(format!("conv:{id}"));
    }
    if let Some(id) = group_id.filter(|s| !s.is_empty()) {
        keys.push(format!("grp:{id}"));
    } else if let (Some(n), Some(p)) = (number, participant)
        && !n.is_empty()
        && !p.is_empty()
    {
        keys.push(format!("pair:{n}|{p}"));
    }
    keys
}

/// The conversation one of `keys` names on `account`, if any.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    account: i64,
    keys: &[String],
) -> Result<Option<i64>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut q = Query::select();
    q.column(c("conversation_id"))
        .from(c(TABLE))
        .and_where(Expr::col(c("channel_account_id")).eq(account))
        .and_where(Expr::col(c("thread_key")).is_in(keys.iter().cloned()))
        .limit(1);
    Ok(match conn.query_one(&q).await? {
        Some(r) => Some(r.try_get("", "conversation_id")?),
        None => None,
    })
}

/// Names `conversation` by each of `keys` not taken yet; answers how many were new.
pub async fn link<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    account: i64,
    conversation: i64,
    keys: &[String],
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "channel_account_id",
                "thread_key",
                "organization_id",
                "conversation_id",
            ]
            .map(c),
        )
        .on_conflict(
            OnConflict::columns([c("channel_account_id"), c("thread_key")])
                .do_nothing()
                .to_owned(),
        );
    for key in keys {
        q.values_panic([
            account.into(),
            key.clone().into(),
            org.into(),
            conversation.into(),
        ]);
    }
    Ok(conn.execute(&q).await?.rows_affected())
}
