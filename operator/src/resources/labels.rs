//! Labels, one function per scope. Selector labels are a small fixed subset that never changes
//! (a StatefulSet's selector is immutable), so new labels go only into the wider scopes.

use std::collections::BTreeMap;

use bftws_home::cluster::ClusterLayer;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const LAYER: &str = "bftws.io/layer";
/// Set by the StatefulSet controller on every pod (Kubernetes ≥ 1.28).
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";
/// Set by the StatefulSet controller on every pod.
pub const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";

/// `app.kubernetes.io/name` of everything the operator makes.
pub const APP_NAME: &str = "bftws";
/// `app.kubernetes.io/managed-by`, also the watch filter for owned objects.
pub const MANAGER: &str = "bftws-operator";

/// Every object of one deployment.
pub fn deployment(instance: &str) -> BTreeMap<String, String> {
    let mut labels = selector_base(instance);
    labels.insert(MANAGED_BY.to_owned(), MANAGER.to_owned());
    labels.insert(PART_OF.to_owned(), APP_NAME.to_owned());
    labels
}

/// Every object of one layer of a deployment.
pub fn layer(instance: &str, layer: ClusterLayer) -> BTreeMap<String, String> {
    let mut labels = deployment(instance);
    labels.insert(COMPONENT.to_owned(), layer.as_str().to_owned());
    labels.insert(LAYER.to_owned(), layer.as_str().to_owned());
    labels
}

/// The pods of one layer: StatefulSet and Service selectors. Never change these.
pub fn pod_selector(instance: &str, layer: ClusterLayer) -> BTreeMap<String, String> {
    let mut labels = selector_base(instance);
    labels.insert(LAYER.to_owned(), layer.as_str().to_owned());
    labels
}

/// [`pod_selector`] as a label selector string (status `selector`, for the scale subresource).
pub fn pod_selector_string(instance: &str, layer: ClusterLayer) -> String {
    let parts: Vec<String> = pod_selector(instance, layer).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

/// Every pod of a deployment, both layers (the reconciler lists pods with this).
pub fn deployment_pods_selector_string(instance: &str) -> String {
    let parts: Vec<String> = selector_base(instance).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

fn selector_base(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME.to_owned(), APP_NAME.to_owned()), (INSTANCE.to_owned(), instance.to_owned())])
}
