//! The checker: from the clients' history and the final state of every node, decides whether
//! anything acknowledged was lost, anything applied twice, anything refused applied, and whether
//! L1 and L2 agree on every session. It never trusts one node: every node of each layer is read.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::history::{Event, Outcome};

/// A session as one L2 node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Session {
    pub status: String,
    pub ops: u64,
    pub receipt: Option<Receipt>,
}

/// The part of a receipt that names one L1 transaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Receipt {
    pub height: u64,
    pub tx_hash: String,
    pub bundle_hash: String,
}

impl Receipt {
    pub fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            height: value["height"].as_u64()?,
            tx_hash: value["tx_hash"].as_str()?.to_owned(),
            bundle_hash: value["bundle_hash"].as_str()?.to_owned(),
        })
    }
}

/// A session in L1's ledger, as one L1 node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1Entry {
    pub receipt: Receipt,
    pub op_count: u64,
}

/// What one node answered about one session: `None` when it does not know the session.
/// `Err` when it could not be read at all (the node is down).
pub type Observation<T> = Result<Option<T>, String>;

/// Every node's answer for every session the history names.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// session id → node → answer.
    pub l2: BTreeMap<String, BTreeMap<String, Observation<L2Session>>>,
    pub l1: BTreeMap<String, BTreeMap<String, Observation<L1Entry>>>,
}

/// One broken promise, with the history entries that show it.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub kind: &'static str,
    pub session: String,
    pub session_id: Option<String>,
    pub detail: String,
    pub events: Vec<Event>,
}

/// Per session of the history: what the client was told.
#[derive(Debug, Default)]
struct ClientView {
    session_id: Option<String>,
    /// Step name → how it ended (`Ok` beats everything, then `Refused`, then `Unknown`).
    steps: BTreeMap<String, Outcome>,
    /// The receipt the client was given with a committed answer.
    committed: Option<Receipt>,
    /// L1 refused the session (422 on commit, or a poll that read `rejected`).
    rejected: bool,
    /// Steps with an attempt that got no definite answer.
    attempts_unanswered: BTreeSet<String>,
    events: Vec<Event>,
}

impl ClientView {
    fn acked(&self) -> u64 {
        self.steps.values().filter(|o| **o == Outcome::Ok).count() as u64
    }

    fn unknown(&self) -> u64 {
        self.steps.values().filter(|o| **o == Outcome::Unknown).count() as u64
    }

