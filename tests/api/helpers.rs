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
    /// The first organization and its admin.
    pub org: Tenant,
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
        jwt_secret: "test-secret".into(),
        jwt_audience: "https://yourdomain.com".into(),
        jwt_expires_secs: 3600,
        max_body_bytes: 64 * 1024,
        auto_migrate: true,
        conformance_fixture: true,
        max_connections: 4,
    }
}

/// A database URL no other test uses.
pub async fn fresh_database() -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let admin = sea_orm::Database::connect(&admin_url).await.expect("connect TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).expect("database url with a name");
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
    let app = Application::build(&settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.db.clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let mut test = TestApp {
        base,
        client,
        db,
        database_url,
        org: Tenant { org_id: 0, user_id: 0, email: String::new(), token: String::new() },
    };
    test.org = test.new_tenant("Acme").await;
    test
}

impl TestApp {
    /// A new organization with its admin, logged in.
    pub async fn new_tenant(&self, name: &str) -> Tenant {
        let email = format!("admin-{}@{}.test", uuid::Uuid::new_v4().simple(), name.to_lowercase());
        let (org_id, user_id) = inbox_gateway::admin::create_admin(&self.db, name, &email, "admin-password")
            .await
            .expect("create admin");
        let token = self.login(&email, "admin-password").await;
        Tenant { org_id, user_id, email, token }
    }

    /// Logs in with the local strategy and answers the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(Method::POST, "/authentication", Some(json!({"strategy":"local","email":email,"password":password})), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "login failed: {body}");
        body["accessToken"].as_str().expect("accessToken").to_string()
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
        Tenant { org_id: tenant.org_id, user_id: user["id"].as_i64().unwrap(), email, token }
    }

    /// Any call; `token` is sent as a Bearer token. Answers status and JSON body (Null if empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, body)
    }

    /// Calls as the first organization's admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, Some(&self.org.token)).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), Some(&self.org.token)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body), Some(&self.org.token)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body), Some(&self.org.token)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None, Some(&self.org.token)).await
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
