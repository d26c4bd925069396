//! The services this node binary links, by name (`--service NAME`), and their demo data for
//! devnets and tests.

use bftws_framework::{
    auth::{TokenEntry, TokenFile},
    registry::{Actor, Registry},
};
use serde_json::Value;

/// The service a node runs when none is named.
pub const DEFAULT: &str = bftws_supply_chain::NAME;

/// Every linked service's name.
pub const NAMES: &[&str] = &[bftws_supply_chain::NAME, bftws_escrow::NAME];

/// The registry of the service called `name`.
pub fn registry(name: &str) -> Result<Registry, String> {
    match name {
        bftws_supply_chain::NAME => Ok(bftws_supply_chain::registry()),
        bftws_escrow::NAME => Ok(bftws_escrow::registry()),
        other => Err(unknown(other)),
    }
}

/// DEMO-ONLY reference data and tokens of a service.
pub struct ServiceDemo {
    pub reference_data: Value,
    pub tokens: Vec<(String, Actor)>,
}

impl ServiceDemo {
    /// The demo `app_state` of a chain whose origin nodes are `node_ids`.
    pub fn app_state(&self, node_ids: &[&str], l2_chain_id: Option<&str>) -> Value {
        bftws_framework::demo::app_state(node_ids, l2_chain_id, self.reference_data.clone())
    }

    /// The demo tokens as a token file (hashes only).
    pub fn token_file(&self) -> TokenFile {
        TokenFile {
            tokens: self.tokens.iter().map(|(token, actor)| TokenEntry::for_token(token, actor.clone())).collect(),
        }
    }
}

/// The demo data of the service called `name`.
pub fn demo(name: &str) -> Result<ServiceDemo, String> {
    match name {
        bftws_supply_chain::NAME => Ok(ServiceDemo {
            reference_data: serde_json::to_value(bftws_supply_chain::demo::reference_data())
                .expect("reference data serializes"),
            tokens: bftws_supply_chain::demo::tokens(),
        }),
        bftws_escrow::NAME => Ok(ServiceDemo {
            reference_data: serde_json::to_value(bftws_escrow::demo::reference_data())
                .expect("reference data serializes"),
            tokens: bftws_escrow::demo::tokens(),
        }),
        other => Err(unknown(other)),
    }
}

fn unknown(name: &str) -> String {
    format!("unknown service '{name}'; this node links: {}", NAMES.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linked_service_has_a_registry_and_demo_data_that_load() {
        for name in NAMES {
            let registry = registry(name).unwrap();
            assert_eq!(registry.service().name(), *name);
            let demo = demo(name).unwrap();
            let app = bftws_framework::app::App::new(
                std::sync::Arc::new(registry),
                bftws_framework::registry::Layer::L1,
                "c",
            );
            app.genesis(&demo.app_state(&["l1-0"], Some("l2"))).unwrap();
            bftws_framework::auth::Authenticator::new(&demo.token_file(), app.registry().service().roles()).unwrap();
        }
        assert!(registry("pirate").is_err());
        // The demo L1 lets its committer bundle every L2 ordinal a layer can have.
        assert_eq!(bftws_framework::demo::L2_NODES, bftws_home::cluster::MAX_NODES);
    }
}
