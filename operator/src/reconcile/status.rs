//! Step 6: the status. [`compute`] and [`compute_invalid`] are pure (old status + what was
//! observed and applied + the time → new status); [`patch`] writes it (client required) and is
//! skipped when nothing changed.
//!
//! Conditions always come in the order Ready, Progressing, Degraded, QuorumAtRisk, NodesFailing,
//! and a
//! condition's `lastTransitionTime` moves only when its status flips, so an unchanged
//! deployment produces an identical status and no write.

use bftws_home::cluster::ClusterLayer;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;

use crate::crd::{BftWebService, BftWebServiceStatus, LayerStatus};
use crate::reconcile::validate::{Invalid, LayerPlan, ValidatedBftws};
use crate::reconcile::Happening;
use crate::resources::labels;
use crate::{PerLayer, FIELD_MANAGER};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const QUORUM_AT_RISK: &str = "QuorumAtRisk";
pub const NODES_FAILING: &str = "NodesFailing";

#[derive(Debug, thiserror::Error)]
#[error("writing the status of {name}: {source}")]
pub struct StatusError {
    name: String,
    #[source]
    source: kube::Error,
}

/// What the status is computed from.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub v: &'a ValidatedBftws,
    pub statefulsets: PerLayer<Option<&'a StatefulSet>>,
    pub pods: &'a [Pod],
    pub genesis_hashes: PerLayer<Option<&'a str>>,
    /// Heights reported by the layers now; `None` keeps the height status showed before.
    pub heights: PerLayer<Option<i64>>,
}

/// One pod's place and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PodState {
    layer: ClusterLayer,
    ordinal: u32,
    ready: bool,
}

fn pod_state(pod: &Pod) -> Option<PodState> {
    let pod_labels = pod.labels();
    let layer = match pod_labels.get(labels::LAYER).map(String::as_str) {
        Some("l1") => ClusterLayer::L1,
        Some("l2") => ClusterLayer::L2,
        _ => return None,
    };
    let ordinal = pod_labels.get(labels::POD_INDEX)?.parse().ok()?;
    let ready = pod
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let terminating = pod.metadata.deletion_timestamp.is_some();
    Some(PodState { layer, ordinal, ready: ready && !terminating })
}

/// The containers of a pod that crash-loop (the kubelet waits before restarting them), each as
/// `pod/container (how it last ended)`.
fn crash_looping(pod: &Pod) -> Vec<String> {
    let Some(status) = &pod.status else { return Vec::new() };
    let statuses = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    statuses
        .filter(|c| {
            c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        })
        .map(|c| {
            let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            let ended = match last {
                Some(t) => format!(
                    "exit code {}{}",
                    t.exit_code,
                    t.reason.as_ref().map(|r| format!(", {r}")).unwrap_or_default()
                ),
                None => "no exit recorded".to_owned(),
            };
            format!("{}/{} ({ended}, {} restarts)", pod.name_any(), c.name, c.restart_count)
        })
        .collect()
}

