//! `/v1/packages/{id}`: a package as this node's state knows it.

use axum::{
    extract::{Path, State},
    Json,
};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::Authenticated, ApiError, ApiState, ErrorBody};
use crate::{
    registry::{ids, AppError},
    store::{keys, StateView},
    supply_chain::model::PackageRecord,
};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_package))
}

/// Read a package (any authenticated caller).
#[utoipa::path(get, path = "/v1/packages/{id}", tag = "packages",
    params(("id" = String, Path, description = "package id")),
    responses((status = 200, body = PackageRecord), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_package(
    State(state): State<ApiState>,
    Authenticated(_actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ids::check("id", &id)?;
    let snapshot = state.origin().chain().snapshot()?;
    let bytes = snapshot.get(&keys::package(&id))?.ok_or_else(|| AppError::not_found("package", &id))?;
    let package: PackageRecord =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    let height = snapshot.last_block()?.height;
    Ok(Json(json!({"data": package, "meta": {"height": height}})))
}
