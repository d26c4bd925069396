//! The origin node's write path: build the replicated request (fixing its id and time), simulate
//! the handler on local state, sign the op, hand it to the chain and wait until it is final.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use serde_json::Value;

use crate::{
    app::{
        session::{self, SessionLog},
        tx::{Op, SignedOp, Tx},
        AppliedRequest, TxCode,
    },
    chain::{Chain, Finalized, SubmitError},
    crypto::SigningKey,
    metrics::Metrics,
    registry::{ids, Actor, AppError, ExecEnv, ExecMode, Layer, Registry, Request, Response, Route},
    store::StoreError,
};

/// What the reply's `meta` says about where and when a write became final.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WriteMeta {
    pub layer: Layer,
    pub node: String,
    pub height: u64,
    pub tx_hash: String,
    /// Wall time from receiving the request to its finality on this node, in milliseconds.
    #[schema(value_type = f64)]
    pub duration_ms: f64,
}

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub response: Response,
    pub meta: WriteMeta,
    pub session_id: Option<String>,
}

/// Why a write did not become final.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The handler refused the request (a business rule): answered as is, nothing replicated.
    #[error(transparent)]
    Refused(AppError),
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    /// The chain refused the op after simulation (a concurrent op changed the state).
    #[error("conflict ({}): {log}", code.name())]
    Conflict { code: TxCode, log: String },
    /// Not final in time; it may still apply. The client should retry or re-read.
    #[error("not final within {0:?}")]
    Timeout(Duration),
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    #[error("local failure: {0}")]
    Internal(String),
}

impl From<StoreError> for WriteError {
    fn from(err: StoreError) -> Self {
        WriteError::Internal(err.to_string())
    }
}

pub struct Origin {
    node_id: String,
    layer: Layer,
    key: SigningKey,
    registry: Arc<Registry>,
    chain: Arc<dyn Chain>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// Whether this node's CometBFT has no voting power, once asked (the validator set does not
    /// change while a node runs).
    full_node: std::sync::OnceLock<bool>,
}

