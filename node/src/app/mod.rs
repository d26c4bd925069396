//! The replicated state machine, independent of how transactions are ordered: the in-process
//! sequencer and the CometBFT ABCI application both drive it.
//!
//! Validation by re-execution: an op names a request and the response its origin computed; every
//! replica runs the same handler on the same request against its own state and applies the
//! writes only if its response is byte-identical. A bundle is the same check for a whole session,
//! step by step, applied all or nothing.

pub mod hash;
mod signatures;
pub mod tx;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::{
    signatures::TxSignatures,
    tx::{SignedBundle, SignedOp, Tx},
};
use crate::{
    crypto::PublicKey,
    encoding,
    registry::{ids, AppError, Ctx, ExecEnv, ExecMode, Layer, Registry, Role, Route, RouteKind},
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
        }
    }

    const ALL: [TxCode; 8] = [
        TxCode::Ok,
        TxCode::Malformed,
        TxCode::BadSignature,
        TxCode::Unauthorized,
        TxCode::ResponseMismatch,
        TxCode::Refused,
        TxCode::WrongLayer,
        TxCode::BundleConflict,
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

/// A local failure while executing: the node cannot tell what the right answer is, so on the
/// consensus path it must stop rather than fork.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("handler failed locally: {0}")]
    Internal(AppError),
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
        let mut ctx = Ctx::new(&Empty, ExecEnv { layer: self.layer, mode: ExecMode::Standalone });
        for node in &state.nodes {
            ids::check("nodes[].id", &node.id).map_err(|e| GenesisError(e.message))?;
            ctx.put(keys::node(&node.id), node);
        }
        for committer in &state.committers {
            ctx.put(keys::committer(&committer.public_key.to_string()), committer);
        }
        (self.registry.genesis)(&mut ctx, &state.service).map_err(|e| GenesisError(e.message))?;
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
        let hash = crate::crypto::sha256(bytes);
        let tx_hash = tx::tx_hash_of_digest(&hash);
        let tx = match Tx::decode(bytes) {
            Ok(tx) => tx,
            Err(err) => return Ok(TxOutcome::refused(tx_hash, TxCode::Malformed, err.to_string())),
        };
        let signatures = self.signatures.get_or_verify(hash, &tx);
        match &tx {
            Tx::Op(op) => self.execute_op(base, tx_hash, op, &signatures),
            Tx::Bundle(bundle) => self.execute_bundle(base, height, tx_hash, bundle, &signatures),
        }
    }

    fn execute_op(
        &self,
        base: &dyn StateView,
        tx_hash: String,
        signed: &SignedOp,
        signatures: &TxSignatures,
    ) -> Result<TxOutcome, ExecError> {
        let refuse = |code, log: String| Ok(TxOutcome::refused(tx_hash.clone(), code, log));
        if !signatures.envelope {
            return refuse(
                TxCode::BadSignature,
                format!("op signature does not verify under origin key {}", signed.origin_key),
            );
        }
        let node: Option<NodeRecord> = read(base, &keys::node(&signed.origin))?;
        match node {
            Some(node) if node.public_key == signed.origin_key => {}
            Some(_) => {
                return refuse(TxCode::Unauthorized, format!("origin '{}' signs with a different key", signed.origin))
            }
            None => {
                return refuse(TxCode::Unauthorized, format!("origin '{}' is not an authorised node", signed.origin))
            }
        }
        let route = match self.check_route(signed) {
            Ok(route) => route,
            Err((code, log)) => return refuse(code, log),
        };
        let env = ExecEnv { layer: self.layer, mode: ExecMode::Standalone };
        let mut ctx = Ctx::new(base, env);
        let writes = match run_and_compare(&mut ctx, route, signed)? {
            Ok(()) => {
                if let Some(session_id) = &signed.op.request.session_id {
                    record_session_op(&mut ctx, route, session_id, signed)?;
                }
                ctx.into_writes()
            }
            Err((code, log)) => return refuse(code, log),
        };
        Ok(TxOutcome {
            tx_hash,
            code: TxCode::Ok,
            log: String::new(),
            writes,
            op: Some(route.op),
            session_id: signed.op.request.session_id.clone(),
            ledger: None,
        })
    }

    /// Finds the op's route and checks the request is one this route can carry.
    fn check_route(&self, signed: &SignedOp) -> Result<&Route, (TxCode, String)> {
        let request = &signed.op.request;
        let (route, params) = self
            .registry
            .resolve(&request.method, &request.path)
            .ok_or_else(|| (TxCode::Malformed, format!("no route for {} {}", request.method, request.path)))?;
        if params != request.params {
            return Err((TxCode::Malformed, "path parameters do not match the path".into()));
        }
        if request.session_id != route.session_id(&request.request_id, &params) {
            return Err((TxCode::Malformed, "session_id does not match the route".into()));
        }
        let is_node = request.actor.role == Role::Node;
        if route.internal() != is_node || (is_node && request.actor.id != signed.origin) {
            return Err((TxCode::Unauthorized, format!("{} may not be called by this actor", route.op)));
        }
        Ok(route)
    }

    fn execute_bundle(
        &self,
        base: &dyn StateView,
        height: u64,
        tx_hash: String,
        signed: &SignedBundle,
        signatures: &TxSignatures,
    ) -> Result<TxOutcome, ExecError> {
        let refuse = |code, log: String| Ok(TxOutcome::refused(tx_hash.clone(), code, log));
        if self.layer != Layer::L1 {
            return refuse(TxCode::WrongLayer, "bundles are committed on L1 only".into());
        }
        let bundle = &signed.bundle;
        let committer: Option<CommitterRecord> = read(base, &keys::committer(&signed.committer_key.to_string()))?;
        match committer {
            None => {
                return refuse(TxCode::Unauthorized, format!("commit key {} is not authorised", signed.committer_key))
            }
            Some(c) if c.l2_chain_id != bundle.l2_chain_id => {
                return refuse(
                    TxCode::Unauthorized,
                    format!("commit key {} is not authorised for chain '{}'", signed.committer_key, bundle.l2_chain_id),
                )
            }
            Some(_) => {}
        }
        if !signatures.envelope {
            return refuse(TxCode::BadSignature, "bundle signature does not verify under the commit key".into());
        }
        if !bundle.hash_is_consistent() {
            return refuse(TxCode::Malformed, "bundle_hash is not the hash of the bundle".into());
        }
        if let Some(existing) = read::<LedgerEntry>(base, &keys::ledger_session(&bundle.session_id))? {
            if existing.bundle_hash == bundle.bundle_hash {
                // A retry of a committed bundle: success, with the original receipt.
                let mut outcome = TxOutcome::refused(tx_hash, TxCode::Ok, "already committed");
                outcome.session_id = Some(bundle.session_id.clone());
                outcome.ledger = Some(existing);
                return Ok(outcome);
            }
            return refuse(
                TxCode::BundleConflict,
                format!("session '{}' was already committed with bundle {}", bundle.session_id, existing.bundle_hash),
            );
        }
        if bundle.ops.is_empty() {
            return refuse(TxCode::Malformed, "a bundle needs at least one op".into());
        }

        let mut session = Overlay::new(base);
        for (step, op) in bundle.ops.iter().enumerate() {
            if op.op.request.session_id.as_deref() != Some(bundle.session_id.as_str()) {
                return refuse(TxCode::Malformed, format!("step {step}: op belongs to another session"));
            }
            if !signatures.op(step) {
                return refuse(TxCode::BadSignature, format!("step {step}: op signature does not verify"));
            }
            let route = match self.check_route(op) {
                Ok(route) if route.bundled() => route,
                Ok(route) => {
                    return refuse(TxCode::Malformed, format!("step {step}: {} is not a bundled op", route.op))
                }
                Err((code, log)) => return refuse(code, format!("step {step}: {log}")),
            };
            let mut ctx = Ctx::new(&session, ExecEnv { layer: self.layer, mode: ExecMode::InBundle });
            match run_and_compare(&mut ctx, route, op)? {
                Ok(()) => {
                    let writes = ctx.into_writes();
                    session.writes_mut().extend(writes);
                }
                Err((code, log)) => return refuse(code, format!("step {step} ({}): {log}", route.op)),
            }
        }
        let mut ctx = Ctx::new(&session, ExecEnv { layer: self.layer, mode: ExecMode::InBundle });
        (self.registry.session_committed)(&mut ctx, &bundle.session_id).map_err(ExecError::Internal)?;
        let entry = LedgerEntry {
            session_id: bundle.session_id.clone(),
            l2_chain_id: bundle.l2_chain_id.clone(),
            bundle_hash: bundle.bundle_hash.clone(),
            op_count: bundle.ops.len() as u64,
            height,
            tx_hash: tx_hash.clone(),
        };
        ctx.put(keys::ledger_session(&bundle.session_id), &entry);
        let finalize_writes = ctx.into_writes();
        session.writes_mut().extend(finalize_writes);
        Ok(TxOutcome {
            tx_hash,
            code: TxCode::Ok,
            log: String::new(),
            writes: session.into_writes(),
            op: None,
            session_id: Some(bundle.session_id.clone()),
            ledger: Some(entry),
        })
    }
}

