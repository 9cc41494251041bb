//! Test harness: the app on 127.0.0.1:0 against a fresh database per test
//! (a SQLite file, or a new PostgreSQL database when `TEST_DATABASE_URL` is set),
//! with a fresh organization, its admin and a token.

#![allow(dead_code)]

use inbox_gateway::app::Application;
use inbox_gateway::config::Settings;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub database_url: String,
    /// The app's service registry (its caches).
    pub registry: std::sync::Arc<inbox_gateway::feathers::Registry>,
    /// What the app's own writers start units of work from.
    pub units: inbox_gateway::domain::Units,
    /// The first organization and its admin.
    pub org: Tenant,
    /// The app's JWT secret (random per app).
    pub jwt_secret: String,
}

impl Drop for TestApp {
    /// Drops the test's database: PostgreSQL ones with `WITH (FORCE)` (the app still
    /// holds connections), SQLite files by deleting them.
    fn drop(&mut self) {
        let url = self.database_url.clone();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path).to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{file}{suffix}"));
            }
            return;
        }
        let (Ok(admin), Some((_, name))) =
            (std::env::var("TEST_DATABASE_URL"), url.rsplit_once('/'))
        else {
            return;
        };
        let name = name.to_string();
        // A thread of its own: this runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let db = sea_orm::Database::connect(&admin).await.ok()?;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// One organization as seen by one of its users.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub org_id: i64,
    pub user_id: i64,
    pub email: String,
    pub token: String,
}