impl Origin {
    pub fn new(
        node_id: impl Into<String>,
        layer: Layer,
        key: SigningKey,
        registry: Arc<Registry>,
        chain: Arc<dyn Chain>,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            node_id: node_id.into(),
            layer,
            key,
            registry,
            chain,
            timeout,
            metrics,
            full_node: std::sync::OnceLock::new(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn layer(&self) -> Layer {
        self.layer
    }

    pub fn chain(&self) -> &Arc<dyn Chain> {
        &self.chain
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Runs a client write through simulation and consensus.
    pub async fn write(
        &self,
        actor: &Actor,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<WriteOutcome, WriteError> {
        self.write_idempotent(actor, method, path, body, None).await
    }

    /// [`Origin::write`] with the client's `Idempotency-Key`: every retry with the same key is
    /// the same replicated request, so it applies at most once; once it has, a retry with the
    /// same method, path and body gets the first answer, and one with another gets `422`.
    pub async fn write_idempotent(
        &self,
        actor: &Actor,
        method: &str,
        path: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<WriteOutcome, WriteError> {
        let started = std::time::Instant::now();
        let (route, params) = self
            .registry
            .resolve(method, path)
            .filter(|(route, _)| !route.internal() || actor.role.is_node())
            .ok_or_else(|| WriteError::NoRoute { method: method.into(), path: path.into() })?;
        // A node that is behind would simulate on stale state and refuse what applies.
        self.chain.readiness().await.map_err(WriteError::Unavailable)?;
        let outcome = match self.build_request(route, params, actor, method, path, body, idempotency_key) {
            Ok(request) => match self.earlier_answer(&request, started)? {
                Some(answer) => Ok(answer),
                None => match self.simulate_and_submit_caught_up(route, &request, started).await {
                    Err(WriteError::Conflict { code: TxCode::Replayed, log }) => {
                        match self.earlier_answer(&request, started)? {
                            Some(answer) => Ok(answer),
                            None => Err(WriteError::Conflict { code: TxCode::Replayed, log }),
                        }
                    }
                    other => other,
                },
            },
            Err(err) => Err(err),
        };
        let result = match &outcome {
            Ok(_) => "ok",
            Err(WriteError::Refused(_)) => "refused",
            Err(WriteError::Conflict { .. }) => "conflict",
            Err(WriteError::Timeout(_)) => "timeout",
            Err(WriteError::Unavailable(_)) => "unavailable",
            Err(WriteError::NoRoute { .. } | WriteError::Internal(_)) => "error",
        };
        self.metrics.write_finished(self.layer, route.op, result, started.elapsed());
        outcome
    }

    /// The first answer to a request sent with an idempotency key that already applied here.
    fn earlier_answer(
        &self,
        request: &Request,
        started: std::time::Instant,
    ) -> Result<Option<WriteOutcome>, WriteError> {
        if request.idempotency_key.is_none() {
            return Ok(None);
        }
        let Some(first) = AppliedRequest::read(&self.chain.snapshot()?, &request.request_id)? else {
            return Ok(None);
        };
        let response = match first.response {
            Some(response) if first.fingerprint == AppliedRequest::fingerprint(request) => response,
            _ => {
                return Err(WriteError::Refused(AppError::unprocessable(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request (method, path or body)",
                )))
            }
        };
        Ok(Some(WriteOutcome {
            response,
            meta: WriteMeta {
                layer: self.layer,
                node: first.origin,
                height: first.height,
                tx_hash: first.tx_hash,
                duration_ms: started.elapsed().as_secs_f64() * 1e3,
            },
            session_id: request.session_id.clone(),
        }))
    }

    /// [`Origin::simulate_and_submit`]; a refusal that may come from state a few blocks behind
    /// (a session started on another node may not be here yet) is checked before it is given.
    /// On a node that may lag (a full node applies each block a little after the validators;
    /// any node may have a peer ahead of it) it is simulated again on every newer block for up
    /// to [`CATCH_UP_WAIT`]. If a peer is still ahead then, the node cannot tell, and answers
    /// `503` (retry, on another node) rather than a refusal that may be wrong.
    async fn simulate_and_submit_caught_up(
        &self,
        route: &Route,
        request: &Request,
        started: std::time::Instant,
    ) -> Result<WriteOutcome, WriteError> {
        let height = || self.chain.snapshot().and_then(|snapshot| snapshot.last_block()).map(|block| block.height);
        let mut seen = height().unwrap_or(0);
        let mut attempt = self.simulate_and_submit(route, request.clone(), started).await;
        if !may_be_stale(&attempt) || !(self.is_full_node().await || self.peer_ahead().await.is_some()) {
            return attempt;
        }
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let Ok(now) = height() else { break };
            if now > seen {
                seen = now;
                attempt = self.simulate_and_submit(route, request.clone(), started).await;
                if !may_be_stale(&attempt) {
                    break;
                }
            }
        }
        if may_be_stale(&attempt) {
            if let Some((own, peer)) = self.peer_ahead().await {
                return Err(WriteError::Unavailable(format!(
                    "this node is behind its peers (it works on height {own}, a peer on {peer}), so it cannot \
                     tell whether this request applies: retry, on another node"
                )));
            }
        }
        attempt
    }

    /// `(this node's height, the highest peer's)` when a connected peer is ahead of this node.
    /// Unknown (no CometBFT, its RPC down) counts as not ahead: the refusal's own state stands.
    async fn peer_ahead(&self) -> Option<(u64, u64)> {
        let rpc = self.chain.cometbft()?;
        let heights = tokio::time::timeout(PEER_HEIGHTS_TIMEOUT, rpc.consensus_heights()).await.ok()?.ok()?;
        heights.peer_ahead().map(|peer| (heights.own, peer))
    }

    /// A CometBFT node with no voting power. A validator has every block as soon as it is
    /// decided; the in-process sequencer has no other replica. Asked of CometBFT once.
    async fn is_full_node(&self) -> bool {
        if let Some(known) = self.full_node.get() {
            return *known;
        }
        let Some(rpc) = self.chain.cometbft() else { return false };
        match rpc.status().await {
            Ok(status) => *self.full_node.get_or_init(|| status.voting_power == 0),
            // Unknown for now: asked again at the next refusal.
            Err(_) => false,
        }
    }

    async fn simulate_and_submit(
        &self,
        route: &Route,
        request: Request,
        started: std::time::Instant,
    ) -> Result<WriteOutcome, WriteError> {
        let mut request = request;
        let (response, log) = self.simulate(route, &mut request)?;
        let session_id = request.session_id.clone();
        let signed = SignedOp::sign(Op { request, response: response.clone() }, &self.node_id, &self.key);
        let tx = Tx::Op(signed).encode();
        if route.bundled() {
            let (ops, bytes) = log.map_or((0, 0), |log| (log.ops, log.bytes));
            if let Err(message) = session::check_caps(ops, bytes, route, tx.len() as u64) {
                return Err(WriteError::Refused(AppError::new(413, "session_too_large", message)));
            }
        }
        let prepared = started.elapsed();
        let finalized = self.submit(tx).await?;
        tracing::debug!(
            op = route.op,
            prepare_us = prepared.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            height = finalized.height,
            "write final"
        );
        Ok(WriteOutcome {
            response,
            meta: WriteMeta {
                layer: self.layer,
                node: self.node_id.clone(),
                height: finalized.height,
                tx_hash: finalized.tx_hash,
                duration_ms: started.elapsed().as_secs_f64() * 1e3,
            },
            session_id,
        })
    }

    /// Submits an already built transaction and waits for it, with this node's timeout.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<Finalized, WriteError> {
        match tokio::time::timeout(self.timeout, self.chain.submit(tx)).await {
            Err(_) => Err(WriteError::Timeout(self.timeout)),
            Ok(Ok(finalized)) => Ok(finalized),
            Ok(Err(SubmitError::Refused { code, log })) => Err(WriteError::Conflict { code, log }),
            Ok(Err(SubmitError::Timeout(_))) => Err(WriteError::Timeout(self.timeout)),
            Ok(Err(SubmitError::Unavailable(why))) => Err(WriteError::Unavailable(why)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_request(
        &self,
        route: &Route,
        params: std::collections::BTreeMap<String, String>,
        actor: &Actor,
        method: &str,
        path: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Request, WriteError> {
        let request_id = match idempotency_key {
            Some(key) => {
                ids::check_idempotency_key(key).map_err(WriteError::Refused)?;
                ids::idempotent_request_id(actor, key)
            }
            None => new_request_id().map_err(|e| WriteError::Internal(format!("no randomness: {e}")))?,
        };
        let session_id = route.session_id(&request_id, &params);
        Ok(Request {
            method: method.to_owned(),
            path: path.to_owned(),
            params,
            body,
            actor: actor.clone(),
            request_id,
            time_ms: now_ms(),
            session_id,
            // Fixed at simulation, from the session's log.
            session_seq: None,
            idempotency_key: idempotency_key.map(str::to_owned),
        })
    }

    /// Runs the handler on committed state, after numbering the op in its session. Returns the
    /// response and the session's log before this op.
    fn simulate(&self, route: &Route, request: &mut Request) -> Result<(Response, Option<SessionLog>), WriteError> {
        let snapshot = self.chain.snapshot()?;
        let log = match (&request.session_id, route.bundled()) {
            (Some(session_id), true) => {
                let log = SessionLog::read(&snapshot, session_id)?;
                request.session_seq = Some(log.as_ref().map_or(0, |log| log.ops));
                log
            }
            _ => None,
        };
        let mut ctx = self.registry.service_ctx(&snapshot, ExecEnv { layer: self.layer, mode: ExecMode::Standalone });
        match crate::app::run_route(&self.registry, &mut ctx, route, request) {
            Ok(response) => Ok((response, log)),
            Err(err) if err.is_internal() => Err(WriteError::Internal(err.message)),
            Err(err) => Err(WriteError::Refused(err)),
        }
    }
}

/// A refusal that state a few blocks newer could turn into an answer: not found, or a conflict.
fn may_be_stale(attempt: &Result<WriteOutcome, WriteError>) -> bool {
    matches!(attempt, Err(WriteError::Refused(err)) if matches!(err.status, 404 | 409))
}

/// How long a full node keeps looking for newer blocks before answering a refusal that may come
/// from state a few blocks behind.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a refusal waits for CometBFT to say where its peers are.
const PEER_HEIGHTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The origin's clock: the one place wall time enters a replicated request.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A fresh random request id (128 bits, hex).
fn new_request_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}
