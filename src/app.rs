//! Builds the server from [`Settings`]: used by `main` and by the tests.

use crate::auth::sealing::Sealer;
use crate::auth::{AuthContext, jwt::JwtKeys, throttle::LoginThrottle};
use crate::config::Settings;
use crate::delivery::limits::AccountLimits;
use crate::delivery::{AgentPhone, Delivery};
use crate::events::Dispatcher;
use crate::events::stream::{self, StreamState};
use crate::feathers::FeathersError;
use crate::feathers::Registry;
use crate::feathers::error::ErrorKind;
use crate::feathers::rate_limit::RateLimit;
use crate::feathers::rest::{RestState, dispatch};
use crate::jobs::{Worker, WorkerConfig};
use crate::webhooks::agentphone::WebhookState;
use actix_web::dev::{Server, Service, ServiceResponse};
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use sha2::Digest;
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
    /// What this instance's other writers (jobs, webhooks) start units of work from.
    pub units: crate::domain::Units,
    /// How this instance runs the `system` queue's jobs.
    jobs: WorkerConfig,
    deliveries: WorkerConfig,
    delivery: Arc<Delivery>,
    bulk_batch_size: u64,
    /// How this instance runs the `automations` queue's jobs.
    automation_jobs: WorkerConfig,
    automations: Arc<crate::automations::Runner>,
    /// For the job workers' and the dispatcher's own NOTIFY connections.
    database_url: String,
    /// Feeds this instance's event streams.
    dispatcher: Arc<Dispatcher>,
    event_retention: chrono::Duration,
    /// The bucket and how often this instance sweeps its orphans (none: never).
    orphan_sweep: Option<(Arc<crate::storage::Storage>, Duration)>,
    /// One stop signal for the server's streams and the background work.
    stop: CancellationToken,
}

