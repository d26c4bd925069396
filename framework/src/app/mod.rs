//! The replicated state machine, independent of how transactions are ordered: the in-process
//! sequencer and the CometBFT ABCI application both drive it.
//!
//! Validation by re-execution: an op names a request and the response its origin computed; every
//! replica runs the same handler on the same request against its own state and applies the
//! writes only if its response is byte-identical. A bundle is the same check for a whole session,
//! step by step, applied all or nothing.

pub mod hash;
pub mod session;
mod signatures;
pub mod tx;

use std::{panic::AssertUnwindSafe, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::{
    session::{Refusal, SessionLog, SessionPhase},
    signatures::TxSignatures,
    tx::{SignedBundle, SignedOp, Tx, TxDecodeError},
};
use crate::{
    crypto::{sha256, PublicKey},
    encoding::{self, EncodingError},
    registry::{ids, AppError, Ctx, ExecEnv, ExecMode, Layer, Registry, Request, Response, Route, RouteKind},
    store::{keys, Overlay, StateView, StoreError, WriteSet},
};

/// Result codes of transactions (CheckTx and FinalizeBlock). Stable: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxCode {
    Ok = 0,
    Malformed = 1,
    BadSignature = 2,
    Unauthorized = 3,
    ResponseMismatch = 4,
    /// The handler refuses the request against current state (for example, a conflicting op was
    /// ordered first).
    Refused = 5,
    WrongLayer = 6,
    /// A different bundle was already committed for this session.
    BundleConflict = 7,
    /// A bundle that is not a whole session: a prefix, a reordering, a splice, a repeated op,
    /// anything after the commit op. The log names the step.
    SessionShape = 8,
    /// The request was already applied on this chain.
    Replayed = 9,
    /// The service's handler or hook failed on this input (an error it should have answered as
    /// a 4xx, or a panic): refused like any other bad input, and logged.
    HandlerFailed = 10,
    /// Over a session's caps (ops or bytes) or the transaction size limit.
    TooLarge = 11,
    /// Valid JSON that is not the one accepted byte form (key order, whitespace, escapes, hex
    /// case).
    NonCanonical = 12,
}

impl TxCode {
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            TxCode::Ok => "OK",
            TxCode::Malformed => "MALFORMED",
            TxCode::BadSignature => "BAD_SIGNATURE",
            TxCode::Unauthorized => "UNAUTHORIZED",
            TxCode::ResponseMismatch => "RESPONSE_MISMATCH",
            TxCode::Refused => "REFUSED",
            TxCode::WrongLayer => "WRONG_LAYER",
            TxCode::BundleConflict => "BUNDLE_CONFLICT",
            TxCode::SessionShape => "SESSION_SHAPE",
            TxCode::Replayed => "REPLAYED",
            TxCode::HandlerFailed => "HANDLER_FAILED",
            TxCode::TooLarge => "TOO_LARGE",
            TxCode::NonCanonical => "NON_CANONICAL",
        }
    }

    const ALL: [TxCode; 13] = [
        TxCode::Ok,
        TxCode::Malformed,
        TxCode::BadSignature,
        TxCode::Unauthorized,
        TxCode::ResponseMismatch,
        TxCode::Refused,
        TxCode::WrongLayer,
        TxCode::BundleConflict,
        TxCode::SessionShape,
        TxCode::Replayed,
        TxCode::HandlerFailed,
        TxCode::TooLarge,
        TxCode::NonCanonical,
    ];

    pub fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_u32() == code)
    }

    /// The code with this [`TxCode::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// An origin node allowed to sign ops (genesis `app_state.nodes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub id: String,
    pub public_key: PublicKey,
}

/// An L2 commit key allowed to submit bundles (genesis `app_state.committers`, on L1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitterRecord {
    pub id: String,
    pub public_key: PublicKey,
    /// The L2 chain whose sessions this key commits.
    pub l2_chain_id: String,
    /// The L2 nodes whose ops this key may bundle: an op in a bundle is accepted only if its
    /// origin is listed here with the key it signs with.
    #[serde(default)]
    pub origins: Vec<NodeRecord>,
}

