//! Layered settings: `config/default.toml`, then `config/{APP_ENV}.toml`, then
//! `APP__<KEY>` variables, then the well-known variables `DATABASE_URL`, `HOST`,
//! `PORT` and `JWT_SECRET`. Validated at load.
//!
//! There is no default JWT secret. A configured one must have at least
//! [`MIN_JWT_SECRET_BYTES`] bytes, in every environment. Without one (not allowed in
//! production, where instances must share it) the server generates a random secret
//! at first start and keeps it in the data directory ([`Settings::jwt_secret`]).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The shortest JWT secret accepted.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The generated secret's file name in the data directory.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `default`, `test` or `production` (from `APP_ENV`).
    #[serde(default = "default_env")]
    pub env: String,
    pub host: String,
    pub port: u16,
    pub database_url: String,
    /// `JWT_SECRET`; `None`: generated and kept in [`Settings::data_directory`].
    #[serde(default)]
    pub jwt_secret: Option<String>,
    /// Where the server keeps its files (the generated JWT secret); default: the
    /// SQLite file's directory, or `data` for PostgreSQL.
    #[serde(default)]
    pub data_dir: Option<String>,
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
    /// Failed logins allowed per email, and per client address, in
    /// `login_failure_window_secs` on each instance; beyond, 429. 0 turns one off.
    pub login_failures_per_email: u32,
    pub login_failures_per_address: u32,
    pub login_failure_window_secs: u64,
    /// Jobs this instance runs at once (0: this instance runs none).
    pub job_concurrency: usize,
    /// A running job's lease; a job whose worker died is taken over after it.
    pub job_lease_secs: i64,
    /// At shutdown, how long running jobs may take before they are handed back.
    pub job_shutdown_grace_secs: u64,
    /// The most bytes one list answer (a page) may hold; a larger one is a 400
    /// asking for fewer records or fields.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
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
    // The event stream (README "Event stream").
    /// Events are kept this long; a stream resuming from an older one gets a `reset`.
    #[serde(default = "default_event_retention_days")]
    pub event_retention_days: i64,
    /// Event streams this instance serves at once; beyond it 503 (0: no limit).
    #[serde(default = "default_max_event_streams")]
    pub max_event_streams: usize,
    /// A stream with nothing to send writes a comment this often, ms (proxies close
    /// idle connections).
    #[serde(default = "default_event_keep_alive_ms")]
    pub event_keep_alive_ms: u64,
    // AgentPhone (README "SMS and iMessage through AgentPhone").
    /// Seals channel-account secrets at rest: 64 hex characters (environment
    /// `SECRETS_KEY`). Unset: derived from the JWT secret.
    #[serde(default)]
    pub secrets_key: Option<String>,
    /// AgentPhone's API (environment `AGENTPHONE_BASE_URL`); an account may override it.
    #[serde(default = "default_agentphone_base_url")]
    pub agentphone_base_url: String,
    /// One AgentPhone call may take this long, ms, before its outcome counts as unknown.
    #[serde(default = "default_agentphone_timeout_ms")]
    pub agentphone_timeout_ms: u64,
    /// Sends in flight at once per channel account.
    #[serde(default = "default_agentphone_account_concurrency")]
    pub agentphone_account_concurrency: usize,
    /// Bulk actions over at most this many conversations complete before the answer;
    /// larger ones run as a job.
    #[serde(default = "default_bulk_sync_limit")]
    pub bulk_sync_limit: u64,
    /// Conversations a bulk action's job changes per batch (one transaction each).
    #[serde(default = "default_bulk_batch_size")]
    pub bulk_batch_size: u64,
    /// Delivery jobs this instance runs at once (0: this instance delivers nothing).
    #[serde(default = "default_delivery_concurrency")]
    pub delivery_concurrency: usize,
    // Automations (README "Automations").
    /// Automation runs this instance runs at once (0: this instance runs none).
    #[serde(default = "default_automation_concurrency")]
    pub automation_concurrency: usize,
    /// One webhook step's request may take this long, ms, before it is retried.
    #[serde(default = "default_automation_webhook_timeout_ms")]
    pub automation_webhook_timeout_ms: u64,
    /// Webhook steps may reach loopback addresses (and `http://` URLs): tests and
    /// local receivers only. Private, link-local and metadata addresses stay refused.
    #[serde(default)]
    pub automation_webhook_allow_loopback: bool,
    // Files (README "Files (S3)"). No bucket: the file services answer 503.
    /// The bucket (environment `S3_BUCKET`); unset, files are off.
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// Environment `S3_REGION` (R2: `auto`).
    #[serde(default = "default_s3_region")]
    pub s3_region: String,
    /// Environment `S3_ENDPOINT`: MinIO, R2 and other S3-compatible stores; unset, AWS.
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// Environment `S3_FORCE_PATH_STYLE`: `https://endpoint/bucket/key` URLs (MinIO).
    #[serde(default)]
    pub s3_force_path_style: bool,
    /// Environment `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub s3_access_key_id: Option<String>,
    /// Environment `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub s3_secret_access_key: Option<String>,
    /// Environment `AWS_SESSION_TOKEN` (temporary credentials).
    #[serde(default)]
    pub s3_session_token: Option<String>,
    /// How long a presigned upload (PUT) URL works, s.
    #[serde(default = "default_s3_upload_url_secs")]
    pub s3_upload_url_secs: u64,
    /// How long the download URL of a `conversation-files` answer works, s.
    #[serde(default = "default_s3_download_url_secs")]
    pub s3_download_url_secs: u64,
    /// How long the download URL handed to a provider at delivery works, s.
    #[serde(default = "default_s3_delivery_url_secs")]
    pub s3_delivery_url_secs: u64,
    /// An object under `org/` that no file record or message names is removed once
    /// it is this old, s.
    #[serde(default = "default_s3_orphan_age_secs")]
    pub s3_orphan_age_secs: u64,
    /// How often this instance looks for orphans, s (0: never).
    #[serde(default = "default_s3_orphan_sweep_secs")]
    pub s3_orphan_sweep_secs: u64,
    /// Per `file_category` (`image`, `audio`, `video`, `file`): the MIME types and
    /// largest size accepted, instead of the conversation's channel limits.
    #[serde(default)]
    pub s3_limits: BTreeMap<String, CategoryLimit>,
}

