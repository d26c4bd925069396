//! The replicated request model: what a request and a response are, how a handler sees state,
//! and the registry `(method, path pattern) → handler` shared by the HTTP server (which runs a
//! handler to simulate a write) and the ABCI application (which re-executes it to validate).
//!
//! Handlers are pure: same state + same [`Request`] ⇒ byte-identical [`Response`] and writes.
//! They never read a clock, a random source, the environment or the network; the origin node
//! fixes `request_id` and `time_ms` when it builds the request.

mod error;
pub mod ids;
mod path;

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::{RefOr, Schema};

pub use self::{error::AppError, path::PathPattern};
use crate::{
    encoding,
    store::{keys, Overlay, StateView, WriteSet},
};

/// Who is acting; fixed by authentication at the origin node, never taken from a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

/// An actor's role: one of the service's roles ([`RoleSpec`]), or `node` for a node acting on
/// its own behalf (recording an L1 receipt), which no token is ever given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "operator")]
pub struct Role(String);

impl Role {
    /// The framework's own role.
    pub const NODE: &'static str = "node";

    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn node() -> Self {
        Self::new(Self::NODE)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is(&self, name: &str) -> bool {
        self.0 == name
    }

    pub fn is_node(&self) -> bool {
        self.is(Self::NODE)
    }
}

/// A role a service grants to tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: &'static str,
    /// Reads every session (listing and reading sessions it does not own): admins, auditors.
    pub reads_all_sessions: bool,
}

/// The replicated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub params: BTreeMap<String, String>,
    pub body: Value,
    pub actor: Actor,
    pub request_id: String,
    pub time_ms: u64,
    pub session_id: Option<String>,
    /// The op's place in its session: 0 for the op that starts it, then one more per op, in the
    /// order L2 applied them. Present exactly on ops that are part of a session's bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_seq: Option<u64>,
    /// The client's `Idempotency-Key`, when it sent one: `request_id` is then derived from it
    /// and the actor ([`ids::idempotent_request_id`]), so a retry is the same request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Request {
    /// Parses the JSON body into a typed struct; errors name the offending field.
    pub fn parse_body<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        serde_path_to_error::deserialize::<_, T>(&self.body).map_err(|err| {
            let field = err.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let inner = err.into_inner().to_string();
            // serde names a missing or unknown field only in its message.
            let field = if field.is_empty() { field_from_serde_message(&inner).unwrap_or_default() } else { field };
            AppError::bad_request(&field, format!("invalid request body: {inner}"))
        })
    }

    pub fn param(&self, name: &str) -> Result<&str, AppError> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| AppError::bad_request(name, format!("missing path parameter '{name}'")))
    }
}

fn field_from_serde_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// A handler's successful answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    pub fn ok(body: impl Serialize) -> Self {
        Self::with_status(200, body)
    }

    pub fn created(body: impl Serialize) -> Self {
        Self::with_status(201, body)
    }

    fn with_status(status: u16, body: impl Serialize) -> Self {
        Self { status, body: serde_json::to_value(body).expect("response bodies serialize to JSON") }
    }
}

/// Which chain executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    L1,
    L2,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::L1 => "l1",
            Layer::L2 => "l2",
        }
    }
}

/// How an op is being executed; identical at every replica executing the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// A standalone op: on L2 (the interactive path) or on L1 in direct mode.
    Standalone,
    /// One step of a session bundle being re-executed on L1.
    InBundle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecEnv {
    pub layer: Layer,
    pub mode: ExecMode,
}

impl ExecEnv {
    /// True when a session commit is final as soon as the commit op applies: direct-L1 mode,
    /// where each op is its own L1 transaction and no bundle follows.
    pub fn commit_is_final(&self) -> bool {
        self.layer == Layer::L1 && self.mode == ExecMode::Standalone
    }
}

