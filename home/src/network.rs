//! Layout of a whole local network on 127.0.0.1: one genesis, one home per
//! node, deterministic ports, and a full mesh of persistent peers.
//!
//! The devnet command calls [`local_network`] once per layer (e.g. L1 with 4
//! validators, L2 with 1 validator and some full nodes), each with its own
//! `base_port` and chain id. Keys are inputs, so the caller decides whether
//! they are random ([`NodeKeys::generate`]) or reproducible
//! ([`NodeKeys::insecure_from_label`]).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::{GenesisSpec, GenesisValidator, HomeError, HomeFiles, NodeConfig, NodeKey, Peer, Timing, ValidatorKey};

/// Ports reserved per node: node `i` owns `base_port + i * PORT_STRIDE` up to
/// the next node's range. Offsets 0..=2 are CometBFT's (see [`NodePorts`]);
/// offsets 3..=9 are free for the caller, e.g. the application's HTTP API
/// (see [`NodePorts::slot`]).
pub const PORT_STRIDE: u16 = 10;

const P2P_OFFSET: u16 = 0;
const RPC_OFFSET: u16 = 1;
const PROMETHEUS_OFFSET: u16 = 2;

/// Every local node listens here; distinct ports keep them apart.
const LOCAL_HOST: &str = "127.0.0.1";

/// Voting power of every validator of a local network.
const LOCAL_VALIDATOR_POWER: i64 = 10;

/// CometBFT's listening ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    pub p2p: u16,
    pub rpc: u16,
    pub prometheus: u16,
}

impl NodePorts {
    pub fn for_index(base_port: u16, index: usize) -> Result<Self, HomeError> {
        Ok(Self {
            p2p: Self::slot(base_port, index, P2P_OFFSET)?,
            rpc: Self::slot(base_port, index, RPC_OFFSET)?,
            prometheus: Self::slot(base_port, index, PROMETHEUS_OFFSET)?,
        })
    }

    /// Port number `offset` (0..PORT_STRIDE) of node `index`.
    pub fn slot(base_port: u16, index: usize, offset: u16) -> Result<u16, HomeError> {
        if offset >= PORT_STRIDE {
            return Err(HomeError::InvalidNetwork(format!(
                "port offset {offset} is outside a node's {PORT_STRIDE} ports"
            )));
        }
        u16::try_from(index)
            .ok()
            .and_then(|index| index.checked_mul(PORT_STRIDE))
            .and_then(|start| start.checked_add(base_port))
            .and_then(|start| start.checked_add(offset))
            .ok_or_else(|| {
                HomeError::InvalidNetwork(format!("ports of node {index} from base port {base_port} exceed 65535"))
            })
    }
}

/// Both keys of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeys {
    pub node: NodeKey,
    pub validator: ValidatorKey,
}

impl NodeKeys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self, HomeError> {
        Ok(Self { node: NodeKey::generate()?, validator: ValidatorKey::generate()? })
    }

    /// Reproducible keys: seeds are SHA-256 of a fixed prefix and `label`.
    /// Anyone who knows the label has the keys, so this is for tests and
    /// throwaway devnets only.
    pub fn insecure_from_label(label: &str) -> Self {
        let seed = |kind: &str| -> [u8; 32] { Sha256::digest(format!("bftws-home/insecure/{kind}/{label}")).into() };
        Self { node: NodeKey::from_seed(seed("node")), validator: ValidatorKey::from_seed(seed("validator")) }
    }
}

/// Inputs of [`local_network`].
#[derive(Debug, Clone, PartialEq)]
pub struct LocalNetworkSpec {
    pub chain_id: String,
    /// RFC 3339, fixed by the caller (see [`GenesisSpec::genesis_time`]).
    pub genesis_time: String,
    pub app_state: serde_json::Value,
    /// Nodes `0..validators` are the genesis validators.
    pub validators: usize,
    /// Nodes `validators..validators + full_nodes` are full nodes.
    pub full_nodes: usize,
    /// First port of node 0; see [`PORT_STRIDE`].
    pub base_port: u16,
    pub timing: Timing,
    /// One per node, in node order.
    pub keys: Vec<NodeKeys>,
    pub log_level: String,
    pub prometheus: bool,
}

