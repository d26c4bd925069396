//! The L1 API: bundle submission (authenticated by the bundle's commit-key signature, not by a
//! token) and the ledger read API.

use std::time::Instant;

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{bearer_token, Authenticated},
    refusals::{self, PeerAddr},
    sessions::readable_session,
    ApiError, ApiState, ErrorBody,
};
use crate::{
    app::{
        self,
        tx::{SignedBundle, Tx, MAX_TX_BYTES},
        App, LedgerEntry, Receipt, TxCode,
    },
    cometbft::CometRpc,
    origin::WriteError,
    proof::{self, Check, SessionProof},
    registry::{ids, Actor, AppError, Layer},
};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(submit_bundle))
        .layer(DefaultBodyLimit::max(MAX_TX_BYTES))
        .routes(routes!(get_ledger_session))
        .routes(routes!(get_session_proof))
}

/// The proof of finality of a session committed to L1: its bundle's transaction, block H's and
/// H+1's signed headers and the leaves of H's transaction and result trees, for a client to check
/// against L1's validator set without trusting this node (`bftws-node verify`; format and checks
/// in `bftws_framework::proof`). An L1 node builds it from its ledger and CometBFT; an L2 node
/// asks L1 for it with the caller's token (for the session's owner, admins and auditors), and
/// passes on only a proof that verifies against L1's genesis.
#[utoipa::path(get, path = "/v1/sessions/{id}/proof", tag = "l1",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionProof, description = "`{data: proof}`"),
        (status = 503, body = ErrorBody, description = "block H+1 is not committed yet (retry shortly) or this node has no CometBFT"),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_session_proof(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    ids::check("id", &id)?;
    let (status, body) = session_proof(&state, &actor, &id, &headers).await?;
    Ok((status, Json(body)).into_response())
}

/// A session's proof answer, `{data: proof}` or a refusal (status and body): built on L1,
/// asked of L1 on L2.
pub(super) async fn session_proof(
    state: &ApiState,
    actor: &Actor,
    id: &str,
    headers: &HeaderMap,
) -> Result<(StatusCode, Value), ApiError> {
    let origin = state.origin();
    if origin.layer() == Layer::L2 {
        return proof_from_l1(state, actor, id, headers).await;
    }
    let entry =
        app::ledger_entry(&origin.chain().snapshot()?, id)?.ok_or_else(|| AppError::not_found("ledger session", id))?;
    let proof = proof::build(cometbft(state)?, origin.chain().chain_id(), &entry, Check::Finality)
        .await
        .map_err(|e| ApiError::new(503, "unavailable", e.to_string()).retry_after(1))?;
    Ok((StatusCode::OK, json!({"data": proof})))
}

/// This node's CometBFT, which proofs are built from.
fn cometbft(state: &ApiState) -> Result<&CometRpc, ApiError> {
    state
        .origin()
        .chain()
        .cometbft()
        .ok_or_else(|| ApiError::new(503, "unavailable", "this node runs without CometBFT: no proofs"))
}

/// On L2: the session's proof as L1 gives it (L1's own refusal passed on as it is).
async fn proof_from_l1(
    state: &ApiState,
    actor: &Actor,
    id: &str,
    headers: &HeaderMap,
) -> Result<(StatusCode, Value), ApiError> {
    let log = readable_session(state, &state.origin().chain().snapshot()?, actor, id)?;
    if log.receipt.is_none() {
        return Err(ApiError::new(409, "not_committed", format!("session {id} has no L1 receipt yet")));
    }
    let committer =
        state.committer().ok_or_else(|| ApiError::new(503, "unavailable", "this L2 node has no L1 configured"))?;
    let (status, body) = committer
        .l1()
        .session_proof(id, bearer_token(headers)?)
        .await
        .map_err(|e| ApiError::new(503, "unavailable", e.to_string()).retry_after(1))?;
    Ok((StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), body))
}

