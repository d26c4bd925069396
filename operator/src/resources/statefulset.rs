//! StatefulSets `NAME-l1` and `NAME-l2`: one pod per node.
//!
//! A pod runs, in order:
//! 1. init container `init`: `bftws-node init` writes the CometBFT home, the origin key and the
//!    node config onto the pod's volume from the mounted keys, genesis and layer manifest (the
//!    contract of [`bftws_home::cluster`]); it never overwrites `priv_validator_state.json`.
//! 2. `app`: `bftws-node run`, the ABCI application and HTTP API. It is a native sidecar (an init
//!    container with `restartPolicy: Always`) so that it is started, and its ABCI socket listens,
//!    before `cometbft` starts (CometBFT gives up at once when its ABCI app is not there), and so
//!    that it stops only after `cometbft` on shutdown. Its readiness (`/readyz`: ABCI connected
//!    and CometBFT caught up) is the pod's readiness.
//! 3. `cometbft`: `cometbft start`, talking to `app` over a Unix socket in a shared emptyDir.
//!
//! Only `init` mounts the keys Secret. `Parallel` pod management: validators must all start for
//! the chain to make blocks; ordered start would wait forever for the first pod's readiness.

use std::collections::BTreeMap;

use bftws_home::cluster::{
    self, ClusterLayer, LayerManifest, COMETBFT_BINARY, COMETBFT_HOME, DATA_DIR, HTTP_PORT, NODE_BINARY,
    NODE_CONFIG_FILE, P2P_PORT, PROMETHEUS_PORT,
};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config_map::restart_hash;
use super::{labels, owned_meta, BuildError};
use crate::crd::DeletionPolicy;
use crate::reconcile::validate::ValidatedBftws;

/// The user and group the node image runs as (non-root); the volume is made writable for it.
pub const RUN_AS: i64 = 10001;
/// Pod template annotation: [`restart_hash`] of the layer manifest.
pub const CONFIG_HASH_ANNOTATION: &str = "bftws.io/config-hash";

const DATA_VOLUME: &str = "data";
const SOCKET_VOLUME: &str = "abci-socket";
const KEYS_VOLUME: &str = "keys";
const GENESIS_VOLUME: &str = "genesis";
const LAYER_VOLUME: &str = "layer";
const TOKENS_VOLUME: &str = "tokens";
const COMMIT_KEY_VOLUME: &str = "commit-key";
const L1_GENESIS_VOLUME: &str = "l1-genesis";

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn secret_volume(name: &str, secret: String) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            // Group-readable: files belong to root with the pod's fsGroup, and the node runs as that group.
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn config_map_volume(name: &str, config_map: String) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource { name: config_map, ..ConfigMapVolumeSource::default() }),
        ..Volume::default()
    }
}

fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Restricted-profile container security: no privilege, read-only root, no capabilities.
fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
        ..SecurityContext::default()
    }
}

/// Requests of a container when its layer's `resources` is absent, so pods are never
/// BestEffort (the first evicted under pressure): about what an idle 4-1 pod uses (5 pods took
/// 166 MiB and a quarter of a core on a real node), no limits.
fn default_resources(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])),
        ..ResourceRequirements::default()
    }
}

fn base_container(v: &ValidatedBftws, name: &str, command: &str, args: &[&str]) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(v.image.clone()),
        image_pull_policy: v.image_pull_policy.clone(),
        command: Some(vec![command.to_owned()]),
        args: Some(args.iter().map(|arg| (*arg).to_owned()).collect()),
        security_context: Some(restricted()),
        ..Container::default()
    }
}

