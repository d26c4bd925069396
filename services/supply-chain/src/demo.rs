//! DEMO-ONLY reference data, keys and tokens for the local devnet and the tests.
//!
//! Every key here is derived from a public label and every token is printed in the docs: anyone
//! can sign as these suppliers and call as these users. Never use them outside a devnet.

use serde_json::Value;

use crate::{
    manifest,
    model::{Item, Party, ReferenceData, Supplier},
};
use bftws_framework::{
    auth::{TokenEntry, TokenFile},
    crypto::{SignatureHex, SigningKey},
    registry::{Actor, Role},
};

use crate::roles;

pub const SUPPLIERS: [(&str, &str); 2] = [("sup-1", "Acme Components"), ("sup-2", "Borealis Parts")];
pub const OPERATORS: [(&str, &str); 2] = [("op-1", "Dock 1 operator"), ("op-2", "Dock 2 operator")];
pub const COURIERS: [(&str, &str); 2] = [("c-1", "NorthPost"), ("c-2", "SwiftShip")];

/// The demo signing key of a supplier.
pub fn supplier_key(supplier_id: &str) -> SigningKey {
    SigningKey::demo(&format!("supplier {supplier_id}"))
}

pub use bftws_framework::demo::{commit_key, node_key};

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

/// The demo `app_state` of a chain whose origin nodes are `node_ids`, with the demo reference
/// data; an L1 also authorises the demo commit key for `l2_chain_id` ([`bftws_framework::demo`]).
pub fn app_state(node_ids: &[&str], l2_chain_id: Option<&str>) -> Value {
    let service = serde_json::to_value(reference_data()).expect("reference data serializes");
    bftws_framework::demo::app_state(node_ids, l2_chain_id, service)
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
