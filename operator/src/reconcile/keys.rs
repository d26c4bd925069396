//! Step 3 (client required): make sure every key exists, creating what is missing. The only
//! place with randomness.
//!
//! Keys are created once and never overwritten or deleted:
//! - a missing Secret is created (`POST`; `AlreadyExists` means another writer won and its keys
//!   are read back, never replaced);
//! - when L2 scales past the ordinals that have CometBFT keys, only the new ordinals' entries are
//!   added, with a merge patch that carries the observed `resourceVersion`, so it fails instead
//!   of overwriting if the Secret changed in between;
//! - keys that genesis already names (validators, origin nodes, the commit key) are never
//!   regenerated: if they went missing the deployment is `Degraded` until they are restored.
//!
//! L2 origin keys exist for every ordinal up to [`MAX_NODES`] from the start, because genesis
//! lists them; CometBFT node and validator keys of L2 full nodes are made when an ordinal first
//! needs them.

use std::collections::BTreeMap;

use bftws_home::cluster::{self, ClusterLayer, MAX_NODES};
use bftws_home::{HomeError, NodeKey, NodeKeys, ValidatorKey};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::reconcile::observe::Observed;
use crate::reconcile::validate::{Invalid, ValidatedBftws};
use crate::reconcile::Happening;
use crate::resources::secret;
use crate::{PerLayer, FIELD_MANAGER};

/// An ed25519 key kept as its hex seed: origin node keys and the L2 commit key.
#[derive(Clone, PartialEq, Eq)]
pub struct SeedKey {
    seed_hex: String,
    public_hex: String,
}

impl SeedKey {
    pub fn from_seed_hex(seed_hex: &str) -> Result<Self, HomeError> {
        Ok(Self::from_key(&ValidatorKey::from_seed_hex(seed_hex)?))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_key(&ValidatorKey::from_seed(seed))
    }

    pub fn generate() -> Result<Self, HomeError> {
        Ok(Self::from_key(&ValidatorKey::generate()?))
    }

    fn from_key(key: &ValidatorKey) -> Self {
        Self { seed_hex: key.seed_hex(), public_hex: hex::encode(key.public_key().as_bytes()) }
    }

    /// The secret: what goes into the Secret.
    pub fn seed_hex(&self) -> &str {
        &self.seed_hex
    }

    /// Lowercase hex public key, as in genesis `app_state`.
    pub fn public_hex(&self) -> &str {
        &self.public_hex
    }
}

impl std::fmt::Debug for SeedKey {
    // Never print the seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeedKey(public={})", self.public_hex)
    }
}

/// The keys of one layer, by ordinal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerKeys {
    /// CometBFT node and validator keys.
    pub nodes: BTreeMap<u32, NodeKeys>,
    /// Origin keys (they sign ops; listed in genesis `app_state.nodes`).
    pub origin: BTreeMap<u32, SeedKey>,
}

/// Every key of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMaterial {
    pub layers: PerLayer<LayerKeys>,
    pub commit: SeedKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{action} Secret {name}: {source}")]
    Kube {
        action: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("generating a key: {0}")]
    Randomness(#[source] HomeError),
    #[error(transparent)]
    Invalid(Invalid),
}

/// Ordinals whose origin key a layer needs: all of L1, and every possible L2 ordinal.
pub fn origin_ordinals(layer: ClusterLayer, replicas: u32) -> std::ops::Range<u32> {
    match layer {
        ClusterLayer::L1 => 0..replicas,
        ClusterLayer::L2 => 0..MAX_NODES,
    }
}

