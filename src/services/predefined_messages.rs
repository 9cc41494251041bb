//! `/conversation-predefined-messages`: canned replies, visible to the whole
//! organization, sorted by title. Any member creates; its creator or an admin
//! changes and removes. `content` may hold `{{contact.first_name}}`,
//! `{{contact.last_name}}`, `{{user.first_name}}`, `{{conversation.id}}` and
//! caller-given `{{variables}}`, rendered when a message is sent with
//! `predefined_message_id`.

use super::common::{create_owned, patch_owned, remove_owned, tenant_options, tenant_schema};
use crate::feathers::{Direction, Field, FieldType, Id, Params, Result, Service, SqlService};
use crate::messaging::store::MESSAGE_TYPES;
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde_json::Value;

pub fn schema() -> crate::feathers::Schema {
    tenant_schema(vec![
        Field::new("title", FieldType::String)
            .query()
            .like()
            .required()
            .max_len(200)
            .non_blank(),
        Field::new("content", FieldType::String)
            .query()
            .like()
            .required()
            .max_len(10_000),
        Field::new("message_type", FieldType::Enum(MESSAGE_TYPES))
            .query()
            .required()
            .write(),
        Field::new("media_url", FieldType::String)
            .nullable()
            .write()
            .max_len(2048),
        Field::new("filename", FieldType::String)
            .nullable()
            .write()
            .max_len(255),
        Field::new("mime_type", FieldType::String)
            .nullable()
            .write()
            .max_len(255),
        Field::new("created_by_user_id", FieldType::Integer)
            .nullable()
            .query(),
    ])
}

pub struct PredefinedMessagesService(pub SqlService);

impl PredefinedMessagesService {
    pub fn new(db: DatabaseConnection) -> Self {
        let mut schema = schema();
        for f in schema
            .fields
            .iter_mut()
            .filter(|f| f.name == "title" || f.name == "content")
        {
            f.patch = true;
        }
        let options = tenant_options("predefined_messages", schema)
            .default_sort(vec![("title", Direction::Asc)]);
        Self(SqlService::new(db, options))
    }
}

#[async_trait]
impl Service for PredefinedMessagesService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
    async fn create(&self, mut data: Value, params: &Params) -> Result<Value> {
        if data.is_object() && data.get("message_type").is_none() {
            data["message_type"] = Value::from("text");
        }
        create_owned(&self.0, data, params, "created_by_user_id").await
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        patch_owned(&self.0, id, data, params, "created_by_user_id").await
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        remove_owned(&self.0, id, params, "created_by_user_id").await
    }
}
