//! `config/config.toml` for CometBFT v0.38, per-layer consensus [`Timing`],
//! and Go duration strings.
//!
//! The whole file is rendered, section by section and key by key in the
//! order of v0.38's own template (`config/toml.go`), so a home never depends
//! on `cometbft init` and every key has a value chosen here. Keys bftws does
//! not care about keep CometBFT's defaults; the ones it does care about are
//! commented where they differ from the defaults.
//!
//! Durations are written the way Go's `time.ParseDuration` reads them
//! (`"0s"`, `"10ms"`, `"1s"`), which is how viper decodes them.

use std::fmt;
use std::time::Duration;

use crate::{HomeError, COMETBFT_VERSION};

/// Consensus and gossip latencies of one layer.
///
/// All fields are public so that any of them can be overridden (the
/// Kubernetes CRD exposes the consensus timeouts as Go duration strings; see
/// [`parse_go_duration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Wait for a proposal before prevoting nil.
    pub timeout_propose: Duration,
    /// Added to `timeout_propose` every round.
    pub timeout_propose_delta: Duration,
    /// Wait after +2/3 prevotes for anything.
    pub timeout_prevote: Duration,
    pub timeout_prevote_delta: Duration,
    /// Wait after +2/3 precommits for anything.
    pub timeout_precommit: Duration,
    pub timeout_precommit_delta: Duration,
    /// Pause after committing a block before starting the next height.
    pub timeout_commit: Duration,
    /// Start the next height as soon as all precommits are in.
    pub skip_timeout_commit: bool,
    /// Consensus reactor gossip loop sleep (CometBFT default 100ms).
    pub peer_gossip_sleep_duration: Duration,
    /// Consensus reactor maj23 query sleep (CometBFT default 2s).
    pub peer_query_maj23_sleep_duration: Duration,
    /// P2P connection flush delay (CometBFT default 100ms).
    pub flush_throttle_timeout: Duration,
}

impl Timing {
    /// Layer 2: typically a single validator, so nothing to wait for after a
    /// commit; the next block may start immediately.
    pub fn l2() -> Self {
        Self::low_latency(Duration::ZERO)
    }

    /// Layer 1: a multi-validator BFT cluster; a short `timeout_commit` lets
    /// late precommits land in the commit without costing much latency. For up to 4
    /// validators; [`Timing::l1_for`] sizes it for more.
    pub fn l1() -> Self {
        Self::low_latency(Duration::from_millis(20))
    }

    /// Layer 1 of `validators` validators: [`Timing::l1`] with the gossip sleep of
    /// [`gossip_sleep_for`].
    pub fn l1_for(validators: u32) -> Self {
        Self { peer_gossip_sleep_duration: gossip_sleep_for(validators), ..Self::l1() }
    }

    /// Sets one field by its `config.toml` name from a Go duration string (`"10ms"`), or
    /// `skip_timeout_commit` from `"true"`/`"false"`: how CLI flags and the CRD override timing.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), HomeError> {
        if field == "skip_timeout_commit" {
            self.skip_timeout_commit = value.parse().map_err(|_| {
                HomeError::InvalidConfig(format!("skip_timeout_commit must be true or false, got {value:?}"))
            })?;
            return Ok(());
        }
        let duration = parse_go_duration(value)?;
        let slot = match field {
            "timeout_propose" => &mut self.timeout_propose,
            "timeout_propose_delta" => &mut self.timeout_propose_delta,
            "timeout_prevote" => &mut self.timeout_prevote,
            "timeout_prevote_delta" => &mut self.timeout_prevote_delta,
            "timeout_precommit" => &mut self.timeout_precommit,
            "timeout_precommit_delta" => &mut self.timeout_precommit_delta,
            "timeout_commit" => &mut self.timeout_commit,
            "peer_gossip_sleep_duration" => &mut self.peer_gossip_sleep_duration,
            "peer_query_maj23_sleep_duration" => &mut self.peer_query_maj23_sleep_duration,
            "flush_throttle_timeout" => &mut self.flush_throttle_timeout,
            other => return Err(HomeError::InvalidConfig(format!("unknown timing field {other:?}"))),
        };
        *slot = duration;
        Ok(())
    }

    /// Both layers run on low-latency links (one host, or one cluster), so
    /// gossip and flush delays are cut from CometBFT's WAN-oriented defaults.
    fn low_latency(timeout_commit: Duration) -> Self {
        Self {
            timeout_propose: Duration::from_secs(1),
            timeout_propose_delta: Duration::from_millis(100),
            timeout_prevote: Duration::from_millis(500),
            timeout_prevote_delta: Duration::from_millis(100),
            timeout_precommit: Duration::from_millis(500),
            timeout_precommit_delta: Duration::from_millis(100),
            timeout_commit,
            skip_timeout_commit: false,
            // Measured on a 4-validator loopback L1: a 10 ms flush throttle cost ~40 ms per
            // commit (one wait per consensus step); 1 ms flush and 2 ms gossip sleep keep idle
            // CPU negligible.
            peer_gossip_sleep_duration: Duration::from_millis(2),
            peer_query_maj23_sleep_duration: Duration::from_millis(250),
            flush_throttle_timeout: Duration::from_millis(1),
        }
    }
}

