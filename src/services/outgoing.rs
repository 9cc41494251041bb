//! `POST /conversation-messages-transform-outgoing-{whatsapp,instagram,messenger,webchat}`:
//! compose a message for a conversation of that channel: check the channel's
//! rules, render a canned reply, build the wire payload, store it (`queued`; a
//! note is stored and never delivered). `?$preview=true` answers 200 with the
//! message it would store and writes nothing.

use super::messages::MessagesService;
use crate::channels::Channel;
use crate::domain::UnitOfWork;
use crate::domain::messages::NewMessage;
use crate::feathers::{FeathersError, Params, Result, Service};
use crate::messaging::compose::{self, Body, Context, Sender};
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::Value;

pub struct TransformOutgoingService {
    messages: MessagesService,
}

impl TransformOutgoingService {
    pub fn new(db: DatabaseConnection, channel: Channel) -> Self {
        Self {
            messages: MessagesService::new(db, channel),
        }
    }

    /// `$preview=true` (or the boolean) asks for a dry run; any other value is a 400.
    fn preview(params: &Params) -> Result<bool> {
        match params.query.get("$preview") {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(_) => Err(FeathersError::invalid("$preview", "must be true or false")),
        }
    }

    async fn draft<C: ConnectionTrait>(
        &self,
        txn: &C,
        data: Value,
        params: &Params,
    ) -> Result<NewMessage> {
        let body = Body::parse(data)?;
        body.only(&[
            "messageData",
            "predefined_message_id",
            "variables",
            "human_agent",
        ])?;
        let principal = params.principal()?;
        body.check_organization(principal)?;
        let conversation = self.messages.conversation(txn, &body, params).await?;
        let channel = self.messages.channel;
        let ctx = Context {
            channel,
            conversation: &conversation,
            sender: Sender::of(principal),
            now: Utc::now(),
            initial_status: "queued",
        };
        compose::outgoing(txn, &body, &ctx).await
    }
}

#[async_trait]
impl Service for TransformOutgoingService {
    fn create_status(&self, params: &Params) -> u16 {
        if Self::preview(params).unwrap_or(false) {
            200
        } else {
            201
        }
    }

    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let mut params = params.clone();
        let preview = Self::preview(&params)?;
        crate::feathers::query::take_key(&mut params.query, "$preview");
        if let Some(key) = params.query.as_object().and_then(|q| q.keys().next()) {
            return Err(FeathersError::invalid(
                key,
                "is not a query parameter of this service",
            ));
        }
        let uow = UnitOfWork::of(&params)?;
        if preview {
            // Composing only reads; a savepoint rolled back makes sure nothing stays.
            let savepoint = uow.conn().await?.begin().await?;
            let message = self.draft(&savepoint, data, &params).await?;
            savepoint.rollback().await?;
            return Ok(message.to_json());
        }
        let message = self.draft(uow.conn().await?, data, &params).await?;
        self.messages.store(uow, &message, &params).await
    }
}
