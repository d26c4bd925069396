//! One node process: the ABCI application for its CometBFT, the HTTP API, and (on L2) the
//! committer, on one tokio runtime.

use std::{future::Future, sync::Arc, time::Duration};

use crate::{
    abci::{self, AbciCore, AbciStatus},
    app::App,
    auth::{TokenFileChange, TokenFileWatch},
    chain::Chain,
    cometbft::{CometChain, CometRpc, Waiters},
    config::{read_key, NodeConfig},
    http::{self, ApiState},
    l2::{Committer, HttpL1Client},
    metrics::Metrics,
    origin::Origin,
    proof::TrustedL1,
    registry::{Layer, Registry},
    store::Store,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every how many blocks the store is made durable (bounds the replay after a crash).
const DURABLE_EVERY_BLOCKS: u64 = 100;

/// Runs the node until `shutdown` resolves.
/// Runs the node for `registry`'s service until `shutdown` resolves.
pub async fn run(
    config: NodeConfig,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    std::fs::create_dir_all(&config.data_dir)?;
    // CometBFT replays the blocks a crash took from the store, so it need not fsync every block.
    let store = Arc::new(Store::open(&config.data_dir.join("state.redb"))?.defer_durability(DURABLE_EVERY_BLOCKS));
    let registry = Arc::new(registry);
    let key = read_key(&config.node_key_file)?;
    let (token_watch, auth) = TokenFileWatch::start(&config.tokens_file, registry.service().roles())?;
    let waiters = Arc::new(Waiters::default());
    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(AbciStatus::default());

    let core = AbciCore::new(
        App::new(registry.clone(), config.layer, config.chain_id.clone()),
        store.clone(),
        waiters.clone(),
        status.clone(),
        metrics.clone(),
    );
    let core = apply_fault(core, &config, &key)?;
    let socket = config.abci_socket.clone();
    let abci_task = tokio::spawn(async move { abci::serve(core, &socket).await });

    let rpc = CometRpc::new(config.cometbft_rpc.clone(), Duration::from_secs(5));
    let chain: Arc<dyn Chain> = Arc::new(CometChain::new(config.chain_id.clone(), status, rpc, waiters, store));
    let timeout = Duration::from_millis(config.write_timeout_ms);
    let origin = Arc::new(Origin::new(
        config.node_id.clone(),
        config.layer,
        key,
        registry,
        chain.clone(),
        timeout,
        metrics.clone(),
    ));

    let committer = match (&config.layer, &config.l2) {
        (Layer::L2, Some(l2)) => {
            let commit_key = read_key(&l2.commit_key_file)?;
            let attempt = Duration::from_millis(l2.commit_timeout_ms);
            let mut l1 = HttpL1Client::new(l2.l1_api.clone(), attempt);
            match &l2.l1_genesis_file {
                Some(path) => {
                    let json = std::fs::read_to_string(path)
                        .map_err(|e| format!("cannot read the L1 genesis {}: {e}", path.display()))?;
                    l1 = l1.verifying(TrustedL1::from_genesis_json(&json)?, metrics.clone());
                }
                None => tracing::warn!("no l1_genesis_file: L1 receipts are recorded without verifying their proofs"),
            }
            let l1 = Arc::new(l1);
            let committer = Arc::new(Committer::new(origin.clone(), l1, commit_key, attempt));
            resume_when_ready(committer.clone(), chain.clone());
            committer.clone().run_sweeper(chain.clone());
            Some(committer)
        }
        _ => None,
    };

    let listener = tokio::net::TcpListener::bind(config.http_listen).await?;
    tracing::info!(node = %config.node_id, layer = config.layer.as_str(), http = %listener.local_addr()?, "serving");
    let api = ApiState::new(origin, committer, auth);
    watch_tokens(token_watch, api.clone());
    tokio::select! {
        served = http::serve(listener, api, shutdown) => served?,
        abci = abci_task => match abci {
            Ok(Ok(())) => return Err("the ABCI server stopped".into()),
            Ok(Err(e)) => return Err(format!("the ABCI server failed: {e}").into()),
            Err(e) => return Err(format!("the ABCI server panicked: {e}").into()),
        },
    }
    Ok(())
}

/// Resumes sessions left committing once the node has caught up (before that, its view of which
/// sessions are pending may be stale).
fn resume_when_ready(committer: Arc<Committer>, chain: Arc<dyn Chain>) {
    tokio::spawn(async move {
        while chain.readiness().await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match committer.resume_pending() {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "resuming sessions left committing"),
            Err(err) => tracing::error!(%err, "cannot list sessions left committing"),
        }
    });
}

#[cfg(feature = "byzantine-test")]
fn apply_fault(core: AbciCore, config: &NodeConfig, key: &crate::crypto::SigningKey) -> Result<AbciCore, BoxError> {
    match config.fault.as_deref() {
        None => Ok(core),
        Some("propose-mismatch") => Ok(core.with_fault(abci::FaultMode::ProposeMismatch, &config.node_id, key.clone())),
        Some(mode) if mode.starts_with("diverge-apply-from:") => {
            let from_height = mode
                .strip_prefix("diverge-apply-from:")
                .and_then(|height| height.parse().ok())
                .ok_or_else(|| format!("fault mode '{mode}': diverge-apply-from:HEIGHT"))?;
            Ok(core.with_fault(abci::FaultMode::DivergeApply { from_height }, &config.node_id, key.clone()))
        }
        Some(other) => Err(format!("unknown fault mode '{other}'").into()),
    }
}

#[cfg(not(feature = "byzantine-test"))]
fn apply_fault(core: AbciCore, config: &NodeConfig, _key: &crate::crypto::SigningKey) -> Result<AbciCore, BoxError> {
    match &config.fault {
        None => Ok(core),
        Some(mode) => Err(format!("fault mode '{mode}' needs a build with the 'byzantine-test' feature").into()),
    }
}

/// How often the token file is read again.
const TOKEN_FILE_POLL: Duration = Duration::from_secs(5);

/// Serves the tokens of the token file as it changes, for as long as the node runs: a token
/// added to or removed from the Secret takes effect without a restart. New content that is not
/// a valid token file is logged and the tokens in use stay.
fn watch_tokens(mut watch: TokenFileWatch, api: ApiState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TOKEN_FILE_POLL).await;
            match watch.poll() {
                TokenFileChange::Unchanged => {}
                TokenFileChange::Reloaded(auth) => {
                    tracing::info!("token file changed: serving its tokens");
                    api.replace_tokens(auth);
                }
                TokenFileChange::Refused(err) => {
                    tracing::error!(%err, "token file not reloaded; the tokens in use stay")
                }
            }
        }
    });
}
