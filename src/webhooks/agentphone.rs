//! `POST /webhooks/agentphone/{account_id}`: verifies AgentPhone's signature over the
//! raw body, claims the delivery (its `X-Webhook-ID` and message id) and applies the
//! event, in one unit of work; the answer comes after the commit. A bad or missing
//! signature, a stale timestamp or an unknown account is a 401 that stores nothing
//! (the same answer for each: no oracle); malformed JSON a 400; a redelivery a 200
//! that stores nothing.

use crate::agentphone::ingest::{self, Outcome};
use crate::agentphone::{inbound, signature};
use crate::auth::sealing::Sealer;
use crate::domain::channel_accounts::{self, AccountId};
use crate::domain::{Actor, Units, webhook_receipts};
use crate::feathers::rest::read_raw_body;
use crate::feathers::{FeathersError, Result};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// What the endpoint needs; one per app.
pub struct WebhookState {
    pub units: Units,
    pub sealer: Arc<Sealer>,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn refused() -> FeathersError {
    FeathersError::not_authenticated("Invalid webhook signature")
}

pub async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse> {
    let body = read_raw_body(&req, payload, state.max_body_bytes, state.body_timeout).await?;
    let account_id = path.parse::<i64>().map_err(|_| refused())?;
    let account = channel_accounts::load(&state.units.db, &state.sealer, AccountId(account_id))
        .await?
        .ok_or_else(refused)?;
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = signature::verify(
        &account.secrets.webhook_secret,
        header(&req, "x-webhook-timestamp"),
        header(&req, "x-webhook-signature"),
        &body,
        now,
    ) {
        tracing::info!(account = account_id, reason = %e, "AgentPhone webhook refused");
        return Err(refused());
    }
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| FeathersError::bad_request(format!("The body is not JSON: {e}")))?;
    if !json.is_object() {
        return Err(FeathersError::bad_request("The body must be a JSON object"));
    }
    let event = inbound::parse(&json).map_err(|e| FeathersError::bad_request(e.0))?;
    let mut keys = Vec::new();
    if let Some(id) = header(&req, "x-webhook-id").filter(|id| !id.is_empty()) {
        keys.push(format!("delivery:{id}"));
    }
    if let inbound::Event::Message(m) = &event
        && let Some(id) = &m.message_id
    {
        keys.push(format!("message:{id}"));
    }
    let event_name = json["event"].as_str().unwrap_or_default();
    let uow = state
        .units
        .begin(Some(account.organization_id), Actor::Provider("agentphone"));
    let conn = uow.conn().await?;
    if !webhook_receipts::claim(conn, account.id.0, event_name, &keys).await? {
        return Ok(HttpResponse::Ok().json(json!({ "status": "duplicate" })));
    }
    let outcome = ingest::apply(&uow, &account, &event).await?;
    uow.commit().await?;
    let answer = match outcome {
        Outcome::Stored(id) => json!({ "status": "stored", "message_id": id.0 }),
        Outcome::Confirmed(id) => json!({ "status": "confirmed", "message_id": id.0 }),
        Outcome::Known => json!({ "status": "duplicate" }),
        Outcome::Ignored(why) => json!({ "status": "ignored", "reason": why }),
    };
    Ok(HttpResponse::Ok().json(answer))
}
