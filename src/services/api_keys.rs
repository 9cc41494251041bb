//! `/api-keys`: machine keys for integrations, created by an admin. The key is in
//! the create answer only; the server keeps its hash.

use crate::auth::{SharedAuth, api_key};
use crate::feathers::sql::WriteMode;
use crate::feathers::{
    Direction, FeathersError, Field, FieldType, Id, Params, Result, Schema, Service, SqlOptions,
    SqlService, Typed,
};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub fn schema() -> Schema {
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", FieldType::Integer).query(),
            Field::new("user_id", FieldType::Integer)
                .query()
                .create_only()
                .references("users"),
            Field::new("name", FieldType::String)
                .query()
                .like()
                .required()
                .max_len(100)
                .non_blank(),
            Field::new("key_prefix", FieldType::String),
            Field::new("key_hash", FieldType::String).hidden(),
            Field::new("last_used_at", FieldType::Timestamp)
                .nullable()
                .query(),
            Field::new("created_at", FieldType::Timestamp).query(),
            Field::new("updated_at", FieldType::Timestamp),
        ],
    )
}

/// API keys; removing one clears the authentication cache.
pub struct ApiKeysService(pub SqlService, SharedAuth);

impl ApiKeysService {
    pub fn new(db: DatabaseConnection, auth: SharedAuth) -> Self {
        Self(
            SqlService::new(
                db,
                SqlOptions::new("api_keys", schema())
                    .tenant("organization_id")
                    .timestamps("created_at", "updated_at")
                    .paginate(10, Some(50))
                    .default_sort(vec![("id", Direction::Asc)]),
            ),
            auth,
        )
    }
}

#[async_trait]
impl Service for ApiKeysService {
    /// The key is shown once, to its creator.
    fn secret_fields(&self) -> &'static [&'static str] {
        &["key"]
    }
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
    /// Creates a key for `user_id` (default: the caller), a user of the same organization.
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        let principal = params.principal()?;
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let txn = params.txn().await?;
        let mut fields = self
            .0
            .validate_write(txn, &data, WriteMode::Create, params)
            .await?;
        if !fields.iter().any(|(f, _)| f.name == "user_id") {
            let field = self.0.schema().field("user_id").expect("user_id field");
            fields.push((field, Typed::Int(principal.user_id)));
        }
        let key = api_key::generate();
        let extra = [
            ("key_hash", api_key::hash(&key).into()),
            ("key_prefix", api_key::prefix(&key).into()),
        ];
        let id = self.0.insert(txn, &fields, &extra, params).await?;
        let mut record = self.0._get(txn, &id.to_string(), params).await?;
        record["key"] = json!(key);
        Ok(record)
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let removed = self.0.remove(id, params).await?;
        self.1.cache.clear();
        Ok(removed)
    }
}
