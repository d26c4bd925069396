//! Secrets: the per-layer keys, the L2 commit key, the operator-managed API tokens.
//!
//! These hold key material, so they are built here from keys generated elsewhere
//! ([`crate::reconcile::keys`]), created once and never re-applied. With `deletionPolicy:
//! Retain` they carry no owner reference, so garbage collection leaves them when the
//! BftWebService is deleted and a recreated one resumes the same chains.

use std::collections::BTreeMap;

use bftws_home::cluster::{self, ClusterLayer};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{labels, retained_meta};
use crate::reconcile::keys::{bytes, LayerKeys, SeedKey};
use crate::reconcile::validate::ValidatedBftws;

/// Key of the plain-text admin token in the operator-managed tokens Secret.
pub const ADMIN_TOKEN_KEY: &str = "admin-token";

/// The entries of a keys Secret for the node ordinals `nodes` selects and the origin ordinals
/// listed (a new Secret: all of them; a scale-up: only the new ones).
pub fn keys_secret_data(keys: &LayerKeys, nodes: impl Fn(u32) -> bool, origin: &[u32]) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::new();
    for (ordinal, node) in keys.nodes.iter().filter(|(ordinal, _)| nodes(**ordinal)) {
        data.insert(cluster::node_key_file(*ordinal), bytes(&node.node.node_key_json()));
        data.insert(cluster::priv_validator_key_file(*ordinal), bytes(&node.validator.priv_validator_key_json()));
    }
    for (ordinal, key) in keys.origin.iter().filter(|(ordinal, _)| origin.contains(ordinal)) {
        data.insert(cluster::origin_key_file(*ordinal), bytes(key.seed_hex()));
    }
    data
}

/// `NAME-l1-keys` / `NAME-l2-keys`: CometBFT node and validator keys and origin keys of every
/// ordinal. The L1 one is immutable (L1 never grows); the L2 one gains entries on scale-up.
pub fn build_keys_secret(v: &ValidatedBftws, layer: ClusterLayer, keys: &LayerKeys) -> Secret {
    let origin: Vec<u32> = keys.origin.keys().copied().collect();
    Secret {
        metadata: retained_meta(v, v.names.keys_secret(layer), labels::layer(&v.names.name, layer)),
        type_: Some("Opaque".to_owned()),
        immutable: Some(layer == ClusterLayer::L1),
        data: Some(keys_secret_data(keys, |_| true, &origin)),
        ..Secret::default()
    }
}

/// `NAME-l2-commit-key`: the key that signs L2 session bundles for L1 (hex seed).
pub fn build_commit_key_secret(v: &ValidatedBftws, key: &SeedKey) -> Secret {
    Secret {
        metadata: retained_meta(v, v.names.commit_key_secret(), labels::layer(&v.names.name, ClusterLayer::L2)),
        type_: Some("Opaque".to_owned()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(cluster::COMMIT_KEY_KEY.to_owned(), bytes(key.seed_hex()))])),
        ..Secret::default()
    }
}

/// `NAME-api-tokens`, when the spec names no tokens Secret: one admin token, whose plain text is
/// kept under [`ADMIN_TOKEN_KEY`] for the person who installs the deployment to read
/// (`kubectl get secret NAME-api-tokens -o jsonpath='{.data.admin-token}' | base64 -d`), and
/// its hash in `tokens.json` for the nodes. Add more tokens by editing `tokens.json`.
pub fn build_managed_tokens_secret(v: &ValidatedBftws, admin_token: &str) -> Secret {
    let tokens = json!({
        "tokens": [{
            "sha256": hex::encode(Sha256::digest(admin_token.as_bytes())),
            "actor": {"id": "admin", "role": "admin"},
        }]
    });
    Secret {
        metadata: retained_meta(v, v.tokens.secret.clone(), labels::deployment(&v.names.name)),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (cluster::TOKENS_KEY.to_owned(), bytes(&tokens.to_string())),
            (ADMIN_TOKEN_KEY.to_owned(), bytes(admin_token)),
        ])),
        ..Secret::default()
    }
}
