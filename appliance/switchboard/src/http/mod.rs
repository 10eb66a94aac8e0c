//! The HTTP listener: health, readiness and metrics (open to all), and the admin API under
//! `/api`, where every route needs a login and a role (see [`access`] and `docs/api.md`).

pub mod access;
mod agents;
mod blacklist;
mod calls;
mod campaigns;
mod error;
pub use blacklist::shown as blacklist_entry_json;
mod memory;
mod session;
pub mod tls;

pub use error::{ApiError, Params};

use crate::auth::LoginThrottle;
use crate::engines::EngineError;
use crate::knowledge::Knowledge;
use crate::runtime::recording::Vault;
use crate::runtime::Runtime;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{middleware, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use switchboard_store::Store;
use tokio::net::TcpListener;

/// What the HTTP handlers reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// `Ok` when the installed model set checked out at start, else why not.
    pub models: Result<(), Arc<EngineError>>,
    pub metrics: PrometheusHandle,
    /// Agents' knowledge, or why it cannot be managed here (no embedder loaded).
    pub knowledge: Result<Arc<Knowledge>, Arc<EngineError>>,
    pub throttle: Arc<LoginThrottle>,
    /// Password checks running at once (`auth::PASSWORD_CHECKS`): a login flood queues here
    /// instead of taking every core and gigabytes of argon2 memory.
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// Who may read `/metrics` and `/readyz`'s reasons besides this box
    /// (`http.monitoring_allow`).
    pub monitoring: sip_net::AllowList,
    /// The call runtime, told when an agent's knowledge changes; `None` when it is not running.
    pub runtime: Option<Arc<Runtime>>,
    /// Served over TLS: session cookies are `Secure`.
    pub https: bool,
    /// This box's name in call records: the recordings an erasure may remove, or the API may
    /// serve, are its own.
    pub node: String,
    /// The recordings on this box and their key; `None` when they cannot be read here (the
    /// log said why at start).
    pub recordings: Option<Vault>,
}

impl AppState {
    pub fn new(
        store: Store,
        models: Result<(), Arc<EngineError>>,
        knowledge: Result<Arc<Knowledge>, Arc<EngineError>>,
    ) -> Self {
        AppState {
            store,
            models,
            metrics: crate::telemetry::metrics(),
            knowledge,
            throttle: Arc::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(crate::auth::PASSWORD_CHECKS)),
            runtime: None,
            monitoring: sip_net::AllowList::only([]),
            https: false,
            node: String::new(),
            recordings: None,
        }
    }

    /// With the recordings of this box.
    pub fn with_recordings(mut self, recordings: Option<Vault>) -> Self {
        self.recordings = recordings;
        self
    }

    /// On the box named `node` in call records.
    pub fn with_node(mut self, node: String) -> Self {
        self.node = node;
        self
    }

    /// Served over HTTPS (or not).
    pub fn with_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// With the sources besides this box that may read the monitoring details.
    pub fn with_monitoring(mut self, allow: sip_net::AllowList) -> Self {
        self.monitoring = allow;
        self
    }

    /// Whether `peer` may read `/metrics` and the reasons behind `/readyz`: this box itself,
    /// or a source in `http.monitoring_allow`.
    fn may_monitor(&self, peer: std::net::IpAddr) -> bool {
        peer.to_canonical().is_loopback() || self.monitoring.allows(peer.to_canonical())
    }

    /// With the call runtime that takes knowledge changes to calls.
    pub fn with_runtime(mut self, runtime: Option<Arc<Runtime>>) -> Self {
        self.runtime = runtime;
        self
    }
}

/// Serves [`router`] on `listener` until `shutdown` resolves. Handlers see the client's address
/// (for the login backoff).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            // Small request/response exchanges: send each at once rather than wait for more.
            let listener = tls::TlsListener::new(listener, acceptor)?
                .tap_io(|io| drop(io.get_ref().0.set_nodelay(true)));
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api(state.clone()))
        .with_state(state)
}

/// The admin API. Every route here must have its line in [`access::ROUTES`]; one without is
/// refused to everyone.
fn api(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/login", post(session::login))
        .route("/api/logout", post(session::logout))
        .route("/api/me", get(session::me))
        .route("/api/agents", get(agents::list))
        .route(
            "/api/agents/{name}/knowledge",
            get(agents::documents)
                .post(agents::upload)
                .layer(DefaultBodyLimit::max(agents::MAX_UPLOAD)),
        )
        .route("/api/agents/{name}/knowledge/search", get(agents::search))
        .route(
            "/api/agents/{name}/knowledge/{*document}",
            axum::routing::delete(agents::remove),
        )
        .route("/api/agents/{name}/memory", get(memory::of_agent))
        .route(
            "/api/callers/{number}/memory",
            get(memory::of_caller).delete(memory::forget),
        )
        .route(
            "/api/callers/{number}",
            axum::routing::delete(memory::erase),
        )
        .route("/api/blacklist", get(blacklist::list))
        .route(
            "/api/blacklist/{number}",
            axum::routing::delete(blacklist::remove),
        )
        .route(
            "/api/lists/{name}/contacts",
            post(campaigns::import).layer(DefaultBodyLimit::max(campaigns::MAX_LIST)),
        )
        .route("/api/campaigns", get(campaigns::list))
        .route("/api/campaigns/{name}", get(campaigns::show))
        .route("/api/campaigns/{name}/status", post(campaigns::set_status))
        .route("/api/calls", get(calls::list))
        .route("/api/calls/{id}", get(calls::show))
        .route("/api/calls/{id}/recording", get(calls::recording))
        .route_layer(middleware::from_fn_with_state(state, access::authorize))
}

/// Alive: the process answers. Says nothing about dependencies (that is `/readyz`).
async fn healthz() -> impl IntoResponse {
    count("healthz", 200);
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Ready to take calls: the database answers and the models checked out. The reasons are shown
/// to this box and to `http.monitoring_allow` only; anyone else gets the verdict.
async fn readyz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let database = state.store.ping().await;
    let ready = database.is_ok() && state.models.is_ok();
    metrics::gauge!("switchboard_ready").set(if ready { 1.0 } else { 0.0 });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    count("readyz", status.as_u16());
    fn show<T, E: std::fmt::Display>(r: &Result<T, E>) -> String {
        r.as_ref()
            .map_or_else(|e| e.to_string(), |_| "ok".to_owned())
    }
    if !state.may_monitor(peer.ip()) {
        return (status, Json(json!({ "ready": ready }))).into_response();
    }
    let body = json!({
        "ready": ready,
        "checks": {
            "database": show(&database),
            "models": show(&state.models),
        },
    });
    (status, Json(body)).into_response()
}

async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !state.may_monitor(peer.ip()) {
        count("metrics", 403);
        let error = "metrics are served to this box and http.monitoring_allow only";
        return (StatusCode::FORBIDDEN, Json(json!({ "error": error }))).into_response();
    }
    count("metrics", 200);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Counts a request by route pattern (never the concrete path: it may hold a phone number).
fn count(route: &'static str, status: u16) {
    metrics::counter!("switchboard_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
}
