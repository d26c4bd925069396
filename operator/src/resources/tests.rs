//! Golden tests of the builders: every kind for the `demo-ws` fixture, as YAML. A diff here
//! changes what runs in clusters: review it like a manifest change.

use bftws_home::cluster::{ClusterLayer, LayerManifest};
use k8s_openapi::api::core::v1::Secret;

use super::*;
use crate::crd::DeletionPolicy;
use crate::fixtures::{demo_ws, keys, validated};

fn resources() -> Resources {
    let v = validated(&demo_ws());
    build(&v, &keys(&v)).unwrap()
}

/// Secrets hold key material: show which entries exist, not their bytes.
fn redacted(secret: &Secret) -> Secret {
    let mut secret = secret.clone();
    for value in secret.data.iter_mut().flat_map(|data| data.values_mut()) {
        *value = k8s_openapi::ByteString(b"<redacted>".to_vec());
    }
    secret
}

#[test]
fn statefulsets() {
    let resources = resources();
    insta::assert_yaml_snapshot!("statefulset_l1", resources.statefulsets.l1);
    insta::assert_yaml_snapshot!("statefulset_l2", resources.statefulsets.l2);
}

/// A priority class and a layer's own resources reach every pod of that layer; the other
/// layer keeps the default requests.
#[test]
fn priority_class_and_resources_reach_the_pods() {
    let mut obj = demo_ws();
    obj.spec.priority_class_name = Some("bftws-validators".to_owned());
    let wanted: k8s_openapi::api::core::v1::ResourceRequirements =
        serde_json::from_value(serde_json::json!({"requests": {"cpu": "2", "memory": "1Gi"}})).unwrap();
    obj.spec.l1.resources = Some(wanted.clone());
    let v = validated(&obj);
    let built = build(&v, &keys(&v)).unwrap();
    for (layer, statefulset) in [("l1", &built.statefulsets.l1), ("l2", &built.statefulsets.l2)] {
        let pod = statefulset.spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.priority_class_name.as_deref(), Some("bftws-validators"), "{layer}");
        let app = &pod.init_containers.as_ref().unwrap()[1];
        let requests = |c: &k8s_openapi::api::core::v1::Container| c.resources.clone().unwrap();
        if layer == "l1" {
            assert_eq!(requests(app), wanted);
            assert_eq!(requests(&pod.containers[0]), wanted);
        } else {
            assert_eq!(requests(app).requests.unwrap()["memory"].0, "64Mi");
            assert_eq!(requests(&pod.containers[0]).requests.unwrap()["memory"].0, "128Mi");
        }
    }
}

#[test]
fn services() {
    insta::assert_yaml_snapshot!(resources().services);
}

#[test]
fn l1_pdb() {
    insta::assert_yaml_snapshot!(resources().l1_pdb);
}

#[test]
fn l2_pdb() {
    insta::assert_yaml_snapshot!(resources().l2_pdb);
}

#[test]
fn layer_config_maps() {
    let resources = resources();
    insta::assert_yaml_snapshot!("layer_l1", resources.layer_config_maps.l1);
    insta::assert_yaml_snapshot!("layer_l2", resources.layer_config_maps.l2);
}

#[test]
fn geneses() {
    let resources = resources();
    insta::assert_yaml_snapshot!("genesis_l1", resources.genesis.l1.unwrap());
    insta::assert_yaml_snapshot!("genesis_l2", resources.genesis.l2.unwrap());
}

#[test]
fn secrets() {
    let v = validated(&demo_ws());
    let keys = keys(&v);
    insta::assert_yaml_snapshot!(
        "keys_l1",
        redacted(&secret::build_keys_secret(&v, ClusterLayer::L1, &keys.layers.l1))
    );
    insta::assert_yaml_snapshot!("commit_key", redacted(&secret::build_commit_key_secret(&v, &keys.commit)));
    insta::assert_yaml_snapshot!("tokens", secret::build_managed_tokens_secret(&v, "test-admin-token"));
}

#[test]
fn retained_objects_are_unowned_under_retain_and_owned_under_delete() {
    let mut obj = demo_ws();
    let retain = retained_objects(&validated(&obj));
    assert_eq!(retain.len(), 6);
    assert!(retain.iter().all(|r| r.owner_references.is_empty()));
    obj.spec.deletion_policy = DeletionPolicy::Delete;
    let v = validated(&obj);
    assert!(retained_objects(&v).iter().all(|r| r.owner_references == [v.owner.clone()]));
    let delete = build(&v, &keys(&v)).unwrap();
    let policy = delete.statefulsets.l2.spec.persistent_volume_claim_retention_policy.unwrap();
    assert_eq!(policy.when_deleted.as_deref(), Some("Delete"));
    assert_eq!(policy.when_scaled.as_deref(), Some("Retain"));
}

#[test]
fn builders_are_deterministic() {
    let (a, b) = (resources(), resources());
    assert_eq!(serde_json::to_value(&a.statefulsets.l1).unwrap(), serde_json::to_value(&b.statefulsets.l1).unwrap());
    assert_eq!(a.genesis, b.genesis);
    assert_eq!(a.layer_config_maps, b.layer_config_maps);
}

/// Every pod can build its home from what the operator mounts: the builders and
/// `bftws_home::cluster::pod_home` agree.
#[test]
fn every_pod_of_both_layers_can_build_its_home_from_the_mounts() {
    let v = validated(&demo_ws());
    let keys = keys(&v);
    let resources = build(&v, &keys).unwrap();
    for (layer, config_map) in resources.layer_config_maps.iter() {
        let data = config_map.data.as_ref().unwrap();
        let manifest = LayerManifest::from_json(&data[bftws_home::cluster::MANIFEST_KEY]).unwrap();
        let genesis = resources.genesis.get(layer).as_ref().unwrap().data.as_ref().unwrap()
            [bftws_home::cluster::GENESIS_KEY]
            .clone();
        let layer_keys = keys.layers.get(layer);
        for node in &manifest.nodes {
            let pair = &layer_keys.nodes[&node.ordinal];
            let files = bftws_home::PodKeyFiles {
                node_key_json: &pair.node.node_key_json(),
                priv_validator_key_json: &pair.validator.priv_validator_key_json(),
                origin_key_hex: layer_keys.origin[&node.ordinal].seed_hex(),
            };
            let home = bftws_home::pod_home(&manifest, node.ordinal, files, &genesis).unwrap();
            assert_eq!(home.config.persistent_peers.len(), manifest.nodes.len() - 1);
        }
    }
}

/// Scaling L2 changes the L2 manifest and StatefulSet replicas but not the pod template, so
/// running L2 pods are not restarted.
#[test]
fn scaling_l2_leaves_the_pod_template_alone() {
    let mut obj = demo_ws();
    let v = validated(&obj);
    let before = build(&v, &keys(&v)).unwrap();
    obj.spec.l2.replicas = 3;
    let v = validated(&obj);
    let after = build(&v, &keys(&v)).unwrap();
    assert_eq!(before.statefulsets.l2.spec.template, after.statefulsets.l2.spec.template);
    assert_ne!(before.layer_config_maps.l2, after.layer_config_maps.l2);
    assert_eq!(
        serde_json::to_value(&before.statefulsets.l1).unwrap(),
        serde_json::to_value(&after.statefulsets.l1).unwrap()
    );
    assert_eq!(before.services, after.services);
}
