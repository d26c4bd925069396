//! The reconciler: observe → validate → keys → build → apply → status.
//!
//! | step | client | does |
//! |------|--------|------|
//! | [`observe`] | reads | what exists: keys, geneses, StatefulSets, pods |
//! | [`validate`] | no | spec + observed → [`ValidatedBftws`] or [`Invalid`] (→ `Degraded`) |
//! | [`keys`] | writes | creates missing keys (the only randomness) |
//! | [`build`](crate::resources::build) | no | every object, pure |
//! | [`apply`] | writes | ordered, server-side apply |
//! | [`status`] | writes | conditions from a pure function; skipped when unchanged |
//!
//! Deletion needs no finalizer: owner references let the garbage collector remove what the
//! BftWebService owns, and `deletionPolicy: Retain` simply leaves the keys, geneses and volumes
//! unowned (see [`crate::resources`]). So a BftWebService never gets stuck deleting while the
//! operator is down.

pub mod apply;
pub mod heights;
pub mod keys;
pub mod observe;
pub mod status;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bftws_home::cluster::ClusterLayer;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource as _, ResourceExt as _};
use tracing::{info, instrument, warn};

use self::keys::KeysError;
use self::validate::{Invalid, ValidatedBftws};
use crate::crd::BftWebService;
use crate::metrics::Metrics;
use crate::resources::names::Names;
use crate::resources::{labels, BuildError};
use crate::{PerLayer, FIELD_MANAGER};

/// Every reconciliation is repeated this often even when nothing is watched to change: the
/// chains' heights in status (`kubectl get bftws`), the Secrets the operator does not watch,
/// pods' readiness between StatefulSet updates. A repeat that finds everything as built writes
/// nothing but a status whose heights moved (server-side apply of identical objects is a no-op).
const RESYNC: Duration = Duration::from_secs(15);
/// Backoff after errors: doubles from the first to the cap, per object.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Observe(#[from] observe::ObserveError),
    #[error(transparent)]
    Keys(KeysError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error(transparent)]
    Status(#[from] status::StatusError),
}

impl Error {
    /// The failing step, as a bounded metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Observe(_) => "observe",
            Error::Keys(_) => "keys",
            Error::Build(_) => "build",
            Error::Apply(_) => "apply",
            Error::Status(_) => "status",
        }
    }
}

/// Something worth a Kubernetes event on the BftWebService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    KeysCreated { secret: String, nodes: u32 },
    KeysAdded { secret: String, ordinals: Vec<u32> },
    CommitKeyCreated { secret: String },
    TokensCreated { secret: String },
    GenesisCreated { layer: ClusterLayer },
    L2Scaled { from: i32, to: u32 },
    ConditionChanged { type_: String, status: bool, reason: String, message: String },
}

impl Happening {
    pub fn event(&self) -> Event {
        let normal = |reason: &str, note: String| Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        match self {
            Happening::KeysCreated { secret, nodes } => {
                normal("KeysCreated", format!("created Secret {secret} with the keys of {nodes} nodes"))
            }
            Happening::KeysAdded { secret, ordinals } => {
                normal("KeysAdded", format!("added keys for ordinals {ordinals:?} to Secret {secret}"))
            }
            Happening::CommitKeyCreated { secret } => normal("CommitKeyCreated", format!("created Secret {secret}")),
            Happening::TokensCreated { secret } => {
                normal("TokensCreated", format!("created Secret {secret} with one admin token (key admin-token)"))
            }
            Happening::GenesisCreated { layer } => {
                normal("GenesisCreated", format!("created the {} genesis", layer.as_str()))
            }
            Happening::L2Scaled { from, to } => normal("ScaledL2", format!("L2 replicas {from} → {to}")),
            Happening::ConditionChanged { type_, status, reason, message } => {
                let bad = (type_ == status::READY) != *status;
                Event {
                    type_: if bad { EventType::Warning } else { EventType::Normal },
                    reason: format!("{type_}{}", if *status { "" } else { "Cleared" }),
                    note: Some(format!("{reason}: {message}")),
                    action: "UpdateStatus".to_owned(),
                    secondary: None,
                }
            }
        }
    }
}

