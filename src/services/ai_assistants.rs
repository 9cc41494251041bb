//! `/ai-assistants`: the AI assistants conversations can be assigned to (admins
//! write: the `admin_only` hook at its declaration).

use super::common::{tenant_options, tenant_schema};
use crate::feathers::{Field, FieldType, SqlService};
use sea_orm::DatabaseConnection;

pub fn service(db: DatabaseConnection) -> SqlService {
    let schema = tenant_schema(vec![
        Field::new("name", FieldType::String)
            .query()
            .like()
            .required()
            .write()
            .max_len(100)
            .non_blank(),
    ]);
    SqlService::new(db, tenant_options("ai_assistants", schema))
}
