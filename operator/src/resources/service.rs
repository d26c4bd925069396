//! Services: per layer a headless governing Service and a client API Service, plus one
//! ClusterIP Service per L1 pod.
//!
//! Everything that carries p2p traffic publishes not-ready addresses: a node is ready only once
//! it has caught up, which it cannot do before its peers can reach it.

use bftws_home::cluster::{ClusterLayer, HTTP_PORT, P2P_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{labels, owned_meta};
use crate::reconcile::validate::ValidatedBftws;

fn port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        app_protocol: (name == "http").then(|| "http".to_owned()),
        ..ServicePort::default()
    }
}

fn p2p_and_http() -> Vec<ServicePort> {
    vec![port("p2p", P2P_PORT), port("http", HTTP_PORT)]
}

/// `NAME-<layer>-headless`: the StatefulSet's governing Service; gives L2 pods their stable DNS
/// names (`NAME-l2-<i>.NAME-l2-headless.<ns>.svc`).
pub fn build_headless_service(v: &ValidatedBftws, layer: ClusterLayer) -> Service {
    Service {
        metadata: owned_meta(v, v.names.headless_service(layer), labels::layer(&v.names.name, layer)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels::pod_selector(&v.names.name, layer)),
            ports: Some(p2p_and_http()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `NAME-<layer>-api`: clients' entry point, load-balanced over ready pods only. A client stays
/// on one pod (ClientIP affinity): each step of a session reads what the previous one wrote,
/// and another replica may still be a block behind the one that answered.
pub fn build_api_service(v: &ValidatedBftws, layer: ClusterLayer) -> Service {
    Service {
        metadata: owned_meta(v, v.names.api_service(layer), labels::layer(&v.names.name, layer)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            session_affinity: Some("ClientIP".to_owned()),
            selector: Some(labels::pod_selector(&v.names.name, layer)),
            ports: Some(vec![port("http", HTTP_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `NAME-l1-<i>`: one L1 pod's stable virtual IP. CometBFT resolves persistent peers once at
/// start; a pod IP changes when the pod is rescheduled, a Service IP does not.
pub fn build_l1_pod_service(v: &ValidatedBftws, ordinal: u32) -> Service {
    let layer = ClusterLayer::L1;
    let mut selector = labels::pod_selector(&v.names.name, layer);
    selector.insert(labels::POD_NAME.to_owned(), v.names.pod(layer, ordinal));
    Service {
        metadata: owned_meta(v, v.names.l1_pod_service(ordinal), labels::layer(&v.names.name, layer)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(p2p_and_http()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Every Service of a deployment, L1 first.
pub fn build_services(v: &ValidatedBftws) -> Vec<Service> {
    let mut services = Vec::new();
    for layer in crate::LAYERS {
        services.push(build_headless_service(v, layer));
        services.push(build_api_service(v, layer));
        if layer == ClusterLayer::L1 {
            services.extend((0..v.layers.l1.replicas).map(|ordinal| build_l1_pod_service(v, ordinal)));
        }
    }
    services
}
