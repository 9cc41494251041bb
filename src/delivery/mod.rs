//! Delivery: the jobs that hand stored outbound messages to their provider (today
//! AgentPhone, for SMS and iMessage). A request stores the message `queued` and its
//! job in one transaction and answers; a worker of the `delivery` queue sends it,
//! and every step shows on the message (`delivery_status`, `error`, `attempts`) and
//! as its `patched` event. A crash anywhere loses nothing and sends nothing twice:
//! an attempt whose outcome is unknown is looked for at AgentPhone before another.

pub mod limits;
pub mod react;
pub mod send;

use crate::agentphone::{Client, Http};
use crate::auth::sealing::Sealer;
use crate::domain::Units;
use crate::domain::channel_accounts::{self, Account, AccountId};
use crate::domain::conversations::Thread;
use crate::feathers::Result;
use crate::jobs::kinds::{AGENTPHONE_REACT, AGENTPHONE_SEND};
use crate::jobs::worker::{Handler, HandlerFuture};
use crate::jobs::{Job, JobError};
use limits::AccountLimits;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How this app reaches AgentPhone: one connection pool, the configured base URL,
/// and the key that opens the accounts' secrets. Deliveries and the services that
/// call AgentPhone directly (typing, backgrounds) share it.
pub struct AgentPhone {
    pub sealer: Arc<Sealer>,
    pub http: Http,
    /// `agentphone_base_url`; an account's `settings.base_url` overrides it.
    pub base_url: String,
}

impl AgentPhone {
    /// AgentPhone as `account` reaches it.
    pub fn client(&self, account: &Account) -> Client {
        let base = account
            .settings
            .base_url
            .as_deref()
            .unwrap_or(&self.base_url);
        self.http.account(base, &account.secrets.api_key)
    }

    /// The account a conversation goes through: its own, else the organization's first.
    pub async fn account_for<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: i64,
        thread: &Thread,
    ) -> Result<Option<Account>> {
        if let Some(id) = thread.channel_account_id
            && let Some(account) =
                channel_accounts::load_of(conn, &self.sealer, org, AccountId(id)).await?
        {
            return Ok(Some(account));
        }
        channel_accounts::first_of(conn, &self.sealer, org, &thread.channel).await
    }
}

/// What the delivery jobs share.
pub struct Delivery {
    pub units: Units,
    /// Presigns the download URLs of messages' files at send time.
    pub storage: Option<Arc<crate::storage::Storage>>,
    pub agentphone: Arc<AgentPhone>,
    pub limits: AccountLimits,
}

impl Delivery {
    pub fn client(&self, account: &Account) -> Client {
        self.agentphone.client(account)
    }

    pub async fn account_for(&self, org: i64, thread: &Thread) -> Result<Option<Account>> {
        self.agentphone
            .account_for(&self.units.db, org, thread)
            .await
    }
}

/// The AgentPhone side of a conversation, as kept in `metadata.agentphone`.
pub fn agentphone_state<'a>(thread: &'a Thread, key: &str) -> Option<&'a str> {
    thread
        .metadata
        .as_ref()?
        .get("agentphone")?
        .get(key)?
        .as_str()
}

/// The conversation's `metadata` with `key` of its AgentPhone state set to `value`
/// (what else it holds, `conversationState` included, stays).
pub fn with_agentphone_state(
    thread: &Thread,
    key: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    let mut metadata = match &thread.metadata {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let state = metadata
        .entry("agentphone")
        .or_insert_with(|| serde_json::json!({}));
    if !state.is_object() {
        *state = serde_json::json!({});
    }
    if let Some(state) = state.as_object_mut() {
        state.insert(key.to_string(), value);
    }
    serde_json::Value::Object(metadata)
}

/// A job's message id (its payload's `message_id`) and organization.
pub fn job_message(job: &Job) -> std::result::Result<(i64, i64), JobError> {
    let org = (job.organization_id)
        .ok_or_else(|| JobError::Fatal("a delivery job has no organization".into()))?;
    let id = (job.payload.get("message_id").and_then(|v| v.as_i64()))
        .ok_or_else(|| JobError::Fatal("a delivery job has no message_id".into()))?;
    Ok((org, id))
}

/// A database error while delivering: try again later.
pub fn retry(e: crate::feathers::FeathersError) -> JobError {
    JobError::Retry(format!("{}: {}", e.message, e.chain()))
}

/// The handlers of the `delivery` queue.
pub fn handlers(delivery: Arc<Delivery>) -> HashMap<&'static str, Handler> {
    let d = delivery.clone();
    let send: Handler = Arc::new(
        move |job: Job, _cancel: CancellationToken| -> HandlerFuture {
            let d = d.clone();
            Box::pin(async move { send::run(&d, &job).await })
        },
    );
    let d = delivery;
    let react: Handler = Arc::new(
        move |job: Job, _cancel: CancellationToken| -> HandlerFuture {
            let d = d.clone();
            Box::pin(async move { react::run(&d, &job).await })
        },
    );
    HashMap::from([(AGENTPHONE_SEND, send), (AGENTPHONE_REACT, react)])
}
