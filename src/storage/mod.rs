//! Files in an S3-compatible store (AWS S3, MinIO, Cloudflare R2, ...): the client
//! built from the configuration, presigned uploads and downloads (signed locally,
//! no network round trip), HeadObject for registrations, deletes, and the sweep of
//! orphaned uploads. Objects are private: every URL handed out is presigned.

pub mod keys;
pub mod limits;
pub mod orphans;

use crate::config::Settings;
use crate::feathers::error::ErrorKind;
use crate::feathers::{FeathersError, Result};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, timeout::TimeoutConfig};
use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use limits::{Category, Limits};

/// How this app reaches its bucket.
pub struct Storage {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    pub upload_ttl: Duration,
    pub download_ttl: Duration,
    pub delivery_ttl: Duration,
    pub orphan_age: Duration,
    pub limits: Limits,
}

/// A presigned request: its URL, the headers the caller must send with it, and
/// when it stops working.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// What HeadObject tells of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: Option<String>,
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// The 503 of the file services when no bucket is configured.
pub fn unavailable() -> FeathersError {
    FeathersError::new(
        ErrorKind::Unavailable,
        "File storage is not configured on this server (set S3_BUCKET and its credentials)",
    )
    .with_data(serde_json::json!({ "rule": "storage_configured" }))
}

/// A call to the store that failed (not an answer about the object): 502.
fn store_failed(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> FeathersError {
    FeathersError::new(
        ErrorKind::BadGateway,
        format!("The file store did not {what}"),
    )
    .with_cause(e)
}

impl Storage {
    /// The storage the settings describe; `None` without a bucket.
    pub fn from_settings(s: &Settings) -> std::result::Result<Option<Arc<Self>>, String> {
        let Some(bucket) = s.s3_bucket.clone().filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let (Some(key_id), Some(secret)) = (&s.s3_access_key_id, &s.s3_secret_access_key) else {
            return Err(
                "s3_bucket is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not".into(),
            );
        };
        let credentials = Credentials::new(
            key_id,
            secret,
            s.s3_session_token.clone(),
            None,
            "inbox-gateway-settings",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(s.s3_region.clone()))
            .credentials_provider(credentials)
            .force_path_style(s.s3_force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(endpoint) = s.s3_endpoint.as_deref().filter(|e| !e.is_empty()) {
            config = config.endpoint_url(endpoint);
        }
        Ok(Some(Arc::new(Storage {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket,
            upload_ttl: Duration::from_secs(s.s3_upload_url_secs),
            download_ttl: Duration::from_secs(s.s3_download_url_secs),
            delivery_ttl: Duration::from_secs(s.s3_delivery_url_secs),
            orphan_age: Duration::from_secs(s.s3_orphan_age_secs),
            limits: Limits::new(&s.s3_limits),
        })))
    }

    /// `s3://{bucket}/{key}`.
    pub fn s3_path(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn presigning(ttl: Duration) -> Result<(PresigningConfig, DateTime<Utc>)> {
        let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| FeathersError::general(format!("presigning: {e}")))?;
        Ok((config, expires_at))
    }

    /// A presigned PUT of `key` whose signature covers the content type and length:
    /// the store refuses an upload with another type or size.
    pub async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
    ) -> Result<Presigned> {
        let (config, expires_at) = Self::presigning(self.upload_ttl)?;
        let request = (self.client.put_object().bucket(&self.bucket).key(key))
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(config)
            .await
            .map_err(|e| FeathersError::general(format!("presigning a PUT: {e}")))?;
        let headers = (request.headers())
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Ok(Presigned {
            url: request.uri().to_string(),
            headers,
            expires_at,
        })
    }

    /// A presigned GET of `key` valid for `ttl`.
    pub async fn presign_download(&self, key: &str, ttl: Duration) -> Result<Presigned> {
        let (config, expires_at) = Self::presigning(ttl)?;
        let request = (self.client.get_object().bucket(&self.bucket).key(key))
            .presigned(config)
            .await
            .map_err(|e| FeathersError::general(format!("presigning a GET: {e}")))?;
        Ok(Presigned {
            url: request.uri().to_string(),
            headers: BTreeMap::new(),
            expires_at,
        })
    }

    /// The object's size and content type; `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectInfo {
                size: head.content_length().map_or(0, |n| n.max(0) as u64),
                content_type: head.content_type().map(str::to_string),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(store_failed("answer HeadObject", e)),
        }
    }

    /// Deletes the object (no error when it is already gone).
    pub async fn delete(&self, key: &str) -> Result<()> {
        (self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await)
            .map_err(|e| store_failed("delete an object", e))?;
        Ok(())
    }

    /// One page (up to 1,000) of the objects under `prefix`, and the token of the next.
    pub async fn list(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<Listed>, Option<String>)> {
        let page = (self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix))
        .set_continuation_token(token)
        .send()
        .await
        .map_err(|e| store_failed("list objects", e))?;
        let objects = (page.contents().iter())
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    last_modified: o
                        .last_modified()
                        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                })
            })
            .collect();
        let next = match page.is_truncated() {
            Some(true) => page.next_continuation_token().map(str::to_string),
            _ => None,
        };
        Ok((objects, next))
    }
}
