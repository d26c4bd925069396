//! Reconcile scenarios against the in-memory apiserver of [`crate::fixtures`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::*;
use crate::fixtures::{self, cr_path, demo_ws, FakeApiServer};

const SECRETS: &str = "/api/v1/namespaces/shop/secrets";
const CONFIG_MAPS: &str = "/api/v1/namespaces/shop/configmaps";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/shop/statefulsets";
const CLAIMS: &str = "/api/v1/namespaces/shop/persistentvolumeclaims";

fn server_with(obj: &BftWebService) -> FakeApiServer {
    let server = FakeApiServer::default();
    server.put(&cr_path(), serde_json::to_value(obj).unwrap());
    server
}

async fn reconcile_once(server: &FakeApiServer, ctx: &Arc<Context>) -> Action {
    let obj: BftWebService = serde_json::from_value(server.get(&cr_path()).unwrap()).unwrap();
    reconcile(Arc::new(obj), ctx.clone()).await.unwrap()
}

/// Changes the stored CR's spec as a user would (bumping its generation).
fn edit_spec(server: &FakeApiServer, edit: impl FnOnce(&mut Value)) {
    let mut cr = server.get(&cr_path()).unwrap();
    edit(&mut cr["spec"]);
    let generation = cr["metadata"]["generation"].as_i64().unwrap() + 1;
    cr["metadata"]["generation"] = json!(generation);
    server.put(&cr_path(), cr);
}

