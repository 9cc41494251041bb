//! A webhook step's request: the target resolved here and checked against the
//! policy (loopback, private, link-local, unique-local, unspecified, metadata),
//! the connection pinned to the checked address, no proxy, no redirect followed,
//! a timeout; signed with the automation's secret in the AgentPhone scheme.

use crate::domain::automations::{WebhookPolicy, host_ip, refused_target};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// How a webhook call ended badly.
#[derive(Debug)]
pub enum CallError {
    /// Worth another try (5xx, a timeout, a connection that failed).
    Retry(String),
    /// The step fails: a 4xx, a redirect, a refused target, an answer that is not JSON.
    Fail(Value),
}

/// The answer of a 2xx: its status and JSON body (`null` when empty).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn fail(rule: &str, message: impl Into<String>) -> CallError {
    let message = message.into();
    CallError::Fail(json!({
        "name": "Unprocessable", "code": 422, "message": message, "data": { "rule": rule },
    }))
}

/// The address to connect to for `url`'s host: resolved here, every address
/// checked (one refused address refuses the target: DNS answers can be mixed).
async fn checked_address(
    url: &reqwest::Url,
    policy: WebhookPolicy,
) -> Result<SocketAddr, CallError> {
    let host = url
        .host_str()
        .ok_or_else(|| fail("webhook_target", "the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host_ip(host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| CallError::Retry(format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| CallError::Retry(format!("{host} resolves to no address")))?;
    for addr in &addrs {
        if let Some(why) = refused_target(addr.ip(), policy) {
            return Err(fail(
                "webhook_target",
                format!(
                    "{host} resolves to {}, a {why} address, which webhooks may not reach",
                    addr.ip()
                ),
            ));
        }
    }
    Ok(first)
}

/// POSTs `body` to `url`, signed with `secret`; `id` is `X-Webhook-ID` (the same
/// on every attempt of one step, so a receiver can drop a repeat).
pub async fn call(
    url: &str,
    secret: &str,
    id: &str,
    body: &Value,
    timeout: Duration,
    policy: WebhookPolicy,
) -> Result<Answer, CallError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| fail("webhook_target", e.to_string()))?;
    let addr = checked_address(&parsed, policy).await?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout);
    if host_ip(&host).is_none() {
        builder = builder.resolve(&host, addr);
    }
    let client = builder
        .build()
        .map_err(|e| CallError::Retry(format!("cannot build the HTTP client: {e}")))?;
    let raw = serde_json::to_vec(body).unwrap_or_default();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = crate::agentphone::signature::sign(secret, &timestamp, &raw);
    let response = client
        .post(parsed)
        .header("content-type", "application/json")
        .header("x-webhook-signature", signature)
        .header("x-webhook-timestamp", &timestamp)
        .header("x-webhook-id", id)
        .body(raw)
        .send()
        .await
        .map_err(|e| CallError::Retry(format!("the webhook call failed: {e}")))?;
    let status = response.status().as_u16();
    if response.status().is_server_error() || status == 429 || status == 408 {
        return Err(CallError::Retry(format!("the webhook answered {status}")));
    }
    let text = response
        .bytes()
        .await
        .map_err(|e| CallError::Retry(format!("the webhook answer was cut: {e}")))?;
    if response_is_failure(status) {
        let answer: Value = serde_json::from_slice(&text).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&text).chars().take(500).collect())
        });
        let kind = if (300..400).contains(&status) {
            "redirects are not followed"
        } else {
            "the webhook refused the call"
        };
        return Err(CallError::Fail(json!({
            "name": "Unprocessable", "code": 422, "message": format!("{kind} ({status})"),
            "data": { "rule": "webhook_status", "status": status, "body": answer },
        })));
    }
    let body = if text.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&text)
            .map_err(|_| fail("webhook_answer", "the webhook's answer is not JSON"))?
    };
    Ok(Answer { status, body })
}

fn response_is_failure(status: u16) -> bool {
    !(200..300).contains(&status)
}
