//! The `Service` trait: Feathers' six methods, each taking [`Params`].

use super::error::{FeathersError, Result};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;

/// Who is calling: the authenticated principal, resolved by an [`Authenticator`](super::rest::Authenticator).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant every record the caller touches must belong to.
    pub tenant_id: i64,
    pub user_id: i64,
    pub role: String,
    /// How the caller authenticated (`jwt`, `api-key`, `internal`).
    pub strategy: String,
}

/// JSON text a service wrote itself, sent as it is.
pub struct JsonText(pub Vec<u8>);

/// Call parameters, as Feathers' `params`.
#[derive(Clone, Default)]
pub struct Params {
    /// The raw query object (strings from a URL; typed JSON from internal calls).
    pub query: Value,
    pub principal: Option<Principal>,
    /// `Some("rest")` for HTTP calls, `None` for internal ones.
    pub provider: Option<&'static str>,
    /// Request headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// The client's address (the TCP peer: behind a proxy, the proxy's); `None` for
    /// internal calls.
    pub remote_addr: Option<std::net::IpAddr>,
    /// The most bytes a find may answer as JSON (set by the REST transport; `None`
    /// for internal calls): past it, the answer is a 400 (see
    /// [`answer_too_large`](super::rows::answer_too_large)).
    pub max_answer_bytes: Option<usize>,
    /// The unit of work a write runs in (see [`Unit`](super::unit::Unit)); `None` for
    /// reads and outside one.
    pub unit: Option<std::sync::Arc<dyn super::unit::Unit>>,
}

impl Params {
    /// The caller, or 401 when there is none.
    pub fn principal(&self) -> Result<&Principal> {
        self.principal
            .as_ref()
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))
    }
    /// The open transaction of this call's unit of work, or 500 when it runs outside one.
    pub async fn txn(&self) -> Result<&sea_orm::DatabaseTransaction> {
        match &self.unit {
            Some(unit) => unit.conn().await,
            None => Err(FeathersError::general("a write ran outside a unit of work")),
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An id as it arrives in a URL: a string the service makes sense of.
pub type Id = String;

fn unsupported(method: &str) -> FeathersError {
    FeathersError::method_not_allowed(format!(
        "Method `{method}` is not supported by this endpoint."
    ))
}

/// A Feathers service. A method a service does not offer answers 405.
#[async_trait]
pub trait Service: Send + Sync {
    async fn find(&self, _params: &Params) -> Result<Value> {
        Err(unsupported("find"))
    }
    /// `find` as JSON text, what REST sends. Services that read rows straight to JSON
    /// override it; the default serializes `find`.
    async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        let value = self.find(params).await?;
        let text = serde_json::to_vec(&value)
            .map_err(|e| FeathersError::general(format!("could not serialize: {e}")))?;
        match params.max_answer_bytes {
            Some(max) if text.len() > max => Err(super::rows::answer_too_large(max)),
            _ => Ok(JsonText(text)),
        }
    }
    async fn get(&self, _id: &Id, _params: &Params) -> Result<Value> {
        Err(unsupported("get"))
    }
    async fn create(&self, _data: Value, _params: &Params) -> Result<Value> {
        Err(unsupported("create"))
    }
    /// The HTTP status of a successful create (Feathers' `context.http.status`): 201 unless
    /// the service says otherwise for these params (e.g. a dry run that stores nothing).
    fn create_status(&self, _params: &Params) -> u16 {
        201
    }
    /// Fields of this service's answers meant for the caller alone (a fresh API key,
    /// an access token): never carried by events.
    fn secret_fields(&self) -> &'static [&'static str] {
        &[]
    }
    async fn update(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(unsupported("update"))
    }
    async fn patch(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(unsupported("patch"))
    }
    async fn remove(&self, _id: Option<&Id>, _params: &Params) -> Result<Value> {
        Err(unsupported("remove"))
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("query", &self.query)
            .field("principal", &self.principal)
            .field("provider", &self.provider)
            .field("in_unit", &self.unit.is_some())
            .finish_non_exhaustive()
    }
}
