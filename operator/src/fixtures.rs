//! Test fixtures: a BftWebService named unlike the product (`demo-ws` in `shop`, so a swapped
//! `name`/`instance` label shows up), deterministic keys, and a small in-memory apiserver
//! behind `tower_test` that records every call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use bftws_home::cluster::ClusterLayer;
use bftws_home::NodeKeys;
use http::{Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::Client;
use serde_json::{json, Value};

use crate::crd::{BftWebService, BftWebServiceSpec, L1Spec, L2Spec};
use crate::metrics::Metrics;
use crate::reconcile::keys::{origin_ordinals, KeyMaterial, LayerKeys, SeedKey};
use crate::reconcile::observe::Observed;
use crate::reconcile::validate::{validate, ValidatedBftws};
use crate::reconcile::Context;
use crate::PerLayer;

pub(crate) const NAMESPACE: &str = "shop";
pub(crate) const NAME: &str = "demo-ws";

/// `demo-ws` in `shop`: 4 L1 validators, 1 L2 validator, defaults elsewhere.
pub(crate) fn demo_ws() -> BftWebService {
    let spec = BftWebServiceSpec {
        image: "registry.example/bftws-node:test".to_owned(),
        image_pull_policy: None,
        priority_class_name: None,
        service: Default::default(),
        l1: L1Spec { replicas: 4, resources: None, storage: Default::default() },
        l2: L2Spec { replicas: 1, validators: 1, resources: None, storage: Default::default() },
        consensus: Default::default(),
        app: Default::default(),
        deletion_policy: Default::default(),
    };
    let mut obj = BftWebService::new(NAME, spec);
    obj.metadata.namespace = Some(NAMESPACE.to_owned());
    obj.metadata.uid = Some("7f1c1d3e-0000-4000-8000-00000000d3m0".to_owned());
    obj.metadata.generation = Some(1);
    obj.metadata.resource_version = Some("1".to_owned());
    obj.metadata.creation_timestamp = Some(Time(fixed_now()));
    obj
}

pub(crate) fn fixed_now() -> Timestamp {
    Timestamp::from_second(1_772_366_400).expect("a valid timestamp") // 2026-03-01T12:00:00Z
}

/// Validated as if nothing existed yet.
pub(crate) fn validated(obj: &BftWebService) -> ValidatedBftws {
    validate(obj, &Observed::default()).expect("fixture is valid")
}

/// Deterministic keys for every ordinal a layer may need.
pub(crate) fn keys(v: &ValidatedBftws) -> KeyMaterial {
    let layer_keys = |layer: ClusterLayer| {
        let plan = v.layers.get(layer);
        LayerKeys {
            nodes: (0..plan.replicas)
                .map(|ordinal| {
                    (ordinal, NodeKeys::insecure_from_label(&format!("fixture/{}/{ordinal}", layer.as_str())))
                })
                .collect(),
            origin: origin_ordinals(layer, plan.replicas)
                .map(|ordinal| {
                    let seed =
                        [u8::try_from(ordinal).unwrap_or(0), if layer == ClusterLayer::L1 { 1 } else { 2 }, 7, 7]
                            .into_iter()
                            .cycle()
                            .take(32)
                            .collect::<Vec<u8>>();
                    (ordinal, SeedKey::from_seed(seed.try_into().unwrap_or([0; 32])))
                })
                .collect(),
        }
    };
    KeyMaterial { layers: PerLayer::new(layer_keys), commit: SeedKey::from_seed([9; 32]) }
}

/// One request the fake apiserver received.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: String,
    pub path: String,
    /// Query string, e.g. `fieldManager=bftws-operator&force=true`.
    pub query: String,
    pub body: Option<Value>,
}

impl Call {
    pub(crate) fn is_write(&self) -> bool {
        self.method != "GET"
    }

    /// The object path without the query, e.g. `/api/v1/namespaces/shop/secrets/demo-ws-l1-keys`.
    pub(crate) fn target(&self) -> &str {
        &self.path
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub objects: BTreeMap<String, Value>,
    pub calls: Vec<Call>,
    resource_version: u64,
    /// Objects another writer edits just before the next PATCH of them reaches the server (its
    /// resourceVersion moves, as when a controller edits the same object concurrently).
    edited_concurrently: BTreeSet<String>,
}

/// An apiserver good enough for the reconciler: GET, LIST, POST (create-only), PATCH (apply
/// and merge, both merged into the stored object; `resourceVersion` preconditions honoured).
#[derive(Clone, Default)]
pub(crate) struct FakeApiServer {
    pub store: Arc<Mutex<Store>>,
}

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}),
    )
}

/// JSON merge patch (RFC 7386): objects merge, `null` deletes, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