/// The genesis `app_state` of either layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    #[serde(default)]
    pub nodes: Vec<NodeRecord>,
    #[serde(default)]
    pub committers: Vec<CommitterRecord>,
    /// The service's reference data.
    #[serde(default)]
    pub service: Value,
}

/// A session as recorded in the L1 ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub session_id: String,
    pub l2_chain_id: String,
    pub bundle_hash: String,
    pub op_count: u64,
    pub height: u64,
    pub tx_hash: String,
}

/// L1's answer to a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub chain_id: String,
    pub height: u64,
    pub tx_hash: String,
    /// The transaction result code (0 = committed).
    pub code: u32,
    pub bundle_hash: String,
    pub session_id: String,
}

impl Receipt {
    pub fn committed(chain_id: &str, entry: &LedgerEntry) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            height: entry.height,
            tx_hash: entry.tx_hash.clone(),
            code: TxCode::Ok.as_u32(),
            bundle_hash: entry.bundle_hash.clone(),
            session_id: entry.session_id.clone(),
        }
    }
}

/// What a chain remembers of an applied request (`applied/{request_id}`): that it applied,
/// where, and for a request sent with an idempotency key, the answer to give its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedRequest {
    pub height: u64,
    pub tx_hash: String,
    pub origin: String,
    /// Hex SHA-256 of the canonical `{method, path, body}`: a retry must be the same request.
    pub fingerprint: String,
    /// The first answer, kept only for requests with an idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

impl AppliedRequest {
    /// The fingerprint of a request's method, path and body.
    pub fn fingerprint(request: &Request) -> String {
        let content = serde_json::json!({"method": request.method, "path": request.path, "body": request.body});
        hex::encode(sha256(&encoding::value_to_canonical_bytes(&content)))
    }

    pub fn read(view: &dyn StateView, request_id: &str) -> Result<Option<Self>, StoreError> {
        read(view, &keys::applied_request(request_id))
    }
}

/// L1's answer as recorded on L2 (the body of the internal commit-recorded op).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRecord {
    pub committed: bool,
    pub receipt: Option<Receipt>,
    /// Why L1 rejected the bundle.
    pub reason: Option<String>,
}

/// The outcome of one transaction.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub tx_hash: String,
    pub code: TxCode,
    pub log: String,
    /// The writes to apply (empty unless `code` is `Ok`).
    pub writes: WriteSet,
    /// The op's route name, when the transaction is an op.
    pub op: Option<&'static str>,
    pub session_id: Option<String>,
    /// For a bundle: the ledger entry (the original one when the bundle was already committed).
    pub ledger: Option<LedgerEntry>,
}

impl TxOutcome {
    fn refused(tx_hash: String, code: TxCode, log: impl Into<String>) -> Self {
        Self { tx_hash, code, log: log.into(), writes: WriteSet::default(), op: None, session_id: None, ledger: None }
    }
}

/// The outcome of a block: per-transaction results and the new app hash.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    pub height: u64,
    pub txs: Vec<TxOutcome>,
    pub app_hash: [u8; 32],
}

impl BlockOutcome {
    /// The writes of the applied transactions, in block order.
    pub fn writes(&self) -> Vec<WriteSet> {
        self.txs.iter().filter(|t| t.code == TxCode::Ok).map(|t| t.writes.clone()).collect()
    }
}

/// A local failure while executing: the store failed, or a value this node stored does not
/// decode. The node cannot tell what the right answer is, so on the consensus path it must stop
/// rather than fork. Nothing a transaction contains can cause one: every failure that depends
/// on the input is a refusal with a [`TxCode`].
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("local fault while executing: {0}")]
    LocalFault(String),
}

/// Why a genesis `app_state` was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid genesis app_state: {0}")]
pub struct GenesisError(String);

