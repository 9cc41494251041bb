//! AgentPhone's error answers. Three envelopes are in circulation (NOTES.md section 5),
//! so [`ApiError::parse`] accepts all of them and falls back to the raw text.

use std::fmt;

use serde_json::{Map, Value, json};

/// The most of a non-JSON error body kept as the message.
const RAW_LIMIT: usize = 500;

/// A non-2xx answer from AgentPhone, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// AgentPhone's error code (`RATE_LIMIT_EXCEEDED`, `DELIVERY_UNCONFIRMED`, ...) when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// Structured detail: FastAPI's validation list, or the envelope's `details`.
    pub details: Option<Value>,
}

impl ApiError {
    /// Reads any of the shapes `{"detail": "text"}`, `{"detail": [{loc, msg, type}]}`,
    /// `{"error": {message, code, type, details}}`, `{"error": "text"}` and
    /// `{"message": ..., "code"?: ...}`; anything else keeps the raw text (at most 500
    /// characters) or, for an empty body, the status's reason phrase.
    pub fn parse(status: u16, body: &[u8]) -> ApiError {
        let parsed = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| match v {
                Value::Object(map) => from_object(&map),
                _ => None,
            });
        let (code, message, details) = parsed.unwrap_or_else(|| (None, raw_text(body), None));
        let message = if message.trim().is_empty() {
            reason(status)
        } else {
            message
        };
        ApiError {
            status,
            code,
            message,
            details,
        }
    }

    /// `{"status", "code", "message", "details"}`: what is stored on our message as its `error`.
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "details": self.details,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentPhone answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ApiError {}

type Parts = (Option<String>, String, Option<Value>);

