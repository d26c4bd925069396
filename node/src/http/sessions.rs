//! `/v1/sessions`: start and list sessions, read one, and every session step.

use std::time::Instant;

use axum::{
    extract::{Path, State},
    http::{StatusCode, Uri},
    response::IntoResponse,
    Json,
};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{Authenticated, IdempotencyKey, JsonObject},
    ApiError, ApiState, ErrorBody, WriteReply,
};
use crate::{
    app::session::SessionLog,
    l2::CommitOutcome,
    registry::{ids, Actor},
    store::keys,
    supply_chain::model::{Empty, Label, QualityCheck, RegisterPackage, Scan, StartSession, Validate},
};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(start_session, list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(register_package))
        .routes(routes!(scan))
        .routes(routes!(validate))
        .routes(routes!(qc))
        .routes(routes!(label))
        .routes(routes!(commit))
        .routes(routes!(abort))
}

/// Runs a write through the origin and answers `{data, meta}` with the handler's status.
async fn write(
    state: &ApiState,
    actor: &Actor,
    uri: &Uri,
    body: Value,
    idempotency_key: Option<&str>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let outcome = state.origin().write_idempotent(actor, "POST", uri.path(), body, idempotency_key).await?;
    let status = StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::OK);
    Ok((status, Json(json!({"data": outcome.response.body, "meta": outcome.meta}))))
}

/// Start a session (`supplier` or `warehouse`); the caller becomes its owner.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = StartSession,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 201, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn start_session(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Register a signed package (supplier sessions).
#[utoipa::path(post, path = "/v1/sessions/{id}/register_package", tag = "supplier", request_body = RegisterPackage,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 201, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn register_package(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Scan a committed package and claim it for this session (warehouse sessions).
#[utoipa::path(post, path = "/v1/sessions/{id}/scan", tag = "warehouse", request_body = Scan,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn scan(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Verify the supplier's signature presented with the package.
#[utoipa::path(post, path = "/v1/sessions/{id}/validate", tag = "warehouse", request_body = Validate,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn validate(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Record the quality check; a failed check leaves only `abort`.
#[utoipa::path(post, path = "/v1/sessions/{id}/qc", tag = "warehouse", request_body = QualityCheck,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn qc(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Label the package for a courier (requires a passed quality check).
#[utoipa::path(post, path = "/v1/sessions/{id}/label", tag = "warehouse", request_body = Label,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn label(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Abort an open session, releasing what it holds.
#[utoipa::path(post, path = "/v1/sessions/{id}/abort", tag = "sessions", request_body = Empty,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn abort(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    write(&state, &actor, &uri, body, key.as_deref()).await
}

/// Commit the session to L1: 200 with the receipt once L1 has it; 202 while L1 does not answer
/// (the node keeps retrying; poll the session); 422 when L1 rejects it.
#[utoipa::path(post, path = "/v1/sessions/{id}/commit", tag = "sessions", request_body = Empty,
    params(("id" = String, Path, description = "session id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key get the first answer; the write applies once")),
    responses((status = 200, body = WriteReply), (status = 202, body = WriteReply),
        (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn commit(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let started = Instant::now();
    let outcome = state.origin().write_idempotent(&actor, "POST", uri.path(), body, key.as_deref()).await?;
    let session_id = outcome.session_id.clone().unwrap_or_default();
    let mut meta = serde_json::to_value(&outcome.meta).expect("meta serializes");
    let Some(committer) = state.committer() else {
        // No committer: this node's own chain is final (direct-L1 mode).
        return Ok((StatusCode::OK, Json(json!({"data": outcome.response.body, "meta": meta}))));
    };
    // The attempt runs in its own task: a client that goes away does not cancel it.
    let attempt = {
        let (committer, session_id) = (committer.clone(), session_id.clone());
        tokio::spawn(async move { committer.commit(&session_id).await })
    };
    let result = attempt.await.map_err(|e| ApiError::new(500, "internal", format!("commit task failed: {e}")))??;
    meta["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    match result {
        CommitOutcome::Committed(receipt) => Ok((
            StatusCode::OK,
            Json(json!({
                "data": {"session_id": session_id, "status": "committed", "receipt": receipt},
                "meta": meta,
            })),
        )),
        CommitOutcome::Rejected { reason } => {
            Err(ApiError::new(422, "commit_rejected", format!("L1 rejected the session: {reason}"))
                .with("session_id", session_id))
        }
        CommitOutcome::Pending { reason } => {
            committer.spawn_retry(session_id.clone());
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "data": {
                        "session_id": session_id,
                        "status": "committing",
                        "reason": reason,
                        "poll": format!("/v1/sessions/{session_id}"),
                    },
                    "meta": meta,
                })),
            ))
        }
    }
}

/// List sessions: your own; every session for roles that read all sessions (`admin`, `auditor`).
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses((status = 200, description = "`{data: [session]}`"), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_sessions(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state.origin().chain().snapshot()?;
    let ids: Vec<String> = if state.origin().registry().reads_all_sessions(&actor) {
        let prefix = keys::session_prefix();
        snapshot
            .scan_prefix(&prefix)?
            .keys()
            .map(|key| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            .collect()
    } else {
        let prefix = keys::session_by_owner_prefix(&actor.id);
        snapshot
            .scan_prefix(&prefix)?
            .keys()
            .map(|key| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            .collect()
    };
    let mut sessions = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some((data, _)) = session_json(&state, &snapshot, id)? {
            sessions.push(data);
        }
    }
    let height = snapshot.last_block()?.height;
    Ok(Json(json!({"data": sessions, "meta": {"height": height, "count": sessions.len()}})))
}

/// Read a session (its owner, or a role that reads all sessions).
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "`{data: session, meta: {height, expected_step}}`"), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_session(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ids::check("id", &id)?;
    let snapshot = state.origin().chain().snapshot()?;
    let log = SessionLog::read(&snapshot, &id)?.ok_or_else(|| crate::registry::AppError::not_found("session", &id))?;
    if log.owner != actor.id && !state.origin().registry().reads_all_sessions(&actor) {
        return Err(ApiError::new(403, "forbidden", "only the session's owner, admins and auditors may read it"));
    }
    let (data, expected_step) =
        session_json(&state, &snapshot, &id)?.ok_or_else(|| crate::registry::AppError::not_found("session", &id))?;
    let height = snapshot.last_block()?.height;
    Ok(Json(json!({"data": data, "meta": {"height": height, "expected_step": expected_step}})))
}

/// A session as clients see it: the service's view, with where the session stands and L1's
/// answer from the framework's record.
fn session_json(
    state: &ApiState,
    snapshot: &crate::store::Snapshot,
    id: &str,
) -> Result<Option<(Value, Option<String>)>, ApiError> {
    let Some(log) = SessionLog::read(snapshot, id)? else { return Ok(None) };
    let registry = state.origin().registry();
    let view = registry.service().session_view(&registry.service_state(snapshot), id)?;
    let (mut data, expected_step) = match view {
        Some(view) => (view.data, view.expected_step),
        None => (json!({"session_id": id}), None),
    };
    if let Some(fields) = data.as_object_mut() {
        fields.insert("owner".into(), json!(log.owner));
        fields.insert("status".into(), json!(log.phase));
        fields.insert("receipt".into(), json!(log.receipt));
        fields.insert("rejection".into(), json!(log.rejection));
    }
    let expected_step = if log.closed() { Some("none".to_owned()) } else { expected_step };
    Ok(Some((data, expected_step)))
}