pub struct App {
    registry: Arc<Registry>,
    layer: Layer,
    chain_id: String,
    signatures: signatures::SignatureCache,
}

impl App {
    pub fn new(registry: Arc<Registry>, layer: Layer, chain_id: impl Into<String>) -> Self {
        Self { registry, layer, chain_id: chain_id.into(), signatures: signatures::SignatureCache::default() }
    }

    pub fn layer(&self) -> Layer {
        self.layer
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The writes that genesis makes (reference data) and the resulting app hash.
    pub fn genesis(&self, app_state: &Value) -> Result<(WriteSet, [u8; 32]), GenesisError> {
        let state: AppState = serde_json::from_value(app_state.clone()).map_err(|e| GenesisError(e.to_string()))?;
        struct Empty;
        impl StateView for Empty {
            fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(None)
            }
        }
        let mut ctx = self.registry.service_ctx(&Empty, ExecEnv { layer: self.layer, mode: ExecMode::Standalone });
        for node in &state.nodes {
            ids::check("nodes[].id", &node.id).map_err(|e| GenesisError(e.message))?;
            ctx.fw_put(keys::node(&node.id), node);
        }
        for committer in &state.committers {
            for origin in &committer.origins {
                ids::check("committers[].origins[].id", &origin.id).map_err(|e| GenesisError(e.message))?;
            }
            ctx.fw_put(keys::committer(&committer.public_key.to_string()), committer);
        }
        self.registry.service().genesis(&mut ctx, &state.service).map_err(|e| GenesisError(e.message))?;
        let writes = ctx.into_writes();
        let app_hash = hash::next_app_hash(&hash::EMPTY_APP_HASH, std::slice::from_ref(&writes));
        Ok((writes, app_hash))
    }

    /// Executes a block's transactions in order on top of `base`.
    pub fn execute_block(
        &self,
        base: &dyn StateView,
        prev_app_hash: &[u8],
        height: u64,
        txs: &[impl AsRef<[u8]>],
    ) -> Result<BlockOutcome, ExecError> {
        let mut block = Overlay::new(base);
        let mut outcomes = Vec::with_capacity(txs.len());
        for bytes in txs {
            let outcome = self.execute_tx(&block, height, bytes.as_ref())?;
            if outcome.code == TxCode::Ok {
                block.writes_mut().extend(outcome.writes.clone());
            }
            outcomes.push(outcome);
        }
        let applied = outcomes.iter().filter(|t| t.code == TxCode::Ok).map(|t| &t.writes);
        let app_hash = hash::next_app_hash(prev_app_hash, applied);
        Ok(BlockOutcome { height, txs: outcomes, app_hash })
    }

