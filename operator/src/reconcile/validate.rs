//! Step 2 (no client): turn the CR plus what exists into a [`ValidatedBftws`], or say why not.
//!
//! Admission already refuses what the schema and CEL can see; this step catches the rest: the
//! referenced reference-data ConfigMap or tokens Secret missing or malformed, existing keys or
//! genesis that contradict the spec (a CRD installed without its CEL rules, or objects edited
//! by hand). Such an [`Invalid`] becomes the `Degraded` condition and is not retried hot.
//! Later steps read the raw CR only for its owner reference.

use std::time::Duration;

use bftws_home::cluster::ClusterLayer;
use bftws_home::{parse_go_duration, Timing};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource as _;
use serde_json::Value;

use crate::crd::{BftWebService, DeletionPolicy, LayerTimeouts, StorageSpec, MAX_L1_REPLICAS, MAX_L2_REPLICAS};
use crate::reconcile::observe::{tokens_secret_name, Observed};
use crate::resources::names::Names;
use crate::PerLayer;

/// Longest consensus timeout accepted (the CRD's CEL bound).
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon a spec that depends on objects the operator does not watch is looked at again.
pub const DEPENDENCY_RETRY: Duration = Duration::from_secs(60);

/// Why a spec cannot be reconciled; shown as the `Degraded` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// CamelCase condition reason.
    pub reason: &'static str,
    pub message: String,
    /// `None`: wait for the spec to change. `Some`: the fix may be elsewhere (a ConfigMap or
    /// Secret the operator does not watch), so look again after this long.
    pub retry_after: Option<Duration>,
}

impl Invalid {
    pub fn spec(message: impl Into<String>) -> Self {
        Self { reason: "InvalidSpec", message: message.into(), retry_after: None }
    }

    pub fn dependency(message: impl Into<String>) -> Self {
        Self { reason: "MissingDependency", message: message.into(), retry_after: Some(DEPENDENCY_RETRY) }
    }

    pub fn state(message: impl Into<String>) -> Self {
        Self { reason: "InconsistentState", message: message.into(), retry_after: Some(DEPENDENCY_RETRY) }
    }
}

/// One layer, as the builders need it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    pub layer: ClusterLayer,
    pub replicas: u32,
    pub validators: u32,
    pub chain_id: String,
    pub timing: Timing,
    pub resources: Option<ResourceRequirements>,
    pub storage: StorageSpec,
}

impl LayerPlan {
    /// f = ⌊(v − 1)/3⌋.
    pub fn fault_tolerance(&self) -> u32 {
        self.validators.saturating_sub(1) / 3
    }

    /// Validators needed for a commit: more than two thirds of the (equal-power) set.
    pub fn quorum(&self) -> u32 {
        self.validators * 2 / 3 + 1
    }
}

/// Where the API tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensSource {
    pub secret: String,
    /// Created by the operator (no `spec.app.tokensSecret`).
    pub managed: bool,
}

/// A spec that can be built, with everything the builders need.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedBftws {
    pub names: Names,
    pub owner: OwnerReference,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub priority_class_name: Option<String>,
    /// The service the nodes run (one the node image links).
    pub service: String,
    pub deletion_policy: DeletionPolicy,
    /// `metadata.creationTimestamp`, RFC 3339: genesis time, so genesis is reproducible.
    pub genesis_time: String,
    pub layers: PerLayer<LayerPlan>,
    /// The genesis `app_state.service`; `Some` only while a genesis is still to be created.
    pub reference_data: Option<Value>,
    pub tokens: TokensSource,
    /// Layers whose genesis ConfigMap does not exist yet.
    pub genesis_to_create: PerLayer<bool>,
}

/// The reference data of a deployment without `spec.app.referenceData`: none.
pub fn empty_reference_data() -> Value {
    Value::Null
}

