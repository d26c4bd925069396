//! Prometheus metrics of the operator, all prefixed `bftws_operator_`.
//!
//! One [`Metrics`] owns its registry (no globals); handles are private behind named methods.

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// `ok`, `invalid` (spec refused: Degraded) or `error` (retried with backoff).
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    /// The failing step: `observe`, `keys`, `build`, `apply`, `status`.
    kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    reconcile_duration: Histogram,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    managed: Gauge<i64, AtomicI64>,
    leader: Gauge<i64, AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bftws_operator");
        // 1 ms .. ~65 s.
        let reconcile_duration =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17));
        let reconciles = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let managed = Gauge::<i64, AtomicI64>::default();
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one BftWebService",
            reconcile_duration.clone(),
        );
        registry.register("reconciles", "Reconciliations by result", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciliations by failing step", errors.clone());
        registry.register("managed_deployments", "BftWebServices this operator watches", managed.clone());
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        Self { registry, reconcile_duration, reconciles, errors, managed, leader }
    }

    /// Starts timing a reconciliation; the duration is recorded when the guard drops, so early
    /// returns are timed too.
    pub fn reconcile_timer(&self) -> ReconcileTimer<'_> {
        ReconcileTimer { histogram: &self.reconcile_duration, start: Instant::now() }
    }

    pub fn reconciled(&self, result: &'static str) {
        self.reconciles.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn failed(&self, kind: &'static str) {
        self.reconciles.get_or_create(&ResultLabels { result: "error" }).inc();
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }

    pub fn set_managed(&self, count: usize) {
        self.managed.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_with_the_operator_prefix() {
        let metrics = Metrics::new();
        metrics.failed("apply");
        metrics.reconciled("ok");
        drop(metrics.reconcile_timer());
        metrics.set_managed(2);
        let text = metrics.encode();
        for name in [
            "bftws_operator_reconcile_duration_seconds_bucket",
            "bftws_operator_reconciles_total{result=\"ok\"} 1",
            "bftws_operator_reconciles_total{result=\"error\"} 1",
            "bftws_operator_reconcile_errors_total{kind=\"apply\"} 1",
            "bftws_operator_managed_deployments 2",
            "bftws_operator_leader 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
