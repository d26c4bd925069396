//! The services bftws ships, by name: what the node binary links (`--service NAME`) and the
//! operator checks a BftWebService's `spec.service` and reference data against, with their demo
//! data for devnets and tests.

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

/// Checks a service's genesis reference data (`app_state.service`) with the service's own
/// schema and rules: what a node would refuse at genesis is refused here.
pub fn check_reference_data(name: &str, reference_data: &Value) -> Result<(), String> {
    let registry = registry(name)?;
    let app =
        bftws_framework::app::App::new(std::sync::Arc::new(registry), bftws_framework::registry::Layer::L1, "check");
    let app_state = bftws_framework::demo::app_state(&[], None, reference_data.clone());
    app.genesis(&app_state).map(|_| ()).map_err(|e| e.to_string())
}

/// The roles the service called `name` gives to tokens.
pub fn roles(name: &str) -> Result<Vec<&'static str>, String> {
    Ok(registry(name)?.service().roles().iter().map(|role| role.name).collect())
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
    }

    #[test]
    fn reference_data_is_checked_by_the_service_itself() {
        check_reference_data("supply-chain", &Value::Null).unwrap();
        check_reference_data("escrow", &serde_json::json!({"accounts": [{"id": "b-1", "name": "B", "balance": 5}]}))
            .unwrap();
        let err = check_reference_data("escrow", &serde_json::json!({"suppliers": []})).unwrap_err();
        assert!(err.contains("suppliers"), "{err}");
        let err = check_reference_data("supply-chain", &serde_json::json!({"suppliers": [{"id": "a/b"}]})).unwrap_err();
        assert!(err.contains("invalid"), "{err}");
        assert!(check_reference_data("pirate", &Value::Null).unwrap_err().contains("unknown service"));
    }
}
