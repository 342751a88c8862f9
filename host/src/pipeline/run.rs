//! The run loop: resume the outbox, plan windows, then per window
//! fetch → idCheck → plugin → outbox → sink → confirm (`window`), and move
//! the checkpoint only past windows whose every batch, and every batch of
//! every window before, is confirmed.

use super::config::{Pipeline, TargetKind};
use super::summary::{Counters, PluginUsed, RunStatus, Summary};
use crate::plugin::{PluginEngine, PluginError, Registry};
use crate::sink::{CommandSink, HttpSink, JsonlSink, Sink, SinkError};
use crate::source::jushuitan::{JushuitanClient, SourceError, Window, planner};
use crate::state::{OutboxEntry, StateError, StateStore};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use progress::Progress;

mod confirm;
mod map;
mod options;
mod progress;
mod window;

pub use confirm::{confirm, deliver};
pub use options::{DryRunItem, RunOptions, Shown};

macro_rules! run_error_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for RunError {
            fn from(e: $ty) -> Self {
                RunError::$variant(e)
            }
        }
    )*};
}

run_error_from!(Source(SourceError), Sink(SinkError), State(StateError), Plugin(PluginError));

/// Windows read at once: the next one's pages arrive while the last
/// batches of the one before are mapped and sent.
const WINDOWS_AT_ONCE: usize = 2;

/// Why a run stopped early. Each message says its cause itself (no error
/// source chain), so `{e:#}` does not print the cause twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The source failed.
    #[error("source: {0}")]
    Source(SourceError),
    /// Reading a window failed; the checkpoint stays before it.
    #[error("source, window {window}: {cause}; the checkpoint stays before this window")]
    Window {
        /// The window.
        window: String,
        /// Why.
        cause: SourceError,
    },
    /// The target failed; the batch stays in the outbox.
    #[error("target: {0}")]
    Sink(SinkError),
    /// The state store failed.
    #[error("{0}")]
    State(StateError),
    /// The plugin could not be loaded.
    #[error("plugin: {0}")]
    Plugin(PluginError),
    /// An internal task failed.
    #[error("internal: {0}")]
    Task(String),
}

/// Runs one pipeline.
pub struct Runner {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Its plugin registry.
    pub registry: Arc<Registry>,
    /// Its state.
    pub state: Arc<dyn StateStore>,
    sink: Option<Arc<Sink>>,
    /// Its source client.
    pub client: Arc<JushuitanClient>,
    /// Live counters.
    pub counters: Arc<Counters>,
    /// The window being read, for progress displays.
    pub current_window: Arc<Mutex<String>>,
    plugin_used: Mutex<Option<PluginUsed>>,
    /// Where a dry run shows what it would write (none: nowhere).
    pub(crate) shown: Option<Shown>,
    /// A dry run maps the records idCheck would skip too.
    pub(crate) include_synced: bool,
}

enum Flow {
    Done,
    Interrupted,
}

/// Builds the configured sink.
pub fn build_sink(p: &Pipeline) -> Result<Sink, SinkError> {
    let t = &p.target;
    let token = t.token.as_ref().map(|s| s.expose().to_string());
    Ok(match &t.kind {
        TargetKind::Command { base_url, resource } => {
            Sink::Command(CommandSink::new(base_url, resource, token, t.timeout, t.max_attempts, t.completion_timeout)?)
        }
        TargetKind::Http { url } => Sink::Http(HttpSink::new(url, token, t.timeout, t.max_attempts)?),
        TargetKind::Jsonl { path } => Sink::Jsonl(JsonlSink::open(path)?),
    })
}

