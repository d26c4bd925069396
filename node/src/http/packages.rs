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
    supply_chain::{keys, model::PackageRecord, roles},
};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_package))
}

/// Read a package (any authenticated caller). The supplier's manifest `signature` is shown only
/// to the package's supplier, admins and auditors: a warehouse operator must present the
/// signature the physical package carries at `validate`, and must not be able to read it here.
#[utoipa::path(get, path = "/v1/packages/{id}", tag = "packages",
    params(("id" = String, Path, description = "package id")),
    responses((status = 200, body = PackageRecord), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_package(
    State(state): State<ApiState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ids::check("id", &id)?;
    let snapshot = state.origin().chain().snapshot()?;
    let package: PackageRecord = state
        .origin()
        .registry()
        .service_state(&snapshot)
        .get(&keys::package(&id))?
        .ok_or_else(|| AppError::not_found("package", &id))?;
    let height = snapshot.last_block()?.height;
    let sees_signature = [roles::ADMIN, roles::AUDITOR].iter().any(|role| actor.role.is(role))
        || (actor.role.is(roles::SUPPLIER) && actor.id == package.supplier_id);
    let mut data = serde_json::to_value(&package).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    if !sees_signature {
        if let Some(fields) = data.as_object_mut() {
            fields.remove("signature");
        }
    }
    Ok(Json(json!({"data": data, "meta": {"height": height}})))
}
