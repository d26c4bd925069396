//! The node's Prometheus metrics (DESIGN §8), served at `/metrics`. One [`Metrics`] owns the
//! registry; the rest of the node records through its named methods, with labels only from
//! route templates and small enums so cardinality stays bounded. It also keeps the last
//! minutes' latencies in memory ([`recent`]) for the console.

mod recent;

use std::time::{Duration, Instant};

pub use self::recent::{LatencySummary, RecentLatencies};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::registry::Layer;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpResultLabels {
    op: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabels {
    layer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to about 10 s.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    l2_op_duration: Histograms<OpLabels>,
    l1_commit_duration: Histograms<ResultLabels>,
    session_duration: Histogram,
    http_request_duration: Histograms<RouteLabels>,
    finalize_block_duration: Histograms<LayerLabels>,
    commits: Family<ResultLabels, Counter>,
    ops: Family<OpResultLabels, Counter>,
    height: Family<LayerLabels, Gauge>,
    sessions: Family<StatusLabels, Gauge>,
    waiters: Gauge,
    unverified_receipts: Counter,
    recent_l2_ops: RecentLatencies,
    recent_commits: RecentLatencies,
}

/// The last minutes' latencies (see [`recent::WINDOW`]).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecentSummary {
    pub window_seconds: u64,
    /// Writes finished on L2 (successful ones).
    pub l2_op: LatencySummary,
    /// Sessions committed to L1 (one attempt, submit to recorded receipt).
    pub l1_commit: LatencySummary,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bftws");
        let metrics = Self {
            l2_op_duration: Family::new_with_constructor(latency_histogram),
            l1_commit_duration: Family::new_with_constructor(latency_histogram),
            session_duration: latency_histogram(),
            http_request_duration: Family::new_with_constructor(latency_histogram),
            finalize_block_duration: Family::new_with_constructor(latency_histogram),
            commits: Family::default(),
            ops: Family::default(),
            height: Family::default(),
            sessions: Family::default(),
            waiters: Gauge::default(),
            unverified_receipts: Counter::default(),
            recent_l2_ops: RecentLatencies::default(),
            recent_commits: RecentLatencies::default(),
            registry: Registry::default(),
        };
        registry.register(
            "l2_op_duration_seconds",
            "Time from receiving a write to its finality on L2",
            metrics.l2_op_duration.clone(),
        );
        registry.register(
            "l1_commit_duration_seconds",
            "Time for one attempt to commit a session bundle to L1 and record the answer",
            metrics.l1_commit_duration.clone(),
        );
        registry.register(
            "session_duration_seconds",
            "Time from a session's first op to its L1 commit",
            metrics.session_duration.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request handling time by route template and status",
            metrics.http_request_duration.clone(),
        );
        registry.register(
            "finalize_block_duration_seconds",
            "Time to execute a decided block (FinalizeBlock)",
            metrics.finalize_block_duration.clone(),
        );
        registry.register("commits", "Session commit attempts by result", metrics.commits.clone());
        registry.register("ops", "Replicated writes by op and result", metrics.ops.clone());
        registry.register("height", "Last committed height of this node's chain", metrics.height.clone());
        registry.register("sessions", "Sessions in this node's state by status", metrics.sessions.clone());
        registry.register("waiters", "Callers waiting for a transaction to end on this node", metrics.waiters.clone());
        registry.register(
            "l1_unverified_receipts",
            "L1 answers to a bundle whose proof of finality did not verify (a lying or broken L1 node)",
            metrics.unverified_receipts.clone(),
        );
        Self { registry, ..metrics }
    }

    /// A write through the origin path finished (`result`: ok, refused, conflict, timeout,
    /// unavailable, error).
    pub fn write_finished(&self, layer: Layer, op: &str, result: &str, elapsed: Duration) {
        self.ops.get_or_create(&OpResultLabels { op: op.to_owned(), result: result.to_owned() }).inc();
        if layer == Layer::L2 && result == "ok" {
            self.l2_op_duration.get_or_create(&OpLabels { op: op.to_owned() }).observe(elapsed.as_secs_f64());
            self.recent_l2_ops.record(Instant::now(), elapsed);
        }
    }

    /// One commit attempt ended (`result`: committed, rejected, pending, error).
    pub fn commit_attempted(&self, result: &str, elapsed: Duration) {
        let labels = ResultLabels { result: result.to_owned() };
        self.commits.get_or_create(&labels).inc();
        self.l1_commit_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if result == "committed" {
            self.recent_commits.record(Instant::now(), elapsed);
        }
    }

    /// L2 op and L1 commit latencies over the last minutes.
    pub fn recent(&self) -> RecentSummary {
        let now = Instant::now();
        RecentSummary {
            window_seconds: recent::WINDOW.as_secs(),
            l2_op: self.recent_l2_ops.summary(now),
            l1_commit: self.recent_commits.summary(now),
        }
    }

    /// An L1 node answered a bundle with a receipt whose proof did not verify.
    pub fn receipt_unverified(&self) {
        self.unverified_receipts.inc();
    }

    pub fn session_committed(&self, since_first_op: Duration) {
        self.session_duration.observe(since_first_op.as_secs_f64());
    }

    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.http_request_duration
            .get_or_create(&RouteLabels { route: route.to_owned(), status: status.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn block_finalized(&self, layer: Layer, elapsed: Duration) {
        self.finalize_block_duration
            .get_or_create(&LayerLabels { layer: layer.as_str().to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_height(&self, layer: Layer, height: u64) {
        self.height.get_or_create(&LayerLabels { layer: layer.as_str().to_owned() }).set(height as i64);
    }

    /// Replaces the session counts (computed from state when scraped).
    pub fn set_sessions(&self, counts: &[(&str, u64)]) {
        self.sessions.clear();
        for (status, count) in counts {
            self.sessions.get_or_create(&StatusLabels { status: (*status).to_owned() }).set(*count as i64);
        }
    }

    pub fn set_waiters(&self, open: usize) {
        self.waiters.set(open as i64);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dashboards and alert rules query these names: renaming one breaks them.
    #[test]
    fn metric_names_are_the_documented_ones() {
        let metrics = Metrics::new();
        metrics.write_finished(Layer::L2, "warehouse.scan", "ok", Duration::from_millis(3));
        metrics.commit_attempted("committed", Duration::from_millis(30));
        metrics.session_committed(Duration::from_secs(2));
        metrics.http_request("/v1/sessions/{id}/scan", 200, Duration::from_millis(3));
        metrics.block_finalized(Layer::L1, Duration::from_millis(1));
        metrics.set_height(Layer::L2, 7);
        metrics.set_sessions(&[("open", 2)]);
        metrics.set_waiters(3);
        metrics.receipt_unverified();
        let text = metrics.encode();
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "bftws_commits",
                "bftws_finalize_block_duration_seconds",
                "bftws_height",
                "bftws_http_request_duration_seconds",
                "bftws_l1_commit_duration_seconds",
                "bftws_l1_unverified_receipts",
                "bftws_l2_op_duration_seconds",
                "bftws_ops",
                "bftws_session_duration_seconds",
                "bftws_sessions",
                "bftws_waiters",
            ]
        );
        for series in [
            "bftws_commits_total{result=\"committed\"} 1",
            "bftws_ops_total{op=\"warehouse.scan\",result=\"ok\"} 1",
            "bftws_height{layer=\"l2\"} 7",
            "bftws_waiters 3",
            "bftws_l1_unverified_receipts_total 1",
            "bftws_l2_op_duration_seconds_bucket{le=\"0.0005\",op=\"warehouse.scan\"} 0",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
    }
}
