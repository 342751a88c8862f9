//! `ferry serve`'s HTTP layer: the Command-pattern control API (seed 001)
//! over the pipelines of a serve file. It parses requests, resolves the
//! bearer token to a tenant and calls the command engine
//! ([`crate::commands`]), which owns the commands, their queue, schedules
//! and execution; beside that it serves the pipelines' views, Prometheus
//! metrics, health, the dashboard and an OpenAPI document.
//!
//! The server takes its listener and a shutdown future, so tests bind
//! `127.0.0.1:0`.

mod auth;
mod cluster;
pub mod config;
mod dashboard;
mod error;
pub mod listen;
pub mod model;
mod openapi;
mod pipelines;
mod plugins;
mod query;
mod sync;

pub use config::ServeConfig;

use crate::commands::{Engine, PipelineHandle};
use crate::plugin::PluginEngine;
use axum::Router;
use axum::routing::{get, put};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Everything the handlers share: the command engine, and what only the
/// HTTP layer needs (tokens, metrics, readiness, the listener's bounds).
pub struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) tokens: HashMap<String, String>,
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub(crate) ready: AtomicBool,
    /// The listener's bounds.
    pub(crate) listen: listen::ListenLimits,
}

impl AppState {
    /// The pipeline if the tenant may act on it; another tenant's answers
    /// 404 like an unknown one, so a tenant cannot learn what exists.
    pub(crate) fn pipeline_for(&self, name: &str, tenant: &auth::Tenant) -> Result<&Arc<PipelineHandle>, error::ApiError> {
        Ok(self.engine.pipeline_for(name, &tenant.0)?)
    }
}

/// Histogram buckets in seconds, for every measured duration (a request
/// of milliseconds up to a run of an hour): real histograms, so quantiles
/// are computed where the metrics are read, not lost as zeros.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The metrics recorder, installed once per process.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(BUCKETS).and_then(|b| b.install_recorder()) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("metrics recorder not installed: {e}");
                None
            }
        })
        .clone()
}

/// Builds the shared state: the command engine over the serve file's
/// pipelines (see [`Engine::open`]).
pub fn state(config: &ServeConfig, plugins: Arc<PluginEngine>, stop: watch::Receiver<bool>) -> anyhow::Result<Arc<AppState>> {
    crate::state::set_reconnect_grace(config.reconnect_grace);
    let alerts = Arc::new(crate::alerts::Alerts::new(config.alerts.clone(), config.alert_check));
    let engine = Engine::open(&config.pipelines, config.cluster.as_ref(), config.history, plugins, alerts, stop)?;
    Ok(Arc::new(AppState {
        engine,
        tokens: config.tokens.iter().cloned().collect(),
        metrics: metrics_handle(),
        ready: AtomicBool::new(false),
        listen: config.api,
    }))
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/sync-commands", axum::routing::post(sync::post).get(sync::list))
        .route("/sync-commands/{id}", put(sync::put).get(sync::get).delete(sync::cancel))
        .route("/sync-commands/{id}/tasks", get(sync::tasks))
        .route("/sync-commands/{id}/records", get(sync::records))
        .route("/plugin-commands", get(plugins::list))
        .route("/plugin-commands/{id}", put(plugins::put).get(plugins::get))
        .route("/plugin-commands/{id}/undo", axum::routing::post(plugins::undo))
        .route("/pipelines", get(pipelines::list))
        .route("/pipelines/{name}", get(pipelines::one))
        .route("/pipelines/{name}/dead-letters", get(pipelines::dead_letters))
        .route("/pipelines/{name}/dead-letters/replay", axum::routing::post(pipelines::replay))
        .route("/pipelines/{name}/dead-letters/reasons", get(pipelines::dead_letter_reasons))
        .route("/pipelines/{name}/reconcile", axum::routing::post(pipelines::reconcile))
        .route("/pipelines/{name}/plugin-history", get(pipelines::plugin_history))
        .route("/cluster", get(cluster::view))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_tenant));
    Router::new()
        .merge(api)
        .route("/", get(dashboard::page))
        .route("/metrics", get(pipelines::metrics))
        .route("/healthz", get(pipelines::healthz))
        .route("/readyz", get(pipelines::readyz))
        .route("/openapi.json", get(openapi::document))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

/// Serves until `shutdown` resolves; then stops the runners cleanly
/// (in-flight batches finish or stay in the outbox).
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut workers = state.engine.start(&listener.local_addr()?.to_string());
    state.ready.store(true, Ordering::SeqCst);
    let app = router(state.clone());
    let stop_rx = state.engine.stop.clone();
    listen::serve(listener, app, state.listen, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await?;
    state.ready.store(false, Ordering::SeqCst);
    drop(stop_rx);
    let grace = state.listen.shutdown_grace;
    if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(
            "syncs still running {} after the stop; ending them (what they had not confirmed stays in the outbox)",
            humantime::format_duration(grace)
        );
        workers.abort_all();
    }
    Ok(())
}