/// What a handler sees: state (committed state plus every pending write before this op) and
/// the op's own writes. A service's context puts every key it reads or writes under the
/// service's prefix ([`keys::service_prefix`]); the framework reaches its own keys through the
/// crate-private `fw_*` methods.
pub struct Ctx<'a> {
    state: Overlay<'a>,
    env: ExecEnv,
    /// Prepended to every key the service names.
    prefix: &'a [u8],
    /// The first local fault a read met (the store failing, a stored value that does not
    /// decode). It tells the framework that a handler's error came from this node, not from the
    /// request, so it must not be taken as the replicated answer.
    local_fault: std::cell::RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    /// A context whose keys are the framework's own.
    pub fn new(base: &'a dyn StateView, env: ExecEnv) -> Self {
        Self::for_service(base, env, &[])
    }

    /// A context for service code: every key is under `prefix`.
    pub fn for_service(base: &'a dyn StateView, env: ExecEnv, prefix: &'a [u8]) -> Self {
        Self { state: Overlay::new(base), env, prefix, local_fault: std::cell::RefCell::new(None) }
    }

    /// The local fault a read of this context met, if any.
    pub fn take_local_fault(&self) -> Option<String> {
        self.local_fault.borrow_mut().take()
    }

    fn fault(&self, message: String) -> AppError {
        self.local_fault.borrow_mut().get_or_insert_with(|| message.clone());
        AppError::internal(message)
    }

    fn scoped(&self, key: &[u8]) -> Vec<u8> {
        [self.prefix, key].concat()
    }

    pub fn env(&self) -> ExecEnv {
        self.env
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        self.fw_get_raw(&self.scoped(key))
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, AppError> {
        self.fw_get(&self.scoped(key))
    }

    pub fn put<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) {
        let key = self.scoped(&key);
        self.fw_put(key, value);
    }

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let key = self.scoped(&key);
        self.state.writes_mut().put(key, value);
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        let key = self.scoped(&key);
        self.fw_delete(key);
    }

    pub(crate) fn fw_get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        self.state.get(key).map_err(|e| self.fault(e.to_string()))
    }

    pub(crate) fn fw_get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, AppError> {
        match self.fw_get_raw(key)? {
            Some(bytes) => encoding::from_stored_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.fault(format!("corrupt value at {}: {e}", String::from_utf8_lossy(key)))),
            None => Ok(None),
        }
    }

    pub(crate) fn fw_put<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) {
        self.state.writes_mut().put(key, encoding::to_canonical_bytes(value));
    }

    pub(crate) fn fw_delete(&mut self, key: Vec<u8>) {
        self.state.writes_mut().delete(key);
    }

    pub fn into_writes(self) -> WriteSet {
        self.state.into_writes()
    }
}

/// A read view of one service's keys (its read routes and session views see only these).
pub struct ServiceState<'a> {
    base: &'a dyn StateView,
    prefix: &'a [u8],
}

impl<'a> ServiceState<'a> {
    pub fn new(base: &'a dyn StateView, prefix: &'a [u8]) -> Self {
        Self { base, prefix }
    }

    /// A stored value of the service, decoded.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, AppError> {
        match self.base.get(&[self.prefix, key].concat())? {
            Some(bytes) => encoding::from_stored_bytes(&bytes)
                .map(Some)
                .map_err(|e| AppError::internal(format!("corrupt value at {}: {e}", String::from_utf8_lossy(key)))),
            None => Ok(None),
        }
    }
}

/// A handler: pure function of state and request.
pub type Handler = fn(&mut Ctx<'_>, &Request) -> Result<Response, AppError>;

/// How a route relates to sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionBinding {
    /// Not a session op.
    None,
    /// Starts a session whose id is derived from the request id ([`ids::session_id`]).
    Starts,
    /// An op in the session named by the `{id}` path parameter.
    InPath,
}

/// A schema of the API document: writes the schemas it refers to into `components` and
/// returns its own (a reference when it is a named type).
pub type SchemaFn = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// The [`SchemaFn`] of a type.
pub fn schema_of<T: utoipa::ToSchema>(components: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    T::schemas(components);
    components.push((T::name().into_owned(), T::schema()));
    utoipa::openapi::Ref::from_schema_name(T::name()).into()
}

