//! Step 5 (client required): write what [`build`](crate::resources::build) produced.
//!
//! Order matters, and is fixed here:
//! 1. owner references of the create-once objects (keys, commit key, tokens, geneses), so a
//!    `deletionPolicy` change takes effect before anything else;
//! 2. genesis ConfigMaps (created once: immutable) and layer ConfigMaps;
//! 3. Services;
//! 4. StatefulSets, then the PodDisruptionBudget;
//! 5. owner references of the volume claims ([`ClaimsOwner`]).
//!
//! Pods mount the Secrets and ConfigMaps, and CometBFT resolves its peers' Service names once,
//! at start: applying a StatefulSet first would start pods stuck on missing volumes, or nodes
//! that never find peers whose Service appeared a moment later. The PDB comes last because it
//! only matters once pods exist.
//!
//! Everything except the create-once objects is written with server-side apply under one field
//! manager ([`FIELD_MANAGER`]) with `force`: the operator owns those fields, and re-applying
//! identical objects changes nothing (no new `resourceVersion`, no pod restarts).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::reconcile::observe::Observed;
use crate::reconcile::Happening;
use crate::resources::{ClaimsOwner, Resources, Retained};
use crate::{PerLayer, FIELD_MANAGER};

#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
pub struct ApplyError {
    action: &'static str,
    kind: &'static str,
    name: String,
    #[source]
    source: kube::Error,
}

/// What the apiserver answered: the state the status is computed from.
#[derive(Debug, Clone)]
pub struct Applied {
    pub statefulsets: PerLayer<StatefulSet>,
    /// Each layer's `genesis.json` as stored (the existing one, or the one just created).
    pub genesis_json: PerLayer<Option<String>>,
}

pub async fn apply(
    client: &Client,
    namespace: &str,
    resources: Resources,
    observed: &Observed,
    happened: &mut Vec<Happening>,
) -> Result<Applied, ApplyError> {
    // Destructured without `..`: a new kind of object does not compile until it is applied.
    let Resources { retained, genesis, layer_config_maps, services, statefulsets, l1_pdb, l2_pdb, claims_owner } =
        resources;

    for object in &retained {
        reconcile_owners(client, namespace, object, observed).await?;
    }

    let mut genesis_json = PerLayer::new(|layer| stored_genesis(observed.genesis.get(layer).as_ref()));
    for (layer, config_map) in genesis.iter() {
        let Some(config_map) = config_map else { continue };
        let created = create_once(client, namespace, config_map).await?;
        if created {
            happened.push(Happening::GenesisCreated { layer });
        }
        let stored = if created {
            stored_genesis(Some(config_map))
        } else {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let name = config_map.name_any();
            let existing = api.get(&name).await.map_err(error("reading", "ConfigMap", &name))?;
            stored_genesis(Some(&existing))
        };
        match layer {
            bftws_home::ClusterLayer::L1 => genesis_json.l1 = stored,
            bftws_home::ClusterLayer::L2 => genesis_json.l2 = stored,
        }
    }
    for (_, config_map) in layer_config_maps.iter() {
        server_side_apply(client, namespace, config_map).await?;
    }

    for service in &services {
        server_side_apply(client, namespace, service).await?;
    }

    let statefulsets = PerLayer {
        l1: server_side_apply(client, namespace, &statefulsets.l1).await?,
        l2: server_side_apply(client, namespace, &statefulsets.l2).await?,
    };
    server_side_apply::<PodDisruptionBudget>(client, namespace, &l1_pdb).await?;
    server_side_apply::<PodDisruptionBudget>(client, namespace, &l2_pdb).await?;
    // Every claim is tried even when one fails: a claim left unowned under `Delete` outlives
    // the deployment.
    let mut first_error = None;
    for claim in &observed.claims {
        if let Err(err) = reconcile_claim_owner(client, namespace, claim, &claims_owner).await {
            first_error.get_or_insert(err);
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }

    Ok(Applied { statefulsets, genesis_json })
}

/// Adds or removes the BftWebService among a claim's owners ([`ClaimsOwner`]), keeping the
/// others. The patch carries the claim's resourceVersion: the StatefulSet controller edits the
/// same list (it does when `whenDeleted` switches), so a conflict reads the claim again and
/// retries at once, a few times, before leaving it to the next reconcile.
async fn reconcile_claim_owner(
    client: &Client,
    namespace: &str,
    claim: &PersistentVolumeClaim,
    claims_owner: &ClaimsOwner,
) -> Result<(), ApplyError> {
    const ATTEMPTS: usize = 5;
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    let name = claim.name_any();
    let mut claim = claim.clone();
    let mut attempts = 1;
    loop {
        match patch_claim_owners(&api, &claim, claims_owner).await {
            Err(kube::Error::Api(status)) if status.code == 409 && attempts < ATTEMPTS => {
                attempts += 1;
                match api.get_opt(&name).await.map_err(error("reading", "PersistentVolumeClaim", &name))? {
                    Some(fresh) => claim = fresh,
                    None => return Ok(()),
                }
            }
            result => return result.map_err(error("setting owner references of", "PersistentVolumeClaim", &name)),
        }
    }
}

async fn patch_claim_owners(
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
    claims_owner: &ClaimsOwner,
) -> Result<(), kube::Error> {
    let current = claim.owner_references();
    let mut wanted: Vec<OwnerReference> =
        current.iter().filter(|owner| owner.uid != claims_owner.owner.uid).cloned().collect();
    if claims_owner.owns {
        wanted.push(claims_owner.owner.clone());
    }
    if wanted == current {
        return Ok(());
    }
    let owners = if wanted.is_empty() { Value::Null } else { json!(wanted) };
    let patch = json!({"metadata": {"resourceVersion": claim.resource_version(), "ownerReferences": owners}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() };
    api.patch(&claim.name_any(), &params, &Patch::Merge(&patch)).await.map(drop)
}

fn stored_genesis(config_map: Option<&ConfigMap>) -> Option<String> {
    config_map?.data.as_ref()?.get(bftws_home::cluster::GENESIS_KEY).cloned()
}

fn error(action: &'static str, kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> ApplyError {
    let name = name.to_owned();
    move |source| ApplyError { action, kind, name, source }
}

/// A namespaced Kubernetes object of a static kind that the operator writes.
trait NamespacedObject:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug
{
}

impl<K> NamespacedObject for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
{
}

/// Server-side apply of a whole object, forced: this operator owns every field it sets.
async fn server_side_apply<K: NamespacedObject>(client: &Client, namespace: &str, object: &K) -> Result<K, ApplyError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.name_any();
    let kind = static_kind::<K>();
    // k8s-openapi leaves apiVersion/kind to serialization; apply needs them in the body.
    let mut body = serde_json::to_value(object).map_err(|err| ApplyError {
        action: "serializing",
        kind,
        name: name.clone(),
        source: kube::Error::SerdeError(err),
    })?;
    body["apiVersion"] = json!(K::api_version(&()));
    body["kind"] = json!(K::kind(&()));
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(error("applying", kind, &name))
}

/// Creates an object unless it exists; returns whether it was created.
async fn create_once<K: NamespacedObject>(client: &Client, namespace: &str, object: &K) -> Result<bool, ApplyError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
    match api.create(&params, object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(source) => {
            Err(ApplyError { action: "creating", kind: static_kind::<K>(), name: object.name_any(), source })
        }
    }
}

