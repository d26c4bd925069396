//! bftws-node: replicated HTTP services on CometBFT.
//!
//! - [`registry`]: the request model and the `(method, path) → handler` registry.
//! - [`supply_chain`]: the supply-chain service (handlers, reference data, demo data).
//! - [`app`]: the replicated state machine (transactions, re-execution, bundles, app hash).
//! - [`store`]: the embedded store and its keys.
//! - [`origin`]: the write path of a node (simulate, sign, submit, wait).
//! - [`l2`]: the commit path from L2 to L1.
//! - [`http`]: the HTTP API.

pub mod abci;
pub mod app;
pub mod auth;
pub mod bench;
pub mod chain;
pub mod cluster_files;
pub mod cometbft;
pub mod config;
pub mod crypto;
pub mod devnet;
pub mod encoding;
pub mod http;
pub mod http_client;
pub mod l2;
pub mod local_chain;
pub mod local_network;
pub mod metrics;
pub mod node_process;
pub mod origin;
pub mod pod_init;
pub mod registry;
pub mod store;
pub mod supply_chain;
pub mod workflow;