/// One replicated write endpoint.
#[derive(Debug, Clone)]
pub struct Route {
    /// Stable op name, used in metrics and logs (`warehouse.scan`).
    pub op: &'static str,
    pub method: &'static str,
    pub pattern: PathPattern,
    pub handler: Handler,
    pub session: SessionBinding,
    pub kind: RouteKind,
    /// What the API document says the route does.
    pub summary: &'static str,
    /// The request body's schema.
    pub request: Option<SchemaFn>,
}

/// A read endpoint of a service (`GET`), answered from the node's committed state.
#[derive(Debug, Clone)]
pub struct ReadRoute {
    pub op: &'static str,
    pub pattern: PathPattern,
    pub handler: ReadHandler,
    pub summary: &'static str,
    /// The schema of the answer's `data`.
    pub response: Option<SchemaFn>,
    /// The sessions whose commits made the record this route reads, in order, from its answer:
    /// the framework then also serves `{pattern}/history`, the record with each of them and, once
    /// committed, its proof of finality on L1 (an audit read). `None`: no history route.
    pub history: Option<fn(&Value) -> Vec<String>>,
}

/// A read handler: the service's state, the authenticated actor and the path parameters.
pub type ReadHandler = fn(&ServiceState<'_>, &Actor, &BTreeMap<String, String>) -> Result<Value, AppError>;

/// The part a route plays in a session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// An ordinary step (including start and abort): recorded in the op log and the bundle.
    Step,
    /// Freezes the session for commit: the last op of its bundle; the session is then pending
    /// until L1 answers.
    Commit,
    /// Ends the session without a commit: nothing more joins it and it is never bundled.
    Abort,
    /// Records L1's answer on L2. Built by nodes only, never reachable from the HTTP API, never
    /// part of a bundle.
    CommitRecorded,
}

impl Route {
    /// The session an op on this route belongs to: derived from the request id when the route
    /// starts a session, the `{id}` path parameter when it acts on one.
    pub fn session_id(&self, request_id: &str, params: &BTreeMap<String, String>) -> Option<String> {
        match self.session {
            SessionBinding::None => None,
            SessionBinding::Starts => Some(ids::session_id(request_id)),
            SessionBinding::InPath => params.get("id").cloned(),
        }
    }

    /// Part of a session's op log (and so numbered by `session_seq`); every such op but an
    /// abort is part of the bundle sent to L1.
    pub fn bundled(&self) -> bool {
        self.session != SessionBinding::None && self.kind != RouteKind::CommitRecorded
    }

    /// Starts a session: the first op of every bundle.
    pub fn starts_session(&self) -> bool {
        self.session == SessionBinding::Starts
    }

    /// Built by nodes only.
    pub fn internal(&self) -> bool {
        self.kind == RouteKind::CommitRecorded
    }
}

