//! The pod contract between the Kubernetes operator and `bftws-node init`.
//!
//! The operator (`bftws-operator`) renders what a pod needs into Secrets and ConfigMaps and mounts
//! them at fixed paths; the pod's init container runs
//!
//! ```text
//! bftws-node init --manifest /etc/bftws/layer/layer.json --ordinal $(BFTWS_ORDINAL)
//! ```
//!
//! which reads the mounts, calls [`pod_home`] (pure: this module does no I/O) and writes the
//! CometBFT home with [`crate::write_home`] (so `data/priv_validator_state.json` is created once
//! and never overwritten), the pod's origin key and the node process config onto the pod's
//! volume. Both sides use the types and constants here, so they cannot drift apart.
//!
//! ## Mounts (read-only, written by the operator)
//!
//! | path                                         | from                                   | in containers |
//! |----------------------------------------------|----------------------------------------|---------------|
//! | `/etc/bftws/layer/layer.json`                | ConfigMap `NAME-<layer>-layer`: [`LayerManifest`] | init   |
//! | `/etc/bftws/genesis/genesis.json`            | ConfigMap `NAME-<layer>-genesis` (immutable) | init    |
//! | `/etc/bftws/keys/node-key-<i>.json`          | Secret `NAME-<layer>-keys`: CometBFT `node_key.json` of ordinal `i` | init |
//! | `/etc/bftws/keys/priv-validator-key-<i>.json`| same Secret: CometBFT `priv_validator_key.json` | init |
//! | `/etc/bftws/keys/origin-key-<i>`             | same Secret: hex ed25519 seed of origin node `<layer>-<i>` | init |
//! | `/etc/bftws/commit-key/commit.key`           | Secret `NAME-l2-commit-key` (L2 pods only): hex seed | app |
//! | `/etc/bftws/tokens/tokens.json`              | the API tokens Secret (hashes only)    | app           |
//!
//! The keys Secret holds the keys of every ordinal of the layer; `init` picks its own ordinal
//! (from the `apps.kubernetes.io/pod-index` label, passed as `$BFTWS_ORDINAL`) and only the init
//! container mounts it, so the long-running containers never see another node's keys.
//!
//! ## What `init` writes (on the pod's persistent volume, [`DATA_DIR`])
//!
//! - [`COMETBFT_HOME`]: the CometBFT home ([`PodHome::files`], written with
//!   [`crate::write_home`]);
//! - [`ORIGIN_KEY_FILE`]: this node's origin key (hex seed, mode 0600);
//! - [`NODE_CONFIG_FILE`]: the `bftws-node run --config` file, built from [`PodNodeSettings`].
//!
//! Re-running `init` (every pod restart) rewrites all of them except the validator state.
//!
//! ## Containers
//!
//! - `app`: `bftws-node run --config /var/lib/bftws/node.json`, serving the ABCI socket
//!   [`ABCI_SOCKET`] and HTTP on [`HTTP_PORT`] (`/healthz` answers as soon as the process
//!   listens, before CometBFT connects; `/readyz` when ABCI is connected and CometBFT caught up).
//! - `cometbft`: `cometbft start --home /var/lib/bftws/cometbft`; p2p on [`P2P_PORT`], RPC on
//!   127.0.0.1:[`RPC_PORT`] (only the app talks to it), Prometheus on [`PROMETHEUS_PORT`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{format_go_duration, parse_go_duration, HomeError, HomeFiles, NodeConfig, NodeKey, Peer, Timing};

/// Version of the [`LayerManifest`] format; `init` refuses any other.
pub const MANIFEST_VERSION: u32 = 1;

/// CometBFT p2p port of every pod.
pub const P2P_PORT: u16 = 26656;
/// CometBFT RPC port, bound to 127.0.0.1 inside the pod.
pub const RPC_PORT: u16 = 26657;
/// CometBFT Prometheus port.
pub const PROMETHEUS_PORT: u16 = 26660;
/// The app's HTTP port (API, `/healthz`, `/readyz`, `/metrics`).
pub const HTTP_PORT: u16 = 8080;

/// Mount point of the layer manifest ConfigMap; the file is [`MANIFEST_FILE`].
pub const MANIFEST_DIR: &str = "/etc/bftws/layer";
pub const MANIFEST_FILE: &str = "/etc/bftws/layer/layer.json";
/// Key of the manifest in its ConfigMap.
pub const MANIFEST_KEY: &str = "layer.json";

