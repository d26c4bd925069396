//! DEMO-ONLY node and commit keys and the framework's part of a demo genesis, for devnets and
//! tests.
//!
//! Every key here is derived from a public label: anyone can sign as these nodes. Never use them
//! outside a devnet.

use serde_json::{json, Value};

use crate::{
    app::{AppState, CommitterRecord, NodeRecord},
    crypto::SigningKey,
};

/// The L2 nodes a demo L1 lets its committer bundle ops of (`l2-0` … `l2-63`): the most
/// replicas a layer can have.
pub const L2_NODES: u32 = 64;

/// The demo L2 commit key.
pub fn commit_key() -> SigningKey {
    SigningKey::demo("l2 commit key")
}

/// The demo origin key of a node.
pub fn node_key(node_id: &str) -> SigningKey {
    SigningKey::demo(&format!("node {node_id}"))
}

/// The demo `app_state` of a chain whose origin nodes are `node_ids`, with `service` as the
/// service's reference data; an L1 also authorises the demo commit key for `l2_chain_id`,
/// bundling ops of the L2 nodes `l2-0` … `l2-63`, each with its demo key.
pub fn app_state(node_ids: &[&str], l2_chain_id: Option<&str>, service: Value) -> Value {
    let state = AppState {
        nodes: node_ids
            .iter()
            .map(|id| NodeRecord { id: (*id).into(), public_key: node_key(id).public_key() })
            .collect(),
        committers: l2_chain_id
            .map(|chain| CommitterRecord {
                id: "l2-commit".into(),
                public_key: commit_key().public_key(),
                l2_chain_id: chain.into(),
                origins: (0..L2_NODES)
                    .map(|ordinal| {
                        let id = format!("l2-{ordinal}");
                        NodeRecord { public_key: node_key(&id).public_key(), id }
                    })
                    .collect(),
            })
            .into_iter()
            .collect(),
        service,
    };
    json!(state)
}
