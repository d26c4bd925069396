//! The app hash chain: `app_hash(h) = SHA-256(app_hash(h-1) ‖ SHA-256(block writes))`.
//!
//! The block writes are every applied transaction's writes, transaction by transaction in block
//! order and key by key within one; each write is `len(key) key 0x01 len(value) value` for a put
//! and `len(key) key 0x00` for a delete, lengths as big-endian u32. A replica whose state diverges
//! in any single write therefore reports a different hash at that height.

use sha2::{Digest, Sha256};

use crate::store::WriteSet;

/// The hash the chain starts from (before genesis).
pub const EMPTY_APP_HASH: [u8; 32] = [0; 32];

pub fn writes_digest<'a>(writes: impl IntoIterator<Item = &'a WriteSet>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for set in writes {
        for (key, value) in set.iter() {
            hasher.update((key.len() as u32).to_be_bytes());
            hasher.update(key);
            match value {
                Some(value) => {
                    hasher.update([1]);
                    hasher.update((value.len() as u32).to_be_bytes());
                    hasher.update(value);
                }
                None => hasher.update([0]),
            }
        }
    }
    hasher.finalize().into()
}

/// The app hash after a block with these writes. A block that writes nothing keeps the previous
/// hash: CometBFT makes a new block whenever the app hash changes, so a hash that moved on every
/// empty block would make blocks forever even with `create_empty_blocks = false`.
pub fn next_app_hash<'a>(prev: &[u8], writes: impl IntoIterator<Item = &'a WriteSet> + Clone) -> [u8; 32] {
    if writes.clone().into_iter().all(WriteSet::is_empty) {
        if let Ok(same) = <[u8; 32]>::try_from(prev) {
            return same;
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(writes_digest(writes));
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, Option<&str>)]) -> WriteSet {
        let mut w = WriteSet::default();
        for (k, v) in pairs {
            match v {
                Some(v) => w.put(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
                None => w.delete(k.as_bytes().to_vec()),
            }
        }
        w
    }

    #[test]
    fn any_difference_in_writes_changes_the_hash() {
        let base = next_app_hash(&EMPTY_APP_HASH, &[set(&[("a", Some("1"))])]);
        assert_ne!(base, next_app_hash(&EMPTY_APP_HASH, &[set(&[("a", Some("2"))])]));
        assert_ne!(base, next_app_hash(&EMPTY_APP_HASH, &[set(&[("a", None)])]));
        assert_ne!(base, next_app_hash(&[1; 32], &[set(&[("a", Some("1"))])]));
        // Length prefixes keep key/value boundaries unambiguous.
        assert_ne!(writes_digest(&[set(&[("ab", Some("c"))])]), writes_digest(&[set(&[("a", Some("bc"))])]));
        // An empty block keeps the hash, so CometBFT does not make blocks forever.
        assert_eq!(next_app_hash(&base, &[]), base);
        assert_eq!(next_app_hash(&base, &[WriteSet::default()]), base);
        // Transaction order is part of the hash.
        let (x, y) = (set(&[("k", Some("x"))]), set(&[("k", Some("y"))]));
        assert_ne!(writes_digest(&[x.clone(), y.clone()]), writes_digest(&[y, x]));
    }
}
