//! What every response carries, whichever layer made it: a request id (`x-request-id`, the
//! client's when it sent a usable one), and for an error, the JSON envelope of DESIGN §7 — also
//! for the errors that layers below the handlers answer in plain text (a body over the limit, a
//! body read that timed out).

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;

pub(super) const REQUEST_ID: &str = "x-request-id";

/// Longest error text of a lower layer that is carried into the envelope.
const MAX_LOWER_LAYER_MESSAGE: usize = 512;

/// Gives the request an id (the client's, if it is 1-128 visible ASCII characters; else a new
/// one), so the logs of its span and the response name it.
pub(super) async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned()
        .unwrap_or_else(new_request_id);
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

fn new_request_id() -> HeaderValue {
    let mut bytes = [0u8; 12];
    // Without randomness the id is still unique enough for logs: fall back to zeros.
    let _ = getrandom::getrandom(&mut bytes);
    HeaderValue::from_str(&hex::encode(bytes)).expect("hex is a valid header value")
}

/// Rewrites an error response that is not JSON into the envelope.
pub(super) async fn errors_as_envelope(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_LOWER_LAYER_MESSAGE * 4).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).chars().take(MAX_LOWER_LAYER_MESSAGE).collect::<String>(),
        Err(_) => String::new(),
    };
    let code = match status.as_u16() {
        400 => "invalid_request",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    };
    let message = if text.trim().is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let mut rewritten = ApiError::new(status.as_u16(), code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}
