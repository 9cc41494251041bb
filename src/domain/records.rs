//! How the records a change touched read for its events: each path's read adapter
//! (the services' SQL bindings, declared once at startup), so a side effect's event
//! carries the record exactly as `get` on its path would show it.

use crate::feathers::{Result, SqlService};
use sea_orm::ConnectionTrait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Readers(Arc<HashMap<String, SqlService>>);

impl Readers {
    pub fn new(readers: HashMap<String, SqlService>) -> Self {
        Self(Arc::new(readers))
    }

    /// The records of `path` with these ids, as they are now in `conn`'s transaction.
    pub async fn read<C: ConnectionTrait>(
        &self,
        conn: &C,
        path: &str,
        ids: &[i64],
    ) -> Result<Vec<Value>> {
        match self.0.get(path) {
            Some(sql) => sql.read_by_ids(conn, ids, None).await,
            None => Err(crate::feathers::FeathersError::general(format!(
                "no reader for {path}"
            ))),
        }
    }
}
