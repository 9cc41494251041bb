//! Builds the server from [`Settings`]: used by `main` and by the tests.

use crate::auth::{AuthContext, jwt::JwtKeys, throttle::LoginThrottle};
use crate::config::Settings;
use crate::feathers::Registry;
use crate::feathers::rate_limit::RateLimit;
use crate::feathers::rest::{RestState, dispatch};
use crate::jobs::{Worker, WorkerConfig};
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    pub db: DatabaseConnection,
    pub registry: Arc<Registry>,
    /// How this instance runs the `system` queue's jobs.
    jobs: WorkerConfig,
}

impl Application {
    /// Connects to the database, migrates if configured, and binds `host:port` (port 0 picks one).
    pub async fn build(settings: &Settings) -> Result<Self, String> {
        settings.validate()?;
        let db = crate::db::connect(&settings.database_url, settings.max_connections)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        if settings.auto_migrate {
            crate::db::migrate(&db)
                .await
                .map_err(|e| format!("migrations failed: {e}"))?;
        }
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .map_err(|e| format!("cannot bind {}:{}: {e}", settings.host, settings.port))?;
        Self::with_listener(settings, db, listener)
    }

    /// Builds the app on an existing connection and listener.
    pub fn with_listener(
        settings: &Settings,
        db: DatabaseConnection,
        listener: TcpListener,
    ) -> Result<Self, String> {
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let secret = settings.jwt_secret()?;
        let auth = Arc::new(AuthContext {
            db: db.clone(),
            keys: JwtKeys::new(&secret, &settings.jwt_audience, settings.jwt_expires_secs),
            cache: Default::default(),
            throttle: LoginThrottle::new(
                settings.login_failures_per_email,
                settings.login_failures_per_address,
                Duration::from_secs(settings.login_failure_window_secs),
            ),
        });
        let mut registry = Registry::new();
        crate::services::register(&mut registry, &db, &auth, settings.conformance_fixture);
        registry.add_cache("principals", auth.clone());
        let registry = Arc::new(registry);
        let state = web::Data::new(RestState {
            registry: registry.clone(),
            authenticator: auth,
            max_body_bytes: settings.max_body_bytes,
            max_answer_bytes: settings.max_answer_bytes,
            rate_limit: RateLimit::new(
                settings.rate_limit_requests,
                Duration::from_secs(settings.rate_limit_window_secs),
            ),
        });
        let ready_db = web::Data::new(db.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(ready_db.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .default_service(web::to(dispatch))
        })
        .workers(workers(settings.workers_per_core))
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
        let mut jobs = WorkerConfig::new(crate::jobs::kinds::SYSTEM);
        jobs.concurrency = settings.job_concurrency;
        jobs.lease = chrono::Duration::seconds(settings.job_lease_secs.max(1));
        jobs.shutdown_grace = Duration::from_secs(settings.job_shutdown_grace_secs);
        Ok(Self {
            port,
            server,
            db,
            registry,
            jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM drain in-flight requests).
    /// One stop signal for everything: SIGTERM or SIGINT stops the server (it drains
    /// in-flight requests) and, at the same moment, the job workers (they claim
    /// nothing more, finish running jobs within their grace, hand the rest back).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        let purge = tokio::spawn(crate::messaging::idempotency::purge_periodically(
            self.db.clone(),
            Duration::from_secs(600),
        ));
        let mut background = tokio::task::JoinSet::new();
        if self.jobs.concurrency > 0 {
            background.spawn(crate::jobs::worker::listen(self.db.clone(), stop.clone()));
            background.spawn(
                Worker::new(
                    self.db.clone(),
                    self.jobs.clone(),
                    crate::jobs::kinds::system(),
                )
                .run(stop.clone()),
            );
        }
        let result = self.server.await;
        stop.cancel();
        while background.join_next().await.is_some() {}
        purge.abort();
        result
    }
}

/// Trips `stop` at the first SIGTERM or SIGINT (the server watches them itself).
async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    stop.cancel();
}

/// Worker threads: `per_core` for each CPU this process may use (at least one).
fn workers(per_core: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (per_core * cores).max(1)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the database answers.
async fn readyz(db: web::Data<DatabaseConnection>) -> HttpResponse {
    match db.execute_unprepared("SELECT 1").await {
        Ok(_) => HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(
                crate::feathers::FeathersError::new(
                    crate::feathers::error::ErrorKind::Unavailable,
                    "Database unavailable",
                )
                .to_json(),
            )
        }
    }
}
