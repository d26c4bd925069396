//! Layer 2's commit path: turning a frozen session into a bundle, getting L1's answer, and
//! recording it on L2.

mod committer;
mod l1_http;

pub use self::{
    committer::{CommitOutcome, Committer, CommittingSession, L1Client, L1Error, LocalL1},
    l1_http::HttpL1Client,
};
