//! Channel accounts: a provider account an organization sends and receives through
//! (AgentPhone for SMS and iMessage). Its settings are plain; its secrets are sealed
//! at rest and never leave this module but to the code that calls the provider or
//! checks its webhooks. The only SQL writing `channel_accounts`.

use super::unit_of_work::UnitOfWork;
use crate::auth::sealing::Sealer;
use crate::feathers::{FeathersError, Result};
use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const TABLE: &str = "channel_accounts";
pub const PATH: &str = "channel-accounts";

fn c(name: &str) -> Alias {
    Alias::new(name)
}

/// A channel account's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

/// One of the account's AgentPhone numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Number {
    pub id: String,
    pub phone_number: String,
}

/// What an AgentPhone account is, as its admins set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The agent that sends when a conversation has no number of its own.
    pub agent_id: Option<String>,
    #[serde(default)]
    pub numbers: Vec<Number>,
    /// Overrides the configured `agentphone_base_url` for this account.
    pub base_url: Option<String>,
}

/// Write-only: the key AgentPhone's API takes and the secret its webhooks sign with.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secrets {
    pub api_key: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// An account with its secrets open, for the code that talks to the provider.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub organization_id: i64,
    pub channel: String,
    pub provider: String,
    pub settings: Settings,
    pub secrets: Secrets,
}

impl Account {
    /// The number of ours with this id or phone number, if the account has it.
    pub fn number(&self, id_or_phone: &str) -> Option<&Number> {
        (self.settings.numbers.iter())
            .find(|n| n.id == id_or_phone || n.phone_number == id_or_phone)
    }
}

/// A new account.
pub struct NewAccount {
    pub channel: String,
    pub provider: String,
    pub name: String,
    pub settings: Settings,
    pub secrets: Secrets,
}

/// A change to an account; each secret given replaces that secret only.
#[derive(Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub settings: Option<Settings>,
    pub api_key: Option<String>,
    pub webhook_secret: Option<String>,
}

fn seal(sealer: &Sealer, org: i64, secrets: &Secrets) -> String {
    let json = serde_json::to_vec(secrets).expect("secrets serialize");
    sealer.seal(org, &json)
}

/// Stores a new account of `org`; records `created`.
pub async fn create(
    uow: &UnitOfWork,
    sealer: &Sealer,
    org: i64,
    new: &NewAccount,
) -> Result<AccountId> {
    let now = Utc::now();
    let mut q = Query::insert();
    q.into_table(c(TABLE))
        .columns(
            [
                "organization_id",
                "channel",
                "provider",
                "name",
                "settings",
                "secrets_sealed",
                "created_at",
                "updated_at",
            ]
            .map(c),
        )
        .values_panic([
            org.into(),
            new.channel.clone().into(),
            new.provider.clone().into(),
            new.name.clone().into(),
            json!(new.settings).into(),
            seal(sealer, org, &new.secrets).into(),
            now.into(),
            now.into(),
        ])
        .returning_col(c("id"));
    let row = (uow.conn().await?.query_one(&q).await?)
        .ok_or_else(|| FeathersError::general("INSERT returned no id"))?;
    let id: i64 = row.try_get("", "id")?;
    uow.record_read(PATH, "created", &[id]).await?;
    Ok(AccountId(id))
}

/// Applies `patch` to account `id` of `org` (404 when it is not theirs); records `patched`.
pub async fn patch(
    uow: &UnitOfWork,
    sealer: &Sealer,
    org: i64,
    id: AccountId,
    patch: &AccountPatch,
) -> Result<()> {
    let conn = uow.conn().await?;
    let current = load_of(conn, sealer, org, id)
        .await?
        .ok_or_else(|| FeathersError::no_record(id.0))?;
    let mut q = Query::update();
    q.table(c(TABLE))
        .value(c("updated_at"), Utc::now())
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0));
    if let Some(name) = &patch.name {
        q.value(c("name"), name.clone());
    }
    if let Some(settings) = &patch.settings {
        q.value(c("settings"), json!(settings));
    }
    if patch.api_key.is_some() || patch.webhook_secret.is_some() {
        let secrets = Secrets {
            api_key: patch.api_key.clone().unwrap_or(current.secrets.api_key),
            webhook_secret: (patch.webhook_secret.clone())
                .unwrap_or(current.secrets.webhook_secret),
        };
        q.value(c("secrets_sealed"), seal(sealer, org, &secrets));
    }
    conn.execute(&q).await?;
    uow.record_read(PATH, "patched", &[id.0]).await
}

/// Removes account `id` of `org` (its thread keys and webhook receipts go with it;
/// its conversations and messages stay); records `removed`.
pub async fn remove(uow: &UnitOfWork, org: i64, id: AccountId) -> Result<()> {
    let conn = uow.conn().await?;
    uow.record_read(PATH, "removed", &[id.0]).await?;
    let mut q = Query::delete();
    q.from_table(c(TABLE))
        .and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("id")).eq(id.0));
    if conn.execute(&q).await?.rows_affected() == 0 {
        return Err(FeathersError::no_record(id.0));
    }
    Ok(())
}

/// Account `id`, whoever owns it (a webhook's URL names the account, and the
/// account names the organization).
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    id: AccountId,
) -> Result<Option<Account>> {
    let mut q = select();
    q.and_where(Expr::col(c("id")).eq(id.0));
    one(conn, sealer, &q).await
}

/// Account `id` of `org`.
pub async fn load_of<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    org: i64,
    id: AccountId,
) -> Result<Option<Account>> {
    let mut q = select();
    q.and_where(Expr::col(c("id")).eq(id.0))
        .and_where(Expr::col(c("organization_id")).eq(org));
    one(conn, sealer, &q).await
}

/// The account a conversation of `channel` without one of its own goes through:
/// the organization's first.
pub async fn first_of<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    org: i64,
    channel: &str,
) -> Result<Option<Account>> {
    let mut q = select();
    q.and_where(Expr::col(c("organization_id")).eq(org))
        .and_where(Expr::col(c("channel")).eq(channel))
        .order_by(c("id"), Order::Asc)
        .limit(1);
    one(conn, sealer, &q).await
}

fn select() -> sea_orm::sea_query::SelectStatement {
    let mut q = Query::select();
    q.columns(
        [
            "id",
            "organization_id",
            "channel",
            "provider",
            "settings",
            "secrets_sealed",
        ]
        .map(c),
    )
    .from(c(TABLE));
    q
}

async fn one<C: ConnectionTrait>(
    conn: &C,
    sealer: &Sealer,
    q: &sea_orm::sea_query::SelectStatement,
) -> Result<Option<Account>> {
    let Some(row) = conn.query_one(q).await? else {
        return Ok(None);
    };
    let org: i64 = row.try_get("", "organization_id")?;
    let settings: Value = row.try_get("", "settings")?;
    let sealed: String = row.try_get("", "secrets_sealed")?;
    let opened = sealer.open(org, &sealed).map_err(|e| {
        FeathersError::general("a channel account's secrets do not open").with_cause(e)
    })?;
    let secrets: Secrets = serde_json::from_slice(&opened).map_err(|e| {
        FeathersError::general("a channel account's secrets are unreadable").with_cause(e)
    })?;
    Ok(Some(Account {
        id: AccountId(row.try_get("", "id")?),
        organization_id: org,
        channel: row.try_get("", "channel")?,
        provider: row.try_get("", "provider")?,
        settings: serde_json::from_value(settings).map_err(|e| {
            FeathersError::general("a channel account's settings are unreadable").with_cause(e)
        })?,
        secrets,
    }))
}
