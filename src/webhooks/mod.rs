//! Providers' webhooks: one URL per channel account (so the right secret checks the
//! signature), outside the services' authentication and the per-organization request
//! limit (a provider's retries must not be refused for its tenant's traffic).

pub mod agentphone;

/// How long a delivery's receipt is kept: AgentPhone stops redelivering after about a
/// day; a message id stays deduplicated by its message after that.
pub const RECEIPT_DAYS: i64 = 7;

/// Forgets old receipts every `every`.
pub async fn prune_periodically(db: sea_orm::DatabaseConnection, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let before = chrono::Utc::now() - chrono::Duration::days(RECEIPT_DAYS);
        match crate::domain::webhook_receipts::prune(&db, before).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "old webhook receipts pruned"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "pruning webhook receipts failed")
            }
        }
    }
}