/// A configured limit of one `file_category`; what is left out stays the channel's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoryLimit {
    pub mime_types: Option<Vec<String>>,
    pub max_bytes: Option<u64>,
}

/// The file categories of `/conversation-files`.
pub const FILE_CATEGORIES: [&str; 4] = ["image", "audio", "video", "file"];
/// The longest a SigV4 presigned URL may live: 7 days.
pub const MAX_PRESIGNED_SECS: u64 = 7 * 24 * 3600;

fn default_s3_region() -> String {
    "us-east-1".into()
}
fn default_s3_upload_url_secs() -> u64 {
    900
}
fn default_s3_download_url_secs() -> u64 {
    300
}
fn default_s3_delivery_url_secs() -> u64 {
    86_400
}
fn default_s3_orphan_age_secs() -> u64 {
    86_400
}
fn default_s3_orphan_sweep_secs() -> u64 {
    3600
}

fn default_max_answer_bytes() -> usize {
    8 << 20
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

fn default_event_retention_days() -> i64 {
    7
}
fn default_max_event_streams() -> usize {
    10_000
}
fn default_event_keep_alive_ms() -> u64 {
    15_000
}
fn default_agentphone_base_url() -> String {
    "https://api.agentphone.ai".into()
}
fn default_agentphone_timeout_ms() -> u64 {
    30_000
}
fn default_agentphone_account_concurrency() -> usize {
    4
}
fn default_delivery_concurrency() -> usize {
    16
}
fn default_bulk_sync_limit() -> u64 {
    1000
}
fn default_bulk_batch_size() -> u64 {
    1000
}

fn default_automation_concurrency() -> usize {
    8
}
fn default_automation_webhook_timeout_ms() -> u64 {
    10_000
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
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
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
            .and_then(|b| b.set_override_option("secrets_key", var("SECRETS_KEY")))
            .and_then(|b| b.set_override_option("agentphone_base_url", var("AGENTPHONE_BASE_URL")))
            .and_then(|b| b.set_override_option("s3_bucket", var("S3_BUCKET")))
            .and_then(|b| b.set_override_option("s3_region", var("S3_REGION")))
            .and_then(|b| b.set_override_option("s3_endpoint", var("S3_ENDPOINT")))
            .and_then(|b| b.set_override_option("s3_force_path_style", var("S3_FORCE_PATH_STYLE")))
            .and_then(|b| b.set_override_option("s3_access_key_id", var("AWS_ACCESS_KEY_ID")))
            .and_then(|b| {
                b.set_override_option("s3_secret_access_key", var("AWS_SECRET_ACCESS_KEY"))
            })
            .and_then(|b| b.set_override_option("s3_session_token", var("AWS_SESSION_TOKEN")))
            .and_then(|b| b.build())
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses settings that would be unsafe to run with.
    pub fn validate(&self) -> Result<(), String> {
        match &self.jwt_secret {
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => {
                return Err(format!(
                    "refusing to start: the configured JWT secret (JWT_SECRET) has {} bytes, it must \
                     have at least {MIN_JWT_SECRET_BYTES} (e.g. `openssl rand -hex 32`); unset it to \
                     have one generated outside production",
                    secret.len()
                ));
            }
            None if self.env == "production" => {
                return Err(format!(
                    "refusing to start: in production JWT_SECRET must be set (at least \
                     {MIN_JWT_SECRET_BYTES} bytes), the same on every instance"
                ));
            }
            _ => {}
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        if self.event_retention_days < 1 {
            return Err("event_retention_days must be 1 or more".into());
        }
        if self.event_keep_alive_ms == 0 {
            return Err("event_keep_alive_ms must be positive".into());
        }
        if let Some(key) = &self.secrets_key {
            crate::auth::sealing::Sealer::new(Some(key), "")
                .map_err(|e| format!("secrets_key: {e}"))?;
        }
        if self.agentphone_account_concurrency == 0 {
            return Err("agentphone_account_concurrency must be 1 or more".into());
        }
        self.validate_storage()
    }

    /// The S3 keys: a bucket needs credentials, URL lifetimes are 1 s to 7 days,
    /// limits name known categories.
    fn validate_storage(&self) -> Result<(), String> {
        for (key, secs) in [
            ("s3_upload_url_secs", self.s3_upload_url_secs),
            ("s3_download_url_secs", self.s3_download_url_secs),
            ("s3_delivery_url_secs", self.s3_delivery_url_secs),
        ] {
            if !(1..=MAX_PRESIGNED_SECS).contains(&secs) {
                return Err(format!(
                    "{key} must be from 1 to {MAX_PRESIGNED_SECS} (7 days, the longest a presigned URL lives)"
                ));
            }
        }
        for name in self.s3_limits.keys() {
            if !FILE_CATEGORIES.contains(&name.as_str()) {
                return Err(format!(
                    "s3_limits.{name}: not a file category (image, audio, video, file)"
                ));
            }
        }
        if self.s3_bucket.as_deref().is_some_and(|b| !b.is_empty())
            && (self.s3_access_key_id.is_none() || self.s3_secret_access_key.is_none())
        {
            return Err(
                "s3_bucket is set but the credentials are not: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (or s3_access_key_id and s3_secret_access_key)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Where the server keeps its files: `data_dir`, else the SQLite database file's
    /// directory, else (PostgreSQL, in-memory SQLite) `data`.
    pub fn data_directory(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return PathBuf::from(dir);
        }
        let file = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or_default())
            .filter(|path| !path.is_empty() && !path.contains(":memory:"));
        match file.map(|path| Path::new(path).parent()) {
            Some(Some(parent)) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            Some(_) => PathBuf::from("."),
            None => PathBuf::from("data"),
        }
    }

    /// The JWT secret: the configured one, or the one generated at first start in the
    /// data directory's `jwt-secret` file (mode 0600), reused on later starts. Logs
    /// that it was generated or read, never the secret.
    pub fn jwt_secret(&self) -> Result<String, String> {
        match &self.jwt_secret {
            Some(secret) => {
                self.validate()?;
                Ok(secret.clone())
            }
            None => secret_file(&self.data_directory().join(JWT_SECRET_FILE)),
        }
    }
}

/// Reads the secret kept at `path`, or generates it there if there is none.
pub fn secret_file(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_string();
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(format!(
                    "refusing to start: the JWT secret in {} has fewer than {MIN_JWT_SECRET_BYTES} \
                     bytes (delete it to have a new one generated, or set JWT_SECRET)",
                    path.display()
                ));
            }
            warn_if_readable_by_others(path);
            tracing::info!(path = %path.display(), "JWT secret read from the data directory");
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate_secret_file(path),
        Err(e) => Err(format!(
            "cannot read the JWT secret file {}: {e}",
            path.display()
        )),
    }
}

/// Writes a new random secret to `path` (mode 0600): to a temporary file first, then
/// linked into place, so that an instance starting at the same time reads the whole
/// secret or makes its own link fail and reads the winner's.
fn generate_secret_file(path: &Path) -> Result<String, String> {
    use std::io::Write;
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "cannot {what} the generated JWT secret file {}: {e}",
            path.display()
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    let secret = crate::auth::api_key::hex(&crate::auth::api_key::random_bytes::<32>());
    let temporary = dir.join(format!(
        ".{JWT_SECRET_FILE}.{}.tmp",
        crate::auth::api_key::hex(&crate::auth::api_key::random_bytes::<8>())
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{secret}\n").as_bytes())?;
            file.sync_all()
        })
        .map_err(|e| fail("write", e));
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(fail("write", e)),
    });
    let _ = std::fs::remove_file(&temporary);
    if !linked? {
        // Another instance generated it first.
        return secret_file(path);
    }
    tracing::warn!(
        path = %path.display(),
        "no JWT secret configured: generated a random one and kept it in the data directory \
         (set JWT_SECRET to choose it, and the same on every instance)"
    );
    Ok(secret)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the JWT secret file is readable by others than its owner (chmod 600 it)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &str, secret: Option<&str>) -> Settings {
        Settings {
            env: env.into(),
            host: "127.0.0.1".into(),
            port: 0,
            database_url: "sqlite::memory:".into(),
            jwt_secret: secret.map(Into::into),
            data_dir: None,
            jwt_audience: "https://yourdomain.com".into(),
            jwt_expires_secs: 60,
            max_body_bytes: 1024,
            auto_migrate: true,
            conformance_fixture: false,
            max_connections: 1,
            workers_per_core: 1,
            rate_limit_requests: 0,
            rate_limit_window_secs: 3600,
            login_failures_per_email: 10,
            login_failures_per_address: 50,
            login_failure_window_secs: 900,
            job_concurrency: 0,
            job_lease_secs: 30,
            job_shutdown_grace_secs: 10,
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
            agentphone_base_url: default_agentphone_base_url(),
            agentphone_timeout_ms: 30_000,
            agentphone_account_concurrency: 4,
            delivery_concurrency: 16,
            bulk_sync_limit: 1000,
            bulk_batch_size: 1000,
            automation_concurrency: 8,
            automation_webhook_timeout_ms: 10_000,
            automation_webhook_allow_loopback: false,
            s3_bucket: None,
            s3_region: default_s3_region(),
            s3_endpoint: None,
            s3_force_path_style: false,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_session_token: None,
            s3_upload_url_secs: 900,
            s3_download_url_secs: 300,
            s3_delivery_url_secs: 86_400,
            s3_orphan_age_secs: 86_400,
            s3_orphan_sweep_secs: 3600,
            s3_limits: BTreeMap::new(),
        }
    }

    #[test]
    fn a_short_secret_is_refused_in_every_environment() {
        for env in ["default", "test", "production"] {
            for short in ["dev-secret-change-me", "", &"s".repeat(31)] {
                let err = settings(env, Some(short)).validate().unwrap_err();
                assert!(err.contains("JWT_SECRET") && err.contains("32"), "{err}");
            }
            assert!(settings(env, Some(&"s".repeat(32))).validate().is_ok());
        }
    }

    #[test]
    fn production_needs_a_configured_secret_elsewhere_it_is_generated() {
        let err = settings("production", None).validate().unwrap_err();
        assert!(err.contains("JWT_SECRET"), "{err}");
        assert!(settings("default", None).validate().is_ok());
        assert!(settings("test", None).validate().is_ok());
    }

    #[test]
    fn the_data_directory_is_the_sqlite_files_or_data_dir_or_data() {
        let mut s = settings("default", None);
        let dir = |s: &Settings| s.data_directory().display().to_string();
        s.database_url = "sqlite://data/inbox.db?mode=rwc".into();
        assert_eq!(dir(&s), "data");
        s.database_url = "sqlite:///var/lib/inbox/inbox.db".into();
        assert_eq!(dir(&s), "/var/lib/inbox");
        s.database_url = "sqlite://inbox.db".into();
        assert_eq!(dir(&s), ".");
        s.database_url = "sqlite::memory:".into();
        assert_eq!(dir(&s), "data");
        s.database_url = "postgres://u@h/db".into();
        assert_eq!(dir(&s), "data");
        s.data_dir = Some("/srv/inbox".into());
        assert_eq!(dir(&s), "/srv/inbox");
    }

    #[cfg(unix)]
    #[test]
    fn a_generated_secret_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("jwt-{}", uuid::Uuid::new_v4().simple()));
        let mut s = settings("default", None);
        s.data_dir = Some(dir.join("nested").display().to_string());
        let first = s.jwt_secret().expect("generated");
        assert!(first.len() >= MIN_JWT_SECRET_BYTES);
        let file = dir.join("nested").join(JWT_SECRET_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert_eq!(s.jwt_secret().unwrap(), first, "reused on the next start");
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [JWT_SECRET_FILE], "no temporary file is left");

        let mut other = settings("default", None);
        other.data_dir = Some(dir.join("other").display().to_string());
        assert_ne!(
            other.jwt_secret().unwrap(),
            first,
            "random per data directory"
        );
        let configured = settings("default", Some(&"c".repeat(40)));
        assert_eq!(configured.jwt_secret().unwrap(), "c".repeat(40));

        std::fs::write(&file, "short\n").unwrap();
        let err = s.jwt_secret().unwrap_err();
        assert!(err.contains("fewer than 32"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