/// `peer_gossip_sleep_duration` for a network of `validators`.
///
/// Every validator runs two gossip loops per peer that sleep this long whenever they have
/// nothing to send, so an idle network of n validators wakes 2·n·(n−1)/sleep times a second
/// (240,000 at 16 validators and 2 ms). The sleep grows with n·(n−1) from 2 ms at 4
/// validators, which keeps the network's wake-ups where 4 validators have them, up to 50 ms.
/// Measured on 2 cores (docs/design.md, "Gossip that scales with the network"): at 16
/// validators 40 ms instead of 2 ms cut idle CPU from 118 % to 70 % of a core and commit p50
/// from 556 to 434 ms, the gossip delay being smaller than the CPU it frees.
pub fn gossip_sleep_for(validators: u32) -> Duration {
    let n = u64::from(validators.max(1));
    Duration::from_millis((2 * n * (n - 1) / 12).clamp(2, 50))
}

/// A persistent peer, rendered `node_id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    /// Lowercase hex CometBFT node id (see [`crate::NodeKey::node_id`]).
    pub node_id: String,
    /// IP address or DNS name. CometBFT resolves names once, at start.
    pub host: String,
    pub port: u16,
}

impl Peer {
    fn validate(&self) -> Result<(), HomeError> {
        let invalid = |reason: String| Err(HomeError::InvalidConfig(format!("peer {self}: {reason}")));
        let id_ok =
            self.node_id.len() == 40 && self.node_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok {
            // Uppercase would parse but never match the id the peer presents.
            return invalid("node_id must be 40 lowercase hex characters".to_owned());
        }
        if self.host.is_empty() {
            return invalid("host is empty".to_owned());
        }
        if self.host.chars().any(|c| c.is_whitespace() || matches!(c, '@' | ',' | '/' | '"' | '\\')) {
            return invalid("host contains a character not allowed in an address".to_owned());
        }
        Ok(())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go's net.SplitHostPort needs IPv6 literals in brackets.
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "{}@[{}]:{}", self.node_id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.node_id, self.host, self.port)
        }
    }
}

/// CometBFT's log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Plain => "plain",
            LogFormat::Json => "json",
        }
    }
}

/// Inputs of one node's `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub moniker: String,
    /// ABCI address, e.g. `unix:///run/bftws/abci.sock` (always `abci = "socket"`).
    pub proxy_app: String,
    /// P2P listen address, e.g. `tcp://0.0.0.0:26656`.
    pub p2p_laddr: String,
    /// Address advertised to peers (`host:port`), if different from the listener.
    pub external_address: Option<String>,
    /// RPC listen address, e.g. `tcp://127.0.0.1:26657`.
    pub rpc_laddr: String,
    pub persistent_peers: Vec<Peer>,
    pub prometheus: bool,
    /// `host:port` (no scheme), e.g. `:26660`.
    pub prometheus_laddr: String,
    /// e.g. `info` or `consensus:info,*:error`.
    pub log_level: String,
    pub log_format: LogFormat,
    pub timing: Timing,
}

impl NodeConfig {
    /// A config with CometBFT's default listen addresses, no peers and no
    /// Prometheus; set the public fields to change them.
    pub fn new(moniker: impl Into<String>, proxy_app: impl Into<String>, timing: Timing) -> Self {
        Self {
            moniker: moniker.into(),
            proxy_app: proxy_app.into(),
            p2p_laddr: "tcp://0.0.0.0:26656".to_owned(),
            external_address: None,
            rpc_laddr: "tcp://127.0.0.1:26657".to_owned(),
            persistent_peers: Vec::new(),
            prometheus: false,
            prometheus_laddr: ":26660".to_owned(),
            log_level: "info".to_owned(),
            log_format: LogFormat::Plain,
            timing,
        }
    }

