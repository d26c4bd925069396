//! The campaign's clients: each runs supplier and warehouse sessions back to back, sends every
//! write with an `Idempotency-Key` and retries it (same key, possibly another node) until it gets
//! a definite answer or gives up, and records every attempt in the history.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::history::{Event, Outcome};
use crate::workflow::package_items;
use bftws_framework::http_client::JsonClient;
use bftws_supply_chain::demo;

/// What every client shares: the clock, the history and the fault in force.
pub(super) struct Recorder {
    started: Instant,
    events: Mutex<Vec<Event>>,
    fault: Mutex<String>,
}

impl Recorder {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self { started: Instant::now(), events: Mutex::new(Vec::new()), fault: Mutex::new("none".into()) })
    }

    /// Milliseconds since the campaign started.
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn set_fault(&self, label: &str) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = label.to_owned();
    }

    fn fault(&self) -> String {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, event: Event) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }

    pub(super) fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Where and how long clients work.
#[derive(Clone)]
pub(super) struct ClientPlan {
    /// `(node name, API base URL)` of the L2 nodes clients may use.
    pub(super) apis: Vec<(String, String)>,
    pub(super) seed: u64,
    /// No session starts after this.
    pub(super) stop_starting: Instant,
    /// No attempt is sent after this: what has no definite answer by then stays unknown.
    pub(super) give_up: Instant,
}

/// A step's end as the client sees it.
enum StepEnd {
    Acked(Value),
    Refused,
    GaveUp,
}

struct Worker {
    id: usize,
    plan: ClientPlan,
    recorder: Arc<Recorder>,
    client: JsonClient,
    /// Index into `plan.apis`; moves on when a node does not answer.
    node: usize,
}

/// Runs one client until `plan.stop_starting`, then finishes its session.
pub(super) async fn run_worker(id: usize, plan: ClientPlan, recorder: Arc<Recorder>) {
    let node = id % plan.apis.len();
    let mut worker = Worker { id, plan, recorder, client: JsonClient::new(Duration::from_secs(12)), node };
    let mut n = 0;
    while Instant::now() < worker.plan.stop_starting {
        n += 1;
        let (supplier, operator) = if id.is_multiple_of(2) { ("sup-1", "op-1") } else { ("sup-2", "op-2") };
        let package = format!("CHAOS-{}-W{id}-{n}", worker.plan.seed);
        let items = package_items();
        let signature = demo::sign_manifest(supplier, &package, &items);
        let supplier_steps =
            vec![("register_package", json!({"package_id": package, "items": items, "signature": signature}))];
        let committed = worker
            .session(&format!("w{id}-{n}-supplier"), "supplier", &format!("demo-{supplier}"), supplier_steps)
            .await;
        if !committed {
            continue;
        }
        let warehouse_steps = vec![
            ("scan", json!({"package_id": package})),
            ("validate", json!({"signature": signature})),
            ("qc", json!({"passed": true, "issues": []})),
            ("label", json!({"destination": "Oslo DC", "priority": "express", "courier_id": "c-1"})),
        ];
        worker
            .session(&format!("w{id}-{n}-warehouse"), "warehouse", &format!("demo-{operator}"), warehouse_steps)
            .await;
    }
}

impl Worker {
    /// One whole session; true when the client learnt it committed.
    async fn session(&mut self, session: &str, kind: &str, token: &str, steps: Vec<(&str, Value)>) -> bool {
        let seed = self.plan.seed;
        let key = |step: &str| format!("{seed}-{session}-{step}");
        let started =
            match self.step(session, None, "start", key("start"), "/v1/sessions", json!({"kind": kind}), token).await {
                StepEnd::Acked(body) => body,
                _ => return false,
            };
        let Some(id) = started["data"]["session_id"].as_str().map(str::to_owned) else { return false };
        for (step, body) in steps {
            let path = format!("/v1/sessions/{id}/{step}");
            match self.step(session, Some(&id), step, key(step), &path, body, token).await {
                StepEnd::Acked(_) => {}
                _ => return false,
            }
        }
        let path = format!("/v1/sessions/{id}/commit");
        match self.step(session, Some(&id), "commit", key("commit"), &path, json!({}), token).await {
            StepEnd::Acked(body) if body["data"]["status"] == "committed" => true,
            StepEnd::Acked(_) => self.poll(session, &id, token).await,
            _ => false,
        }
    }