pub async fn ensure(
    client: &Client,
    v: &ValidatedBftws,
    observed: &Observed,
    happened: &mut Vec<Happening>,
) -> Result<KeyMaterial, KeysError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &v.names.namespace);
    let mut layers = PerLayer::<LayerKeys>::default();
    for layer in crate::LAYERS {
        let keys = ensure_layer(&secrets, v, layer, observed.keys.get(layer).as_ref(), happened).await?;
        match layer {
            ClusterLayer::L1 => layers.l1 = keys,
            ClusterLayer::L2 => layers.l2 = keys,
        }
    }
    let commit = ensure_commit_key(&secrets, v, observed, happened).await?;
    if v.tokens.managed && observed.tokens.is_none() {
        let token = NodeKey::generate().map_err(KeysError::Randomness)?.seed_hex();
        let secret = secret::build_managed_tokens_secret(v, &token);
        if create(&secrets, &secret).await?.is_some() {
            happened.push(Happening::TokensCreated { secret: v.tokens.secret.clone() });
        }
    }
    Ok(KeyMaterial { layers, commit })
}

async fn ensure_layer(
    secrets: &Api<Secret>,
    v: &ValidatedBftws,
    layer: ClusterLayer,
    existing: Option<&Secret>,
    happened: &mut Vec<Happening>,
) -> Result<LayerKeys, KeysError> {
    let plan = v.layers.get(layer);
    let name = v.names.keys_secret(layer);
    let genesis_exists = !*v.genesis_to_create.get(layer);
    let existing = match existing {
        Some(secret) => secret.clone(),
        None => {
            let mut keys = LayerKeys::default();
            fill_missing(&mut keys, layer, plan.replicas)?;
            match create(secrets, &secret::build_keys_secret(v, layer, &keys)).await? {
                Some(_) => {
                    happened.push(Happening::KeysCreated { secret: name, nodes: plan.replicas });
                    return Ok(keys);
                }
                // Someone else created it first: use theirs.
                None => secrets.get(&name).await.map_err(|source| KeysError::Kube {
                    action: "reading",
                    name: name.clone(),
                    source,
                })?,
            }
        }
    };

    let mut keys = parse_layer_keys(&name, &existing).map_err(KeysError::Invalid)?;
    let missing_origin: Vec<u32> =
        origin_ordinals(layer, plan.replicas).filter(|ordinal| !keys.origin.contains_key(ordinal)).collect();
    let missing_validators: Vec<u32> =
        (0..plan.validators).filter(|ordinal| !keys.nodes.contains_key(ordinal)).collect();
    if genesis_exists && (!missing_origin.is_empty() || !missing_validators.is_empty()) {
        return Err(KeysError::Invalid(Invalid::state(format!(
            "Secret {name} lacks keys that the existing {} genesis names (origin ordinals {missing_origin:?}, \
             validator ordinals {missing_validators:?}); restore them from a backup, they are never regenerated",
            layer.as_str()
        ))));
    }
    let before: Vec<u32> = keys.nodes.keys().copied().collect();
    let before_origin = keys.origin.len();
    fill_missing(&mut keys, layer, plan.replicas)?;
    let added: Vec<u32> = keys.nodes.keys().copied().filter(|ordinal| !before.contains(ordinal)).collect();
    if !added.is_empty() || keys.origin.len() != before_origin {
        let data = secret::keys_secret_data(&keys, |ordinal| added.contains(&ordinal), &missing_origin);
        let patch = json!({
            "metadata": {"resourceVersion": existing.metadata.resource_version},
            "data": data,
        });
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() };
        secrets.patch(&name, &params, &Patch::Merge(&patch)).await.map_err(|source| KeysError::Kube {
            action: "adding keys to",
            name: name.clone(),
            source,
        })?;
        happened.push(Happening::KeysAdded { secret: name, ordinals: added });
    }
    Ok(keys)
}

/// Generates the keys a layer of `replicas` nodes lacks; never touches existing ones.
fn fill_missing(keys: &mut LayerKeys, layer: ClusterLayer, replicas: u32) -> Result<(), KeysError> {
    for ordinal in 0..replicas {
        if let std::collections::btree_map::Entry::Vacant(slot) = keys.nodes.entry(ordinal) {
            slot.insert(NodeKeys::generate().map_err(KeysError::Randomness)?);
        }
    }
    for ordinal in origin_ordinals(layer, replicas) {
        if let std::collections::btree_map::Entry::Vacant(slot) = keys.origin.entry(ordinal) {
            slot.insert(SeedKey::generate().map_err(KeysError::Randomness)?);
        }
    }
    Ok(())
}

