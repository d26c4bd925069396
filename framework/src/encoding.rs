//! The one canonical encoding of everything that is signed, hashed or stored in replicated state.
//!
//! Canonical JSON: UTF-8, no insignificant whitespace, object keys sorted by their UTF-8 bytes,
//! numbers as serde_json prints them (integers only in replicated types), strings escaped as
//! serde_json escapes them. The encoder sorts keys itself, so the result does not depend on how
//! any dependency configures `serde_json::Map` (the `preserve_order` feature would otherwise
//! change it). Decoding accepts only bytes that re-encode to themselves, so every value has
//! exactly one accepted encoding and a signature over the bytes is a signature over the value.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// Why bytes are not an accepted canonical encoding.
#[derive(Debug, thiserror::Error)]
pub enum EncodingError {
    #[error("not valid JSON for this type: {0}")]
    Json(#[from] serde_json::Error),
    #[error("JSON is valid but not in canonical form (sorted keys, no whitespace)")]
    NotCanonical,
}

/// Encodes a value as canonical JSON bytes.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // A `Serialize` of our own types into `Value` cannot fail: every map key is a string.
    let value = serde_json::to_value(value).expect("replicated types serialize to JSON values");
    let mut out = Vec::with_capacity(256);
    write_canonical(&value, &mut out);
    out
}

/// Encodes an already built JSON value canonically.
pub fn value_to_canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// Decodes canonical JSON bytes; rejects any other encoding of the same value.
pub fn from_canonical_bytes<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, EncodingError> {
    let value: T = serde_json::from_slice(bytes)?;
    if to_canonical_bytes(&value) != bytes {
        return Err(EncodingError::NotCanonical);
    }
    Ok(value)
}

/// Decodes a stored value written by [`to_canonical_bytes`] (no canonical check: the store only
/// ever holds our own encodings, and re-encoding on every read would be waste).
pub fn from_stored_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EncodingError> {
    Ok(serde_json::from_slice(bytes)?)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Scalars have a single compact serde_json rendering; writing into a Vec cannot fail.
    serde_json::to_writer(out, value).expect("writing JSON into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn object_keys_are_sorted_and_whitespace_is_dropped() {
        let value = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        assert_eq!(value_to_canonical_bytes(&value), br#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }

    #[test]
    fn a_non_canonical_encoding_of_a_valid_value_is_refused() {
        let err = from_canonical_bytes::<BTreeMap<String, u32>>(br#"{"b":1, "a":2}"#).unwrap_err();
        assert!(matches!(err, EncodingError::NotCanonical));
        let ok: BTreeMap<String, u32> = from_canonical_bytes(br#"{"a":2,"b":1}"#).unwrap();
        assert_eq!(ok.len(), 2);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_round_trips_through_the_canonical_encoding(value in arb_json()) {
            let bytes = value_to_canonical_bytes(&value);
            let back: Value = from_canonical_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &value);
            prop_assert_eq!(value_to_canonical_bytes(&back), bytes);
        }
    }
}
