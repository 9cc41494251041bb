//! Connecting to SQLite or PostgreSQL, and applying migrations.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::time::Duration;

/// Every statement is prepared once per connection and planned once (PostgreSQL
/// startup option). The statements are templates (tenant, filters and keyset values
/// bound; LIMIT and OFFSET literal), so one plan suits all their executions, while
/// PostgreSQL's own choice replans each execution whenever the generic plan's
/// estimate is above the custom plans' (it was for the page query once the counts
/// table had grown: 0.3 ms of planning for 0.25 ms of execution; measured (a)
/// 2,004 -> 2,663 requests/s, (c) 6,589 -> 8,002, the others equal or better).
const GENERIC_PLANS: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

/// Connects; for a SQLite file URL, creates its directory first.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
    {
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        // One connection: SQLite has one writer, and every request's writes are one transaction.
        options.max_connections(1).min_connections(1);
    } else {
        options.max_connections(max_connections).min_connections(1);
    }
    // The pool pings a connection when it takes it back; pinging again on every checkout
    // would add a third round trip to each query. Only a connection idle long enough to
    // have been dropped (server restart, proxy, firewall) is tested before use.
    options
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(|pg| pg.options([GENERIC_PLANS]));
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}
