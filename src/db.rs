//! Connecting to SQLite or PostgreSQL, and applying migrations.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::sync::OnceLock;
use std::time::Duration;

/// Every statement is prepared once per connection and planned once (PostgreSQL
/// startup option). The statements are templates (tenant, filters and keyset values
/// bound; LIMIT and OFFSET literal), so one plan suits all their executions, while
/// PostgreSQL's own choice replans each execution whenever the generic plan's
/// estimate is above the custom plans' (it was for the page query once the counts
/// table had grown: 0.3 ms of planning for 0.25 ms of execution; measured (a)
/// 2,004 -> 2,663 requests/s, (c) 6,589 -> 8,002, the others equal or better).
const GENERIC_PLANS: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

/// How the server's pool behaves under faults and load (see `config/default.toml`).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// PostgreSQL pool size (SQLite always uses one connection).
    pub max_connections: u32,
    /// Waiting for a free (or new) connection longer than this is a 503.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout`; `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL `lock_timeout`; `None`: no limit.
    pub lock_timeout: Option<Duration>,
    /// SQLite busy timeout: waiting for another connection's lock.
    pub sqlite_busy_timeout: Duration,
}

impl PoolSettings {
    /// No statement or lock timeout: for the commands (migrations may run for minutes).
    pub fn commands(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: None,
            lock_timeout: None,
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }

    /// The server's pool, from its settings.
    pub fn server(settings: &crate::config::Settings) -> Self {
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        Self {
            max_connections: settings.max_connections,
            acquire_timeout: Duration::from_millis(settings.db_acquire_timeout_ms.max(1)),
            statement_timeout: ms(settings.statement_timeout_ms),
            lock_timeout: ms(settings.lock_timeout_ms),
            sqlite_busy_timeout: Duration::from_millis(settings.sqlite_busy_timeout_ms),
        }
    }
}

/// The runtime that owns every database connection of the server.
///
/// A connection's socket belongs to the runtime it was opened on. actix runs each
/// HTTP worker on a runtime of its own, and at shutdown an idle worker's runtime
/// ends at once, breaking the pooled connections it had opened even while another
/// worker's request is using them ("A Tokio 1.x context was found, but it is being
/// shutdown": a 500 for every in-flight request on them). Connections are therefore
/// opened on this runtime, which lives as long as the process: the pool is created
/// on it, and requests are polled inside its context (`app::db_context`), so a
/// connection the pool opens for a request also registers here. Its one thread only
/// drives the I/O and timer drivers and the pool's own tasks.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("db-io")
            .enable_all()
            .build()
            .expect("the database runtime starts")
    })
}

/// Connects without statement or lock timeouts (the commands); for a SQLite file URL,
/// creates its directory first.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, &PoolSettings::commands(max_connections)).await
}

/// Connects on [`runtime`], so the pool's connections outlive the HTTP workers.
pub async fn connect_on_runtime(
    url: &str,
    pool: &PoolSettings,
) -> Result<DatabaseConnection, DbErr> {
    let (url, pool) = (url.to_owned(), pool.clone());
    runtime()
        .spawn(async move { connect_with(&url, &pool).await })
        .await
        .map_err(|e| DbErr::Custom(format!("database runtime: {e}")))?
}

/// Connects with `pool`'s limits; for a SQLite file URL, creates its directory first.
pub async fn connect_with(url: &str, pool: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
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
        options
            .max_connections(pool.max_connections)
            .min_connections(1);
    }
    // Startup options, sent with the connection (no extra round trip): every statement
    // and transaction of the connection runs under them.
    let mut pg_options: Vec<(&'static str, String)> =
        vec![(GENERIC_PLANS.0, GENERIC_PLANS.1.to_owned())];
    if let Some(t) = pool.statement_timeout {
        pg_options.push(("statement_timeout", t.as_millis().to_string()));
    }
    if let Some(t) = pool.lock_timeout {
        pg_options.push(("lock_timeout", t.as_millis().to_string()));
    }
    let busy = pool.sqlite_busy_timeout;
    // The pool pings a connection when it takes it back; pinging again on every checkout
    // would add a third round trip to each query. Only a connection idle long enough to
    // have been dropped (server restart, proxy, firewall) is tested before use.
    options
        .acquire_timeout(pool.acquire_timeout)
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |pg| pg.options(pg_options.iter().cloned()))
        .map_sqlx_sqlite_opts(move |sqlite| sqlite.busy_timeout(busy));
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Turns PostgreSQL NOTIFYs on `channel` into calls of `wake`, on a connection of its
/// own (not one of the request pool's: a pool of one would be taken for good),
/// reconnecting after a failure, until `stop` trips. `wake` also runs once each time
/// it (re)connects: what was notified while it was away is read then. Polling by its
/// users covers the rest. Nothing to do on other databases.
pub async fn listen(
    database_url: String,
    channel: &'static str,
    wake: fn(),
    stop: tokio_util::sync::CancellationToken,
) {
    if !database_url.starts_with("postgres") {
        return;
    }
    while !stop.is_cancelled() {
        let mut listener = match sqlx::postgres::PgListener::connect(&database_url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, channel, "listener cannot connect; polling meanwhile");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => continue,
                }
            }
        };
        if let Err(e) = listener.listen(channel).await {
            tracing::warn!(error = %e, channel, "listener cannot LISTEN");
            continue;
        }
        wake();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => wake(),
                    Err(e) => {
                        tracing::warn!(error = %e, channel, "listener lost its connection");
                        break;
                    }
                },
            }
        }
    }
}
