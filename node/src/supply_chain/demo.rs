//! DEMO-ONLY reference data, keys and tokens for the local devnet and the tests.
//!
//! Every key here is derived from a public label and every token is printed in the docs: anyone
//! can sign as these suppliers and call as these users. Never use them outside a devnet.

use serde_json::{json, Value};

use super::{
    manifest,
    model::{Item, Party, ReferenceData, Supplier},
};
use crate::{
    app::{AppState, CommitterRecord, NodeRecord},
    auth::{TokenEntry, TokenFile},
    crypto::{SignatureHex, SigningKey},
    registry::{Actor, Role},
    supply_chain::roles,
};

pub const SUPPLIERS: [(&str, &str); 2] = [("sup-1", "Acme Components"), ("sup-2", "Borealis Parts")];
pub const OPERATORS: [(&str, &str); 2] = [("op-1", "Dock 1 operator"), ("op-2", "Dock 2 operator")];
pub const COURIERS: [(&str, &str); 2] = [("c-1", "NorthPost"), ("c-2", "SwiftShip")];

/// The demo signing key of a supplier.
pub fn supplier_key(supplier_id: &str) -> SigningKey {
    SigningKey::demo(&format!("supplier {supplier_id}"))
}

/// The demo L2 commit key.
pub fn commit_key() -> SigningKey {
    SigningKey::demo("l2 commit key")
}

/// The demo origin key of a node.
pub fn node_key(node_id: &str) -> SigningKey {
    SigningKey::demo(&format!("node {node_id}"))
}

/// A supplier's signature over a demo package manifest.
pub fn sign_manifest(supplier_id: &str, package_id: &str, items: &[Item]) -> SignatureHex {
    manifest::sign(&supplier_key(supplier_id), package_id, supplier_id, items)
}

pub fn reference_data() -> ReferenceData {
    ReferenceData {
        suppliers: SUPPLIERS
            .iter()
            .map(|(id, name)| Supplier {
                id: (*id).into(),
                name: (*name).into(),
                public_key: supplier_key(id).public_key(),
            })
            .collect(),
        operators: OPERATORS.iter().map(|(id, name)| Party { id: (*id).into(), name: (*name).into() }).collect(),
        couriers: COURIERS.iter().map(|(id, name)| Party { id: (*id).into(), name: (*name).into() }).collect(),
    }
}

/// The demo `app_state` of a chain whose origin nodes are `node_ids`; an L1 also authorises the
/// demo commit key for `l2_chain_id`, bundling ops of the L2 nodes `l2-0` … `l2-63` (the most
/// replicas a layer can have), each with its demo key.
pub fn app_state(node_ids: &[&str], l2_chain_id: Option<&str>) -> Value {
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
                origins: (0..bftws_home::cluster::MAX_NODES)
                    .map(|ordinal| {
                        let id = format!("l2-{ordinal}");
                        NodeRecord { public_key: node_key(&id).public_key(), id }
                    })
                    .collect(),
            })
            .into_iter()
            .collect(),
        service: serde_json::to_value(reference_data()).expect("reference data serializes"),
    };
    json!(state)
}

/// Demo bearer tokens: `demo-<actor id>` for every demo actor, plus an admin and an auditor.
pub fn tokens() -> Vec<(String, Actor)> {
    let mut out = Vec::new();
    let mut add =
        |id: &str, role: &str| out.push((format!("demo-{id}"), Actor { id: id.into(), role: Role::new(role) }));
    for (id, _) in SUPPLIERS {
        add(id, roles::SUPPLIER);
    }
    for (id, _) in OPERATORS {
        add(id, roles::OPERATOR);
    }
    add("admin", roles::ADMIN);
    add("auditor", roles::AUDITOR);
    out
}

/// The demo tokens as a token file (hashes only).
pub fn token_file() -> TokenFile {
    TokenFile { tokens: tokens().iter().map(|(token, actor)| TokenEntry::for_token(token, actor.clone())).collect() }
}