    /// Executes one transaction against `base` (which includes the block's earlier writes).
    pub fn execute_tx(&self, base: &dyn StateView, height: u64, bytes: &[u8]) -> Result<TxOutcome, ExecError> {
        let hash = sha256(bytes);
        let tx_hash = tx::tx_hash_of_digest(&hash);
        let tx = match Tx::decode(bytes) {
            Ok(tx) => tx,
            Err(err) => {
                let code = match err {
                    TxDecodeError::TooLarge(_) => TxCode::TooLarge,
                    TxDecodeError::Encoding(EncodingError::NotCanonical) => TxCode::NonCanonical,
                    TxDecodeError::Encoding(EncodingError::Json(_)) => TxCode::Malformed,
                };
                return Ok(TxOutcome::refused(tx_hash, code, err.to_string()));
            }
        };
        let signatures = self.signatures.for_tx(hash);
        let executed = match &tx {
            Tx::Op(op) => self.execute_op(base, height, &tx_hash, bytes.len(), op, &tx, &signatures),
            Tx::Bundle(bundle) => self.execute_bundle(base, height, &tx_hash, bytes.len(), bundle, &tx, &signatures),
        };
        Ok(match executed? {
            Ok(outcome) => outcome,
            Err((code, log)) => TxOutcome::refused(tx_hash, code, log),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_op(
        &self,
        base: &dyn StateView,
        height: u64,
        tx_hash: &str,
        tx_len: usize,
        signed: &SignedOp,
        tx: &Tx,
        signatures: &TxSignatures,
    ) -> Result<Result<TxOutcome, Refusal>, ExecError> {
        let node: Option<NodeRecord> = read(base, &keys::node(&signed.origin))?;
        match node {
            Some(node) if node.public_key == signed.origin_key => {}
            Some(_) => {
                return Ok(Err((
                    TxCode::Unauthorized,
                    format!("origin '{}' signs with a different key", signed.origin),
                )))
            }
            None => {
                return Ok(Err((TxCode::Unauthorized, format!("origin '{}' is not an authorised node", signed.origin))))
            }
        }
        let request = &signed.op.request;
        let route = match check_route(&self.registry, signed).and_then(|route| {
            session::check_request_form(request)?;
            Ok(route)
        }) {
            Ok(route) => route,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if !signatures.envelope(tx) {
            return Ok(Err((
                TxCode::BadSignature,
                format!("op signature does not verify under origin key {}", signed.origin_key),
            )));
        }
        if let Some(first) = AppliedRequest::read(base, &request.request_id)? {
            return Ok(Err((
                TxCode::Replayed,
                format!("request '{}' was already applied at height {}", request.request_id, first.height),
            )));
        }
        let log = match &request.session_id {
            Some(session_id) if route.bundled() => SessionLog::read(base, session_id)?,
            _ => None,
        };
        if let Err(refusal) = session::check_next_op(log.as_ref(), route, request, tx_len) {
            return Ok(Err(refusal));
        }
        let env = ExecEnv { layer: self.layer, mode: ExecMode::Standalone };
        let mut ctx = self.registry.service_ctx(base, env);
        if let Err(refusal) = run_and_compare(&self.registry, &mut ctx, route, signed)? {
            return Ok(Err(refusal));
        }
        // Direct-L1 mode: the commit op is final itself, so what a commit makes final happens
        // now, as it does when a bundle applies.
        if route.kind == RouteKind::Commit && env.commit_is_final() {
            let (service, session_id) = (self.registry.service(), request.session_id.as_deref().unwrap_or_default());
            if let Err(refusal) =
                run_guarded(&mut ctx, "session_committed", |ctx| service.session_committed(ctx, session_id))?
            {
                return Ok(Err(refusal));
            }
        }
        if let Some(session_id) = &request.session_id {
            record_session_op(&mut ctx, route, session_id, log, signed, tx_len);
        }
        mark_applied(&mut ctx, height, tx_hash, signed);
        Ok(Ok(TxOutcome {
            tx_hash: tx_hash.to_owned(),
            code: TxCode::Ok,
            log: String::new(),
            writes: ctx.into_writes(),
            op: Some(route.op),
            session_id: request.session_id.clone(),
            ledger: None,
        }))
    }

    /// Checks what a bundle costs nothing to check, before any signature is verified or any
    /// handler runs: this layer takes bundles, the commit key is authorised for the bundle's L2
    /// chain, the caps, the session's shape and its ops' origins, and the bundle hash. Returns
    /// each step's route. The HTTP bundle endpoint runs the same checks before broadcasting.
    pub fn precheck_bundle<'r>(
        registry: &'r Registry,
        layer: Layer,
        base: &dyn StateView,
        signed: &SignedBundle,
        tx_len: usize,
    ) -> Result<Result<Vec<&'r Route>, Refusal>, StoreError> {
        if layer != Layer::L1 {
            return Ok(Err((TxCode::WrongLayer, "bundles are committed on L1 only".into())));
        }
        let bundle = &signed.bundle;
        let committer: Option<CommitterRecord> = read(base, &keys::committer(&signed.committer_key.to_string()))?;
        let committer = match committer {
            None => {
                return Ok(Err((
                    TxCode::Unauthorized,
                    format!("commit key {} is not authorised", signed.committer_key),
                )))
            }
            Some(c) if c.l2_chain_id != bundle.l2_chain_id => {
                return Ok(Err((
                    TxCode::Unauthorized,
                    format!("commit key {} is not authorised for chain '{}'", signed.committer_key, bundle.l2_chain_id),
                )))
            }
            Some(c) => c,
        };
        let routes = match session::check_bundle_shape(registry, &committer, bundle, tx_len) {
            Ok(routes) => routes,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if !bundle.hash_is_consistent() {
            return Ok(Err((TxCode::Malformed, "bundle_hash is not the hash of the bundle".into())));
        }
        Ok(Ok(routes))
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_bundle(
        &self,
        base: &dyn StateView,
        height: u64,
        tx_hash: &str,
        tx_len: usize,
        signed: &SignedBundle,
        tx: &Tx,
        signatures: &TxSignatures,
    ) -> Result<Result<TxOutcome, Refusal>, ExecError> {
        let routes = match Self::precheck_bundle(&self.registry, self.layer, base, signed, tx_len)? {
            Ok(routes) => routes,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let bundle = &signed.bundle;
        if !signatures.envelope(tx) {
            return Ok(Err((TxCode::BadSignature, "bundle signature does not verify under the commit key".into())));
        }
        if let Some(existing) = read::<LedgerEntry>(base, &keys::ledger_session(&bundle.session_id))? {
            if existing.bundle_hash == bundle.bundle_hash {
                // A retry of a committed bundle: success, with the original receipt.
                let mut outcome = TxOutcome::refused(tx_hash.to_owned(), TxCode::Ok, "already committed");
                outcome.session_id = Some(bundle.session_id.clone());
                outcome.ledger = Some(existing);
                return Ok(Ok(outcome));
            }
            return Ok(Err((
                TxCode::BundleConflict,
                format!("session '{}' was already committed with bundle {}", bundle.session_id, existing.bundle_hash),
            )));
        }
        for (step, op) in bundle.ops.iter().enumerate() {
            if let Err((code, log)) = session::check_request_form(&op.op.request) {
                return Ok(Err((code, format!("step {step}: {log}"))));
            }
            if !signatures.op(tx, step) {
                return Ok(Err((TxCode::BadSignature, format!("step {step}: op signature does not verify"))));
            }
            if let Some(first) = AppliedRequest::read(base, &op.op.request.request_id)? {
                return Ok(Err((
                    TxCode::Replayed,
                    format!("step {step}: request was already applied on L1 at height {}", first.height),
                )));
            }
        }

        let mut session = Overlay::new(base);
        for ((step, op), route) in bundle.ops.iter().enumerate().zip(routes) {
            let mut ctx = self.registry.service_ctx(&session, ExecEnv { layer: self.layer, mode: ExecMode::InBundle });
            if let Err((code, log)) = run_and_compare(&self.registry, &mut ctx, route, op)? {
                return Ok(Err((code, format!("step {step} ({}): {log}", route.op))));
            }
            mark_applied(&mut ctx, height, tx_hash, op);
            let writes = ctx.into_writes();
            session.writes_mut().extend(writes);
        }
        let mut ctx = self.registry.service_ctx(&session, ExecEnv { layer: self.layer, mode: ExecMode::InBundle });
        let service = self.registry.service();
        if let Err(refusal) =
            run_guarded(&mut ctx, "session_committed", |ctx| service.session_committed(ctx, &bundle.session_id))?
        {
            return Ok(Err(refusal));
        }
        let entry = LedgerEntry {
            session_id: bundle.session_id.clone(),
            l2_chain_id: bundle.l2_chain_id.clone(),
            bundle_hash: bundle.bundle_hash.clone(),
            op_count: bundle.ops.len() as u64,
            height,
            tx_hash: tx_hash.to_owned(),
        };
        ctx.fw_put(keys::ledger_session(&bundle.session_id), &entry);
        let finalize_writes = ctx.into_writes();
        session.writes_mut().extend(finalize_writes);
        Ok(Ok(TxOutcome {
            tx_hash: tx_hash.to_owned(),
            code: TxCode::Ok,
            log: String::new(),
            writes: session.into_writes(),
            op: None,
            session_id: Some(bundle.session_id.clone()),
            ledger: Some(entry),
        }))
    }
}

/// Finds the op's route and checks the request is one this route can carry.
fn check_route<'r>(registry: &'r Registry, signed: &SignedOp) -> Result<&'r Route, Refusal> {
    let request = &signed.op.request;
    let (route, params) = registry
        .resolve(&request.method, &request.path)
        .ok_or_else(|| (TxCode::Malformed, format!("no route for {} {}", request.method, request.path)))?;
    if params != request.params {
        return Err((TxCode::Malformed, "path parameters do not match the path".into()));
    }
    if request.session_id != route.session_id(&request.request_id, &params) {
        return Err((TxCode::Malformed, "session_id does not match the route".into()));
    }
    let is_node = request.actor.role.is_node();
    if route.internal() != is_node || (is_node && request.actor.id != signed.origin) {
        return Err((TxCode::Unauthorized, format!("{} may not be called by this actor", route.op)));
    }
    Ok(route)
}

/// Runs a service's handler or hook so that nothing it does with its input can stop this
/// node: an error it returns or a panic becomes a refusal, unless it came from a local fault
/// the context saw (then it is one, and the caller stops).
fn run_guarded<'c, T>(
    ctx: &mut Ctx<'c>,
    what: &str,
    call: impl FnOnce(&mut Ctx<'c>) -> Result<T, AppError>,
) -> Result<Result<T, Refusal>, ExecError> {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| call(ctx)));
    if let Some(fault) = ctx.take_local_fault() {
        return Err(ExecError::LocalFault(fault));
    }
    match result {
        Ok(Ok(value)) => Ok(Ok(value)),
        Ok(Err(err)) if err.is_internal() => {
            tracing::warn!(what, error = %err, "service code failed on its input");
            Ok(Err((TxCode::HandlerFailed, format!("{what} failed: {}", err.message))))
        }
        Ok(Err(err)) => Ok(Err((TxCode::Refused, format!("handler refused on re-execution: {err}")))),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            tracing::error!(what, %message, "service code panicked on its input; refused");
            Ok(Err((TxCode::HandlerFailed, format!("{what} panicked: {message}"))))
        }
    }
}

