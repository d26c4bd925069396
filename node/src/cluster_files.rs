//! `bftws-node cluster-files`: the files the operator mounts into the pods of one L1 + L2
//! deployment, written to a directory, so the node image runs outside Kubernetes through the
//! same `bftws-node init` as a pod (the container smoke test, `scripts/image-smoke.sh`).
//!
//! Node `<layer>-<i>` (`l1-0`, `l2-0`, …) is reached at the host name `<layer>-<i>`: p2p on
//! [`cluster::P2P_PORT`], the API on [`cluster::HTTP_PORT`]. CometBFT node and validator keys are
//! fresh; origin keys, the L2 commit key, the reference data and the API tokens are the DEMO ones
//! of [`demo`], as in the devnet: for trying and testing only.
//!
//! Layout under the output directory, one folder per mount (the mount point in brackets):
//!
//! - `l1/layer/layer.json` (`/etc/bftws/layer`), `l1/genesis/genesis.json`
//!   (`/etc/bftws/genesis`), `l1/keys/` (`/etc/bftws/keys`, the init step only), and the same
//!   under `l2/`;
//! - `tokens/tokens.json` (`/etc/bftws/tokens`);
//! - `commit-key/commit.key` (`/etc/bftws/commit-key`, L2 only);
//! - L2 pods also mount `l1/genesis/` at `/etc/bftws/l1-genesis` (the trust anchor of receipts).

use std::{fs, path::Path};

use bftws_home::{
    cluster::{self, ClusterLayer, LayerManifest, ManifestNode, TimingStrings},
    GenesisSpec, GenesisValidator, HomeError, NodeKeys, Timing,
};

use crate::devnet::{L1_CHAIN_ID, L2_CHAIN_ID};

use bftws_supply_chain::demo;

const GENESIS_TIME: &str = "2026-01-01T00:00:00Z";
/// Equal voting power: quorum is a count, as with the operator.
const VALIDATOR_POWER: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum ClusterFilesError {
    #[error("cluster-files: {0}")]
    Invalid(String),
    #[error("cluster-files: cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cluster-files: {0}")]
    Home(#[from] HomeError),
}

/// The shape of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    pub l1_validators: u32,
    pub l2_validators: u32,
    pub l2_full_nodes: u32,
}

/// The host name of a node (also its origin id).
pub fn host(layer: ClusterLayer, ordinal: u32) -> String {
    cluster::origin_id(layer, ordinal)
}

