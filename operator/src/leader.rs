//! Leader election through a `coordination.k8s.io/v1` Lease, so two operator replicas are safe:
//! only the holder of the Lease runs the controller.
//!
//! The rules are client-go's: the holder renews the Lease every [`LeaseConfig::renew_every`];
//! another replica takes it over only once `renewTime + leaseDurationSeconds` has passed, and
//! every write carries the `resourceVersion` it read, so two candidates can never both win. A
//! holder that cannot renew before its own lease would expire steps down (the process exits and
//! restarts as a candidate), because by then another replica may have taken over. On shutdown
//! the holder releases the Lease so a standby takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::Api;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    /// Who we are: the pod name.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

impl LeaseConfig {
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// What to do about the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over.
    TakeOver,
    /// Someone else holds it and it has not expired.
    Wait { holder: String },
}

/// Pure: the decision for `identity` given the Lease read at `now`.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> Decision {
    let Some(lease) = lease else { return Decision::Create };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == identity {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let renewed = spec.renew_time.or(spec.acquire_time).map(|time| time.0);
    match renewed {
        Some(renewed) if renewed + duration > now => Decision::Wait { holder },
        _ => Decision::TakeOver,
    }
}

/// The Lease after `identity` acquired or renewed it at `now`.
pub fn held(lease: Option<&Lease>, config: &LeaseConfig, now: Timestamp) -> Lease {
    let mut lease = lease.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta { name: Some(config.name.clone()), ..ObjectMeta::default() },
        spec: None,
    });
    let mut spec = lease.spec.take().unwrap_or_default();
    let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    if !ours {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + i32::from(spec.holder_identity.is_some()));
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX));
    spec.renew_time = Some(MicroTime(now));
    lease.spec = Some(LeaseSpec { ..spec });
    lease
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaderElector {
    pub fn new(api: Api<Lease>, config: LeaseConfig) -> Self {
        Self { api, config }
    }

    /// One attempt to acquire or renew; `Ok(true)` when we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let now = Timestamp::now();
        let decision = decide(current.as_ref(), &self.config.identity, now);
        let result = match decision {
            Decision::Wait { .. } => return Ok(false),
            Decision::Create => self.api.create(&PostParams::default(), &held(None, &self.config, now)).await.map(drop),
            // `replace` sends the resourceVersion we read: a concurrent writer makes it fail.
            Decision::Renew | Decision::TakeOver => self
                .api
                .replace(&self.config.name, &PostParams::default(), &held(current.as_ref(), &self.config, now))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {
                if decision != Decision::Renew {
                    info!(lease = %self.config.name, identity = %self.config.identity, "acquired the leader lease");
                }
                Ok(true)
            }
            // Lost a race (AlreadyExists, Conflict): someone else holds it now.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => warn!(error = %err, "leader election: reading or writing the lease failed"),
            }
            tokio::time::sleep(self.config.renew_every).await;
        }
    }

    /// Renews the Lease forever; returns when it could not be renewed before it would expire
    /// (leadership must be considered lost).
    pub async fn hold(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    warn!("leader election: another replica holds the lease");
                    return;
                }
                Err(err) => warn!(error = %err, "leader election: renewing the lease failed"),
            }
            // Step down a renew period before expiry: others may take over right after it.
            if last_renewed.elapsed() + self.config.renew_every >= self.config.lease_duration {
                return;
            }
        }
    }

    /// Gives the Lease up (best effort), so a standby takes over without waiting for expiry.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        if let Err(err) = self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            warn!(error = %err, "leader election: releasing the lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig::new("bftws-operator", identity)
    }

    #[test]
    fn a_free_or_missing_lease_is_taken() {
        assert_eq!(decide(None, "a", at(0)), Decision::Create);
        let mut released = held(None, &config("b"), at(0));
        released.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(decide(Some(&released), "a", at(1)), Decision::TakeOver);
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected_until_it_expires() {
        let lease = held(None, &config("b"), at(0));
        assert_eq!(decide(Some(&lease), "a", at(14)), Decision::Wait { holder: "b".to_owned() });
        assert_eq!(decide(Some(&lease), "a", at(16)), Decision::TakeOver);
        assert_eq!(decide(Some(&lease), "b", at(14)), Decision::Renew);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let first = held(None, &config("b"), at(0));
        assert_eq!(first.spec.as_ref().unwrap().lease_transitions, Some(0));
        let renewed = held(Some(&first), &config("b"), at(5));
        assert_eq!(renewed.spec.as_ref().unwrap().lease_transitions, Some(0));
        assert_eq!(renewed.spec.as_ref().unwrap().acquire_time, first.spec.as_ref().unwrap().acquire_time);
        let taken = held(Some(&renewed), &config("a"), at(30));
        let spec = taken.spec.unwrap();
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.renew_time, Some(MicroTime(at(30))));
    }
}
