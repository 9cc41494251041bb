//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Stdout is
//! left to the commands' output (`create-admin`'s ids, `seed`'s JSON report), so it
//! can be captured without log lines in it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The root span of every request: method, route, path and status. The query string
/// is logged by its keys only (`/contacts?email=…&$limit=…`): filters carry
/// searches, emails and phone numbers, which do not belong in logs.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let connection = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().as_deref().unwrap_or("default"),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.target = %redact_target(request.path(), request.query_string()),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// `path?query` with every query value replaced by `…`; the keys stay (they say which
/// filters were used) and so does their order. Keys are shown as sent (percent-encoded).
pub fn redact_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let keys: Vec<(&str, bool)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map_or((pair, false), |(key, _)| (key, true))
        })
        .collect();
    let mut out = String::with_capacity(path.len() + query.len().min(256) + 1);
    out.push_str(path);
    out.push('?');
    for (i, (key, has_value)) in keys.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        if *has_value {
            out.push_str("=…");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_target;

    #[test]
    fn the_logged_target_keeps_the_path_and_the_query_keys_but_no_value() {
        assert_eq!(redact_target("/contacts", ""), "/contacts");
        assert_eq!(
            redact_target(
                "/contacts",
                "email=ada%40example.com&phone[$like]=%25555%25&$limit=10"
            ),
            "/contacts?email=…&phone[$like]=…&$limit=…"
        );
        // A key without a value, empty pairs and a value holding `=`.
        assert_eq!(
            redact_target("/c", "flag&&searchTerm=a=b&"),
            "/c?flag&searchTerm=…"
        );
        let logged = redact_target("/conversations", "searchTerm=secret%20name&token=abc");
        assert!(
            !logged.contains("secret") && !logged.contains("abc"),
            "{logged}"
        );
        // The event stream's token (a URL is what EventSource can send).
        assert_eq!(
            redact_target("/events", "token=eyJhbGciOi.eyJzdWIi.c2ln&since=42"),
            "/events?token=…&since=…"
        );
    }
}