pub const GENESIS_DIR: &str = "/etc/bftws/genesis";
pub const GENESIS_FILE: &str = "/etc/bftws/genesis/genesis.json";
/// Key of the genesis in its ConfigMap.
pub const GENESIS_KEY: &str = "genesis.json";

/// L2 only: mount point of L1's genesis ConfigMap, the trust anchor L1 receipts are verified
/// against.
pub const L1_GENESIS_DIR: &str = "/etc/bftws/l1-genesis";
pub const L1_GENESIS_FILE: &str = "/etc/bftws/l1-genesis/genesis.json";

/// Mount point of the layer's keys Secret (see [`node_key_file`] and friends).
pub const KEYS_DIR: &str = "/etc/bftws/keys";

pub const COMMIT_KEY_DIR: &str = "/etc/bftws/commit-key";
pub const COMMIT_KEY_FILE: &str = "/etc/bftws/commit-key/commit.key";
/// Key of the commit key seed in its Secret.
pub const COMMIT_KEY_KEY: &str = "commit.key";

pub const TOKENS_DIR: &str = "/etc/bftws/tokens";
pub const TOKENS_FILE: &str = "/etc/bftws/tokens/tokens.json";
/// Key of the token file in the tokens Secret.
pub const TOKENS_KEY: &str = "tokens.json";

/// The pod's persistent volume.
pub const DATA_DIR: &str = "/var/lib/bftws";
pub const COMETBFT_HOME: &str = "/var/lib/bftws/cometbft";
/// The app's state store.
pub const APP_DATA_DIR: &str = "/var/lib/bftws/app";
pub const ORIGIN_KEY_FILE: &str = "/var/lib/bftws/origin.key";
pub const NODE_CONFIG_FILE: &str = "/var/lib/bftws/node.json";

/// The emptyDir shared by `app` and `cometbft`.
pub const SOCKET_DIR: &str = "/run/bftws";
pub const ABCI_SOCKET: &str = "/run/bftws/abci.sock";

/// Environment variable holding the pod's StatefulSet ordinal.
pub const ORDINAL_ENV: &str = "BFTWS_ORDINAL";

/// Binaries in the node image.
pub const NODE_BINARY: &str = "/usr/local/bin/bftws-node";
pub const COMETBFT_BINARY: &str = "/usr/local/bin/cometbft";

/// The largest number of nodes of one layer (bounded by the CRD).
pub const MAX_NODES: u32 = 64;

/// Name of ordinal `i`'s CometBFT `node_key.json` in the keys Secret and mount.
pub fn node_key_file(ordinal: u32) -> String {
    format!("node-key-{ordinal}.json")
}

/// Name of ordinal `i`'s CometBFT `priv_validator_key.json` in the keys Secret and mount.
pub fn priv_validator_key_file(ordinal: u32) -> String {
    format!("priv-validator-key-{ordinal}.json")
}

/// Name of ordinal `i`'s origin key (hex ed25519 seed) in the keys Secret and mount.
pub fn origin_key_file(ordinal: u32) -> String {
    format!("origin-key-{ordinal}")
}

/// The origin id of a node: `l1-0`, `l2-3`, as listed in genesis `app_state.nodes`.
pub fn origin_id(layer: ClusterLayer, ordinal: u32) -> String {
    format!("{}-{ordinal}", layer.as_str())
}

/// Which chain a pod belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterLayer {
    L1,
    L2,
}

impl ClusterLayer {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterLayer::L1 => "l1",
            ClusterLayer::L2 => "l2",
        }
    }
}

/// One node of a layer, as every other node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestNode {
    /// StatefulSet ordinal.
    pub ordinal: u32,
    /// CometBFT node id (lowercase hex, see [`NodeKey::node_id`]).
    pub node_id: String,
    /// Stable address other nodes dial: a per-pod ClusterIP Service name on L1, the pod's
    /// headless-Service DNS name on L2.
    pub host: String,
    pub p2p_port: u16,
}

/// Per-layer consensus and gossip latencies as Go duration strings: the form the CRD takes and
/// `config.toml` uses. See [`Timing`] for each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingStrings {
    pub timeout_propose: String,
    pub timeout_propose_delta: String,
    pub timeout_prevote: String,
    pub timeout_prevote_delta: String,
    pub timeout_precommit: String,
    pub timeout_precommit_delta: String,
    pub timeout_commit: String,
    pub skip_timeout_commit: bool,
    pub peer_gossip_sleep_duration: String,
    pub peer_query_maj23_sleep_duration: String,
    pub flush_throttle_timeout: String,
}

