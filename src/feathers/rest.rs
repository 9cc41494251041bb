//! REST transport: every registered service at `path` and `path/{id}`, the six
//! methods mapped as Feathers maps them, status codes as Feathers picks them, and
//! Feathers error JSON for everything that goes wrong (unknown path, bad JSON,
//! oversize body, unsupported verb).

use super::error::{ErrorKind, FeathersError, Result};
use super::qs;
use super::rate_limit::RateLimit;
use super::registry::{Access, Registry, ServiceHandle};
use super::schema::refuse_nul;
use super::service::{JsonText, Params, Principal};
use actix_web::http::Method;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

/// Resolves the caller from request headers (JWT, API key, ...).
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// `Ok(None)` when the request carries no credentials; 401 when they are invalid.
    async fn authenticate(&self, headers: &HashMap<String, String>) -> Result<Option<Principal>>;
}

/// What the REST handler needs: the services, how to authenticate, the body limit.
pub struct RestState {
    pub registry: Arc<Registry>,
    pub authenticator: Arc<dyn Authenticator>,
    pub max_body_bytes: usize,
    /// The most bytes a find may answer (see [`Params::max_answer_bytes`]).
    pub max_answer_bytes: usize,
    /// The whole body must arrive within this (408 otherwise).
    pub body_timeout: std::time::Duration,
    /// Requests per tenant and window; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
}

/// The catch-all handler that serves every service path.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RestState>,
) -> HttpResponse {
    // Read before the call: every event up to it is reflected in the answer, so a
    // client that subscribes from it misses nothing (it may see a concurrent one twice).
    let position = state.registry.last_seq();
    match handle(&req, payload, &state).await {
        Ok((status, body)) => {
            let mut response = respond(status, body);
            if let Some(seq) = position {
                response.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("x-last-event-id"),
                    actix_web::http::header::HeaderValue::from(seq),
                );
            }
            response
        }
        Err(err) => {
            // Logged once, here, with what the client does not see: the causes and
            // where the error was made.
            let at = err.location();
            if err.kind == ErrorKind::Unavailable {
                tracing::warn!(code = err.code(), message = %err.message, cause = %err.chain(), at = %at, "request failed, retryable");
            } else if err.code() >= 500 {
                tracing::error!(code = err.code(), message = %err.message, cause = %err.chain(), at = %at, "request failed");
            } else {
                tracing::info!(code = err.code(), message = %err.message, "request refused");
            }
            let retry_after = err.retry_after();
            let mut response = respond(err.code(), Reply::Value(err.to_json()));
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(seconds),
                );
            }
            response
        }
    }
}

/// A service's answer: a value, or JSON text a service wrote itself.
enum Reply {
    Value(Value),
    Raw(JsonText),
}

fn respond(status: u16, body: Reply) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    match body {
        Reply::Value(Value::Null) => HttpResponse::NoContent().finish(),
        Reply::Value(value) => HttpResponse::build(status).json(value),
        Reply::Raw(raw) => HttpResponse::build(status)
            .content_type(ContentType::json())
            .body(raw.0),
    }
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &RestState,
) -> Result<(u16, Reply)> {
    let path = req.path().trim_matches('/');
    let (handle, id) = match state.registry.service(path) {
        Some(handle) => (handle, None),
        None => {
            let (base, id) = path.rsplit_once('/').ok_or_else(|| not_found(req))?;
            let handle = state.registry.service(base).ok_or_else(|| not_found(req))?;
            let id = percent_decode(id);
            (handle, Some(id))
        }
    };
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        // Values that are not visible ASCII are kept (lossily decoded) so that the
        // header's reader refuses them with a 400, rather than never seeing them.
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // The transport refuses verbs and custom methods before any hook runs, as Feathers does.
    let method = req.method().clone();
    if let Some(custom) = headers.get("x-service-method") {
        return Err(FeathersError::method_not_allowed(format!(
            "Method `{custom}` is not supported by this endpoint."
        )));
    }
    if !matches!(
        method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Err(FeathersError::method_not_allowed(format!(
            "Method {method} not allowed"
        )));
    }
    // A public path takes invalid credentials as none, as Feathers' local strategy
    // ignores a stale `Authorization` header: a client holding an expired token can
    // still log in. What the path does with the header itself is up to it.
    let principal = match state.authenticator.authenticate(&headers).await {
        Err(err) if handle.access == Access::Public && err.kind == ErrorKind::NotAuthenticated => {
            None
        }
        other => other?,
    };
    if handle.access == Access::Authenticated && principal.is_none() {
        return Err(FeathersError::not_authenticated("Not authenticated"));
    }
    if let (Some(limit), Some(principal)) = (&state.rate_limit, &principal) {
        limit.check(principal.tenant_id)?;
    }
    let query = qs::parse(req.query_string())?;
    refuse_nul(&query, "query")?;
    let params = Params {
        query,
        principal,
        provider: Some("rest"),
        headers,
        remote_addr: req.peer_addr().map(|addr| addr.ip()),
        max_answer_bytes: Some(state.max_answer_bytes),
        unit: None,
    };
    let span = tracing::info_span!("service", path = handle.path, method = %method, id = id.as_deref().unwrap_or(""));
    call(req, payload, state, &handle, id.as_ref(), params)
        .instrument(span)
        .await
}

