//! Liveness and readiness.

use axum::{extract::State, routing::get, Json, Router};
use serde_json::{json, Value};

use super::{ApiError, ApiState};

pub(super) fn router() -> Router<ApiState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
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
