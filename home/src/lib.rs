//! CometBFT v0.38 home generation for bftws.
//!
//! Every bftws node is a Rust ABCI application plus a `cometbft` process. This
//! crate turns typed inputs into the exact files such a `cometbft` process
//! needs in its home directory, so that nothing depends on `cometbft init`:
//!
//! | file                               | produced by                                   |
//! |------------------------------------|-----------------------------------------------|
//! | `config/config.toml`               | [`NodeConfig::to_toml`]                       |
//! | `config/genesis.json`              | [`GenesisSpec::to_json`]                      |
//! | `config/node_key.json`             | [`NodeKey::node_key_json`]                    |
//! | `config/priv_validator_key.json`   | [`ValidatorKey::priv_validator_key_json`]     |
//! | `data/priv_validator_state.json`   | [`initial_priv_validator_state_json`]         |
//!
//! Everything except [`write_home`] is pure and deterministic (no clock, no
//! environment, no randomness outside the explicit `generate()` key
//! constructors), because the same code runs in the local devnet command and
//! in the Kubernetes operator, which renders the files into Secrets and
//! ConfigMaps and must produce identical bytes on every reconcile.
//!
//! Modules:
//! - [`keys`]: ed25519 node and validator keys and their CometBFT JSON files;
//! - [`genesis`]: `genesis.json` and its hash;
//! - [`config`]: `config.toml`, per-layer [`Timing`] and Go duration strings;
//! - [`home`]: the set of files of one home and writing it to disk;
//! - [`network`]: laying out a whole local (127.0.0.1) network;
//! - [`cluster`]: the Kubernetes pod contract between the operator and `bftws-node init`.

pub mod cluster;
pub mod config;
pub mod genesis;
pub mod home;
pub mod keys;
pub mod network;

pub use cluster::{
    pod_home, ClusterLayer, LayerManifest, ManifestNode, PodHome, PodKeyFiles, PodNodeSettings, TimingStrings,
};
pub use config::{format_go_duration, gossip_sleep_for, parse_go_duration, LogFormat, NodeConfig, Peer, Timing};
pub use genesis::{genesis_hash, ConsensusParams, GenesisSpec, GenesisValidator};
pub use home::{write_home, HomeFile, HomeFiles};
pub use keys::{initial_priv_validator_state_json, NodeKey, PublicKey, ValidatorKey, SEED_LEN};
pub use network::{
    local_network, local_network_on_hosts, LocalNetworkSpec, NodeHome, NodeKeys, NodePorts, PORT_STRIDE,
};

use std::path::PathBuf;

/// The CometBFT release whose file formats this crate produces.
pub const COMETBFT_VERSION: &str = "0.38.26";

/// Everything that can go wrong while building or writing a home.
///
/// Each variant carries enough context (which input, which file) to be shown
/// to an operator as is.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// A key seed (hex or bytes) could not be used.
    #[error("invalid {key} seed: {reason}")]
    InvalidSeed { key: &'static str, reason: String },

    /// A CometBFT key file (`node_key.json`, `priv_validator_key.json`) or a
    /// public key could not be parsed or is inconsistent.
    #[error("invalid {what}: {reason}")]
    InvalidKey { what: &'static str, reason: String },

    /// The operating system could not provide randomness for `generate()`.
    #[error("reading OS randomness for a new key: {0}")]
    Randomness(String),

    /// The genesis spec violates a rule CometBFT would reject at start.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),

    /// The node config violates a rule CometBFT would reject at start.
    #[error("invalid node config: {0}")]
    InvalidConfig(String),

    /// A Go duration string (e.g. a CRD timeout) could not be parsed.
    #[error("invalid duration {input:?}: {reason}")]
    InvalidDuration { input: String, reason: String },

    /// The local network spec is inconsistent (e.g. wrong number of keys).
    #[error("invalid local network spec: {0}")]
    InvalidNetwork(String),

    /// Serializing a JSON document failed.
    #[error("serializing {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A filesystem operation in [`write_home`] failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
