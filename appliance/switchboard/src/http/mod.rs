//! The HTTP listener: health, readiness and metrics (the admin API and UI join it later).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::Arc;
use switchboard_store::Store;

/// What the HTTP handlers reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// `Ok` when the installed model set checked out at start, else why not.
    pub models: Arc<Result<(), String>>,
    pub metrics: PrometheusHandle,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Alive: the process answers. Says nothing about dependencies (that is `/readyz`).
async fn healthz() -> impl IntoResponse {
    count("healthz", 200);
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Ready to take calls: the database answers and the models checked out.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.ping().await.map_err(|e| e.to_string());
    let ready = database.is_ok() && state.models.is_ok();
    metrics::gauge!("switchboard_ready").set(if ready { 1.0 } else { 0.0 });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    count("readyz", status.as_u16());
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "ready": ready,
        "checks": { "database": show(&database), "models": show(&state.models) },
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
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

fn count(route: &'static str, status: u16) {
    metrics::counter!("switchboard_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
}
