//! bftws-node: the node binary's library: the services it links and picks by name, and the dev
//! tools (local devnet, benchmark, workflow client, the in-process network, pod files).

pub mod bench;
pub mod chaos;
pub mod cluster_files;
pub mod devnet;
pub mod local_network;
pub mod netns;
pub mod pod_init;
pub mod verify;
pub mod workflow;

pub use bftws_services as services;

#[cfg(test)]
mod tests {
    /// The demo L1 lets its committer bundle ops of every L2 ordinal a layer can have.
    #[test]
    fn the_demo_l1_lists_every_l2_ordinal_a_layer_can_have() {
        assert_eq!(bftws_framework::demo::L2_NODES, bftws_home::cluster::MAX_NODES);
    }
}
