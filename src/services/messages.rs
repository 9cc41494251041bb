//! `/conversation-messages-{channel}`: the messages of one channel's
//! conversations (find, get, remove as a soft delete), plus create on the SMS and
//! playground paths. One implementation over the one `messages` table.

use crate::auth::ADMIN;
use crate::channels::Channel;
use crate::channels::rules::{MediaCheck, OutgoingCheck, check_outgoing};
use crate::domain::UnitOfWork;
use crate::domain::conversations::{self, ConversationRow, NewConversation};
use crate::domain::messages::{self, MessageId, NewMessage};
use crate::feathers::{FeathersError, Id, JsonText, Params, Result, Service, SqlService};
use crate::messaging::compose::{self, Body, Context, Sender};
use crate::messaging::store;
use crate::services::common::{check_reference, record_id};
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::Value;
use std::str::FromStr;

/// Which create a messages path offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creates {
    Nothing,
    Sms,
    Playground,
}

pub struct MessagesService {
    pub sql: SqlService,
    pub channel: Channel,
    creates: Creates,
}

impl MessagesService {
    pub fn new(db: DatabaseConnection, channel: Channel) -> Self {
        let creates = match channel {
            Channel::Sms => Creates::Sms,
            Channel::Playground => Creates::Playground,
            _ => Creates::Nothing,
        };
        Self {
            sql: SqlService::new(db, store::options(channel.as_str())),
            channel,
            creates,
        }
    }

    /// Stores a message (its conversation follows) and answers the stored record.
    pub async fn store(
        &self,
        uow: &UnitOfWork,
        message: &NewMessage,
        params: &Params,
    ) -> Result<Value> {
        let MessageId(id) = messages::create(uow, message).await?;
        let mut read = params.clone();
        read.query = Value::Object(Default::default());
        self.sql
            ._get(uow.conn().await?, &id.to_string(), &read)
            .await
    }

    async fn create_sms(&self, uow: &UnitOfWork, body: Body, params: &Params) -> Result<Value> {
        let txn = uow.conn().await?;
        body.only(&["send_style", "reply_to_message_id"])?;
        let principal = params.principal()?;
        body.check_organization(principal)?;
        let conversation = self.conversation(txn, &body, params).await?;
        let ctx = Context {
            channel: self.channel,
            conversation: &conversation,
            sender: Sender::of(principal),
            now: Utc::now(),
            initial_status: "queued",
        };
        let message = compose::outgoing(txn, &body, &ctx).await?;
        self.store(uow, &message, params).await
    }

    /// The caller's live conversation named by the body; 400 when it is of another channel.
    pub async fn conversation<C: ConnectionTrait>(
        &self,
        conn: &C,
        body: &Body,
        params: &Params,
    ) -> Result<ConversationRow> {
        let id = body
            .conversation_id
            .ok_or_else(|| FeathersError::invalid("conversation_id", "is required"))?;
        let conversation = conversations::load(conn, params.principal()?.tenant_id, id).await?;
        if conversation.channel != self.channel.as_str() {
            return Err(FeathersError::bad_request(format!(
                "Conversation {id} is a {} conversation, not {}",
                conversation.channel,
                self.channel.as_str()
            )));
        }
        Ok(conversation)
    }

