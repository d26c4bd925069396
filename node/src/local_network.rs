//! The in-process network with the supply chain's demo data (`bftws-node dev` and the node's
//! tests); any service gets one from [`bftws_framework::local_network`].

use std::path::Path;

pub use bftws_framework::local_network::{LocalNetwork, L1_CHAIN_ID, L2_CHAIN_ID, L2_NODE_ID};
use bftws_framework::{local_chain::LocalChainError, local_network::LocalNetworkSpec};
use bftws_supply_chain::demo;

/// A supply-chain network with demo data; state in files under `dir`, or in memory when `None`.
pub fn demo(dir: Option<&Path>) -> Result<LocalNetwork, LocalChainError> {
    demo_with_chain_ids(dir, L1_CHAIN_ID, L2_CHAIN_ID)
}

/// The same with chosen chain ids (to build transactions for another network's chains).
pub fn demo_with_chain_ids(
    dir: Option<&Path>,
    l1_chain_id: &str,
    l2_chain_id: &str,
) -> Result<LocalNetwork, LocalChainError> {
    LocalNetwork::new(
        bftws_supply_chain::registry(),
        LocalNetworkSpec {
            dir,
            l1_chain_id,
            l2_chain_id,
            reference_data: serde_json::to_value(demo::reference_data()).expect("reference data serializes"),
            tokens: demo::token_file(),
        },
    )
}
