//! The command engine: seed 001's Command pattern as Ferry's own control
//! plane. A command is an object with a client-chosen UUID (per tenant), a
//! typed state machine ([`status`]), a history in its pipeline's state
//! store, and an executor: sync commands queue per pipeline and run one at
//! a time; plugin commands hot-swap through the registry's checks and can
//! be undone.
//!
//! One engine, two modes behind the same methods: **in process** (each
//! pipeline's queue in memory, its commands mirrored to the store) and
//! **cluster** (the shared `commands` table is the queue, a pipeline's
//! commands run on the worker that holds its lease, and every write a run
//! makes is fenced by that lease; see [`crate::cluster`]). The HTTP layer
//! (`api/`) parses, authorizes and calls these methods; it keeps no
//! command state of its own.

mod alerting;
mod error;
mod follow;
pub mod history;
pub mod model;
mod plugin;
mod reconcile;
pub mod status;
mod sync;
mod tokens;

pub use error::CommandError;
pub use follow::live_version;
pub use history::ListQuery;
pub use reconcile::{ReconcileSchedule, Reconciling};
pub use sync::{Accepted, live_count};

use crate::pipeline::{Pipeline, ReplayFilter, Runner};
use crate::plugin::{PluginEngine, PluginWatcher, Registry};
use crate::state::StateStore;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    pub(crate) running: Mutex<Option<(uuid::Uuid, Arc<Runner>)>>,
    /// Held by whatever writes the pipeline's data in this process (a sync
    /// or a dead-letter replay), so two never run side by side.
    pub(crate) slot: tokio::sync::Mutex<()>,
    /// Its scheduled reconciliation, and the last report.
    pub(crate) reconcile: Option<ReconcileSchedule>,
    pub(crate) reconciled: Mutex<Option<crate::pipeline::reconcile::ReconcileReport>>,
    /// When the reconciliation running now began.
    pub(crate) reconciling: Mutex<Option<jiff::Timestamp>>,
    /// When the schedule next queues a sync.
    pub(crate) next_run: Mutex<Option<jiff::Timestamp>>,
    _watcher: Option<PluginWatcher>,
    /// This process's writer lock on the pipeline's SQLite state (a cluster
    /// guards its PostgreSQL state by lease).
    _writer: Option<crate::state::WriterLock>,
}

impl PipelineHandle {
    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The tenant it belongs to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Its schedule.
    pub fn every(&self) -> Option<Duration> {
        self.every
    }

    /// Its plugin registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Its state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// How far behind now the checkpoint is, in whole seconds (none before the first).
    pub fn checkpoint_lag(&self) -> Result<Option<Duration>, crate::state::StateError> {
        let checkpoint = self.state.checkpoint(&self.pipeline.name)?;
        Ok(checkpoint.map(|c| Duration::from_secs(jiff::Timestamp::now().duration_since(c).as_secs().max(0) as u64)))
    }

    /// The last reconciliation's report.
    pub fn reconciled(&self) -> Option<crate::pipeline::reconcile::ReconcileReport> {
        self.reconciled.lock().expect("reconciled lock").clone()
    }

    /// When the reconciliation running now began (none when none runs).
    pub fn reconciling(&self) -> Option<jiff::Timestamp> {
        *self.reconciling.lock().expect("reconciling lock")
    }

    /// When the schedule next queues a sync (none without a schedule).
    pub fn next_run(&self) -> Option<jiff::Timestamp> {
        *self.next_run.lock().expect("next run lock")
    }

    /// The sync running here now, with its runner (for live progress).
    pub fn running(&self) -> Option<(uuid::Uuid, Arc<Runner>)> {
        self.running.lock().expect("running lock").clone()
    }
}

/// A command's key: its tenant and the UUID the tenant chose (two tenants
/// may choose the same one).
pub(crate) type CommandKey = (String, uuid::Uuid);

/// The key of `tenant`'s command `id`.
pub(crate) fn command_key(tenant: &str, id: uuid::Uuid) -> CommandKey {
    (tenant.to_string(), id)
}

/// One pipeline to serve.
#[derive(Debug, Clone)]
pub struct Served {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Its schedule.
    pub every: Option<Duration>,
    /// Its scheduled reconciliation.
    pub reconcile: Option<ReconcileSchedule>,
}

/// Cluster settings, resolved.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The shared database.
    pub database: String,
    /// This worker's id.
    pub worker: String,
    /// Lease time.
    pub lease: Duration,
}

/// The tenant of pipelines that name none.
pub const DEFAULT_TENANT: &str = "default";

