//! DEMO-ONLY reference data and tokens for the devnet and the tests: every token is printed in
//! the docs. Never use them outside a devnet.

use bftws_framework::{
    auth::{TokenEntry, TokenFile},
    registry::{Actor, Role},
};
use serde_json::Value;

use crate::{
    model::{Account, ReferenceData, Seller},
    roles,
};

pub const SELLERS: [(&str, &str); 2] = [("s-1", "Northwind Traders"), ("s-2", "Contoso Goods")];
/// Buyers and their opening balances, in cents.
pub const BUYERS: [(&str, &str, u64); 2] = [("b-1", "Ada", 100_00), ("b-2", "Grace", 50_00)];
/// Further demo buyers `b-3` to `b-<n>`, so concurrent clients (the benchmark's workers) each
/// spend their own balance: sessions paying from one balance at once conflict by design.
pub const MORE_BUYERS: usize = 64;
const MORE_BUYERS_BALANCE: u64 = 100_00;

/// Every demo buyer: id, name, opening balance in cents.
pub fn buyers() -> Vec<(String, String, u64)> {
    let named = BUYERS.iter().map(|(id, name, balance)| ((*id).to_owned(), (*name).to_owned(), *balance));
    let more = (3..=MORE_BUYERS).map(|n| (format!("b-{n}"), format!("Buyer {n}"), MORE_BUYERS_BALANCE));
    named.chain(more).collect()
}

pub fn reference_data() -> ReferenceData {
    ReferenceData {
        accounts: buyers().into_iter().map(|(id, name, balance)| Account { id, name, balance }).collect(),
        sellers: SELLERS.iter().map(|(id, name)| Seller { id: (*id).into(), name: (*name).into() }).collect(),
    }
}

/// The demo `app_state` of a chain whose origin nodes are `node_ids` ([`bftws_framework::demo`]).
pub fn app_state(node_ids: &[&str], l2_chain_id: Option<&str>) -> Value {
    let service = serde_json::to_value(reference_data()).expect("reference data serializes");
    bftws_framework::demo::app_state(node_ids, l2_chain_id, service)
}

/// Demo bearer tokens: `demo-<actor id>` for every demo actor, plus an admin and an auditor.
pub fn tokens() -> Vec<(String, Actor)> {
    let mut out = Vec::new();
    let mut add =
        |id: &str, role: &str| out.push((format!("demo-{id}"), Actor { id: id.into(), role: Role::new(role) }));
    for (id, _) in SELLERS {
        add(id, roles::SELLER);
    }
    for (id, ..) in buyers() {
        add(&id, roles::BUYER);
    }
    add("admin", roles::ADMIN);
    add("auditor", roles::AUDITOR);
    out
}

/// The demo tokens as a token file (hashes only).
pub fn token_file() -> TokenFile {
    TokenFile { tokens: tokens().iter().map(|(token, actor)| TokenEntry::for_token(token, actor.clone())).collect() }
}
