//! Nodes with their own network: one network namespace per node, each with one veth link to a
//! bridge in a hub namespace, so links between chosen nodes can be cut, slowed and made lossy.
//! Only addresses inside these namespaces are used (`10.88.0.0/24`); the host's own network is
//! never touched.
//!
//! Layout, for a run prefix `P` and nodes `n0, n1, …`:
//! - namespace `P-hub`: bridge `br0` at `10.88.0.1/24`, and one veth end `v<k>` per node on it;
//! - namespace `P-<node>`: `lo` and the other veth end `eth0` at `10.88.0.<10+k>/24`, and an
//!   nftables table `inet bftws_chaos` with an `out` and an `in` chain, empty until a fault.
//!
//! A process reaches a node from the hub (the fault campaign moves its own threads there with
//! [`NetnsNetwork::enter_hub`]); a node's processes run under `ip netns exec P-<node>`.
//!
//! Faults use what every kernel with nftables has (`netem` and `prio` are often not built):
//! a cut is a `drop` rule for the other side's address in each side's `out` chain, so both
//! directions are lost and the sender gets no error (as in a real partition); a degraded node
//! drops a share of what it receives (`numgen random` in its `in` chain) and what reaches it
//! goes through a slow token bucket (`tbf` on the hub end of its link), so it queues and is
//! delayed under load.

use std::{collections::BTreeMap, fs, process::Command};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("netns: `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("netns: {0}")]
    Setup(String),
}

const SUBNET_PREFIX: &str = "10.88.0";
const HUB_ADDRESS: &str = "10.88.0.1";
const FIRST_NODE_HOST: usize = 10;
const MAX_NODES: usize = 240;
/// The nftables table of fault rules in each node's namespace.
const TABLE: &str = "bftws_chaos";

/// One node's place in the network.
#[derive(Debug, Clone)]
struct NetnsNode {
    namespace: String,
    address: String,
    /// The veth end in the hub.
    hub_link: String,
}

/// The namespaces of one run; removed on drop.
#[derive(Debug)]
pub struct NetnsNetwork {
    hub: String,
    nodes: BTreeMap<String, NetnsNode>,
    /// Cuts in place, as ordered pairs of node names (both directions are recorded).
    cuts: Vec<(String, String)>,
}