/// The engine: the served pipelines and their commands.
pub struct Engine {
    pub(crate) pipelines: HashMap<String, Arc<PipelineHandle>>,
    /// Sync commands by (tenant, id): ids are scoped per tenant. In a
    /// cluster only the ones running here (the shared table has them all).
    pub(crate) syncs: Mutex<HashMap<CommandKey, sync::SyncCommand>>,
    /// Plugin commands by (tenant, id).
    pub(crate) plugins: Mutex<HashMap<CommandKey, plugin::PluginCommand>>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) history: Duration,
    /// Cluster mode: the shared database's leases and queue.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Wakes the cluster dispatcher (a command was accepted here).
    pub(crate) dispatch: Notify,
    /// The serve file's `[[alerts]]`, told of runs, swaps and lag.
    pub(crate) alerts: Arc<crate::alerts::Alerts>,
}

impl Engine {
    /// Opens every pipeline's state, loads its plugin (through the
    /// registry's checks; in a cluster, the version live on the other
    /// workers wins over the file), watches the plugin file, and loads the
    /// stored commands (queued ones queue again; ones running when the
    /// process stopped are marked interrupted).
    pub fn open(
        served: &[Served],
        cluster: Option<&ClusterConfig>,
        history: Duration,
        plugins: Arc<PluginEngine>,
        alerts: Arc<crate::alerts::Alerts>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Engine>> {
        let cluster = match cluster {
            Some(c) => Some(crate::cluster::Cluster::join(crate::state::PgStore::connect(&c.database)?, c.worker.clone(), c.lease)),
            None => None,
        };
        let mut pipelines = HashMap::new();
        for s in served {
            let p = &s.pipeline;
            p.say_warnings();
            let writer = p.state.lock_writer(&p.name, "ferry serve")?;
            let state = p.state.open()?;
            let registry = Arc::new(Registry::new(plugins.clone()));
            let tenant = p.tenant.clone().unwrap_or_else(|| DEFAULT_TENANT.to_string());
            registry.set_recorder(alerting::recorder(crate::pipeline::history::store_recorder(state.clone()), alerts.clone(), tenant.clone()));
            registry.register(&p.name, p.mapping.options.clone(), p.mapping.limits.clone(), p.mapping.examples.clone());
            match cluster.as_ref().and_then(|_| live_version(state.as_ref(), &p.name)) {
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
                tenant,
                every: s.every,
                registry,
                state,
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                running: Mutex::new(None),
                slot: tokio::sync::Mutex::new(()),
                reconcile: s.reconcile,
                reconciled: Mutex::new(None),
                reconciling: Mutex::new(None),
                next_run: Mutex::new(None),
                _watcher: watcher,
                _writer: writer,
            };
            // Opened one after the other, each gives its memory back before the next.
            handle.state.rest();
            pipelines.insert(p.name.clone(), Arc::new(handle));
        }
        let engine = Arc::new(Engine {
            pipelines,
            syncs: Mutex::new(HashMap::new()),
            plugins: Mutex::new(HashMap::new()),
            stop,
            history,
            cluster,
            dispatch: Notify::new(),
            alerts,
        });
        history::prune(&engine);
        sync::restore(&engine);
        plugin::restore(&engine);
        Ok(engine)
    }

    /// Starts the executors: in process, a worker per pipeline; in a
    /// cluster, the dispatcher (which announces `address` in its
    /// heartbeat); the schedules, and the hourly history pruning. They end
    /// when the engine's stop is set.
    pub fn start(self: &Arc<Self>, address: &str) -> tokio::task::JoinSet<()> {
        let mut workers = tokio::task::JoinSet::new();
        match &self.cluster {
            Some(c) => {
                workers.spawn(sync::dispatch(self.clone(), c.clone(), address.to_string()));
            }
            None => {
                for handle in self.pipelines.values() {
                    workers.spawn(sync::worker(self.clone(), handle.clone()));
                }
            }
        }
        for handle in self.pipelines.values() {
            if let Some(every) = handle.every {
                workers.spawn(sync::schedule(self.clone(), handle.clone(), every));
            }
            if let Some(plan) = handle.reconcile {
                workers.spawn(reconcile::schedule(self.clone(), handle.clone(), plan));
            }
            if let Some(remedy) = handle.pipeline.source.request.omission_remedy {
                workers.spawn(sync::remedy(self.clone(), handle.clone(), remedy));
            }
            if handle.pipeline.source.client.tokens.is_some() {
                workers.spawn(tokens::keep_fresh(self.clone(), handle.clone()));
            }
        }
        if self.alerts.any() {
            self.alerts.start(&mut workers, self.stop.clone());
            workers.spawn(alerting::watch(self.clone()));
        }
        let (engine, mut stop) = (self.clone(), self.stop.clone());
        workers.spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = hourly.tick() => history::prune(&engine),
                    _ = stop.changed() => return,
                }
            }
        });
        workers
    }

    /// The pipeline if `tenant` may act on it; another tenant's is "not
    /// found" like an unknown one, so a tenant cannot learn what exists.
    pub fn pipeline_for(&self, name: &str, tenant: &str) -> Result<&Arc<PipelineHandle>, CommandError> {
        self.pipelines.get(name).filter(|p| p.tenant == tenant).ok_or_else(|| CommandError::NotFound(format!("no pipeline named `{name}`")))
    }

    /// The tenant's pipelines, by name.
    pub fn pipelines_of(&self, tenant: &str) -> Vec<&Arc<PipelineHandle>> {
        let mut out: Vec<&Arc<PipelineHandle>> = self.pipelines.values().filter(|h| h.tenant == tenant).collect();
        out.sort_by(|a, b| a.pipeline.name.cmp(&b.pipeline.name));
        out
    }

    /// Every served pipeline, by name (for what only the operator sees:
    /// metrics).
    pub fn pipelines_of_all(&self) -> Vec<&Arc<PipelineHandle>> {
        let mut out: Vec<&Arc<PipelineHandle>> = self.pipelines.values().collect();
        out.sort_by(|a, b| a.pipeline.name.cmp(&b.pipeline.name));
        out
    }

    /// The pipeline's sync running anywhere (here, or on another worker of
    /// the cluster) and how many wait in its queue.
    pub fn queue_of(&self, h: &PipelineHandle) -> (Option<String>, u64) {
        let here = h.running().map(|(id, _)| id.to_string());
        match &self.cluster {
            Some(_) => {
                let (elsewhere, queued) = sync::shared_queue(h);
                (here.or(elsewhere), queued)
            }
            None => (here, h.queue.lock().expect("queue lock").len() as u64),
        }
    }

    /// The pipeline's stored token, when it keeps one (`source.refresh_token`).
    pub fn token_of(&self, h: &PipelineHandle) -> Option<crate::credentials::TokenRecord> {
        let client = &h.pipeline.source.client;
        let settings = client.tokens.as_ref()?;
        let key = crate::source::jushuitan::token::token_key(client, settings);
        match h.state.token(&key) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(pipeline = %h.pipeline.name, "cannot read the stored token: {e}");
                None
            }
        }
    }

    /// The cluster this engine is a worker of, if any.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// Maps the pipeline's dead letters again with the live plugin and
    /// writes them, as the only writer of the pipeline: refused while a
    /// sync of it runs here or (in a cluster) while another holds its lease.
    pub async fn replay(&self, tenant: &str, name: &str) -> Result<crate::pipeline::replay::ReplayReport, CommandError> {
        let h = self.pipeline_for(name, tenant)?.clone();
        let _writer = self.sole_writer(&h)?;
        let runner = Runner::from_parts(h.pipeline.clone(), h.registry.clone(), h.state.clone(), false)
            .map_err(|e| CommandError::Internal(format!("cannot build the run: {e}")))?;
        runner.replay_dead_letters(&ReplayFilter::default()).await.map_err(|e| CommandError::Upstream(format!("replay stopped: {e}")))
    }
}

impl Engine {
    /// Makes this the pipeline's only writer for a moment (a replay, a
    /// reconciliation): its slot here, and in a cluster its lease; refused
    /// while a sync of it runs.
    fn sole_writer<'a>(&self, h: &'a PipelineHandle) -> Result<(tokio::sync::MutexGuard<'a, ()>, Option<Released>), CommandError> {
        let name = &h.pipeline.name;
        let busy = || CommandError::Conflict(format!("a sync of `{name}` is running; try again when it is done"));
        let slot = h.slot.try_lock().map_err(|_| busy())?;
        let lease = match &self.cluster {
            Some(c) => match c.hold(name)? {
                Ok(()) => Some(Released(c.clone(), name.to_string())),
                Err(_) => return Err(busy()),
            },
            None => None,
        };
        Ok((slot, lease))
    }
}

/// A lease this worker holds for a moment, given back when dropped.
struct Released(Arc<crate::cluster::Cluster>, String);

impl Drop for Released {
    fn drop(&mut self) {
        if let Err(e) = self.0.release(&self.1) {
            tracing::warn!(pipeline = %self.1, "cannot give the lease back (it runs out by itself): {e}");
        }
    }
}
