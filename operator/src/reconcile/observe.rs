//! Step 1 (client required, reads only): fetch what the reconciler needs to decide.
//!
//! Reads the deployment's create-once objects (key Secrets, commit key, tokens Secret, genesis
//! ConfigMaps), the referenced reference-data ConfigMap (only while a genesis is still to be
//! created: afterwards it is not needed and may go away), the StatefulSets and the pods. Never
//! writes.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client};

use crate::crd::BftWebService;
use crate::resources::labels;
use crate::resources::names::Names;
use crate::PerLayer;

#[derive(Debug, thiserror::Error)]
#[error("reading {kind} {namespace}/{name}: {source}")]
pub struct ObserveError {
    kind: &'static str,
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// What exists now.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub keys: PerLayer<Option<Secret>>,
    pub commit_key: Option<Secret>,
    /// `spec.app.tokensSecret`, or the operator-managed `NAME-api-tokens`.
    pub tokens: Option<Secret>,
    pub genesis: PerLayer<Option<ConfigMap>>,
    /// Fetched only while a genesis is missing and `spec.app.referenceData` is set.
    pub reference_data: Option<ConfigMap>,
    pub statefulsets: PerLayer<Option<StatefulSet>>,
    pub pods: Vec<Pod>,
    /// Every volume claim of the deployment, of current and of scaled-away ordinals.
    pub claims: Vec<PersistentVolumeClaim>,
}

impl Observed {
    pub fn genesis_missing(&self) -> bool {
        self.genesis.l1.is_none() || self.genesis.l2.is_none()
    }
}

/// The tokens Secret name a deployment uses.
pub fn tokens_secret_name(obj: &BftWebService, names: &Names) -> String {
    obj.spec.app.tokens_secret.clone().unwrap_or_else(|| names.managed_tokens_secret())
}

pub async fn observe(client: &Client, obj: &BftWebService, names: &Names) -> Result<Observed, ObserveError> {
    let ns = names.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let error = |kind: &'static str, name: &str| {
        let (namespace, name) = (ns.to_owned(), name.to_owned());
        move |source| ObserveError { kind, namespace, name, source }
    };

    let mut observed = Observed::default();
    for layer in crate::LAYERS {
        let name = names.keys_secret(layer);
        let secret = secrets.get_opt(&name).await.map_err(error("Secret", &name))?;
        let name = names.genesis_config_map(layer);
        let genesis = config_maps.get_opt(&name).await.map_err(error("ConfigMap", &name))?;
        let name = names.statefulset(layer);
        let statefulset = statefulsets.get_opt(&name).await.map_err(error("StatefulSet", &name))?;
        match layer {
            bftws_home::ClusterLayer::L1 => {
                (observed.keys.l1, observed.genesis.l1, observed.statefulsets.l1) = (secret, genesis, statefulset)
            }
            bftws_home::ClusterLayer::L2 => {
                (observed.keys.l2, observed.genesis.l2, observed.statefulsets.l2) = (secret, genesis, statefulset)
            }
        }
    }
    let name = names.commit_key_secret();
    observed.commit_key = secrets.get_opt(&name).await.map_err(error("Secret", &name))?;
    let name = tokens_secret_name(obj, names);
    observed.tokens = secrets.get_opt(&name).await.map_err(error("Secret", &name))?;
    if let (true, Some(reference)) = (observed.genesis_missing(), &obj.spec.app.reference_data) {
        observed.reference_data =
            config_maps.get_opt(&reference.name).await.map_err(error("ConfigMap", &reference.name))?;
    }
    let selector = labels::deployment_pods_selector_string(&names.name);
    observed.pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(error("Pod", &format!("*?{selector}")))?
        .items;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    observed.claims = claims
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(error("PersistentVolumeClaim", &format!("*?{selector}")))?
        .items;
    Ok(observed)
}
