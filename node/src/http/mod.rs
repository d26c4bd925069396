//! The HTTP API (DESIGN §7): a router per resource merged here, the body limit, tracing, panic
//! catching, the 404/405 envelopes, and `/openapi.json` generated from the handlers.

mod error;
mod extract;
mod health;
mod l1;
mod metrics;
mod packages;
mod sessions;

use std::{future::Future, sync::Arc};

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

pub use self::error::{ApiError, ErrorBody};
use crate::{
    auth::Authenticator,
    l2::Committer,
    origin::{Origin, WriteMeta},
};

/// Largest request body accepted; larger ones get 413 before any handler runs.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct ApiState(Arc<ApiInner>);

struct ApiInner {
    origin: Arc<Origin>,
    committer: Option<Arc<Committer>>,
    auth: Authenticator,
}

impl ApiState {
    pub fn new(origin: Arc<Origin>, committer: Option<Arc<Committer>>, auth: Authenticator) -> Self {
        Self(Arc::new(ApiInner { origin, committer, auth }))
    }

    fn origin(&self) -> &Origin {
        &self.0.origin
    }

    fn committer(&self) -> Option<&Arc<Committer>> {
        self.0.committer.as_ref()
    }

    fn auth(&self) -> &Authenticator {
        &self.0.auth
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
#[openapi(
    info(title = "bftws", description = "Byzantine-fault-tolerant web services: the supply-chain service"),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
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

/// The router and its OpenAPI document.
fn routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(sessions::router())
        .merge(packages::router())
        .merge(l1::router())
        .split_for_parts()
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The whole application, ready to serve (tests call it without a socket).
pub fn app(state: ApiState) -> Router {
    let (api, openapi) = routes();
    let openapi = Arc::new(openapi);
    api.merge(health::router())
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(500, "internal", "internal error; see the node's log").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(404, "not_found", format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on {}", uri.path()))
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