    /// `persistent_peers` as CometBFT expects it: comma-separated `id@host:port`.
    pub fn persistent_peers_string(&self) -> String {
        let peers: Vec<String> = self.persistent_peers.iter().map(Peer::to_string).collect();
        peers.join(",")
    }

    fn validate(&self) -> Result<(), HomeError> {
        let required = [
            ("moniker", &self.moniker),
            ("proxy_app", &self.proxy_app),
            ("p2p_laddr", &self.p2p_laddr),
            ("rpc_laddr", &self.rpc_laddr),
            ("log_level", &self.log_level),
        ];
        for (name, value) in required {
            if value.trim().is_empty() {
                return Err(HomeError::InvalidConfig(format!("{name} is empty")));
            }
        }
        if self.prometheus && self.prometheus_laddr.trim().is_empty() {
            return Err(HomeError::InvalidConfig("prometheus is on but prometheus_laddr is empty".to_owned()));
        }
        if let Some(external) = &self.external_address {
            if !external.contains(':') {
                return Err(HomeError::InvalidConfig(format!("external_address {external:?} must be host:port")));
            }
        }
        self.persistent_peers.iter().try_for_each(Peer::validate)
    }

    /// Renders the complete `config/config.toml`.
    pub fn to_toml(&self) -> Result<String, HomeError> {
        self.validate()?;
        let mut out = String::with_capacity(8 * 1024);
        self.render_base(&mut out);
        self.render_rpc(&mut out);
        self.render_p2p(&mut out);
        render_mempool(&mut out);
        render_statesync(&mut out);
        render_blocksync(&mut out);
        self.render_consensus(&mut out);
        render_storage_and_tx_index(&mut out);
        self.render_instrumentation(&mut out);
        Ok(out)
    }

    fn render_base(&self, out: &mut String) {
        out.push_str(&format!(
            r#"# CometBFT {version} configuration, generated by bftws-home.
# Every key of the v0.38 template is present; do not run `cometbft init` over it.
# Relative paths are relative to the home directory (--home).

version = {version_str}

# The bftws ABCI application.
proxy_app = {proxy_app}
moniker = {moniker}
db_backend = "goleveldb"
db_dir = "data"
log_level = {log_level}
log_format = "{log_format}"
genesis_file = "config/genesis.json"
priv_validator_key_file = "config/priv_validator_key.json"
priv_validator_state_file = "data/priv_validator_state.json"
priv_validator_laddr = ""
node_key_file = "config/node_key.json"
abci = "socket"
filter_peers = false
event_bus_buffer_capacity = 0
"#,
            version = COMETBFT_VERSION,
            version_str = toml_string(COMETBFT_VERSION),
            proxy_app = toml_string(&self.proxy_app),
            moniker = toml_string(&self.moniker),
            log_level = toml_string(&self.log_level),
            log_format = self.log_format.as_str(),
        ));
    }

    fn render_rpc(&self, out: &mut String) {
        out.push_str(&format!(
            r#"
[rpc]
laddr = {laddr}
cors_allowed_origins = []
cors_allowed_methods = ["HEAD", "GET", "POST"]
cors_allowed_headers = ["Origin", "Accept", "Content-Type", "X-Requested-With", "X-Server-Time"]
grpc_laddr = ""
grpc_max_open_connections = 900
unsafe = false
max_open_connections = 900
max_subscription_clients = 100
max_subscriptions_per_client = 5
experimental_subscription_buffer_size = 200
experimental_websocket_write_buffer_size = 200
experimental_close_on_slow_client = false
timeout_broadcast_tx_commit = "10s"
max_request_batch_size = 10
# Default 1000000 is smaller than a JSON-RPC broadcast of a max_tx_bytes tx.
max_body_bytes = 4194304
max_header_bytes = 1048576
tls_cert_file = ""
tls_key_file = ""
pprof_laddr = ""
"#,
            laddr = toml_string(&self.rpc_laddr),
        ));
    }

