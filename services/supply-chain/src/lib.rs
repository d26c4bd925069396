//! The supply-chain service: supplier sessions register signed packages; warehouse sessions scan,
//! validate, inspect and label one package; each session commits to L1 as a whole.

pub mod demo;
mod handlers;
pub mod keys;
pub mod manifest;
pub mod model;

use serde_json::Value;

use self::model::{ReferenceData, SessionRecord};
use bftws_framework::registry::{
    ids, schema_of, AppError, Ctx, PathPattern, ReadRoute, Registry, RoleSpec, Route, RouteKind, Service, ServiceState,
    SessionBinding, SessionView,
};

/// The service's name: `--service supply-chain`, and the prefix of its keys.
pub const NAME: &str = "supply-chain";

/// The roles tokens may hold.
pub mod roles {
    pub const SUPPLIER: &str = "supplier";
    pub const OPERATOR: &str = "operator";
    pub const ADMIN: &str = "admin";
    pub const AUDITOR: &str = "auditor";
}

const ROLES: &[RoleSpec] = &[
    RoleSpec { name: roles::SUPPLIER, reads_all_sessions: false },
    RoleSpec { name: roles::OPERATOR, reads_all_sessions: false },
    RoleSpec { name: roles::ADMIN, reads_all_sessions: true },
    RoleSpec { name: roles::AUDITOR, reads_all_sessions: true },
];

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
}

/// The supply-chain service.
pub struct SupplyChain;

/// The service's registry: every replicated write it accepts.
pub fn registry() -> Registry {
    Registry::new(SupplyChain)
}

impl Service for SupplyChain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "the supply-chain service: suppliers register signed packages; warehouse operators scan, validate, inspect and label them"
    }

    fn roles(&self) -> &'static [RoleSpec] {
        ROLES
    }

    fn routes(&self) -> Vec<Route> {
        let route = |op, pattern, handler, (session, kind), summary, request| Route {
            op,
            method: "POST",
            pattern: PathPattern::new(pattern),
            handler,
            session,
            kind,
            summary,
            request: Some(request),
        };
        use RouteKind::{Abort, Commit, Step};
        use SessionBinding::{InPath, Starts};
        vec![
            route(
                "session.start",
                paths::SESSIONS,
                handlers::start as _,
                (Starts, Step),
                "Start a session (`supplier` or `warehouse`); the caller becomes its owner",
                schema_of::<model::StartSession>,
            ),
            route(
                "supplier.register_package",
                paths::REGISTER_PACKAGE,
                handlers::register_package as _,
                (InPath, Step),
                "Register a signed package (supplier sessions)",
                schema_of::<model::RegisterPackage>,
            ),
            route(
                "warehouse.scan",
                paths::SCAN,
                handlers::scan as _,
                (InPath, Step),
                "Scan a committed package and claim it for this session (warehouse sessions)",
                schema_of::<model::Scan>,
            ),
            route(
                "warehouse.validate",
                paths::VALIDATE,
                handlers::validate as _,
                (InPath, Step),
                "Verify the supplier's signature presented with the package",
                schema_of::<model::Validate>,
            ),
            route(
                "warehouse.qc",
                paths::QC,
                handlers::quality_check as _,
                (InPath, Step),
                "Record the quality check; a failed check leaves only `abort`",
                schema_of::<model::QualityCheck>,
            ),
            route(
                "warehouse.label",
                paths::LABEL,
                handlers::label as _,
                (InPath, Step),
                "Label the package for a courier (requires a passed quality check)",
                schema_of::<model::Label>,
            ),
            route(
                "session.commit",
                paths::COMMIT,
                handlers::commit as _,
                (InPath, Commit),
                "Commit the session to L1: 200 with the receipt once L1 has it; 202 while L1 does not answer (the node keeps trying; poll the session); 422 when L1 rejects it",
                schema_of::<model::Empty>,
            ),
            route(
                "session.abort",
                paths::ABORT,
                handlers::abort as _,
                (InPath, Abort),
                "Abort an open session, releasing what it holds",
                schema_of::<model::Empty>,
            ),
        ]
    }

    fn read_routes(&self) -> Vec<ReadRoute> {
        vec![ReadRoute {
            op: "package.read",
            pattern: PathPattern::new("/v1/packages/{id}"),
            handler: handlers::read_package,
            summary: "Read a package. The supplier's manifest `signature` is shown only to the package's supplier, admins and auditors: a warehouse operator must present the signature the physical package carries at `validate`",
            response: Some(schema_of::<model::PackageRecord>),
            // `/v1/packages/{id}/history`: the supplier session that registered it, then the
            // warehouse session that scanned it.
            history: Some(|package| {
                ["registered_in", "claimed_by"]
                    .iter()
                    .filter_map(|field| package[*field].as_str().map(str::to_owned))
                    .collect()
            }),
        }]
    }

    /// Writes the reference data of the genesis `app_state.service`.
    fn genesis(&self, ctx: &mut Ctx<'_>, service: &Value) -> Result<(), AppError> {
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

    fn session_committed(&self, ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
        handlers::session_committed(ctx, session_id)
    }

    fn session_rejected(&self, ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError> {
        handlers::session_rejected(ctx, session_id)
    }

    fn session_view(&self, state: &ServiceState<'_>, session_id: &str) -> Result<Option<SessionView>, AppError> {
        let session: Option<SessionRecord> = state.get(&keys::session(session_id))?;
        Ok(session.map(|session| SessionView {
            expected_step: Some(session.expected_step().to_owned()),
            data: serde_json::to_value(&session).unwrap_or(Value::Null),
        }))
    }
}