/// Submit a signed session bundle; answers once it is final on L1. A bundle already committed
/// with the same hash answers its original receipt.
#[utoipa::path(post, path = "/v1/l1/bundles", tag = "l1", params(SubmitOptions),
    request_body(content = Object, description = "a SignedBundle: {bundle, committer_key, signature}"),
    responses((status = 200, body = Receipt, description = "`{data: receipt}`, and `proof` (a SessionProof of inclusion, without block H+1) when asked"), (status = 422, body = ErrorBody, description = "L1 refused the bundle"),
        (status = 429, body = ErrorBody, description = "this source's bundles were refused too often; retry after `Retry-After`"),
        (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn submit_bundle(
    State(state): State<ApiState>,
    peer: Option<Extension<PeerAddr>>,
    Query(options): Query<SubmitOptions>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    require_l1(&state)?;
    let with_proof = options.proof.unwrap_or(false);
    let Some(Extension(PeerAddr(peer))) = peer else {
        return submit(&state, request, with_proof).await;
    };
    let limiter = state.refusals();
    if let Err(wait) = limiter.check(peer.ip(), Instant::now()) {
        // Held before the answer: a flooding connection then costs a timer, not a request
        // loop, and its sender's rate falls to about one request per second per connection.
        tokio::time::sleep(wait.min(refusals::HOLD_MAX)).await;
        return Err(refusals::out_of_budget(peer.ip(), wait));
    }
    let outcome = submit(&state, request, with_proof).await;
    if outcome.as_ref().is_err_and(|e| (400..500).contains(&e.status())) {
        limiter.refused(peer.ip(), Instant::now());
    }
    outcome
}

#[derive(Debug, Deserialize, IntoParams)]
struct SubmitOptions {
    /// Answer with the receipt's proof of inclusion too (`proof`): block H's signed header and
    /// its transactions' hashes, without block H+1 (what the L2 committer verifies).
    proof: Option<bool>,
}

/// How long an answer with a proof waits for block H's commit to be readable.
const PROOF_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The answer to a committed bundle: its receipt and, when asked, its proof.
async fn answer(state: &ApiState, entry: &LedgerEntry, with_proof: bool) -> Result<Json<Value>, ApiError> {
    let origin = state.origin();
    let chain_id = origin.chain().chain_id();
    let receipt = Receipt::committed(chain_id, entry);
    if !with_proof {
        return Ok(Json(json!({"data": receipt})));
    }
    let rpc = cometbft(state)?;
    let deadline = Instant::now() + PROOF_WAIT;
    loop {
        match proof::build(rpc, chain_id, entry, Check::Inclusion).await {
            Ok(proof) => return Ok(Json(json!({"data": receipt, "proof": proof}))),
            Err(e) if Instant::now() >= deadline => {
                return Err(
                    ApiError::new(503, "unavailable", format!("committed, but no proof yet: {e}")).retry_after(1)
                )
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// Reads, checks and submits a bundle; the body is read only here, after the source's budget.
async fn submit(state: &ApiState, request: Request, with_proof: bool) -> Result<Json<Value>, ApiError> {
    let body = Bytes::from_request(request, &()).await.map_err(|rejection| {
        let status = rejection.status().as_u16();
        let code = if status == 413 { "payload_too_large" } else { "invalid_request" };
        ApiError::new(status, code, rejection.body_text())
    })?;
    let bundle: SignedBundle = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, "invalid_request", format!("not a signed bundle: {e}")))?;
    let origin = state.origin();
    let session_id = bundle.bundle.session_id.clone();
    // Refusals below are final for the committer: only a node in consensus may give them.
    origin.chain().readiness().await.map_err(|reason| ApiError::from(WriteError::Unavailable(reason)))?;
    // The checks that cost nothing, before anything is verified, encoded or broadcast: a flood
    // of refused bundles costs this node a parse and a few reads each. The body's length stands
    // for the transaction's here (CheckTx checks the exact one).
    let snapshot = origin.chain().snapshot()?;
    if let Err((code, log)) = App::precheck_bundle(origin.registry(), origin.layer(), &snapshot, &bundle, body.len())? {
        return Err(rejected(code, &log, &session_id));
    }
    if bundle.verify_signature().is_err() {
        return Err(rejected(
            TxCode::BadSignature,
            "bundle signature does not verify under the commit key",
            &session_id,
        ));
    }
    if let Some(existing) = app::ledger_entry(&snapshot, &session_id)? {
        if existing.bundle_hash == bundle.bundle.bundle_hash {
            drop(snapshot);
            return answer(state, &existing, with_proof).await;
        }
    }
    drop(snapshot);
    match origin.submit(Tx::Bundle(bundle).encode()).await {
        Ok(finalized) => {
            let entry = finalized
                .ledger
                .ok_or_else(|| ApiError::new(500, "internal", "bundle applied without a ledger entry"))?;
            answer(state, &entry, with_proof).await
        }
        Err(WriteError::Conflict { code, log }) => Err(rejected(code, &log, &session_id)),
        Err(other) => Err(other.into()),
    }
}

/// L1's refusal of a bundle: final, with its tx code and, when the log names one, the step.
fn rejected(code: TxCode, log: &str, session_id: &str) -> ApiError {
    let mut error = ApiError::new(422, "bundle_rejected", format!("L1 refused the bundle: {log}"))
        .with("tx_code", code.name())
        .with("session_id", session_id);
    if let Some(step) =
        log.strip_prefix("step ").and_then(|s| s.split([' ', ':']).next()).and_then(|s| s.parse::<u64>().ok())
    {
        error = error.with("step", step);
    }
    error
}

/// A committed session as recorded in the L1 ledger, with its receipt.
#[utoipa::path(get, path = "/v1/l1/sessions/{id}", tag = "l1",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = LedgerEntry), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_ledger_session(
    State(state): State<ApiState>,
    Authenticated(_actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_l1(&state)?;
    ids::check("id", &id)?;
    let origin = state.origin();
    let entry = app::ledger_entry(&origin.chain().snapshot()?, &id)?
        .ok_or_else(|| AppError::not_found("ledger session", &id))?;
    let receipt = Receipt::committed(origin.chain().chain_id(), &entry);
    Ok(Json(json!({"data": {"ledger": entry, "receipt": receipt}})))
}

/// Only L1 executes bundles and keeps the ledger.
fn require_l1(state: &ApiState) -> Result<(), ApiError> {
    if state.origin().layer() == Layer::L1 {
        Ok(())
    } else {
        Err(ApiError::new(404, "not_found", "this route is served by L1 nodes only"))
    }
}
