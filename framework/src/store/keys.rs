//! Every key of the framework's replicated state (a service's keys are its own, under
//! [`service_prefix`]). Keys are part of consensus (they are hashed into the app hash):
//! changing one is a breaking change, which `keys_never_change` below makes visible.
//!
//! Ids embedded in keys are checked by `registry::ids` to never contain `/`.

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("/").into_bytes()
}

// Framework: reference data every layer needs.

/// An origin node allowed to sign ops on this chain: value = its public key record.
pub fn node(node_id: &str) -> Vec<u8> {
    key(&["ref", "node", node_id])
}

/// An L2 commit key authorised to submit bundles to L1 (keyed by the hex public key).
pub fn committer(public_key_hex: &str) -> Vec<u8> {
    key(&["ref", "committer", public_key_hex])
}

// Framework: sessions and their op log.

/// The framework's record of a session (`app::session::SessionLog`): owner, phase, op log.
pub fn session(session_id: &str) -> Vec<u8> {
    key(&["session", session_id])
}

/// The prefix of every [`session`] record.
pub fn session_prefix() -> Vec<u8> {
    b"session/".to_vec()
}

/// Index of sessions by owner (value empty): lists "my sessions" without a full scan.
pub fn session_by_owner(owner_id: &str, session_id: &str) -> Vec<u8> {
    key(&["session_by_owner", owner_id, session_id])
}

/// The prefix of [`session_by_owner`] for one owner.
pub fn session_by_owner_prefix(owner_id: &str) -> Vec<u8> {
    let mut prefix = key(&["session_by_owner", owner_id]);
    prefix.push(b'/');
    prefix
}

/// Where a service's keys live: every key a service reads or writes is under it, so services
/// never collide with each other or with the framework.
pub fn service_prefix(service_name: &str) -> Vec<u8> {
    let mut prefix = key(&["svc", service_name]);
    prefix.push(b'/');
    prefix
}

/// The `index`-th signed op of a session (zero-padded so key order is op order).
pub fn session_op(session_id: &str, index: u64) -> Vec<u8> {
    key(&["oplog", session_id, "op", &format!("{index:010}")])
}

/// The record of an applied request (by `request_id`): a request applies at most once per chain.
pub fn applied_request(request_id: &str) -> Vec<u8> {
    key(&["applied", request_id])
}

/// Marks a session whose commit op is applied and whose L1 answer is not recorded yet.
pub fn pending_commit(session_id: &str) -> Vec<u8> {
    key(&["pending_commit", session_id])
}

pub fn pending_commit_prefix() -> Vec<u8> {
    b"pending_commit/".to_vec()
}

/// L1 ledger entry of a committed session bundle.
pub fn ledger_session(session_id: &str) -> Vec<u8> {
    key(&["ledger", "session", session_id])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diff here breaks consensus with every existing chain: review it as such.
    #[test]
    fn keys_never_change() {
        let all = [
            node("l2-0"),
            committer("ab12"),
            session("s1"),
            session_prefix(),
            session_by_owner("op-1", "s1"),
            session_by_owner_prefix("op-1"),
            service_prefix("supply-chain"),
            session_op("s1", 7),
            applied_request("r1"),
            pending_commit("s1"),
            pending_commit_prefix(),
            ledger_session("s1"),
        ];
        let text: Vec<String> = all.iter().map(|k| String::from_utf8(k.clone()).unwrap()).collect();
        insta::assert_snapshot!(text.join("\n"), @r"
        ref/node/l2-0
        ref/committer/ab12
        session/s1
        session/
        session_by_owner/op-1/s1
        session_by_owner/op-1/
        svc/supply-chain/
        oplog/s1/op/0000000007
        applied/r1
        pending_commit/s1
        pending_commit/
        ledger/session/s1
        ");
    }

    #[test]
    fn op_keys_sort_in_op_order() {
        assert!(session_op("s", 9) < session_op("s", 10));
        assert!(session_op("s", 99) < session_op("s", 100));
    }
}
