//! The one error type of the service layer, serialized exactly as Feathers does:
//! `{name, message, code, className[, data][, errors]}` with HTTP status = `code`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::{Map, Value, json};
use std::panic::Location;
use std::sync::Arc;

/// The Feathers error classes this server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    NotAuthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Timeout,
    PayloadTooLarge,
    Unprocessable,
    TooManyRequests,
    GeneralError,
    BadGateway,
    Unavailable,
}

impl ErrorKind {
    /// `(name, code, className)` as Feathers spells them.
    fn parts(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::BadRequest => ("BadRequest", 400, "bad-request"),
            Self::NotAuthenticated => ("NotAuthenticated", 401, "not-authenticated"),
            Self::Forbidden => ("Forbidden", 403, "forbidden"),
            Self::NotFound => ("NotFound", 404, "not-found"),
            Self::MethodNotAllowed => ("MethodNotAllowed", 405, "method-not-allowed"),
            Self::Conflict => ("Conflict", 409, "conflict"),
            Self::Timeout => ("Timeout", 408, "timeout"),
            Self::PayloadTooLarge => ("PayloadTooLarge", 413, "payload-too-large"),
            Self::Unprocessable => ("Unprocessable", 422, "unprocessable"),
            Self::TooManyRequests => ("TooManyRequests", 429, "too-many-requests"),
            Self::GeneralError => ("GeneralError", 500, "general-error"),
            Self::BadGateway => ("BadGateway", 502, "bad-gateway"),
            Self::Unavailable => ("Unavailable", 503, "unavailable"),
        }
    }
}

/// A Feathers error: what a client sees when a call fails, plus what the log needs
/// and the client must not see: the cause underneath and where the error was made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct FeathersError {
    pub kind: ErrorKind,
    pub message: String,
    pub data: Option<Box<Value>>,
    pub errors: Option<Box<Value>>,
    /// The failure underneath (a database error, an I/O error), for the log only.
    #[source]
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
    /// The call site that made the error.
    location: &'static Location<'static>,
}

/// An internal failure described only by a sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Described(String);

/// Result alias used by every service method.
pub type Result<T, E = FeathersError> = std::result::Result<T, E>;

impl FeathersError {
    #[track_caller]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            data: None,
            errors: None,
            cause: None,
            location: Location::caller(),
        }
    }
    /// Keeps `cause` for the log (the client still sees only `message`).
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }
    /// Where the error was made.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
    /// The causes underneath, outermost first, as one line for the log.
    pub fn chain(&self) -> String {
        let mut out = String::new();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }
    pub fn with_errors(mut self, errors: Value) -> Self {
        self.errors = Some(Box::new(errors));
        self
    }
    #[track_caller]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    /// A 400 whose `errors` maps the offending field path to its message.
    #[track_caller]
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::bad_request(format!("{path}: {message}")).with_errors(json!({ path: [message] }))
    }
    #[track_caller]
    pub fn not_authenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotAuthenticated, message)
    }
    #[track_caller]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    #[track_caller]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// The Feathers message for a missing record.
    #[track_caller]
    pub fn no_record(id: impl std::fmt::Display) -> Self {
        Self::not_found(format!("No record found for id '{id}'"))
    }
    #[track_caller]
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MethodNotAllowed, message)
    }
    #[track_caller]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    #[track_caller]
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    /// An internal failure: the client sees an opaque 500; the cause is kept for the
    /// one log line the transport writes at the boundary.
    #[track_caller]
    pub fn general(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::GeneralError, "Internal server error")
            .with_cause(Described(cause.to_string()))
    }

    /// Seconds a client should wait before retrying: `Retry-After` of a 429 or 503.
    pub fn retry_after(&self) -> Option<u64> {
        match self.kind {
            ErrorKind::TooManyRequests => self.data.as_ref()?.get("retryAfter")?.as_u64(),
            ErrorKind::Unavailable => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }

    pub fn code(&self) -> u16 {
        self.kind.parts().1
    }

    /// The JSON body Feathers sends for this error.
    pub fn to_json(&self) -> Value {
        let (name, code, class_name) = self.kind.parts();
        let mut body = Map::new();
        body.insert("name".into(), name.into());
        body.insert("message".into(), self.message.clone().into());
        body.insert("code".into(), code.into());
        body.insert("className".into(), class_name.into());
        if let Some(data) = &self.data {
            body.insert("data".into(), (**data).clone());
        }
        if let Some(errors) = &self.errors {
            body.insert("errors".into(), (**errors).clone());
        }
        Value::Object(body)
    }
}

impl ResponseError for FeathersError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after() {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds));
        }
        response.json(self.to_json())
    }
}

