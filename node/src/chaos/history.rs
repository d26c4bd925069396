//! What the clients were told: one event per HTTP attempt, in the order attempts completed.
//! Written as JSON lines (`history.jsonl`), one event per line.

use std::{io::Write, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an attempt ended, as a client must read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer: the op is acknowledged (for a commit, 200 carries the receipt).
    Ok,
    /// A definite refusal (4xx other than 429): the op did not and will not apply.
    Refused,
    /// No answer, or one that does not say (5xx, 429, a timeout): it may or may not apply.
    Unknown,
}

/// One attempt of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub worker: usize,
    /// The client's name for the session (`w3-7-supplier`), known before the node names it.
    pub session: String,
    /// The node's session id, once a start was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `start`, a step name, `commit`, or `poll` (reading a committing session).
    pub step: String,
    /// The Idempotency-Key every attempt of this step carries (none for a poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub attempt: u32,
    /// The node's API it was sent to.
    pub node: String,
    /// Milliseconds from the start of the campaign.
    pub invoked_ms: u64,
    pub completed_ms: u64,
    pub outcome: Outcome,
    /// The HTTP status; 0 when none came.
    pub status: u16,
    /// The error envelope's code, or the transport error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The session's status from the answer (`committing`, `committed`, `rejected`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_status: Option<String>,
    /// L1's receipt from the answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Value>,
    /// The fault in force when it was sent (`none` between faults).
    pub fault: String,
}

impl Event {
    /// An attempt sent at `invoked_ms`, with no answer yet (completed at once, outcome unknown).
    pub(crate) fn attempt(
        worker: usize,
        session: &str,
        step: &str,
        attempt: u32,
        node: String,
        invoked_ms: u64,
        fault: String,
    ) -> Self {
        Self {
            worker,
            session: session.to_owned(),
            session_id: None,
            step: step.to_owned(),
            key: None,
            attempt,
            node,
            invoked_ms,
            completed_ms: invoked_ms,
            outcome: Outcome::Unknown,
            status: 0,
            error: None,
            session_status: None,
            receipt: None,
            fault,
        }
    }
}

pub fn write_jsonl(path: &Path, events: &[Event]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for event in events {
        serde_json::to_writer(&mut file, event)?;
        file.write_all(b"\n")?;
    }
    file.flush()
}
