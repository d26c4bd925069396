//! bftws-node: the node binary's library: the services it links and picks by name, and the dev
//! tools (local devnet, benchmark, workflow client, the in-process network, pod files).

pub mod bench;
pub mod cluster_files;
pub mod devnet;
pub mod local_network;
pub mod pod_init;
pub mod services;
pub mod workflow;
