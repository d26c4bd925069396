//! The `BftWebService` custom resource (`bftws.io/v1alpha1`): spec, status, admission rules.
//!
//! What the schema and CEL can refuse is refused at admission, with a message naming the field:
//! sizes and timeouts have bounds, `spec.l1.replicas`, `spec.l2.validators` and the storage of
//! both layers are immutable (they are baked into genesis or into StatefulSet volume claim
//! templates), and `1 ≤ spec.l2.validators ≤ spec.l2.replicas`. What admission cannot see (a
//! referenced ConfigMap or Secret that is missing or malformed) is reported by the reconciler as
//! the `Degraded` condition.
//!
//! `crds/bftws.io_bftwebservices.yaml` is generated from these types (`bftws-operator crd`); a
//! test fails when the committed file is stale.

// kube's `KubeSchema` derive emits a private copy of each struct it validates, which the
// `unreachable_pub` lint then reports against our (public, re-exported) type.
#![allow(unreachable_pub)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most L1 validators a deployment may have.
pub const MAX_L1_REPLICAS: i32 = 50;
/// Most L2 nodes: every L2 origin key up to this many is generated at creation and listed in the
/// L2 genesis, so L2 can scale up to it without a new genesis.
pub const MAX_L2_REPLICAS: i32 = bftws_home::cluster::MAX_NODES as i32;
/// Longest `metadata.name`: it prefixes every child object name (e.g. `NAME-l2-commit-key`) and
/// pod host names (`NAME-l2-63`), which must stay DNS labels of at most 63 characters.
pub const MAX_NAME_LEN: usize = 40;

/// A two-layer BFT web service: an L1 CometBFT network of `spec.l1.replicas` validators and an
/// L2 network of `spec.l2.replicas` nodes (the first `spec.l2.validators` of them validators).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bftws.io",
    version = "v1alpha1",
    kind = "BftWebService",
    plural = "bftwebservices",
    shortname = "bftws",
    namespaced,
    status = "BftWebServiceStatus",
    derive = "PartialEq",
    doc = "A two-layer Byzantine-fault-tolerant web service on CometBFT",
    scale(
        spec_replicas_path = ".spec.l2.replicas",
        status_replicas_path = ".status.l2.replicas",
        label_selector_path = ".status.l2.selector"
    ),
    printcolumn(name = "L1", type_ = "string", json_path = ".status.l1.ready", description = "ready/total L1 validators"),
    printcolumn(name = "L2", type_ = "string", json_path = ".status.l2.ready", description = "ready/total L2 nodes"),
    printcolumn(name = "READY", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "HEIGHT", type_ = "integer", json_path = ".status.l1.height", description = "L1 height"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS label of at most 40 characters starting with a letter: it prefixes Service, StatefulSet and pod names")
)]
#[serde(rename_all = "camelCase")]
pub struct BftWebServiceSpec {
    /// The node image: holds `/usr/local/bin/bftws-node` and `/usr/local/bin/cometbft`.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Image pull policy of every container (Kubernetes' default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// The PriorityClass of every pod (validators usually deserve a high one, so they are not
    /// preempted by ordinary workloads). Absent: the cluster's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// Which service of the node image the nodes run.
    #[serde(default)]
    pub service: ServiceSpec,
    pub l1: L1Spec,
    pub l2: L2Spec,
    /// Per-layer consensus timeouts; each absent field keeps the layer's default.
    #[serde(default)]
    pub consensus: ConsensusSpec,
    #[serde(default)]
    pub app: AppSpec,
    /// `Retain` (default): deleting the BftWebService keeps the key Secrets, the genesis
    /// ConfigMaps and the volumes, so recreating it with the same name resumes both chains.
    /// `Delete`: everything is garbage-collected with it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Layer 1: the final ledger, a fixed set of validators.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct L1Spec {
    /// Validators (n). Tolerates f = ⌊(n−1)/3⌋ Byzantine validators: below 4 there is no
    /// fault tolerance. Immutable until live validator-set changes exist.
    #[schemars(range(min = 1, max = 50))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.l1.replicas is immutable: the L1 validator set is fixed in genesis"))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.l1.storage is immutable: StatefulSet volume claim templates cannot change"))]
    pub storage: StorageSpec,
}