/// Writes every mount of the deployment under `dir` (created if missing; files are replaced).
pub fn write(shape: ClusterShape, dir: &Path) -> Result<(), ClusterFilesError> {
    if shape.l1_validators == 0 || shape.l2_validators == 0 {
        return Err(ClusterFilesError::Invalid("each layer needs at least one validator".into()));
    }
    let l1_api: Vec<String> = (0..shape.l1_validators)
        .map(|ordinal| format!("http://{}:{}", host(ClusterLayer::L1, ordinal), cluster::HTTP_PORT))
        .collect();
    for (layer, validators, replicas, timing) in [
        (ClusterLayer::L1, shape.l1_validators, shape.l1_validators, Timing::l1_for(shape.l1_validators)),
        (ClusterLayer::L2, shape.l2_validators, shape.l2_validators + shape.l2_full_nodes, Timing::l2()),
    ] {
        let (chain_id, l2_chain) = match layer {
            ClusterLayer::L1 => (L1_CHAIN_ID, Some(L2_CHAIN_ID)),
            ClusterLayer::L2 => (L2_CHAIN_ID, None),
        };
        let keys = (0..replicas).map(|_| NodeKeys::generate()).collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<String> = (0..replicas).map(|ordinal| cluster::origin_id(layer, ordinal)).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let genesis = GenesisSpec::new(
            chain_id,
            GENESIS_TIME,
            (0..validators as usize)
                .map(|i| GenesisValidator {
                    name: ids[i].clone(),
                    pub_key: keys[i].validator.public_key(),
                    power: VALIDATOR_POWER,
                })
                .collect(),
            demo::app_state(&id_refs, l2_chain),
        )
        .to_json()?;
        let manifest = LayerManifest {
            service: bftws_home::cluster::DEFAULT_SERVICE.to_owned(),
            version: cluster::MANIFEST_VERSION,
            layer,
            chain_id: chain_id.to_owned(),
            validators,
            nodes: (0..replicas)
                .map(|ordinal| ManifestNode {
                    ordinal,
                    node_id: keys[ordinal as usize].node.node_id(),
                    host: host(layer, ordinal),
                    p2p_port: cluster::P2P_PORT,
                })
                .collect(),
            timing: TimingStrings::from(&timing),
            l1_api: if layer == ClusterLayer::L2 { l1_api.clone() } else { Vec::new() },
            http_port: cluster::HTTP_PORT,
            prometheus: true,
            log_level: "info".to_owned(),
        };

        let layer_dir = dir.join(layer.as_str());
        write_file(&layer_dir.join("layer").join(cluster::MANIFEST_KEY), manifest.to_json()?.as_bytes())?;
        write_file(&layer_dir.join("genesis").join(cluster::GENESIS_KEY), genesis.as_bytes())?;
        let keys_dir = layer_dir.join("keys");
        for (ordinal, (node, id)) in (0..).zip(keys.iter().zip(&ids)) {
            write_file(&keys_dir.join(cluster::node_key_file(ordinal)), node.node.node_key_json().as_bytes())?;
            let validator_key = node.validator.priv_validator_key_json();
            write_file(&keys_dir.join(cluster::priv_validator_key_file(ordinal)), validator_key.as_bytes())?;
            write_file(&keys_dir.join(cluster::origin_key_file(ordinal)), demo::node_key(id).seed_hex().as_bytes())?;
        }
    }
    let tokens = serde_json::to_vec_pretty(&demo::token_file()).expect("the token file serializes");
    write_file(&dir.join("tokens").join(cluster::TOKENS_KEY), &tokens)?;
    write_file(&dir.join("commit-key").join(cluster::COMMIT_KEY_KEY), demo::commit_key().seed_hex().as_bytes())?;
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ClusterFilesError> {
    let wrap = |source| ClusterFilesError::Write { path: path.display().to_string(), source };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(wrap)?;
    }
    fs::write(path, bytes).map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_init::{self, InitPaths};
    use bftws_framework::{config::NodeConfig, registry::Layer};

    fn init(root: &Path, layer: ClusterLayer, ordinal: u32) -> NodeConfig {
        let mounts = root.join("mounts").join(layer.as_str());
        let paths = InitPaths {
            manifest: mounts.join("layer/layer.json"),
            genesis: mounts.join("genesis/genesis.json"),
            keys_dir: mounts.join("keys"),
            data_dir: root.join("data").join(host(layer, ordinal)),
        };
        NodeConfig::load(&pod_init::run(&paths, ordinal).unwrap()).unwrap()
    }

    /// The files pass the same `init` as in a pod, for every node of both layers.
    #[test]
    fn every_node_of_both_layers_initialises_from_the_written_mounts() {
        let root = tempfile::tempdir().unwrap();
        let shape = ClusterShape { l1_validators: 4, l2_validators: 1, l2_full_nodes: 1 };
        write(shape, &root.path().join("mounts")).unwrap();
        for ordinal in 0..4 {
            let config = init(root.path(), ClusterLayer::L1, ordinal);
            assert_eq!((config.layer, config.node_id.as_str()), (Layer::L1, format!("l1-{ordinal}").as_str()));
            assert_eq!(config.chain_id, L1_CHAIN_ID);
        }
        let full_node = init(root.path(), ClusterLayer::L2, 1);
        let l2 = full_node.l2.unwrap();
        assert_eq!(l2.l1_api, ["http://l1-0:8080", "http://l1-1:8080", "http://l1-2:8080", "http://l1-3:8080"]);

        let toml = fs::read_to_string(root.path().join("data/l1-2/cometbft/config/config.toml")).unwrap();
        assert!(toml.contains("@l1-0:26656"), "L1 peers are dialled by host name:\n{toml}");
        let genesis = fs::read_to_string(root.path().join("mounts/l2/genesis/genesis.json")).unwrap();
        let genesis: serde_json::Value = serde_json::from_str(&genesis).unwrap();
        assert_eq!(genesis["validators"].as_array().unwrap().len(), 1, "the L2 full node does not vote");
        assert!(root.path().join("mounts/tokens/tokens.json").exists());
        assert!(root.path().join("mounts/commit-key/commit.key").exists());
    }

    #[test]
    fn a_layer_without_validators_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let shape = ClusterShape { l1_validators: 0, l2_validators: 1, l2_full_nodes: 0 };
        assert!(matches!(write(shape, root.path()), Err(ClusterFilesError::Invalid(_))));
    }
}
