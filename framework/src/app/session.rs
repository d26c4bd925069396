//! What a session is to the framework: an op log numbered from the start op to the commit op,
//! within caps that keep every bundle inside one L1 transaction, and the shape check L1 applies
//! to a bundle before any signature is verified or any handler runs.
//!
//! A service only says which route starts a session and which commits it
//! ([`crate::registry::SessionBinding::Starts`], [`RouteKind::Commit`]); everything here holds
//! for every service.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use serde_json::json;

use super::{read, tx::Bundle, CommitRecord, CommitterRecord, Receipt, TxCode};
use crate::{
    registry::{ids, AppError, Ctx, Registry, Request, Response, Route, RouteKind, Service},
    store::{keys, StateView, StoreError},
};

/// Most ops in one session (start and commit included).
pub const MAX_SESSION_OPS: u64 = 256;
/// Most bytes of a session's ops (each counted as its op transaction's length). With the
/// bundle's own fields and signature this stays well inside [`super::tx::MAX_TX_BYTES`].
pub const MAX_SESSION_BYTES: u64 = 768 * 1024;
/// Room kept for the commit op: a step that would leave less is refused, so a session that
/// reached its caps can still be committed.
pub const COMMIT_RESERVE_BYTES: u64 = 16 * 1024;

/// Where a session stands, as the framework tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionPhase {
    /// Taking ops.
    Open,
    /// The commit op is applied; L1's answer is not recorded yet.
    Committing,
    Committed,
    /// L1 refused the bundle.
    Rejected,
    /// Ended by an abort op; never bundled.
    Aborted,
}

impl SessionPhase {
    pub const ALL: [SessionPhase; 5] = [
        SessionPhase::Open,
        SessionPhase::Committing,
        SessionPhase::Committed,
        SessionPhase::Rejected,
        SessionPhase::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionPhase::Open => "open",
            SessionPhase::Committing => "committing",
            SessionPhase::Committed => "committed",
            SessionPhase::Rejected => "rejected",
            SessionPhase::Aborted => "aborted",
        }
    }
}

/// The framework's record of a session (`session/{id}`): who owns it, where it stands, its op
/// log's size, and L1's answer once recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLog {
    pub owner: String,
    pub phase: SessionPhase,
    /// Ops recorded; the next op's `session_seq`.
    pub ops: u64,
    /// Sum of the recorded ops' transaction lengths.
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Why L1 refused the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
}

impl SessionLog {
    pub fn read(view: &dyn StateView, session_id: &str) -> Result<Option<Self>, StoreError> {
        read(view, &keys::session(session_id))
    }

    /// Nothing more joins the session's bundle.
    pub fn closed(&self) -> bool {
        self.phase != SessionPhase::Open
    }
}

/// Records L1's answer for a session on L2 (the framework's `commit_recorded` op): the session
/// becomes committed or rejected, and the service's hook runs.
pub(super) fn record_commit(ctx: &mut Ctx<'_>, service: &dyn Service, request: &Request) -> Result<Response, AppError> {
    let session_id = request.param("id")?;
    let mut session: SessionLog =
        ctx.fw_get(&keys::session(session_id))?.ok_or_else(|| AppError::not_found("session", session_id))?;
    let body: CommitRecord = request.parse_body()?;
    if session.phase != SessionPhase::Committing {
        return Err(AppError::conflict("session_not_committing", "the session is not waiting for L1")
            .with("status", session.phase.as_str()));
    }
    if body.committed {
        let receipt = body.receipt.ok_or_else(|| AppError::bad_request("receipt", "a commit needs its receipt"))?;
        session.phase = SessionPhase::Committed;
        session.receipt = Some(receipt);
        service.session_committed(ctx, session_id)?;
    } else {
        session.phase = SessionPhase::Rejected;
        session.receipt = body.receipt;
        session.rejection = Some(body.reason.unwrap_or_else(|| "rejected by L1".into()));
        service.session_rejected(ctx, session_id)?;
    }
    ctx.fw_put(keys::session(session_id), &session);
    Ok(Response::ok(json!({"session_id": session_id, "status": session.phase})))
}

/// A refusal: the code and the log line.
pub(super) type Refusal = (TxCode, String);

/// Checks that a standalone op (L2, or direct L1) is the next op of its session: numbered in
/// order, the session not closed, and within the caps. `tx_len` is the op transaction's length.
pub(super) fn check_next_op(
    log: Option<&SessionLog>,
    route: &Route,
    request: &Request,
    tx_len: usize,
) -> Result<(), Refusal> {
    if !route.bundled() {
        return match request.session_seq {
            None => Ok(()),
            Some(_) => Err((TxCode::Malformed, format!("{} carries no session_seq", route.op))),
        };
    }
    let Some(seq) = request.session_seq else {
        return Err((TxCode::Malformed, format!("{} needs a session_seq", route.op)));
    };
    let (ops, bytes) = match (log, route.starts_session()) {
        (None, true) => (0, 0),
        (Some(_), true) => return Err((TxCode::Refused, "the session already exists".into())),
        (None, false) => return Err((TxCode::Refused, "the session has not started".into())),
        (Some(log), false) if log.closed() => {
            return Err((TxCode::Refused, format!("the session is {}; nothing more can join it", log.phase.as_str())))
        }
        (Some(log), false) => (log.ops, log.bytes),
    };
    if seq != ops {
        return Err((
            TxCode::Refused,
            format!("session_seq {seq} is not the session's next op {ops} (another op applied first)"),
        ));
    }
    check_caps(ops, bytes, route, tx_len as u64).map_err(|message| (TxCode::TooLarge, message))
}

