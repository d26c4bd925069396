//! The configuration of one node process (`bftws-node run --config FILE`), written by
//! `bftws-node devnet` and, in Kubernetes, by `bftws-node init` from the mounted secrets.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::Layer;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The service this node runs (one the node binary links).
    #[serde(default = "default_service")]
    pub service: String,
    /// This node's origin id (listed in genesis `app_state.nodes`).
    pub node_id: String,
    pub layer: Layer,
    pub chain_id: String,
    /// Where the state store lives.
    pub data_dir: PathBuf,
    /// The Unix socket CometBFT connects to.
    pub abci_socket: PathBuf,
    /// This node's CometBFT RPC, e.g. `http://127.0.0.1:26657`.
    pub cometbft_rpc: String,
    pub http_listen: SocketAddr,
    /// File holding the hex seed of the key that signs this node's ops.
    pub node_key_file: PathBuf,
    /// The bearer-token file (hashes only).
    pub tokens_file: PathBuf,
    /// How long a write waits for finality before answering 503.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// L2 nodes: how to commit sessions to L1.
    #[serde(default)]
    pub l2: Option<L2Settings>,
    /// Test-only fault injection (`propose-mismatch`, `diverge-apply-from:HEIGHT`); needs the `byzantine-test` build.
    #[serde(default)]
    pub fault: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L2Settings {
    /// File holding the hex seed of the L2 commit key.
    pub commit_key_file: PathBuf,
    /// L1 API base URLs, tried in turn.
    pub l1_api: Vec<String>,
    /// L1's genesis.json: every receipt must come with a proof of finality that verifies
    /// against its validators. Absent: receipts are recorded as L1 nodes report them (warned at
    /// start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1_genesis_file: Option<PathBuf>,
    /// How long one commit attempt waits for L1 before the client gets 202.
    #[serde(default = "default_commit_timeout_ms")]
    pub commit_timeout_ms: u64,
}

fn default_service() -> String {
    "supply-chain".to_owned()
}

fn default_write_timeout_ms() -> u64 {
    10_000
}

fn default_commit_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid node configuration: {message}")]
    Invalid { path: String, message: String },
}

impl NodeConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: shown.clone(), message: e.to_string() })?;
        if config.layer == Layer::L2 && config.l2.is_none() {
            return Err(ConfigError::Invalid { path: shown, message: "an L2 node needs the 'l2' settings".into() });
        }
        Ok(config)
    }
}

/// Reads a hex key seed from a file.
pub fn read_key(path: &std::path::Path) -> Result<crate::crypto::SigningKey, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    crate::crypto::SigningKey::from_seed_hex(&text)
        .map_err(|e| ConfigError::Invalid { path: shown, message: format!("not a hex key seed: {e}") })
}