    fn attempted(&self) -> u64 {
        self.steps.len() as u64
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub sessions: u64,
    pub ops_acknowledged: u64,
    pub ops_unknown: u64,
    pub ops_refused: u64,
    pub commits_acknowledged: u64,
    pub commits_rejected_by_l1: u64,
    /// Commits without a definite answer that L1 did commit (allowed).
    pub unknown_commits_committed: u64,
    pub unknown_commits_not_committed: u64,
    pub lost: u64,
    pub duplicated: u64,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub counts: Counts,
    pub violations: Vec<Violation>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

fn rank(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Ok => 2,
        Outcome::Refused => 1,
        Outcome::Unknown => 0,
    }
}

fn client_views(events: &[Event]) -> BTreeMap<String, ClientView> {
    let mut views: BTreeMap<String, ClientView> = BTreeMap::new();
    for event in events {
        let view = views.entry(event.session.clone()).or_default();
        if view.session_id.is_none() {
            view.session_id = event.session_id.clone();
        }
        if event.step != "poll" {
            // A commit L1 refused (422) was applied on L2 (the session froze and went to L1):
            // as an op it is acknowledged; L1's refusal is recorded below.
            let outcome =
                if event.step == "commit" && event.status == 422 { Outcome::Ok } else { event.outcome.clone() };
            // A `404`/`409` after an attempt without an answer may come from a node that has not
            // seen that attempt apply yet (one cut off from its peers cannot know): the step
            // stays unknown rather than refused.
            let after_unknown = view.attempts_unanswered.contains(&event.step);
            let outcome = match outcome {
                Outcome::Refused if after_unknown && matches!(event.status, 404 | 409) => Outcome::Unknown,
                other => other,
            };
            if outcome == Outcome::Unknown {
                view.attempts_unanswered.insert(event.step.clone());
            }
            let entry = view.steps.entry(event.step.clone()).or_insert(Outcome::Unknown);
            if rank(&outcome) > rank(entry) {
                *entry = outcome;
            }
        }
        if event.outcome == Outcome::Ok && event.session_status.as_deref() == Some("committed") {
            if let Some(receipt) = event.receipt.as_ref().and_then(Receipt::from_json) {
                view.committed.get_or_insert(receipt);
            }
        }
        let refused_commit = event.step == "commit" && event.status == 422;
        let read_rejected = event.step == "poll" && event.session_status.as_deref() == Some("rejected");
        view.rejected |= refused_commit || read_rejected;
        view.events.push(event.clone());
    }
    views
}

/// Decides the campaign.
pub fn check(events: &[Event], observed: &Observed) -> Verdict {
    let mut counts = Counts::default();
    let mut violations = Vec::new();
    for (session, view) in client_views(events) {
        counts.sessions += 1;
        counts.ops_acknowledged += view.acked();
        counts.ops_unknown += view.unknown();
        counts.ops_refused += view.steps.values().filter(|o| **o == Outcome::Refused).count() as u64;
        let before = violations.len();
        let mut violation = |kind: &'static str, detail: String| {
            violations.push(Violation {
                kind,
                session: session.clone(),
                session_id: view.session_id.clone(),
                detail,
                events: view.events.clone(),
            });
        };
        let Some(id) = view.session_id.clone() else {
            // No start was acknowledged and no answer named the session: nothing the client was
            // told can be checked (a start that applied unseen leaves an open, empty session).
            continue;
        };
        let none = BTreeMap::new();
        let l2 = observed.l2.get(&id).unwrap_or(&none);
        let none = BTreeMap::new();
        let l1 = observed.l1.get(&id).unwrap_or(&none);

        // L1: every node that answered holds the same entry, or none.
        let l1_answers: BTreeSet<Option<(Receipt, u64)>> = l1
            .values()
            .filter_map(|answer| answer.as_ref().ok())
            .map(|entry| entry.as_ref().map(|e| (e.receipt.clone(), e.op_count)))
            .collect();
        if l1_answers.len() > 1 {
            violation("l1_nodes_disagree", format!("L1 nodes hold different entries: {l1:?}"));
        }
        let l1_entry = l1_answers.iter().flatten().next().cloned();
        if l1.values().all(|answer| answer.is_err()) && !l1.is_empty() {
            violation("unreadable", format!("no L1 node could be read: {l1:?}"));
        }

        // L2: every node that answered holds the session with the same status, ops and receipt.
        let l2_answers: BTreeSet<Option<(String, u64, Option<Receipt>)>> = l2
            .values()
            .filter_map(|answer| answer.as_ref().ok())
            .map(|s| s.as_ref().map(|s| (s.status.clone(), s.ops, s.receipt.clone())))
            .collect();
        if l2_answers.len() > 1 {
            violation("l2_nodes_disagree", format!("L2 nodes hold different records: {l2:?}"));
        }
        let l2_record = l2_answers.iter().flatten().next().cloned();

        // Every acknowledged op is in L2's log; no op applied twice or after a refusal.
        let l2_readable = l2.values().any(|answer| answer.is_ok());
        if !l2_readable && !l2.is_empty() {
            violation("unreadable", format!("no L2 node could be read: {l2:?}"));
        }
        match &l2_record {
            None if view.acked() > 0 && l2_readable => {
                violation("lost", format!("{} acknowledged ops, but no L2 node has the session", view.acked()))
            }
            None => {}
            Some((_, ops, _)) => {
                if *ops < view.acked() {
                    violation("lost", format!("{} ops acknowledged, L2 holds {ops}", view.acked()));
                }
                if *ops > view.attempted() {
                    violation("duplicated", format!("{} distinct ops sent, L2 holds {ops}", view.attempted()));
                } else if *ops > view.acked() + view.unknown() {
                    violation(
                        "refused_applied",
                        format!(
                            "{} ops acknowledged and {} without an answer, but L2 holds {ops}: a refused op applied",
                            view.acked(),
                            view.unknown()
                        ),
                    );
                }
            }
        }

        // A commit the client was told of is final on L1 with the receipt it was given.
        match (&view.committed, &l1_entry) {
            (Some(told), Some((receipt, _))) if told != receipt => {
                violation("receipt_mismatch", format!("the client was given {told:?}, L1's ledger holds {receipt:?}"))
            }
            (Some(told), None) if l1.values().any(|answer| answer.is_ok()) => {
                violation("lost", format!("commit acknowledged with {told:?}, not in L1's ledger"))
            }
            _ => {}
        }
        let commit = view.steps.get("commit");
        match (&l1_entry, commit) {
            (Some(_), None | Some(Outcome::Refused)) => {
                violation("refused_committed", format!("commit {commit:?} by the client, yet in L1's ledger"))
            }
            (Some(_), _) if view.rejected => {
                violation("refused_committed", "L1 refused the session to the client, yet it is in L1's ledger".into())
            }
            _ => {}
        }

        // L1 and L2 agree: committed on L1 exactly when committed on L2, with the same receipt
        // and the same ops.
        match (&l1_entry, &l2_record) {
            (Some((receipt, op_count)), Some((status, ops, l2_receipt))) => {
                if status != "committed" || l2_receipt.as_ref() != Some(receipt) {
                    violation(
                        "l1_l2_disagree",
                        format!("L1 committed it ({receipt:?}); L2 says {status} with {l2_receipt:?}"),
                    );
                }
                if op_count != ops {
                    violation("l1_l2_disagree", format!("L1's bundle has {op_count} ops, L2's log {ops}"));
                }
            }
            (None, Some((status, _, _))) if status == "committed" => {
                violation("l1_l2_disagree", "L2 says committed, L1's ledger does not hold it".into())
            }
            _ => {}
        }

        // A commit answered 202 ("the node keeps trying") must end on L1 once faults are healed.
        if commit == Some(&Outcome::Ok) && view.committed.is_none() && !view.rejected && l1_entry.is_none() {
            let l2_status = l2_record.as_ref().map(|(status, ..)| status.as_str());
            if l2_status != Some("rejected") {
                violation("stalled", format!("commit accepted (202), still not final on L1; L2 says {l2_status:?}"));
            }
        }

        if view.committed.is_some() {
            counts.commits_acknowledged += 1;
        } else if view.rejected {
            counts.commits_rejected_by_l1 += 1;
        } else if commit == Some(&Outcome::Unknown) || commit == Some(&Outcome::Ok) {
            if l1_entry.is_some() {
                counts.unknown_commits_committed += 1;
            } else {
                counts.unknown_commits_not_committed += 1;
            }
        }
        for found in &violations[before..] {
            match found.kind {
                "lost" => counts.lost += 1,
                "duplicated" => counts.duplicated += 1,
                _ => {}
            }
        }
    }
    Verdict { counts, violations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "sess-1";

    fn event(step: &str, outcome: Outcome, status: u16) -> Event {
        Event {
            worker: 0,
            session: "w0-1-supplier".into(),
            session_id: Some(ID.into()),
            step: step.into(),
            key: Some(format!("k-{step}")),
            attempt: 1,
            node: "l2-0".into(),
            invoked_ms: 0,
            completed_ms: 1,
            outcome,
            status,
            error: None,
            session_status: None,
            receipt: None,
            fault: "none".into(),
        }
    }

    fn receipt(tx: &str) -> Receipt {
        Receipt { height: 7, tx_hash: tx.into(), bundle_hash: "bh".into() }
    }

    fn committed_answer(tx: &str) -> Event {
        let mut commit = event("commit", Outcome::Ok, 200);
        commit.session_status = Some("committed".into());
        commit.receipt = Some(json!({"height": 7, "tx_hash": tx, "bundle_hash": "bh", "code": 0}));
        commit
    }

    /// start, one step and a commit, all acknowledged, the commit with receipt `tx`.
    fn history(tx: &str) -> Vec<Event> {
        vec![event("start", Outcome::Ok, 201), event("register_package", Outcome::Ok, 201), committed_answer(tx)]
    }

    fn l2(status: &str, ops: u64, tx: Option<&str>) -> Observation<L2Session> {
        Ok(Some(L2Session { status: status.into(), ops, receipt: tx.map(receipt) }))
    }

    fn observed(l2_nodes: Vec<Observation<L2Session>>, l1_entry: Option<&str>) -> Observed {
        let mut observed = Observed::default();
        let l2_map = l2_nodes.into_iter().enumerate().map(|(i, o)| (format!("l2-{i}"), o)).collect();
        observed.l2.insert(ID.into(), l2_map);
        let entry = l1_entry.map(|tx| L1Entry { receipt: receipt(tx), op_count: 3 });
        let l1_map = (0..4).map(|i| (format!("l1-{i}"), Ok(entry.clone()))).collect();
        observed.l1.insert(ID.into(), l1_map);
        observed
    }

    fn kinds(verdict: &Verdict) -> Vec<&'static str> {
        verdict.violations.iter().map(|v| v.kind).collect()
    }

