//! The HTTP API (DESIGN §7): a router per resource merged here, the body limit, tracing, panic
//! catching, the 404/405 envelopes, and `/openapi.json` generated from the handlers.

mod console;
mod envelope;
mod error;
mod extract;
mod health;
mod identity;
mod l1;
mod metrics;
mod network;
mod refusals;
mod sessions;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    http::{Method, Uri},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

pub use self::{
    error::{ApiError, ErrorBody},
    refusals::{PeerAddr, RefusalBudget, RefusalLimiter},
};
use crate::{
    auth::Authenticator,
    l2::Committer,
    origin::{Origin, WriteMeta},
    registry::Registry,
};

/// Largest request body accepted; larger ones get 413 before any handler runs.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct ApiState(Arc<ApiInner>);

struct ApiInner {
    origin: Arc<Origin>,
    committer: Option<Arc<Committer>>,
    /// Replaced whole when the token file changes ([`ApiState::replace_tokens`]).
    auth: std::sync::RwLock<Arc<Authenticator>>,
    refusals: RefusalLimiter,
    stall: health::StallWatch,
}

impl ApiState {
    pub fn new(origin: Arc<Origin>, committer: Option<Arc<Committer>>, auth: Authenticator) -> Self {
        Self::with_refusal_budget(origin, committer, auth, RefusalBudget::default())
    }

    /// [`ApiState::new`] with a chosen budget of refused bundles per source.
    pub fn with_refusal_budget(
        origin: Arc<Origin>,
        committer: Option<Arc<Committer>>,
        auth: Authenticator,
        budget: RefusalBudget,
    ) -> Self {
        let auth = std::sync::RwLock::new(Arc::new(auth));
        let refusals = RefusalLimiter::new(budget);
        Self(Arc::new(ApiInner { origin, committer, auth, refusals, stall: health::StallWatch::default() }))
    }

    fn refusals(&self) -> &RefusalLimiter {
        &self.0.refusals
    }

    fn origin(&self) -> &Origin {
        &self.0.origin
    }

    fn stall(&self) -> &health::StallWatch {
        &self.0.stall
    }

    fn committer(&self) -> Option<&Arc<Committer>> {
        self.0.committer.as_ref()
    }

    fn auth(&self) -> Arc<Authenticator> {
        self.0.auth.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Serves these tokens from now on (requests under way keep the ones they started with).
    pub fn replace_tokens(&self, auth: Authenticator) {
        *self.0.auth.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(auth);
    }
}

/// A successful write: the handler's data and where it became final.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WriteReply {
    #[schema(value_type = Object)]
    data: Value,
    meta: WriteMeta,
}

#[derive(OpenApi)]
#[openapi(modifiers(&BearerAuth), components(schemas(ErrorBody, WriteReply)))]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and its OpenAPI document: the framework's routes and the service's.
fn routes(registry: &Registry) -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(sessions::router())
        .merge(l1::router())
        .merge(identity::router())
        .merge(network::router())
        .split_for_parts();
    let service = registry.service();
    openapi.info.title = format!("bftws: {}", service.name());
    openapi.info.description = Some(format!("Byzantine-fault-tolerant web services: {}", service.description()));
    sessions::document_service_routes(registry, &mut openapi);
    (router.merge(sessions::service_router(registry)), openapi)
}

/// The OpenAPI document of a service's API.
pub fn openapi(registry: &Registry) -> utoipa::openapi::OpenApi {
    routes(registry).1
}

/// The whole application, ready to serve (tests call it without a socket).
pub fn app(state: ApiState) -> Router {
    let (api, openapi) = routes(state.origin().registry());
    let openapi = Arc::new(openapi);
    api.merge(health::router())
        .merge(console::router())
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(500, "internal", "internal error; see the node's log").into_response()
        }))
        .layer(axum::middleware::from_fn(envelope::errors_as_envelope))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request.headers().get(envelope::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", method = %request.method(), uri = %request.uri(), request_id)
        }))
        .layer(axum::middleware::from_fn(envelope::request_id))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(404, "not_found", format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on {}", uri.path()))
}

/// What a listener allows a client, so slow or greedy clients cannot hold the node.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// How long a client may take to send a request's headers.
    pub header_read: Duration,
    /// How long a client may take to send a request's body.
    pub body_read: Duration,
    /// How long a connection may sit without reads or writes before it is closed.
    pub idle: Duration,
    /// The longest a connection is kept; then it is closed after its request in flight.
    pub max_age: Duration,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
            max_connections: 1024,
        }
    }
}

/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then finishes in-flight requests, with the default
/// [`ListenerLimits`].
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ListenerLimits::default(), shutdown).await
}

/// [`serve`] with chosen limits: headers, bodies and idle connections have timeouts, and
/// connections a limit.
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(state);
    let limit = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait and go on rather than stop serving.
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; closing a new connection");
            continue;
        };
        // Every request knows its source (the bundle route budgets refusals per source).
        let with_peer = tower::util::MapRequest::new(app.clone(), move |mut request: axum::http::Request<_>| {
            request.extensions_mut().insert(PeerAddr(peer));
            request
        });
        let service = hyper_util::service::TowerToHyperService::new(tower_http::timeout::RequestBodyTimeout::new(
            with_peer,
            limits.body_read,
        ));
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _permit = permit;
            let io = idle::IdleIo::new(socket, limits.idle);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(io, service);
            tokio::pin!(connection);
            let age = tokio::time::sleep(limits.max_age);
            tokio::pin!(age);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(err) = result {
                            tracing::debug!(%peer, %err, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut age, if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    changed = stopped.changed(), if !closing => {
                        if changed.is_err() || *stopped.borrow() {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    Ok(())
}

mod idle {
    //! A socket that reports end of stream when nothing was read or written for a while, so an
    //! idle keep-alive connection is closed by the server.

    use std::{
        future::Future,
        pin::Pin,
        task::{Context, Poll},
        time::Duration,
    };

    use hyper::rt::{Read, ReadBufCursor, Write};
    use hyper_util::rt::TokioIo;
    use tokio::{net::TcpStream, time::Sleep};

    pub(super) struct IdleIo {
        inner: TokioIo<TcpStream>,
        timeout: Duration,
        deadline: Pin<Box<Sleep>>,
    }

    impl IdleIo {
        pub(super) fn new(socket: TcpStream, timeout: Duration) -> Self {
            Self { inner: TokioIo::new(socket), timeout, deadline: Box::pin(tokio::time::sleep(timeout)) }
        }

        fn touch(&mut self) {
            let next = tokio::time::Instant::now() + self.timeout;
            self.deadline.as_mut().reset(next);
        }
    }

    impl Read for IdleIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: ReadBufCursor<'_>,
        ) -> Poll<std::io::Result<()>> {
            match Pin::new(&mut self.inner).poll_read(cx, buf) {
                Poll::Ready(result) => {
                    self.touch();
                    Poll::Ready(result)
                }
                Poll::Pending => match self.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle connection")))
                    }
                    Poll::Pending => Poll::Pending,
                },
            }
        }
    }

    impl Write for IdleIo {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let result = Pin::new(&mut self.inner).poll_write(cx, buf);
            if result.is_ready() {
                self.touch();
            }
            result
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }
}
