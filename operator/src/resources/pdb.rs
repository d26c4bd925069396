//! PodDisruptionBudgets: voluntary disruptions (drains) may take at most f validators of a
//! layer, so it keeps its quorum. With f = 0 (fewer than 4 validators) this blocks every
//! eviction of that layer's validators; for L1 the `QuorumAtRisk` condition says so. L2's full
//! nodes (ordinals from `spec.l2.validators` up) are not in the budget: losing some costs
//! capacity, never consensus.

use bftws_home::cluster::ClusterLayer;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{labels, owned_meta};
use crate::reconcile::validate::ValidatedBftws;

pub fn build_l1_pdb(v: &ValidatedBftws) -> PodDisruptionBudget {
    let layer = ClusterLayer::L1;
    let f = v.layers.l1.fault_tolerance();
    PodDisruptionBudget {
        metadata: owned_meta(v, v.names.l1_pdb(), labels::layer(&v.names.name, layer)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(i32::try_from(f).unwrap_or(i32::MAX))),
            selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(&v.names.name, layer)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// L2's validators, by the pod-index label the StatefulSet controller sets (validators are the
/// first ordinals).
pub fn build_l2_pdb(v: &ValidatedBftws) -> PodDisruptionBudget {
    let layer = ClusterLayer::L2;
    let plan = &v.layers.l2;
    PodDisruptionBudget {
        metadata: owned_meta(v, v.names.l2_pdb(), labels::layer(&v.names.name, layer)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(i32::try_from(plan.fault_tolerance()).unwrap_or(i32::MAX))),
            selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(&v.names.name, layer)),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: labels::POD_INDEX.to_owned(),
                    operator: "In".to_owned(),
                    values: Some((0..plan.validators).map(|ordinal| ordinal.to_string()).collect()),
                }]),
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
