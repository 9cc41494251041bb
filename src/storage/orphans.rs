//! Orphans: an upload that was signed but never registered leaves an object behind.
//! The sweep lists everything under `org/`, and removes each object older than
//! `s3_orphan_age_secs` that no file record and no message's media names (a message
//! may carry media fields without a file record). Any instance may run it; two at
//! once delete the same objects, which S3 takes twice without harm.

use super::{Storage, keys};
use crate::domain::{conversation_files, messages};
use crate::feathers::Result;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub listed: usize,
    pub removed: Vec<String>,
}

/// One sweep of the bucket's `org/` prefix.
pub async fn sweep(db: &DatabaseConnection, storage: &Storage) -> Result<Swept> {
    let age = chrono::Duration::from_std(storage.orphan_age).unwrap_or(chrono::Duration::days(1));
    let cutoff = Utc::now() - age;
    let mut out = Swept::default();
    let mut token = None;
    loop {
        let (page, next) = storage.list("org/", token).await?;
        out.listed += page.len();
        let old: Vec<String> = (page.into_iter())
            .filter(|o| o.last_modified.is_some_and(|t| t <= cutoff))
            .map(|o| o.key)
            .collect();
        let named = conversation_files::named_keys(db, &old).await?;
        let mut by_conversation: HashMap<(i64, i64), Vec<String>> = HashMap::new();
        for key in old.into_iter().filter(|k| !named.contains(k)) {
            // A key not of the shape we write (a canned reply's file, say) is never ours to remove.
            if let Some(owner) = keys::key_owner(&key) {
                by_conversation.entry(owner).or_default().push(key);
            }
        }
        for ((org, conversation), candidates) in by_conversation {
            let kept = messages::media_keys(db, org, conversation).await?;
            for key in candidates.into_iter().filter(|k| !kept.contains(k)) {
                storage.delete(&key).await?;
                tracing::info!(key = %key, "removed an orphaned upload");
                out.removed.push(key);
            }
        }
        match next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Sweeps every `every` (the first one after `every`), logging failures.
pub async fn sweep_periodically(db: DatabaseConnection, storage: Arc<Storage>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&db, &storage).await {
            tracing::warn!(error = %e.message, cause = %e.chain(), "the orphan sweep failed");
        }
    }
}
