//! iMessage features of SMS conversations, through AgentPhone:
//! `POST /conversation-message-reactions` (a tapback, stored as a message of type
//! `reaction` linked to its message by `reply_to_message_id`, and sent by a delivery
//! job like any message), `POST /conversation-typing` and `POST`/`DELETE
//! /conversation-backgrounds`. Typing and backgrounds are settings, not messages:
//! they are called at once (safe to repeat, nothing to deliver later), outside the
//! request's transaction, and AgentPhone's refusal comes back as the answer.

use crate::agentphone::CallError;
use crate::delivery::{AgentPhone, agentphone_state, with_agentphone_state};
use crate::domain::UnitOfWork;
use crate::domain::channel_accounts::Account;
use crate::domain::conversations::{self, Thread, ThreadUpdate};
use crate::domain::messages::{self, MessageId, NewMessage};
use crate::feathers::error::ErrorKind;
use crate::feathers::{FeathersError, Id, Params, Result, Service};
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The tapbacks every iMessage line takes.
pub const REACTIONS: &[&str] = &["love", "like", "dislike", "laugh", "emphasize", "question"];

fn parse<T: serde::de::DeserializeOwned>(data: Value) -> Result<T> {
    if !data.is_object() {
        return Err(FeathersError::bad_request("The body must be a JSON object"));
    }
    serde_json::from_value(data)
        .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))
}

fn single(data: &Value) -> Result<()> {
    if data.is_array() {
        return Err(FeathersError::method_not_allowed(
            "Can not create multiple entries",
        ));
    }
    Ok(())
}

/// AgentPhone's answer to a call made for a client: its refusal is the client's 400
/// (429 when it is a rate limit), its failure a 502.
fn call_error(e: CallError) -> FeathersError {
    match e {
        CallError::Status { error, .. } if error.status == 429 => FeathersError::new(
            ErrorKind::TooManyRequests,
            format!("AgentPhone is rate limiting: {}", error.message),
        ),
        CallError::Status { error, .. } if error.status < 500 => {
            FeathersError::bad_request(format!("AgentPhone refused: {}", error.message))
                .with_data(json!({ "agentphone": error.to_json() }))
        }
        other => FeathersError::new(
            ErrorKind::BadGateway,
            format!("AgentPhone did not answer: {other}"),
        ),
    }
}

/// The caller's SMS conversation, its AgentPhone thread id and its account.
async fn thread(
    db: &DatabaseConnection,
    agentphone: &AgentPhone,
    params: &Params,
    id: i64,
) -> Result<(Thread, String, Account)> {
    let org = params.principal()?.tenant_id;
    let thread = (conversations::thread_of(db, org, id).await?)
        .ok_or_else(|| FeathersError::no_record(id))?;
    if thread.channel != "sms" {
        return Err(FeathersError::bad_request(format!(
            "Conversation {id} is a {} conversation; this is for SMS/iMessage ones",
            thread.channel
        )));
    }
    let Some(conversation) = agentphone_state(&thread, "conversation_id").map(str::to_string)
    else {
        return Err(FeathersError::bad_request(format!(
            "Conversation {id} has no AgentPhone thread yet (it starts with its first message)"
        )));
    };
    let account = (agentphone.account_for(db, org, &thread).await?)
        .ok_or_else(|| FeathersError::bad_request("The organization has no AgentPhone account"))?;
    Ok((thread, conversation, account))
}

/// Keeps (or clears) the background on the conversation, in the call's unit of work.
async fn keep_background(params: &Params, thread: &Thread, image_url: Option<&str>) -> Result<()> {
    let uow = UnitOfWork::of(params)?;
    let metadata = with_agentphone_state(thread, "background_url", json!(image_url));
    let update = ThreadUpdate {
        metadata: Some(metadata),
        ..Default::default()
    };
    conversations::update_thread(uow, params.principal()?.tenant_id, thread.id, &update).await
}

pub struct ReactionsService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionBody {
    message_id: i64,
    reaction: String,
    organization_id: Option<i64>,
}