impl From<&Timing> for TimingStrings {
    fn from(timing: &Timing) -> Self {
        let go = format_go_duration;
        Self {
            timeout_propose: go(timing.timeout_propose),
            timeout_propose_delta: go(timing.timeout_propose_delta),
            timeout_prevote: go(timing.timeout_prevote),
            timeout_prevote_delta: go(timing.timeout_prevote_delta),
            timeout_precommit: go(timing.timeout_precommit),
            timeout_precommit_delta: go(timing.timeout_precommit_delta),
            timeout_commit: go(timing.timeout_commit),
            skip_timeout_commit: timing.skip_timeout_commit,
            peer_gossip_sleep_duration: go(timing.peer_gossip_sleep_duration),
            peer_query_maj23_sleep_duration: go(timing.peer_query_maj23_sleep_duration),
            flush_throttle_timeout: go(timing.flush_throttle_timeout),
        }
    }
}

impl TimingStrings {
    pub fn to_timing(&self) -> Result<Timing, HomeError> {
        let parse = |value: &String| -> Result<Duration, HomeError> { parse_go_duration(value) };
        Ok(Timing {
            timeout_propose: parse(&self.timeout_propose)?,
            timeout_propose_delta: parse(&self.timeout_propose_delta)?,
            timeout_prevote: parse(&self.timeout_prevote)?,
            timeout_prevote_delta: parse(&self.timeout_prevote_delta)?,
            timeout_precommit: parse(&self.timeout_precommit)?,
            timeout_precommit_delta: parse(&self.timeout_precommit_delta)?,
            timeout_commit: parse(&self.timeout_commit)?,
            skip_timeout_commit: self.skip_timeout_commit,
            peer_gossip_sleep_duration: parse(&self.peer_gossip_sleep_duration)?,
            peer_query_maj23_sleep_duration: parse(&self.peer_query_maj23_sleep_duration)?,
            flush_throttle_timeout: parse(&self.flush_throttle_timeout)?,
        })
    }
}

/// Everything about one layer that is the same for all of its pods (`layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerManifest {
    /// Always [`MANIFEST_VERSION`].
    pub version: u32,
    /// The service every node of the layer runs (`spec.service.name`).
    #[serde(default = "default_service")]
    pub service: String,
    pub layer: ClusterLayer,
    pub chain_id: String,
    /// Ordinals `0..validators` are in the genesis validator set; the rest are full nodes.
    pub validators: u32,
    /// Every node of the layer that exists now, by ordinal (`0..replicas`).
    pub nodes: Vec<ManifestNode>,
    pub timing: TimingStrings,
    /// L2 only: L1 API base URLs (`http://host:8080`), tried in turn when committing; the
    /// load-balanced L1 API Service first, then each L1 pod's own Service.
    #[serde(default)]
    pub l1_api: Vec<String>,
    pub http_port: u16,
    /// Serve CometBFT's Prometheus metrics on [`PROMETHEUS_PORT`].
    pub prometheus: bool,
    /// CometBFT's `log_level`.
    pub log_level: String,
}

fn default_service() -> String {
    DEFAULT_SERVICE.to_owned()
}

/// The service of a layer manifest that names none.
pub const DEFAULT_SERVICE: &str = "supply-chain";