/// What stops the server or a command before (or while) it runs, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be used; the sentence says why and how to fix it.
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to the database")]
    Connect(#[source] sea_orm::DbErr),
    #[error("migrations failed")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("cannot listen on {address}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("create-admin failed")]
    Admin(#[from] crate::admin::AdminError),
    #[error("seed failed")]
    Seed(#[from] crate::seed::SeedError),
    #[error("agentphone-import failed")]
    Import(#[source] FeathersError),
}

impl StartError {
    /// The error and its causes, outermost first, as one line.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

/// What writes like the server does, without serving: the authenticator, the
/// services' registry, the units of work they share and the way to AgentPhone.
/// Commands that write (`agentphone-import`) build this alone.
pub struct Writers {
    pub auth: Arc<AuthContext>,
    pub registry: Registry,
    pub units: crate::domain::Units,
    pub agentphone: Arc<AgentPhone>,
    /// The bucket, when one is configured.
    pub storage: Option<Arc<crate::storage::Storage>>,
}

impl Writers {
    pub fn build(settings: &Settings, db: &DatabaseConnection) -> Result<Self, StartError> {
        let secret = settings.jwt_secret().map_err(StartError::Config)?;
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
        let pepper: [u8; 32] = sha2::Sha256::digest(format!("idempotency:{secret}")).into();
        let sealer = Arc::new(
            Sealer::new(settings.secrets_key.as_deref(), &secret)
                .map_err(|e| StartError::Config(format!("secrets_key: {e}")))?,
        );
        let agentphone = Arc::new(AgentPhone {
            sealer: sealer.clone(),
            http: crate::agentphone::Http::new(
                Duration::from_secs(5),
                Duration::from_millis(settings.agentphone_timeout_ms.max(1)),
            )
            .map_err(StartError::Config)?,
            base_url: settings.agentphone_base_url.clone(),
        });
        let storage =
            crate::storage::Storage::from_settings(settings).map_err(StartError::Config)?;
        let units = crate::services::register(
            &mut registry,
            db,
            &auth,
            crate::services::ServiceSettings {
                fixture: settings.conformance_fixture,
                idempotency_pepper: pepper,
                agentphone: agentphone.clone(),
                storage: storage.clone(),
                bulk_sync_limit: settings.bulk_sync_limit,
                webhook_policy: crate::domain::automations::WebhookPolicy {
                    allow_loopback: settings.automation_webhook_allow_loopback,
                },
            },
        );
        Ok(Writers {
            auth,
            registry,
            units,
            agentphone,
            storage,
        })
    }
}

impl Application {
    /// Connects to the database, migrates if configured, and binds `host:port` (port 0 picks one).
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        settings.validate().map_err(StartError::Config)?;
        let pool = crate::db::PoolSettings::server(settings);
        let in_memory = settings.database_url.contains(":memory:");
        if settings.auto_migrate && !in_memory {
            // On a connection of its own, without the pool's statement and lock timeouts:
            // a migration may rewrite a table for minutes.
            let migrator = crate::db::connect(&settings.database_url, 1)
                .await
                .map_err(StartError::Connect)?;
            crate::db::migrate(&migrator)
                .await
                .map_err(StartError::Migrate)?;
            let _ = migrator.close().await;
        }
        let db = crate::db::connect_on_runtime(&settings.database_url, &pool)
            .await
            .map_err(StartError::Connect)?;
        if settings.auto_migrate && in_memory {
            crate::db::migrate(&db).await.map_err(StartError::Migrate)?;
        }
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .map_err(|source| StartError::Listen { address, source })?;
        Self::with_listener(settings, db, listener)
    }

    /// Builds the app on an existing connection and listener.
    pub fn with_listener(
        settings: &Settings,
        db: DatabaseConnection,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        let local = listener.local_addr();
        let port = local
            .map_err(|source| StartError::Listen {
                address: "the given listener".into(),
                source,
            })?
            .port();
        let Writers {
            auth,
            mut registry,
            units,
            agentphone,
            storage,
        } = Writers::build(settings, &db)?;
        let sealer = agentphone.sealer.clone();
        let orphan_sweep = (settings.s3_orphan_sweep_secs > 0)
            .then(|| storage.clone())
            .flatten()
            .map(|s| (s, Duration::from_secs(settings.s3_orphan_sweep_secs)));
        let delivery = Arc::new(Delivery {
            units: units.clone(),
            storage,
            agentphone: agentphone.clone(),
            limits: AccountLimits::new(settings.agentphone_account_concurrency),
        });
        let automations = Arc::new(crate::automations::Runner {
            units: units.clone(),
            sealer: sealer.clone(),
            webhook_timeout: Duration::from_millis(settings.automation_webhook_timeout_ms.max(1)),
            policy: crate::domain::automations::WebhookPolicy {
                allow_loopback: settings.automation_webhook_allow_loopback,
            },
        });
        let webhooks = web::Data::new(WebhookState {
            units: units.clone(),
            sealer: sealer.clone(),
            max_body_bytes: settings.max_body_bytes,
            body_timeout: Duration::from_millis(settings.body_timeout_ms.max(1)),
        });
        registry.add_cache("principals", auth.clone());
        let dispatcher = Arc::new(Dispatcher::new(
            db.clone(),
            crate::events::dispatcher::BUFFER,
        ));
        registry.set_position(dispatcher.clone());
        let stop = CancellationToken::new();
        let streams = web::Data::new(StreamState {
            db: db.clone(),
            auth: auth.clone(),
            dispatcher: dispatcher.clone(),
            paths: registry.paths().map(str::to_string).collect(),
            keep_alive: Duration::from_millis(settings.event_keep_alive_ms.max(1)),
            streams: (settings.max_event_streams > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(settings.max_event_streams))),
            stop: stop.clone(),
        });
        let registry = Arc::new(registry);
        let state = web::Data::new(RestState {
            registry: registry.clone(),
            authenticator: auth,
            max_body_bytes: settings.max_body_bytes,
            max_answer_bytes: settings.max_answer_bytes,
            body_timeout: Duration::from_millis(settings.body_timeout_ms.max(1)),
            rate_limit: RateLimit::new(
                settings.rate_limit_requests,
                Duration::from_secs(settings.rate_limit_window_secs),
            ),
        });
        let ready = web::Data::new(Readiness {
            db: db.clone(),
            timeout: Duration::from_millis(settings.readyz_timeout_ms.max(1)),
        });
        let in_flight = InFlight::new(settings.max_in_flight);
        let server = HttpServer::new(move || {
            let in_flight = in_flight.clone();
            App::new()
                .wrap_fn(|req, srv| db_context(srv.call(req)))
                .wrap_fn(move |req, srv| {
                    let permit = match in_flight.admit(req.path()) {
                        Ok(permit) => permit,
                        Err(refusal) => {
                            let response = req.into_response(refusal.error_response());
                            return Box::pin(std::future::ready(Ok(response))) as Pending<_>;
                        }
                    };
                    let call = srv.call(req);
                    Box::pin(async move {
                        let response = call.await;
                        drop(permit);
                        response
                    })
                })
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(state.clone())
                .app_data(ready.clone())
                .app_data(streams.clone())
                .app_data(webhooks.clone())
                .service(
                    web::resource("/webhooks/agentphone/{account_id}")
                        .post(crate::webhooks::agentphone::receive)
                        .default_service(web::to(stream::not_allowed)),
                )
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .service(
                    web::resource("/events")
                        .get(stream::subscribe)
                        .default_service(web::to(stream::not_allowed)),
                )
                .service(
                    web::resource("/event-tokens")
                        .post(stream::mint_token)
                        .default_service(web::to(stream::not_allowed)),
                )
                .default_service(web::to(dispatch))
        })
        .workers(workers(settings.workers_per_core))
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|source| StartError::Listen {
            address: format!("port {port}"),
            source,
        })?
        .run();
        let mut jobs = WorkerConfig::new(crate::jobs::kinds::SYSTEM);
        jobs.concurrency = settings.job_concurrency;
        jobs.lease = chrono::Duration::seconds(settings.job_lease_secs.max(1));
        jobs.shutdown_grace = Duration::from_secs(settings.job_shutdown_grace_secs);
        let mut deliveries = jobs.clone();
        deliveries.queue = crate::jobs::kinds::DELIVERY;
        deliveries.concurrency = settings.delivery_concurrency;
        // A send waits out at most one AgentPhone timeout: the lease outlives it.
        deliveries.lease = jobs.lease.max(chrono::Duration::milliseconds(
            settings.agentphone_timeout_ms as i64 * 2,
        ));
        // Automation runs: their own queue and workers (a run waits on webhooks; a
        // backlog of runs never delays the system's work or deliveries). A run waits
        // out at most one webhook timeout per step: the lease outlives it.
        let mut automation_jobs = jobs.clone();
        automation_jobs.queue = crate::jobs::kinds::AUTOMATIONS;
        automation_jobs.concurrency = settings.automation_concurrency;
        automation_jobs.lease = jobs.lease.max(chrono::Duration::milliseconds(
            settings.automation_webhook_timeout_ms as i64 * 2,
        ));
        Ok(Self {
            port,
            server,
            db,
            registry,
            units,
            jobs,
            deliveries,
            delivery,
            bulk_batch_size: settings.bulk_batch_size,
            automation_jobs,
            automations,
            database_url: settings.database_url.clone(),
            dispatcher,
            event_retention: chrono::Duration::days(settings.event_retention_days),
            orphan_sweep,
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM drain in-flight requests).
    /// One stop signal for everything: SIGTERM or SIGINT stops the server (it drains
    /// in-flight requests) and, at the same moment, the job workers (they claim
    /// nothing more, finish running jobs within their grace, hand the rest back).
    /// Event streams end at the same signal (they would hold the drain for good).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.stop.clone();
        tokio::spawn(stop_on_signal(stop.clone()));
        // Background work runs on the database runtime (its connections belong there,
        // see `db::runtime`); the sets abort what they hold if this future is dropped.
        let on_db = crate::db::runtime().handle();
        let mut periodic = tokio::task::JoinSet::new();
        periodic.spawn_on(
            crate::messaging::idempotency::purge_periodically(
                self.db.clone(),
                Duration::from_secs(600),
            ),
            on_db,
        );
        periodic.spawn_on(
            crate::webhooks::prune_periodically(self.db.clone(), Duration::from_secs(3600)),
            on_db,
        );
        periodic.spawn_on(
            crate::jobs::worker::prune_periodically(self.db.clone(), Duration::from_secs(3600)),
            on_db,
        );
        periodic.spawn_on(
            crate::events::dispatcher::prune_periodically(
                self.db.clone(),
                self.event_retention,
                Duration::from_secs(3600),
            ),
            on_db,
        );
        if let Some((storage, every)) = self.orphan_sweep.clone() {
            periodic.spawn_on(
                crate::storage::orphans::sweep_periodically(self.db.clone(), storage, every),
                on_db,
            );
        }
        let mut workers = tokio::task::JoinSet::new();
        // The position is read before the first request is served, so that every
        // answer carries `X-Last-Event-Id` (the run loop retries if this fails).
        let dispatcher = self.dispatcher.clone();
        match on_db.spawn(async move { dispatcher.start().await }).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "the event dispatcher could not start")
            }
            Err(e) => tracing::warn!(error = %e, "the event dispatcher could not start"),
        }
        workers.spawn_on(self.dispatcher.clone().run(stop.clone()), on_db);
        workers.spawn_on(
            crate::events::dispatcher::listen(self.database_url.clone(), stop.clone()),
            on_db,
        );
        if self.jobs.concurrency > 0
            || self.deliveries.concurrency > 0
            || self.automation_jobs.concurrency > 0
        {
            workers.spawn_on(
                crate::jobs::worker::listen(self.database_url.clone(), stop.clone()),
                on_db,
            );
        }
        if self.deliveries.concurrency > 0 {
            let worker = Worker::new(
                self.db.clone(),
                self.deliveries.clone(),
                crate::delivery::handlers(self.delivery.clone()),
            );
            workers.spawn_on(worker.run(stop.clone()), on_db);
        }
        if self.automation_jobs.concurrency > 0 {
            let worker = Worker::new(
                self.db.clone(),
                self.automation_jobs.clone(),
                crate::automations::handlers(self.automations.clone()),
            );
            workers.spawn_on(worker.run(stop.clone()), on_db);
        }
        if self.jobs.concurrency > 0 {
            let mut handlers = crate::jobs::kinds::system();
            handlers.extend(crate::bulk::handlers(
                self.units.clone(),
                self.bulk_batch_size,
            ));
            let worker = Worker::new(self.db.clone(), self.jobs.clone(), handlers);
            workers.spawn_on(worker.run(stop.clone()), on_db);
        }
        let result = self.server.await;
        stop.cancel();
        while workers.join_next().await.is_some() {}
        periodic.abort_all();
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

/// What `/readyz` checks, and how long it waits.
struct Readiness {
    db: DatabaseConnection,
    timeout: Duration,
}

/// Ready when the database answers within `readyz_timeout_ms` (a load balancer's
/// check gets a 503, not a hang, when the database is down, frozen or the pool is
/// saturated).
async fn readyz(ready: web::Data<Readiness>) -> HttpResponse {
    let error =
        match tokio::time::timeout(ready.timeout, ready.db.execute_unprepared("SELECT 1")).await {
            Ok(Ok(_)) => {
                return HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" }));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", ready.timeout.as_millis()),
        };
    tracing::warn!(error = %error, "readiness check failed");
    FeathersError::new(ErrorKind::Unavailable, "Database unavailable").error_response()
}

/// A response future of the middlewares.
type Pending<B> =
    std::pin::Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, actix_web::Error>>>>;

/// Polls a request's future inside the database runtime's context
/// ([`crate::db::runtime`]), so that a connection the pool opens for it (and any
/// timer it sets) belongs to that runtime, not to the HTTP worker's: at shutdown,
/// idle workers end while other workers' requests still use the shared pool.
fn db_context<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    struct InContext<F> {
        handle: tokio::runtime::Handle,
        fut: std::pin::Pin<Box<F>>,
    }
    impl<F: Future> Future for InContext<F> {
        type Output = F::Output;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<F::Output> {
            let this = &mut *self;
            let _entered = this.handle.enter();
            this.fut.as_mut().poll(cx)
        }
    }
    InContext {
        handle: crate::db::runtime().handle().clone(),
        fut: Box::pin(fut),
    }
}

/// Bounds the requests served at once (`max_in_flight`); the excess is refused at
/// once with 503 and `Retry-After` instead of queueing for the pool. `/healthz` and
/// `/readyz` are neither counted nor refused: a probe must see the instance's state,
/// and `/readyz` has its own timeout; nor is `/events`, whose streams have their own cap.
#[derive(Clone)]
struct InFlight(Option<Arc<tokio::sync::Semaphore>>);

impl InFlight {
    fn new(max: usize) -> Self {
        Self((max > 0).then(|| Arc::new(tokio::sync::Semaphore::new(max))))
    }

    fn admit(
        &self,
        path: &str,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, FeathersError> {
        let Some(limit) = &self.0 else {
            return Ok(None);
        };
        // Streams last: they have their own cap (`max_event_streams`).
        if path == "/healthz" || path == "/readyz" || path == "/events" {
            return Ok(None);
        }
        match limit.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                tracing::debug!("shed: too many requests in flight");
                Err(FeathersError::new(
                    ErrorKind::Unavailable,
                    "The server is at capacity, try again later",
                ))
            }
        }
    }
}
