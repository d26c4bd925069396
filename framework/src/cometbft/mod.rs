//! Talking to this node's own CometBFT: its RPC (broadcast, status) and the in-process waiters
//! that turn "broadcast" into "final here" without a subscription per request.

mod chain;
mod rpc;
mod waiters;

pub use self::{
    chain::CometChain,
    rpc::{BroadcastResult, CometRpc, ConsensusHeights, NodeStatus, RpcError},
    waiters::{TxFinal, Waiters},
};
