//! The HTTP client for AgentPhone's REST API. Its errors say what a caller may do next:
//! a send that never reached AgentPhone ([`CallError::NotSent`]) is safe to repeat, one
//! whose outcome is unknown ([`CallError::Unknown`]) must be reconciled instead, because
//! AgentPhone has no idempotency key and a repeat could deliver the message twice.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, redirect};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::wire::{
    BackgroundSet, ConversationPage, MessagePage, ReactionSent, SentMessage, TypingSent,
};

/// The most of an answer's body read; a larger one counts as unreadable.
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// One connection pool for the process; [`Http::account`] binds it to one account's key.
#[derive(Clone, Debug)]
pub struct Http {
    inner: reqwest::Client,
}

impl Http {
    /// Redirects are not followed (a redirected POST could be replayed elsewhere, and the
    /// bearer key with it); `timeout` bounds the whole request, body included.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, String> {
        reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent("inbox-gateway")
            .build()
            .map(|inner| Http { inner })
            .map_err(|e| format!("AgentPhone HTTP client: {}", describe(&e)))
    }

    /// A client for one account; a trailing slash on `base_url` is ignored.
    pub fn account(&self, base_url: &str, api_key: &str) -> Client {
        Client {
            http: self.inner.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        }
    }
}

/// AgentPhone for one account (its base URL and API key), sharing [`Http`]'s pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

/// Hand-written so the API key never reaches a log.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// How a call failed, by what it means for repeating it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Never reached AgentPhone (connection refused, DNS, TLS, connect timeout, or a
    /// request that could not be built): safe to send again.
    #[error("AgentPhone not reached: {0}")]
    NotSent(String),
    /// Sent, but the answer is unknown (timeout, connection dropped, unreadable 2xx
    /// body): the request may have taken effect.
    #[error("AgentPhone outcome unknown: {0}")]
    Unknown(String),
    /// AgentPhone answered with a non-2xx status (redirects included, as they are not
    /// followed); `retry_after` from `Retry-After` (seconds, or an HTTP date).
    #[error("{error}")]
    Status {
        error: ApiError,
        retry_after: Option<Duration>,
    },
}

impl Client {
    /// `POST /v1/messages` with `body` as given (snake_case, see NOTES.md section 2).
    pub async fn send_message(&self, body: &Value) -> Result<SentMessage, CallError> {
        self.json(Method::POST, "/v1/messages".into(), None, Some(body))
            .await
    }

    /// `GET /v1/conversations/{id}/messages?limit&before`; `before` is an ISO-8601
    /// timestamp (a message's `receivedAt`), the page holds strictly older messages.
    pub async fn conversation_messages(
        &self,
        conversation_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<MessagePage, CallError> {
        let path = format!(
            "/v1/conversations/{}/messages",
            segment(conversation_id, "conversation").map_err(CallError::NotSent)?
        );
        // Built before the await: the serializer is not `Send`.
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(before) = before {
                query.append_pair("before", before);
            }
            query.finish()
        };
        self.json(Method::GET, path, Some(query), None).await
    }

