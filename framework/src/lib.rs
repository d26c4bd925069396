//! bftws-framework: replicated HTTP services on CometBFT. A service implements
//! [`registry::Service`]; the framework does everything else.
//!
//! - [`registry`]: the request model, the `Service` trait and the registry of its routes.
//! - [`app`]: the replicated state machine (transactions, sessions, re-execution, bundles, app hash).
//! - [`abci`]: the ABCI 2.0 application on CometBFT v0.38.
//! - [`store`]: the embedded store and the framework's keys.
//! - [`origin`]: the write path of a node (simulate, sign, submit, wait).
//! - [`l2`]: the commit path from L2 to L1.
//! - [`http`]: the HTTP API around a service's routes.
//! - [`node_process`]: one node process (ABCI, HTTP, committer) for a service.

pub mod abci;
pub mod app;
pub mod auth;
pub mod chain;
pub mod cometbft;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod encoding;
pub mod http;
pub mod http_client;
pub mod l2;
pub mod local_chain;
pub mod local_network;
pub mod metrics;
pub mod network;
pub mod node_process;
pub mod origin;
pub mod proof;
pub mod registry;
pub mod store;
