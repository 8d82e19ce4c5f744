//! The HTTP error type: every API failure becomes a JSON body `{"error": <code>, "message": …,
//! "field": …}` with the matching status, mapped here and nowhere else. The domain's
//! [`crate::error::Error`] becomes one of these in [`From<Error>`](ApiError::from).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

use app::api::ServerError;

use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    /// The request is well-formed but collides with what exists (a duplicate name).
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Valid credentials without the right, or a cross-site write.
    #[error("{0}")]
    Forbidden(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("request body exceeds the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("the request took too long")]
    Timeout,
    /// The database cannot be reached; the client may retry after a pause.
    #[error("the service is unavailable; try again shortly")]
    Unavailable(String),
    /// The cause is logged, never sent: it may name hosts, queries or secrets.
    #[error("internal server error")]
    Internal(String),
}

/// How long a client should wait before retrying while the database is unreachable.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest { field: Some(field.into()), message: message.into() }
    }
}

/// The one mapping of domain failures to HTTP.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => Self::NotFound(what),
            Error::Invalid { field, message } => Self::BadRequest { field, message },
            Error::Conflict { field, message } => Self::Conflict { field, message },
            Error::Unauthenticated => Self::Unauthorized,
            Error::Forbidden(why) => Self::Forbidden(why),
            Error::Unavailable(cause) => Self::Unavailable(crate::storage::pool::describe(&cause)),
            Error::Database(cause) => Self::Internal(cause.to_string()),
            Error::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// A storage failure shared by several waiters (a cached computation's), classified the same way.
impl From<std::sync::Arc<sqlx::Error>> for ApiError {
    fn from(e: std::sync::Arc<sqlx::Error>) -> Self {
        let cause = crate::storage::pool::describe(&e);
        if crate::error::is_outage(&e) { Self::Unavailable(cause) } else { Self::Internal(cause) }
    }
}

/// Storage failures read the way the domain reads them.
/// A probe file that could not be applied: the file's own problems are the caller's (400, naming
/// the file); the database's are not, and keep their status (503 while it is unreachable).
impl From<crate::monitor::probe_file::FileError> for ApiError {
    fn from(e: crate::monitor::probe_file::FileError) -> Self {
        use crate::monitor::probe_file::FileError;
        match e {
            FileError::Database(db) => db.into(),
            FileError::Refused {
                error: error @ (Error::Unavailable(_) | Error::Database(_) | Error::Internal(_)),
                ..
            } => error.into(),
            FileError::Write(w) => Error::Internal(w.to_string()).into(),
            other => ApiError::bad("file", other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Error::from(e).into()
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// What a server function tells the page (its status comes from [`status`](Self::status)).
    /// Internal causes are logged here and replaced by a generic message.
    pub fn into_server_error(self) -> ServerError {
        match self {
            Self::BadRequest { field, message } => ServerError::Invalid { field, message },
            Self::Conflict { field, message } => ServerError::Conflict { field, message },
            Self::Unauthorized => ServerError::Unauthenticated,
            Self::Forbidden(message) => ServerError::Forbidden { message },
            Self::TooManyRequests { retry_after_secs } => ServerError::TooManyRequests { retry_after_secs },
            Self::NotFound(what) => ServerError::NotFound { what: what.into() },
            Self::PayloadTooLarge { .. } | Self::Timeout => {
                ServerError::Invalid { field: None, message: self.to_string() }
            }
            Self::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "server function: database unavailable");
                ServerError::Unavailable
            }
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "server function failed");
                ServerError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(cause = %cause, "database unavailable"),
            _ => {}
        }
        let field = match &self {
            Self::BadRequest { field, .. } | Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { error: code, message: self.to_string(), field })).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(retry_after_secs));
        }
        if matches!(self, Self::Unavailable(_)) {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(UNAVAILABLE_RETRY_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::probe_file::FileError;

    #[test]
    fn a_probe_file_error_is_the_callers_unless_the_database_failed() {
        let syntax = FileError::Syntax { path: None, line: Some(3), message: "expected `=`".into() };
        let refused = FileError::Refused { what: "probe", name: "api".into(), error: Error::invalid("url", "no host") };
        for e in [syntax, refused, FileError::Duplicate("api".into())] {
            assert_eq!(ApiError::from(e).status(), StatusCode::BAD_REQUEST);
        }
        let down = FileError::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(ApiError::from(down).status(), StatusCode::SERVICE_UNAVAILABLE, "an outage is not a bad file");
        let refused_by_outage = FileError::Refused {
            what: "probe",
            name: "api".into(),
            error: Error::Unavailable(sqlx::Error::PoolClosed),
        };
        assert_eq!(ApiError::from(refused_by_outage).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
