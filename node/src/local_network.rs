//! The in-process network with the supply chain's demo data (`bftws-node dev` and the node's
//! tests); any service gets one from [`bftws_framework::local_network`].

use std::path::Path;

pub use bftws_framework::local_network::{LocalNetwork, L1_CHAIN_ID, L2_CHAIN_ID, L2_NODE_ID};
use bftws_framework::{
    app::{
        self,
        tx::{Bundle, SignedBundle, SignedOp},
    },
    chain::Chain,
    crypto::SigningKey,
    demo as framework_demo,
    local_chain::LocalChainError,
    local_network::LocalNetworkSpec,
    registry::{Actor, Role},
};
use bftws_supply_chain::demo;
use serde_json::{json, Value};

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

/// A committed supplier session registering `package_id`, built in-process for chains with
/// the devnet's chain ids: its id and its ops, as an L2 node would bundle them.
pub async fn supplier_session_ops(package_id: &str) -> Result<(String, Vec<SignedOp>), String> {
    let local = demo_with_chain_ids(None, crate::devnet::L1_CHAIN_ID, crate::devnet::L2_CHAIN_ID)
        .map_err(|e| format!("local network: {e}"))?;
    let supplier = Actor { id: "sup-1".into(), role: Role::new("supplier") };
    let write = |path: String, body: Value| {
        let (local, supplier) = (&local, &supplier);
        async move { local.origin.write(supplier, "POST", &path, body).await.map_err(|e| format!("{path}: {e}")) }
    };
    let started = write("/v1/sessions".into(), json!({"kind": "supplier"})).await?;
    let session = started.session_id.ok_or("no session id")?;
    let items = crate::workflow::package_items();
    let signature = demo::sign_manifest("sup-1", package_id, &items);
    let body = json!({"package_id": package_id, "items": items, "signature": signature});
    write(format!("/v1/sessions/{session}/register_package"), body).await?;
    write(format!("/v1/sessions/{session}/commit"), json!({})).await?;
    let snapshot = local.l2.snapshot().map_err(|e| e.to_string())?;
    let ops = app::session_ops(&snapshot, &session).map_err(|e| e.to_string())?;
    Ok((session, ops))
}

/// Three large bundles every L1 node of the devnet refuses before verifying or executing an
/// op, each with the tx code it gets: an unknown committer, over the op cap with the real
/// commit key, a forged signature.
pub async fn refused_bundles() -> Result<Vec<(SignedBundle, &'static str)>, String> {
    let (session, ops) = supplier_session_ops("PKG-FLOODER").await?;
    let l2 = crate::devnet::L2_CHAIN_ID;
    let many: Vec<SignedOp> = ops.iter().cycle().take(300).cloned().collect();
    let flooder = SigningKey::demo("flooder");
    let mut forged = SignedBundle::sign(Bundle::new(l2, &session, ops), &framework_demo::commit_key());
    forged.signature = flooder.sign(b"forged");
    Ok(vec![
        (SignedBundle::sign(Bundle::new(l2, &session, many.clone()), &flooder), "UNAUTHORIZED"),
        (SignedBundle::sign(Bundle::new(l2, &session, many), &framework_demo::commit_key()), "TOO_LARGE"),
        (forged, "BAD_SIGNATURE"),
    ])
}