impl FakeApiServer {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.store.lock().map(|store| store.calls.clone()).unwrap_or_default()
    }

    pub(crate) fn clear_calls(&self) {
        if let Ok(mut store) = self.store.lock() {
            store.calls.clear();
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<Value> {
        self.store.lock().ok()?.objects.get(path).cloned()
    }

    /// The next PATCH of `path` finds it edited by someone else since it was read.
    pub(crate) fn edit_concurrently(&self, path: &str) {
        if let Ok(mut store) = self.store.lock() {
            store.edited_concurrently.insert(path.to_owned());
        }
    }

    pub(crate) fn put(&self, path: &str, object: Value) {
        if let Ok(mut store) = self.store.lock() {
            store.objects.insert(path.to_owned(), object);
        }
    }

    /// A client whose requests this server answers (spawns the serving task).
    pub(crate) fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Option<Value> = if bytes.is_empty() {
                    None
                } else {
                    // SSA bodies are sent as JSON too (JSON is YAML).
                    serde_json::from_slice(&bytes).ok()
                };
                let (code, value) = server.handle(parts.method.as_str(), &parts.uri, body);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&value).unwrap_or_default()))
                    .unwrap_or_else(|_| Response::new(Body::from(Vec::new())));
                send.send_response(response);
            }
        });
        Client::new(service, NAMESPACE)
    }

    fn handle(&self, method: &str, uri: &http::Uri, body: Option<Value>) -> (StatusCode, Value) {
        let path = uri.path().to_owned();
        let query = uri.query().unwrap_or_default().to_owned();
        let Ok(mut store) = self.store.lock() else { return status(500, "InternalError", "poisoned") };
        store.calls.push(Call { method: method.to_owned(), path: path.clone(), query, body: body.clone() });
        let segments = path.trim_matches('/').split('/').count();
        // /api/v1/namespaces/ns/plural (5) or /apis/group/version/namespaces/ns/plural (6).
        let collection_len = if path.starts_with("/apis/") { 6 } else { 5 };
        let is_collection = segments == collection_len;
        let is_status = segments == collection_len + 2 && path.ends_with("/status");
        let object_path = if is_status { path.trim_end_matches("/status").to_owned() } else { path.clone() };
        match method {
            "GET" if is_collection => {
                let prefix = format!("{path}/");
                let items: Vec<Value> =
                    store.objects.iter().filter(|(key, _)| key.starts_with(&prefix)).map(|(_, v)| v.clone()).collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            "GET" => match store.objects.get(&object_path) {
                Some(object) => (StatusCode::OK, object.clone()),
                None => status(404, "NotFound", "not found"),
            },
            "POST" => {
                let Some(mut object) = body else { return status(400, "BadRequest", "no body") };
                let name = object["metadata"]["name"].as_str().unwrap_or("event").to_owned();
                let key = format!("{path}/{name}");
                if store.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", "already exists");
                }
                store.resource_version += 1;
                object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
                object["metadata"]["uid"] = json!(format!("uid-{}", store.resource_version));
                store.objects.insert(key, object.clone());
                (StatusCode::CREATED, object)
            }
            "PATCH" => {
                let Some(mut patch) = body else { return status(400, "BadRequest", "no body") };
                if store.edited_concurrently.remove(&object_path) {
                    store.resource_version += 1;
                    let version = store.resource_version.to_string();
                    if let Some(object) = store.objects.get_mut(&object_path) {
                        object["metadata"]["resourceVersion"] = json!(version);
                    }
                }
                let existing = store.objects.get(&object_path).cloned();
                if let Some(expected) = patch["metadata"]["resourceVersion"].as_str() {
                    let actual = existing.as_ref().and_then(|o| o["metadata"]["resourceVersion"].as_str());
                    if actual != Some(expected) {
                        return status(409, "Conflict", "the object has been modified");
                    }
                }
                if let Some(metadata) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.remove("resourceVersion");
                }
                let mut object = match (existing, is_status) {
                    (Some(object), _) => object,
                    (None, true) => return status(404, "NotFound", "not found"),
                    (None, false) => json!({}),
                };
                let before = object.clone();
                if is_status {
                    merge(&mut object, &json!({"status": patch["status"]}));
                } else {
                    merge(&mut object, &patch);
                }
                if object != before {
                    store.resource_version += 1;
                    object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
                    if !is_status && object.get("spec") != before.get("spec") {
                        let generation = before["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                        object["metadata"]["generation"] = json!(generation);
                    }
                }
                store.objects.insert(object_path, object.clone());
                (StatusCode::OK, object)
            }
            _ => status(405, "MethodNotAllowed", method),
        }
    }
}

/// A reconcile context over a fake apiserver, with a fixed clock.
pub(crate) fn context(server: &FakeApiServer) -> Arc<Context> {
    let reporter = Reporter { controller: "bftws-operator".to_owned(), instance: Some("test".to_owned()) };
    Arc::new(Context::with_clock(server.client(), Arc::new(Metrics::new()), reporter, fixed_now))
}

/// Where the fake apiserver keeps the fixture CR.
pub(crate) fn cr_path() -> String {
    format!("/apis/bftws.io/v1alpha1/namespaces/{NAMESPACE}/bftwebservices/{NAME}")
}