/// `Retry-After` of a 503: the conditions behind one (a held lock, a restarting
/// database, a full instance) usually pass within seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Why a database error is worth retrying, if it is: the message the client gets.
fn retryable(err: &sea_orm::DbErr) -> Option<&'static str> {
    use sea_orm::{DbErr, RuntimeErr};
    const CONFLICT: &str = "A concurrent change conflicted with this one, try again";
    const DOWN: &str = "The database is unavailable, try again later";
    const SLOW: &str = "The database took too long to answer, try again later";
    const BUSY: &str = "The database is busy, try again later";
    let e = match err {
        // No free connection within the acquire timeout, or the pool is closing.
        DbErr::ConnectionAcquire(_) => return Some(DOWN),
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        // Connecting failed (sea-orm reports it as text).
        DbErr::Conn(_) => return Some(DOWN),
        _ => return None,
    };
    match &**e {
        // Refused, reset, broken pipe, EOF mid-answer, the runtime of the socket gone:
        // the transaction did not commit (or, at worst, the answer was lost).
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(DOWN),
        sqlx::Error::Protocol(_) => Some(DOWN),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            match &*code {
                // Deadlock, serialization failure: rolled back, nothing was written.
                "40P01" | "40001" => Some(CONFLICT),
                // statement_timeout (or a cancel), lock_timeout.
                "57014" | "55P03" => Some(SLOW),
                // Administrator shutdown, crash shutdown, cannot connect now, too many
                // connections, connection exceptions (class 08).
                "57P01" | "57P02" | "57P03" | "53300" => Some(DOWN),
                c if c.starts_with("08") => Some(DOWN),
                // SQLite (extended result codes, numeric): BUSY (5) and LOCKED (6) in
                // any of their variants: another connection holds the lock.
                c if c.len() < 5 && c.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)) => {
                    Some(BUSY)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

impl From<sea_orm::DbErr> for FeathersError {
    /// Database errors: a unique violation is a 409, a foreign key miss a 422; a
    /// deadlock or serialization failure, a statement or lock timeout, SQLite's busy
    /// and locked, no free connection and a lost connection a 503 with `Retry-After`
    /// (the transaction was rolled back, so the same request may be sent again);
    /// everything else an opaque 500 with the cause in the log.
    #[track_caller]
    fn from(err: sea_orm::DbErr) -> Self {
        let error = match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Self::conflict("A record with this value already exists")
            }
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::unprocessable("A referenced record does not exist")
            }
            _ => match retryable(&err) {
                Some(message) => Self::new(ErrorKind::Unavailable, message),
                None => Self::new(ErrorKind::GeneralError, "Internal server error"),
            },
        };
        error.with_cause(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::sync::Arc;

    /// A database error with a SQLSTATE, as the driver reports one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "database error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db_error(code: &'static str) -> sea_orm::DbErr {
        let err = sqlx::Error::Database(Box::new(Coded(code)));
        sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn deadlocks_and_serialization_failures_ask_for_a_retry() {
        for code in ["40P01", "40001"] {
            let err = FeathersError::from(db_error(code));
            assert_eq!(err.kind, ErrorKind::Unavailable, "{code}");
        }
        let other = FeathersError::from(db_error("XX000"));
        assert_eq!(other.kind, ErrorKind::GeneralError);
    }

    #[test]
    fn timeouts_busy_databases_and_lost_connections_ask_for_a_retry() {
        for code in [
            "57014", "55P03", "57P01", "08006", "53300", "5", "517", "6", "262",
        ] {
            let err = FeathersError::from(db_error(code));
            assert_eq!(err.kind, ErrorKind::Unavailable, "{code}");
            assert_eq!(err.retry_after(), Some(RETRY_AFTER_SECS));
        }
        let slow = FeathersError::from(db_error("57014"));
        assert!(slow.message.contains("took too long"), "{}", slow.message);
        // A constraint or a generic SQLite error is not retryable.
        for code in ["23514", "1", "19"] {
            assert_eq!(
                FeathersError::from(db_error(code)).kind,
                ErrorKind::GeneralError
            );
        }
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let err = sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(io)));
        assert_eq!(FeathersError::from(err).kind, ErrorKind::Unavailable);
        let closed = sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout);
        assert_eq!(FeathersError::from(closed).kind, ErrorKind::Unavailable);
    }

    #[test]
    fn an_error_keeps_its_causes_and_where_it_was_made_but_shows_neither() {
        let io = sqlx::Error::Io(std::io::Error::other("connection reset by peer"));
        let db = sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(io)));
        let line = line!() + 1;
        let err: FeathersError = db.into();
        assert!(
            err.chain().contains("connection reset by peer"),
            "{}",
            err.chain()
        );
        assert_eq!(err.location().file(), file!());
        assert_eq!(err.location().line(), line);
        let body = err.to_json().to_string();
        assert!(
            !body.contains("reset"),
            "the cause stays out of the answer: {body}"
        );
        let general = FeathersError::general("INSERT returned no id");
        assert_eq!(general.chain(), "INSERT returned no id");
        assert_eq!(general.to_json()["message"], "Internal server error");
        assert_eq!(FeathersError::not_found("x").chain(), "");
    }
}