    /// Playground: the contact's playground conversation (created on first use) gets a
    /// message from the contact (inbound) or from the caller (outbound). Nothing leaves
    /// the system; an outbound message is delivered at once.
    async fn create_playground(
        &self,
        uow: &UnitOfWork,
        body: Body,
        params: &Params,
    ) -> Result<Value> {
        let txn = uow.conn().await?;
        body.only(&[
            "contact_id",
            "sender_type",
            "predefined_message_id",
            "variables",
        ])?;
        let principal = params.principal()?;
        body.check_organization(principal)?;
        let contact_id = body
            .contact_id
            .ok_or_else(|| FeathersError::invalid("contact_id", "is required"))?;
        check_reference(txn, params, "contact_id", contact_id, "contacts").await?;
        let org = principal.tenant_id;
        let now = Utc::now();
        let conversation_id = match conversations::playground_of(txn, org, contact_id).await? {
            Some(id) => id.0,
            None => {
                let new = NewConversation::new(contact_id, "playground", now);
                // One live playground conversation per contact (unique index, m0011): of
                // two first messages at once, the later insert fails in its savepoint
                // and the message joins the conversation the other created.
                let savepoint = txn.begin().await?;
                match conversations::insert(&savepoint, org, &new).await {
                    Ok(id) => {
                        savepoint.commit().await?;
                        uow.record_read(conversations::PATH, "created", &[id.0])
                            .await?;
                        id.0
                    }
                    Err(e) if e.kind == crate::feathers::error::ErrorKind::Conflict => {
                        savepoint.rollback().await?;
                        conversations::playground_of(txn, org, contact_id)
                            .await?
                            .ok_or(e)?
                            .0
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if body.conversation_id.is_some_and(|id| id != conversation_id) {
            return Err(FeathersError::invalid(
                "conversation_id",
                "is not this contact's playground conversation",
            ));
        }
        let conversation = conversations::load(txn, org, conversation_id).await?;
        let message = match body.sender_type.as_deref().unwrap_or("user") {
            "user" => {
                let ctx = Context {
                    channel: self.channel,
                    conversation: &conversation,
                    sender: Sender::of(principal),
                    now,
                    initial_status: "delivered",
                };
                compose::outgoing(txn, &body, &ctx).await?
            }
            "contact" => inbound_draft(txn, &body, &conversation, self.channel, now).await?,
            other => {
                return Err(FeathersError::invalid(
                    "sender_type",
                    format!("must be contact or user, not {other:?}"),
                ));
            }
        };
        self.store(uow, &message, params).await
    }
}

/// A message from the contact, as the playground simulates it.
/// A message list is always one conversation's: `conversation_id` is required.
fn require_conversation(params: &Params) -> Result<()> {
    match params.query.get("conversation_id") {
        Some(_) => Ok(()),
        None => Err(FeathersError::invalid("conversation_id", "is required")),
    }
}

async fn inbound_draft<C: ConnectionTrait>(
    conn: &C,
    body: &Body,
    conversation: &ConversationRow,
    channel: Channel,
    now: chrono::DateTime<Utc>,
) -> Result<NewMessage> {
    use crate::channels::MessageType;
    let type_name = body.message_type.as_deref().unwrap_or("text");
    let message_type = MessageType::from_str(type_name).map_err(|_| {
        FeathersError::invalid("message_type", format!("unknown type {type_name:?}"))
    })?;
    if body.predefined_message_id.is_some() {
        return Err(FeathersError::invalid(
            "predefined_message_id",
            "is for messages from a user",
        ));
    }
    let media = body.media(conn, conversation).await?;
    let mime = media
        .as_ref()
        .and_then(|m| m["file_type"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut check = OutgoingCheck::new(message_type);
    check.text = body.message_text.as_deref();
    check.media = media.as_ref().map(|m| MediaCheck {
        mime: &mime,
        size: m["file_size"].as_u64().unwrap_or(0),
    });
    check_outgoing(channel, &check, now)?;
    Ok(NewMessage {
        organization_id: conversation.organization_id,
        conversation_id: conversation.id,
        channel: channel.as_str().to_string(),
        direction: "inbound",
        message_type: message_type.as_str().to_string(),
        sender_type: "contact",
        sender_id: Some(conversation.contact_id),
        text: body.message_text.clone(),
        media,
        template: None,
        payload: None,
        reply_to_message_id: None,
        send_style: None,
        delivery_status: Some("received"),
        idempotency_key: None,
        channel_account_id: None,
        external_id: None,
        transport: None,
        created_at: now,
    })
}

#[async_trait]
impl Service for MessagesService {
    async fn find(&self, params: &Params) -> Result<Value> {
        require_conversation(params)?;
        self.sql.find(params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        require_conversation(params)?;
        self.sql.find_raw(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.sql.get(id, params).await
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if self.creates == Creates::Nothing {
            return Err(FeathersError::method_not_allowed(
                "Method `create` is not supported by this endpoint.",
            ));
        }
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        // The query follows the rules of every create: known keys only (400), and an
        // `organization_id` that must be the caller's (403).
        self.sql.parse_query(params)?;
        let uow = UnitOfWork::of(params)?;
        let body = Body::parse(data)?;
        match self.creates {
            Creates::Sms => self.create_sms(uow, body, params).await,
            Creates::Playground => self.create_playground(uow, body, params).await,
            Creates::Nothing => unreachable!("refused above"),
        }
    }
    /// Soft delete, by an admin or the user who sent it; the conversation's preview follows.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let message_id = record_id(id)?;
        let principal = params.principal()?;
        let uow = UnitOfWork::of(params)?;
        let message = self
            .sql
            ._get(uow.conn().await?, id.expect("single"), params)
            .await?;
        let own = message["sender_type"] == "user"
            && message["sender_id"].as_i64() == Some(principal.user_id);
        if principal.role != ADMIN && !own {
            return Err(FeathersError::forbidden(
                "Only an admin or the message's sender may remove it",
            ));
        }
        let channel = self.channel.as_str();
        messages::remove(uow, principal.tenant_id, channel, MessageId(message_id)).await?;
        Ok(message)
    }
}