/// Layer 2: the interactive chain; `validators` validators plus full nodes up to `replicas`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.validators <= self.replicas").message("spec.l2.validators must be at most spec.l2.replicas"))]
pub struct L2Spec {
    /// Nodes (validators + full nodes); the scale subresource (`kubectl scale`) changes this.
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,
    /// Validators, the first ordinals; the other replicas are full nodes. Immutable.
    #[serde(default = "default_l2_validators")]
    #[schemars(range(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.l2.validators is immutable: the L2 validator set is fixed in genesis"))]
    pub validators: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.l2.storage is immutable: StatefulSet volume claim templates cannot change"))]
    pub storage: StorageSpec,
}

fn default_l2_validators() -> i32 {
    1
}

/// The persistent volume of each pod (CometBFT data and the app's state store).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(default = "default_storage_size")]
    pub size: Quantity,
    /// The cluster's default StorageClass when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self { size: default_storage_size(), storage_class_name: None }
    }
}

fn default_storage_size() -> Quantity {
    Quantity("10Gi".to_owned())
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<LayerTimeouts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<LayerTimeouts>,
}

/// Go duration strings (`"500ms"`, `"1s"`), each at most 60s. CometBFT's meaning of each is in
/// its `config.toml` documentation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LayerTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub timeout_propose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub timeout_prevote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub timeout_precommit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub timeout_commit: Option<String>,
    /// Gossip loops' sleep when there is nothing to send. Default on L1: grows with the
    /// validators, 2ms at 4, 7ms at 7, 15ms at 10, 26ms at 13, 40ms at 16, at most 50ms (an idle
    /// network's wake-ups grow with n·(n−1)); 2ms on L2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub peer_gossip_sleep_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('60s')").message("must be at most 60s"))]
    pub flush_throttle_timeout: Option<String>,
}

/// The service the nodes run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// A service the node image links: `supply-chain` (default) or `escrow`. Immutable: the
    /// chains' geneses and state belong to it.
    #[serde(default = "default_service_name")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.service.name is immutable: the chains' geneses belong to the service"))]
    pub name: String,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self { name: default_service_name() }
    }
}

fn default_service_name() -> String {
    bftws_home::cluster::DEFAULT_SERVICE.to_owned()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// The service's reference data (its genesis `app_state.service`) for both geneses: a key of
    /// a ConfigMap in the same namespace holding the JSON the service defines (the supply chain:
    /// `{"suppliers":[{"id","name","public_key"}],"operators":[{"id","name"}],"couriers":[{"id","name"}]}`;
    /// escrow: `{"accounts":[{"id","name","balance"}],"sellers":[{"id","name"}]}`), checked by
    /// the service's own rules before any genesis is written. Read once, when the geneses are
    /// created. Absent: no reference data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_data: Option<ConfigMapKeyRef>,
    /// A Secret in the same namespace with key `tokens.json`
    /// (`{"tokens":[{"sha256":"<hex>","actor":{"id":"op-1","role":"operator"}}]}`). Absent: the
    /// operator creates `NAME-api-tokens` with one random admin token, stored in plain text
    /// under its key `admin-token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub tokens_secret: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_reference_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_reference_key() -> String {
    "reference.json".to_owned()
}

/// What the operator observed; written only by the operator.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BftWebServiceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `QuorumAtRisk`, `NodesFailing`, always in this order.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub l1: LayerStatus,
    #[serde(default)]
    pub l2: LayerStatus,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LayerStatus {
    /// Pods that exist.
    pub replicas: i32,
    /// Pods whose node is caught up (readiness).
    pub ready_replicas: i32,
    /// `ready/desired`, for `kubectl get`.
    pub ready: String,
    /// Validators in genesis.
    pub validators: i32,
    /// f = ⌊(validators − 1)/3⌋: Byzantine validators the layer tolerates.
    pub fault_tolerance: i32,
    /// Latest committed block height reported by the layer's API Service (`/readyz`); kept when
    /// the layer does not answer.
    pub height: i64,
    #[serde(default)]
    pub chain_id: String,
    /// SHA-256 (hex) of the layer's `genesis.json` (the immutable genesis ConfigMap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_hash: Option<String>,
    /// Label selector of the layer's pods (for the scale subresource on L2).
    #[serde(default)]
    pub selector: String,
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let yaml = serde_yaml::to_string(&BftWebService::crd())?;
    Ok(format!("# Generated by `bftws-operator crd`: do not edit.\n{yaml}"))
}

