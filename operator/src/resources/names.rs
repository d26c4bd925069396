//! Every name the operator gives an object, a host or a chain, in one place.
//!
//! `NAME` is the BftWebService's `metadata.name` (a DNS label of at most
//! [`crate::crd::MAX_NAME_LEN`] characters, enforced at admission), so every name here stays a
//! valid DNS label.

use bftws_home::cluster::{ClusterLayer, HTTP_PORT};
use sha2::{Digest, Sha256};

/// CometBFT refuses chain ids longer than this.
const MAX_CHAIN_ID_LEN: usize = 50;

/// The names derived from one BftWebService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub name: String,
    pub namespace: String,
}

impl Names {
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self { name: name.into(), namespace: namespace.into() }
    }

    fn layered(&self, layer: ClusterLayer, suffix: &str) -> String {
        format!("{}-{}{suffix}", self.name, layer.as_str())
    }

    /// StatefulSet `NAME-l1` / `NAME-l2`; its pods are `NAME-l1-<i>`.
    pub fn statefulset(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "")
    }

    pub fn pod(&self, layer: ClusterLayer, ordinal: u32) -> String {
        self.layered(layer, &format!("-{ordinal}"))
    }

    /// The StatefulSet's governing Service (headless, publishes not-ready addresses).
    pub fn headless_service(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "-headless")
    }

    /// The load-balanced client API Service of a layer.
    pub fn api_service(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "-api")
    }

    /// The ClusterIP Service of one L1 pod (named like the pod): a stable p2p and API address.
    pub fn l1_pod_service(&self, ordinal: u32) -> String {
        self.pod(ClusterLayer::L1, ordinal)
    }

    /// Secret with the CometBFT and origin keys of every ordinal of a layer.
    pub fn keys_secret(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "-keys")
    }

    pub fn commit_key_secret(&self) -> String {
        format!("{}-l2-commit-key", self.name)
    }

    /// The API tokens Secret the operator creates when `spec.app.tokensSecret` is absent.
    pub fn managed_tokens_secret(&self) -> String {
        format!("{}-api-tokens", self.name)
    }

    pub fn genesis_config_map(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "-genesis")
    }

    /// ConfigMap holding the layer manifest (`layer.json`).
    pub fn layer_config_map(&self, layer: ClusterLayer) -> String {
        self.layered(layer, "-layer")
    }

    pub fn l1_pdb(&self) -> String {
        self.statefulset(ClusterLayer::L1)
    }

    pub fn l2_pdb(&self) -> String {
        self.statefulset(ClusterLayer::L2)
    }

    /// The address other nodes dial for p2p: the L1 pod's own ClusterIP Service (CometBFT
    /// resolves a peer's name once, at start, so it must not change when the pod is
    /// rescheduled), or the L2 pod's DNS name under the headless Service (L2 pods come and go
    /// with scaling; their names resolve as soon as the pod exists).
    pub fn p2p_host(&self, layer: ClusterLayer, ordinal: u32) -> String {
        match layer {
            ClusterLayer::L1 => format!("{}.{}.svc", self.l1_pod_service(ordinal), self.namespace),
            ClusterLayer::L2 => {
                format!("{}.{}.{}.svc", self.pod(layer, ordinal), self.headless_service(layer), self.namespace)
            }
        }
    }

    /// L1 API base URLs for the L2 committer, tried in turn: the load-balanced Service first,
    /// then every L1 pod's own Service.
    pub fn l1_api_urls(&self, l1_replicas: u32) -> Vec<String> {
        let url = |host: String| format!("http://{host}.{}.svc:{HTTP_PORT}", self.namespace);
        std::iter::once(url(self.api_service(ClusterLayer::L1)))
            .chain((0..l1_replicas).map(|ordinal| url(self.l1_pod_service(ordinal))))
            .collect()
    }

    /// `<namespace>-<name>-l1`: unique per deployment in a cluster, within CometBFT's 50
    /// characters and `[a-z0-9-]`. Too long a prefix is cut and suffixed with a hash of the
    /// full one, so two deployments never share a chain id.
    pub fn chain_id(&self, layer: ClusterLayer) -> String {
        let prefix: String = format!("{}-{}", self.namespace, self.name)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let suffix = format!("-{}", layer.as_str());
        if prefix.len() + suffix.len() <= MAX_CHAIN_ID_LEN {
            return format!("{prefix}{suffix}");
        }
        let hash = hex::encode(&Sha256::digest(prefix.as_bytes())[..4]);
        let keep = MAX_CHAIN_ID_LEN - suffix.len() - hash.len() - 1;
        format!("{}-{hash}{suffix}", &prefix[..keep])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_deployment() {
        let names = Names::new("demo-ws", "shop");
        assert_eq!(names.statefulset(ClusterLayer::L2), "demo-ws-l2");
        assert_eq!(names.pod(ClusterLayer::L1, 3), "demo-ws-l1-3");
        assert_eq!(names.keys_secret(ClusterLayer::L1), "demo-ws-l1-keys");
        assert_eq!(names.p2p_host(ClusterLayer::L1, 0), "demo-ws-l1-0.shop.svc");
        assert_eq!(names.p2p_host(ClusterLayer::L2, 1), "demo-ws-l2-1.demo-ws-l2-headless.shop.svc");
        assert_eq!(
            names.l1_api_urls(2),
            [
                "http://demo-ws-l1-api.shop.svc:8080",
                "http://demo-ws-l1-0.shop.svc:8080",
                "http://demo-ws-l1-1.shop.svc:8080"
            ]
        );
        assert_eq!(names.chain_id(ClusterLayer::L1), "shop-demo-ws-l1");
    }

    #[test]
    fn long_chain_ids_are_cut_and_stay_unique() {
        let a = Names::new("a".repeat(40), "n".repeat(63)).chain_id(ClusterLayer::L2);
        let b = Names::new(format!("{}b", "a".repeat(39)), "n".repeat(63)).chain_id(ClusterLayer::L2);
        assert_eq!(a.len(), 50);
        assert!(a.ends_with("-l2"));
        assert_ne!(a, b);
    }
}
