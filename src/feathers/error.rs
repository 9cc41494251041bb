//! The one error type of the service layer, serialized exactly as Feathers does:
//! `{name, message, code, className[, data][, errors]}` with HTTP status = `code`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::{Map, Value, json};

/// The Feathers error classes this server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    NotAuthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    Unprocessable,
    TooManyRequests,
    GeneralError,
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
            Self::PayloadTooLarge => ("PayloadTooLarge", 413, "payload-too-large"),
            Self::Unprocessable => ("Unprocessable", 422, "unprocessable"),
            Self::TooManyRequests => ("TooManyRequests", 429, "too-many-requests"),
            Self::GeneralError => ("GeneralError", 500, "general-error"),
            Self::Unavailable => ("Unavailable", 503, "unavailable"),
        }
    }
}

/// A Feathers error: what a client sees when a call fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct FeathersError {
    pub kind: ErrorKind,
    pub message: String,
    pub data: Option<Box<Value>>,
    pub errors: Option<Box<Value>>,
}

/// Result alias used by every service method.
pub type Result<T, E = FeathersError> = std::result::Result<T, E>;

impl FeathersError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            data: None,
            errors: None,
        }
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }
    pub fn with_errors(mut self, errors: Value) -> Self {
        self.errors = Some(Box::new(errors));
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    /// A 400 whose `errors` maps the offending field path to its message.
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::bad_request(format!("{path}: {message}")).with_errors(json!({ path: [message] }))
    }
    pub fn not_authenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotAuthenticated, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// The Feathers message for a missing record.
    pub fn no_record(id: impl std::fmt::Display) -> Self {
        Self::not_found(format!("No record found for id '{id}'"))
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MethodNotAllowed, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    /// An internal failure: the cause is logged here, once, and never sent to the client.
    pub fn general(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorKind::GeneralError, "Internal server error")
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
        HttpResponse::build(self.status_code()).json(self.to_json())
    }
}

/// PostgreSQL's deadlock and serialization failures (SQLSTATE 40P01, 40001): the
/// transaction was rolled back and the same request may simply be sent again.
fn is_write_conflict(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

impl From<sea_orm::DbErr> for FeathersError {
    /// Database errors: a unique violation is a 409, a foreign key miss a 422, a
    /// deadlock or serialization failure and no free connection a 503 (try again),
    /// everything else an opaque 500 with the cause in the log.
    fn from(err: sea_orm::DbErr) -> Self {
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Self::conflict("A record with this value already exists")
            }
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::unprocessable("A referenced record does not exist")
            }
            _ if is_write_conflict(&err) => {
                // The database rolled the transaction back; nothing was written.
                tracing::warn!(error = %err, "write conflict with a concurrent transaction");
                Self::new(
                    ErrorKind::Unavailable,
                    "A concurrent change conflicted with this one, try again",
                )
            }
            _ if matches!(err, sea_orm::DbErr::ConnectionAcquire(_)) => {
                // Overloaded or unreachable database: the caller may retry later.
                tracing::warn!(error = %err, "database connection unavailable");
                Self::new(
                    ErrorKind::Unavailable,
                    "The database is unavailable, try again later",
                )
            }
            _ => Self::general(err),
        }
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
}
