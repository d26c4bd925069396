//! A whole two-layer network in one process for any service: an L1 and an L2 chain on the
//! in-process sequencer, one L2 node with its committer, and the demo node and commit keys. It
//! runs the real request model, handlers, bundles and HTTP API; only consensus is replaced (one
//! node, one tx per block). Used by `bftws-node dev` and by every service's tests.

use std::{path::Path, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    app::App,
    auth::{Authenticator, TokenFile},
    chain::Chain,
    demo,
    http::ApiState,
    l2::{Committer, LocalL1},
    local_chain::{LocalChain, LocalChainError},
    origin::Origin,
    registry::{Layer, Registry},
    store::Store,
};

pub const L1_CHAIN_ID: &str = "bftws-local-l1";
pub const L2_CHAIN_ID: &str = "bftws-local-l2";
pub const L2_NODE_ID: &str = "l2-0";

/// What a local network is made of besides the service.
pub struct LocalNetworkSpec<'a> {
    /// State in files under this directory, or in memory when `None`.
    pub dir: Option<&'a Path>,
    pub l1_chain_id: &'a str,
    pub l2_chain_id: &'a str,
    /// The service's genesis reference data (`app_state.service`), the same on both layers.
    pub reference_data: Value,
    pub tokens: TokenFile,
}

pub struct LocalNetwork {
    pub l1: Arc<LocalChain>,
    pub l2: Arc<LocalChain>,
    pub origin: Arc<Origin>,
    pub committer: Arc<Committer>,
    pub api: ApiState,
}

impl LocalNetwork {
    pub fn new(registry: Registry, spec: LocalNetworkSpec<'_>) -> Result<Self, LocalChainError> {
        let tokens = Authenticator::new(&spec.tokens, registry.service().roles());
        let registry = Arc::new(registry);
        let open = |name: &str| match spec.dir {
            Some(dir) => Store::open(&dir.join(name)),
            None => Store::in_memory(),
        };
        let l1 = LocalChain::new(
            App::new(registry.clone(), Layer::L1, spec.l1_chain_id),
            open("l1.redb")?,
            &demo::app_state(&["l1-0"], Some(spec.l2_chain_id), spec.reference_data.clone()),
        )?;
        let l2 = LocalChain::new(
            App::new(registry.clone(), Layer::L2, spec.l2_chain_id),
            open("l2.redb")?,
            &demo::app_state(&[L2_NODE_ID], None, spec.reference_data),
        )?;
        let origin = Arc::new(Origin::new(
            L2_NODE_ID,
            Layer::L2,
            demo::node_key(L2_NODE_ID),
            registry,
            l2.clone() as Arc<dyn Chain>,
            Duration::from_secs(5),
            Arc::new(crate::metrics::Metrics::new()),
        ));
        let committer = Arc::new(Committer::new(
            origin.clone(),
            Arc::new(LocalL1(l1.clone())),
            demo::commit_key(),
            Duration::from_secs(5),
        ));
        let auth = tokens.map_err(LocalChainError::Config)?;
        let api = ApiState::new(origin.clone(), Some(committer.clone()), auth);
        Ok(Self { l1, l2, origin, committer, api })
    }
}
