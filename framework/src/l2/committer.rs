//! The committer: builds a session's bundle from replicated L2 state, signs it with the L2 commit
//! key, submits it to L1 and records L1's answer on L2 as an internal op.
//!
//! Any L2 node can do this for any session: the bundle is rebuilt from replicated state and
//! signatures are deterministic, so a retry by another node submits the very same bytes and L1
//! answers it idempotently. While L1 does not answer, the session stays pending and is retried
//! with backoff; nothing acknowledged is lost.
//!
//! Every L2 node sweeps the sessions left committing ([`Committer::run_sweeper`]), whatever
//! happened to the request that froze them: it drives the ones whose commit op it originated at
//! once and takes over the others after [`TAKEOVER_AFTER`], so each is driven by one node while
//! that node lives and by the others when it does not.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    app::{
        self,
        tx::{Bundle, SignedBundle, Tx},
        CommitRecord, Receipt, TxCode,
    },
    chain::Chain,
    chain::{BoxFuture, SubmitError},
    crypto::SigningKey,
    local_chain::LocalChain,
    network::ChainStatus,
    origin::{Origin, WriteError},
    registry::{Actor, Role, RouteKind},
};

/// How often every L2 node looks for sessions left committing.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// How long a session another node froze may stay committing before this node drives it too.
pub(crate) const TAKEOVER_AFTER: Duration = Duration::from_secs(15);

/// Why L1 did not commit a bundle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum L1Error {
    /// L1 answered and refused the bundle: final.
    #[error("L1 rejected the bundle ({}): {log}", code.name())]
    Rejected { code: TxCode, log: String },
    /// No L1 answer: try again later.
    #[error("L1 unavailable: {0}")]
    Unavailable(String),
}

/// Submits bundles to L1 and returns the receipt once the bundle is final there.
pub trait L1Client: Send + Sync + 'static {
    fn submit_bundle(&self, bundle: SignedBundle) -> BoxFuture<'_, Result<Receipt, L1Error>>;

    /// L1's answer to `GET /v1/sessions/{id}/proof` asked with the caller's bearer token: a
    /// proof of finality (200) or L1's own refusal (4xx), status and body.
    fn session_proof<'a>(
        &'a self,
        _session_id: &'a str,
        _bearer: &'a str,
    ) -> BoxFuture<'a, Result<(u16, Value), L1Error>> {
        Box::pin(std::future::ready(Err(L1Error::Unavailable("this L1 gives no proofs of finality".into()))))
    }

    /// L1's chain as one of its nodes reports it (the `chain` of its `GET /v1/network`), asked
    /// with the caller's bearer token.
    fn chain_status<'a>(&'a self, _bearer: &'a str) -> BoxFuture<'a, Result<ChainStatus, L1Error>> {
        Box::pin(std::future::ready(Err(L1Error::Unavailable("this L1 reports no status".into()))))
    }
}

/// An L1 that is an in-process chain (tests and the single-process dev mode).
pub struct LocalL1(pub Arc<LocalChain>);

impl L1Client for LocalL1 {
    fn submit_bundle(&self, bundle: SignedBundle) -> BoxFuture<'_, Result<Receipt, L1Error>> {
        Box::pin(async move {
            use crate::chain::Chain;
            match self.0.submit(Tx::Bundle(bundle).encode()).await {
                Ok(finalized) => finalized
                    .ledger
                    .map(|entry| Receipt::committed(self.0.chain_id(), &entry))
                    .ok_or_else(|| L1Error::Unavailable("L1 applied the bundle without a ledger entry".into())),
                Err(SubmitError::Refused { code, log }) => Err(L1Error::Rejected { code, log }),
                Err(other) => Err(L1Error::Unavailable(other.to_string())),
            }
        })
    }

    fn chain_status<'a>(&'a self, _bearer: &'a str) -> BoxFuture<'a, Result<ChainStatus, L1Error>> {
        use crate::chain::Chain;
        let status = self
            .0
            .snapshot()
            .and_then(|snapshot| snapshot.last_block())
            .map(|block| ChainStatus::local(self.0.chain_id(), block.height))
            .map_err(|e| L1Error::Unavailable(e.to_string()));
        Box::pin(std::future::ready(status))
    }
}

/// Where a commit stands after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed(Receipt),
    Rejected {
        reason: String,
    },
    /// L1 did not answer yet; the session stays committing and is retried in the background.
    Pending {
        reason: String,
    },
}

pub struct Committer {
    origin: Arc<Origin>,
    l1: Arc<dyn L1Client>,
    commit_key: SigningKey,
    attempt_timeout: Duration,
    max_backoff: Duration,
    /// Sessions with an attempt or a background driver running on this node, so each has at
    /// most one.
    busy: Mutex<BTreeSet<String>>,
    /// When this node first saw each session left committing by another node.
    seen_pending: Mutex<BTreeMap<String, Instant>>,
    /// This node's unanswered attempts per session still committing, and why the last failed.
    retries: Mutex<BTreeMap<String, Retries>>,
}

