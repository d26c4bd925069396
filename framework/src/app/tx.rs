//! Transactions and their one encoding.
//!
//! A transaction is the canonical JSON (see [`crate::encoding`]) of a [`Tx`]. Signatures cover a
//! domain tag followed by the canonical JSON of the signed part, so an op signature can never
//! be replayed as a bundle signature or the other way round. The tx hash is CometBFT's: the
//! SHA-256 of the transaction bytes, upper-case hex, so `/tx?hash=0x…` finds it.

use serde::{Deserialize, Serialize};

use crate::{
    crypto::{sha256, CryptoError, PublicKey, SignatureHex, SigningKey},
    encoding::{self, EncodingError},
    registry::{Request, Response},
};

/// Largest transaction accepted (CometBFT's default mempool `max_tx_bytes` is 1 MiB).
pub const MAX_TX_BYTES: usize = 1024 * 1024;

const OP_DOMAIN: &[u8] = b"bftws/op/v1\n";
const BUNDLE_DOMAIN: &[u8] = b"bftws/bundle/v1\n";

/// One replicated write: the request and the response the origin's simulation produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub request: Request,
    pub response: Response,
}

/// An op signed by the node that originated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOp {
    pub op: Op,
    pub origin: String,
    pub origin_key: PublicKey,
    pub signature: SignatureHex,
}

impl SignedOp {
    pub fn sign(op: Op, origin: &str, key: &SigningKey) -> Self {
        let signature = key.sign(&signing_bytes(OP_DOMAIN, &op));
        Self { op, origin: origin.to_owned(), origin_key: key.public_key(), signature }
    }

    /// Checks the signature against the key the op names (authorisation of that key is the
    /// caller's business).
    pub fn verify_signature(&self) -> Result<(), CryptoError> {
        self.origin_key.verify(&signing_bytes(OP_DOMAIN, &self.op), &self.signature)
    }
}

/// A whole session's ops, as submitted to L1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub l2_chain_id: String,
    pub session_id: String,
    pub ops: Vec<SignedOp>,
    /// Hex SHA-256 of the canonical `{l2_chain_id, session_id, ops}`.
    pub bundle_hash: String,
}

#[derive(Serialize)]
struct BundleContent<'a> {
    l2_chain_id: &'a str,
    session_id: &'a str,
    ops: &'a [SignedOp],
}

impl Bundle {
    pub fn new(l2_chain_id: &str, session_id: &str, ops: Vec<SignedOp>) -> Self {
        let bundle_hash = Self::compute_hash(l2_chain_id, session_id, &ops);
        Self { l2_chain_id: l2_chain_id.to_owned(), session_id: session_id.to_owned(), ops, bundle_hash }
    }

    fn compute_hash(l2_chain_id: &str, session_id: &str, ops: &[SignedOp]) -> String {
        let content = BundleContent { l2_chain_id, session_id, ops };
        hex::encode(sha256(&encoding::to_canonical_bytes(&content)))
    }

    /// True when `bundle_hash` is the hash of the content.
    pub fn hash_is_consistent(&self) -> bool {
        Self::compute_hash(&self.l2_chain_id, &self.session_id, &self.ops) == self.bundle_hash
    }
}

/// A bundle signed by an L2 commit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBundle {
    pub bundle: Bundle,
    pub committer_key: PublicKey,
    pub signature: SignatureHex,
}

impl SignedBundle {
    pub fn sign(bundle: Bundle, key: &SigningKey) -> Self {
        let signature = key.sign(&signing_bytes(BUNDLE_DOMAIN, &bundle));
        Self { bundle, committer_key: key.public_key(), signature }
    }

    pub fn verify_signature(&self) -> Result<(), CryptoError> {
        self.committer_key.verify(&signing_bytes(BUNDLE_DOMAIN, &self.bundle), &self.signature)
    }
}

