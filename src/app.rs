//! Builds the server from [`Settings`]: used by `main` and by the tests.

use crate::auth::{AuthContext, jwt::JwtKeys};
use crate::config::Settings;
use crate::feathers::Registry;
use crate::feathers::rate_limit::RateLimit;
use crate::feathers::rest::{RestState, dispatch};
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    pub db: DatabaseConnection,
    pub registry: Arc<Registry>,
}

impl Application {
    /// Connects to the database, migrates if configured, and binds `host:port` (port 0 picks one).
    pub async fn build(settings: &Settings) -> Result<Self, String> {
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
        let auth = Arc::new(AuthContext {
            db: db.clone(),
            keys: JwtKeys::new(
                &settings.jwt_secret,
                &settings.jwt_audience,
                settings.jwt_expires_secs,
            ),
            cache: Default::default(),
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
        Ok(Self {
            port,
            server,
            db,
            registry,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM drain in-flight requests).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
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