/// What reconcile needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Failed attempts in a row, per object (`namespace/name`), for the backoff.
    backoff: Mutex<BTreeMap<String, u32>>,
    /// The wall clock; tests pass a fixed one.
    now: fn() -> Timestamp,
    /// Where status heights come from.
    heights: Box<dyn heights::HeightProbe>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.to_owned(), instance };
        Self::with_clock(client, metrics, reporter, Timestamp::now)
            .with_heights(Box::new(heights::HttpHeights::default()))
    }

    /// Replaces where status heights come from.
    pub fn with_heights(mut self, probe: Box<dyn heights::HeightProbe>) -> Self {
        self.heights = probe;
        self
    }

    pub fn with_clock(client: Client, metrics: Arc<Metrics>, reporter: Reporter, now: fn() -> Timestamp) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            backoff: Mutex::default(),
            now,
            heights: Box::new(heights::NoHeights),
        }
    }

    /// Next delay for an object that failed again.
    fn next_backoff(&self, key: &str) -> Duration {
        let mut backoff = self.backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let attempts = backoff.entry(key.to_owned()).or_insert(0);
        *attempts = attempts.saturating_add(1);
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_CAP)
    }

    fn reset_backoff(&self, key: &str) {
        self.backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

fn object_key(obj: &BftWebService) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn publish(ctx: &Context, obj: &BftWebService, happened: &[Happening]) {
    let reference = obj.object_ref(&());
    for happening in happened {
        if let Err(err) = ctx.recorder.publish(&happening.event(), &reference).await {
            // Events are best effort: never fail a reconcile over one.
            warn!(error = %err, "publishing an event failed");
        }
    }
}

#[instrument(skip_all, fields(namespace = obj.namespace().unwrap_or_default(), name = obj.name_any(), generation = obj.metadata.generation))]
pub async fn reconcile(obj: Arc<BftWebService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer();
    if obj.metadata.deletion_timestamp.is_some() {
        // Garbage collection does the rest (see the module doc).
        return Ok(Action::await_change());
    }
    let names = Names::new(obj.name_any(), obj.namespace().unwrap_or_default());
    let mut happened = Vec::new();

    let observed = observe::observe(&ctx.client, &obj, &names).await?; // client: reads
    let validated = match validate::validate(&obj, &observed) {
        Ok(validated) => validated,
        Err(invalid) => return degrade(&obj, &ctx, &invalid).await,
    }; // no client
    let keys = match keys::ensure(&ctx.client, &validated, &observed, &mut happened).await {
        Ok(keys) => keys,
        Err(KeysError::Invalid(invalid)) => {
            publish(&ctx, &obj, &happened).await;
            return degrade(&obj, &ctx, &invalid).await;
        }
        Err(err) => return Err(Error::Keys(err)),
    }; // client: creates missing keys
    let resources = crate::resources::build(&validated, &keys)?; // no client
    if let Some(from) = scaled_from(&observed.statefulsets.l2, &validated) {
        happened.push(Happening::L2Scaled { from, to: validated.layers.l2.replicas });
    }
    let applied = apply::apply(&ctx.client, &names.namespace, resources, &observed, &mut happened).await?; // client

    let genesis_hashes = applied.genesis_json.as_ref().map(|_, json| json.as_deref().map(bftws_home::genesis_hash));
    let heights = ctx.heights.heights(&names).await; // network: each layer's API, best effort
    let observation = status::Observation {
        generation: obj.metadata.generation,
        v: &validated,
        statefulsets: PerLayer { l1: Some(&applied.statefulsets.l1), l2: Some(&applied.statefulsets.l2) },
        pods: &observed.pods,
        genesis_hashes: genesis_hashes.as_ref().map(|_, hash| hash.as_deref()),
        heights,
    };
    let new_status = status::compute(obj.status.as_ref(), &observation, (ctx.now)()); // no client
    happened.extend(status::transitions(obj.status.as_ref(), &new_status));
    status::patch(&ctx.client, &obj, &new_status).await?; // client
    publish(&ctx, &obj, &happened).await;

    ctx.reset_backoff(&object_key(&obj));
    ctx.metrics.reconciled("ok");
    Ok(Action::requeue(RESYNC))
}

/// The L2 replicas before this reconcile, when the spec changes them.
fn scaled_from(current: &Option<StatefulSet>, v: &ValidatedBftws) -> Option<i32> {
    let replicas = current.as_ref()?.spec.replicas?;
    (replicas.unsigned_abs() != v.layers.l2.replicas).then_some(replicas)
}

/// Records an invalid spec as `Degraded`. Not an error: retrying cannot help until the spec (or
/// a referenced object) changes.
async fn degrade(obj: &BftWebService, ctx: &Context, invalid: &Invalid) -> Result<Action, Error> {
    warn!(reason = invalid.reason, message = %invalid.message, "spec cannot be reconciled");
    let new_status = status::compute_invalid(obj.status.as_ref(), obj.metadata.generation, invalid, (ctx.now)());
    let happened = status::transitions(obj.status.as_ref(), &new_status);
    status::patch(&ctx.client, obj, &new_status).await?;
    publish(ctx, obj, &happened).await;
    ctx.reset_backoff(&object_key(obj));
    ctx.metrics.reconciled("invalid");
    Ok(match invalid.retry_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Transient failures: log, count, retry with a per-object exponential backoff.
pub fn error_policy(obj: Arc<BftWebService>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.next_backoff(&object_key(&obj));
    warn!(
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        step = error.metric_label(),
        error = %error,
        retry_in_s = delay.as_secs_f64(),
        "reconcile failed"
    );
    ctx.metrics.failed(error.metric_label());
    Action::requeue(delay)
}

/// Runs the controller until shutdown: watches BftWebServices in `namespace` (all namespaces
/// when `None`) and the objects they own.
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
    let owned = watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let controller = Controller::new(api::<BftWebService>(&client, namespace), watcher::Config::default())
        .owns(api::<StatefulSet>(&client, namespace), owned.clone())
        .owns(api::<Service>(&client, namespace), owned.clone())
        .owns(api::<ConfigMap>(&client, namespace), owned.clone())
        .owns(api::<PodDisruptionBudget>(&client, namespace), owned)
        .graceful_shutdown_on(shutdown);
    let store = controller.store();
    let metrics = ctx.metrics.clone();
    info!(namespace = namespace.unwrap_or("*"), "controller running");
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            metrics.set_managed(store.state().len());
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile loop");
            }
            futures::future::ready(())
        })
        .await;
    info!("controller stopped");
}

#[cfg(test)]
mod tests;
