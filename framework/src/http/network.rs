//! `/v1/network`: the node, its chain and L1 as people watching them want to see them (the
//! console's network page): heights, validators and their signatures, recent latencies,
//! sessions by status and the commits in flight.

use std::collections::BTreeMap;

use axum::{extract::State, http::HeaderMap, Json};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{bearer_token, Authenticated},
    ApiError, ApiState, ErrorBody,
};
use crate::{l2::CommittingSession, metrics::RecentSummary, network::ChainStatus, registry::Layer};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(network))
}

/// What `GET /v1/network` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct NetworkReport {
    node: NodeInfo,
    /// This node's chain.
    chain: ChainStatus,
    /// On an L2 node: L1 as one of its nodes reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    l1: Option<ChainStatus>,
    /// On an L2 node: why L1's report is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    l1_error: Option<String>,
    /// Latencies on this node over the last minutes.
    latency: RecentSummary,
    /// Sessions in this node's state by status.
    sessions: BTreeMap<String, u64>,
    /// Sessions whose L1 answer is not recorded yet, with this node's attempts (L2 nodes).
    committing: Vec<CommittingSession>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct NodeInfo {
    id: String,
    layer: Layer,
    chain_id: String,
}

/// This node, its chain and (on L2) L1: heights, validators and which signed the last blocks,
/// blocks in the last minute, L2 op and L1 commit latency p50/p99 over the last minutes,
/// sessions by status and the sessions committing.
#[utoipa::path(get, path = "/v1/network", tag = "network",
    responses((status = 200, description = "`{data: NetworkReport}`", body = NetworkReport),
        (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody, description = "this node's CometBFT did not answer")),
    security(("bearer" = [])))]
async fn network(
    State(state): State<ApiState>,
    Authenticated(_actor): Authenticated,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let origin = state.origin();
    let chain = origin.chain();
    let snapshot = chain.snapshot()?;
    let sessions = super::metrics::session_counts(&snapshot)?.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let height = snapshot.last_block()?.height;
    drop(snapshot);
    let own = match chain.cometbft() {
        Some(rpc) => ChainStatus::from_cometbft(rpc, chain.chain_id())
            .await
            .map_err(|e| ApiError::new(503, "unavailable", format!("this node's CometBFT: {e}")).retry_after(1))?,
        None => ChainStatus::local(chain.chain_id(), height),
    };
    let (l1, l1_error) = match (origin.layer(), state.committer()) {
        (Layer::L1, _) => (None, None),
        (Layer::L2, None) => (None, Some("this L2 node has no L1 configured".to_owned())),
        (Layer::L2, Some(committer)) => match committer.l1().chain_status(bearer_token(&headers)?).await {
            Ok(status) => (Some(status), None),
            Err(err) => (None, Some(err.to_string())),
        },
    };
    let committing = match state.committer() {
        Some(committer) => committer.committing()?,
        None => Vec::new(),
    };
    let report = NetworkReport {
        node: NodeInfo {
            id: origin.node_id().to_owned(),
            layer: origin.layer(),
            chain_id: chain.chain_id().to_owned(),
        },
        chain: own,
        l1,
        l1_error,
        latency: origin.metrics().recent(),
        sessions,
        committing,
    };
    Ok(Json(json!({"data": report})))
}
