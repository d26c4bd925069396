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

pub use self::{error::AppError, path::PathPattern};
use crate::{
    encoding,
    store::{Overlay, StateView, WriteSet},
};

/// Who is acting; fixed by authentication at the origin node, never taken from a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Supplier,
    Operator,
    Admin,
    Auditor,
    /// A node acting on its own behalf (recording an L1 receipt); never granted to a token.
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supplier => "supplier",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Node => "node",
        }
    }
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
/// the op's own writes.
pub struct Ctx<'a> {
    state: Overlay<'a>,
    env: ExecEnv,
    /// The first local fault a read met (the store failing, a stored value that does not
    /// decode). It tells the framework that a handler's error came from this node, not from the
    /// request, so it must not be taken as the replicated answer.
    local_fault: std::cell::RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(base: &'a dyn StateView, env: ExecEnv) -> Self {
        Self { state: Overlay::new(base), env, local_fault: std::cell::RefCell::new(None) }
    }

    /// The local fault a read of this context met, if any.
    pub fn take_local_fault(&self) -> Option<String> {
        self.local_fault.borrow_mut().take()
    }

    fn fault(&self, message: String) -> AppError {
        self.local_fault.borrow_mut().get_or_insert_with(|| message.clone());
        AppError::internal(message)
    }

    pub fn env(&self) -> ExecEnv {
        self.env
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        self.state.get(key).map_err(|e| self.fault(e.to_string()))
    }

    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, AppError> {
        match self.get_raw(key)? {
            Some(bytes) => encoding::from_stored_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.fault(format!("corrupt value at {}: {e}", String::from_utf8_lossy(key)))),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) {
        self.state.writes_mut().put(key, encoding::to_canonical_bytes(value));
    }

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.state.writes_mut().put(key, value);
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.state.writes_mut().delete(key);
    }

    pub fn into_writes(self) -> WriteSet {
        self.state.into_writes()
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
}

/// The part a route plays in a session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// An ordinary step (including start and abort): recorded in the op log and the bundle.
    Step,
    /// Freezes the session for commit: the last op of its bundle; the session is then pending
    /// until L1 answers.
    Commit,
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

    /// Part of the session bundle sent to L1 (and so numbered by `session_seq`).
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

/// Writes the service's reference data from the genesis `app_state`.
pub type GenesisHook = fn(&mut Ctx<'_>, &Value) -> Result<(), AppError>;
/// Runs on L1 when a session bundle has been re-executed and is applied.
pub type SessionCommittedHook = fn(&mut Ctx<'_>, &str) -> Result<(), AppError>;

/// A service: its routes and its two lifecycle hooks.
pub struct Registry {
    routes: Vec<Route>,
    pub genesis: GenesisHook,
    pub session_committed: SessionCommittedHook,
}

impl Registry {
    pub fn new(routes: Vec<Route>, genesis: GenesisHook, session_committed: SessionCommittedHook) -> Self {
        Self { routes, genesis, session_committed }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
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
            actor: Actor { id: "a".into(), role: Role::Operator },
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