/// A replicated service: its routes, its roles, its reference data and what a commit makes
/// final. The framework owns everything else: requests and their replication, sessions and
/// their commit to L1 (the commit op, the bundle, recording L1's answer, resuming), the HTTP
/// API around the routes, authentication and metrics.
///
/// Every method runs at every replica on replicated data: it must be deterministic (no clock,
/// randomness, environment, network or `HashMap` iteration).
pub trait Service: Send + Sync + 'static {
    /// Selects the service (`--service NAME`) and titles its API.
    fn name(&self) -> &'static str;

    /// One line for the API's description.
    fn description(&self) -> &'static str;

    /// The roles tokens may hold (never `node`).
    fn roles(&self) -> &'static [RoleSpec];

    /// Every replicated write, most specific paths first. Exactly one route starts sessions
    /// ([`SessionBinding::Starts`]) and one commits them ([`RouteKind::Commit`]) for every
    /// kind of session the service has.
    fn routes(&self) -> Vec<Route>;

    /// Checks the genesis `app_state.service` (the service's reference data) and writes it.
    fn genesis(&self, ctx: &mut Ctx<'_>, app_state: &Value) -> Result<(), AppError>;

    /// What a commit makes final. On L1 it runs when the session's bundle re-executed in full
    /// and is applied (or, in direct-L1 mode, when the commit op applies); on L2 when L1's
    /// receipt is recorded.
    fn session_committed(&self, ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError>;

    /// L1 refused the session's bundle (recorded on L2): release what the session holds.
    fn session_rejected(&self, ctx: &mut Ctx<'_>, session_id: &str) -> Result<(), AppError>;

    /// Its read endpoints (`GET`), beside the framework's session reads.
    fn read_routes(&self) -> Vec<ReadRoute> {
        Vec::new()
    }

    /// The service's view of a session for `GET /v1/sessions/{id}` and listings, and the step
    /// it expects next; `None` if the service has no such session.
    fn session_view(&self, state: &ServiceState<'_>, session_id: &str) -> Result<Option<SessionView>, AppError>;
}

/// A session as the service shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub data: Value,
    pub expected_step: Option<String>,
}

/// A service with the framework's own routes added: the one table of replicated writes that
/// the HTTP server (which simulates) and the ABCI application (which re-executes) share.
pub struct Registry {
    service: Box<dyn Service>,
    routes: Vec<Route>,
    key_prefix: Vec<u8>,
}

/// The framework's route that records L1's answer for a session on L2.
pub const COMMIT_RECORDED_PATH: &str = "/v1/sessions/{id}/commit_recorded";

impl Registry {
    pub fn new(service: impl Service) -> Self {
        let mut routes = service.routes();
        routes.insert(
            0,
            Route {
                op: "session.commit_recorded",
                method: "POST",
                pattern: PathPattern::new(COMMIT_RECORDED_PATH),
                // Executed by the framework itself (`app::commit_record`), never through here.
                handler: |_, _| Err(AppError::internal("commit_recorded is executed by the framework")),
                session: SessionBinding::InPath,
                kind: RouteKind::CommitRecorded,
                summary: "records L1's answer (nodes only)",
                request: None,
            },
        );
        let key_prefix = keys::service_prefix(service.name());
        Self { service: Box::new(service), routes, key_prefix }
    }

    pub fn service(&self) -> &dyn Service {
        self.service.as_ref()
    }

    /// The prefix of every key of the service.
    pub fn key_prefix(&self) -> &[u8] {
        &self.key_prefix
    }

    /// A context in which service code runs.
    pub fn service_ctx<'a>(&'a self, base: &'a dyn StateView, env: ExecEnv) -> Ctx<'a> {
        Ctx::for_service(base, env, &self.key_prefix)
    }

    /// The service's keys, read-only.
    pub fn service_state<'a>(&'a self, base: &'a dyn StateView) -> ServiceState<'a> {
        ServiceState::new(base, &self.key_prefix)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The service's role `name`, if it has one.
    pub fn role(&self, name: &str) -> Option<&RoleSpec> {
        self.service.roles().iter().find(|role| role.name == name)
    }

    /// Whether `actor` reads sessions it does not own.
    pub fn reads_all_sessions(&self, actor: &Actor) -> bool {
        self.role(actor.role.as_str()).is_some_and(|role| role.reads_all_sessions)
    }

    /// Finds the route for a method and concrete path; literal-only matches win over parameters
    /// by registration order (routes are registered most specific first).
    pub fn resolve(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        self.routes
            .iter()
            .filter(|r| r.method == method)
            .find_map(|r| r.pattern.matches(path).map(|params| (r, params)))
    }

    pub fn by_op(&self, op: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.op == op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        package_id: String,
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        qty: u32,
    }

    fn request(body: Value) -> Request {
        Request {
            method: "POST".into(),
            path: "/x".into(),
            params: BTreeMap::new(),
            body,
            actor: Actor { id: "a".into(), role: Role::new("operator") },
            request_id: "r".into(),
            time_ms: 0,
            session_id: None,
            session_seq: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn body_errors_name_the_offending_field() {
        let err = request(serde_json::json!({"items": []})).parse_body::<Body>().unwrap_err();
        assert_eq!((err.status, err.details["field"].as_str()), (400, Some("package_id")));
        let err =
            request(serde_json::json!({"package_id": "p", "items": [{"qty": "x"}]})).parse_body::<Body>().unwrap_err();
        assert_eq!(err.details["field"], "items[0].qty");
        let err = request(serde_json::json!({"package_id": 5, "items": []})).parse_body::<Body>().unwrap_err();
        assert_eq!(err.details["field"], "package_id");
    }
}