/// Re-executes the op's handler and compares the response with the claimed one.
fn run_and_compare(
    ctx: &mut Ctx<'_>,
    route: &Route,
    signed: &SignedOp,
) -> Result<Result<(), (TxCode, String)>, ExecError> {
    match (route.handler)(ctx, &signed.op.request) {
        Ok(response) if response == signed.op.response => Ok(Ok(())),
        Ok(_) => Ok(Err((TxCode::ResponseMismatch, "re-executed response differs from the claimed response".into()))),
        Err(err) if err.is_internal() => Err(ExecError::Internal(err)),
        Err(err) => Ok(Err((TxCode::Refused, format!("handler refused on re-execution: {err}")))),
    }
}

/// Keeps what any node needs to commit the session later: its op log (the future bundle) and,
/// between the commit op and the recorded L1 answer, a pending-commit marker.
fn record_session_op(ctx: &mut Ctx<'_>, route: &Route, session_id: &str, signed: &SignedOp) -> Result<(), ExecError> {
    match route.kind {
        RouteKind::Step => {}
        RouteKind::Commit if ctx.env().commit_is_final() => {}
        RouteKind::Commit => ctx.put(keys::pending_commit(session_id), &signed.op.request.time_ms),
        RouteKind::CommitRecorded => {
            ctx.delete(keys::pending_commit(session_id));
            return Ok(());
        }
    }
    let count_key = keys::session_op_count(session_id);
    let count: u64 = ctx.get(&count_key).map_err(ExecError::Internal)?.unwrap_or(0);
    ctx.put(keys::session_op(session_id, count), signed);
    ctx.put(count_key, &(count + 1));
    Ok(())
}

/// The signed ops recorded for a session, in order (read by the committer to build a bundle).
pub fn session_ops(view: &dyn StateView, session_id: &str) -> Result<Vec<SignedOp>, StoreError> {
    let count: u64 = read(view, &keys::session_op_count(session_id))?.unwrap_or(0);
    let mut ops = Vec::with_capacity(count as usize);
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