/// Every stored object except events, for before/after comparisons.
fn objects(server: &FakeApiServer) -> BTreeMap<String, Value> {
    let store = server.store.lock().unwrap();
    store.objects.iter().filter(|(path, _)| !path.contains("/events/")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn changed(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> BTreeSet<String> {
    after.iter().filter(|(path, value)| before.get(*path) != Some(value)).map(|(path, _)| path.clone()).collect()
}

fn data_keys(object: &Value) -> BTreeSet<String> {
    object["data"].as_object().map(|data| data.keys().cloned().collect()).unwrap_or_default()
}

fn condition<'a>(cr: &'a Value, type_: &str) -> &'a Value {
    cr["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

fn events(server: &FakeApiServer) -> Vec<String> {
    server
        .calls()
        .iter()
        .filter(|call| call.is_write() && call.path.contains("/events"))
        .filter_map(|call| call.body.as_ref().and_then(|b| b["reason"].as_str()).map(str::to_owned))
        .collect()
}

/// Creating a deployment writes keys, geneses, manifests, Services, StatefulSets and the PDB,
/// in that order, then the status.
#[tokio::test]
async fn creating_a_deployment_writes_every_object_in_dependency_order() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    let action = reconcile_once(&server, &ctx).await;
    assert_eq!(action, Action::requeue(super::RESYNC));

    let writes: Vec<String> = server
        .calls()
        .iter()
        .filter(|call| call.is_write() && !call.path.contains("/events"))
        .map(|call| {
            let target = call.target().trim_start_matches("/api/v1/namespaces/shop/").trim_start_matches("/apis/");
            match (call.method.as_str(), call.body.as_ref().and_then(|b| b["metadata"]["name"].as_str())) {
                ("POST", Some(name)) => format!("POST {target}/{name}"),
                (method, _) => format!("{method} {target}"),
            }
        })
        .collect();
    insta::assert_yaml_snapshot!(writes);

    let l1_keys = server.get(&format!("{SECRETS}/demo-ws-l1-keys")).unwrap();
    assert_eq!(data_keys(&l1_keys).len(), 4 * 3, "node, validator and origin key per L1 ordinal");
    assert_eq!(l1_keys["immutable"], true);
    let l2_keys = server.get(&format!("{SECRETS}/demo-ws-l2-keys")).unwrap();
    assert_eq!(data_keys(&l2_keys).len(), 2 + 64, "CometBFT keys of ordinal 0, origin keys of all 64");
    let tokens = server.get(&format!("{SECRETS}/demo-ws-api-tokens")).unwrap();
    assert_eq!(data_keys(&tokens), BTreeSet::from(["admin-token".to_owned(), "tokens.json".to_owned()]));

    let genesis = server.get(&format!("{CONFIG_MAPS}/demo-ws-l1-genesis")).unwrap();
    assert_eq!(genesis["immutable"], true);
    let genesis_json = genesis["data"]["genesis.json"].as_str().unwrap();
    let doc: Value = serde_json::from_str(genesis_json).unwrap();
    assert_eq!(doc["chain_id"], "shop-demo-ws-l1");
    assert_eq!(doc["genesis_time"], "2026-03-01T12:00:00Z");
    assert_eq!(doc["validators"].as_array().unwrap().len(), 4);
    assert_eq!(doc["app_state"]["committers"][0]["l2_chain_id"], "shop-demo-ws-l2");
    let l2_genesis: Value = serde_json::from_str(
        server.get(&format!("{CONFIG_MAPS}/demo-ws-l2-genesis")).unwrap()["data"]["genesis.json"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(l2_genesis["app_state"]["nodes"].as_array().unwrap().len(), 64);
    // L1 accepts bundled ops only from L2's origin nodes, with the keys L2's genesis lists.
    assert_eq!(doc["app_state"]["committers"][0]["origins"], l2_genesis["app_state"]["nodes"]);

    let cr = server.get(&cr_path()).unwrap();
    assert_eq!(cr["status"]["observedGeneration"], 1);
    assert_eq!(cr["status"]["l1"]["genesisHash"], bftws_home::genesis_hash(genesis_json));
    assert_eq!(
        cr["status"]["l2"]["selector"],
        "app.kubernetes.io/instance=demo-ws,app.kubernetes.io/name=bftws,bftws.io/layer=l2"
    );
    let types: Vec<&str> =
        cr["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Ready", "Progressing", "Degraded", "QuorumAtRisk", "NodesFailing"]);
    assert_eq!(condition(&cr, "Ready")["status"], "False");
    assert_eq!(condition(&cr, "Progressing")["status"], "True");
    assert_eq!(condition(&cr, "Degraded")["status"], "False");

    let reasons = events(&server);
    for reason in ["KeysCreated", "CommitKeyCreated", "TokensCreated", "GenesisCreated"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason} not in {reasons:?}");
    }
}

/// A second reconcile of an unchanged deployment creates nothing, changes no object, writes no
/// status and sends no event.
#[tokio::test]
async fn a_second_pass_changes_nothing() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let before = objects(&server);
    server.clear_calls();

    reconcile_once(&server, &ctx).await;
    assert_eq!(changed(&before, &objects(&server)), BTreeSet::new());
    let calls = server.calls();
    assert!(calls.iter().all(|call| call.method != "POST" && !call.path.contains("/events")), "{calls:?}");
    // Every write is a forced server-side apply by the one field manager.
    for call in calls.iter().filter(|call| call.is_write()) {
        assert!(call.query.contains("fieldManager=bftws-operator") && call.query.contains("force=true"), "{call:?}");
    }
    assert!(calls.iter().all(|call| !call.path.ends_with("/status")), "status rewritten");
}

/// Scaling L2 up adds keys for the new ordinals only and changes only L2 objects; scaling back
/// down keeps every key.
#[tokio::test]
async fn scaling_l2_up_and_down_touches_only_l2_objects() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let l2_keys_path = format!("{SECRETS}/demo-ws-l2-keys");
    let key_0 = server.get(&l2_keys_path).unwrap()["data"]["node-key-0.json"].clone();

    edit_spec(&server, |spec| spec["l2"]["replicas"] = json!(3));
    let before = objects(&server);
    server.clear_calls();
    reconcile_once(&server, &ctx).await;
    let expected: BTreeSet<String> = [
        l2_keys_path.clone(),
        format!("{CONFIG_MAPS}/demo-ws-l2-layer"),
        format!("{STATEFULSETS}/demo-ws-l2"),
        cr_path(),
    ]
    .into();
    assert_eq!(changed(&before, &objects(&server)), expected);
    let l2_keys = server.get(&l2_keys_path).unwrap();
    assert_eq!(l2_keys["data"]["node-key-0.json"], key_0, "existing keys are never rewritten");
    assert!(data_keys(&l2_keys).contains("priv-validator-key-2.json"));
    let manifest: Value = serde_json::from_str(
        server.get(&format!("{CONFIG_MAPS}/demo-ws-l2-layer")).unwrap()["data"]["layer.json"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["nodes"].as_array().unwrap().len(), 3);
    assert!(events(&server).contains(&"ScaledL2".to_owned()));
    // The key patch carried the resourceVersion it read, and only the new entries.
    let key_patch =
        server.calls().into_iter().find(|call| call.method == "PATCH" && call.path == l2_keys_path).unwrap();
    let body = key_patch.body.unwrap();
    assert!(body["metadata"]["resourceVersion"].is_string());
    assert!(!body["data"].as_object().unwrap().contains_key("node-key-0.json"));

    edit_spec(&server, |spec| spec["l2"]["replicas"] = json!(1));
    let before = objects(&server);
    reconcile_once(&server, &ctx).await;
    let expected: BTreeSet<String> =
        [format!("{CONFIG_MAPS}/demo-ws-l2-layer"), format!("{STATEFULSETS}/demo-ws-l2"), cr_path()].into();
    assert_eq!(changed(&before, &objects(&server)), expected);
    assert!(data_keys(&server.get(&l2_keys_path).unwrap()).contains("node-key-2.json"), "keys survive scale-down");
    assert_eq!(server.get(&format!("{STATEFULSETS}/demo-ws-l2")).unwrap()["spec"]["replicas"], 1);
}

/// A tokens Secret that does not exist is reported as Degraded, nothing is built, and the
/// reconciler looks again later rather than retrying hot.
#[tokio::test]
async fn a_missing_tokens_secret_degrades_without_building_anything() {
    let mut obj = demo_ws();
    obj.spec.app.tokens_secret = Some("shop-tokens".to_owned());
    let server = server_with(&obj);
    let ctx = fixtures::context(&server);
    let action = reconcile_once(&server, &ctx).await;
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));

    let cr = server.get(&cr_path()).unwrap();
    let degraded = condition(&cr, "Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "MissingDependency");
    assert!(degraded["message"].as_str().unwrap().contains("shop-tokens"), "{degraded}");
    assert!(server.get(&format!("{STATEFULSETS}/demo-ws-l1")).is_none());
    assert!(server.calls().iter().all(|call| call.method != "POST" || call.path.contains("/events")));
    assert!(events(&server).contains(&"Degraded".to_owned()));
}