pub fn validate(obj: &BftWebService, observed: &Observed) -> Result<ValidatedBftws, Invalid> {
    let meta = &obj.metadata;
    let name = meta.name.clone().ok_or_else(|| Invalid::spec("metadata.name is missing"))?;
    let namespace = meta.namespace.clone().ok_or_else(|| Invalid::spec("BftWebService must be namespaced"))?;
    if name.len() > crate::crd::MAX_NAME_LEN
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.ends_with('-')
    {
        return Err(Invalid::spec(format!(
            "metadata.name {name:?} must be a DNS label of at most {} characters starting with a letter",
            crate::crd::MAX_NAME_LEN
        )));
    }
    let owner = obj.controller_owner_ref(&()).ok_or_else(|| Invalid::spec("metadata.uid is missing"))?;
    let genesis_time = meta
        .creation_timestamp
        .as_ref()
        .map(|time| time.0.to_string())
        .ok_or_else(|| Invalid::spec("metadata.creationTimestamp is missing"))?;
    let names = Names::new(name, namespace);
    let spec = &obj.spec;

    let l1 = &spec.l1;
    if !(1..=MAX_L1_REPLICAS).contains(&l1.replicas) {
        return Err(Invalid::spec(format!(
            "spec.l1.replicas must be within 1..={MAX_L1_REPLICAS}, got {}",
            l1.replicas
        )));
    }
    let l2 = &spec.l2;
    if !(1..=MAX_L2_REPLICAS).contains(&l2.replicas) {
        return Err(Invalid::spec(format!(
            "spec.l2.replicas must be within 1..={MAX_L2_REPLICAS}, got {}",
            l2.replicas
        )));
    }
    if l2.validators < 1 || l2.validators > l2.replicas {
        return Err(Invalid::spec(format!(
            "spec.l2.validators must be within 1..=spec.l2.replicas ({}), got {}",
            l2.replicas, l2.validators
        )));
    }
    if spec.image.trim().is_empty() {
        return Err(Invalid::spec("spec.image is empty"));
    }

    let plan = |layer: ClusterLayer, replicas: i32, validators: i32, resources, storage: &StorageSpec| {
        let (default, overrides) = match layer {
            ClusterLayer::L1 => (Timing::l1_for(validators.unsigned_abs()), spec.consensus.l1.as_ref()),
            ClusterLayer::L2 => (Timing::l2(), spec.consensus.l2.as_ref()),
        };
        Ok::<_, Invalid>(LayerPlan {
            layer,
            replicas: replicas.unsigned_abs(),
            validators: validators.unsigned_abs(),
            chain_id: names.chain_id(layer),
            timing: timing(layer, default, overrides)?,
            resources,
            storage: storage.clone(),
        })
    };
    let layers = PerLayer {
        l1: plan(ClusterLayer::L1, l1.replicas, l1.replicas, l1.resources.clone(), &l1.storage)?,
        l2: plan(ClusterLayer::L2, l2.replicas, l2.validators, l2.resources.clone(), &l2.storage)?,
    };
    check_against_existing(&layers, observed, &names)?;

    let service = spec.service.name.clone();
    let roles = bftws_services::roles(&service).map_err(|e| Invalid::spec(format!("spec.service.name: {e}")))?;
    let reference_data = if observed.genesis_missing() { Some(reference_data(obj, observed)?) } else { None };
    if let Some(data) = &reference_data {
        bftws_services::check_reference_data(&service, data)
            .map_err(|e| Invalid::dependency(format!("spec.app.referenceData for service '{service}': {e}")))?;
    }
    let tokens = TokensSource { secret: tokens_secret_name(obj, &names), managed: spec.app.tokens_secret.is_none() };
    if !tokens.managed {
        check_tokens_secret(&tokens.secret, observed, &roles)?;
    }

    Ok(ValidatedBftws {
        owner,
        image: spec.image.clone(),
        image_pull_policy: spec.image_pull_policy.map(|policy| policy.as_str().to_owned()),
        priority_class_name: spec.priority_class_name.clone(),
        service,
        deletion_policy: spec.deletion_policy,
        genesis_time,
        layers,
        reference_data,
        tokens,
        genesis_to_create: PerLayer { l1: observed.genesis.l1.is_none(), l2: observed.genesis.l2.is_none() },
        names,
    })
}