/// Ready pods of a layer, and how many of them are validators.
fn readiness(pods: &[Pod], plan: &LayerPlan) -> (u32, u32) {
    let states: Vec<PodState> = pods
        .iter()
        .filter_map(pod_state)
        .filter(|s| s.layer == plan.layer && s.ready && s.ordinal < plan.replicas)
        .collect();
    let ready = u32::try_from(states.len()).unwrap_or(u32::MAX);
    let validators = u32::try_from(states.iter().filter(|s| s.ordinal < plan.validators).count()).unwrap_or(u32::MAX);
    (ready, validators)
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn layer_status(obs: &Observation<'_>, layer: ClusterLayer, previous_height: i64) -> LayerStatus {
    let plan = obs.v.layers.get(layer);
    let (ready, _) = readiness(obs.pods, plan);
    let replicas =
        obs.statefulsets.get(layer).and_then(|sts| sts.status.as_ref()).map(|status| status.replicas).unwrap_or(0);
    LayerStatus {
        replicas,
        ready_replicas: int(ready),
        ready: format!("{ready}/{}", plan.replicas),
        validators: int(plan.validators),
        fault_tolerance: int(plan.fault_tolerance()),
        height: (*obs.heights.get(layer)).unwrap_or(previous_height),
        chain_id: plan.chain_id.clone(),
        genesis_hash: obs.genesis_hashes.get(layer).map(str::to_owned),
        selector: labels::pod_selector_string(&obs.v.names.name, layer),
    }
}

/// Why a StatefulSet is still rolling out, if it is.
fn rolling(sts: Option<&StatefulSet>, plan: &LayerPlan, ready: u32) -> Option<String> {
    let name = plan.layer.as_str();
    let Some(sts) = sts else { return Some(format!("{name} StatefulSet not created yet")) };
    let status = sts.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < sts.metadata.generation.unwrap_or(0) {
        return Some(format!("{name} StatefulSet change not yet observed"));
    }
    if status.update_revision.is_some() && status.current_revision != status.update_revision {
        return Some(format!(
            "{name} pods updating ({}/{} updated)",
            status.updated_replicas.unwrap_or(0),
            plan.replicas
        ));
    }
    if ready < plan.replicas {
        return Some(format!("{name} {ready}/{} pods ready", plan.replicas));
    }
    None
}

/// A condition, keeping the old `lastTransitionTime` unless the status flips.
fn condition(
    old: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

pub fn compute(old: Option<&BftWebServiceStatus>, obs: &Observation<'_>, now: Timestamp) -> BftWebServiceStatus {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let v = obs.v;
    let (l1, l2) = (&v.layers.l1, &v.layers.l2);
    let (l1_ready, l1_validators) = readiness(obs.pods, l1);
    let (l2_ready, l2_validators) = readiness(obs.pods, l2);
    let cond =
        |type_, status, reason, message| condition(old_conditions, type_, status, reason, message, obs.generation, now);

    let serving = l1_validators >= l1.quorum() && l2_validators >= l2.quorum();
    let summary = format!(
        "L1 {l1_validators}/{} validators ready (quorum {}); L2 {l2_validators}/{} validators ready (quorum {}), {l2_ready}/{} nodes ready",
        l1.validators,
        l1.quorum(),
        l2.validators,
        l2.quorum(),
        l2.replicas
    );
    let ready = if serving {
        cond(READY, true, "QuorumReached", summary.clone())
    } else {
        cond(READY, false, "QuorumNotReached", summary.clone())
    };

    let rollout: Vec<String> = [rolling(obs.statefulsets.l1, l1, l1_ready), rolling(obs.statefulsets.l2, l2, l2_ready)]
        .into_iter()
        .flatten()
        .collect();
    let progressing = if rollout.is_empty() {
        cond(PROGRESSING, false, "RolledOut", "every pod of both layers is up to date and ready".to_owned())
    } else {
        cond(PROGRESSING, true, "RollingOut", rollout.join("; "))
    };
    let degraded = cond(DEGRADED, false, "AsExpected", "the spec is valid and applied".to_owned());

    let f = l1.fault_tolerance();
    let quorum_at_risk = if f == 0 {
        cond(
            QUORUM_AT_RISK,
            true,
            "NoFaultTolerance",
            format!(
                "L1 has {} validators: f = 0, losing any one halts L1; its PodDisruptionBudget (maxUnavailable 0) \
                 blocks voluntary evictions such as node drains. Use at least 4 validators to tolerate a fault",
                l1.validators
            ),
        )
    } else if l1_validators < l1.quorum() {
        cond(
            QUORUM_AT_RISK,
            true,
            "QuorumLost",
            format!("L1 {l1_validators}/{} validators ready, below quorum {}", l1.validators, l1.quorum()),
        )
    } else if l1_validators == l1.quorum() {
        cond(
            QUORUM_AT_RISK,
            true,
            "NoSpareValidator",
            format!("L1 {l1_validators}/{} validators ready: one more failure halts L1", l1.validators),
        )
    } else {
        cond(
            QUORUM_AT_RISK,
            false,
            "Tolerating",
            format!(
                "L1 {l1_validators}/{} validators ready; tolerates {} more failures",
                l1.validators,
                l1_validators - l1.quorum()
            ),
        )
    };

    let failing: Vec<String> = obs.pods.iter().flat_map(crash_looping).collect();
    let nodes_failing = if failing.is_empty() {
        cond(NODES_FAILING, false, "NoneCrashLooping", "no container of the deployment is crash-looping".to_owned())
    } else {
        cond(
            NODES_FAILING,
            true,
            "CrashLooping",
            format!(
                "crash-looping: {}; see `kubectl logs --previous` of each (a validator whose data is corrupt is \
                 re-synced from its peers by deleting its volume claim and pod: its keys stay in the keys Secret)",
                failing.join("; ")
            ),
        )
    };

    BftWebServiceStatus {
        observed_generation: obs.generation,
        conditions: vec![ready, progressing, degraded, quorum_at_risk, nodes_failing],
        l1: layer_status(obs, ClusterLayer::L1, old.map(|s| s.l1.height).unwrap_or(0)),
        l2: layer_status(obs, ClusterLayer::L2, old.map(|s| s.l2.height).unwrap_or(0)),
    }
}

/// The status of a spec that cannot be reconciled: `Degraded` with the reason, nothing else
/// claimed; the layers keep what was last observed.
pub fn compute_invalid(
    old: Option<&BftWebServiceStatus>,
    generation: Option<i64>,
    invalid: &Invalid,
    now: Timestamp,
) -> BftWebServiceStatus {
    let old = old.cloned().unwrap_or_default();
    let keep = |type_: &str, default_reason: &str| {
        old.conditions.iter().find(|c| c.type_ == type_).cloned().unwrap_or_else(|| Condition {
            type_: type_.to_owned(),
            status: "Unknown".to_owned(),
            reason: default_reason.to_owned(),
            message: "not reconciled: see Degraded".to_owned(),
            observed_generation: generation,
            last_transition_time: Time(now),
        })
    };
    let waiting = match invalid.retry_after {
        None => "reconciling waits for the spec to change".to_owned(),
        Some(after) => format!("looking again in {}s", after.as_secs()),
    };
    BftWebServiceStatus {
        observed_generation: generation,
        conditions: vec![
            keep(READY, "NotReconciled"),
            condition(
                &old.conditions,
                PROGRESSING,
                false,
                invalid.reason,
                format!("blocked: {waiting}"),
                generation,
                now,
            ),
            condition(&old.conditions, DEGRADED, true, invalid.reason, invalid.message.clone(), generation, now),
            keep(QUORUM_AT_RISK, "NotReconciled"),
            keep(NODES_FAILING, "NotReconciled"),
        ],
        l1: old.l1,
        l2: old.l2,
    }
}

/// Events for condition flips worth a person's attention (Progressing flips with every rollout
/// and pod restart: too noisy for events).
pub fn transitions(old: Option<&BftWebServiceStatus>, new: &BftWebServiceStatus) -> Vec<Happening> {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut happened = Vec::new();
    for condition in new.conditions.iter().filter(|c| c.type_ != PROGRESSING) {
        let before = old_conditions.iter().find(|c| c.type_ == condition.type_).map(|c| c.status.as_str());
        let now_true = condition.status == "True";
        let flipped = match before {
            Some(before) => before != condition.status,
            // First status: only a problem with the spec is news.
            None => condition.type_ == DEGRADED && now_true,
        };
        if flipped && condition.status != "Unknown" {
            happened.push(Happening::ConditionChanged {
                type_: condition.type_.clone(),
                status: now_true,
                reason: condition.reason.clone(),
                message: condition.message.clone(),
            });
        }
    }
    happened
}

/// Writes the status with server-side apply, unless it is unchanged. An object deleted while it
/// was being reconciled has no status to write: that is not an error.
pub async fn patch(client: &Client, obj: &BftWebService, status: &BftWebServiceStatus) -> Result<bool, StatusError> {
    if obj.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let name = obj.name_any();
    let api: Api<BftWebService> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let body = json!({"apiVersion": "bftws.io/v1alpha1", "kind": "BftWebService", "status": status});
    match api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(false),
        Err(source) => Err(StatusError { name, source }),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::fixtures::{demo_ws, fixed_now, validated};

    fn pod(layer: ClusterLayer, ordinal: u32, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("demo-ws-{}-{ordinal}", layer.as_str())),
                labels: Some(
                    [
                        (labels::LAYER.to_owned(), layer.as_str().to_owned()),
                        (labels::POD_INDEX.to_owned(), ordinal.to_string()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn settled(replicas: i32) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta { generation: Some(1), ..ObjectMeta::default() },
            status: Some(StatefulSetStatus {
                observed_generation: Some(1),
                replicas,
                ready_replicas: Some(replicas),
                updated_replicas: Some(replicas),
                current_revision: Some("r1".to_owned()),
                update_revision: Some("r1".to_owned()),
                ..StatefulSetStatus::default()
            }),
            ..StatefulSet::default()
        }
    }

    /// The 4 L1 pods (the first `l1_ready` of them ready) and L2's single validator, ready.
    fn pods_with(l1_ready: u32) -> Vec<Pod> {
        let mut pods: Vec<Pod> = (0..4).map(|i| pod(ClusterLayer::L1, i, i < l1_ready)).collect();
        pods.push(pod(ClusterLayer::L2, 0, true));
        pods
    }

    /// L1 with `l1_ready` of its 4 validators ready, L2's single validator ready.
    fn status_with(old: Option<&BftWebServiceStatus>, l1_ready: u32, now: Timestamp) -> BftWebServiceStatus {
        status_of(old, &pods_with(l1_ready), now)
    }

    /// The status of the settled 4-1 deployment with these pods.
    fn status_of(old: Option<&BftWebServiceStatus>, pods: &[Pod], now: Timestamp) -> BftWebServiceStatus {
        let v = validated(&demo_ws());
        let (l1, l2) = (settled(4), settled(1));
        let obs = Observation {
            generation: Some(1),
            v: &v,
            statefulsets: PerLayer { l1: Some(&l1), l2: Some(&l2) },
            pods,
            genesis_hashes: PerLayer { l1: Some("aa"), l2: Some("bb") },
            heights: PerLayer { l1: Some(120), l2: None },
        };
        compute(old, &obs, now)
    }

    #[test]
    fn a_crash_looping_container_is_flagged_with_how_it_ended_and_an_event() {
        use k8s_openapi::api::core::v1::{
            ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        };
        let healthy = status_with(None, 4, fixed_now());
        assert_eq!(get(&healthy, NODES_FAILING).status, "False");
        let mut pods = pods_with(4);
        pods[2].status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "app".to_owned(),
            restart_count: 7,
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some("CrashLoopBackOff".to_owned()), message: None }),
                ..ContainerState::default()
            }),
            last_state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 1,
                    reason: Some("Error".to_owned()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        let failing = status_of(Some(&healthy), &pods, fixed_now());
        let flagged = get(&failing, NODES_FAILING);
        assert_eq!((flagged.status.as_str(), flagged.reason.as_str()), ("True", "CrashLooping"));
        assert!(flagged.message.contains("demo-ws-l1-2/app (exit code 1, Error, 7 restarts)"), "{}", flagged.message);
        let events = transitions(Some(&healthy), &failing);
        assert!(events
            .iter()
            .any(|e| matches!(e, Happening::ConditionChanged { type_, status: true, .. } if type_ == NODES_FAILING)));
    }

    fn get<'a>(status: &'a BftWebServiceStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_fully_ready_deployment_is_ready_settled_and_tolerating() {
        let status = status_with(None, 4, fixed_now());
        assert_eq!(get(&status, READY).status, "True");
        assert_eq!(get(&status, PROGRESSING).status, "False");
        assert_eq!(get(&status, DEGRADED).status, "False");
        assert_eq!(get(&status, QUORUM_AT_RISK).status, "False");
        assert_eq!(status.l1.ready, "4/4");
        assert_eq!(status.l1.fault_tolerance, 1);
        assert_eq!(status.l2.genesis_hash.as_deref(), Some("bb"));
    }

    #[test]
    fn losing_validators_puts_quorum_at_risk_then_loses_readiness() {
        let three = status_with(None, 3, fixed_now());
        assert_eq!(get(&three, READY).status, "True");
        assert_eq!(get(&three, QUORUM_AT_RISK).reason, "NoSpareValidator");
        let two = status_with(None, 2, fixed_now());
        assert_eq!(get(&two, READY).status, "False");
        assert_eq!(get(&two, QUORUM_AT_RISK).reason, "QuorumLost");
        assert_eq!(get(&two, PROGRESSING).status, "True");
    }

    #[test]
    fn last_transition_time_moves_only_on_a_flip() {
        let t0 = fixed_now();
        let later = Timestamp::from_second(t0.as_second() + 60).unwrap();
        let first = status_with(None, 4, t0);
        let same = status_with(Some(&first), 4, later);
        assert_eq!(first, same, "nothing changed, nothing moves");
        let flipped = status_with(Some(&first), 3, later);
        assert_eq!(get(&flipped, QUORUM_AT_RISK).last_transition_time, Time(later));
        assert_eq!(get(&flipped, READY).last_transition_time, Time(t0), "Ready stayed True");
        let events = transitions(Some(&first), &flipped);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], Happening::ConditionChanged { type_, status: true, .. } if type_ == QUORUM_AT_RISK)
        );
    }

    #[test]
    fn fewer_than_four_validators_have_no_fault_tolerance() {
        let mut obj = demo_ws();
        obj.spec.l1.replicas = 3;
        let v = validated(&obj);
        let pods: Vec<Pod> =
            (0..3).map(|i| pod(ClusterLayer::L1, i, true)).chain([pod(ClusterLayer::L2, 0, true)]).collect();
        let (l1, l2) = (settled(3), settled(1));
        let obs = Observation {
            generation: Some(1),
            v: &v,
            statefulsets: PerLayer { l1: Some(&l1), l2: Some(&l2) },
            pods: &pods,
            genesis_hashes: PerLayer { l1: None, l2: None },
            heights: PerLayer { l1: None, l2: None },
        };
        let status = compute(None, &obs, fixed_now());
        let risk = get(&status, QUORUM_AT_RISK);
        assert_eq!((risk.status.as_str(), risk.reason.as_str()), ("True", "NoFaultTolerance"));
        assert!(risk.message.contains("PodDisruptionBudget"), "{}", risk.message);
        assert_eq!(get(&status, READY).status, "True");
    }

    #[test]
    fn an_invalid_spec_is_degraded_and_keeps_what_was_observed() {
        let good = status_with(None, 4, fixed_now());
        let invalid = Invalid::spec("spec.l1.replicas is 7 but the existing l1 genesis has 4 validators");
        let status = compute_invalid(Some(&good), Some(2), &invalid, fixed_now());
        assert_eq!(get(&status, DEGRADED).status, "True");
        assert_eq!(get(&status, DEGRADED).message, invalid.message);
        assert_eq!(get(&status, READY), get(&good, READY));
        assert_eq!(status.l1, good.l1);
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn heights_come_from_the_layers_and_a_silent_layer_keeps_its_last_height() {
        let first = status_with(None, 4, fixed_now());
        assert_eq!((first.l1.height, first.l2.height), (120, 0));
        let mut old = first.clone();
        old.l2.height = 77;
        let next = status_with(Some(&old), 4, fixed_now());
        assert_eq!((next.l1.height, next.l2.height), (120, 77), "L2 did not answer: its height stays");
    }
}