impl LayerManifest {
    /// Parses `layer.json`, refusing unknown versions and inconsistent content.
    pub fn from_json(json: &str) -> Result<Self, HomeError> {
        let manifest: Self = serde_json::from_str(json)
            .map_err(|err| HomeError::InvalidNetwork(format!("layer manifest is not valid: {err}")))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// `layer.json` as the operator writes it (two-space indent, fields in declaration order).
    pub fn to_json(&self) -> Result<String, HomeError> {
        self.validate()?;
        serde_json::to_string_pretty(self).map_err(|source| HomeError::Json { what: "layer manifest", source })
    }

    pub fn validate(&self) -> Result<(), HomeError> {
        let invalid = |reason: String| Err(HomeError::InvalidNetwork(format!("layer manifest: {reason}")));
        if self.version != MANIFEST_VERSION {
            return invalid(format!("version {} is not supported (expected {MANIFEST_VERSION})", self.version));
        }
        if self.chain_id.is_empty() {
            return invalid("chain_id is empty".to_owned());
        }
        if self.validators == 0 {
            return invalid("at least one validator is required".to_owned());
        }
        if self.nodes.len() > MAX_NODES as usize {
            return invalid(format!("{} nodes exceed the maximum of {MAX_NODES}", self.nodes.len()));
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if node.ordinal as usize != index {
                return invalid(format!(
                    "nodes[{index}] has ordinal {}; nodes must be listed by ordinal",
                    node.ordinal
                ));
            }
        }
        if self.nodes.len() < self.validators as usize {
            return invalid(format!("{} nodes listed for {} validators", self.nodes.len(), self.validators));
        }
        let distinct: BTreeSet<&str> = self.nodes.iter().map(|node| node.node_id.as_str()).collect();
        if distinct.len() != self.nodes.len() {
            return invalid("two nodes share a CometBFT node id".to_owned());
        }
        if self.layer == ClusterLayer::L2 && self.l1_api.is_empty() {
            return invalid("an L2 manifest needs l1_api URLs".to_owned());
        }
        self.timing.to_timing()?;
        Ok(())
    }
}

/// What the node process of one pod needs: `bftws-node init` copies these 1:1 into its
/// `node.json` (the node crate's `NodeConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNodeSettings {
    /// Origin id, e.g. `l1-0` (genesis `app_state.nodes[].id`).
    pub origin_id: String,
    pub layer: ClusterLayer,
    pub chain_id: String,
    /// [`APP_DATA_DIR`].
    pub data_dir: String,
    /// [`ABCI_SOCKET`].
    pub abci_socket: String,
    /// `http://127.0.0.1:26657`.
    pub cometbft_rpc: String,
    /// `0.0.0.0:<http_port>`.
    pub http_listen: String,
    /// [`ORIGIN_KEY_FILE`]: where `init` writes [`PodKeyFiles::origin_key_hex`].
    pub origin_key_file: String,
    /// [`TOKENS_FILE`].
    pub tokens_file: String,
    /// L2 only: [`COMMIT_KEY_FILE`], the L1 API URLs and [`L1_GENESIS_FILE`].
    pub l2: Option<PodL2Settings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodL2Settings {
    pub commit_key_file: String,
    pub l1_api: Vec<String>,
    /// [`L1_GENESIS_FILE`].
    pub l1_genesis_file: String,
}

/// The contents of this pod's files in the keys mount.
#[derive(Clone, Copy)]
pub struct PodKeyFiles<'a> {
    /// `node-key-<i>.json`.
    pub node_key_json: &'a str,
    /// `priv-validator-key-<i>.json`.
    pub priv_validator_key_json: &'a str,
    /// `origin-key-<i>` (hex seed).
    pub origin_key_hex: &'a str,
}

/// What `init` writes for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHome {
    /// The CometBFT home, for [`crate::write_home`] at [`COMETBFT_HOME`].
    pub files: HomeFiles,
    /// The config it was rendered from.
    pub config: NodeConfig,
    pub node: PodNodeSettings,
}

