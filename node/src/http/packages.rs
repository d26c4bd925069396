//! `/v1/packages/{id}`: a package as this node's state knows it.

use axum::{
    extract::{Path, State},
    Json,
};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::Authenticated, ApiError, ApiState, ErrorBody};
use crate::{
    registry::{ids, AppError, Role},
    store::{keys, StateView},
    supply_chain::model::PackageRecord,
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
    let bytes = snapshot.get(&keys::package(&id))?.ok_or_else(|| AppError::not_found("package", &id))?;
    let package: PackageRecord =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    let height = snapshot.last_block()?.height;
    let sees_signature = match actor.role {
        Role::Admin | Role::Auditor => true,
        Role::Supplier => actor.id == package.supplier_id,
        Role::Operator | Role::Node => false,
    };
    let mut data = serde_json::to_value(&package).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    if !sees_signature {
        if let Some(fields) = data.as_object_mut() {
            fields.remove("signature");
        }
    }
    Ok(Json(json!({"data": data, "meta": {"height": height}})))
}