/// A spec that contradicts the existing genesis (possible only without the CRD's CEL rules) is
/// refused until the spec changes, and the running L1 is left alone.
#[tokio::test]
async fn a_spec_contradicting_genesis_is_refused_until_it_changes() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let l1 = server.get(&format!("{STATEFULSETS}/demo-ws-l1")).unwrap();

    edit_spec(&server, |spec| spec["l1"]["replicas"] = json!(7));
    let action = reconcile_once(&server, &ctx).await;
    assert_eq!(action, Action::await_change());
    let cr = server.get(&cr_path()).unwrap();
    assert_eq!(condition(&cr, "Degraded")["reason"], "InvalidSpec");
    assert!(condition(&cr, "Degraded")["message"].as_str().unwrap().contains("spec.l1.replicas"));
    assert_eq!(cr["status"]["observedGeneration"], 2);
    assert_eq!(server.get(&format!("{STATEFULSETS}/demo-ws-l1")).unwrap(), l1);

    edit_spec(&server, |spec| spec["l1"]["replicas"] = json!(4));
    reconcile_once(&server, &ctx).await;
    let cr = server.get(&cr_path()).unwrap();
    assert_eq!(condition(&cr, "Degraded")["status"], "False");
    assert!(events(&server).contains(&"DegradedCleared".to_owned()));
}