/// Builds everything one pod needs from the mounted manifest, keys and genesis.
///
/// Checks that the node key belongs to this ordinal (its id is the one every peer expects) and
/// that the genesis is this layer's chain, so a mis-mounted Secret fails here with a clear error
/// instead of at p2p handshake or block one.
pub fn pod_home(
    manifest: &LayerManifest,
    ordinal: u32,
    keys: PodKeyFiles<'_>,
    genesis_json: &str,
) -> Result<PodHome, HomeError> {
    manifest.validate()?;
    let me = manifest.nodes.get(ordinal as usize).ok_or_else(|| {
        HomeError::InvalidNetwork(format!(
            "ordinal {ordinal} is not in the {} manifest ({} nodes)",
            manifest.layer.as_str(),
            manifest.nodes.len()
        ))
    })?;
    let node_key = NodeKey::from_node_key_json(keys.node_key_json)?;
    if node_key.node_id() != me.node_id {
        return Err(HomeError::InvalidKey {
            what: "node key",
            reason: format!(
                "node key of ordinal {ordinal} has id {}, the manifest expects {}",
                node_key.node_id(),
                me.node_id
            ),
        });
    }
    let validator_key = crate::ValidatorKey::from_priv_validator_key_json(keys.priv_validator_key_json)?;
    // The origin key must parse; the node process reads it back from ORIGIN_KEY_FILE.
    crate::ValidatorKey::from_seed_hex(keys.origin_key_hex)
        .map_err(|err| HomeError::InvalidSeed { key: "origin key", reason: err.to_string() })?;
    let genesis_chain = serde_json::from_str::<serde_json::Value>(genesis_json)
        .ok()
        .and_then(|genesis| genesis.get("chain_id").and_then(|id| id.as_str()).map(str::to_owned));
    if genesis_chain.as_deref() != Some(manifest.chain_id.as_str()) {
        return Err(HomeError::InvalidGenesis(format!(
            "mounted genesis is for chain {genesis_chain:?}, the manifest is for {:?}",
            manifest.chain_id
        )));
    }

    let moniker = origin_id(manifest.layer, ordinal);
    let mut config = NodeConfig::new(moniker.clone(), format!("unix://{ABCI_SOCKET}"), manifest.timing.to_timing()?);
    config.p2p_laddr = format!("tcp://0.0.0.0:{P2P_PORT}");
    config.external_address = Some(format!("{}:{}", me.host, me.p2p_port));
    config.rpc_laddr = format!("tcp://127.0.0.1:{RPC_PORT}");
    config.prometheus = manifest.prometheus;
    config.prometheus_laddr = format!(":{PROMETHEUS_PORT}");
    config.log_level = manifest.log_level.clone();
    config.persistent_peers = manifest
        .nodes
        .iter()
        .filter(|node| node.ordinal != ordinal)
        .map(|node| Peer { node_id: node.node_id.clone(), host: node.host.clone(), port: node.p2p_port })
        .collect();
    let files = HomeFiles::new(&config, genesis_json, &node_key, &validator_key)?;

    let node = PodNodeSettings {
        origin_id: moniker,
        layer: manifest.layer,
        chain_id: manifest.chain_id.clone(),
        data_dir: APP_DATA_DIR.to_owned(),
        abci_socket: ABCI_SOCKET.to_owned(),
        cometbft_rpc: format!("http://127.0.0.1:{RPC_PORT}"),
        http_listen: format!("0.0.0.0:{}", manifest.http_port),
        origin_key_file: ORIGIN_KEY_FILE.to_owned(),
        tokens_file: TOKENS_FILE.to_owned(),
        l2: match manifest.layer {
            ClusterLayer::L1 => None,
            ClusterLayer::L2 => Some(PodL2Settings {
                commit_key_file: COMMIT_KEY_FILE.to_owned(),
                l1_api: manifest.l1_api.clone(),
                l1_genesis_file: L1_GENESIS_FILE.to_owned(),
            }),
        },
    };
    Ok(PodHome { files, config, node })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenesisSpec, GenesisValidator, NodeKeys, ValidatorKey};

    fn keys(layer: ClusterLayer, ordinal: u32) -> NodeKeys {
        NodeKeys::insecure_from_label(&format!("cluster-test/{}/{ordinal}", layer.as_str()))
    }

    fn manifest(layer: ClusterLayer, replicas: u32, validators: u32) -> LayerManifest {
        LayerManifest {
            service: DEFAULT_SERVICE.to_owned(),
            version: MANIFEST_VERSION,
            layer,
            chain_id: format!("shop-demo-ws-{}", layer.as_str()),
            validators,
            nodes: (0..replicas)
                .map(|ordinal| ManifestNode {
                    ordinal,
                    node_id: keys(layer, ordinal).node.node_id(),
                    host: format!("demo-ws-{}-{ordinal}.shop.svc", layer.as_str()),
                    p2p_port: P2P_PORT,
                })
                .collect(),
            timing: TimingStrings::from(&Timing::l1()),
            l1_api: match layer {
                ClusterLayer::L1 => vec![],
                ClusterLayer::L2 => vec!["http://demo-ws-l1-api.shop.svc:8080".to_owned()],
            },
            http_port: HTTP_PORT,
            prometheus: true,
            log_level: "info".to_owned(),
        }
    }

    fn genesis(manifest: &LayerManifest) -> String {
        let validators = (0..manifest.validators)
            .map(|ordinal| GenesisValidator {
                name: origin_id(manifest.layer, ordinal),
                pub_key: keys(manifest.layer, ordinal).validator.public_key(),
                power: 10,
            })
            .collect();
        GenesisSpec::new(manifest.chain_id.clone(), "2026-01-01T00:00:00Z", validators, serde_json::json!({}))
            .to_json()
            .unwrap()
    }

    fn home(manifest: &LayerManifest, ordinal: u32) -> Result<PodHome, HomeError> {
        let keys = keys(manifest.layer, ordinal);
        let origin = ValidatorKey::from_seed([ordinal as u8 + 1; 32]).seed_hex();
        pod_home(
            manifest,
            ordinal,
            PodKeyFiles {
                node_key_json: &keys.node.node_key_json(),
                priv_validator_key_json: &keys.validator.priv_validator_key_json(),
                origin_key_hex: &origin,
            },
            &genesis(manifest),
        )
    }

    #[test]
    fn pod_peers_with_every_other_node_and_advertises_its_stable_address() {
        let manifest = manifest(ClusterLayer::L1, 4, 4);
        let pod = home(&manifest, 2).unwrap();
        let peers: Vec<u32> = pod
            .config
            .persistent_peers
            .iter()
            .map(|peer| manifest.nodes.iter().find(|node| node.node_id == peer.node_id).unwrap().ordinal)
            .collect();
        assert_eq!(peers, [0, 1, 3]);
        assert_eq!(pod.config.external_address.as_deref(), Some("demo-ws-l1-2.shop.svc:26656"));
        assert_eq!(pod.config.proxy_app, "unix:///run/bftws/abci.sock");
        assert_eq!(pod.config.rpc_laddr, "tcp://127.0.0.1:26657");
        assert_eq!(pod.config.moniker, "l1-2");
        assert!(pod.files.config_toml.contains("pex = false"));
        assert_eq!(pod.node.origin_id, "l1-2");
        assert_eq!(pod.node.http_listen, "0.0.0.0:8080");
        assert_eq!(pod.node.l2, None);
    }

    #[test]
    fn l2_pods_get_the_commit_key_and_l1_urls() {
        let manifest = manifest(ClusterLayer::L2, 2, 1);
        let pod = home(&manifest, 1).unwrap();
        let l2 = pod.node.l2.unwrap();
        assert_eq!(l2.commit_key_file, COMMIT_KEY_FILE);
        assert_eq!(l2.l1_api, manifest.l1_api);
        assert_eq!(pod.node.origin_id, "l2-1");
    }

    #[test]
    fn a_key_of_another_ordinal_is_refused() {
        let manifest = manifest(ClusterLayer::L1, 4, 4);
        let other = keys(ClusterLayer::L1, 3);
        let err = pod_home(
            &manifest,
            0,
            PodKeyFiles {
                node_key_json: &other.node.node_key_json(),
                priv_validator_key_json: &other.validator.priv_validator_key_json(),
                origin_key_hex: &"11".repeat(32),
            },
            &genesis(&manifest),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ordinal 0"), "{err}");
    }

    #[test]
    fn a_genesis_of_another_chain_or_an_unknown_ordinal_is_refused() {
        let l1 = manifest(ClusterLayer::L1, 4, 4);
        let mut other = l1.clone();
        other.chain_id = "other".to_owned();
        let keys0 = keys(ClusterLayer::L1, 0);
        let files = PodKeyFiles {
            node_key_json: &keys0.node.node_key_json(),
            priv_validator_key_json: &keys0.validator.priv_validator_key_json(),
            origin_key_hex: &"11".repeat(32),
        };
        assert!(matches!(pod_home(&l1, 0, files, &genesis(&other)), Err(HomeError::InvalidGenesis(_))));
        assert!(pod_home(&l1, 4, files, &genesis(&l1)).is_err());
    }

    #[test]
    fn manifest_round_trips_and_rejects_bad_content() {
        let manifest = manifest(ClusterLayer::L2, 3, 1);
        let json = manifest.to_json().unwrap();
        assert_eq!(LayerManifest::from_json(&json).unwrap(), manifest);

        let mut unordered = manifest.clone();
        unordered.nodes.swap(0, 1);
        assert!(unordered.validate().is_err());
        let mut no_l1 = manifest.clone();
        no_l1.l1_api.clear();
        assert!(no_l1.validate().is_err());
        let mut bad_timing = manifest.clone();
        bad_timing.timing.timeout_commit = "soon".to_owned();
        assert!(bad_timing.validate().is_err());
        let mut future = manifest;
        future.version = 2;
        assert!(LayerManifest::from_json(&serde_json::to_string(&future).unwrap()).is_err());
    }

    #[test]
    fn timing_strings_round_trip() {
        for timing in [Timing::l1(), Timing::l2()] {
            assert_eq!(TimingStrings::from(&timing).to_timing().unwrap(), timing);
        }
        assert_eq!(TimingStrings::from(&Timing::l1()).timeout_commit, "20ms");
    }

    #[test]
    fn key_file_names_are_stable() {
        assert_eq!(node_key_file(3), "node-key-3.json");
        assert_eq!(priv_validator_key_file(3), "priv-validator-key-3.json");
        assert_eq!(origin_key_file(3), "origin-key-3");
        assert_eq!(origin_id(ClusterLayer::L2, 0), "l2-0");
    }
}
