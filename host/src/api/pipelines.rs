//! `GET /pipelines`, `GET /pipelines/{name}`, and the unauthenticated
//! operations endpoints: `/metrics`, `/healthz`, `/readyz`.

use super::auth::Tenant;
use super::error::ApiError;
use super::model::{
    DeadLetterPage, DeadLetterReasons, DeadLetterView, LiveView, PipelineView, PluginView, ReasonCount, ReconcileInput, ReplayView, SwapPage, TokenView,
};
use super::{AppState, PipelineHandle};
use crate::state::Page;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::sync::Arc;

fn view(state: &AppState, h: &PipelineHandle) -> PipelineView {
    let name = &h.pipeline.name;
    let live = {
        let slot = h.running();
        slot.as_ref().map(|(id, runner)| {
            let (c, s) = (&runner.counters, &runner.client.stats);
            let progress = runner.progress();
            let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            LiveView {
                command: id.to_string(),
                window: runner.current_window.lock().map(|w| w.clone()).unwrap_or_default(),
                windows_done: progress.windows_done,
                windows_planned: progress.windows_planned,
                eta_seconds: progress.eta.map(|d| d.as_secs()),
                pages: get(&s.pages),
                requests: get(&s.requests),
                fetched: get(&c.fetched),
                rate_limit_waits: get(&s.rate_waits),
                retries: s.total_retries(),
                task_count: crate::commands::live_count(c),
            }
        })
    };
    // In a cluster the queue is shared and the run may be on another worker.
    let (running, queued) = state.engine.queue_of(h);
    PipelineView {
        name: name.clone(),
        tenant: h.tenant.clone(),
        every_seconds: h.every.map(|d| d.as_secs()),
        checkpoint: h.state.checkpoint(name).ok().flatten().map(crate::time::rfc3339),
        plugin: h.registry.live(name).map(|p| PluginView { name: p.info.name.clone(), version: p.info.version.clone(), digest: p.digest.clone() }),
        dead_letters: h.state.dead_letter_count(name).unwrap_or(0),
        running,
        live,
        queued,
        last_runs: h.state.runs(name, 5).unwrap_or_default().into_iter().filter_map(|r| serde_json::to_value(r).ok()).collect(),
        token: state.engine.token_of(h).map(token_view),
        next_run_at: h.next_run().map(crate::time::rfc3339),
        last_reconcile: h.reconciled(),
        reconciling_since: h.reconciling().map(crate::time::rfc3339),
    }
}

fn token_view(t: crate::credentials::TokenRecord) -> TokenView {
    let expires = t.expires_at.as_deref().and_then(|e| e.parse::<jiff::Timestamp>().ok());
    let seconds_left = t.seconds_left();
    TokenView {
        key: t.key,
        state: t.state.as_str().into(),
        expires_at: expires.map(crate::time::rfc3339),
        seconds_left,
        obtained: t.obtained.as_str().into(),
        last_answer: t.answer,
    }
}

/// `GET /pipelines`: the tenant's pipelines.
#[utoipa::path(get, path = "/pipelines", responses((status = 200, body = Vec<PipelineView>), (status = 401, body = super::model::ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>) -> Json<Vec<PipelineView>> {
    Json(state.engine.pipelines_of(&tenant.0).into_iter().map(|h| view(&state, h)).collect())
}