    fn render_p2p(&self, out: &mut String) {
        let timing = &self.timing;
        out.push_str(&format!(
            r#"
[p2p]
laddr = {laddr}
external_address = {external_address}
seeds = ""
# bftws lists every other node explicitly instead of using peer exchange.
persistent_peers = {persistent_peers}
addr_book_file = "config/addrbook.json"
# Private and loopback addresses must be accepted.
addr_book_strict = false
max_num_inbound_peers = 40
max_num_outbound_peers = 10
unconditional_peer_ids = ""
persistent_peers_max_dial_period = "0s"
flush_throttle_timeout = {flush_throttle_timeout}
max_packet_msg_payload_size = 1024
# 20 MB/s instead of 5 MB/s so block parts are not throttled.
send_rate = 20480000
recv_rate = 20480000
pex = false
seed_mode = false
private_peer_ids = ""
# Every node of a local devnet shares 127.0.0.1.
allow_duplicate_ip = true
handshake_timeout = "20s"
dial_timeout = "3s"
"#,
            laddr = toml_string(&self.p2p_laddr),
            external_address = toml_string(self.external_address.as_deref().unwrap_or("")),
            persistent_peers = toml_string(&self.persistent_peers_string()),
            flush_throttle_timeout = toml_duration(timing.flush_throttle_timeout),
        ));
    }

    fn render_consensus(&self, out: &mut String) {
        let t = &self.timing;
        out.push_str(&format!(
            r#"
[consensus]
wal_file = "data/cs.wal/wal"
timeout_propose = {timeout_propose}
timeout_propose_delta = {timeout_propose_delta}
timeout_prevote = {timeout_prevote}
timeout_prevote_delta = {timeout_prevote_delta}
timeout_precommit = {timeout_precommit}
timeout_precommit_delta = {timeout_precommit_delta}
timeout_commit = {timeout_commit}
double_sign_check_height = 0
skip_timeout_commit = {skip_timeout_commit}
# bftws blocks carry requests: no transactions, no block (except the proof
# block CometBFT makes after an app hash change).
create_empty_blocks = false
create_empty_blocks_interval = "0s"
peer_gossip_sleep_duration = {peer_gossip_sleep_duration}
peer_query_maj23_sleep_duration = {peer_query_maj23_sleep_duration}
block_time_tolerance = "60s"
"#,
            timeout_propose = toml_duration(t.timeout_propose),
            timeout_propose_delta = toml_duration(t.timeout_propose_delta),
            timeout_prevote = toml_duration(t.timeout_prevote),
            timeout_prevote_delta = toml_duration(t.timeout_prevote_delta),
            timeout_precommit = toml_duration(t.timeout_precommit),
            timeout_precommit_delta = toml_duration(t.timeout_precommit_delta),
            timeout_commit = toml_duration(t.timeout_commit),
            skip_timeout_commit = t.skip_timeout_commit,
            peer_gossip_sleep_duration = toml_duration(t.peer_gossip_sleep_duration),
            peer_query_maj23_sleep_duration = toml_duration(t.peer_query_maj23_sleep_duration),
        ));
    }

    fn render_instrumentation(&self, out: &mut String) {
        out.push_str(&format!(
            r#"
[instrumentation]
prometheus = {prometheus}
prometheus_listen_addr = {laddr}
max_open_connections = 3
namespace = "cometbft"
"#,
            prometheus = self.prometheus,
            laddr = toml_string(&self.prometheus_laddr),
        ));
    }
}

fn render_mempool(out: &mut String) {
    out.push_str(
        r#"
[mempool]
type = "flood"
recheck = true
recheck_timeout = "1s"
broadcast = true
wal_dir = ""
size = 5000
max_txs_bytes = 1073741824
cache_size = 10000
keep-invalid-txs-in-cache = false
max_tx_bytes = 1048576
max_batch_bytes = 0
experimental_max_gossip_connections_to_persistent_peers = 0
experimental_max_gossip_connections_to_non_persistent_peers = 0
"#,
    );
}

fn render_statesync(out: &mut String) {
    // chunk_fetchers is a quoted string in CometBFT's own template too.
    out.push_str(
        r#"
[statesync]
enable = false
rpc_servers = ""
trust_height = 0
trust_hash = ""
trust_period = "168h"
discovery_time = "15s"
temp_dir = ""
chunk_request_timeout = "10s"
chunk_fetchers = "4"
max_snapshot_chunks = 100000
"#,
    );
}