    /// Sends one write until a definite answer (or `give_up`), recording every attempt.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &mut self,
        session: &str,
        session_id: Option<&str>,
        step: &str,
        key: String,
        path: &str,
        body: Value,
        token: &str,
    ) -> StepEnd {
        let mut attempt = 0;
        while Instant::now() < self.plan.give_up {
            attempt += 1;
            let (node, api) = self.plan.apis[self.node].clone();
            let fault = self.recorder.fault();
            let invoked_ms = self.recorder.now_ms();
            let reply = self
                .client
                .post_with_headers(&format!("{api}{path}"), Some(token), &[("idempotency-key", &key)], &body)
                .await;
            let mut event = Event::attempt(self.id, session, step, attempt, node, invoked_ms, fault);
            event.session_id = session_id.map(str::to_owned);
            event.key = Some(key.clone());
            event.completed_ms = self.recorder.now_ms();
            let mut wait = Duration::from_millis(300);
            let end = match reply {
                Ok(reply) => {
                    event.status = reply.status;
                    event.error = reply.body["error"]["code"].as_str().map(str::to_owned);
                    if event.session_id.is_none() {
                        event.session_id = reply.body["data"]["session_id"].as_str().map(str::to_owned);
                    }
                    event.session_status = reply.body["data"]["status"].as_str().map(str::to_owned);
                    event.receipt = reply.body["data"]["receipt"].as_object().map(|r| Value::Object(r.clone()));
                    match reply.status {
                        200..=299 => {
                            event.outcome = Outcome::Ok;
                            Some(StepEnd::Acked(reply.body))
                        }
                        429 | 500..=599 => {
                            wait = Duration::from_secs(reply.retry_after.unwrap_or(1).min(3));
                            // A node that cannot reach its chain: another may.
                            self.next_node();
                            None
                        }
                        _ => {
                            event.outcome = Outcome::Refused;
                            Some(StepEnd::Refused)
                        }
                    }
                }
                Err(err) => {
                    event.error = Some(err.to_string());
                    self.next_node();
                    None
                }
            };
            self.recorder.record(event);
            if let Some(end) = end {
                return end;
            }
            tokio::time::sleep(wait).await;
        }
        StepEnd::GaveUp
    }

    /// Reads a committing session until L1's answer is recorded (or `give_up`).
    async fn poll(&mut self, session: &str, id: &str, token: &str) -> bool {
        let mut attempt = 0;
        while Instant::now() < self.plan.give_up {
            attempt += 1;
            let (node, api) = self.plan.apis[self.node].clone();
            let fault = self.recorder.fault();
            let invoked_ms = self.recorder.now_ms();
            let reply = self.client.get(&format!("{api}/v1/sessions/{id}"), Some(token)).await;
            let mut event = Event::attempt(self.id, session, "poll", attempt, node, invoked_ms, fault);
            event.session_id = Some(id.to_owned());
            event.completed_ms = self.recorder.now_ms();
            let mut settled = None;
            match reply {
                Ok(reply) => {
                    event.status = reply.status;
                    event.error = reply.body["error"]["code"].as_str().map(str::to_owned);
                    let status = reply.body["data"]["status"].as_str().map(str::to_owned);
                    if reply.status == 200 {
                        event.outcome = Outcome::Ok;
                        event.receipt = reply.body["data"]["receipt"].as_object().map(|r| Value::Object(r.clone()));
                        match status.as_deref() {
                            Some("committed") => settled = Some(true),
                            Some("rejected") => settled = Some(false),
                            _ => {}
                        }
                    } else {
                        self.next_node();
                    }
                    event.session_status = status;
                }
                Err(err) => {
                    event.error = Some(err.to_string());
                    self.next_node();
                }
            }
            self.recorder.record(event);
            if let Some(committed) = settled {
                return committed;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }

    fn next_node(&mut self) {
        self.node = (self.node + 1) % self.plan.apis.len();
    }
}