pub fn settings(database_url: &str) -> Settings {
    Settings {
        env: "test".into(),
        host: "127.0.0.1".into(),
        port: 0,
        database_url: database_url.into(),
        // A random secret per app: tests that sign tokens read it from `TestApp::jwt_secret`.
        jwt_secret: Some(format!(
            "test-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )),
        data_dir: None,
        jwt_audience: "https://yourdomain.com".into(),
        jwt_expires_secs: 3600,
        max_body_bytes: 64 * 1024,
        auto_migrate: true,
        conformance_fixture: true,
        max_connections: 4,
        workers_per_core: 1,
        rate_limit_requests: 1000,
        rate_limit_window_secs: 3600,
        login_failures_per_email: 10,
        login_failures_per_address: 50,
        login_failure_window_secs: 900,
        job_concurrency: 2,
        job_lease_secs: 30,
        job_shutdown_grace_secs: 2,
        max_answer_bytes: 8 << 20,
        statement_timeout_ms: 5000,
        lock_timeout_ms: 1000,
        db_acquire_timeout_ms: 2000,
        sqlite_busy_timeout_ms: 2000,
        readyz_timeout_ms: 1000,
        max_in_flight: 512,
        body_timeout_ms: 10_000,
        shutdown_timeout_secs: 30,
        event_retention_days: 7,
        max_event_streams: 10_000,
        event_keep_alive_ms: 15_000,
        secrets_key: None,
        // Nothing real is reachable from tests: a test that sends points it at its fake.
        agentphone_base_url: "http://127.0.0.1:9".into(),
        agentphone_timeout_ms: 2_000,
        agentphone_account_concurrency: 4,
        delivery_concurrency: 16,
        bulk_sync_limit: 1000,
        bulk_batch_size: 1000,
        automation_concurrency: 2,
        automation_webhook_timeout_ms: 2_000,
        // Tests' receivers listen on 127.0.0.1.
        automation_webhook_allow_loopback: true,
        // No storage unless a test configures it (`crate::fake_s3`).
        s3_bucket: None,
        s3_region: "us-east-1".into(),
        s3_endpoint: None,
        s3_force_path_style: false,
        s3_access_key_id: None,
        s3_secret_access_key: None,
        s3_session_token: None,
        s3_upload_url_secs: 900,
        s3_download_url_secs: 300,
        s3_delivery_url_secs: 86_400,
        s3_orphan_age_secs: 86_400,
        s3_orphan_sweep_secs: 0,
        s3_limits: Default::default(),
    }
}

/// A database URL no other test uses.
pub async fn fresh_database() -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let admin = sea_orm::Database::connect(&admin_url)
                .await
                .expect("connect TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .expect("database url with a name");
            format!("{base}/{name}")
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        inbox_gateway::telemetry::init();
    }
    let database_url = fresh_database().await;
    let mut settings = settings(&database_url);
    adjust(&mut settings);
    let jwt_secret = settings.jwt_secret().expect("the JWT secret");
    let app = Application::build(&settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.db.clone();
    let registry = app.registry.clone();
    let units = app.units.clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let mut test = TestApp {
        base,
        client,
        db,
        database_url,
        registry,
        units,
        jwt_secret,
        org: Tenant {
            org_id: 0,
            user_id: 0,
            email: String::new(),
            token: String::new(),
        },
    };
    test.org = test.new_tenant("Acme").await;
    test
}

/// Another instance of the app on `app`'s database, with its secrets (so it opens
/// what the first sealed) and `adjust`ed settings, serving in the background: a
/// restart, or a second worker.
pub async fn another_instance(app: &TestApp, adjust: impl FnOnce(&mut Settings)) {
    let mut s = settings(&app.database_url);
    s.jwt_secret = Some(app.jwt_secret.clone());
    adjust(&mut s);
    let instance = Application::build(&s).await.expect("app builds");
    actix_web::rt::spawn(instance.run_until_stopped());
}

impl TestApp {
    /// A new organization with its admin, logged in.
    pub async fn new_tenant(&self, name: &str) -> Tenant {
        let email = format!(
            "admin-{}@{}.test",
            uuid::Uuid::new_v4().simple(),
            name.to_lowercase()
        );
        let (org_id, user_id) =
            inbox_gateway::admin::create_admin(&self.db, name, &email, "admin-password")
                .await
                .expect("create admin");
        let token = self.login(&email, "admin-password").await;
        Tenant {
            org_id,
            user_id,
            email,
            token,
        }
    }

    /// Logs in with the local strategy and answers the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/authentication",
                Some(json!({"strategy":"local","email":email,"password":password})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "login failed: {body}");
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_string()
    }

    /// A user of `tenant`'s organization with `role`, logged in.
    pub async fn new_user(&self, tenant: &Tenant, role: &str) -> Tenant {
        let email = format!("{role}-{}@example.test", uuid::Uuid::new_v4().simple());
        let (status, user) = self
            .call(
                Method::POST,
                "/users",
                Some(json!({"email": email, "password": "user-password", "role": role, "first_name": "Test"})),
                Some(&tenant.token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let token = self.login(&email, "user-password").await;
        Tenant {
            org_id: tenant.org_id,
            user_id: user["id"].as_i64().unwrap(),
            email,
            token,
        }
    }

    /// Any call; `token` is sent as a Bearer token. Answers status and JSON body (Null if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Calls as the first organization's admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, Some(&self.org.token))
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), Some(&self.org.token))
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body), Some(&self.org.token))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body), Some(&self.org.token))
            .await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None, Some(&self.org.token))
            .await
    }

    /// Creates a record as the first organization's admin and answers it (asserting 201).
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, record) = self.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {record}");
        record
    }
}

/// Asserts a Feathers error: status, `name` and `code`.
pub fn assert_error(status: StatusCode, body: &Value, expected: u16, name: &str) {
    assert_eq!(status.as_u16(), expected, "unexpected status, body: {body}");
    assert_eq!(body["name"], name, "error name, body: {body}");
    assert_eq!(body["code"], expected, "error code, body: {body}");
    assert!(body["className"].is_string(), "className missing: {body}");
}

impl TestApp {
    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A raw request as the first organization's admin (for raw bodies, headers, verbs).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.org.token)
    }

    /// Any call as `tenant` (one of its users, by its token).
    pub async fn call_as(
        &self,
        tenant: &Tenant,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, body, Some(&tenant.token)).await
    }
}