fn render_blocksync(out: &mut String) {
    out.push_str(
        r#"
[blocksync]
version = "v0"
"#,
    );
}

fn render_storage_and_tx_index(out: &mut String) {
    out.push_str(
        r#"
[storage]
# ABCI responses back /block_results.
discard_abci_responses = false

[tx_index]
# bftws receipts are looked up with /tx?hash=.
indexer = "kv"
psql-conn = ""
"#,
    );
}

/// A TOML basic string: quoted, with `"`, `\` and control characters escaped.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_duration(duration: Duration) -> String {
    toml_string(&format_go_duration(duration))
}

/// Formats a duration so that Go's `time.ParseDuration` reads it back
/// exactly, using the largest unit that divides it among `h`, `m`, `s`, `ms`,
/// `us`, `ns` (e.g. `"0s"`, `"10ms"`, `"1s"`, `"168h"`).
pub fn format_go_duration(duration: Duration) -> String {
    const UNITS: [(u128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    UNITS
        .iter()
        .find(|(unit, _)| nanos.is_multiple_of(*unit))
        .map(|(unit, suffix)| format!("{}{suffix}", nanos / unit))
        .unwrap_or_else(|| format!("{nanos}ns"))
}

/// Parses a non-negative Go duration string (`"1s"`, `"500ms"`, `"1m30s"`,
/// `"1.5s"`, `"0"`), as found in CometBFT configs and the bftws CRD.
pub fn parse_go_duration(input: &str) -> Result<Duration, HomeError> {
    let invalid = |reason: &str| HomeError::InvalidDuration { input: input.to_owned(), reason: reason.to_owned() };
    let mut rest = input.trim();
    if rest.starts_with('-') {
        return Err(invalid("negative durations are not allowed"));
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid("empty"));
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid("expected a number"));
        }
        let unit_len = after_number.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid("missing unit (ns, us, ms, s, m, h)")),
            _ => return Err(invalid("unknown unit (expected ns, us, ms, s, m, h)")),
        };
        let too_large = || invalid("too large");
        let whole: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| too_large())? };
        // Fraction digits beyond nanosecond precision of the largest unit are
        // dropped, as Go does.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        let mut frac_nanos: u128 = 0;
        if !frac_digits.is_empty() {
            let numerator: u128 = frac_digits.parse().map_err(|_| too_large())?;
            let denominator = 10u128.pow(u32::try_from(frac_digits.len()).map_err(|_| too_large())?);
            frac_nanos = numerator * unit_nanos / denominator;
        }
        total_nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total_nanos))
            .ok_or_else(too_large)?;
        rest = after_unit;
    }
    // Go durations are int64 nanoseconds.
    let nanos = i64::try_from(total_nanos).map_err(|_| invalid("too large"))?;
    Ok(Duration::from_nanos(nanos.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gossip_sleep_grows_with_the_network_and_stays_bounded() {
        let ms = |n| gossip_sleep_for(n).as_millis();
        assert_eq!([1, 4, 7, 10, 13, 16, 40].map(ms), [2, 2, 7, 15, 26, 40, 50]);
        assert_eq!(Timing::l1_for(4), Timing::l1());
    }

    fn peer(seed: u8, host: &str, port: u16) -> Peer {
        Peer { node_id: crate::NodeKey::from_seed([seed; 32]).node_id(), host: host.to_owned(), port }
    }

    fn sample_config() -> NodeConfig {
        let mut config = NodeConfig::new("l1-node0", "unix:///tmp/bftws/l1/node0/abci.sock", Timing::l1());
        config.p2p_laddr = "tcp://127.0.0.1:36000".to_owned();
        config.rpc_laddr = "tcp://127.0.0.1:36001".to_owned();
        config.prometheus = true;
        config.prometheus_laddr = "127.0.0.1:36002".to_owned();
        config.persistent_peers = vec![peer(1, "127.0.0.1", 36010), peer(2, "127.0.0.1", 36020)];
        config
    }

    #[test]
    fn config_toml_snapshot() {
        insta::assert_snapshot!(sample_config().to_toml().unwrap());
    }

    #[test]
    fn config_toml_has_every_v038_template_key() {
        // section.key list of the config.toml that `cometbft init` (v0.38.26) writes.
        const TEMPLATE_KEYS: &str = include_str!("testdata/v0.38.26-config-keys.txt");
        let rendered = sample_config().to_toml().unwrap();
        assert_eq!(toml_keys(&rendered), TEMPLATE_KEYS.lines().map(str::to_owned).collect::<Vec<_>>());
    }

    /// `section.key` for every `key = value` line, in file order.
    fn toml_keys(toml: &str) -> Vec<String> {
        let mut section = String::new();
        let mut keys = Vec::new();
        for line in toml.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, _)) = line.split_once(" = ") {
                if !key.starts_with('#') {
                    keys.push(if section.is_empty() { key.to_owned() } else { format!("{section}.{key}") });
                }
            }
        }
        keys
    }

    #[test]
    fn layer_timings() {
        let l1 = Timing::l1();
        let l2 = Timing::l2();
        assert_eq!(format_go_duration(l1.timeout_commit), "20ms");
        assert_eq!(format_go_duration(l2.timeout_commit), "0s");
        for t in [&l1, &l2] {
            assert_eq!(format_go_duration(t.timeout_propose), "1s");
            assert_eq!(format_go_duration(t.timeout_prevote), "500ms");
            assert_eq!(format_go_duration(t.timeout_precommit), "500ms");
            assert_eq!(format_go_duration(t.flush_throttle_timeout), "1ms");
            assert_eq!(format_go_duration(t.peer_gossip_sleep_duration), "2ms");
            assert!(!t.skip_timeout_commit);
        }
    }

    #[test]
    fn overridden_timeouts_are_rendered() {
        let mut config = sample_config();
        config.timing.timeout_commit = parse_go_duration("150ms").unwrap();
        config.timing.timeout_propose = parse_go_duration("2.5s").unwrap();
        let toml = config.to_toml().unwrap();
        assert!(toml.contains("timeout_commit = \"150ms\"\n"));
        assert!(toml.contains("timeout_propose = \"2500ms\"\n"));
    }

    #[test]
    fn peers_render_as_comma_separated_id_at_host_port() {
        let mut config = sample_config();
        config.persistent_peers =
            vec![peer(1, "127.0.0.1", 26656), peer(2, "node-1.l1.bftws.svc", 26656), peer(3, "::1", 26656)];
        let expected = format!(
            "{}@127.0.0.1:26656,{}@node-1.l1.bftws.svc:26656,{}@[::1]:26656",
            peer(1, "", 0).node_id,
            peer(2, "", 0).node_id,
            peer(3, "", 0).node_id,
        );
        assert_eq!(config.persistent_peers_string(), expected);
        assert!(config.to_toml().unwrap().contains(&format!("persistent_peers = \"{expected}\"\n")));
        config.persistent_peers.clear();
        assert!(config.to_toml().unwrap().contains("persistent_peers = \"\"\n"));
    }

    #[test]
    fn bad_peers_and_empty_fields_are_errors() {
        let mut config = sample_config();
        config.persistent_peers[0].node_id = config.persistent_peers[0].node_id.to_uppercase();
        assert!(matches!(config.to_toml(), Err(HomeError::InvalidConfig(_))));
        let mut config = sample_config();
        config.persistent_peers[0].host = "a,b".to_owned();
        assert!(config.to_toml().is_err());
        let mut config = sample_config();
        config.moniker.clear();
        assert!(config.to_toml().is_err());
        let mut config = sample_config();
        config.external_address = Some("nohost".to_owned());
        assert!(config.to_toml().is_err());
    }

    #[test]
    fn strings_are_toml_escaped() {
        let mut config = sample_config();
        config.moniker = "a \"quoted\" \\ name\n".to_owned();
        let toml = config.to_toml().unwrap();
        assert!(toml.contains(r#"moniker = "a \"quoted\" \\ name\n""#));
    }

    #[test]
    fn go_durations_format_and_parse() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(168 * 3600), "168h"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_nanos(7), "7ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_go_duration(duration), text);
            assert_eq!(parse_go_duration(text).unwrap(), duration, "{text}");
        }
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_go_duration(".5ms").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_go_duration("168h0m0s").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_go_duration("2µs").unwrap(), Duration::from_micros(2));
        for bad in ["", "-1s", "10", "1x", "s", "1.s5", "99999999999h", "1..5s"] {
            assert!(
                matches!(parse_go_duration(bad), Err(HomeError::InvalidDuration { .. })),
                "{bad:?} should not parse"
            );
        }
    }
}