impl NetnsNetwork {
    /// Creates the hub and one namespace per node (removing any left by an earlier run with the
    /// same prefix). Needs root.
    pub fn create(prefix: &str, node_names: &[String]) -> Result<Self, NetnsError> {
        if node_names.len() > MAX_NODES {
            return Err(NetnsError::Setup(format!("at most {MAX_NODES} nodes fit in {SUBNET_PREFIX}.0/24")));
        }
        if prefix.is_empty() || prefix.len() > 20 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NetnsError::Setup(format!("namespace prefix {prefix:?}: 1-20 letters, digits or '-'")));
        }
        let hub = format!("{prefix}-hub");
        let nodes: BTreeMap<String, NetnsNode> = node_names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let node = NetnsNode {
                    namespace: format!("{prefix}-{name}"),
                    address: format!("{SUBNET_PREFIX}.{}", FIRST_NODE_HOST + k),
                    hub_link: format!("v{k}"),
                };
                (name.clone(), node)
            })
            .collect();
        let network = Self { hub, nodes, cuts: Vec::new() };
        network.remove_namespaces();
        network.build()?;
        Ok(network)
    }

    fn build(&self) -> Result<(), NetnsError> {
        let hub = self.hub.as_str();
        ip(&["netns", "add", hub])?;
        in_ns(hub, &["ip", "link", "set", "lo", "up"])?;
        in_ns(hub, &["ip", "link", "add", "br0", "type", "bridge"])?;
        in_ns(hub, &["ip", "addr", "add", &format!("{HUB_ADDRESS}/24"), "dev", "br0"])?;
        in_ns(hub, &["ip", "link", "set", "br0", "up"])?;
        for node in self.nodes.values() {
            let ns = node.namespace.as_str();
            ip(&["netns", "add", ns])?;
            ip(&["link", "add", &node.hub_link, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
            in_ns(hub, &["ip", "link", "set", &node.hub_link, "master", "br0"])?;
            in_ns(hub, &["ip", "link", "set", &node.hub_link, "up"])?;
            in_ns(ns, &["ip", "link", "set", "lo", "up"])?;
            in_ns(ns, &["ip", "addr", "add", &format!("{}/24", node.address), "dev", "eth0"])?;
            in_ns(ns, &["ip", "link", "set", "eth0", "up"])?;
            nft(ns, &["add", "table", "inet", TABLE])?;
            nft(ns, &["add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0 ; }"])?;
            nft(ns, &["add", "chain", "inet", TABLE, "in", "{ type filter hook input priority 0 ; }"])?;
        }
        Ok(())
    }

    /// The address `name` listens on.
    pub fn address(&self, name: &str) -> Result<&str, NetnsError> {
        Ok(&self.node(name)?.address)
    }

    /// The namespace `name`'s processes run in.
    pub fn namespace(&self, name: &str) -> Result<&str, NetnsError> {
        Ok(&self.node(name)?.namespace)
    }

    fn node(&self, name: &str) -> Result<&NetnsNode, NetnsError> {
        self.nodes.get(name).ok_or_else(|| NetnsError::Setup(format!("no node {name} in the network")))
    }

    /// A command that runs `program` in `name`'s namespace.
    pub fn command(&self, name: &str, program: &std::path::Path) -> Result<Command, NetnsError> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.namespace(name)?]).arg(program);
        Ok(command)
    }

    /// Moves the calling thread into the hub, from where every node is reachable. Threads it
    /// starts afterwards (an async runtime's workers) are there too.
    pub fn enter_hub(&self) -> Result<(), NetnsError> {
        let path = format!("/run/netns/{}", self.hub);
        let file = fs::File::open(&path).map_err(|e| NetnsError::Setup(format!("{path}: {e}")))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| NetnsError::Setup(format!("setns into {}: {e}", self.hub)))
    }

    /// Cuts every link between the two groups, both ways (a partition).
    pub fn cut(&mut self, side_a: &[String], side_b: &[String]) -> Result<(), NetnsError> {
        for a in side_a {
            for b in side_b {
                for (from, to) in [(a, b), (b, a)] {
                    if from == to || self.cuts.iter().any(|(f, t)| f == from && t == to) {
                        continue;
                    }
                    let (source, target) = (self.node(from)?.namespace.clone(), self.node(to)?.address.clone());
                    nft(&source, &["add", "rule", "inet", TABLE, "out", "ip", "daddr", &target, "drop"])?;
                    self.cuts.push((from.clone(), to.clone()));
                }
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal_cuts(&mut self) -> Result<(), NetnsError> {
        let sources: std::collections::BTreeSet<String> = self.cuts.iter().map(|(from, _)| from.clone()).collect();
        for from in sources {
            let ns = self.node(&from)?.namespace.clone();
            nft(&ns, &["flush", "chain", "inet", TABLE, "out"])?;
        }
        self.cuts.clear();
        Ok(())
    }

    /// Makes `name`'s link poor: it drops `loss_percent` of what it receives, and what reaches
    /// it passes a token bucket of `rate_kbit` that holds up to `queue_ms` of backlog.
    pub fn degrade(&self, name: &str, loss_percent: u32, rate_kbit: u32, queue_ms: u32) -> Result<(), NetnsError> {
        let node = self.node(name)?;
        nft(
            &node.namespace,
            &[
                "add",
                "rule",
                "inet",
                TABLE,
                "in",
                // Only what arrives over the link: the node's own traffic on `lo` stays whole.
                "iifname",
                "eth0",
                "numgen",
                "random",
                "mod",
                "100",
                "<",
                &loss_percent.to_string(),
                "drop",
            ],
        )?;
        in_ns(
            &self.hub,
            &[
                "tc",
                "qdisc",
                "replace",
                "dev",
                &node.hub_link,
                "root",
                "tbf",
                "rate",
                &format!("{rate_kbit}kbit"),
                "burst",
                "32kbit",
                "latency",
                &format!("{queue_ms}ms"),
            ],
        )
    }

    /// Takes the loss and the token bucket off `name`'s link.
    pub fn restore(&self, name: &str) -> Result<(), NetnsError> {
        let node = self.node(name)?;
        nft(&node.namespace, &["flush", "chain", "inet", TABLE, "in"])?;
        // Deleting a root qdisc that was never added fails harmlessly: the default is back.
        let _ = in_ns(&self.hub, &["tc", "qdisc", "del", "dev", &node.hub_link, "root"]);
        Ok(())
    }

    /// Kills whatever still runs in the namespaces (a run that was killed leaves its nodes) and
    /// removes them.
    fn remove_namespaces(&self) {
        for ns in self.nodes.values().map(|n| n.namespace.as_str()).chain([self.hub.as_str()]) {
            if !std::path::Path::new("/run/netns").join(ns).exists() {
                continue;
            }
            if let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).output();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl Drop for NetnsNetwork {
    fn drop(&mut self) {
        self.remove_namespaces();
    }
}

fn nft(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut full = vec!["nft"];
    full.extend_from_slice(args);
    in_ns(ns, &full)
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    run("ip", args)
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

fn run(program: &str, args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Command { command: command.clone(), detail: e.to_string() })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Command { command, detail: String::from_utf8_lossy(&output.stderr).trim().to_owned() })
    }
}
