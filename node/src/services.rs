//! The services this node binary links, by name (`--service NAME`).

use bftws_framework::registry::Registry;

/// The service a node runs when none is named.
pub const DEFAULT: &str = bftws_supply_chain::NAME;

/// Every linked service's name.
pub const NAMES: &[&str] = &[bftws_supply_chain::NAME];

/// The registry of the service called `name`.
pub fn registry(name: &str) -> Result<Registry, String> {
    match name {
        bftws_supply_chain::NAME => Ok(bftws_supply_chain::registry()),
        other => Err(format!("unknown service '{other}'; this node links: {}", NAMES.join(", "))),
    }
}