/// Everything about one node of a local network.
#[derive(Debug, Clone)]
pub struct NodeHome {
    pub index: usize,
    pub moniker: String,
    pub is_validator: bool,
    pub node_id: String,
    pub ports: NodePorts,
    /// The address it listens on and its peers dial.
    pub host: String,
    /// The config its `config.toml` was rendered from.
    pub config: NodeConfig,
    pub files: HomeFiles,
}

impl NodeHome {
    /// `http://<host>:<rpc>`, the base of CometBFT's RPC for clients.
    pub fn rpc_url(&self) -> String {
        format!("http://{}:{}", self.host, self.ports.rpc)
    }
}

/// Lays out every node of a local network. `proxy_app(index)` gives the ABCI
/// address of node `index`, e.g. `unix:///tmp/devnet/l1/node0/abci.sock`.
pub fn local_network(spec: &LocalNetworkSpec, proxy_app: impl Fn(usize) -> String) -> Result<Vec<NodeHome>, HomeError> {
    local_network_on_hosts(spec, &[], proxy_app)
}

/// [`local_network`] with node `i` on `hosts[i]` (each in its own network namespace, say)
/// instead of all on 127.0.0.1; no hosts means 127.0.0.1 for every node.
pub fn local_network_on_hosts(
    spec: &LocalNetworkSpec,
    hosts: &[String],
    proxy_app: impl Fn(usize) -> String,
) -> Result<Vec<NodeHome>, HomeError> {
    let node_count = spec.validators + spec.full_nodes;
    if !hosts.is_empty() && hosts.len() != node_count {
        return Err(HomeError::InvalidNetwork(format!("{} hosts given for {node_count} nodes", hosts.len())));
    }
    let host = |index: usize| hosts.get(index).map_or(LOCAL_HOST, String::as_str).to_owned();
    if spec.validators == 0 {
        return Err(HomeError::InvalidNetwork("at least one validator is required".to_owned()));
    }
    if spec.keys.len() != node_count {
        return Err(HomeError::InvalidNetwork(format!(
            "{} keys given for {} validators + {} full nodes",
            spec.keys.len(),
            spec.validators,
            spec.full_nodes
        )));
    }
    let distinct_node_ids: BTreeSet<String> = spec.keys.iter().map(|k| k.node.node_id()).collect();
    let distinct_validators: BTreeSet<String> = spec.keys.iter().map(|k| k.validator.address()).collect();
    if distinct_node_ids.len() != node_count || distinct_validators.len() != node_count {
        return Err(HomeError::InvalidNetwork("two nodes share a key".to_owned()));
    }

    let monikers: Vec<String> = (0..node_count).map(|index| format!("{}-node{index}", spec.chain_id)).collect();
    let ports =
        (0..node_count).map(|index| NodePorts::for_index(spec.base_port, index)).collect::<Result<Vec<_>, _>>()?;

    let genesis_validators = spec.keys[..spec.validators]
        .iter()
        .zip(&monikers)
        .map(|(keys, moniker)| GenesisValidator {
            name: moniker.clone(),
            pub_key: keys.validator.public_key(),
            power: LOCAL_VALIDATOR_POWER,
        })
        .collect();
    let genesis_json =
        GenesisSpec::new(spec.chain_id.clone(), spec.genesis_time.clone(), genesis_validators, spec.app_state.clone())
            .to_json()?;

    let all_peers: Vec<Peer> = spec
        .keys
        .iter()
        .zip(&ports)
        .enumerate()
        .map(|(index, (keys, ports))| Peer { node_id: keys.node.node_id(), host: host(index), port: ports.p2p })
        .collect();

    (0..node_count)
        .map(|index| {
            let node_ports = ports[index];
            let mut config = NodeConfig::new(monikers[index].clone(), proxy_app(index), spec.timing.clone());
            let node_host = host(index);
            config.p2p_laddr = format!("tcp://{node_host}:{}", node_ports.p2p);
            config.rpc_laddr = format!("tcp://{node_host}:{}", node_ports.rpc);
            config.prometheus = spec.prometheus;
            config.prometheus_laddr = format!("{node_host}:{}", node_ports.prometheus);
            config.log_level = spec.log_level.clone();
            config.persistent_peers = all_peers
                .iter()
                .enumerate()
                .filter(|(peer_index, _)| *peer_index != index)
                .map(|(_, peer)| peer.clone())
                .collect();
            let keys = &spec.keys[index];
            let files = HomeFiles::new(&config, &genesis_json, &keys.node, &keys.validator)?;
            Ok(NodeHome {
                index,
                moniker: monikers[index].clone(),
                is_validator: index < spec.validators,
                node_id: keys.node.node_id(),
                ports: node_ports,
                host: node_host,
                config,
                files,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(validators: usize, full_nodes: usize, base_port: u16) -> LocalNetworkSpec {
        LocalNetworkSpec {
            chain_id: "bftws-l2".to_owned(),
            genesis_time: "2025-01-01T00:00:00Z".to_owned(),
            app_state: serde_json::json!({"layer": "l2"}),
            validators,
            full_nodes,
            base_port,
            timing: Timing::l2(),
            keys: (0..validators + full_nodes).map(|i| NodeKeys::insecure_from_label(&format!("l2/{i}"))).collect(),
            log_level: "info".to_owned(),
            prometheus: true,
        }
    }

    fn socket(index: usize) -> String {
        format!("unix:///tmp/bftws/l2/node{index}/abci.sock")
    }

    #[test]
    fn lays_out_validators_full_nodes_ports_and_peers() {
        let nodes = local_network(&spec(1, 2, 46000), socket).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes.iter().map(|n| n.is_validator).collect::<Vec<_>>(), [true, false, false]);
        assert_eq!(nodes[2].ports, NodePorts { p2p: 46020, rpc: 46021, prometheus: 46022 });
        assert_eq!(nodes[1].rpc_url(), "http://127.0.0.1:46011");
        assert_eq!(nodes[1].config.proxy_app, socket(1));

        // Every node peers with every other node, never itself.
        for node in &nodes {
            let peers: Vec<String> = node.config.persistent_peers.iter().map(|p| p.node_id.clone()).collect();
            let others: Vec<String> =
                nodes.iter().filter(|other| other.index != node.index).map(|other| other.node_id.clone()).collect();
            assert_eq!(peers, others);
        }

        // One shared genesis naming only the validators.
        let genesis: serde_json::Value = serde_json::from_str(&nodes[0].files.genesis_json).unwrap();
        assert!(nodes.iter().all(|n| n.files.genesis_json == nodes[0].files.genesis_json));
        let validators = genesis["validators"].as_array().unwrap();
        assert_eq!(validators.len(), 1);
        assert_eq!(validators[0]["power"], "10");
        assert_eq!(validators[0]["name"], "bftws-l2-node0");
        assert_eq!(genesis["app_state"], serde_json::json!({"layer": "l2"}));
    }

    #[test]
    fn layout_is_deterministic() {
        let first = local_network(&spec(4, 0, 36000), socket).unwrap();
        let second = local_network(&spec(4, 0, 36000), socket).unwrap();
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a.files, b.files);
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(local_network(&spec(0, 1, 36000), socket).is_err());
        let mut wrong_keys = spec(2, 0, 36000);
        wrong_keys.keys.pop();
        assert!(local_network(&wrong_keys, socket).is_err());
        let mut shared_key = spec(2, 0, 36000);
        shared_key.keys[1] = shared_key.keys[0].clone();
        assert!(local_network(&shared_key, socket).is_err());
        assert!(matches!(local_network(&spec(2, 0, 65530), socket), Err(HomeError::InvalidNetwork(_))));
        assert!(NodePorts::slot(36000, 0, PORT_STRIDE).is_err());
    }
}
