//! The error a handler returns: an HTTP status, a stable machine-readable code, a message for
//! people, and structured details (`expected_step`, `field`, ...). A handler error is a business
//! rule violation: it is answered to the client and never replicated.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct AppError {
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}

impl AppError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: BTreeMap::new() }
    }

    /// Adds a detail field to the error envelope.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// 400: the body is malformed; `field` names the offending field (`""` for the whole body).
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message).with("field", field)
    }

    /// 403: the actor may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// 404: `what` with this `id` does not exist.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(404, "not_found", format!("{what} '{id}' does not exist")).with("resource", what).with("id", id)
    }

    /// 409: the request does not fit the current state.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// 409 for a step taken out of order.
    pub fn wrong_step(step: &str, expected: &str) -> Self {
        Self::conflict("out_of_order", format!("step '{step}' is not allowed now; expected '{expected}'"))
            .with("expected_step", expected)
    }

    /// 422: well-formed but semantically refused (for example, a signature that does not verify).
    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    /// 500: a local failure (the store), never caused by the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    pub fn is_internal(&self) -> bool {
        self.status >= 500
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::internal(err.to_string())
    }
}
