//! The L1 PodDisruptionBudget: voluntary disruptions (drains) may take at most f validators, so
//! L1 keeps its quorum. With f = 0 (fewer than 4 validators) this blocks every eviction; the
//! `QuorumAtRisk` condition says so.

use bftws_home::cluster::ClusterLayer;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
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
