//! The supply-chain service: supplier sessions register signed packages; warehouse sessions scan,
//! validate, inspect and label one package; each session commits to L1 as a whole.

pub mod demo;
mod handlers;
pub mod manifest;
pub mod model;

use serde_json::Value;

use self::model::ReferenceData;
use crate::{
    registry::{ids, AppError, Ctx, PathPattern, Registry, Route, RouteKind, SessionBinding},
    store::keys,
};

/// Session routes, shared by the registry and the HTTP router.
pub mod paths {
    pub const SESSIONS: &str = "/v1/sessions";
    pub const REGISTER_PACKAGE: &str = "/v1/sessions/{id}/register_package";
    pub const SCAN: &str = "/v1/sessions/{id}/scan";
    pub const VALIDATE: &str = "/v1/sessions/{id}/validate";
    pub const QC: &str = "/v1/sessions/{id}/qc";
    pub const LABEL: &str = "/v1/sessions/{id}/label";
    pub const COMMIT: &str = "/v1/sessions/{id}/commit";
    pub const ABORT: &str = "/v1/sessions/{id}/abort";
    pub const COMMIT_RECORDED: &str = "/v1/sessions/{id}/commit_recorded";
}

/// The service's registry: every replicated write it accepts.
pub fn registry() -> Registry {
    let route = |op, pattern, handler, session, kind| Route {
        op,
        method: "POST",
        pattern: PathPattern::new(pattern),
        handler,
        session,
        kind,
    };
    use RouteKind::{Commit, CommitRecorded, Step};
    use SessionBinding::{InPath, Starts};
    let routes = vec![
        route("session.start", paths::SESSIONS, handlers::start as _, Starts, Step),
        route("supplier.register_package", paths::REGISTER_PACKAGE, handlers::register_package as _, InPath, Step),
        route("warehouse.scan", paths::SCAN, handlers::scan as _, InPath, Step),
        route("warehouse.validate", paths::VALIDATE, handlers::validate as _, InPath, Step),
        route("warehouse.qc", paths::QC, handlers::quality_check as _, InPath, Step),
        route("warehouse.label", paths::LABEL, handlers::label as _, InPath, Step),
        route("session.commit", paths::COMMIT, handlers::commit as _, InPath, Commit),
        route("session.abort", paths::ABORT, handlers::abort as _, InPath, Step),
        route(
            "session.commit_recorded",
            paths::COMMIT_RECORDED,
            handlers::commit_recorded as _,
            InPath,
            CommitRecorded,
        ),
    ];
    Registry::new(routes, genesis, handlers::session_committed)
}

/// Writes the reference data of the genesis `app_state.service`.
fn genesis(ctx: &mut Ctx<'_>, service: &Value) -> Result<(), AppError> {
    let data: ReferenceData = if service.is_null() {
        ReferenceData::default()
    } else {
        serde_json::from_value(service.clone())
            .map_err(|e| AppError::bad_request("service", format!("invalid reference data: {e}")))?
    };
    for supplier in &data.suppliers {
        ids::check("suppliers[].id", &supplier.id)?;
        ctx.put(keys::supplier(&supplier.id), supplier);
    }
    for operator in &data.operators {
        ids::check("operators[].id", &operator.id)?;
        ctx.put(keys::operator(&operator.id), operator);
    }
    for courier in &data.couriers {
        ids::check("couriers[].id", &courier.id)?;
        ctx.put(keys::courier(&courier.id), courier);
    }
    Ok(())
}
