//! The HTTP API's errors.
//!
//! Every REST error is `{"error": {"code": "...", "message": "..."}}` with a fitting status. The
//! rule: expected failures (not found, forbidden, invalid input) are [`ApiError`] variants with a
//! stable `code` that clients may match on; unexpected ones (the store failing, a bug) become a
//! logged, generic 500 whose details never reach the client. Constraint violations in the store
//! are 409. Inside background work and at the binary's edge we use `anyhow` instead, since nobody
//! matches on those errors.

use axum::Json;
use axum::http::StatusCode;
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
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the server is shutting down; try again shortly")]
    ShuttingDown,
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
            | ApiError::CrossOrigin => StatusCode::FORBIDDEN,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge | ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::TooLarge { code, .. } => code,
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PasswordRequired => "password_required",
            ApiError::WrongPassword => "wrong_password",
            ApiError::Banned => "banned",
            ApiError::CrossOrigin => "cross_origin",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
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
        (self.status_code(), Json(body)).into_response()
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
