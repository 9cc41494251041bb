//! Layered settings: `config/default.toml`, then `config/{APP_ENV}.toml`, then
//! `APP__<KEY>` variables, then the well-known variables `DATABASE_URL`, `HOST`,
//! `PORT` and `JWT_SECRET`. Validated at load.

use serde::Deserialize;

/// The development JWT secret in `config/default.toml`; refused in production.
pub const DEFAULT_JWT_SECRET: &str = "dev-secret-change-me";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `default`, `test` or `production` (from `APP_ENV`).
    #[serde(default = "default_env")]
    pub env: String,
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub jwt_secret: String,
    pub jwt_audience: String,
    pub jwt_expires_secs: i64,
    pub max_body_bytes: usize,
    pub auto_migrate: bool,
    pub conformance_fixture: bool,
    pub max_connections: u32,
    /// HTTP worker threads per CPU (see `config/default.toml`).
    pub workers_per_core: usize,
    /// Requests each organization may make per `rate_limit_window_secs` on each
    /// instance; 0 turns the limit off.
    pub rate_limit_requests: u64,
    pub rate_limit_window_secs: u64,
    // Behaviour under faults and load (see `config/default.toml`, README "Under faults and load").
    /// PostgreSQL `statement_timeout` of the server's connections, ms (0: none).
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// PostgreSQL `lock_timeout` of the server's connections, ms (0: none).
    #[serde(default = "default_lock_timeout_ms")]
    pub lock_timeout_ms: u64,
    /// How long a request waits for a pooled connection before a 503, ms.
    #[serde(default = "default_db_acquire_timeout_ms")]
    pub db_acquire_timeout_ms: u64,
    /// SQLite: how long a statement waits for another process's lock before a 503, ms.
    #[serde(default = "default_sqlite_busy_timeout_ms")]
    pub sqlite_busy_timeout_ms: u64,
    /// `/readyz` answers 503 when the database does not answer within this, ms.
    #[serde(default = "default_readyz_timeout_ms")]
    pub readyz_timeout_ms: u64,
    /// Requests served at once by this instance; beyond it 503 at once (0: no limit).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// A request body must arrive within this, ms, or the answer is 408.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish, s.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

fn default_statement_timeout_ms() -> u64 {
    5000
}
fn default_lock_timeout_ms() -> u64 {
    1000
}
fn default_db_acquire_timeout_ms() -> u64 {
    2000
}
fn default_sqlite_busy_timeout_ms() -> u64 {
    2000
}
fn default_readyz_timeout_ms() -> u64 {
    1000
}
fn default_max_in_flight() -> usize {
    512
}
fn default_body_timeout_ms() -> u64 {
    10_000
}
fn default_shutdown_timeout_secs() -> u64 {
    30
}

fn default_env() -> String {
    "default".into()
}

impl Settings {
    /// Loads the layers for `APP_ENV` (default `default`) from the `config/` directory.
    pub fn load() -> Result<Self, String> {
        let env = std::env::var("APP_ENV").unwrap_or_else(|_| "default".into());
        if !["default", "test", "production"].contains(&env.as_str()) {
            return Err(format!(
                "APP_ENV must be default, test or production, not {env:?}"
            ));
        }
        let dir = std::env::var("APP_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let var = |name: &str| std::env::var(name).ok();
        let settings: Settings = config::Config::builder()
            .add_source(config::File::with_name(&format!("{dir}/default")))
            .add_source(config::File::with_name(&format!("{dir}/{env}")).required(false))
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .set_override("env", env.clone())
            .and_then(|b| b.set_override_option("database_url", var("DATABASE_URL")))
            .and_then(|b| b.set_override_option("host", var("HOST")))
            .and_then(|b| b.set_override_option("port", var("PORT")))
            .and_then(|b| b.set_override_option("jwt_secret", var("JWT_SECRET")))
            .and_then(|b| b.build())
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses settings that would be unsafe to run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.env == "production"
            && (self.jwt_secret == DEFAULT_JWT_SECRET || self.jwt_secret.len() < 32)
        {
            return Err("refusing to start: in production JWT_SECRET must be set to a secret of at least 32 \
                        characters (the default development secret is public)"
                .into());
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &str, secret: &str) -> Settings {
        Settings {
            env: env.into(),
            host: "127.0.0.1".into(),
            port: 0,
            database_url: "sqlite::memory:".into(),
            jwt_secret: secret.into(),
            jwt_audience: "https://yourdomain.com".into(),
            jwt_expires_secs: 60,
            max_body_bytes: 1024,
            auto_migrate: true,
            conformance_fixture: false,
            max_connections: 1,
            workers_per_core: 1,
            rate_limit_requests: 0,
            rate_limit_window_secs: 3600,
            statement_timeout_ms: 5000,
            lock_timeout_ms: 1000,
            db_acquire_timeout_ms: 2000,
            sqlite_busy_timeout_ms: 2000,
            readyz_timeout_ms: 1000,
            max_in_flight: 512,
            body_timeout_ms: 10_000,
            shutdown_timeout_secs: 30,
        }
    }

    #[test]
    fn production_refuses_the_default_or_a_short_secret() {
        let err = settings("production", DEFAULT_JWT_SECRET)
            .validate()
            .unwrap_err();
        assert!(err.contains("JWT_SECRET"), "{err}");
        assert!(settings("production", "short").validate().is_err());
        assert!(settings("production", &"s".repeat(32)).validate().is_ok());
        assert!(settings("default", DEFAULT_JWT_SECRET).validate().is_ok());
    }
}