/// Runs a route: the service's handler, or for the framework's own `commit_recorded`, the
/// framework. The origin's simulation and every replica's re-execution both come through here.
pub fn run_route(
    registry: &Registry,
    ctx: &mut Ctx<'_>,
    route: &Route,
    request: &Request,
) -> Result<Response, AppError> {
    match route.kind {
        RouteKind::CommitRecorded => session::record_commit(ctx, registry.service(), request),
        _ => (route.handler)(ctx, request),
    }
}

/// Re-executes the op's handler and compares the response with the claimed one.
fn run_and_compare(
    registry: &Registry,
    ctx: &mut Ctx<'_>,
    route: &Route,
    signed: &SignedOp,
) -> Result<Result<(), Refusal>, ExecError> {
    let request = &signed.op.request;
    Ok(match run_guarded(ctx, route.op, |ctx| run_route(registry, ctx, route, request))? {
        Ok(response) if response == signed.op.response => Ok(()),
        Ok(_) => Err((TxCode::ResponseMismatch, "re-executed response differs from the claimed response".into())),
        Err(refusal) => Err(refusal),
    })
}

/// Keeps what any node needs to commit the session later: the framework's session record
/// (owner, phase), its op log (the future bundle) and, between the commit op and the recorded
/// L1 answer, a pending-commit marker.
fn record_session_op(
    ctx: &mut Ctx<'_>,
    route: &Route,
    session_id: &str,
    log: Option<SessionLog>,
    signed: &SignedOp,
    tx_len: usize,
) {
    let request = &signed.op.request;
    if route.kind == RouteKind::CommitRecorded {
        // The session record itself was updated by `session::record_commit`.
        ctx.fw_delete(keys::pending_commit(session_id));
        return;
    }
    let mut log = log.unwrap_or_else(|| {
        ctx.fw_put(keys::session_by_owner(&request.actor.id, session_id), &serde_json::json!({}));
        SessionLog {
            owner: request.actor.id.clone(),
            phase: SessionPhase::Open,
            ops: 0,
            bytes: 0,
            receipt: None,
            rejection: None,
        }
    });
    match route.kind {
        RouteKind::Step | RouteKind::CommitRecorded => {}
        RouteKind::Abort => log.phase = SessionPhase::Aborted,
        RouteKind::Commit if ctx.env().commit_is_final() => log.phase = SessionPhase::Committed,
        RouteKind::Commit => {
            log.phase = SessionPhase::Committing;
            ctx.fw_put(keys::pending_commit(session_id), &request.time_ms);
        }
    }
    ctx.fw_put(keys::session_op(session_id, log.ops), signed);
    log.ops += 1;
    log.bytes += tx_len as u64;
    ctx.fw_put(keys::session(session_id), &log);
}

