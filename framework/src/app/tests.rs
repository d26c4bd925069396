//! A service whose code fails on its input cannot stop a node: the framework turns every failure
//! into a refusal. (The supply-chain service's tests drive the state machine end to end.)

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    tx::{Bundle, Op, SignedBundle, SignedOp, Tx},
    App, TxCode,
};
use crate::{
    chain::{Chain, SubmitError},
    local_chain::LocalChain,
    registry::{Actor, Layer, Registry, Request, Role},
    store::Store,
};

const L1_CHAIN: &str = "test-l1";
const L2_CHAIN: &str = "test-l2";
const NODE: &str = "l2-0";

fn actor(id: &str, role: &str) -> Actor {
    Actor { id: id.into(), role: Role::new(role) }
}

/// The in-process chain completes futures without awaiting anything.
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

fn state_dump(chain: &LocalChain) -> Vec<(Vec<u8>, Vec<u8>)> {
    chain.store().snapshot().unwrap().scan_prefix(b"").unwrap().into_iter().collect()
}

fn refused(result: Result<crate::chain::Finalized, SubmitError>) -> (TxCode, String) {
    match result {
        Err(SubmitError::Refused { code, log }) => (code, log),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A service whose code fails on its input in every way it can: an error it should have
/// answered as a 4xx, a panic in a handler, a panic in the commit hook.
mod hostile_service {
    use serde_json::{json, Value};

    use crate::registry::{
        AppError, Ctx, PathPattern, Request, Response, RoleSpec, Route, RouteKind, Service, ServiceState,
        SessionBinding, SessionView,
    };

    fn start(_: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
        Ok(Response::created(json!({"session_id": req.session_id})))
    }

    fn step(_: &mut Ctx<'_>, req: &Request) -> Result<Response, AppError> {
        match req.body["fail"].as_str() {
            Some("panic") => panic!("a bug in the service"),
            Some("internal") => Err(AppError::internal("a bug reported as a 500")),
            _ => Ok(Response::ok(json!({"ok": true}))),
        }
    }

    fn commit(_: &mut Ctx<'_>, _: &Request) -> Result<Response, AppError> {
        Ok(Response::ok(json!({"ok": true})))
    }

    pub(super) struct Hostile;

    impl Service for Hostile {
        fn name(&self) -> &'static str {
            "hostile"
        }

        fn description(&self) -> &'static str {
            "fails on its input in every way it can"
        }

        fn roles(&self) -> &'static [RoleSpec] {
            &[RoleSpec { name: "operator", reads_all_sessions: false }]
        }

        fn routes(&self) -> Vec<Route> {
            let route = |op, pattern, handler, session, kind| Route {
                op,
                method: "POST",
                pattern: PathPattern::new(pattern),
                handler,
                session,
                kind,
                summary: "",
                request: None,
            };
            vec![
                route("h.start", "/v1/sessions", start as _, SessionBinding::Starts, RouteKind::Step),
                route("h.step", "/v1/sessions/{id}/step", step as _, SessionBinding::InPath, RouteKind::Step),
                route("h.commit", "/v1/sessions/{id}/commit", commit as _, SessionBinding::InPath, RouteKind::Commit),
            ]
        }

        fn genesis(&self, _: &mut Ctx<'_>, _: &Value) -> Result<(), AppError> {
            Ok(())
        }

        fn session_committed(&self, _: &mut Ctx<'_>, _: &str) -> Result<(), AppError> {
            panic!("a bug in the commit hook")
        }

        fn session_rejected(&self, _: &mut Ctx<'_>, _: &str) -> Result<(), AppError> {
            Ok(())
        }

        fn session_view(&self, _: &ServiceState<'_>, _: &str) -> Result<Option<SessionView>, AppError> {
            Ok(None)
        }
    }
}

#[test]
fn a_failing_or_panicking_service_is_a_refusal_never_a_stopped_node() {
    let registry = Arc::new(Registry::new(hostile_service::Hostile));
    let chain = |layer, chain_id: &str, l2: Option<&str>| {
        LocalChain::new(
            App::new(registry.clone(), layer, chain_id),
            Store::in_memory().unwrap(),
            &crate::demo::app_state(&[NODE], l2, Value::Null),
        )
        .unwrap()
    };
    let (l2, l1) = (chain(Layer::L2, L2_CHAIN, None), chain(Layer::L1, L1_CHAIN, Some(L2_CHAIN)));
    let user = actor("u-1", "operator");
    let op = |path: &str, body: Value, id: &str, seq: u64| {
        let (route, params) = registry.resolve("POST", path).unwrap();
        let request_id = id.to_owned();
        let session_id = route.session_id(&request_id, &params);
        let request = Request {
            method: "POST".into(),
            path: path.into(),
            params,
            body,
            actor: user.clone(),
            request_id,
            time_ms: 1,
            session_id,
            session_seq: Some(seq),
            idempotency_key: None,
        };
        let response = crate::registry::Response { status: 200, body: json!({"ok": true}) };
        SignedOp::sign(Op { request, response }, NODE, &crate::demo::node_key(NODE))
    };
    let start = {
        let mut start = op("/v1/sessions", json!({}), "r-0", 0);
        start.op.response =
            crate::registry::Response { status: 201, body: json!({"session_id": start.op.request.session_id}) };
        SignedOp::sign(start.op, NODE, &crate::demo::node_key(NODE))
    };
    futures_block_on(l2.submit(Tx::Op(start.clone()).encode())).unwrap();
    let session = start.op.request.session_id.clone().unwrap();
    let before = state_dump(&l2);
    for fail in ["panic", "internal"] {
        let bad = op(&format!("/v1/sessions/{session}/step"), json!({"fail": fail}), &format!("r-{fail}"), 1);
        let (code, log) = refused(futures_block_on(l2.submit(Tx::Op(bad).encode())));
        assert_eq!(code, TxCode::HandlerFailed, "{fail}: {log}");
    }
    assert_eq!(state_dump(&l2), before, "nothing applied");

    // A whole session whose commit hook panics on L1: refused, L1 untouched, L1 still commits.
    let commit = op(&format!("/v1/sessions/{session}/commit"), json!({}), "r-commit", 1);
    futures_block_on(l2.submit(Tx::Op(commit.clone()).encode())).unwrap();
    let bundle = SignedBundle::sign(Bundle::new(L2_CHAIN, &session, vec![start, commit]), &crate::demo::commit_key());
    let l1_before = state_dump(&l1);
    let (code, log) = refused(futures_block_on(l1.submit(Tx::Bundle(bundle).encode())));
    assert_eq!(code, TxCode::HandlerFailed, "{log}");
    assert!(log.contains("session_committed panicked"), "{log}");
    assert_eq!(state_dump(&l1), l1_before);
}
