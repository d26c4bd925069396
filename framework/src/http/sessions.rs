//! `/v1/sessions`: start and list sessions, read one, and every session step.

use std::time::Instant;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{Authenticated, IdempotencyKey, JsonObject},
    ApiError, ApiState, ErrorBody,
};
use crate::{
    app::session::SessionLog,
    l2::CommitOutcome,
    registry::{ids, Actor, Registry, RouteKind},
    store::keys,
};

/// The framework's session reads (documented by their annotations).
pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_sessions)).routes(routes!(get_session))
}

/// Every write route of the service, all answered by [`write_route`], and every read route, by
/// [`read_route`]: dispatched through the registry, so a service adds routes without touching
/// the HTTP layer.
pub(super) fn service_router(registry: &Registry) -> Router<ApiState> {
    let mut router = Router::new();
    let mut seen = std::collections::BTreeSet::new();
    for route in registry.routes().iter().filter(|route| !route.internal()) {
        if seen.insert(route.pattern.as_str()) {
            router = router.route(route.pattern.as_str(), post(write_route));
        }
    }
    for route in registry.service().read_routes() {
        router = router.route(route.pattern.as_str(), get(read_route));
        if route.history.is_some() {
            router = router.route(&format!("{}{HISTORY}", route.pattern.as_str()), get(history_route));
        }
    }
    router
}

/// The suffix of a read route's audit history route.
const HISTORY: &str = "/history";

/// Adds the service's routes to the API document, from their metadata and request types.
pub(super) fn document_service_routes(registry: &Registry, openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        security::SecurityRequirement,
        ContentBuilder, Ref, Required, ResponseBuilder,
    };
    let mut components = Vec::new();
    let json =
        |schema: Option<utoipa::openapi::RefOr<utoipa::openapi::Schema>>| ContentBuilder::new().schema(schema).build();
    let reply = |description: &str, schema: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", json(Some(Ref::from_schema_name(schema).into())))
            .build()
    };
    let path_params = |pattern: &str| {
        pattern
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True).build()
            })
            .collect::<Vec<_>>()
    };
    let tag = registry.service().name();
    for (order, route) in registry.routes().iter().filter(|route| !route.internal()).enumerate() {
        let mut operation = OperationBuilder::new()
            .summary(Some(route.summary))
            .operation_id(Some(route.op))
            .tag(tag)
            // The service's order of its steps (the document's paths are sorted): the console
            // shows a session's steps in it.
            .extensions(Some(utoipa::openapi::extensions::ExtensionsBuilder::new().add("x-bftws-order", order).build()))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .parameter(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some("retries with the same key get the first answer; the write applies once"))
                    .build(),
            );
        for param in path_params(route.pattern.as_str()) {
            operation = operation.parameter(param);
        }
        if let Some(request) = route.request {
            let schema = request(&mut components);
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", json(Some(schema)))
                    .build(),
            ));
        }
        let ok = if route.starts_session() { "201" } else { "200" };
        operation = operation
            .response(ok, reply("the handler's answer and where it became final", "WriteReply"))
            .response("4XX", reply("refused: the error envelope", "ErrorBody"))
            .response("503", reply("not final in time, or the node is not ready (Retry-After)", "ErrorBody"));
        if route.kind == RouteKind::Commit {
            operation = operation
                .response("202", reply("L1 did not answer yet; the node keeps trying: poll the session", "WriteReply"));
        }
        openapi.paths.add_path_operation(route.pattern.as_str(), vec![HttpMethod::Post], operation.build());
    }
    for route in registry.service().read_routes() {
        let mut operation = OperationBuilder::new()
            .summary(Some(route.summary))
            .operation_id(Some(route.op))
            .tag(tag)
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        for param in path_params(route.pattern.as_str()) {
            operation = operation.parameter(param);
        }
        let data = route.response.map(|response| response(&mut components));
        operation = operation
            .response(
                "200",
                ResponseBuilder::new()
                    .description("`{data, meta: {height}}`")
                    .content("application/json", json(data))
                    .build(),
            )
            .response("4XX", reply("refused: the error envelope", "ErrorBody"));
        let operation = operation.build();
        if route.history.is_some() {
            let mut history = operation.clone();
            history.operation_id = Some(format!("{}.history", route.op));
            history.summary = Some(format!("{} (history)", route.summary));
            history.description = Some(
                "The record with the sessions that made it, each committed one with its proof of finality on L1 \
                 (`SessionProof`, checked by `bftws-node verify`)"
                    .to_owned(),
            );
            let answer = ResponseBuilder::new()
                .description("`{data: {record, sessions: [{session_id, committed, proof?}]}, meta: {height}}`")
                .build();
            history.responses.responses.insert("200".to_owned(), answer.into());
            let path = format!("{}{HISTORY}", route.pattern.as_str());
            openapi.paths.add_path_operation(path, vec![HttpMethod::Get], history);
        }
        openapi.paths.add_path_operation(route.pattern.as_str(), vec![HttpMethod::Get], operation);
    }
    let schemas = &mut openapi.components.get_or_insert_with(Default::default).schemas;
    for (name, schema) in components {
        schemas.insert(name, schema);
    }
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

