//! Latencies of the last minutes, kept in memory for the console's network page: Prometheus
//! histograms answer "since start"; an operator at the console asks "now".

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

/// How far back a [`RecentLatencies`] looks.
pub(super) const WINDOW: Duration = Duration::from_secs(300);
/// Most samples kept; under heavier load the window is the last this many.
const MAX_SAMPLES: usize = 8192;

/// Samples of one latency over the last [`WINDOW`], bounded in memory.
#[derive(Debug, Default)]
pub struct RecentLatencies {
    samples: Mutex<VecDeque<(Instant, Duration)>>,
}

/// Percentiles of the samples in the window (nearest rank); `None` with no sample.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl RecentLatencies {
    pub fn record(&self, at: Instant, latency: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((at, latency));
    }

    /// The samples recorded within [`WINDOW`] before `now`.
    pub fn summary(&self, now: Instant) -> LatencySummary {
        let mut samples = self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while samples.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > WINDOW) {
            samples.pop_front();
        }
        let mut sorted: Vec<Duration> = samples.iter().map(|(_, latency)| *latency).collect();
        drop(samples);
        sorted.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index].as_secs_f64() * 1e3
        };
        if sorted.is_empty() {
            return LatencySummary { count: 0, p50_ms: None, p99_ms: None };
        }
        LatencySummary { count: sorted.len(), p50_ms: Some(rank(0.50)), p99_ms: Some(rank(0.99)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_window_only() {
        let recent = RecentLatencies::default();
        let start = Instant::now();
        recent.record(start, Duration::from_millis(900));
        let later = start + WINDOW + Duration::from_secs(1);
        for ms in 1..=100 {
            recent.record(later, Duration::from_millis(ms));
        }
        let summary = recent.summary(later);
        assert_eq!(summary, LatencySummary { count: 100, p50_ms: Some(50.0), p99_ms: Some(99.0) });
    }

    #[test]
    fn no_sample_is_no_percentile_and_memory_stays_bounded() {
        let recent = RecentLatencies::default();
        let now = Instant::now();
        assert_eq!(recent.summary(now), LatencySummary { count: 0, p50_ms: None, p99_ms: None });
        for _ in 0..MAX_SAMPLES + 10 {
            recent.record(now, Duration::from_millis(1));
        }
        assert_eq!(recent.summary(now).count, MAX_SAMPLES);
    }
}