    /// `GET /v1/conversations?limit&offset`, newest `lastMessageAt` first.
    pub async fn conversations(
        &self,
        limit: u32,
        offset: u64,
    ) -> Result<ConversationPage, CallError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string())
            .finish();
        self.json(Method::GET, "/v1/conversations".into(), Some(query), None)
            .await
    }

    /// `POST /v1/messages/{id}/reactions` (iMessage only; AgentPhone answers 400 otherwise).
    pub async fn react(&self, message_id: &str, reaction: &str) -> Result<ReactionSent, CallError> {
        let path = format!(
            "/v1/messages/{}/reactions",
            segment(message_id, "message").map_err(CallError::NotSent)?
        );
        let body = json!({ "reaction": reaction });
        self.json(Method::POST, path, None, Some(&body)).await
    }

    /// `POST /v1/conversations/{id}/typing`: best effort, expires by itself.
    pub async fn typing(&self, conversation_id: &str) -> Result<TypingSent, CallError> {
        let path = format!(
            "/v1/conversations/{}/typing",
            segment(conversation_id, "conversation").map_err(CallError::NotSent)?
        );
        self.json(Method::POST, path, None, Some(&json!({}))).await
    }

    /// `POST /v1/conversations/{id}/background`; AgentPhone downloads `image_url` itself.
    pub async fn set_background(
        &self,
        conversation_id: &str,
        image_url: &str,
    ) -> Result<BackgroundSet, CallError> {
        let path = format!(
            "/v1/conversations/{}/background",
            segment(conversation_id, "conversation").map_err(CallError::NotSent)?
        );
        let body = json!({ "image_url": image_url });
        self.json(Method::POST, path, None, Some(&body)).await
    }

    /// `DELETE /v1/conversations/{id}/background` (204, idempotent).
    pub async fn delete_background(&self, conversation_id: &str) -> Result<(), CallError> {
        let path = format!(
            "/v1/conversations/{}/background",
            segment(conversation_id, "conversation").map_err(CallError::NotSent)?
        );
        self.call(Method::DELETE, path, None, None).await.map(drop)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        query: Option<String>,
        body: Option<&Value>,
    ) -> Result<T, CallError> {
        let bytes = self.call(method, path, query, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CallError::Unknown(format!("unreadable answer: {e}")))
    }

    /// One request; a 2xx answers its body, anything else is a [`CallError`].
    async fn call(
        &self,
        method: Method,
        path: String,
        query: Option<String>,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, CallError> {
        let mut url = format!("{}{path}", self.base_url);
        if let Some(query) = query {
            url.push('?');
            url.push_str(&query);
        }
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.api_key)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), Utc::now());
        let mut bytes = Vec::new();
        let read = loop {
            match response.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() > MAX_ANSWER_BYTES => {
                    break Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
                }
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break Ok(()),
                Err(e) => break Err(describe(&e)),
            }
        };
        match read {
            Ok(()) if status.is_success() => Ok(bytes),
            Err(e) if status.is_success() => Err(CallError::Unknown(format!(
                "reading the {status} answer: {e}"
            ))),
            // The status alone is the answer when the body of an error cannot be read.
            Ok(()) => Err(CallError::Status {
                error: ApiError::parse(status.as_u16(), &bytes),
                retry_after,
            }),
            Err(_) => Err(CallError::Status {
                error: ApiError::parse(status.as_u16(), b""),
                retry_after,
            }),
        }
    }
}

/// Failures before an answer: only a failed connect (or an unbuildable request) proves
/// nothing was written; the whole-request timeout and everything else may come after.
fn classify(e: reqwest::Error) -> CallError {
    let text = describe(&e);
    if e.is_connect() || e.is_builder() {
        CallError::NotSent(text)
    } else {
        CallError::Unknown(text)
    }
}

/// An error and its sources, as one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An id as one path segment: unreserved bytes kept, every other byte percent-encoded.
/// Empty, `.` and `..` are refused, as they would address another resource.
fn segment(id: &str, what: &str) -> Result<String, String> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(format!("invalid {what} id {id:?}"));
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(out)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 1123 form); a date in the past is zero.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_or_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-5"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn ids_are_single_path_segments() {
        assert_eq!(segment("conv_1", "c").unwrap(), "conv_1");
        assert_eq!(segment("cm9.x-y~z", "c").unwrap(), "cm9.x-y~z");
        assert_eq!(
            segment("a b/c?d#e%f+", "c").unwrap(),
            "a%20b%2Fc%3Fd%23e%25f%2B"
        );
        assert_eq!(segment("é", "c").unwrap(), "%C3%A9");
        assert_eq!(segment("a\tb", "c").unwrap(), "a%09b");
        for bad in ["", ".", ".."] {
            assert!(segment(bad, "c").is_err());
        }
        assert_eq!(segment("...", "c").unwrap(), "...");
    }

    #[test]
    fn the_key_stays_out_of_debug() {
        let http = Http::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let client = http.account("https://api.agentphone.ai/", "sk_live_secret");
        assert_eq!(client.base_url, "https://api.agentphone.ai");
        let shown = format!("{client:?} {http:?}");
        assert!(!shown.contains("sk_live_secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[actix_web::test]
    async fn a_bad_id_or_base_url_is_not_sent() {
        let http = Http::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let client = http.account("http://127.0.0.1:9", "k");
        assert!(matches!(
            client.typing("..").await,
            Err(CallError::NotSent(_))
        ));
        let client = http.account("not a url", "k");
        assert!(matches!(
            client.conversations(1, 0).await,
            Err(CallError::NotSent(_))
        ));
    }
}
