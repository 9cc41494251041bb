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
    /// The most bytes one list answer (a page) may hold; a larger one is a 400
    /// asking for fewer records or fields.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
}

fn default_max_answer_bytes() -> usize {
    8 << 20
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
            max_answer_bytes: 8 << 20,
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