fn timing(layer: ClusterLayer, mut timing: Timing, overrides: Option<&LayerTimeouts>) -> Result<Timing, Invalid> {
    let Some(o) = overrides else { return Ok(timing) };
    let fields = [
        ("timeoutPropose", &o.timeout_propose, &mut timing.timeout_propose),
        ("timeoutPrevote", &o.timeout_prevote, &mut timing.timeout_prevote),
        ("timeoutPrecommit", &o.timeout_precommit, &mut timing.timeout_precommit),
        ("timeoutCommit", &o.timeout_commit, &mut timing.timeout_commit),
        ("peerGossipSleepDuration", &o.peer_gossip_sleep_duration, &mut timing.peer_gossip_sleep_duration),
        ("flushThrottleTimeout", &o.flush_throttle_timeout, &mut timing.flush_throttle_timeout),
    ];
    for (field, value, slot) in fields {
        let Some(value) = value else { continue };
        let path = format!("spec.consensus.{}.{field}", layer.as_str());
        let duration = parse_go_duration(value).map_err(|err| Invalid::spec(format!("{path}: {err}")))?;
        if duration > MAX_TIMEOUT {
            return Err(Invalid::spec(format!("{path} must be at most 60s, got {value:?}")));
        }
        *slot = duration;
    }
    Ok(timing)
}

/// What genesis fixed cannot change: refuse a spec that disagrees with an existing genesis
/// (possible only when the CRD's CEL rules were bypassed, e.g. an old CRD, or when a deployment
/// is recreated over retained objects with different sizes).
fn check_against_existing(layers: &PerLayer<LayerPlan>, observed: &Observed, names: &Names) -> Result<(), Invalid> {
    for (layer, plan) in layers.iter() {
        let Some(genesis) = observed.genesis.get(layer) else { continue };
        let json = genesis.data.as_ref().and_then(|data| data.get(bftws_home::cluster::GENESIS_KEY));
        let validators = json
            .and_then(|json| serde_json::from_str::<Value>(json).ok())
            .and_then(|doc| doc.get("validators").and_then(Value::as_array).map(Vec::len));
        let Some(validators) = validators else {
            return Err(Invalid::state(format!(
                "ConfigMap {} has no readable genesis.json; restore it (genesis is never rewritten)",
                names.genesis_config_map(layer)
            )));
        };
        if validators != plan.validators as usize {
            let field = match layer {
                ClusterLayer::L1 => "spec.l1.replicas",
                ClusterLayer::L2 => "spec.l2.validators",
            };
            return Err(Invalid::spec(format!(
                "{field} is {} but the existing {} genesis ({}) has {validators} validators; the validator set is \
                 fixed in genesis",
                plan.validators,
                layer.as_str(),
                names.genesis_config_map(layer)
            )));
        }
    }
    Ok(())
}

fn reference_data(obj: &BftWebService, observed: &Observed) -> Result<Value, Invalid> {
    let Some(reference) = &obj.spec.app.reference_data else { return Ok(empty_reference_data()) };
    let config_map = observed.reference_data.as_ref().ok_or_else(|| {
        Invalid::dependency(format!(
            "spec.app.referenceData: ConfigMap {:?} not found; genesis waits for it",
            reference.name
        ))
    })?;
    let text = config_map.data.as_ref().and_then(|data| data.get(&reference.key)).ok_or_else(|| {
        Invalid::dependency(format!(
            "spec.app.referenceData: ConfigMap {:?} has no key {:?}",
            reference.name, reference.key
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|err| {
        Invalid::dependency(format!("spec.app.referenceData: {}/{} is not JSON: {err}", reference.name, reference.key))
    })?;
    Ok(value)
}

/// The tokens Secret exists, has the tokens key, and gives only roles the service has.
fn check_tokens_secret(name: &str, observed: &Observed, roles: &[&str]) -> Result<(), Invalid> {
    let secret = observed
        .tokens
        .as_ref()
        .ok_or_else(|| Invalid::dependency(format!("spec.app.tokensSecret: Secret {name:?} not found")))?;
    let key = bftws_home::cluster::TOKENS_KEY;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| Invalid::dependency(format!("spec.app.tokensSecret: Secret {name:?} has no key {key:?}")))?;
    let parsed: Option<Value> = serde_json::from_slice(&bytes.0).ok();
    let Some(tokens) = parsed.as_ref().and_then(|v| v.get("tokens")).and_then(Value::as_array) else {
        return Err(Invalid::dependency(format!(
            "spec.app.tokensSecret: {name}/{key} must be {{\"tokens\": [{{\"sha256\", \"actor\"}}]}}"
        )));
    };
    for (i, token) in tokens.iter().enumerate() {
        let role = token["actor"]["role"].as_str().unwrap_or_default();
        if !roles.contains(&role) {
            return Err(Invalid::dependency(format!(
                "spec.app.tokensSecret: {name}/{key}: tokens[{i}] has role {role:?}; the service's roles are {}",
                roles.join(", ")
            )));
        }
    }
    Ok(())
}