fn init_container(v: &ValidatedBftws) -> Container {
    let ordinal = format!("$({})", cluster::ORDINAL_ENV);
    Container {
        env: Some(vec![EnvVar {
            name: cluster::ORDINAL_ENV.to_owned(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.labels['{}']", labels::POD_INDEX),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, DATA_DIR, false),
            mount(KEYS_VOLUME, cluster::KEYS_DIR, true),
            mount(GENESIS_VOLUME, cluster::GENESIS_DIR, true),
            mount(LAYER_VOLUME, cluster::MANIFEST_DIR, true),
        ]),
        ..base_container(v, "init", NODE_BINARY, &["init", "--manifest", cluster::MANIFEST_FILE, "--ordinal", &ordinal])
    }
}

fn app_container(v: &ValidatedBftws, layer: ClusterLayer) -> Container {
    let mut mounts = vec![
        mount(DATA_VOLUME, DATA_DIR, false),
        mount(SOCKET_VOLUME, cluster::SOCKET_DIR, false),
        mount(TOKENS_VOLUME, cluster::TOKENS_DIR, true),
    ];
    if layer == ClusterLayer::L2 {
        mounts.push(mount(COMMIT_KEY_VOLUME, cluster::COMMIT_KEY_DIR, true));
        // The trust anchor of L1 receipts: L2 records only those whose proof verifies against it.
        mounts.push(mount(L1_GENESIS_VOLUME, cluster::L1_GENESIS_DIR, true));
    }
    Container {
        // A native sidecar: see the module doc.
        restart_policy: Some("Always".to_owned()),
        ports: Some(vec![container_port("http", HTTP_PORT)]),
        // /healthz answers once the process listens; allow two minutes for a store to open.
        startup_probe: Some(http_probe("/healthz", 1, 120)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 2, 3)),
        resources: Some(v.layers.get(layer).resources.clone().unwrap_or_else(|| default_resources("50m", "64Mi"))),
        volume_mounts: Some(mounts),
        ..base_container(v, "app", NODE_BINARY, &["run", "--config", NODE_CONFIG_FILE])
    }
}

fn cometbft_container(v: &ValidatedBftws, layer: ClusterLayer) -> Container {
    Container {
        ports: Some(vec![container_port("p2p", P2P_PORT), container_port("metrics", PROMETHEUS_PORT)]),
        resources: Some(v.layers.get(layer).resources.clone().unwrap_or_else(|| default_resources("100m", "128Mi"))),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, DATA_DIR, false),
            mount(SOCKET_VOLUME, cluster::SOCKET_DIR, false),
        ]),
        ..base_container(v, "cometbft", COMETBFT_BINARY, &["start", "--home", COMETBFT_HOME])
    }
}

fn volumes(v: &ValidatedBftws, layer: ClusterLayer) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: SOCKET_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        secret_volume(KEYS_VOLUME, v.names.keys_secret(layer)),
        config_map_volume(GENESIS_VOLUME, v.names.genesis_config_map(layer)),
        config_map_volume(LAYER_VOLUME, v.names.layer_config_map(layer)),
        secret_volume(TOKENS_VOLUME, v.tokens.secret.clone()),
    ];
    if layer == ClusterLayer::L2 {
        volumes.push(secret_volume(COMMIT_KEY_VOLUME, v.names.commit_key_secret()));
        volumes.push(config_map_volume(L1_GENESIS_VOLUME, v.names.genesis_config_map(ClusterLayer::L1)));
    }
    volumes
}

/// Spread a layer's pods evenly over zones and over nodes, as far as the cluster allows: one
/// zone or machine failing should cost as few validators as possible. `ScheduleAnyway`: a
/// cluster with fewer zones or nodes than pods still runs them all.
fn spread(v: &ValidatedBftws, layer: ClusterLayer) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(&v.names.name, layer)),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

fn volume_claim(v: &ValidatedBftws, layer: ClusterLayer) -> PersistentVolumeClaim {
    let storage = &v.layers.get(layer).storage;
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(labels::layer(&v.names.name, layer)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), storage.size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

pub fn build_statefulset(v: &ValidatedBftws, manifest: &LayerManifest) -> Result<StatefulSet, BuildError> {
    let layer = manifest.layer;
    let plan = v.layers.get(layer);
    let when_deleted = match v.deletion_policy {
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::layer(&v.names.name, layer)),
            annotations: Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), restart_hash(manifest)?)])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(vec![init_container(v), app_container(v, layer)]),
            containers: vec![cometbft_container(v, layer)],
            volumes: Some(volumes(v, layer)),
            topology_spread_constraints: Some(spread(v, layer)),
            priority_class_name: v.priority_class_name.clone(),
            // Dozens of per-pod Services would otherwise each add environment variables.
            enable_service_links: Some(false),
            automount_service_account_token: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS),
                run_as_group: Some(RUN_AS),
                fs_group: Some(RUN_AS),
                fs_group_change_policy: Some("OnRootMismatch".to_owned()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
    };
    Ok(StatefulSet {
        metadata: owned_meta(v, v.names.statefulset(layer), labels::layer(&v.names.name, layer)),
        spec: StatefulSetSpec {
            replicas: Some(i32::try_from(plan.replicas).unwrap_or(i32::MAX)),
            service_name: Some(v.names.headless_service(layer)),
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(labels::pod_selector(&v.names.name, layer)),
                ..LabelSelector::default()
            },
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(when_deleted.to_owned()),
                // Scaling L2 down keeps the volumes: scaling back up resumes without a resync.
                when_scaled: Some("Retain".to_owned()),
            }),
            template,
            volume_claim_templates: Some(vec![volume_claim(v, layer)]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    })
}
