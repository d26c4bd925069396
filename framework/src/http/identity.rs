//! `/v1/me`: who a bearer token speaks for (the console's sign-in checks a token with it).

use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::Authenticated, ApiState, ErrorBody};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The actor behind the bearer token: its id and role.
#[utoipa::path(get, path = "/v1/me", tag = "identity",
    responses((status = 200, description = "`{data: {id, role}}`"), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn me(Authenticated(actor): Authenticated) -> Json<Value> {
    Json(json!({"data": {"id": actor.id, "role": actor.role}}))
}