/// `GET /pipelines/{name}`.
#[utoipa::path(get, path = "/pipelines/{name}", params(("name" = String, Path)),
    responses((status = 200, body = PipelineView), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<Json<PipelineView>, ApiError> {
    Ok(Json(view(&state, state.pipeline_for(&name, &tenant)?)))
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // What is read at the scrape, per pipeline and tenant: how far behind the
    // checkpoint is, how many commands wait, when the token expires.
    for h in state.engine.pipelines_of_all() {
        let labels = [("pipeline", h.pipeline().name.clone()), ("tenant", h.tenant().to_string())];
        if let Ok(Some(c)) = h.store().checkpoint(&h.pipeline().name) {
            metrics::gauge!("ferry_checkpoint_lag_seconds", &labels).set(jiff::Timestamp::now().duration_since(c).as_secs_f64());
        }
        metrics::gauge!("ferry_queue_length", &labels).set(state.engine.queue_of(h).1 as f64);
        if let Some(t) = state.engine.token_of(h) {
            t.seconds_left();
        }
    }
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

/// `GET /pipelines/{name}/dead-letters`: one page, oldest first.
#[utoipa::path(get, path = "/pipelines/{name}/dead-letters",
    params(("name" = String, Path), ("limit" = Option<u64>, Query, description = "page size, 1 to 500 (default 50)"), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = DeadLetterPage), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let q = super::query::parse_query(raw.as_deref())?;
    let h = state.pipeline_for(&name, &tenant)?;
    let page = Page { offset: q.offset, limit: q.limit };
    let (dead, total) = (h.state.dead_letters_page(&name, page)?, h.state.dead_letter_count(&name)?);
    let items = dead
        .into_iter()
        .map(|d| DeadLetterView { id: d.id, record_id: d.key.id, version: d.key.version, reason: d.reason, plugin: d.plugin, raw: d.raw, created: d.created })
        .collect();
    Ok(Json(DeadLetterPage { items, total, limit: q.limit, offset: q.offset }))
}

/// `POST /pipelines/{name}/dead-letters/replay`: maps the dead letters again
/// with the live plugin and writes them; 409 while a sync runs.
#[utoipa::path(post, path = "/pipelines/{name}/dead-letters/replay", params(("name" = String, Path)),
    responses((status = 200, body = ReplayView), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody), (status = 502, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    let r = state.engine.replay(&tenant.0, &name).await?;
    Ok(Json(ReplayView { total: r.total as u64, resolved: r.resolved as u64, still_failing: r.still_failing as u64, refused_again: r.refused_again }))
}

/// `GET /pipelines/{name}/dead-letters/reasons`: dead letters grouped by
/// reason, the 50 most frequent.
#[utoipa::path(get, path = "/pipelines/{name}/dead-letters/reasons", params(("name" = String, Path)),
    responses((status = 200, body = DeadLetterReasons), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letter_reasons(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
) -> Result<Json<DeadLetterReasons>, ApiError> {
    let h = state.pipeline_for(&name, &tenant)?;
    let reasons = h.state.dead_letter_reasons(&name, 50)?.into_iter().map(|(reason, count)| ReasonCount { reason, count }).collect();
    Ok(Json(DeadLetterReasons { reasons, total: h.state.dead_letter_count(&name)? }))
}

/// `POST /pipelines/{name}/reconcile`: checks a closed range against the
/// source's count (id by id where they differ, or against the target's
/// lookup) and with `deliver` delivers what is missing; 409 while a sync
/// (or another reconciliation) runs. It waits for the source's rate budget,
/// so it may outlast `waitSeconds`: then 202, and it goes on.
#[utoipa::path(post, path = "/pipelines/{name}/reconcile", params(("name" = String, Path)), request_body = ReconcileInput,
    responses((status = 200, body = crate::pipeline::reconcile::ReconcileReport), (status = 202, body = super::model::ReconcileRunning), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody), (status = 502, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let input: ReconcileInput = if body.is_empty() { ReconcileInput::default() } else { super::error::parse_body(&body)? };
    let at = |key: &str, v: &Option<String>| v.as_deref().map(crate::time::parse_or_ago).transpose().map_err(|e| ApiError::bad(format!("{key}: {e}")));
    let (since, until) = (at("since", &input.since)?, at("until", &input.until)?);
    crate::time::check_range(since, until).map_err(ApiError::bad)?;
    let wait = match input.wait_seconds {
        Some(s) if s > 300 => return Err(ApiError::bad(format!("waitSeconds: expected 0 to 300, got {s}"))),
        Some(s) => std::time::Duration::from_secs(s),
        None => std::time::Duration::from_secs(5),
    };
    Ok(match state.engine.reconcile(&tenant.0, &name, since, until, input.deliver, wait).await? {
        crate::commands::Reconciling::Done(report) => Json(report).into_response(),
        crate::commands::Reconciling::Running(began) => {
            let body = super::model::ReconcileRunning { pipeline: name, started_at: crate::time::rfc3339(began) };
            (axum::http::StatusCode::ACCEPTED, Json(body)).into_response()
        }
    })
}

/// `GET /pipelines/{name}/plugin-history`: every swap attempt, oldest
/// first, one page.
#[utoipa::path(get, path = "/pipelines/{name}/plugin-history",
    params(("name" = String, Path), ("limit" = Option<u64>, Query, description = "page size, 1 to 500 (default 50)"), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = SwapPage), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn plugin_history(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(name): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<SwapPage>, ApiError> {
    let q = super::query::parse_query(raw.as_deref())?;
    let h = state.pipeline_for(&name, &tenant)?;
    let page = Page { offset: q.offset, limit: q.limit };
    let (items, total) = (h.state.swaps_page(&name, page)?, h.state.swap_count(&name)?);
    Ok(Json(SwapPage { items, total, limit: q.limit, offset: q.offset }))
}
