//! `/jobs`: an organization's durable jobs, for its admins to read (find, get):
//! what is queued, running, done, failed (with the last error) or cancelled.

use super::common::tenant_options;
use crate::feathers::schema::Schema;
use crate::feathers::{
    Direction, Field, FieldType, Id, JsonText, Params, Result, Service, SqlService,
};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde_json::Value;

const STATUSES: &[&str] = &["pending", "running", "done", "failed", "cancelled"];

pub fn schema() -> Schema {
    use FieldType::*;
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", Integer).query(),
            Field::new("queue", String).query(),
            Field::new("kind", String).query(),
            Field::new("status", Enum(STATUSES)).query(),
            Field::new("payload", Json),
            Field::new("priority", Integer).query(),
            Field::new("run_at", Timestamp).query(),
            Field::new("attempts", Integer).query(),
            Field::new("max_attempts", Integer),
            Field::new("cancel_requested", Boolean).query(),
            Field::new("last_error", String).nullable(),
            Field::new("created_at", Timestamp).query(),
            Field::new("updated_at", Timestamp).query(),
            Field::new("finished_at", Timestamp).nullable().query(),
        ],
    )
}

pub struct JobsService(SqlService);

impl JobsService {
    pub fn new(db: DatabaseConnection) -> Self {
        let options = tenant_options("jobs", schema()).default_sort(vec![("id", Direction::Desc)]);
        Self(SqlService::new(db, options))
    }
}

#[async_trait]
impl Service for JobsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        self.0.find(params).await
    }
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        self.0.find_raw(params).await
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.0.get(id, params).await
    }
}
