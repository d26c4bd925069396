//! `bftws-node init`: the init step of a Kubernetes pod. It reads what the operator mounted
//! (layer manifest, genesis, this ordinal's keys; see `bftws_home::cluster` for the contract),
//! writes the CometBFT home (never overwriting `priv_validator_state.json`), the origin key and
//! the node process config, and exits.

use std::path::{Path, PathBuf};

use bftws_home::cluster::{self, ClusterLayer, LayerManifest, PodKeyFiles};

use bftws_framework::{
    config::{L2Settings, NodeConfig},
    registry::Layer,
};

/// Where `init` reads and writes; the defaults are the pod contract's paths.
#[derive(Debug, Clone)]
pub struct InitPaths {
    pub manifest: PathBuf,
    pub genesis: PathBuf,
    pub keys_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Default for InitPaths {
    fn default() -> Self {
        Self {
            manifest: cluster::MANIFEST_FILE.into(),
            genesis: cluster::GENESIS_FILE.into(),
            keys_dir: cluster::KEYS_DIR.into(),
            data_dir: cluster::DATA_DIR.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("init: cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("init: cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("init: {0}")]
    Contract(#[from] bftws_home::HomeError),
    #[error("init: {0}")]
    Invalid(String),
}

fn read(path: &Path) -> Result<String, InitError> {
    std::fs::read_to_string(path).map_err(|source| InitError::Read { path: path.display().to_string(), source })
}

/// Maps a contract path under the pod's data directory onto `data_dir` (so tests can use a
/// temporary directory while pods use the contract's absolute paths).
fn under(data_dir: &Path, contract_path: &str) -> PathBuf {
    match Path::new(contract_path).strip_prefix(cluster::DATA_DIR) {
        Ok(relative) => data_dir.join(relative),
        Err(_) => PathBuf::from(contract_path),
    }
}

/// Writes this ordinal's home, origin key and node config; returns the node config path.
pub fn run(paths: &InitPaths, ordinal: u32) -> Result<PathBuf, InitError> {
    let manifest = LayerManifest::from_json(&read(&paths.manifest)?)?;
    let genesis = read(&paths.genesis)?;
    let key_file = |name: String| {
        let file = Path::new(&name).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(&name));
        read(&paths.keys_dir.join(file))
    };
    let node_key_json = key_file(cluster::node_key_file(ordinal))?;
    let priv_validator_key_json = key_file(cluster::priv_validator_key_file(ordinal))?;
    let origin_key_hex = key_file(cluster::origin_key_file(ordinal))?;
    let keys = PodKeyFiles {
        node_key_json: &node_key_json,
        priv_validator_key_json: &priv_validator_key_json,
        origin_key_hex: origin_key_hex.trim(),
    };
    let pod = cluster::pod_home(&manifest, ordinal, keys, &genesis)?;

    bftws_home::write_home(&under(&paths.data_dir, cluster::COMETBFT_HOME), &pod.files)?;
    let origin_key = under(&paths.data_dir, &pod.node.origin_key_file);
    write_secret(&origin_key, origin_key_hex.trim().as_bytes())?;
    let settings = &pod.node;
    let config = NodeConfig {
        service: manifest.service.clone(),
        node_id: settings.origin_id.clone(),
        layer: match settings.layer {
            ClusterLayer::L1 => Layer::L1,
            ClusterLayer::L2 => Layer::L2,
        },
        chain_id: settings.chain_id.clone(),
        data_dir: under(&paths.data_dir, &settings.data_dir),
        abci_socket: settings.abci_socket.clone().into(),
        cometbft_rpc: settings.cometbft_rpc.clone(),
        http_listen: settings
            .http_listen
            .parse()
            .map_err(|_| InitError::Invalid(format!("bad listen address {:?}", settings.http_listen)))?,
        node_key_file: origin_key,
        tokens_file: settings.tokens_file.clone().into(),
        write_timeout_ms: 10_000,
        l2: settings.l2.as_ref().map(|l2| L2Settings {
            commit_key_file: l2.commit_key_file.clone().into(),
            l1_api: l2.l1_api.clone(),
            l1_genesis_file: Some(l2.l1_genesis_file.clone().into()),
            commit_timeout_ms: 10_000,
        }),
        fault: None,
    };
    let config_path = under(&paths.data_dir, cluster::NODE_CONFIG_FILE);
    let json = serde_json::to_vec_pretty(&config).map_err(|e| InitError::Invalid(e.to_string()))?;
    std::fs::write(&config_path, json)
        .map_err(|source| InitError::Write { path: config_path.display().to_string(), source })?;
    Ok(config_path)
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), InitError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let wrap = |source| InitError::Write { path: path.display().to_string(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(wrap)?;
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(wrap)?;
    file.write_all(bytes).map_err(wrap)
}

#[cfg(test)]
mod tests {
    use bftws_home::{
        cluster::{ManifestNode, TimingStrings, MANIFEST_VERSION, P2P_PORT},
        GenesisSpec, GenesisValidator, NodeKeys, Timing,
    };

    use super::*;

    fn keys(ordinal: u32) -> NodeKeys {
        NodeKeys::insecure_from_label(&format!("init-test/{ordinal}"))
    }

    /// Lays out the mounts of a 2-node L2 layer like the operator does.
    fn mounts(root: &Path) -> InitPaths {
        let manifest = LayerManifest {
            service: bftws_home::cluster::DEFAULT_SERVICE.to_owned(),
            version: MANIFEST_VERSION,
            layer: ClusterLayer::L2,
            chain_id: "shop-demo-ws-l2".into(),
            validators: 1,
            nodes: (0..2)
                .map(|ordinal| ManifestNode {
                    ordinal,
                    node_id: keys(ordinal).node.node_id(),
                    host: format!("demo-ws-l2-{ordinal}.demo-ws-l2-headless.shop.svc"),
                    p2p_port: P2P_PORT,
                })
                .collect(),
            timing: TimingStrings::from(&Timing::l2()),
            l1_api: vec!["http://demo-ws-l1-api.shop.svc:8080".into()],
            http_port: 8080,
            prometheus: true,
            log_level: "info".into(),
        };
        let genesis = GenesisSpec::new(
            "shop-demo-ws-l2",
            "2026-01-01T00:00:00Z",
            vec![GenesisValidator { name: "l2-0".into(), pub_key: keys(0).validator.public_key(), power: 10 }],
            serde_json::json!({}),
        )
        .to_json()
        .unwrap();
        let keys_dir = root.join("keys");
        std::fs::create_dir_all(&keys_dir).unwrap();
        for ordinal in 0..2 {
            let k = keys(ordinal);
            std::fs::write(keys_dir.join(format!("node-key-{ordinal}.json")), k.node.node_key_json()).unwrap();
            std::fs::write(
                keys_dir.join(format!("priv-validator-key-{ordinal}.json")),
                k.validator.priv_validator_key_json(),
            )
            .unwrap();
            std::fs::write(keys_dir.join(format!("origin-key-{ordinal}")), format!("{:064x}\n", ordinal + 1)).unwrap();
        }
        std::fs::write(root.join("layer.json"), manifest.to_json().unwrap()).unwrap();
        std::fs::write(root.join("genesis.json"), genesis).unwrap();
        InitPaths {
            manifest: root.join("layer.json"),
            genesis: root.join("genesis.json"),
            keys_dir,
            data_dir: root.join("data"),
        }
    }

    #[test]
    fn init_writes_a_runnable_node_config_and_never_resets_the_validator_state() {
        let root = tempfile::tempdir().unwrap();
        let paths = mounts(root.path());
        let config_path = run(&paths, 1).unwrap();
        let config = NodeConfig::load(&config_path).unwrap();
        assert_eq!(config.node_id, "l2-1");
        assert_eq!(config.layer, Layer::L2);
        assert_eq!(config.l2.as_ref().unwrap().l1_api, vec!["http://demo-ws-l1-api.shop.svc:8080".to_owned()]);
        bftws_framework::config::read_key(&config.node_key_file).unwrap();
        let toml = std::fs::read_to_string(paths.data_dir.join("cometbft/config/config.toml")).unwrap();
        assert!(toml.contains(&keys(0).node.node_id()), "peers name ordinal 0");
        assert!(!toml.contains(&format!("{}@", keys(1).node.node_id())), "a node does not peer with itself");

        // A signed height survives a re-run of init (pod restart).
        let state = paths.data_dir.join("cometbft/data/priv_validator_state.json");
        std::fs::write(&state, r#"{"height":"42","round":0,"step":3}"#).unwrap();
        run(&paths, 1).unwrap();
        assert!(std::fs::read_to_string(&state).unwrap().contains("\"42\""));
    }

    #[test]
    fn a_key_mounted_for_the_wrong_ordinal_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let paths = mounts(root.path());
        std::fs::copy(paths.keys_dir.join("node-key-0.json"), paths.keys_dir.join("node-key-1.json")).unwrap();
        let err = run(&paths, 1).unwrap_err().to_string();
        assert!(err.contains("node key"), "{err}");
        assert!(run(&paths, 7).is_err(), "an ordinal outside the manifest");
    }
}
