//! A budget of refused bundles per source address on `POST /v1/l1/bundles`.
//!
//! Refusing a bundle is cheap (DESIGN §15: caps and the committer key before any signature), but
//! not free: its body is still read and parsed. A source whose bundles keep being refused spends
//! its budget and then gets `429` before its body is read, held up to a second, so a flood
//! costs each L1 node a header parse and a timer per request and each flooding connection
//! sends about one request a second, while honest committers, whose bundles are not refused,
//! never meet the limit. The budget is a token bucket per IP address: `burst` refusals
//! at once, refilled at `per_second`.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::ApiError;

/// The longest an out-of-budget request is held before its `429`.
pub(super) const HOLD_MAX: Duration = Duration::from_secs(1);

/// The address a request came from, set by the listener on every request it serves.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How many refusals a source may cause.
#[derive(Debug, Clone, Copy)]
pub struct RefusalBudget {
    /// Refusals a source may cause at once.
    pub burst: u32,
    /// Refusals a source earns back per second.
    pub per_second: f64,
    /// Sources tracked at once; when full, sources back to a full budget are forgotten first.
    pub max_sources: usize,
}

impl Default for RefusalBudget {
    fn default() -> Self {
        Self { burst: 32, per_second: 4.0, max_sources: 16_384 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Every source's remaining budget.
#[derive(Debug)]
pub struct RefusalLimiter {
    budget: RefusalBudget,
    buckets: Mutex<BTreeMap<IpAddr, Bucket>>,
}

impl RefusalLimiter {
    pub fn new(budget: RefusalBudget) -> Self {
        Self { budget, buckets: Mutex::new(BTreeMap::new()) }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let earned = now.saturating_duration_since(bucket.updated).as_secs_f64() * self.budget.per_second;
        bucket.tokens = (bucket.tokens + earned).min(f64::from(self.budget.burst));
        bucket.updated = now;
    }

    /// `Err(wait)` when `source` has spent its budget: how long until it may be refused again.
    pub fn check(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let source = source_key(source);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bucket) = buckets.get_mut(&source) else { return Ok(()) };
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(Duration::from_secs_f64(missing / self.budget.per_second.max(f64::MIN_POSITIVE)))
    }

    /// Spends one refusal of `source`'s budget.
    pub fn refused(&self, source: IpAddr, now: Instant) {
        let source = source_key(source);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&source) && buckets.len() >= self.budget.max_sources.max(1) {
            let (full, per_second) = (f64::from(self.budget.burst), self.budget.per_second);
            let tokens_now =
                |b: &Bucket| b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second;
            buckets.retain(|_, b| tokens_now(b) < full);
            if buckets.len() >= self.budget.max_sources.max(1) {
                // Still full: forget the source closest to a full budget, so the table stays bounded.
                let nearest_full =
                    buckets.iter().max_by(|a, b| tokens_now(a.1).total_cmp(&tokens_now(b.1))).map(|(ip, _)| *ip);
                if let Some(ip) = nearest_full {
                    buckets.remove(&ip);
                }
            }
        }
        let bucket = buckets.entry(source).or_insert(Bucket { tokens: f64::from(self.budget.burst), updated: now });
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }

    /// Sources currently tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One budget per IPv4 address and per IPv6 /64 (one host's share of addresses).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The refusal of a source out of budget: `429` with `Retry-After`, before its body is read.
pub(super) fn out_of_budget(source: IpAddr, wait: Duration) -> ApiError {
    // Whole seconds, rounded up: a client that waits that long finds budget again.
    let seconds = wait.as_secs_f64().ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
    tracing::debug!(%source, seconds, "bundle source out of refusal budget");
    ApiError::new(429, "too_many_refusals", format!("too many refused bundles from {source}; retry in {seconds} s"))
        .retry_after(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn a_source_spends_its_burst_then_waits_for_the_refill_and_others_are_untouched() {
        let limiter = RefusalLimiter::new(RefusalBudget { burst: 3, per_second: 2.0, max_sources: 8 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(A, t0).is_ok());
            limiter.refused(A, t0);
        }
        let wait = limiter.check(A, t0).expect_err("out of budget");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check(B, t0).is_ok(), "another source keeps its budget");
        assert!(limiter.check(A, t0 + Duration::from_millis(499)).is_err());
        assert!(limiter.check(A, t0 + Duration::from_millis(500)).is_ok());
        // The refill never exceeds the burst.
        limiter.refused(A, t0 + Duration::from_secs(3600));
        for _ in 0..2 {
            limiter.refused(A, t0 + Duration::from_secs(3600));
        }
        assert!(limiter.check(A, t0 + Duration::from_secs(3600)).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_sources_back_to_full_budget_first() {
        let limiter = RefusalLimiter::new(RefusalBudget { burst: 2, per_second: 1.0, max_sources: 4 });
        let t0 = Instant::now();
        let ip = |i: u8| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
        limiter.refused(ip(0), t0);
        limiter.refused(ip(0), t0);
        for i in 1..=20 {
            limiter.refused(ip(i), t0);
            assert!(limiter.tracked() <= 4, "tracked {}", limiter.tracked());
        }
        // The source that spent all its budget is the last one forgotten.
        assert!(limiter.check(ip(0), t0).is_err());
        // Later, every source is back to full budget and forgotten at the next insert.
        limiter.refused(ip(99), t0 + Duration::from_secs(10));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn an_ipv6_host_has_one_budget_for_its_whole_64() {
        let limiter = RefusalLimiter::new(RefusalBudget { burst: 1, per_second: 1.0, max_sources: 4 });
        let t0 = Instant::now();
        limiter.refused("2001:db8:1:2::1".parse().unwrap(), t0);
        assert!(limiter.check("2001:db8:1:2:ffff::9".parse().unwrap(), t0).is_err());
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        limiter.refused("::ffff:127.0.0.2".parse().unwrap(), t0);
        assert!(limiter.check(A, t0).is_err(), "an IPv4-mapped address is its IPv4 address");
    }
}