#[derive(Debug, Clone)]
struct Retries {
    attempts: u32,
    last_error: String,
}

/// A session whose commit op is applied and whose L1 answer is not recorded yet, as this node
/// sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommittingSession {
    pub session_id: String,
    /// This node is driving its commit now.
    pub driving: bool,
    /// Attempts by this node that got no final answer from L1.
    pub failed_attempts: u32,
    /// Why the last of them failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Holds a session in [`Committer::busy`] until dropped.
struct Busy<'a> {
    committer: &'a Committer,
    session_id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.committer.busy).remove(&self.session_id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Committer {
    pub fn new(origin: Arc<Origin>, l1: Arc<dyn L1Client>, commit_key: SigningKey, attempt_timeout: Duration) -> Self {
        Self {
            origin,
            l1,
            commit_key,
            attempt_timeout,
            max_backoff: Duration::from_secs(30),
            busy: Mutex::new(BTreeSet::new()),
            seen_pending: Mutex::new(BTreeMap::new()),
            retries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Marks `session_id` busy; `None` if an attempt or a driver already holds it.
    fn claim(&self, session_id: &str) -> Option<Busy<'_>> {
        lock(&self.busy)
            .insert(session_id.to_owned())
            .then(|| Busy { committer: self, session_id: session_id.to_owned() })
    }

    /// One attempt: bundle, submit, record. L1 being unreachable is `Pending`, not an error;
    /// so is an attempt already under way on this node for the session.
    #[tracing::instrument(skip(self), fields(node = self.origin.node_id()))]
    /// The L1 this node commits to.
    pub fn l1(&self) -> &Arc<dyn L1Client> {
        &self.l1
    }

    pub async fn commit(&self, session_id: &str) -> Result<CommitOutcome, WriteError> {
        let Some(_busy) = self.claim(session_id) else {
            return Ok(CommitOutcome::Pending { reason: "a commit of this session is under way on this node".into() });
        };
        self.commit_claimed(session_id).await
    }

    async fn commit_claimed(&self, session_id: &str) -> Result<CommitOutcome, WriteError> {
        let started = std::time::Instant::now();
        let outcome = self.attempt(session_id).await;
        let result = match &outcome {
            Ok(CommitOutcome::Committed(_)) => "committed",
            Ok(CommitOutcome::Rejected { .. }) => "rejected",
            Ok(CommitOutcome::Pending { .. }) => "pending",
            Err(_) => "error",
        };
        self.origin.metrics().commit_attempted(result, started.elapsed());
        let failure = match &outcome {
            Ok(CommitOutcome::Pending { reason }) => Some(reason.clone()),
            Err(err) => Some(err.to_string()),
            Ok(_) => None,
        };
        let mut retries = lock(&self.retries);
        match failure {
            Some(last_error) => {
                let attempts = retries.get(session_id).map_or(0, |r| r.attempts) + 1;
                retries.insert(session_id.to_owned(), Retries { attempts, last_error });
            }
            None => {
                retries.remove(session_id);
            }
        }
        outcome
    }

    /// Every session left committing in this node's state, with this node's attempts at it.
    pub fn committing(&self) -> Result<Vec<CommittingSession>, WriteError> {
        let pending = app::pending_commits(&self.origin.chain().snapshot()?)?;
        let busy = lock(&self.busy);
        let retries = lock(&self.retries);
        Ok(pending
            .into_iter()
            .map(|session_id| {
                let tried = retries.get(&session_id);
                CommittingSession {
                    driving: busy.contains(&session_id),
                    failed_attempts: tried.map_or(0, |r| r.attempts),
                    last_error: tried.map(|r| r.last_error.clone()),
                    session_id,
                }
            })
            .collect())
    }

    async fn attempt(&self, session_id: &str) -> Result<CommitOutcome, WriteError> {
        let snapshot = self.origin.chain().snapshot()?;
        let ops = app::session_ops(&snapshot, session_id)?;
        drop(snapshot);
        if ops.is_empty() {
            return Err(WriteError::Internal(format!("session '{session_id}' has no recorded ops")));
        }
        let first_op_ms = ops[0].op.request.time_ms;
        let bundle = Bundle::new(self.origin.chain().chain_id(), session_id, ops);
        let signed = SignedBundle::sign(bundle, &self.commit_key);
        let answer = match tokio::time::timeout(self.attempt_timeout, self.l1.submit_bundle(signed)).await {
            Err(_) => Err(L1Error::Unavailable(format!("no answer within {:?}", self.attempt_timeout))),
            Ok(answer) => answer,
        };
        let (record, outcome) = match answer {
            Ok(receipt) => (
                CommitRecord { committed: true, receipt: Some(receipt.clone()), reason: None },
                CommitOutcome::Committed(receipt),
            ),
            Err(L1Error::Rejected { code, log }) => {
                let reason = format!("{}: {log}", code.name());
                (
                    CommitRecord { committed: false, receipt: None, reason: Some(reason.clone()) },
                    CommitOutcome::Rejected { reason },
                )
            }
            Err(L1Error::Unavailable(reason)) => {
                tracing::warn!(session_id, %reason, "L1 did not answer; the session stays committing");
                return Ok(CommitOutcome::Pending { reason });
            }
        };
        self.record(session_id, &record).await?;
        if let CommitOutcome::Committed(_) = outcome {
            let since = Duration::from_millis(crate::origin::now_ms().saturating_sub(first_op_ms));
            self.origin.metrics().session_committed(since);
        }
        Ok(outcome)
    }

    /// Records L1's answer on L2. Another node may have recorded it first, which is fine.
    async fn record(&self, session_id: &str, record: &CommitRecord) -> Result<(), WriteError> {
        let route = self
            .origin
            .registry()
            .routes()
            .iter()
            .find(|r| r.kind == RouteKind::CommitRecorded)
            .ok_or_else(|| WriteError::Internal("the service has no commit-recorded route".into()))?;
        let path = route.pattern.render(&[("id".to_owned(), session_id.to_owned())].into_iter().collect());
        let actor = Actor { id: self.origin.node_id().to_owned(), role: Role::node() };
        let body = serde_json::to_value(record).expect("commit records serialize");
        match self.origin.write(&actor, route.method, &path, body).await {
            Ok(_) => Ok(()),
            Err(WriteError::Refused(err)) if err.status == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Keeps trying to commit `session_id` in the background until L1 answers (at most one
    /// driver per session on this node).
    pub fn spawn_retry(self: &Arc<Self>, session_id: String) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Some(_busy) = this.claim(&session_id) else { return };
            let mut backoff = Duration::from_millis(200);
            loop {
                tokio::time::sleep(backoff).await;
                match this.commit_claimed(&session_id).await {
                    Ok(CommitOutcome::Pending { .. }) => backoff = (backoff * 2).min(this.max_backoff),
                    Err(err) => {
                        tracing::warn!(session_id, %err, "commit attempt failed; retrying");
                        backoff = (backoff * 2).min(this.max_backoff);
                    }
                    Ok(_) => break,
                }
                if !this.still_pending(&session_id) {
                    break;
                }
            }
        });
    }

    /// True while the session's L1 answer is not recorded on L2 (by this node or another).
    fn still_pending(&self, session_id: &str) -> bool {
        match self.origin.chain().snapshot() {
            Ok(snapshot) => app::pending_commits(&snapshot).map(|p| p.iter().any(|s| s == session_id)).unwrap_or(true),
            Err(_) => true,
        }
    }

    /// Resumes every session left committing (after a crash or by another node).
    pub fn resume_pending(self: &Arc<Self>) -> Result<usize, WriteError> {
        let snapshot = self.origin.chain().snapshot()?;
        let pending = app::pending_commits(&snapshot)?;
        let count = pending.len();
        for session_id in pending {
            self.spawn_retry(session_id);
        }
        Ok(count)
    }

    /// One sweep: drives every session left committing that this node froze, and those another
    /// node froze that have been committing for [`TAKEOVER_AFTER`] since this node first saw
    /// them. Returns how many it started driving.
    pub fn sweep(self: &Arc<Self>) -> Result<usize, WriteError> {
        let snapshot = self.origin.chain().snapshot()?;
        let pending = app::pending_commits(&snapshot)?;
        let now = Instant::now();
        let mut seen = lock(&self.seen_pending);
        seen.retain(|session_id, _| pending.contains(session_id));
        // Sessions another node finished leave this node's attempt counts too.
        lock(&self.retries).retain(|session_id, _| pending.contains(session_id));
        let mut started = 0;
        for session_id in pending {
            if lock(&self.busy).contains(&session_id) {
                continue;
            }
            let mine = app::commit_origin(&snapshot, &session_id)?.as_deref() == Some(self.origin.node_id());
            let first_seen = *seen.entry(session_id.clone()).or_insert(now);
            if mine || now.duration_since(first_seen) >= TAKEOVER_AFTER {
                self.spawn_retry(session_id);
                started += 1;
            }
        }
        Ok(started)
    }

    /// Sweeps for sessions left committing every [`SWEEP_INTERVAL`], once the chain is ready,
    /// for as long as the node runs.
    pub fn run_sweeper(self: Arc<Self>, chain: Arc<dyn Chain>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_INTERVAL).await;
                if chain.readiness().await.is_err() {
                    continue;
                }
                match self.sweep() {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "driving sessions left committing"),
                    Err(err) => tracing::error!(%err, "cannot list sessions left committing"),
                }
            }
        });
    }
}