#[async_trait]
impl Service for ReactionsService {
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        single(&data)?;
        let body: ReactionBody = parse(data)?;
        let principal = params.principal()?;
        let org = principal.tenant_id;
        if body.organization_id.is_some_and(|o| o != org) {
            return Err(FeathersError::forbidden(
                "organization_id must be the caller's own",
            ));
        }
        if !REACTIONS.contains(&body.reaction.as_str()) {
            return Err(FeathersError::invalid(
                "reaction",
                format!("must be one of {}", REACTIONS.join(", ")),
            ));
        }
        let uow = UnitOfWork::of(params)?;
        let target = (messages::load_outbound(uow.conn().await?, org, MessageId(body.message_id))
            .await?)
            .ok_or_else(|| FeathersError::no_record(body.message_id))?;
        let imessage = target.channel == "sms"
            && target.transport.as_deref() == Some("imessage")
            && target.external_id.is_some()
            && target.message_type != "reaction";
        if !imessage {
            return Err(FeathersError::bad_request(format!(
                "Message {} was not delivered over iMessage; only iMessage messages take reactions",
                body.message_id
            ))
            .with_data(
                json!({ "rule": "reaction_needs_imessage", "transport": target.transport }),
            ));
        }
        let new = NewMessage {
            organization_id: org,
            conversation_id: target.conversation_id,
            channel: "sms".into(),
            direction: "outbound",
            message_type: "reaction".into(),
            sender_type: "user",
            sender_id: Some(principal.user_id),
            text: Some(body.reaction.clone()),
            media: None,
            template: None,
            payload: Some(json!({ "reaction": body.reaction, "message_id": target.external_id })),
            reply_to_message_id: Some(target.id.0),
            send_style: None,
            delivery_status: Some("queued"),
            idempotency_key: None,
            channel_account_id: None,
            external_id: None,
            transport: None,
            created_at: Utc::now(),
        };
        let MessageId(id) = messages::create(uow, &new).await?;
        (uow.recorded(&messages::path_of("sms"), id))
            .ok_or_else(|| FeathersError::general("a stored reaction was not recorded"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationBody {
    conversation_id: i64,
    image_url: Option<String>,
}

pub struct TypingService {
    pub db: DatabaseConnection,
    pub agentphone: Arc<AgentPhone>,
}

#[async_trait]
impl Service for TypingService {
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        single(&data)?;
        let body: ConversationBody = parse(data)?;
        if body.image_url.is_some() {
            return Err(FeathersError::invalid(
                "image_url",
                "is not accepted on this path",
            ));
        }
        let (_, conversation, account) =
            thread(&self.db, &self.agentphone, params, body.conversation_id).await?;
        let sent =
            (self.agentphone.client(&account).typing(&conversation).await).map_err(call_error)?;
        Ok(
            json!({ "conversation_id": body.conversation_id, "status": sent.status, "channel": sent.channel }),
        )
    }
}

/// The most characters of a background's URL.
const MAX_URL: usize = 2048;

pub struct BackgroundsService {
    pub db: DatabaseConnection,
    pub agentphone: Arc<AgentPhone>,
}

#[async_trait]
impl Service for BackgroundsService {
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        single(&data)?;
        let body: ConversationBody = parse(data)?;
        let url = body
            .image_url
            .ok_or_else(|| FeathersError::invalid("image_url", "is required"))?;
        let web = url.len() <= MAX_URL
            && reqwest::Url::parse(&url).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
        if !web {
            return Err(FeathersError::invalid(
                "image_url",
                "must be an https URL AgentPhone can download",
            ));
        }
        let (thread, conversation, account) =
            thread(&self.db, &self.agentphone, params, body.conversation_id).await?;
        let set = (self
            .agentphone
            .client(&account)
            .set_background(&conversation, &url)
            .await)
            .map_err(call_error)?;
        keep_background(params, &thread, Some(&url)).await?;
        Ok(json!({
            "conversation_id": body.conversation_id, "image_url": url,
            "has_background": set.has_background, "changed": set.changed,
        }))
    }
    /// `DELETE /conversation-backgrounds/{conversation_id}`.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let id = super::common::record_id(id)?;
        let (thread, conversation, account) =
            thread(&self.db, &self.agentphone, params, id).await?;
        (self
            .agentphone
            .client(&account)
            .delete_background(&conversation)
            .await)
            .map_err(call_error)?;
        keep_background(params, &thread, None).await?;
        Ok(json!({ "conversation_id": id, "image_url": null, "has_background": false }))
    }
}
