//! The write a call is part of, as this layer sees it: one open transaction shared
//! by the call's hooks and its service (as the knex adapter's `params.transaction`),
//! and the events its changes produce. The app supplies it (an around hook puts it
//! in [`Params::unit`](super::Params::unit)); the registry records each method's
//! result in it, the app's code records the side effects.

use super::error::Result;
use async_trait::async_trait;
use sea_orm::DatabaseTransaction;
use serde_json::Value;
use std::any::Any;

#[async_trait]
pub trait Unit: Send + Sync {
    /// The transaction, begun at its first use.
    async fn conn(&self) -> Result<&DatabaseTransaction>;
    /// Records `event` on `path` for one record of a method's result (unless the
    /// app's code already recorded that record in this unit).
    fn record(&self, path: &str, event: &'static str, data: Value);
    /// The app's own type behind this trait.
    fn as_any(&self) -> &dyn Any;
}
