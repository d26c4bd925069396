//! Identifiers: which ids are acceptable, and ids derived deterministically inside handlers.

use crate::{crypto::sha256, registry::AppError};

/// Longest accepted id.
pub const MAX_ID_LEN: usize = 64;

/// Checks a client-chosen id (`package_id`, `courier_id`, ...): 1–64 characters of
/// `[A-Za-z0-9._-]`, so it can never break a store key or a URL path.
pub fn check(field: &str, id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(
            field,
            format!("'{field}' must be 1-{MAX_ID_LEN} characters of letters, digits, '.', '_' or '-'"),
        ))
    }
}

/// Derives an id with a prefix from a request id: the same at every replica.
pub fn derive(prefix: &str, request_id: &str) -> String {
    let digest = sha256(format!("bftws/{prefix}/{request_id}").as_bytes());
    format!("{prefix}-{}", hex::encode(&digest[..10]))
}

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Checks an `Idempotency-Key`: 1-128 printable ASCII characters.
pub fn check_idempotency_key(key: &str) -> Result<(), AppError> {
    if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "idempotency-key",
            format!("Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters without spaces"),
        ))
    }
}

/// The request id of a write sent with an `Idempotency-Key`: the same for every retry of the same
/// actor with the same key, so a retry is the same replicated request and can apply only once.
pub fn idempotent_request_id(actor: &crate::registry::Actor, key: &str) -> String {
    let digest = sha256(format!("bftws/idempotency/v1\n{}\n{}\n{key}", actor.role.as_str(), actor.id).as_bytes());
    hex::encode(&digest[..16])
}

/// The id of the session started by the request with this id.
pub fn session_id(request_id: &str) -> String {
    derive("ses", request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(session_id("req-1"), session_id("req-1"));
        assert_ne!(session_id("req-1"), session_id("req-2"));
        check("session_id", &session_id("req-1")).unwrap();
        insta::assert_snapshot!(session_id("req-1"), @"ses-06aedfc42d9f891565fa");
    }

    #[test]
    fn ids_that_could_break_keys_or_paths_are_refused() {
        for bad in ["", "a/b", "a b", &"x".repeat(65), "é"] {
            assert_eq!(check("package_id", bad).unwrap_err().status, 400, "{bad:?}");
        }
        check("package_id", "PKG-2026.001_a").unwrap();
    }
}