/// Sends a raw request and answers status and JSON body (Null if empty).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let text = res.text().await.expect("body read");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The `id`s of an array of records (or of a page's `data`), in order.
pub fn ids(body: &Value) -> Vec<i64> {
    records(body)
        .iter()
        .map(|r| {
            r["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("record without a numeric id: {r}"))
        })
        .collect()
}

/// The records of a find answer: the array itself, or a page's `data`.
pub fn records(body: &Value) -> &Vec<Value> {
    body.as_array()
        .or_else(|| body["data"].as_array())
        .unwrap_or_else(|| panic!("expected an array or a page: {body}"))
}

// Domain helpers: contacts, conversations and direct database setup.

/// A find/get as the first organization's admin, asserting 200; answers the body.
pub async fn get_ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// A patch as the first organization's admin, asserting 200; answers the record.
pub async fn patch_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, record) = app.patch(path, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "PATCH {path} {body}: {record}");
    record
}

/// The `total` of a find as the first organization's admin.
pub async fn total_of(app: &TestApp, path: &str) -> i64 {
    let body = get_ok(app, path).await;
    body["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("GET {path}: no total in {body}"))
}

/// Creates a contact as the first organization's admin and answers it.
pub async fn create_contact(app: &TestApp, body: Value) -> Value {
    app.create("/contacts", body).await
}

/// Inserts a conversation created now (there is no REST create: they come from
/// messages) and answers its id.
pub async fn create_conversation(
    app: &TestApp,
    organization_id: i64,
    contact_id: i64,
    channel: &str,
    status: &str,
) -> i64 {
    create_conversation_at(
        app,
        organization_id,
        contact_id,
        channel,
        status,
        chrono::Utc::now(),
    )
    .await
}

/// Inserts a conversation created (and last interacted with) at `created_at`.
pub async fn create_conversation_at(
    app: &TestApp,
    organization_id: i64,
    contact_id: i64,
    channel: &str,
    status: &str,
    created_at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    inbox_gateway::domain::conversations::insert(
        &app.db,
        organization_id,
        &inbox_gateway::domain::conversations::NewConversation {
            status: inbox_gateway::domain::conversations::Status::parse(status)
                .expect("a conversation status"),
            ..inbox_gateway::domain::conversations::NewConversation::new(
                contact_id, channel, created_at,
            )
        },
    )
    .await
    .expect("insert conversation")
    .0
}

/// Sets a timestamp column of one conversation that the API does not let clients
/// write (`waiting_since`, `last_interaction_at`); the value is bound, so each
/// database stores it in its own format. Setup only.
pub async fn set_conversation_time(
    app: &TestApp,
    conversation_id: i64,
    column: &str,
    value: Option<chrono::DateTime<chrono::Utc>>,
) {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let mut update = Query::update();
    update
        .table(Alias::new("conversations"))
        .value(Alias::new(column), value)
        .and_where(Expr::col(Alias::new("id")).eq(conversation_id));
    app.db.execute(&update).await.expect("update conversation");
}

/// Runs SQL on the app's database (setup, or a bulk write the API does not offer).
pub async fn exec_sql(app: &TestApp, sql: &str) {
    app.db
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first column of the first row of `sql`, as an integer (for `COUNT(*)` checks).
pub async fn sql_i64(app: &TestApp, sql: &str) -> i64 {
    let stmt = sea_orm::Statement::from_string(app.db.get_database_backend(), sql.to_string());
    app.db
        .query_one_raw(stmt)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
        .try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

// Messages: contacts with an address on every channel, conversations ready to
// send on, and messages stored directly (setup for lists).

/// A timestamp as the API writes it (UTC, milliseconds, `Z`).
pub fn api_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Creates a contact as one of `tenant`'s users and answers its id.
pub async fn create_contact_as(app: &TestApp, tenant: &Tenant, body: Value) -> i64 {
    let (status, contact) = app
        .call(Method::POST, "/contacts", Some(body), Some(&tenant.token))
        .await;
    assert_eq!(status, StatusCode::CREATED, "POST /contacts: {contact}");
    contact["id"].as_i64().expect("contact id")
}

/// A contact of `tenant`'s organization reachable on every channel (phone,
/// WhatsApp id, Instagram id) and an open conversation of `channel` with it,
/// created now; a Messenger conversation gets its PSID as `external_id`.
/// Answers (contact id, conversation id).
pub async fn channel_conversation(app: &TestApp, tenant: &Tenant, channel: &str) -> (i64, i64) {
    let contact = create_contact_as(
        app,
        tenant,
        json!({
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+15550001111",
            "channel_whatsapp_wa_id": "15550001111",
            "channel_instagram_user_id": "IG-17841",
        }),
    )
    .await;
    let conversation = create_conversation(app, tenant.org_id, contact, channel, "open").await;
    if channel == "messenger" {
        set_conversation_external_id(app, conversation, "PSID-2718").await;
    }
    (contact, conversation)
}

/// Sets `external_id` of one conversation (the Messenger PSID). Setup only.
pub async fn set_conversation_external_id(app: &TestApp, conversation_id: i64, external_id: &str) {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let mut update = Query::update();
    update
        .table(Alias::new("conversations"))
        .value(Alias::new("external_id"), external_id)
        .and_where(Expr::col(Alias::new("id")).eq(conversation_id));
    app.db.execute(&update).await.expect("update conversation");
}

/// A message as `inbox_gateway::domain::messages::insert` takes it: by default an
/// inbound text from the contact, `received`, created now; `adjust` changes it.
pub fn message_draft(
    organization_id: i64,
    conversation_id: i64,
    channel: &str,
    adjust: impl FnOnce(&mut inbox_gateway::domain::messages::NewMessage),
) -> inbox_gateway::domain::messages::NewMessage {
    let mut draft = inbox_gateway::domain::messages::NewMessage {
        organization_id,
        conversation_id,
        channel: channel.to_string(),
        direction: "inbound",
        message_type: "text".into(),
        sender_type: "contact",
        sender_id: None,
        text: Some("hello".into()),
        media: None,
        template: None,
        payload: None,
        reply_to_message_id: None,
        send_style: None,
        delivery_status: Some("received"),
        idempotency_key: None,
        channel_account_id: None,
        external_id: None,
        transport: None,
        created_at: chrono::Utc::now(),
    };
    adjust(&mut draft);
    draft
}

/// Stores a message directly (no rules, no effect on the conversation) and answers its id.
pub async fn insert_message(
    app: &TestApp,
    organization_id: i64,
    conversation_id: i64,
    channel: &str,
    adjust: impl FnOnce(&mut inbox_gateway::domain::messages::NewMessage),
) -> i64 {
    let draft = message_draft(organization_id, conversation_id, channel, adjust);
    inbox_gateway::domain::messages::insert(&app.db, &draft)
        .await
        .expect("insert message")
        .0
}

/// Sets `external_id` of one message (the provider's id, for replies). Setup only.
pub async fn set_message_external_id(app: &TestApp, message_id: i64, external_id: &str) {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let mut update = Query::update();
    update
        .table(Alias::new("messages"))
        .value(Alias::new("external_id"), external_id)
        .and_where(Expr::col(Alias::new("id")).eq(message_id));
    app.db.execute(&update).await.expect("update message");
}

/// Rows in `messages` for one conversation, soft-deleted ones included.
pub async fn stored_messages(app: &TestApp, conversation_id: i64) -> i64 {
    sql_i64(
        app,
        &format!("SELECT COUNT(*) FROM messages WHERE conversation_id = {conversation_id}"),
    )
    .await
}

/// One conversation as the first organization's admin sees it.
pub async fn conversation_record(app: &TestApp, conversation_id: i64) -> Value {
    get_ok(app, &format!("/conversations/{conversation_id}")).await
}

/// The server binary on `database_url` with `env`; answers the child and its base URL.
pub fn start_binary(database_url: &str, env: &[(&str, &str)]) -> (Server, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_inbox-gateway"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("DATABASE_URL", database_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("JWT_SECRET", "a-test-secret-of-at-least-32-bytes!")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !sent && let Some((_, rest)) = line.split_once("http://127.0.0.1:") {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = tx.send(port);
                sent = true;
            }
            if line.contains("ERROR") || line.contains("Tokio 1.x context") {
                eprintln!("server: {line}");
            }
        }
    });
    let child = Server(child);
    let port = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the server logs its address");
    (child, format!("http://127.0.0.1:{port}"))
}

/// The server process, killed if a test fails before it exits.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
