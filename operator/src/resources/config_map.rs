//! ConfigMaps: each layer's genesis (immutable, created once) and layer manifest (`layer.json`,
//! the pod contract of [`bftws_home::cluster`]).

use std::collections::BTreeMap;

use bftws_home::cluster::{
    self, ClusterLayer, LayerManifest, ManifestNode, TimingStrings, HTTP_PORT, MANIFEST_VERSION, P2P_PORT,
};
use bftws_home::{GenesisSpec, GenesisValidator};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{labels, owned_meta, retained_meta, BuildError};
use crate::reconcile::keys::{origin_ordinals, KeyMaterial};
use crate::reconcile::validate::ValidatedBftws;

/// Voting power of every validator (equal power: quorum is a count).
pub const VALIDATOR_POWER: i64 = 10;
/// Origin id of the L2 commit key in L1's genesis `app_state.committers`.
pub const COMMITTER_ID: &str = "l2-commit";
/// CometBFT's log level in every pod.
const COMETBFT_LOG_LEVEL: &str = "info";

fn missing_key(layer: ClusterLayer, what: &'static str, ordinal: u32) -> BuildError {
    BuildError::Home {
        layer: layer.as_str(),
        what,
        source: bftws_home::HomeError::InvalidNetwork(format!("no key for ordinal {ordinal}")),
    }
}

/// The genesis `app_state` of a layer (see the node's `AppState`): its origin nodes, L2's
/// commit key on L1, and the service's reference data.
pub fn app_state(v: &ValidatedBftws, layer: ClusterLayer, keys: &KeyMaterial) -> Result<Value, BuildError> {
    let nodes = origin_records(v, layer, keys)?;
    let committers = match layer {
        // The commit key bundles ops of L2's origin nodes only: every L2 ordinal's origin key.
        ClusterLayer::L1 => vec![json!({
            "id": COMMITTER_ID,
            "public_key": keys.commit.public_hex(),
            "l2_chain_id": v.layers.l2.chain_id,
            "origins": origin_records(v, ClusterLayer::L2, keys)?,
        })],
        ClusterLayer::L2 => vec![],
    };
    let service = v.reference_data.clone().unwrap_or_else(crate::reconcile::validate::empty_reference_data);
    Ok(json!({"nodes": nodes, "committers": committers, "service": service}))
}

/// The origin nodes of a layer as genesis lists them: `{id, public_key}` per ordinal.
fn origin_records(v: &ValidatedBftws, layer: ClusterLayer, keys: &KeyMaterial) -> Result<Vec<Value>, BuildError> {
    let layer_keys = keys.layers.get(layer);
    origin_ordinals(layer, v.layers.get(layer).replicas)
        .map(|ordinal| {
            let key = layer_keys.origin.get(&ordinal).ok_or_else(|| missing_key(layer, "origin key", ordinal))?;
            Ok(json!({"id": cluster::origin_id(layer, ordinal), "public_key": key.public_hex()}))
        })
        .collect()
}

/// `genesis.json` of a layer, rendered by `bftws-home`.
pub fn genesis_json(v: &ValidatedBftws, layer: ClusterLayer, keys: &KeyMaterial) -> Result<String, BuildError> {
    let plan = v.layers.get(layer);
    let layer_keys = keys.layers.get(layer);
    let validators = (0..plan.validators)
        .map(|ordinal| {
            let node = layer_keys.nodes.get(&ordinal).ok_or_else(|| missing_key(layer, "validator key", ordinal))?;
            Ok(GenesisValidator {
                name: cluster::origin_id(layer, ordinal),
                pub_key: node.validator.public_key(),
                power: VALIDATOR_POWER,
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    GenesisSpec::new(plan.chain_id.clone(), v.genesis_time.clone(), validators, app_state(v, layer, keys)?)
        .to_json()
        .map_err(|source| BuildError::Home { layer: layer.as_str(), what: "genesis", source })
}

/// `NAME-l1-genesis` / `NAME-l2-genesis`: immutable, created once; its hash goes to status.
pub fn build_genesis(v: &ValidatedBftws, layer: ClusterLayer, keys: &KeyMaterial) -> Result<ConfigMap, BuildError> {
    Ok(ConfigMap {
        metadata: retained_meta(v, v.names.genesis_config_map(layer), labels::layer(&v.names.name, layer)),
        immutable: Some(true),
        data: Some(BTreeMap::from([(cluster::GENESIS_KEY.to_owned(), genesis_json(v, layer, keys)?)])),
        ..ConfigMap::default()
    })
}

/// What every pod of a layer reads at init: chain, peers (one per existing ordinal), timing.
pub fn layer_manifest(
    v: &ValidatedBftws,
    layer: ClusterLayer,
    keys: &KeyMaterial,
) -> Result<LayerManifest, BuildError> {
    let plan = v.layers.get(layer);
    let layer_keys = keys.layers.get(layer);
    let nodes = (0..plan.replicas)
        .map(|ordinal| {
            let node = layer_keys.nodes.get(&ordinal).ok_or_else(|| missing_key(layer, "node key", ordinal))?;
            Ok(ManifestNode {
                ordinal,
                node_id: node.node.node_id(),
                host: v.names.p2p_host(layer, ordinal),
                p2p_port: P2P_PORT,
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    Ok(LayerManifest {
        service: v.service.clone(),
        version: MANIFEST_VERSION,
        layer,
        chain_id: plan.chain_id.clone(),
        validators: plan.validators,
        nodes,
        timing: TimingStrings::from(&plan.timing),
        l1_api: match layer {
            ClusterLayer::L1 => Vec::new(),
            ClusterLayer::L2 => v.names.l1_api_urls(v.layers.l1.replicas),
        },
        http_port: HTTP_PORT,
        prometheus: true,
        log_level: COMETBFT_LOG_LEVEL.to_owned(),
    })
}

/// `NAME-l1-layer` / `NAME-l2-layer`, holding `layer.json`.
pub fn build_layer_config_map(v: &ValidatedBftws, manifest: &LayerManifest) -> Result<ConfigMap, BuildError> {
    let layer = manifest.layer;
    let json = manifest.to_json().map_err(|source| BuildError::Home {
        layer: layer.as_str(),
        what: "layer manifest",
        source,
    })?;
    Ok(ConfigMap {
        metadata: owned_meta(v, v.names.layer_config_map(layer), labels::layer(&v.names.name, layer)),
        data: Some(BTreeMap::from([(cluster::MANIFEST_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    })
}

/// Hash of what a running pod cannot pick up without a restart: the manifest minus its node
/// list. Put on the pod template, so a timing change rolls the pods, but scaling L2 (which only
/// adds nodes; new pods dial the existing ones) does not restart anything.
pub fn restart_hash(manifest: &LayerManifest) -> Result<String, BuildError> {
    let mut stable = manifest.clone();
    stable.nodes.clear();
    let json = serde_json::to_string(&stable).map_err(|source| BuildError::Home {
        layer: manifest.layer.as_str(),
        what: "layer manifest",
        source: bftws_home::HomeError::Json { what: "layer manifest", source },
    })?;
    Ok(hex::encode(&Sha256::digest(json.as_bytes())[..8]))
}