fn static_kind<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "Secret" => "Secret",
        "ConfigMap" => "ConfigMap",
        "Service" => "Service",
        "StatefulSet" => "StatefulSet",
        "PodDisruptionBudget" => "PodDisruptionBudget",
        _ => "object",
    }
}

/// Brings a create-once object's owner references in line with `deletionPolicy`, with a merge
/// patch that touches nothing else (and only when they differ). A missing object is left alone:
/// the step that creates it sets them.
async fn reconcile_owners(
    client: &Client,
    namespace: &str,
    object: &Retained,
    observed: &Observed,
) -> Result<(), ApplyError> {
    let current = match object.kind {
        "Secret" => observed_secret(observed, &object.name).map(|secret| secret.owner_references().to_vec()),
        _ => observed_config_map(observed, &object.name).map(|config_map| config_map.owner_references().to_vec()),
    };
    let Some(current) = current else { return Ok(()) };
    if current == object.owner_references {
        return Ok(());
    }
    let patch = if object.owner_references.is_empty() {
        json!({"metadata": {"ownerReferences": null}})
    } else {
        json!({"metadata": {"ownerReferences": object.owner_references}})
    };
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() };
    let result = match object.kind {
        "Secret" => Api::<Secret>::namespaced(client.clone(), namespace)
            .patch(&object.name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        _ => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .patch(&object.name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
    };
    result.map_err(error("setting owner references of", object.kind, &object.name))
}

fn observed_secret<'a>(observed: &'a Observed, name: &str) -> Option<&'a Secret> {
    observed
        .keys
        .l1
        .iter()
        .chain(observed.keys.l2.iter())
        .chain(observed.commit_key.iter())
        .chain(observed.tokens.iter())
        .find(|secret| secret.metadata.name.as_deref() == Some(name))
}

fn observed_config_map<'a>(observed: &'a Observed, name: &str) -> Option<&'a ConfigMap> {
    observed.genesis.l1.iter().chain(observed.genesis.l2.iter()).find(|cm| cm.metadata.name.as_deref() == Some(name))
}
