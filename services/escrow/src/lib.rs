//! The escrow service: a seller lists items in one session; a buyer reserves one, pays for it
//! from their balance and confirms, in one session committed to L1 as a whole. Balances never
//! go negative, and L1's re-execution refuses a second spend of the same money.

// Amounts in cents are written as units_cents (100_00 is 100.00).
#![allow(clippy::inconsistent_digit_grouping)]

pub mod demo;
mod handlers;
pub mod keys;
pub mod model;

use bftws_framework::registry::{
    ids, schema_of, AppError, Ctx, PathPattern, ReadRoute, Registry, RoleSpec, Route, RouteKind, Service, ServiceState,
    SessionBinding, SessionView,
};
use serde_json::Value;

use self::model::{EscrowSession, ReferenceData};

/// The service's name: `--service escrow`, and the prefix of its keys.
pub const NAME: &str = "escrow";

/// The roles tokens may hold.
pub mod roles {
    pub const SELLER: &str = "seller";
    pub const BUYER: &str = "buyer";
    pub const ADMIN: &str = "admin";
    pub const AUDITOR: &str = "auditor";
}

const ROLES: &[RoleSpec] = &[
    RoleSpec { name: roles::SELLER, reads_all_sessions: false },
    RoleSpec { name: roles::BUYER, reads_all_sessions: false },
    RoleSpec { name: roles::ADMIN, reads_all_sessions: true },
    RoleSpec { name: roles::AUDITOR, reads_all_sessions: true },
];

/// The escrow service.
pub struct Escrow;

/// The service's registry.
pub fn registry() -> Registry {
    Registry::new(Escrow)
}

impl Service for Escrow {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "the escrow service: sellers list items; a buyer reserves, pays from a balance and confirms in one session"
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
                "escrow.start",
                "/v1/sessions",
                handlers::start as _,
                (Starts, Step),
                "Start a session (`seller` or `buyer`); the caller becomes its owner",
                schema_of::<model::StartSession>,
            ),
            route(
                "escrow.list_item",
                "/v1/sessions/{id}/list_item",
                handlers::list_item as _,
                (InPath, Step),
                "List an item for sale (seller sessions); it opens for buyers when the session commits",
                schema_of::<model::ListItem>,
            ),
            route(
                "escrow.reserve",
                "/v1/sessions/{id}/reserve",
                handlers::reserve as _,
                (InPath, Step),
                "Reserve a listed item (buyer sessions)",
                schema_of::<model::Reserve>,
            ),
            route(
                "escrow.pay",
                "/v1/sessions/{id}/pay",
                handlers::pay as _,
                (InPath, Step),
                "Pay the reserved item's price into escrow from the buyer's balance (409 when it does not cover it)",
                schema_of::<model::Empty>,
            ),
            route(
                "escrow.confirm",
                "/v1/sessions/{id}/confirm",
                handlers::confirm as _,
                (InPath, Step),
                "Confirm the purchase",
                schema_of::<model::Empty>,
            ),
            route(
                "escrow.commit",
                "/v1/sessions/{id}/commit",
                handlers::commit as _,
                (InPath, Commit),
                "Commit the session to L1: 200 with the receipt; 202 while L1 does not answer; 422 when L1 refuses it",
                schema_of::<model::Empty>,
            ),
            route(
                "escrow.abort",
                "/v1/sessions/{id}/abort",
                handlers::abort as _,
                (InPath, Abort),
                "Abort an open session: reservations are released and payments refunded",
                schema_of::<model::Empty>,
            ),
        ]
    }

    fn read_routes(&self) -> Vec<ReadRoute> {
        vec![
            ReadRoute {
                op: "escrow.listing",
                pattern: PathPattern::new("/v1/listings/{id}"),
                handler: handlers::read_listing,
                summary: "Read a listing",
                response: Some(schema_of::<model::Listing>),
                history: None,
            },
            ReadRoute {
                op: "escrow.account",
                pattern: PathPattern::new("/v1/accounts/{id}"),
                handler: handlers::read_account,
                summary: "Read an account (its owner, admins and auditors)",
                response: Some(schema_of::<model::Account>),
                history: None,
            },
        ]
    }

    fn genesis(&self, ctx: &mut Ctx<'_>, service: &Value) -> Result<(), AppError> {
        let data: ReferenceData = if service.is_null() {
            ReferenceData::default()
        } else {
            serde_json::from_value(service.clone())
                .map_err(|e| AppError::bad_request("service", format!("invalid reference data: {e}")))?
        };
        for account in &data.accounts {
            ids::check("accounts[].id", &account.id)?;
            ctx.put(keys::account(&account.id), account);
        }
        for seller in &data.sellers {
            ids::check("sellers[].id", &seller.id)?;
            ctx.put(keys::seller(&seller.id), seller);
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
        let session: Option<EscrowSession> = state.get(&keys::session(session_id))?;
        Ok(session.map(|session| SessionView {
            expected_step: Some(session.expected_step().to_owned()),
            data: serde_json::to_value(&session).unwrap_or(Value::Null),
        }))
    }
}
