//! The one error shape every endpoint answers with: `{"error": {"code": "...", "message": "..."}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use footfall_engine::wal::WalError;
use footfall_engine::EngineError;
use footfall_sql::guard::GuardError;
use footfall_sql::QueryError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_secs: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

/// What `Retry-After` says when the disk under the WAL is full or storage is unavailable: long
/// enough that a few thousand trackers do not hammer a server that cannot write, short enough that
/// ingest resumes soon after space or the bucket returns (the server itself needs no restart).
pub const STORAGE_RETRY_AFTER_SECS: u64 = 5;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let (status, code, retry) = match &e {
            EngineError::BufferFull { .. } | EngineError::Wal(WalError::QueueFull) => {
                (StatusCode::TOO_MANY_REQUESTS, "overloaded", 1)
            }
            // 507: the server cannot store the request now; nothing of it was acknowledged.
            EngineError::Wal(WalError::NoSpace(_)) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage", STORAGE_RETRY_AFTER_SECS)
            }
            _ => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", STORAGE_RETRY_AFTER_SECS),
        };
        Self { retry_after_secs: Some(retry), ..Self::new(status, code, e.to_string()) }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let message = e.to_string();
        match e {
            QueryError::Refused(GuardError::NotReadOnly(_)) => Self::bad_request("forbidden_statement", message),
            QueryError::Refused(GuardError::TooComplex { .. }) => Self::bad_request("query_too_complex", message),
            QueryError::Refused(_) => Self::bad_request("invalid_sql", message),
            QueryError::Invalid(_) => Self::bad_request("invalid_query", message),
            QueryError::ResourcesExhausted(_) => Self::bad_request("resources_exhausted", message),
            QueryError::Timeout(_) => Self::bad_request("query_timeout", message),
            QueryError::TooManyRows(_) => Self::bad_request("too_many_rows", message),
            QueryError::ResultTooLarge(_) => Self::bad_request("result_too_large", message),
            QueryError::Panicked(_) => Self::internal(message),
            QueryError::Internal(_) => Self::internal(message),
            QueryError::Storage(_) => Self {
                retry_after_secs: Some(STORAGE_RETRY_AFTER_SECS),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
            },
        }
    }
}