/// Any write route of the service; a commit route also takes the session to L1.
async fn write_route(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    IdempotencyKey(key): IdempotencyKey,
    uri: Uri,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let is_commit =
        state.origin().registry().resolve("POST", uri.path()).is_some_and(|(r, _)| r.kind == RouteKind::Commit);
    if is_commit {
        commit(state, actor, key, uri, body).await
    } else {
        write(&state, &actor, &uri, body, key.as_deref()).await
    }
}

/// Any read route of the service: `{data, meta: {height}}` from committed state.
async fn read_route(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let registry = state.origin().registry();
    let (route, params) = registry
        .service()
        .read_routes()
        .into_iter()
        .find_map(|route| route.pattern.matches(uri.path()).map(|params| (route, params)))
        .ok_or_else(|| ApiError::new(404, "not_found", format!("no route for {}", uri.path())))?;
    let snapshot = state.origin().chain().snapshot()?;
    let data = (route.handler)(&registry.service_state(&snapshot), &actor, &params)?;
    let height = snapshot.last_block()?.height;
    Ok(Json(json!({"data": data, "meta": {"height": height}})))
}

/// A read route's record with the sessions that made it, each committed one with its proof of
/// finality on L1 (`committed: false` for one that is not, yet): an auditor checks the whole
/// history with `bftws_framework::proof::verify` against L1's genesis.
async fn history_route(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let registry = state.origin().registry();
    let path = uri.path().strip_suffix(HISTORY).unwrap_or_default();
    let (route, params) = registry
        .service()
        .read_routes()
        .into_iter()
        .filter(|route| route.history.is_some())
        .find_map(|route| route.pattern.matches(path).map(|params| (route, params)))
        .ok_or_else(|| ApiError::new(404, "not_found", format!("no route for {}", uri.path())))?;
    let snapshot = state.origin().chain().snapshot()?;
    let record = (route.handler)(&registry.service_state(&snapshot), &actor, &params)?;
    let height = snapshot.last_block()?.height;
    drop(snapshot);
    let mut sessions = Vec::new();
    for session_id in route.history.map(|history| history(&record)).unwrap_or_default() {
        let (status, body) = super::l1::session_proof(&state, &actor, &session_id, &headers).await?;
        sessions.push(match status.as_u16() {
            200 => json!({"session_id": session_id, "committed": true, "proof": body["data"]}),
            404 | 409 => json!({"session_id": session_id, "committed": false}),
            _ => {
                return Err(ApiError::new(
                    status.as_u16(),
                    "l1_refused",
                    format!("proof of {session_id}: {}", body["error"]["message"]),
                ))
            }
        });
    }
    Ok(Json(json!({"data": {"record": record, "sessions": sessions}, "meta": {"height": height}})))
}

/// Commit the session to L1: 200 with the receipt once L1 has it; 202 while L1 does not answer
/// (the node keeps retrying; poll the session); 422 when L1 rejects it.
async fn commit(
    state: ApiState,
    actor: Actor,
    key: Option<String>,
    uri: Uri,
    body: Value,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    readable_session(&state, &snapshot, &actor, &id)?;
    let (data, expected_step) =
        session_json(&state, &snapshot, &id)?.ok_or_else(|| crate::registry::AppError::not_found("session", &id))?;
    let height = snapshot.last_block()?.height;
    Ok(Json(json!({"data": data, "meta": {"height": height, "expected_step": expected_step}})))
}

/// The record of a session `actor` may read: its owner's, or any for a role that reads all
/// sessions.
pub(super) fn readable_session(
    state: &ApiState,
    snapshot: &crate::store::Snapshot,
    actor: &Actor,
    id: &str,
) -> Result<SessionLog, ApiError> {
    let log = SessionLog::read(snapshot, id)?.ok_or_else(|| crate::registry::AppError::not_found("session", id))?;
    if log.owner != actor.id && !state.origin().registry().reads_all_sessions(actor) {
        return Err(ApiError::new(403, "forbidden", "only the session's owner, admins and auditors may read it"));
    }
    Ok(log)
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
        fields.insert("ops".into(), json!(log.ops));
        fields.insert("receipt".into(), json!(log.receipt));
        fields.insert("rejection".into(), json!(log.rejection));
    }
    let expected_step = if log.closed() { Some("none".to_owned()) } else { expected_step };
    Ok(Some((data, expected_step)))
}