fn owner_kinds(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().map(|r| r["kind"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// `Retain` leaves keys and geneses unowned (garbage collection keeps them) and retains
/// volumes; `Delete` owns them and deletes volumes; switching moves the owner references.
#[tokio::test]
async fn deletion_policy_decides_what_garbage_collection_removes() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let identity = [
        format!("{SECRETS}/demo-ws-l1-keys"),
        format!("{SECRETS}/demo-ws-l2-keys"),
        format!("{SECRETS}/demo-ws-l2-commit-key"),
        format!("{SECRETS}/demo-ws-api-tokens"),
        format!("{CONFIG_MAPS}/demo-ws-l1-genesis"),
        format!("{CONFIG_MAPS}/demo-ws-l2-genesis"),
    ];
    let sts = || server.get(&format!("{STATEFULSETS}/demo-ws-l1")).unwrap();
    for path in &identity {
        assert_eq!(owner_kinds(&server.get(path).unwrap()), Vec::<String>::new(), "{path}");
    }
    assert_eq!(owner_kinds(&sts()), ["BftWebService"]);
    assert_eq!(sts()["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"], "Retain");

    edit_spec(&server, |spec| spec["deletionPolicy"] = json!("Delete"));
    reconcile_once(&server, &ctx).await;
    for path in &identity {
        assert_eq!(owner_kinds(&server.get(path).unwrap()), ["BftWebService"], "{path}");
    }
    assert_eq!(sts()["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"], "Delete");

    edit_spec(&server, |spec| spec["deletionPolicy"] = json!("Retain"));
    reconcile_once(&server, &ctx).await;
    for path in &identity {
        assert_eq!(owner_kinds(&server.get(path).unwrap()), Vec::<String>::new(), "{path}");
    }
}

/// A claim of a scaled-away L2 ordinal belongs to no StatefulSet: under `Delete` the
/// BftWebService owns every claim of the deployment (beside the StatefulSet, which stays the
/// controller), under `Retain` none.
#[tokio::test]
async fn delete_policy_owns_every_volume_claim_and_retain_none() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    let statefulset =
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "demo-ws-l2", "uid": "sts", "controller": true});
    let live = format!("{CLAIMS}/data-demo-ws-l2-0");
    let scaled_away = format!("{CLAIMS}/data-demo-ws-l2-5");
    server.put(
        &live,
        json!({"metadata": {"name": "data-demo-ws-l2-0", "resourceVersion": "1", "ownerReferences": [statefulset]}}),
    );
    server.put(&scaled_away, json!({"metadata": {"name": "data-demo-ws-l2-5", "resourceVersion": "1"}}));
    let owners = |path: &str| owner_kinds(&server.get(path).unwrap());

    reconcile_once(&server, &ctx).await;
    assert_eq!(owners(&live), ["StatefulSet"]);
    assert_eq!(owners(&scaled_away), Vec::<String>::new());

    edit_spec(&server, |spec| spec["deletionPolicy"] = json!("Delete"));
    reconcile_once(&server, &ctx).await;
    assert_eq!(owners(&live), ["StatefulSet", "BftWebService"]);
    assert_eq!(owners(&scaled_away), ["BftWebService"]);
    let added = &server.get(&scaled_away).unwrap()["metadata"]["ownerReferences"][0];
    assert!(added.get("controller").is_none(), "a second controller would be refused: {added}");

    edit_spec(&server, |spec| spec["deletionPolicy"] = json!("Retain"));
    reconcile_once(&server, &ctx).await;
    assert_eq!(owners(&live), ["StatefulSet"]);
    assert_eq!(owners(&scaled_away), Vec::<String>::new());
}

/// The StatefulSet controller edits a claim's owners when `whenDeleted` switches, so the
/// operator's patch can conflict: it reads the claim again and retries at once, and a conflict
/// on one claim never keeps the others from being owned (an unowned claim would outlive a
/// deployment deleted under `Delete`).
#[tokio::test]
async fn a_conflicting_claim_is_retried_at_once_and_never_blocks_the_others() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    let first = format!("{CLAIMS}/data-demo-ws-l1-0");
    let scaled_away = format!("{CLAIMS}/data-demo-ws-l2-5");
    server.put(&first, json!({"metadata": {"name": "data-demo-ws-l1-0", "resourceVersion": "1"}}));
    server.put(&scaled_away, json!({"metadata": {"name": "data-demo-ws-l2-5", "resourceVersion": "1"}}));
    reconcile_once(&server, &ctx).await;

    edit_spec(&server, |spec| spec["deletionPolicy"] = json!("Delete"));
    server.edit_concurrently(&first);
    reconcile_once(&server, &ctx).await;
    assert_eq!(owner_kinds(&server.get(&first).unwrap()), ["BftWebService"]);
    assert_eq!(owner_kinds(&server.get(&scaled_away).unwrap()), ["BftWebService"]);
}