/// Calls the service method the verb and the id name.
async fn call(
    req: &HttpRequest,
    payload: web::Payload,
    state: &RestState,
    handle: &ServiceHandle<'_>,
    id: Option<&String>,
    params: Params,
) -> Result<(u16, Reply)> {
    let value = |(status, value): (u16, Value)| (status, Reply::Value(value));
    match req.method().clone() {
        Method::GET | Method::HEAD => match id {
            Some(id) => Ok((200, Reply::Value(handle.get(id, &params).await?))),
            None => Ok((200, Reply::Raw(handle.find_raw(&params).await?))),
        },
        Method::POST if id.is_none() => {
            let data = read_body(req, payload, state).await?;
            let result = handle.create(data, &params).await?;
            Ok(value((handle.create_status(&params), result)))
        }
        Method::PUT => {
            let data = read_body(req, payload, state).await?;
            Ok(value((200, handle.update(id, data, &params).await?)))
        }
        Method::PATCH => {
            let data = read_body(req, payload, state).await?;
            Ok(value((200, handle.patch(id, data, &params).await?)))
        }
        Method::DELETE => Ok(value((200, handle.remove(id, &params).await?))),
        Method::POST => Err(FeathersError::method_not_allowed(
            "Method POST not allowed on a record",
        )),
        other => Err(FeathersError::method_not_allowed(format!(
            "Method {other} not allowed"
        ))),
    }
}

fn not_found(req: &HttpRequest) -> FeathersError {
    FeathersError::not_found(format!("Path {} not found", req.path()))
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Reads a body's bytes, at most `limit` (413 beyond) and within `timeout` (408):
/// a body trickled in (1 byte/s) would hold the connection for as long as the
/// client likes.
pub async fn read_raw_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::BytesMut> {
    let too_large = || {
        FeathersError::new(
            super::error::ErrorKind::PayloadTooLarge,
            format!("The body is larger than {limit} bytes"),
        )
    };
    if let Some(len) = (req.headers().get("content-length"))
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|e| FeathersError::bad_request(format!("Could not read the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| FeathersError::new(ErrorKind::Timeout, "The body did not arrive in time"))??;
    Ok(body)
}

/// Reads the body up to the limit (413 beyond) and parses JSON or a form (400 if malformed).
async fn read_body(req: &HttpRequest, payload: web::Payload, state: &RestState) -> Result<Value> {
    let body = read_raw_body(req, payload, state.max_body_bytes, state.body_timeout).await?;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let data = if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(&body)
            .map_err(|_| FeathersError::bad_request("The body is not UTF-8"))?;
        qs::parse(text)?
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| FeathersError::bad_request(format!("Invalid JSON in the body: {e}")))?
    };
    refuse_nul(&data, "body")?;
    Ok(data)
}