    #[test]
    fn a_history_the_nodes_agree_with_passes() {
        let verdict = check(&history("T1"), &observed(vec![l2("committed", 3, Some("T1")); 2], Some("T1")));
        assert!(verdict.passed(), "{:?}", verdict.violations);
        assert_eq!((verdict.counts.ops_acknowledged, verdict.counts.commits_acknowledged), (3, 1));
    }

    #[test]
    fn an_acknowledged_commit_missing_from_l1_is_lost() {
        let verdict = check(&history("T1"), &observed(vec![l2("committing", 3, None)], None));
        assert!(kinds(&verdict).contains(&"lost"));
        assert_eq!(verdict.counts.lost, 1);
        assert!(!verdict.violations[0].events.is_empty(), "the offending history entries are shown");
    }

    #[test]
    fn a_receipt_other_than_the_ledgers_is_caught() {
        let verdict = check(&history("T1"), &observed(vec![l2("committed", 3, Some("T2"))], Some("T2")));
        assert_eq!(kinds(&verdict), ["receipt_mismatch"]);
    }

    #[test]
    fn acknowledged_ops_missing_on_l2_are_lost() {
        let verdict = check(&history("T1"), &observed(vec![l2("committed", 2, Some("T1"))], Some("T1")));
        assert!(kinds(&verdict).contains(&"lost"));
        let verdict = check(&history("T1"), &observed(vec![Ok(None)], Some("T1")));
        assert!(kinds(&verdict).contains(&"lost"));
    }

