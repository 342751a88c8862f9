//! `ferry serve`: a Command-pattern control API (seed 001) over the
//! pipelines of a serve file: sync commands queued per pipeline, plugin
//! commands that hot-swap through the registry's checks, schedules,
//! Prometheus metrics, health, tenant auth and an OpenAPI document.
//!
//! The server takes its listener and a shutdown future, so tests bind
//! `127.0.0.1:0`.

mod auth;
mod cluster;
pub mod config;
mod dashboard;
mod error;
mod history;
pub mod listen;
pub mod model;
mod openapi;
mod pipelines;
mod plugins;
pub mod status;
mod sync;

pub use config::ServeConfig;

use crate::pipeline::Pipeline;
use crate::plugin::{PluginEngine, PluginWatcher, Registry};
use crate::state::StateStore;
use axum::Router;
use axum::routing::{get, put};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// One served pipeline: its plugin registry, state, queue and runner slot.
pub struct PipelineHandle {
    pub(crate) pipeline: Pipeline,
    pub(crate) tenant: String,
    pub(crate) every: Option<Duration>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) queue: Mutex<VecDeque<uuid::Uuid>>,
    pub(crate) wake: Notify,
    pub(crate) running: Mutex<Option<(uuid::Uuid, Arc<crate::pipeline::Runner>)>>,
    _watcher: Option<PluginWatcher>,
    /// This process's writer lock on the pipeline's SQLite state (a cluster
    /// guards its PostgreSQL state by lease).
    _writer: Option<crate::state::WriterLock>,
}

/// A command's key: its tenant and the UUID the tenant chose (two tenants
/// may choose the same one).
pub(crate) type CommandKey = (String, uuid::Uuid);

/// The key of `tenant`'s command `id`.
pub(crate) fn command_key(tenant: &str, id: uuid::Uuid) -> CommandKey {
    (tenant.to_string(), id)
}

/// Everything the handlers share.
pub struct AppState {
    pub(crate) pipelines: HashMap<String, Arc<PipelineHandle>>,
    pub(crate) tokens: HashMap<String, String>,
    /// Sync commands by (tenant, id): ids are scoped per tenant.
    pub(crate) syncs: Mutex<HashMap<CommandKey, sync::SyncCommand>>,
    /// Plugin commands by (tenant, id).
    pub(crate) plugins: Mutex<HashMap<CommandKey, plugins::PluginCommand>>,
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) ready: AtomicBool,
    pub(crate) history: Duration,
    /// The listener's bounds.
    pub(crate) listen: listen::ListenLimits,
    /// Cluster mode: the shared database's leases and queue.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Wakes the cluster dispatcher (a command was accepted here).
    pub(crate) dispatch: Notify,
}

impl AppState {
    /// The pipeline if the tenant may act on it; another tenant's answers
    /// 404 like an unknown one, so a tenant cannot learn what exists.
    pub(crate) fn pipeline_for(&self, name: &str, tenant: &auth::Tenant) -> Result<&Arc<PipelineHandle>, error::ApiError> {
        self.pipelines.get(name).filter(|p| p.tenant == tenant.0).ok_or_else(|| error::ApiError::not_found(format!("no pipeline named `{name}`")))
    }
}

/// The metrics recorder, installed once per process.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("metrics recorder not installed: {e}");
                None
            }
        })
        .clone()
}

/// Builds the shared state: opens every pipeline's state, loads its plugin
/// (through the registry's checks) and watches the plugin file.
pub fn state(config: &ServeConfig, engine: Arc<PluginEngine>, stop: watch::Receiver<bool>) -> anyhow::Result<Arc<AppState>> {
    let cluster = match &config.cluster {
        Some(c) => Some(crate::cluster::Cluster::join(crate::state::PgStore::connect(&c.database)?, c.worker.clone(), c.lease)),
        None => None,
    };
    let mut pipelines = HashMap::new();
    for served in &config.pipelines {
        let p = &served.pipeline;
        let writer = p.state.lock_writer(&p.name, "ferry serve")?;
        let state = p.state.open()?;
        let registry = Arc::new(Registry::new(engine.clone()));
        registry.set_recorder(crate::pipeline::history::store_recorder(state.clone()));
        registry.register(&p.name, p.mapping.options.clone(), p.mapping.limits.clone(), p.mapping.examples.clone());
        // In a cluster, the version live on the other workers wins over the file.
        match cluster.as_ref().and_then(|_| cluster::live_version(state.as_ref(), &p.name)) {
            Some((digest, bytes)) => registry.install_bytes(&p.name, &bytes, &format!("cluster (live version sha256:{digest})"))?,
            None => registry.install_file(&p.name, &p.mapping.plugin)?,
        };
        let watcher = match PluginWatcher::watch(registry.clone(), &p.name, &p.mapping.plugin) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(pipeline = %p.name, "cannot watch the plugin file: {e}");
                None
            }
        };
        let handle = PipelineHandle {
            pipeline: p.clone(),
            tenant: p.tenant.clone().unwrap_or_else(|| config::DEFAULT_TENANT.to_string()),
            every: served.every,
            registry,
            state,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            running: Mutex::new(None),
            _watcher: watcher,
            _writer: writer,
        };
        pipelines.insert(p.name.clone(), Arc::new(handle));
    }
    let state = Arc::new(AppState {
        pipelines,
        tokens: config.tokens.iter().cloned().collect(),
        syncs: Mutex::new(HashMap::new()),
        plugins: Mutex::new(HashMap::new()),
        metrics: metrics_handle(),
        stop,
        ready: AtomicBool::new(false),
        history: config.history,
        listen: config.api,
        cluster,
        dispatch: Notify::new(),
    });
    history::prune(&state);
    sync::restore(&state);
    plugins::restore(&state);
    Ok(state)
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
    let mut workers = tokio::task::JoinSet::new();
    match &state.cluster {
        Some(c) => {
            workers.spawn(sync::dispatch(state.clone(), c.clone(), listener.local_addr()?.to_string()));
        }
        None => {
            for handle in state.pipelines.values() {
                workers.spawn(sync::worker(state.clone(), handle.clone()));
            }
        }
    }
    for handle in state.pipelines.values() {
        if let Some(every) = handle.every {
            workers.spawn(sync::schedule(state.clone(), handle.clone(), every));
        }
    }
    {
        let (state, mut stop) = (state.clone(), state.stop.clone());
        workers.spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = hourly.tick() => history::prune(&state),
                    _ = stop.changed() => return,
                }
            }
        });
    }
    state.ready.store(true, Ordering::SeqCst);
    let app = router(state.clone());
    let stop_rx = state.stop.clone();
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