/// Reads every key in a layer's keys Secret.
pub fn parse_layer_keys(name: &str, secret: &Secret) -> Result<LayerKeys, Invalid> {
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let text = |key: &str| -> Result<Option<String>, Invalid> {
        data.get(key)
            .map(|bytes| {
                String::from_utf8(bytes.0.clone())
                    .map_err(|_| Invalid::state(format!("Secret {name}: {key} is not UTF-8")))
            })
            .transpose()
    };
    let bad = |key: String, err: HomeError| Invalid::state(format!("Secret {name}: {key} is not valid: {err}"));
    let mut keys = LayerKeys::default();
    for ordinal in 0..MAX_NODES {
        let (node_file, validator_file, origin_file) = (
            cluster::node_key_file(ordinal),
            cluster::priv_validator_key_file(ordinal),
            cluster::origin_key_file(ordinal),
        );
        match (text(&node_file)?, text(&validator_file)?) {
            (Some(node), Some(validator)) => {
                let node = NodeKey::from_node_key_json(&node).map_err(|err| bad(node_file, err))?;
                let validator =
                    ValidatorKey::from_priv_validator_key_json(&validator).map_err(|err| bad(validator_file, err))?;
                keys.nodes.insert(ordinal, NodeKeys { node, validator });
            }
            (None, None) => {}
            _ => {
                return Err(Invalid::state(format!(
                    "Secret {name}: ordinal {ordinal} has only one of {node_file} and {validator_file}"
                )))
            }
        }
        if let Some(seed) = text(&origin_file)? {
            keys.origin.insert(ordinal, SeedKey::from_seed_hex(&seed).map_err(|err| bad(origin_file, err))?);
        }
    }
    Ok(keys)
}

async fn ensure_commit_key(
    secrets: &Api<Secret>,
    v: &ValidatedBftws,
    observed: &Observed,
    happened: &mut Vec<Happening>,
) -> Result<SeedKey, KeysError> {
    let name = v.names.commit_key_secret();
    let existing = match &observed.commit_key {
        Some(secret) => secret.clone(),
        None if !v.genesis_to_create.l1 => {
            return Err(KeysError::Invalid(Invalid::state(format!(
                "Secret {name} is missing but the L1 genesis authorizes its key; restore it from a backup"
            ))))
        }
        None => {
            let key = SeedKey::generate().map_err(KeysError::Randomness)?;
            match create(secrets, &secret::build_commit_key_secret(v, &key)).await? {
                Some(_) => {
                    happened.push(Happening::CommitKeyCreated { secret: name });
                    return Ok(key);
                }
                None => secrets.get(&name).await.map_err(|source| KeysError::Kube {
                    action: "reading",
                    name: name.clone(),
                    source,
                })?,
            }
        }
    };
    let seed = existing
        .data
        .as_ref()
        .and_then(|data| data.get(cluster::COMMIT_KEY_KEY))
        .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
        .ok_or_else(|| {
            KeysError::Invalid(Invalid::state(format!("Secret {name} has no readable {}", cluster::COMMIT_KEY_KEY)))
        })?;
    SeedKey::from_seed_hex(&seed)
        .map_err(|err| KeysError::Invalid(Invalid::state(format!("Secret {name}: {}: {err}", cluster::COMMIT_KEY_KEY))))
}

/// Creates a Secret; `Ok(None)` when it already exists (create-only: never replaced).
async fn create(secrets: &Api<Secret>, secret: &Secret) -> Result<Option<Secret>, KeysError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
    match secrets.create(&params, secret).await {
        Ok(created) => Ok(Some(created)),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(None),
        Err(source) => Err(KeysError::Kube { action: "creating", name, source }),
    }
}

/// `ByteString` of a UTF-8 text.
pub(crate) fn bytes(text: &str) -> ByteString {
    ByteString(text.as_bytes().to_vec())
}
