//! `/metrics` and the request-timing middleware.

use std::{collections::BTreeMap, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{ApiError, ApiState};
use crate::{
    app::session::SessionLog,
    store::{keys, Snapshot, StoreError},
};

/// Prometheus text format. Session counts are taken from state at scrape time.
pub(super) async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let origin = state.origin();
    let counts: Vec<(&str, u64)> = session_counts(&origin.chain().snapshot()?)?.into_iter().collect();
    origin.metrics().set_sessions(&counts);
    origin.metrics().set_waiters(origin.chain().open_waiters());
    let body = origin.metrics().encode();
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response())
}

/// Sessions in state by status.
pub(super) fn session_counts(snapshot: &Snapshot) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for bytes in snapshot.scan_prefix(&keys::session_prefix())?.values() {
        if let Ok(session) = serde_json::from_slice::<SessionLog>(bytes) {
            *counts.entry(session.phase.as_str()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Times every request, labelled by its route template (never the raw path).
pub(super) async fn record(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state.origin().metrics().http_request(&route, response.status().as_u16(), started.elapsed());
    response
}