/// Everything that goes through consensus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// A transaction is decoded and handled one at a time; boxing the op would only add an
// allocation to the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Tx {
    Op(SignedOp),
    Bundle(SignedBundle),
}

#[derive(Debug, thiserror::Error)]
pub enum TxDecodeError {
    #[error("transaction of {0} bytes exceeds the {MAX_TX_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed transaction: {0}")]
    Encoding(#[from] EncodingError),
}

impl Tx {
    pub fn encode(&self) -> Vec<u8> {
        encoding::to_canonical_bytes(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, TxDecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxDecodeError::TooLarge(bytes.len()));
        }
        Ok(encoding::from_canonical_bytes(bytes)?)
    }
}

/// CometBFT's transaction hash: upper-case hex SHA-256 of the bytes.
pub fn tx_hash(bytes: &[u8]) -> String {
    tx_hash_of_digest(&sha256(bytes))
}

/// [`tx_hash`] from the SHA-256 digest already computed.
pub fn tx_hash_of_digest(digest: &[u8; 32]) -> String {
    hex::encode_upper(digest)
}

fn signing_bytes<T: Serialize>(domain: &[u8], value: &T) -> Vec<u8> {
    let mut out = domain.to_vec();
    out.extend_from_slice(&encoding::to_canonical_bytes(value));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::registry::{Actor, Role};

    fn op(body: serde_json::Value, time_ms: u64) -> Op {
        let mut params = BTreeMap::new();
        params.insert("id".to_owned(), "ses-1".to_owned());
        Op {
            request: Request {
                method: "POST".into(),
                path: "/v1/sessions/ses-1/scan".into(),
                params,
                body,
                actor: Actor { id: "op-1".into(), role: Role::new("operator") },
                request_id: "req-1".into(),
                time_ms,
                session_id: Some("ses-1".into()),
                session_seq: Some(1),
                idempotency_key: None,
            },
            response: Response { status: 200, body: json!({"ok": true}) },
        }
    }

    #[test]
    fn a_tampered_op_fails_its_signature() {
        let key = SigningKey::demo("node");
        let mut signed = SignedOp::sign(op(json!({"package_id": "p"}), 1), "l2-0", &key);
        signed.verify_signature().unwrap();
        signed.op.response.body = json!({"ok": false});
        assert_eq!(signed.verify_signature(), Err(CryptoError::BadSignature));
    }

    #[test]
    fn an_op_signature_is_not_a_bundle_signature() {
        let key = SigningKey::demo("node");
        let signed = SignedOp::sign(op(json!({}), 1), "l2-0", &key);
        let bundle = Bundle::new("l2", "ses-1", vec![signed.clone()]);
        let forged = SignedBundle { bundle, committer_key: key.public_key(), signature: signed.signature };
        assert!(forged.verify_signature().is_err());
    }

    #[test]
    fn encoded_transaction_bytes_never_change() {
        let key = SigningKey::demo("node");
        let tx = Tx::Op(SignedOp::sign(op(json!({"package_id": "p"}), 1_700_000_000_000), "l2-0", &key));
        insta::assert_snapshot!(String::from_utf8(tx.encode()).unwrap());
        insta::assert_snapshot!(tx_hash(&tx.encode()));
    }

    proptest! {
        #[test]
        fn transactions_round_trip(pkg in "[a-z0-9-]{1,20}", time_ms in any::<u64>(), qty in any::<u32>()) {
            let key = SigningKey::demo("node");
            let signed = SignedOp::sign(op(json!({"package_id": pkg, "qty": qty}), time_ms), "l2-0", &key);
            let bundle = SignedBundle::sign(Bundle::new("l2-chain", "ses-1", vec![signed.clone()]), &key);
            for tx in [Tx::Op(signed), Tx::Bundle(bundle)] {
                let bytes = tx.encode();
                let back = Tx::decode(&bytes).unwrap();
                prop_assert_eq!(&back, &tx);
                prop_assert_eq!(back.encode(), bytes);
            }
        }
    }
}
