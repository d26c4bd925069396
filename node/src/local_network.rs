//! A whole two-layer network in one process: an L1 and an L2 chain on the in-process sequencer,
//! one L2 node with its committer, and the demo reference data and tokens. It runs the real
//! request model, handlers, bundles and HTTP API; only consensus is replaced (one node, one tx
//! per block). Used by `bftws-node dev` and by tests.

use std::{path::Path, sync::Arc, time::Duration};

use bftws_framework::{
    app::App,
    auth::Authenticator,
    chain::Chain,
    http::ApiState,
    l2::{Committer, LocalL1},
    local_chain::{LocalChain, LocalChainError},
    origin::Origin,
    registry::Layer,
    registry::Service,
    store::Store,
};

use bftws_supply_chain::{self, demo};

pub const L1_CHAIN_ID: &str = "bftws-local-l1";
pub const L2_CHAIN_ID: &str = "bftws-local-l2";
pub const L2_NODE_ID: &str = "l2-0";

pub struct LocalNetwork {
    pub l1: Arc<LocalChain>,
    pub l2: Arc<LocalChain>,
    pub origin: Arc<Origin>,
    pub committer: Arc<Committer>,
    pub api: ApiState,
}

impl LocalNetwork {
    /// A network with demo data; state in files under `dir`, or in memory when `None`.
    pub fn demo(dir: Option<&Path>) -> Result<Self, LocalChainError> {
        Self::demo_with_chain_ids(dir, L1_CHAIN_ID, L2_CHAIN_ID)
    }

    /// The same with chosen chain ids (to build transactions for another network's chains).
    pub fn demo_with_chain_ids(
        dir: Option<&Path>,
        l1_chain_id: &str,
        l2_chain_id: &str,
    ) -> Result<Self, LocalChainError> {
        let registry = Arc::new(bftws_supply_chain::registry());
        let open = |name: &str| match dir {
            Some(dir) => Store::open(&dir.join(name)),
            None => Store::in_memory(),
        };
        let l1 = LocalChain::new(
            App::new(registry.clone(), Layer::L1, l1_chain_id),
            open("l1.redb")?,
            &demo::app_state(&["l1-0"], Some(l2_chain_id)),
        )?;
        let l2 = LocalChain::new(
            App::new(registry.clone(), Layer::L2, l2_chain_id),
            open("l2.redb")?,
            &demo::app_state(&[L2_NODE_ID], None),
        )?;
        let origin = Arc::new(Origin::new(
            L2_NODE_ID,
            Layer::L2,
            demo::node_key(L2_NODE_ID),
            registry,
            l2.clone() as Arc<dyn Chain>,
            Duration::from_secs(5),
            Arc::new(bftws_framework::metrics::Metrics::new()),
        ));
        let committer = Arc::new(Committer::new(
            origin.clone(),
            Arc::new(LocalL1(l1.clone())),
            demo::commit_key(),
            Duration::from_secs(5),
        ));
        let auth = Authenticator::new(&demo::token_file(), bftws_supply_chain::SupplyChain.roles())
            .expect("demo tokens are valid");
        let api = ApiState::new(origin.clone(), Some(committer.clone()), auth);
        Ok(Self { l1, l2, origin, committer, api })
    }
}