async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    let Some(rx) = stop else { return std::future::pending().await };
    loop {
        if *rx.borrow() {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn join<T>(r: Result<Result<T, RunError>, tokio::task::JoinError>) -> Result<T, RunError> {
    r.map_err(|e| RunError::Task(e.to_string()))?
}

impl Runner {
    /// Opens the state, loads the plugin through the registry's checks,
    /// builds the sink (none for a dry run) and the source client.
    pub fn new(pipeline: Pipeline, engine: Arc<PluginEngine>, dry_run: bool) -> Result<Self, RunError> {
        let state = pipeline.state.open()?;
        let registry = Arc::new(Registry::new(engine));
        registry.set_recorder(super::history::store_recorder(state.clone()));
        let m = &pipeline.mapping;
        registry.register(&pipeline.name, m.options.clone(), m.limits.clone(), m.examples.clone());
        registry.install_file(&pipeline.name, &m.plugin)?;
        Self::from_parts(pipeline, registry, state, dry_run)
    }

    /// A runner over an existing registry (with the pipeline's plugin live)
    /// and state store, as `ferry serve` keeps them between runs.
    pub fn from_parts(pipeline: Pipeline, registry: Arc<Registry>, state: Arc<dyn StateStore>, dry_run: bool) -> Result<Self, RunError> {
        let sink = if dry_run { None } else { Some(Arc::new(build_sink(&pipeline)?)) };
        let vault: Arc<dyn crate::credentials::TokenVault> = state.clone();
        let client = Arc::new(
            JushuitanClient::new(pipeline.source.client.clone(), state.shared_budget())?.with_budget_memory(state.budget_memory()).with_tokens(vault)?,
        );
        Ok(Runner {
            pipeline,
            registry,
            state,
            sink,
            client,
            counters: Arc::new(Counters::default()),
            current_window: Arc::new(Mutex::new(String::new())),
            plugin_used: Mutex::new(None),
            shown: None,
            include_synced: false,
        })
    }

    /// A dry run maps every record, also those idCheck would skip as
    /// already synced (to preview a changed mapping on real data).
    pub fn including_synced(mut self) -> Self {
        self.include_synced = true;
        self
    }

    /// Shows a dry run's records and dead letters through `shown`.
    pub fn showing(mut self, shown: Shown) -> Self {
        self.shown = Some(shown);
        self
    }

    /// Runs once; never panics on bad input, always returns a summary.
    pub async fn run(&self, mut opts: RunOptions) -> Summary {
        let started = Instant::now();
        *self.counters.started.lock().expect("counters lock") = Some(started);
        let name = self.pipeline.name.clone();
        let run_id = if opts.dry_run { None } else { self.state.start_run(&name, if opts.since.is_some() { "backfill" } else { "run" }).ok() };
        let mut windows = 0u64;
        let result = self.run_inner(&mut opts, &mut windows).await;
        let c = &self.counters;
        let dead = c.failed_mapping.load(Ordering::Relaxed) + c.failed_target.load(Ordering::Relaxed);
        let (status, error) = match &result {
            Ok(_) if opts.dry_run => (RunStatus::DryRun, None),
            Ok(Flow::Done) if dead > 0 => (RunStatus::Partial, None),
            Ok(Flow::Done) => (RunStatus::Ok, None),
            Ok(Flow::Interrupted) => (RunStatus::Interrupted, Some("stopped on request; the next run resumes from the outbox and checkpoint".to_string())),
            Err(e) => (RunStatus::Failed, Some(e.to_string())),
        };
        let summary = self.summary(status, error, windows, started);
        if let Some(id) = run_id
            && let Err(e) = self.state.finish_run(id, status.as_str(), &serde_json::to_value(&summary).unwrap_or(Value::Null))
        {
            tracing::warn!("cannot record the run: {e}");
        }
        summary.log_outcome(self.pipeline.tenant.as_deref());
        summary
    }

    async fn run_inner(&self, opts: &mut RunOptions, windows_total: &mut u64) -> Result<Flow, RunError> {
        let name = &self.pipeline.name;
        if !opts.dry_run {
            let pending = self.state.pending(name)?;
            if !pending.is_empty() {
                tracing::info!(pipeline = %name, commands = pending.len(), "re-sending pending outbox commands with their UUIDs");
                Counters::add(&self.counters.resumed, pending.len() as u64);
                let mut sends = JoinSet::new();
                let sem = Arc::new(Semaphore::new(self.pipeline.target.concurrency));
                for entry in pending {
                    self.spawn_send(&mut sends, &sem, entry).await?;
                }
                while let Some(r) = sends.join_next().await {
                    join(r)?;
                }
            }
        }
        let s = &self.pipeline.source;
        let checkpoint = self.state.checkpoint(name)?;
        self.pipeline.say_if_start_moved(checkpoint, opts.since.is_some());
        let lag = jiff::SignedDuration::try_from(s.lag).unwrap_or_default();
        let windows = match (opts.since, opts.until) {
            (Some(since), until) => planner::split(since, until.unwrap_or_else(|| Timestamp::now() - lag), s.window),
            (None, Some(until)) => planner::incremental(checkpoint, s.start, until + lag, s.lag, s.lookback, s.window),
            (None, None) => planner::incremental(checkpoint, s.start, Timestamp::now(), s.lag, s.lookback, s.window),
        };
        // Windows a process read part way before it stopped are read again
        // from their cursor.
        let saved: Vec<planner::Progress> = if opts.dry_run {
            Vec::new()
        } else {
            self.state
                .window_progress(name)?
                .into_iter()
                .map(|p| planner::Progress { window: Window { begin: p.begin, end: p.end }, cursor: p.cursor })
                .collect()
        };
        let windows = planner::resume(windows, &saved, s.window);
        *windows_total = windows.len() as u64;
        self.counters.windows_planned.store(windows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let sem = Arc::new(Semaphore::new(self.pipeline.target.concurrency));
        let claimed = Mutex::new(HashSet::new());
        let mut planned = windows.into_iter();
        let mut running = FuturesOrdered::new();
        let (mut failure, mut interrupted) = (None, false);
        loop {
            while failure.is_none() && !interrupted && running.len() < WINDOWS_AT_ONCE {
                let Some((w, from_ts)) = planned.next() else { break };
                if from_ts > 0 {
                    tracing::info!(pipeline = %name, window = %w, from_ts, "reading a window again from where the last process staged its rows");
                }
                *self.current_window.lock().expect("window lock") = w.to_string();
                let (dry_run, stop, sem, claimed) = (opts.dry_run, opts.stop.clone(), sem.clone(), &claimed);
                running.push_back(async move { (w, self.window(w, from_ts, dry_run, stop, sem, claimed).await) });
            }
            // Windows finish in order here, so the checkpoint never passes
            // a window that is not wholly confirmed.
            let Some((w, result)) = running.next().await else { break };
            match result {
                Ok(Flow::Done) if failure.is_none() && !interrupted => {
                    if !opts.dry_run && self.state.checkpoint(name)?.is_none_or(|c| c < w.end) {
                        self.state.set_checkpoint(name, w.end)?;
                    }
                    Counters::add(&self.counters.windows_done, 1);
                }
                Ok(Flow::Done) => {}
                Ok(Flow::Interrupted) => interrupted = true,
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None if interrupted => Ok(Flow::Interrupted),
            None => {
                if !opts.dry_run {
                    self.state.set_window_progress(name, None)?;
                }
                Ok(Flow::Done)
            }
        }
    }

    /// The sink (none in a dry run).
    pub fn sink(&self) -> Option<std::sync::Arc<Sink>> {
        self.sink.clone()
    }

    async fn spawn_send(&self, sends: &mut JoinSet<Result<(), RunError>>, sem: &Arc<Semaphore>, entry: OutboxEntry) -> Result<(), RunError> {
        let sink = self.sink.clone().ok_or_else(|| RunError::Task("no sink in a dry run".into()))?;
        let permit = sem.clone().acquire_owned().await.map_err(|e| RunError::Task(e.to_string()))?;
        let (state, counters, name) = (self.state.clone(), self.counters.clone(), self.pipeline.name.clone());
        sends.spawn(async move {
            let delivered = deliver(&sink, &*state, &counters, &name, entry).await;
            drop(permit);
            delivered
        });
        Ok(())
    }

    fn summary(&self, status: RunStatus, error: Option<String>, windows: u64, started: Instant) -> Summary {
        let c = &self.counters;
        let s = &self.client.stats;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let command_tasks = c.tasks.lock().map(|t| t.clone()).unwrap_or_default();
        let mut task_count = crate::state::TaskCount::default();
        for (_, t) in &command_tasks {
            task_count.failed += t.failed;
            task_count.success += t.success;
            task_count.total += t.total;
        }
        let (target_requests, target_retries) = self.sink.as_ref().map_or((0, 0), |s| (get(&s.stats().requests), get(&s.stats().retries)));
        Summary {
            pipeline: self.pipeline.name.clone(),
            status,
            error,
            windows,
            windows_done: get(&c.windows_done),
            checkpoint: self.state.checkpoint(&self.pipeline.name).ok().flatten().map(crate::time::rfc3339),
            requests: get(&s.requests),
            pages: get(&s.pages),
            rate_limit_waits: get(&s.rate_waits),
            rate_limit_wait_ms: get(&s.rate_wait_ms),
            retries: s.retries().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            drift_rereads: get(&s.drift_rereads),
            answer_rereads: get(&s.answer_rereads),
            fetched: get(&c.fetched),
            skipped_id_check: get(&c.skipped_id_check),
            skipped_condition: get(&c.skipped_condition),
            mapped: get(&c.mapped),
            outputs: get(&c.outputs),
            skipped_plugin: get(&c.skipped_plugin),
            failed_mapping: get(&c.failed_mapping),
            failed_target: get(&c.failed_target),
            delivered: get(&c.delivered),
            dead_lettered: get(&c.failed_mapping) + get(&c.failed_target),
            commands: get(&c.commands),
            commands_replayed: get(&c.replayed),
            commands_resumed: get(&c.resumed),
            task_count,
            command_tasks,
            target_requests,
            target_retries,
            fuel_used: get(&c.fuel),
            plugin_ms: get(&c.plugin_us) / 1000,
            plugin: self.plugin_used.lock().ok().and_then(|p| p.clone()),
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}
