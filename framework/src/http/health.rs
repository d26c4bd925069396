//! Liveness and readiness.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{extract::State, routing::get, Json, Router};
use serde_json::{json, Value};

use super::{ApiError, ApiState};

pub(super) fn router() -> Router<ApiState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Live unless this node's committed height has stood still for [`STALL_LIMIT`] while a peer
/// was at least two blocks past it. CometBFT keeps running and answering after a consensus
/// failure it cannot recover from (a write to a full disk, say) but never decides again;
/// failing liveness gets the node restarted (the orchestrator restarts the application, and
/// CometBFT stops with its lost ABCI connection and is restarted too). A node that block-syncs
/// commits all the while, so it stays live.
async fn healthz(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let live = || Ok(Json(json!({"status": "ok"})));
    let Some(rpc) = state.origin().chain().cometbft() else { return live() };
    let probe = async { Ok::<_, crate::cometbft::RpcError>((rpc.status().await?, rpc.consensus_heights().await?)) };
    // CometBFT unreachable or slow is its own process's failure, not this one's.
    let Ok(Ok((status, heights))) = tokio::time::timeout(PROBE_RPC_TIMEOUT, probe).await else { return live() };
    let committed = status.latest_height;
    let ahead = heights.peer_ahead_of_committed(committed);
    match state.stall().observe(committed, ahead, Instant::now()) {
        Some(stalled_for) => Err(ApiError::new(
            503,
            "consensus_stalled",
            format!(
                "this node has committed nothing past height {committed} for {} s while a peer is at {}: \
                 restart the node",
                stalled_for.as_secs(),
                ahead.unwrap_or_default()
            ),
        )),
        None => live(),
    }
}

/// A probe answers within the orchestrator's timeout (the operator's probes allow 2 s).
const PROBE_RPC_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the committed height may stand still behind a peer before the node reports itself
/// not live: well above a restart's replay (block sync then moves the height).
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Since when this node's committed height has stood still with a peer ahead.
#[derive(Default)]
pub(super) struct StallWatch(Mutex<Option<(u64, Instant)>>);

impl StallWatch {
    /// Records what liveness saw; how long it has been stalled, once that is [`STALL_LIMIT`].
    fn observe(&self, own: u64, peer_ahead: Option<u64>, now: Instant) -> Option<Duration> {
        let mut since = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if peer_ahead.is_none() {
            *since = None;
            return None;
        }
        match *since {
            Some((height, at)) if height == own => {
                let stalled = now.saturating_duration_since(at);
                (stalled >= STALL_LIMIT).then_some(stalled)
            }
            _ => {
                *since = Some((own, now));
                None
            }
        }
    }
}

/// Ready when the node's state can be read (and, under CometBFT, when the chain is caught up).
async fn readyz(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let origin = state.origin();
    if let Err(reason) = origin.chain().readiness().await {
        return Err(ApiError::new(503, "not_ready", reason));
    }
    let last = origin.chain().snapshot()?.last_block()?;
    Ok(Json(json!({
        "status": "ready",
        "layer": origin.layer(),
        "node": origin.node_id(),
        "chain_id": origin.chain().chain_id(),
        "height": last.height,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stall_behind_a_peer_for_the_whole_limit_is_not_live() {
        let watch = StallWatch::default();
        let t0 = Instant::now();
        assert_eq!(watch.observe(10, Some(12), t0), None);
        assert_eq!(watch.observe(10, Some(13), t0 + STALL_LIMIT / 2), None);
        assert_eq!(watch.observe(10, Some(14), t0 + STALL_LIMIT), Some(STALL_LIMIT));
        // Progress starts the clock again; no peer ahead clears it.
        assert_eq!(watch.observe(11, Some(14), t0 + STALL_LIMIT * 2), None);
        assert_eq!(watch.observe(11, None, t0 + STALL_LIMIT * 4), None);
        assert_eq!(watch.observe(11, Some(14), t0 + STALL_LIMIT * 5), None);
    }
}
