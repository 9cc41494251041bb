//! `/channel-accounts` (admins): the provider accounts an organization sends and
//! receives through; today AgentPhone for SMS and iMessage. Secrets are write-only:
//! sealed at rest, in no answer, event or log. Each account's webhook URL is
//! `POST /webhooks/agentphone/{id}`.

use super::common::{record_id, tenant_options, tenant_schema};
use crate::auth::sealing::Sealer;
use crate::domain::UnitOfWork;
use crate::domain::channel_accounts::{
    self, AccountId, AccountPatch, NewAccount, Secrets, Settings,
};
use crate::feathers::{FeathersError, Field, FieldType, Id, Params, Result, Service, SqlService};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The most numbers one account lists.
pub const MAX_NUMBERS: usize = 50;
/// The most characters of a setting or secret.
const MAX_LEN: usize = 500;

pub fn schema() -> crate::feathers::Schema {
    use FieldType::*;
    tenant_schema(vec![
        Field::new("channel", String).query(),
        Field::new("provider", String).query(),
        Field::new("name", String).query().like(),
        Field::new("settings", Json),
        Field::new("secrets_sealed", String).hidden(),
    ])
}

pub struct ChannelAccountsService {
    pub sql: SqlService,
    sealer: Arc<Sealer>,
}

impl ChannelAccountsService {
    pub fn new(db: DatabaseConnection, sealer: Arc<Sealer>) -> Self {
        Self {
            sql: SqlService::new(db, tenant_options("channel_accounts", schema())),
            sealer,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsBody {
    api_key: Option<String>,
    webhook_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    organization_id: Option<i64>,
    channel: Option<String>,
    provider: Option<String>,
    name: Option<String>,
    settings: Option<Settings>,
    secrets: Option<SecretsBody>,
}

impl Body {
    fn parse(data: Value, params: &Params) -> Result<Self> {
        if !data.is_object() {
            return Err(FeathersError::bad_request("The body must be a JSON object"));
        }
        let body: Self = serde_json::from_value(data)
            .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))?;
        let org = params.principal()?.tenant_id;
        if body.organization_id.is_some_and(|o| o != org) {
            return Err(FeathersError::forbidden(
                "organization_id must be the caller's own",
            ));
        }
        if let Some(name) = &body.name {
            text("name", name, 100)?;
        }
        if let Some(settings) = &body.settings {
            check_settings(settings)?;
        }
        if let Some(secrets) = &body.secrets {
            for (field, value) in [
                ("secrets.api_key", &secrets.api_key),
                ("secrets.webhook_secret", &secrets.webhook_secret),
            ] {
                if let Some(v) = value {
                    text(field, v, MAX_LEN)?;
                }
            }
        }
        Ok(body)
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(FeathersError::invalid(field, "must not be blank"));
    }
    if value.chars().count() > max {
        return Err(FeathersError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// A sender to use (an agent or a number), numbers in E.164, a web base URL.
fn check_settings(s: &Settings) -> Result<()> {
    if let Some(agent) = &s.agent_id {
        text("settings.agent_id", agent, 200)?;
    }
    if s.agent_id.is_none() && s.numbers.is_empty() {
        return Err(FeathersError::invalid(
            "settings.agent_id",
            "is required when settings.numbers is empty",
        ));
    }
    if s.numbers.len() > MAX_NUMBERS {
        return Err(FeathersError::invalid(
            "settings.numbers",
            format!("must list at most {MAX_NUMBERS} numbers"),
        ));
    }
    for (i, n) in s.numbers.iter().enumerate() {
        text(&format!("settings.numbers.{i}.id"), &n.id, 200)?;
        let digits = n.phone_number.strip_prefix('+').unwrap_or("");
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FeathersError::invalid(
                &format!("settings.numbers.{i}.phone_number"),
                "must be an E.164 number (+ and 8 to 15 digits)",
            ));
        }
    }
    if let Some(url) = &s.base_url {
        let ok = url.len() <= MAX_LEN
            && reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
        if !ok {
            return Err(FeathersError::invalid(
                "settings.base_url",
                "must be an http(s) URL",
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl Service for ChannelAccountsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.sql.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.sql.get(id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let body = Body::parse(data, params)?;
        match body.channel.as_deref() {
            Some("sms") => {}
            Some(other) => {
                return Err(FeathersError::invalid(
                    "channel",
                    format!("must be sms, not {other:?}"),
                ));
            }
            None => return Err(FeathersError::invalid("channel", "is required")),
        }
        match body.provider.as_deref() {
            Some("agentphone") => {}
            Some(other) => {
                return Err(FeathersError::invalid(
                    "provider",
                    format!("must be agentphone, not {other:?}"),
                ));
            }
            None => return Err(FeathersError::invalid("provider", "is required")),
        }
        let name = body
            .name
            .ok_or_else(|| FeathersError::invalid("name", "is required"))?;
        let settings = body
            .settings
            .ok_or_else(|| FeathersError::invalid("settings", "is required"))?;
        let secrets = body
            .secrets
            .ok_or_else(|| FeathersError::invalid("secrets", "is required"))?;
        let secrets = Secrets {
            api_key: secrets
                .api_key
                .ok_or_else(|| FeathersError::invalid("secrets.api_key", "is required"))?,
            webhook_secret: (secrets.webhook_secret)
                .ok_or_else(|| FeathersError::invalid("secrets.webhook_secret", "is required"))?,
        };
        let uow = UnitOfWork::of(params)?;
        let org = params.principal()?.tenant_id;
        let new = NewAccount {
            channel: "sms".into(),
            provider: "agentphone".into(),
            name,
            settings,
            secrets,
        };
        let AccountId(id) = channel_accounts::create(uow, &self.sealer, org, &new).await?;
        (uow.recorded(channel_accounts::PATH, id))
            .ok_or_else(|| FeathersError::general("a created account was not recorded"))
    }
    async fn update(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(FeathersError::method_not_allowed(
            "Method `update` is not supported by this endpoint; patch what changes.",
        ))
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let id = record_id(id)?;
        let body = Body::parse(data, params)?;
        if body.channel.is_some() || body.provider.is_some() {
            let field = if body.channel.is_some() {
                "channel"
            } else {
                "provider"
            };
            return Err(FeathersError::invalid(
                field,
                "cannot change; create another account",
            ));
        }
        let (api_key, webhook_secret) = match body.secrets {
            Some(s) => (s.api_key, s.webhook_secret),
            None => (None, None),
        };
        let patch = AccountPatch {
            name: body.name,
            settings: body.settings,
            api_key,
            webhook_secret,
        };
        let uow = UnitOfWork::of(params)?;
        let org = params.principal()?.tenant_id;
        channel_accounts::patch(uow, &self.sealer, org, AccountId(id), &patch).await?;
        (uow.recorded(channel_accounts::PATH, id))
            .ok_or_else(|| FeathersError::general("a patched account was not recorded"))
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let id = record_id(id)?;
        let uow = UnitOfWork::of(params)?;
        let org = params.principal()?.tenant_id;
        channel_accounts::remove(uow, org, AccountId(id)).await?;
        (uow.recorded(channel_accounts::PATH, id))
            .ok_or_else(|| FeathersError::general("a removed account was not recorded"))
    }
}
