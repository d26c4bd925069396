//! Step 4 (no client, no clock, no randomness): every object a BftWebService becomes.
//!
//! One file per kind, each with `build_*` functions from a [`ValidatedBftws`] (plus key
//! material, which [`crate::reconcile::keys`] generated): the same inputs give byte-identical
//! objects, so re-applying them changes nothing. Names come from [`names`], labels from
//! [`labels`].
//!
//! Ownership follows `deletionPolicy`: objects that can be rebuilt from the spec (layer
//! ConfigMaps, Services, StatefulSets, the PDB) are always owned by the BftWebService; objects
//! that hold a chain's identity (key Secrets, genesis ConfigMaps, the managed tokens Secret)
//! are owned only under `Delete`, so under `Retain` garbage collection leaves them behind.

pub mod config_map;
pub mod labels;
pub mod names;
pub mod pdb;
pub mod secret;
pub mod service;
pub mod statefulset;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bftws_home::HomeError;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::DeletionPolicy;
use crate::reconcile::keys::KeyMaterial;
use crate::reconcile::validate::ValidatedBftws;
use crate::PerLayer;

/// A create-once object whose owner references follow `deletionPolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    pub name: String,
    /// What `metadata.ownerReferences` should be (empty under `Retain`).
    pub owner_references: Vec<OwnerReference>,
}

/// Everything [`build`] produces, by apply stage.
#[derive(Debug, Clone)]
pub struct Resources {
    /// Key Secrets, the commit key, the managed tokens Secret, the geneses: created once
    /// elsewhere or below; only their owner references are kept in line with the policy.
    pub retained: Vec<Retained>,
    /// Genesis ConfigMaps still to be created (immutable; never re-applied).
    pub genesis: PerLayer<Option<ConfigMap>>,
    /// Layer manifests (`layer.json`), applied every time.
    pub layer_config_maps: PerLayer<ConfigMap>,
    pub services: Vec<Service>,
    pub statefulsets: PerLayer<StatefulSet>,
    pub l1_pdb: PodDisruptionBudget,
    /// L2's validators' budget (full nodes are not in it).
    pub l2_pdb: PodDisruptionBudget,
    /// Who, besides the StatefulSets, owns the deployment's volume claims.
    pub claims_owner: ClaimsOwner,
}

/// A claim of an ordinal a StatefulSet no longer has (L2 scaled down: `whenScaled: Retain`)
/// belongs to no StatefulSet, so `whenDeleted: Delete` never reaches it. Under
/// `deletionPolicy: Delete` every claim of the deployment is therefore also owned by the
/// BftWebService (garbage collection removes an object once all its owners are gone); under
/// `Retain`, by nothing of the operator's.
#[derive(Debug, Clone)]
pub struct ClaimsOwner {
    /// The BftWebService, as a plain (not controller) owner: a claim of a live pod already has
    /// the StatefulSet as its controller.
    pub owner: OwnerReference,
    pub owns: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("rendering the {layer} {what}: {source}")]
    Home {
        layer: &'static str,
        what: &'static str,
        #[source]
        source: HomeError,
    },
}

pub fn build(v: &ValidatedBftws, keys: &KeyMaterial) -> Result<Resources, BuildError> {
    let genesis = PerLayer {
        l1: v
            .genesis_to_create
            .l1
            .then(|| config_map::build_genesis(v, bftws_home::ClusterLayer::L1, keys))
            .transpose()?,
        l2: v
            .genesis_to_create
            .l2
            .then(|| config_map::build_genesis(v, bftws_home::ClusterLayer::L2, keys))
            .transpose()?,
    };
    let manifests = PerLayer {
        l1: config_map::layer_manifest(v, bftws_home::ClusterLayer::L1, keys)?,
        l2: config_map::layer_manifest(v, bftws_home::ClusterLayer::L2, keys)?,
    };
    let layer_config_maps = PerLayer {
        l1: config_map::build_layer_config_map(v, &manifests.l1)?,
        l2: config_map::build_layer_config_map(v, &manifests.l2)?,
    };
    let statefulsets = PerLayer {
        l1: statefulset::build_statefulset(v, &manifests.l1)?,
        l2: statefulset::build_statefulset(v, &manifests.l2)?,
    };
    Ok(Resources {
        retained: retained_objects(v),
        genesis,
        layer_config_maps,
        services: service::build_services(v),
        statefulsets,
        l1_pdb: pdb::build_l1_pdb(v),
        l2_pdb: pdb::build_l2_pdb(v),
        claims_owner: ClaimsOwner {
            owner: OwnerReference { controller: None, block_owner_deletion: None, ..v.owner.clone() },
            owns: v.deletion_policy == DeletionPolicy::Delete,
        },
    })
}

/// The create-once objects of a deployment and the owner references they should carry.
pub fn retained_objects(v: &ValidatedBftws) -> Vec<Retained> {
    let owner_references = retained_owner_references(v);
    let mut retained = Vec::new();
    let mut push = |kind, name| retained.push(Retained { kind, name, owner_references: owner_references.clone() });
    for layer in crate::LAYERS {
        push("Secret", v.names.keys_secret(layer));
    }
    push("Secret", v.names.commit_key_secret());
    if v.tokens.managed {
        push("Secret", v.tokens.secret.clone());
    }
    for layer in crate::LAYERS {
        push("ConfigMap", v.names.genesis_config_map(layer));
    }
    retained
}

fn retained_owner_references(v: &ValidatedBftws) -> Vec<OwnerReference> {
    match v.deletion_policy {
        DeletionPolicy::Retain => Vec::new(),
        DeletionPolicy::Delete => vec![v.owner.clone()],
    }
}

/// Metadata of an object the BftWebService always owns.
pub fn owned_meta(v: &ValidatedBftws, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(v.names.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![v.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Metadata of a create-once object: owned only under `deletionPolicy: Delete`.
pub fn retained_meta(v: &ValidatedBftws, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    let owner_references = retained_owner_references(v);
    ObjectMeta {
        name: Some(name),
        namespace: Some(v.names.namespace.clone()),
        labels: Some(labels),
        owner_references: (!owner_references.is_empty()).then_some(owner_references),
        ..ObjectMeta::default()
    }
}