/// A deployment created with `Delete` owns its keys from the start.
#[tokio::test]
async fn a_delete_policy_deployment_owns_its_keys_from_creation() {
    let mut obj = demo_ws();
    obj.spec.deletion_policy = crate::crd::DeletionPolicy::Delete;
    let server = server_with(&obj);
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    assert_eq!(owner_kinds(&server.get(&format!("{SECRETS}/demo-ws-l1-keys")).unwrap()), ["BftWebService"]);
}

/// A BftWebService being deleted is left to garbage collection: no call at all.
#[tokio::test]
async fn a_deleted_deployment_is_left_to_garbage_collection() {
    let mut obj = demo_ws();
    obj.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(fixtures::fixed_now()));
    let server = server_with(&obj);
    let ctx = fixtures::context(&server);
    assert_eq!(reconcile_once(&server, &ctx).await, Action::await_change());
    assert!(server.calls().is_empty());
}

/// Recreating a deleted `Retain` deployment reuses its keys and genesis: the chain resumes.
#[tokio::test]
async fn a_recreated_retained_deployment_resumes_the_same_chains() {
    let server = server_with(&demo_ws());
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let genesis = server.get(&format!("{CONFIG_MAPS}/demo-ws-l1-genesis")).unwrap();
    let keys = server.get(&format!("{SECRETS}/demo-ws-l1-keys")).unwrap();

    // What garbage collection leaves after the CR is deleted under Retain.
    {
        let mut store = server.store.lock().unwrap();
        store.objects.retain(|_, object| owner_kinds(object).is_empty());
    }
    let mut recreated = demo_ws();
    recreated.metadata.uid = Some("second-uid".to_owned());
    recreated.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    server.put(&cr_path(), serde_json::to_value(&recreated).unwrap());
    reconcile_once(&server, &ctx).await;
    assert_eq!(server.get(&format!("{CONFIG_MAPS}/demo-ws-l1-genesis")).unwrap(), genesis);
    assert_eq!(server.get(&format!("{SECRETS}/demo-ws-l1-keys")).unwrap(), keys);
    assert!(server.get(&format!("{STATEFULSETS}/demo-ws-l1")).is_some());
}

#[test]
fn backoff_doubles_per_object_up_to_the_cap_and_resets_on_success() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let ctx = fixtures::context(&FakeApiServer::default());
    let delays: Vec<u64> = (0..11).map(|_| ctx.next_backoff("shop/demo-ws").as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(ctx.next_backoff("shop/other").as_secs(), 1);
    ctx.reset_backoff("shop/demo-ws");
    assert_eq!(ctx.next_backoff("shop/demo-ws").as_secs(), 1);
}

/// The service is one the node image links, and its reference data is checked by the service's
/// own rules before any genesis is written: the escrow service refuses the supply chain's data.
#[tokio::test]
async fn an_unknown_service_or_reference_data_the_service_refuses_degrades_without_building_anything() {
    let mut obj = demo_ws();
    obj.spec.service.name = "pirate".to_owned();
    let server = server_with(&obj);
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let cr = server.get(&cr_path()).unwrap();
    let degraded = condition(&cr, "Degraded");
    assert_eq!(degraded["status"], "True");
    assert!(degraded["message"].as_str().unwrap().contains("unknown service 'pirate'"), "{degraded}");
    assert!(server.get(&format!("{STATEFULSETS}/demo-ws-l1")).is_none());

    let mut obj = demo_ws();
    obj.spec.service.name = "escrow".to_owned();
    obj.spec.app.reference_data =
        Some(crate::crd::ConfigMapKeyRef { name: "shop-reference".into(), key: "reference.json".into() });
    let server = server_with(&obj);
    server.put(
        &format!("{CONFIG_MAPS}/shop-reference"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-reference", "namespace": "shop"},
               "data": {"reference.json": r#"{"suppliers": [], "operators": [], "couriers": []}"#}}),
    );
    let ctx = fixtures::context(&server);
    reconcile_once(&server, &ctx).await;
    let cr = server.get(&cr_path()).unwrap();
    let degraded = condition(&cr, "Degraded");
    assert_eq!(degraded["status"], "True");
    let message = degraded["message"].as_str().unwrap();
    assert!(message.contains("for service 'escrow'") && message.contains("unknown field"), "{degraded}");
    assert!(server.get(&format!("{CONFIG_MAPS}/demo-ws-l1-genesis")).is_none());
}