/// Path of the generated CRD, relative to the repository root.
pub const CRD_PATH: &str = "crds/bftws.io_bftwebservices.yaml";

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::fixtures::demo_ws;

    fn schema() -> Value {
        let crd = BftWebService::crd();
        let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).unwrap();
        serde_json::to_value(schema).unwrap()
    }

    /// The apiserver's verdict on creating `new` (or updating `old` to `new`), as messages.
    fn admit(new: &Value, old: Option<&Value>) -> Result<(), Vec<String>> {
        kube::core::cel::Validator::new().validate(&schema(), new, old).map_err(|errors| {
            errors.into_vec().into_iter().map(|e| format!("{}: {}", e.field_path, e.message)).collect()
        })
    }

    fn demo() -> Value {
        serde_json::to_value(demo_ws()).unwrap()
    }

    fn with(edit: impl FnOnce(&mut Value)) -> Value {
        let mut value = demo();
        edit(&mut value);
        value
    }

    fn refused(result: Result<(), Vec<String>>, needle: &str) {
        let errors = result.expect_err("should be refused");
        assert!(errors.iter().any(|e| e.contains(needle)), "{needle:?} not in {errors:?}");
    }

    #[test]
    fn the_fixture_is_admitted_and_so_is_scaling_l2() {
        admit(&demo(), None).unwrap();
        let scaled = with(|v| v["spec"]["l2"]["replicas"] = json!(5));
        admit(&scaled, Some(&demo())).unwrap();
        let delete = with(|v| v["spec"]["deletionPolicy"] = json!("Delete"));
        admit(&delete, Some(&demo())).unwrap();
    }

    #[test]
    fn l2_validators_must_not_exceed_l2_replicas() {
        let too_many = with(|v| {
            v["spec"]["l2"]["replicas"] = json!(2);
            v["spec"]["l2"]["validators"] = json!(3);
        });
        refused(admit(&too_many, None), "spec.l2.validators must be at most spec.l2.replicas");
        // Scaling L2 below its validators is refused too.
        let below = with(|v| {
            v["spec"]["l2"]["replicas"] = json!(3);
            v["spec"]["l2"]["validators"] = json!(3);
        });
        let scaled_down = with(|v| {
            v["spec"]["l2"]["replicas"] = json!(2);
            v["spec"]["l2"]["validators"] = json!(3);
        });
        refused(admit(&scaled_down, Some(&below)), "spec.l2.validators must be at most");
    }

    #[test]
    fn genesis_sizes_and_storage_are_immutable() {
        let old = demo();
        refused(admit(&with(|v| v["spec"]["l1"]["replicas"] = json!(7)), Some(&old)), "spec.l1.replicas is immutable");
        let more_validators = with(|v| {
            v["spec"]["l2"]["replicas"] = json!(3);
            v["spec"]["l2"]["validators"] = json!(2);
        });
        refused(admit(&more_validators, Some(&old)), "spec.l2.validators is immutable");
        let bigger = with(|v| v["spec"]["l1"]["storage"] = json!({"size": "20Gi"}));
        refused(admit(&bigger, Some(&old)), "spec.l1.storage is immutable");
        let class = with(|v| v["spec"]["l2"]["storage"] = json!({"size": "10Gi", "storageClassName": "fast"}));
        refused(admit(&class, Some(&old)), "spec.l2.storage is immutable");
    }

    #[test]
    fn consensus_timeouts_are_bounded() {
        let fine = with(|v| v["spec"]["consensus"] = json!({"l1": {"timeoutCommit": "50ms", "timeoutPropose": "1m"}}));
        admit(&fine, None).unwrap();
        let slow = with(|v| v["spec"]["consensus"] = json!({"l2": {"timeoutPropose": "90s"}}));
        refused(admit(&slow, None), "must be at most 60s");
    }

    #[test]
    fn names_must_fit_child_object_names() {
        refused(admit(&with(|v| v["metadata"]["name"] = json!("a".repeat(41))), None), "metadata.name");
        refused(admit(&with(|v| v["metadata"]["name"] = json!("9lives")), None), "metadata.name");
        admit(&with(|v| v["metadata"]["name"] = json!("a".repeat(40))), None).unwrap();
    }

    /// The committed CRD is what the code generates (CI also diffs it after `bftws-operator crd`).
    #[test]
    fn committed_crd_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CRD_PATH);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == crd_yaml().unwrap(),
            "{CRD_PATH} is stale: run `cargo run -p bftws-operator -- crd --output {CRD_PATH}`"
        );
    }
}