    #[test]
    fn an_op_applied_twice_is_duplicated() {
        let verdict = check(&history("T1"), &observed(vec![l2("committed", 4, Some("T1"))], Some("T1")));
        assert!(kinds(&verdict).contains(&"duplicated"));
        assert_eq!(verdict.counts.duplicated, 1);
    }

    #[test]
    fn a_refused_op_that_applied_is_caught() {
        let events = vec![event("start", Outcome::Ok, 201), event("register_package", Outcome::Refused, 400)];
        let verdict = check(&events, &observed(vec![l2("open", 2, None)], None));
        assert_eq!(kinds(&verdict), ["refused_applied"]);
        // An op without an answer may have applied.
        let events = vec![event("start", Outcome::Ok, 201), event("register_package", Outcome::Unknown, 503)];
        assert!(check(&events, &observed(vec![l2("open", 2, None)], None)).passed());
    }

    #[test]
    fn a_not_found_after_an_unanswered_attempt_is_not_a_refusal() {
        let events = vec![
            event("start", Outcome::Ok, 201),
            event("register_package", Outcome::Unknown, 503),
            event("register_package", Outcome::Refused, 404),
        ];
        let verdict = check(&events, &observed(vec![l2("open", 2, None)], None));
        assert!(verdict.passed(), "{:?}", verdict.violations);
        assert_eq!(verdict.counts.ops_unknown, 1);
    }

    #[test]
    fn unreadable_nodes_are_reported_as_such_not_as_losses() {
        let mut down = observed(vec![Err("connection refused".into())], None);
        for answer in down.l1.get_mut(ID).unwrap().values_mut() {
            *answer = Err("connection refused".into());
        }
        let verdict = check(&history("T1"), &down);
        assert_eq!(kinds(&verdict), ["unreadable", "unreadable"]);
    }

    #[test]
    fn a_session_l1_refused_to_the_client_must_not_be_in_the_ledger() {
        let mut events = history("T1");
        events[2] = event("commit", Outcome::Refused, 422);
        let verdict = check(&events, &observed(vec![l2("rejected", 3, None)], Some("T1")));
        assert!(kinds(&verdict).contains(&"refused_committed"));
        assert!(check(&events, &observed(vec![l2("rejected", 3, None)], None)).passed());
    }

    #[test]
    fn nodes_of_a_layer_must_agree() {
        let verdict = check(
            &history("T1"),
            &observed(vec![l2("committed", 3, Some("T1")), l2("committing", 3, None)], Some("T1")),
        );
        assert!(kinds(&verdict).contains(&"l2_nodes_disagree"));
        let mut split = observed(vec![l2("committed", 3, Some("T1"))], Some("T1"));
        split.l1.get_mut(ID).unwrap().insert("l1-3".into(), Ok(None));
        assert!(kinds(&check(&history("T1"), &split)).contains(&"l1_nodes_disagree"));
        // A node that cannot be read is not a disagreement.
        let mut down = observed(vec![l2("committed", 3, Some("T1"))], Some("T1"));
        down.l1.get_mut(ID).unwrap().insert("l1-3".into(), Err("connection refused".into()));
        assert!(check(&history("T1"), &down).passed());
    }

    #[test]
    fn l1_and_l2_must_agree_on_a_commit_nobody_was_told_of() {
        let mut events = history("T1");
        events[2] = event("commit", Outcome::Unknown, 0);
        let verdict = check(&events, &observed(vec![l2("committing", 3, None)], Some("T1")));
        assert_eq!(kinds(&verdict), ["l1_l2_disagree"]);
        let settled = check(&events, &observed(vec![l2("committed", 3, Some("T1"))], Some("T1")));
        assert!(settled.passed());
        assert_eq!(settled.counts.unknown_commits_committed, 1);
    }

    #[test]
    fn an_accepted_commit_must_end_on_l1() {
        let mut events = history("T1");
        events[2] = event("commit", Outcome::Ok, 202);
        events[2].session_status = Some("committing".into());
        let verdict = check(&events, &observed(vec![l2("committing", 3, None)], None));
        assert_eq!(kinds(&verdict), ["stalled"]);
    }
}
