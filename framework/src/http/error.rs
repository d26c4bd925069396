//! The HTTP error: every failure is answered with the envelope
//! `{"error": {"code": "...", "message": "...", ...details}}` and the right status. Internal
//! details are logged, never sent to the client.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::json;

use crate::{origin::WriteError, registry::AppError};

#[derive(Debug)]
pub struct ApiError {
    error: AppError,
    retry_after_secs: Option<u32>,
}

/// The error envelope, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable machine-readable code (`out_of_order`, `not_found`, `invalid_request`, ...).
    code: String,
    message: String,
    /// For 409 out-of-order steps: the step the session accepts now.
    expected_step: Option<String>,
    /// For 400: the offending field.
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AppError::new(status, code, message).into()
    }

    pub fn unauthenticated(message: &str) -> Self {
        Self::new(401, "unauthenticated", message)
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.error = self.error.with(key, value);
        self
    }

    pub(super) fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    fn internal(detail: &str) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(500, "internal", "internal error; see the node's log")
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        // A 500 is a local failure whose details stay in the log; other 5xx (503 with its
        // reason) are answers for the client.
        if error.status == 500 {
            return Self {
                error: AppError::new(500, "internal", "internal error; see the node's log"),
                retry_after_secs: None,
            }
            .log_detail(&error.message);
        }
        Self { error, retry_after_secs: None }
    }
}

impl ApiError {
    pub(super) fn status(&self) -> u16 {
        self.error.status
    }

    fn log_detail(self, detail: &str) -> Self {
        tracing::error!(%detail, "internal error");
        self
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Refused(error) => error.into(),
            WriteError::NoRoute { method, path } => {
                Self::new(404, "not_found", format!("no route for {method} {path}"))
            }
            WriteError::Conflict { code, log } => {
                Self::new(409, "conflict", format!("the operation was not applied ({}): {log}", code.name()))
                    .with("tx_code", code.name())
            }
            WriteError::Timeout(after) => Self::new(
                503,
                "timeout",
                format!(
                    "the operation was not final within {} ms; it may still apply: re-read before retrying",
                    after.as_millis()
                ),
            )
            .retry_after(1),
            WriteError::Unavailable(why) => {
                Self::new(503, "unavailable", format!("the chain is unavailable: {why}")).retry_after(2)
            }
            WriteError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(&err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(json!({ "error": self.error }))).into_response();
        // Every 503 tells the client when to come back.
        let retry_after = self.retry_after_secs.or((status == StatusCode::SERVICE_UNAVAILABLE).then_some(1));
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
