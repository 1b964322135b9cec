//! The HTTP API's errors.
//!
//! Every REST error is `{"error": {"code": "...", "message": "..."}}` with a fitting status. The
//! rule: expected failures (not found, forbidden, invalid input) are [`ApiError`] variants with a
//! stable `code` that clients may match on; unexpected ones (the store failing, a bug) become a
//! logged, generic 500 whose details never reach the client. Constraint violations in the store
//! are 409. Inside background work and at the binary's edge we use `anyhow` instead, since nobody
//! matches on those errors.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error of the HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("this room needs a password")]
    PasswordRequired,
    #[error("wrong password")]
    WrongPassword,
    #[error("you are banned from this room")]
    Banned,
    #[error(
        "Someone at your network address was banned from this room; this lifts in about {hours} h."
    )]
    AddressBanned { hours: u64 },
    #[error("cross-site requests are not allowed")]
    CrossOrigin,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("send the request body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict with a code of its own (409).
    #[error("{message}")]
    Clash { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("this server does not answer for that host name (see --allowed-hosts)")]
    UnknownHost,
    #[error("the server is shutting down; try again shortly")]
    ShuttingDown,
    /// Too many of something from this client; try again after `retry_after`.
    #[error("{message}; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// The client stopped sending.
    #[error("{0}")]
    Timeout(String),
    /// The server has no capacity for this right now.
    #[error("{0}")]
    Busy(String),
    #[error("an internal error occurred")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn room_not_found() -> Self {
        ApiError::not_found("room_not_found", "no such room")
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_)
            | ApiError::PasswordRequired
            | ApiError::WrongPassword
            | ApiError::Banned
            | ApiError::AddressBanned { .. }
            | ApiError::CrossOrigin => StatusCode::FORBIDDEN,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge | ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Conflict(_) | ApiError::Clash { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownHost => StatusCode::MISDIRECTED_REQUEST,
            ApiError::ShuttingDown | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::TooLarge { code, .. }
            | ApiError::Clash { code, .. }
            | ApiError::RateLimited { code, .. } => code,
            ApiError::Busy(_) => "busy",
            ApiError::Timeout(_) => "timeout",
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PasswordRequired => "password_required",
            ApiError::WrongPassword => "wrong_password",
            ApiError::Banned | ApiError::AddressBanned { .. } => "banned",
            ApiError::CrossOrigin => "cross_origin",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::UnknownHost => "unknown_host",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ApiError {
    /// Too many `what` from this client (`code` names it for programs).
    pub fn rate_limited(code: &'static str, what: &str, retry_after: std::time::Duration) -> Self {
        ApiError::RateLimited {
            code,
            message: format!("too many {what} from your address"),
            retry_after,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && (db.is_unique_violation() || db.is_foreign_key_violation())
        {
            return ApiError::Conflict("that conflicts with existing data".into());
        }
        ApiError::Internal(err.into())
    }
}

impl From<crate::auth::password::HashError> for ApiError {
    fn from(err: crate::auth::password::HashError) -> Self {
        match err {
            crate::auth::password::HashError::Busy => ApiError::Busy(err.to_string()),
            crate::auth::password::HashError::Failed(e) => ApiError::Internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (self.status_code(), Json(body)).into_response();
        if let ApiError::RateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up: a client that waits this long gets through.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_details_stay_out_of_the_body() {
        let resp = ApiError::Internal(anyhow::anyhow!("disk /var/secret is full")).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"code\":\"internal\""));
    }
}
