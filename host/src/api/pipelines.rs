//! `GET /pipelines`, `GET /pipelines/{name}`, and the unauthenticated
//! operations endpoints: `/metrics`, `/healthz`, `/readyz`.

use super::auth::Tenant;
use super::error::ApiError;
use super::model::{PipelineView, PluginView};
use super::{AppState, PipelineHandle};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::sync::Arc;

fn view(h: &PipelineHandle) -> PipelineView {
    let name = &h.pipeline.name;
    PipelineView {
        name: name.clone(),
        tenant: h.tenant.clone(),
        every_seconds: h.every.map(|d| d.as_secs()),
        checkpoint: h.state.checkpoint(name).ok().flatten().map(crate::time::format),
        plugin: h.registry.live(name).map(|p| PluginView { name: p.info.name.clone(), version: p.info.version.clone(), digest: p.digest.clone() }),
        dead_letters: h.state.dead_letters(name).map(|d| d.len() as u64).unwrap_or(0),
        running: h.running.lock().expect("running lock").as_ref().map(|r| r.0.to_string()),
        queued: h.queue.lock().expect("queue lock").len() as u64,
        last_runs: h.state.runs(name, 5).unwrap_or_default().into_iter().filter_map(|r| serde_json::to_value(r).ok()).collect(),
    }
}

/// `GET /pipelines`: the tenant's pipelines.
#[utoipa::path(get, path = "/pipelines", responses((status = 200, body = Vec<PipelineView>), (status = 401, body = super::model::ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>) -> Json<Vec<PipelineView>> {
    let mut out: Vec<PipelineView> = state.pipelines.values().filter(|h| h.tenant == tenant.0).map(|h| view(h)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Json(out)
}

/// `GET /pipelines/{name}`.
#[utoipa::path(get, path = "/pipelines/{name}", params(("name" = String, Path)),
    responses((status = 200, body = PipelineView), (status = 401, body = super::model::ErrorBody), (status = 403, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn one(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(name): Path<String>) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(view(state.pipeline_for(&name, &tenant)?)))
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let text = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive", content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: pipelines loaded and workers started.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready", content_type = "text/plain"), (status = 503, description = "not ready", content_type = "text/plain")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.ready.load(std::sync::atomic::Ordering::SeqCst) { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}