/// The caps a session keeps: at most [`MAX_SESSION_OPS`] ops and [`MAX_SESSION_BYTES`], with
/// room left for the commit op until it is recorded.
pub fn check_caps(ops: u64, bytes: u64, route: &Route, op_bytes: u64) -> Result<(), String> {
    let is_commit = route.kind == RouteKind::Commit;
    let ops_after = ops + 1 + u64::from(!is_commit);
    let bytes_after = bytes + op_bytes + if is_commit { 0 } else { COMMIT_RESERVE_BYTES };
    if ops_after > MAX_SESSION_OPS {
        return Err(format!("a session holds at most {MAX_SESSION_OPS} ops, commit included; commit this one"));
    }
    if bytes_after > MAX_SESSION_BYTES {
        return Err(format!(
            "a session holds at most {MAX_SESSION_BYTES} bytes of ops; this op of {op_bytes} bytes does not fit"
        ));
    }
    Ok(())
}

/// Checks, without verifying any signature or running any handler, that a bundle of `tx_len`
/// bytes is a whole session: it starts with the service's start op, ops are numbered 0, 1, … in
/// the order L2 applied them, each belongs to this session, no request appears twice, it ends
/// with the commit op and nothing follows it, and every op's origin is an L2 node the
/// committer lists. Returns each step's route.
pub(super) fn check_bundle_shape<'r>(
    registry: &'r Registry,
    committer: &CommitterRecord,
    bundle: &Bundle,
    tx_len: usize,
) -> Result<Vec<&'r Route>, Refusal> {
    let count = bundle.ops.len() as u64;
    if count == 0 {
        return Err((TxCode::SessionShape, "a bundle needs at least one op".into()));
    }
    if count > MAX_SESSION_OPS {
        return Err((TxCode::TooLarge, format!("a bundle holds at most {MAX_SESSION_OPS} ops, got {count}")));
    }
    // The caps' bytes plus room for the bundle's own fields and signatures.
    let max_bundle_bytes = MAX_SESSION_BYTES as usize + 64 * 1024;
    if tx_len > max_bundle_bytes {
        return Err((TxCode::TooLarge, format!("a bundle is at most {max_bundle_bytes} bytes, got {tx_len}")));
    }
    let mut request_ids = BTreeSet::new();
    let mut routes = Vec::with_capacity(bundle.ops.len());
    for (step, signed) in bundle.ops.iter().enumerate() {
        let shape = |message: String| (TxCode::SessionShape, format!("step {step}: {message}"));
        let request = &signed.op.request;
        if request.session_id.as_deref() != Some(bundle.session_id.as_str()) {
            return Err(shape("the op belongs to another session".into()));
        }
        if request.session_seq != Some(step as u64) {
            return Err(shape(format!("session_seq is {:?}, expected {step}", request.session_seq)));
        }
        if !request_ids.insert(request.request_id.as_str()) {
            return Err(shape(format!("request '{}' appears twice", request.request_id)));
        }
        let route =
            super::check_route(registry, signed).map_err(|(code, log)| (code, format!("step {step}: {log}")))?;
        let last = step + 1 == bundle.ops.len();
        if !route.bundled() || route.kind == RouteKind::Abort {
            return Err(shape(format!("{} is never part of a bundle", route.op)));
        }
        if (step == 0) != route.starts_session() {
            return Err(shape(if step == 0 {
                format!("a bundle starts with the session's start op, not {}", route.op)
            } else {
                format!("{} starts a session; it can only be the first op", route.op)
            }));
        }
        if (route.kind == RouteKind::Commit) != last {
            return Err(shape(if last {
                format!("a bundle ends with the session's commit op, not {}", route.op)
            } else {
                format!("{} commits the session; nothing may follow it", route.op)
            }));
        }
        match committer.origins.iter().find(|node| node.id == signed.origin) {
            Some(node) if node.public_key == signed.origin_key => {}
            Some(_) => {
                return Err((
                    TxCode::Unauthorized,
                    format!("step {step}: origin '{}' signs with a key its committer does not list", signed.origin),
                ))
            }
            None => {
                return Err((
                    TxCode::Unauthorized,
                    format!(
                        "step {step}: origin '{}' is not an L2 node of committer '{}'",
                        signed.origin, committer.id
                    ),
                ))
            }
        }
        routes.push(route);
    }
    Ok(routes)
}

/// Checks the form of the fields the framework itself keys state by: `request_id` (an id that
/// cannot break a key) and, when present, that it is derived from the idempotency key.
pub(super) fn check_request_form(request: &Request) -> Result<(), Refusal> {
    ids::check("request_id", &request.request_id).map_err(|e| (TxCode::Malformed, e.message))?;
    if let Some(key) = &request.idempotency_key {
        ids::check_idempotency_key(key).map_err(|e| (TxCode::Malformed, e.message))?;
        if request.request_id != ids::idempotent_request_id(&request.actor, key) {
            return Err((TxCode::Malformed, "request_id is not the one its idempotency key gives".into()));
        }
    }
    Ok(())
}