/// Records that the op's request applied, so it never applies again on this chain.
fn mark_applied(ctx: &mut Ctx<'_>, height: u64, tx_hash: &str, signed: &SignedOp) {
    let request = &signed.op.request;
    let record = AppliedRequest {
        height,
        tx_hash: tx_hash.to_owned(),
        origin: signed.origin.clone(),
        fingerprint: AppliedRequest::fingerprint(request),
        response: request.idempotency_key.as_ref().map(|_| signed.op.response.clone()),
    };
    ctx.fw_put(keys::applied_request(&request.request_id), &record);
}

/// The signed ops recorded for a session, in order (read by the committer to build a bundle).
pub fn session_ops(view: &dyn StateView, session_id: &str) -> Result<Vec<SignedOp>, StoreError> {
    let count = SessionLog::read(view, session_id)?.map_or(0, |log| log.ops);
    let mut ops = Vec::with_capacity(count.min(session::MAX_SESSION_OPS) as usize);
    for index in 0..count {
        if let Some(op) = read(view, &keys::session_op(session_id, index))? {
            ops.push(op);
        }
    }
    Ok(ops)
}

/// Sessions whose commit op is applied but whose L1 answer is not recorded yet, by id.
pub fn pending_commits(snapshot: &crate::store::Snapshot) -> Result<Vec<String>, StoreError> {
    let prefix = keys::pending_commit_prefix();
    Ok(snapshot
        .scan_prefix(&prefix)?
        .into_keys()
        .filter_map(|k| String::from_utf8(k[prefix.len()..].to_vec()).ok())
        .collect())
}

/// The node that originated a session's commit op (the last op of its log), if it has one.
pub fn commit_origin(view: &dyn StateView, session_id: &str) -> Result<Option<String>, StoreError> {
    let Some(log) = SessionLog::read(view, session_id)? else { return Ok(None) };
    if log.phase != SessionPhase::Committing || log.ops == 0 {
        return Ok(None);
    }
    let last: Option<SignedOp> = read(view, &keys::session_op(session_id, log.ops - 1))?;
    Ok(last.map(|op| op.origin))
}

/// The L1 ledger entry of a session, if it was committed.
pub fn ledger_entry(view: &dyn StateView, session_id: &str) -> Result<Option<LedgerEntry>, StoreError> {
    read(view, &keys::ledger_session(session_id))
}

fn read<T: serde::de::DeserializeOwned>(view: &dyn StateView, key: &[u8]) -> Result<Option<T>, StoreError> {
    // Values in state are only ever written by this program; a value that does not decode is
    // treated as absent rather than trusted.
    Ok(view.get(key)?.and_then(|bytes| encoding::from_stored_bytes(&bytes).ok()))
}

#[cfg(test)]
mod tests;
