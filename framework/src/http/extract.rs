//! Extractors whose rejections use the error envelope: the authenticated actor and a JSON object
//! body.

use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
    Json,
};
use serde_json::Value;

use super::{error::ApiError, ApiState};
use crate::registry::Actor;

/// The actor behind the request's `Authorization: Bearer <token>`.
pub(super) struct Authenticated(pub(super) Actor);

/// The token of the request's `Authorization: Bearer <token>` header.
pub(super) fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing 'Authorization: Bearer <token>' header"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be 'Bearer <token>'"))
}

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let auth = state.auth();
        auth.authenticate(token).cloned().map(Authenticated).ok_or_else(|| ApiError::unauthenticated("unknown token"))
    }
}

/// The request's optional `Idempotency-Key` header (checked when the write is built).
pub(super) struct IdempotencyKey(pub(super) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("idempotency-key") {
            None => Ok(Self(None)),
            Some(value) => value.to_str().map(|key| Self(Some(key.to_owned()))).map_err(|_| {
                ApiError::new(400, "invalid_request", "Idempotency-Key must be printable ASCII")
                    .with("field", "idempotency-key")
            }),
        }
    }
}

/// A JSON object body (size-limited by the router's body limit).
pub(super) struct JsonObject(pub(super) Value);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<Value>::from_request(req, state).await.map_err(json_rejection)?;
        if !value.is_object() {
            return Err(ApiError::new(400, "invalid_request", "the body must be a JSON object").with("field", ""));
        }
        Ok(JsonObject(value))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status().as_u16();
    let code = match status {
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        _ => "invalid_json",
    };
    let status = if status == 422 { 400 } else { status };
    ApiError::new(status, code, rejection.body_text())
}