fn from_object(map: &Map<String, Value>) -> Option<Parts> {
    let top_code = map.get("code").and_then(code_text);
    let top_details = map.get("details").filter(|d| !d.is_null()).cloned();
    if let Some(detail) = map.get("detail") {
        match detail {
            Value::String(text) => return Some((top_code, text.clone(), top_details)),
            Value::Array(items) => {
                let msgs: Vec<String> = items
                    .iter()
                    .filter_map(|item| match item {
                        Value::Object(o) => o.get("msg").and_then(Value::as_str).map(str::to_owned),
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                let message = if msgs.is_empty() {
                    detail.to_string()
                } else {
                    msgs.join("; ")
                };
                return Some((top_code, message, Some(detail.clone())));
            }
            // FastAPI's HTTPException also takes a dict as its detail.
            Value::Object(o) => {
                let message = ["message", "msg"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .map(str::to_owned)
                    .unwrap_or_else(|| truncate(&detail.to_string()));
                let code = o.get("code").and_then(code_text).or(top_code);
                return Some((code, message, Some(detail.clone())));
            }
            _ => {}
        }
    }
    match map.get("error") {
        Some(Value::Object(o)) => {
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    map.get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let code = o.get("code").and_then(code_text).or(top_code);
            let details = o
                .get("details")
                .filter(|d| !d.is_null())
                .cloned()
                .or(top_details);
            return Some((code, message, details));
        }
        Some(Value::String(text)) => return Some((top_code, text.clone(), top_details)),
        _ => {}
    }
    if let Some(Value::String(text)) = map.get("message") {
        return Some((top_code, text.clone(), top_details));
    }
    None
}

/// A code is normally a string; a number is kept as its digits.
fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn raw_text(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).trim())
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(RAW_LIMIT) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> ApiError {
        ApiError::parse(status, body.as_bytes())
    }

    #[test]
    fn fastapi_detail_text() {
        let e = parse(404, r#"{"detail":"Reply target not found."}"#);
        assert_eq!(e.status, 404);
        assert_eq!(e.code, None);
        assert_eq!(e.message, "Reply target not found.");
        assert_eq!(e.details, None);
    }

    #[test]
    fn fastapi_validation_list() {
        let body = json!({"detail": [
            {"loc": ["body", "body"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "media_urls", 0], "msg": "Input should be a valid string", "type": "string_type"}
        ]});
        let e = ApiError::parse(422, body.to_string().as_bytes());
        assert_eq!(e.message, "Field required; Input should be a valid string");
        assert_eq!(e.details.as_ref(), body.get("detail"));
        assert_eq!(e.code, None);
    }

    #[test]
    fn fastapi_detail_object() {
        let e = parse(
            403,
            r#"{"detail":{"message":"Number not registered","code":"UNREGISTERED","link":"https://x"}}"#,
        );
        assert_eq!(e.message, "Number not registered");
        assert_eq!(e.code.as_deref(), Some("UNREGISTERED"));
        assert_eq!(e.details.unwrap()["link"], "https://x");
    }

    #[test]
    fn documented_envelope() {
        let e = parse(
            429,
            r#"{"error":{"message":"Limit: 5 requests per 3600s","code":"RATE_LIMIT_EXCEEDED","type":"rate_limit_error","details":[{"field":"x"}]}}"#,
        );
        assert_eq!(e.message, "Limit: 5 requests per 3600s");
        assert_eq!(e.code.as_deref(), Some("RATE_LIMIT_EXCEEDED"));
        assert_eq!(e.details, Some(json!([{"field": "x"}])));

        let e = parse(409, r#"{"error":{"code":"DELIVERY_UNCONFIRMED"}}"#);
        assert_eq!(e.code.as_deref(), Some("DELIVERY_UNCONFIRMED"));
        assert_eq!(e.message, "Conflict");
        assert_eq!(e.details, None);
    }

    #[test]
    fn error_as_text() {
        let e = parse(
            400,
            r#"{"error":"Reactions need iMessage","code":"VALIDATION_ERROR"}"#,
        );
        assert_eq!(e.message, "Reactions need iMessage");
        assert_eq!(e.code.as_deref(), Some("VALIDATION_ERROR"));
    }

    #[test]
    fn plain_message() {
        let e = parse(
            402,
            r#"{"message":"Insufficient balance","code":"INSUFFICIENT_BALANCE"}"#,
        );
        assert_eq!(e.message, "Insufficient balance");
        assert_eq!(e.code.as_deref(), Some("INSUFFICIENT_BALANCE"));
        let e = parse(500, r#"{"message":"boom","code":500}"#);
        assert_eq!(e.code.as_deref(), Some("500"));
        let e = parse(500, r#"{"message":"boom"}"#);
        assert_eq!(e.code, None);
    }

    #[test]
    fn anything_else_is_raw_text_or_the_reason() {
        assert_eq!(
            parse(502, "<html>Bad gateway</html>").message,
            "<html>Bad gateway</html>"
        );
        assert_eq!(parse(503, "").message, "Service Unavailable");
        assert_eq!(parse(503, "  \n").message, "Service Unavailable");
        assert_eq!(parse(599, "").message, "HTTP 599");
        assert_eq!(
            parse(500, r#"{"unexpected":true}"#).message,
            r#"{"unexpected":true}"#
        );
        assert_eq!(parse(500, r#""quoted""#).message, r#""quoted""#);
        assert_eq!(
            parse(500, r#"{"detail":""}"#).message,
            "Internal Server Error"
        );
        let long = "é".repeat(800);
        assert_eq!(parse(500, &long).message.chars().count(), 500);
        let invalid = ApiError::parse(500, b"\xff\xfeoops");
        assert!(invalid.message.ends_with("oops"));
    }

    #[test]
    fn to_json_has_the_four_fields() {
        let e = parse(
            429,
            r#"{"error":{"message":"slow down","code":"RATE_LIMIT_EXCEEDED"}}"#,
        );
        assert_eq!(
            e.to_json(),
            json!({"status": 429, "code": "RATE_LIMIT_EXCEEDED", "message": "slow down", "details": null})
        );
        assert_eq!(
            e.to_string(),
            "AgentPhone answered 429 RATE_LIMIT_EXCEEDED: slow down"
        );
        assert_eq!(
            parse(404, r#"{"detail":"gone"}"#).to_string(),
            "AgentPhone answered 404: gone"
        );
    }
}
