//! The ABCI 2.0 application (CometBFT v0.38) for both layers, served by tower-abci over a Unix
//! socket on the node's tokio runtime.
//!
//! All four ABCI connections feed one [`AbciCore`] through tower-abci's `split` buffer, which
//! serves consensus requests first and every request strictly one at a time; each call does
//! its work synchronously and returns a ready future, so effects are ordered exactly as
//! CometBFT sent them.

mod consensus;
mod mempool;
mod query;
mod recheck;

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use tendermint::v0_38::abci::{Request, Response};
use tower::Service;
use tower_abci::BoxError;

use crate::{
    app::{App, BlockOutcome},
    cometbft::Waiters,
    metrics::Metrics,
    store::Store,
};

/// What the rest of the node can see of the ABCI side.
#[derive(Default)]
pub struct AbciStatus {
    /// CometBFT has connected and completed the handshake (`Info` was served).
    connected: AtomicBool,
    /// Last height committed by this application.
    height: AtomicU64,
}

impl AbciStatus {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }
}

/// Test-only fault modes (compiled with the `byzantine-test` feature only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FaultMode {
    #[default]
    Honest,
    /// As proposer, append a forged transaction whose claimed response does not match.
    #[cfg(feature = "byzantine-test")]
    ProposeMismatch,
    /// Apply one more write than the block says in every block with a transaction from this
    /// height on, so this node's state and app hash leave the quorum's (a validator whose app
    /// is wrong). Blocks below it, which a restarted node replays, apply honestly.
    #[cfg(feature = "byzantine-test")]
    DivergeApply { from_height: u64 },
}

/// The single owner of consensus-side state.
pub struct AbciCore {
    app: App,
    store: Arc<Store>,
    waiters: Arc<Waiters>,
    status: Arc<AbciStatus>,
    /// Outcomes of proposals this node validated, by block hash, for reuse in FinalizeBlock.
    validated: Vec<(Vec<u8>, BlockOutcome)>,
    /// The outcome of the block this node proposed, when every candidate applied: CometBFT
    /// does not ask a proposer to ProcessProposal its own block, so FinalizeBlock reuses this.
    proposed: Option<(u64, Vec<bytes::Bytes>, BlockOutcome)>,
    /// The decided block, executed and waiting for Commit.
    finalized: Option<BlockOutcome>,
    /// What passed CheckTx and what blocks wrote since, to answer rechecks without executing.
    rechecks: recheck::Rechecks,
    fault: FaultMode,
    metrics: Arc<Metrics>,
    /// Test-only: the origin key used to forge transactions.
    #[cfg_attr(not(feature = "byzantine-test"), allow(dead_code))]
    forger: Option<(String, crate::crypto::SigningKey)>,
}

impl AbciCore {
    pub fn new(
        app: App,
        store: Arc<Store>,
        waiters: Arc<Waiters>,
        status: Arc<AbciStatus>,
        metrics: Arc<Metrics>,
    ) -> Self {
        if let Ok(last) = store.last_block() {
            status.height.store(last.height, Ordering::Relaxed);
            metrics.set_height(app.layer(), last.height);
        }
        Self {
            app,
            store,
            waiters,
            status,
            validated: Vec::new(),
            proposed: None,
            finalized: None,
            rechecks: recheck::Rechecks::default(),
            fault: FaultMode::Honest,
            metrics,
            forger: None,
        }
    }

    /// Enables a fault mode (tests only).
    #[cfg(feature = "byzantine-test")]
    pub fn with_fault(mut self, fault: FaultMode, node_id: &str, key: crate::crypto::SigningKey) -> Self {
        self.fault = fault;
        self.forger = Some((node_id.to_owned(), key));
        self
    }

    /// Answers one ABCI request (the server calls this for every request, in order).
    pub fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Echo(echo) => Response::Echo(tendermint::abci::response::Echo { message: echo.message }),
            Request::Flush => Response::Flush,
            Request::Info(_) => Response::Info(self.info()),
            Request::Query(query) => Response::Query(self.query(query)),
            Request::InitChain(init) => Response::InitChain(self.init_chain(init)),
            Request::CheckTx(check) => Response::CheckTx(self.check_tx(check)),
            Request::PrepareProposal(prepare) => Response::PrepareProposal(self.prepare_proposal(prepare)),
            Request::ProcessProposal(process) => Response::ProcessProposal(self.process_proposal(process)),
            Request::FinalizeBlock(block) => Response::FinalizeBlock(self.finalize_block(block)),
            Request::Commit => Response::Commit(self.commit()),
            Request::ExtendVote(_) => {
                Response::ExtendVote(tendermint::abci::response::ExtendVote { vote_extension: Default::default() })
            }
            Request::VerifyVoteExtension(_) => {
                Response::VerifyVoteExtension(tendermint::abci::response::VerifyVoteExtension::Accept)
            }
            // No state sync: snapshots are neither offered nor accepted.
            Request::ListSnapshots => Response::ListSnapshots(Default::default()),
            Request::OfferSnapshot(_) => Response::OfferSnapshot(Default::default()),
            Request::LoadSnapshotChunk(_) => Response::LoadSnapshotChunk(Default::default()),
            Request::ApplySnapshotChunk(_) => Response::ApplySnapshotChunk(Default::default()),
        }
    }
}

/// The tower service wrapping the core.
pub struct AbciService(AbciCore);

impl Service<Request> for AbciService {
    type Response = Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let core = &mut self.0;
        let response = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.handle(request))) {
            Ok(response) => response,
            Err(_) => stop_the_process(),
        };
        Box::pin(std::future::ready(Ok(response)))
    }
}

/// A panic in any ABCI call (a store that cannot be written on the consensus path: a full disk,
/// say) leaves the application unable to answer CometBFT, while the rest of the process (its
/// HTTP API) would go on serving state that no longer moves. The node stops instead, so its orchestrator restarts
/// it from its last durable state and CometBFT replays what it lost. The panic message was
/// printed by the panic hook already.
fn stop_the_process() -> ! {
    tracing::error!("the ABCI application failed (see the panic above): stopping the node so it restarts cleanly");
    std::process::exit(70)
}

/// Serves ABCI on a Unix socket until the process ends. A stale socket file from a previous run
/// is removed first.
pub async fn serve(core: AbciCore, socket: &Path) -> Result<(), BoxError> {
    if socket.exists() {
        std::fs::remove_file(socket)?;
    }
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Consensus, mempool, snapshot and info requests share one ordered queue; the bound only
    // limits how many may wait.
    let (consensus, mempool, snapshot, info) = tower_abci::v038::split::service(AbciService(core), 64);
    let server = tower_abci::v038::Server::builder()
        .consensus(consensus)
        .mempool(mempool)
        .snapshot(snapshot)
        .info(info)
        .finish()
        .ok_or("incomplete ABCI server")?;
    server.listen_unix(socket).await
}
