//! bftws-operator: turns a `BftWebService` into two CometBFT networks of bftws nodes.
//!
//! - [`crd`]: the custom resource (spec, status, admission rules, printer columns, scale);
//! - [`reconcile`]: observe → validate → keys → build → apply → status, and the error policy;
//! - [`resources`]: pure builders, one file per kind, plus names and labels;
//! - [`leader`]: leader election through a `coordination.k8s.io` Lease;
//! - [`metrics`], [`server`] (health, readiness, metrics endpoints), [`telemetry`] (logs).
//!
//! The CometBFT files themselves (keys, genesis, `config.toml`) come from `bftws-home`, the code
//! the node's devnet uses too; [`bftws_home::cluster`] is the contract with the pods'
//! `bftws-node init`.

pub mod crd;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod resources;
pub mod server;
pub mod telemetry;

#[cfg(test)]
mod fixtures;

use bftws_home::cluster::ClusterLayer;

/// The field manager of every write, and the name events are reported under.
pub const FIELD_MANAGER: &str = "bftws-operator";

/// One value per layer, in layer order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerLayer<T> {
    pub l1: T,
    pub l2: T,
}

impl<T> PerLayer<T> {
    pub fn new(mut make: impl FnMut(ClusterLayer) -> T) -> Self {
        Self { l1: make(ClusterLayer::L1), l2: make(ClusterLayer::L2) }
    }

    pub fn get(&self, layer: ClusterLayer) -> &T {
        match layer {
            ClusterLayer::L1 => &self.l1,
            ClusterLayer::L2 => &self.l2,
        }
    }

    pub fn map<U>(self, mut f: impl FnMut(ClusterLayer, T) -> U) -> PerLayer<U> {
        PerLayer { l1: f(ClusterLayer::L1, self.l1), l2: f(ClusterLayer::L2, self.l2) }
    }

    pub fn as_ref(&self) -> PerLayer<&T> {
        PerLayer { l1: &self.l1, l2: &self.l2 }
    }

    /// `(layer, value)` for L1, then L2.
    pub fn iter(&self) -> impl Iterator<Item = (ClusterLayer, &T)> {
        [(ClusterLayer::L1, &self.l1), (ClusterLayer::L2, &self.l2)].into_iter()
    }
}

/// Both layers, in order.
pub const LAYERS: [ClusterLayer; 2] = [ClusterLayer::L1, ClusterLayer::L2];
