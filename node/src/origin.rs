//! The origin node's write path: build the replicated request (fixing its id and time), simulate
//! the handler on local state, sign the op, hand it to the chain and wait until it is final.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use serde_json::Value;

use crate::{
    app::tx::{Op, SignedOp, Tx},
    chain::{Chain, Finalized, SubmitError},
    crypto::SigningKey,
    metrics::Metrics,
    registry::{Actor, AppError, Ctx, ExecEnv, ExecMode, Layer, Registry, Request, Response, Route},
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
    #[error("conflict: {0}")]
    Conflict(String),
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
        Self { node_id: node_id.into(), layer, key, registry, chain, timeout, metrics }
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
        let started = std::time::Instant::now();
        let (route, params) = self
            .registry
            .resolve(method, path)
            .filter(|(route, _)| !route.internal() || actor.role == crate::registry::Role::Node)
            .ok_or_else(|| WriteError::NoRoute { method: method.into(), path: path.into() })?;
        let outcome = match self.build_request(route, params, actor, method, path, body) {
            Ok(request) => self.simulate_and_submit(route, request, started).await,
            Err(err) => Err(err),
        };
        let result = match &outcome {
            Ok(_) => "ok",
            Err(WriteError::Refused(_)) => "refused",
            Err(WriteError::Conflict(_)) => "conflict",
            Err(WriteError::Timeout(_)) => "timeout",
            Err(WriteError::Unavailable(_)) => "unavailable",
            Err(WriteError::NoRoute { .. } | WriteError::Internal(_)) => "error",
        };
        self.metrics.write_finished(self.layer, route.op, result, started.elapsed());
        outcome
    }

    async fn simulate_and_submit(
        &self,
        route: &Route,
        request: Request,
        started: std::time::Instant,
    ) -> Result<WriteOutcome, WriteError> {
        let response = self.simulate(route, &request)?;
        let session_id = request.session_id.clone();
        let signed = SignedOp::sign(Op { request, response: response.clone() }, &self.node_id, &self.key);
        let prepared = started.elapsed();
        let finalized = self.submit(Tx::Op(signed).encode()).await?;
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
            Ok(Err(SubmitError::Refused { code, log })) => Err(WriteError::Conflict(format!("{}: {log}", code.name()))),
            Ok(Err(SubmitError::Timeout(_))) => Err(WriteError::Timeout(self.timeout)),
            Ok(Err(SubmitError::Unavailable(why))) => Err(WriteError::Unavailable(why)),
        }
    }

    fn build_request(
        &self,
        route: &Route,
        params: std::collections::BTreeMap<String, String>,
        actor: &Actor,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<Request, WriteError> {
        let request_id = new_request_id().map_err(|e| WriteError::Internal(format!("no randomness: {e}")))?;
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
        })
    }

    fn simulate(&self, route: &Route, request: &Request) -> Result<Response, WriteError> {
        let snapshot = self.chain.snapshot()?;
        let mut ctx = Ctx::new(&snapshot, ExecEnv { layer: self.layer, mode: ExecMode::Standalone });
        match (route.handler)(&mut ctx, request) {
            Ok(response) => Ok(response),
            Err(err) if err.is_internal() => Err(WriteError::Internal(err.message)),
            Err(err) => Err(WriteError::Refused(err)),
        }
    }
}

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
