//! Sync commands: created idempotently by a client-chosen id (the same id
//! with the same input is a replay, with another a conflict), read, listed,
//! cancelled while queued, with their failed records and the records they
//! delivered. One run per pipeline at a time: later commands wait in the
//! pipeline's queue and say so (`queued`, `queuePosition`). In process the
//! queue is in memory (`run`); in a cluster it is the shared table
//! (`shared`) and the dispatcher runs a command where its lease is
//! (`dispatch`).

use super::model::{ProgressView, SyncInput, SyncResource, TaskCountView, TaskView};
use super::status::SyncStatus;
use super::{CommandError, CommandKey, Engine, ListQuery, PipelineHandle, command_key};
use crate::pipeline::summary::Counters;
use jiff::Timestamp;
use std::sync::atomic::Ordering;
use uuid::Uuid;

mod dispatch;
mod run;
mod shared;
mod warn;

pub(crate) use dispatch::dispatch;
pub(crate) use run::{remedy, restore, schedule, worker};
pub(crate) use shared::shared_queue;

/// A sync command and what became of it (kept in the pipeline's state store).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncCommand {
    id: Uuid,
    tenant: String,
    input: SyncInput,
    #[serde(default)]
    origin: String,
    created: Timestamp,
    started: Option<Timestamp>,
    completed: Option<Timestamp>,
    status: SyncStatus,
    count: TaskCountView,
    error: Option<String>,
    failed: Vec<TaskView>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    notes: Vec<String>,
}

/// The `taskCount` of a run so far.
pub fn live_count(c: &Counters) -> TaskCountView {
    let success = c.delivered.load(Ordering::Relaxed);
    let failed = c.failed_mapping.load(Ordering::Relaxed) + c.failed_target.load(Ordering::Relaxed);
    TaskCountView { failed, success, total: success + failed }
}

impl SyncCommand {
    fn persist(&self, engine: &Engine) {
        if let Some(h) = engine.pipelines.get(&self.input.pipeline) {
            let record = serde_json::to_value(self).unwrap_or_default();
            super::history::persist(h, "sync", &self.id.to_string(), &self.tenant, self.created, self.status.as_str(), record);
        }
    }

    pub(crate) fn record(&self, handle: &PipelineHandle) -> crate::state::CommandRecord {
        let record = serde_json::to_value(self).unwrap_or_default();
        super::history::record(handle, "sync", &self.id.to_string(), &self.tenant, self.created, self.status.as_str(), record)
    }

    pub(crate) fn from_record(record: crate::state::CommandRecord) -> Result<SyncCommand, CommandError> {
        serde_json::from_value(record.record).map_err(|e| CommandError::Internal(format!("stored sync command {}: {e}", record.id)))
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    pub(crate) fn input(&self) -> &SyncInput {
        &self.input
    }

    pub(crate) fn status(&self) -> SyncStatus {
        self.status
    }

    /// Moves the command on, as `SyncStatus::may_become` allows (see
    /// `status::advance`).
    pub(crate) fn become_(&mut self, next: SyncStatus) -> bool {
        super::status::advance(&mut self.status, next, &self.id)
    }

    pub(crate) fn cancel(&mut self) {
        if self.become_(SyncStatus::Cancelled) {
            self.completed = Some(Timestamp::now());
        }
    }

    /// Claimed by `worker`: running from now (or again, after a takeover).
    pub(crate) fn start(&mut self, worker: &str) {
        if self.status == SyncStatus::Running {
            let before = self.worker.as_deref().unwrap_or("?");
            self.notes.push(format!("{}: taken over by worker {worker} after worker {before} stopped renewing its lease", Timestamp::now()));
        }
        self.become_(SyncStatus::Running);
        self.worker = Some(worker.to_string());
        self.started.get_or_insert_with(Timestamp::now);
    }

    /// Back in the queue: `worker` stopped during the run; the next worker
    /// to claim the pipeline resumes it.
    pub(crate) fn requeue(&mut self, worker: &str) {
        self.become_(SyncStatus::Queued);
        self.notes
            .push(format!("{}: worker {worker} stopped during the run; queued again, the next run resumes from the outbox and checkpoint", Timestamp::now()));
    }

    pub(crate) fn resource(&self, engine: &Engine) -> SyncResource {
        let handle = engine.pipelines.get(&self.input.pipeline);
        let mut count = self.count;
        let (mut position, mut progress) = (None, None);
        if let Some(h) = handle {
            if let Some((id, runner)) = h.running.lock().expect("running lock").as_ref()
                && *id == self.id
            {
                count = live_count(&runner.counters);
                let p = runner.progress();
                progress = Some(ProgressView {
                    windows_done: p.windows_done,
                    windows_planned: p.windows_planned,
                    fetched: p.fetched,
                    eta_seconds: p.eta.map(|d| d.as_secs()),
                });
            }
            if self.status == SyncStatus::Queued {
                position = match &engine.cluster {
                    Some(_) => shared::queue_position(h, self.id),
                    None => h.queue.lock().expect("queue lock").iter().position(|q| *q == self.id).map(|p| p as u64 + 1),
                };
            }
        }
        SyncResource {
            id: self.id.to_string(),
            pipeline: self.input.pipeline.clone(),
            tenant: self.tenant.clone(),
            input: self.input.clone(),
            origin: self.origin.clone(),
            status: self.status,
            queue_position: position,
            created_at: self.created.to_string(),
            started_at: self.started.map(|t| t.to_string()),
            completed_at: self.completed.map(|t| t.to_string()),
            task_count: count,
            error: self.error.clone(),
            worker: self.worker.clone(),
            notes: self.notes.clone(),
            progress,
        }
    }
}

fn validate(input: &SyncInput) -> Result<(), CommandError> {
    let time =
        |name: &str, v: &Option<String>| v.as_deref().map(|t| crate::time::parse(t).map_err(|e| CommandError::Invalid(format!("{name}: {e}")))).transpose();
    let (since, until) = (time("since", &input.since)?, time("until", &input.until)?);
    crate::time::check_range(since, until).map_err(|e| CommandError::Invalid(format!("since/until: {e}")))
}

/// A command accepted by a create: new, or the replay of the same one.
#[derive(Debug, Clone)]
pub struct Accepted<T> {
    /// Its status now.
    pub resource: T,
    /// False when the id already named the same command (a replay).
    pub created: bool,
}

fn different_body(id: Uuid) -> CommandError {
    CommandError::Conflict(format!("sync command {id} exists with a different body"))
}

impl Engine {
    /// Creates the tenant's sync command `id`, or answers the one it
    /// already is; the check and the insert happen under one lock (and, in
    /// a cluster, in the shared table), so a concurrent double create starts
    /// one run.
    pub fn create_sync(&self, tenant: &str, id: Uuid, input: SyncInput, origin: &str) -> Result<Accepted<SyncResource>, CommandError> {
        validate(&input)?;
        let handle = self.pipeline_for(&input.pipeline, tenant)?;
        let mut syncs = self.syncs.lock().expect("syncs lock");
        // In a cluster only the shared table knows every command.
        if let Some(existing) = syncs.get(&command_key(tenant, id)).filter(|_| self.cluster.is_none()) {
            if existing.input == input {
                return Ok(Accepted { resource: existing.resource(self), created: false });
            }
            return Err(different_body(id));
        }
        let cmd = SyncCommand {
            id,
            tenant: tenant.to_string(),
            input: input.clone(),
            origin: origin.to_string(),
            created: Timestamp::now(),
            started: None,
            completed: None,
            status: SyncStatus::Queued,
            count: TaskCountView::default(),
            error: None,
            failed: Vec::new(),
            worker: None,
            notes: Vec::new(),
        };
        // The store decides: in a cluster, another worker may have taken the id.
        if let Some(stored) = handle.state.insert_command(&cmd.record(handle))? {
            if stored.kind != "sync" {
                return Err(CommandError::Conflict(format!("{id} is the id of a {} command", stored.kind)));
            }
            let existing = SyncCommand::from_record(stored)?;
            if existing.input == input {
                return Ok(Accepted { resource: existing.resource(self), created: false });
            }
            return Err(different_body(id));
        }
        if self.cluster.is_none() {
            handle.queue.lock().expect("queue lock").push_back(id);
        }
        let resource = cmd.resource(self);
        if self.cluster.is_none() {
            syncs.insert(command_key(tenant, id), cmd);
        }
        drop(syncs);
        handle.wake.notify_one();
        self.dispatch.notify_one();
        metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "created", "origin" => origin.to_string()).increment(1);
        tracing::info!(pipeline = %resource.pipeline, command = %id, origin, "sync command queued");
        Ok(Accepted { resource, created: true })
    }

    /// The tenant's sync command `id` as stored or running.
    fn owned_sync(&self, tenant: &str, id: Uuid) -> Result<SyncCommand, CommandError> {
        if self.cluster.is_some() {
            return shared::owned(self, tenant, id);
        }
        owned_in(&mut self.syncs.lock().expect("syncs lock"), tenant, id).map(|cmd| cmd.clone())
    }

    /// The tenant's sync command `id`: "not found" when the tenant has none,
    /// whoever else may.
    pub fn sync(&self, tenant: &str, id: Uuid) -> Result<SyncResource, CommandError> {
        Ok(self.owned_sync(tenant, id)?.resource(self))
    }

    /// The records the command kept as failed (one page), and how many it
    /// kept.
    pub fn sync_tasks(&self, tenant: &str, id: Uuid, offset: u64, limit: u64) -> Result<(Vec<TaskView>, u64), CommandError> {
        let failed = self.owned_sync(tenant, id)?.failed;
        let total = failed.len() as u64;
        Ok((failed.into_iter().skip(offset.min(total) as usize).take(limit as usize).collect(), total))
    }

    /// Cancels a command that has not started (idempotently); a conflict
    /// once it has.
    pub fn cancel_sync(&self, tenant: &str, id: Uuid) -> Result<SyncResource, CommandError> {
        if self.cluster.is_some() {
            return shared::cancel(self, tenant, id);
        }
        let mut syncs = self.syncs.lock().expect("syncs lock");
        let cmd = owned_in(&mut syncs, tenant, id)?;
        match cmd.status {
            SyncStatus::Cancelled => {}
            SyncStatus::Queued => {
                if let Some(h) = self.pipelines.get(&cmd.input.pipeline) {
                    h.queue.lock().expect("queue lock").retain(|q| *q != id);
                }
                cmd.cancel();
                cmd.persist(self);
                metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "cancelled").increment(1);
            }
            other => return Err(not_cancellable(id, other)),
        }
        Ok(cmd.resource(self))
    }

    /// The tenant's sync commands matching `q`, newest first: one page and
    /// the total.
    pub fn list_syncs(&self, tenant: &str, q: &ListQuery) -> Result<(Vec<SyncResource>, u64), CommandError> {
        let (records, total) = super::history::list(self, tenant, "sync", q)?;
        let syncs = self.syncs.lock().expect("syncs lock");
        let items = records
            .into_iter()
            .filter_map(|r| {
                let id = Uuid::parse_str(&r.id).ok()?;
                // In a cluster the stored record is the news: another worker may run it.
                match syncs.get(&command_key(&r.tenant, id)).filter(|_| self.cluster.is_none()) {
                    Some(live) => Some(live.resource(self)),
                    None => serde_json::from_value::<SyncCommand>(r.record).ok().map(|c| c.resource(self)),
                }
            })
            .collect();
        Ok((items, total))
    }

    /// Ids of the records the target confirmed while the command ran (by
    /// every worker that ran it).
    pub fn sync_records(&self, tenant: &str, id: Uuid) -> Result<Vec<String>, CommandError> {
        let cmd = self.owned_sync(tenant, id)?;
        let Some(started) = cmd.started else { return Ok(Vec::new()) };
        let handle = self.pipeline_for(&cmd.input.pipeline, tenant)?;
        let to = crate::time::sortable(cmd.completed.unwrap_or_else(Timestamp::now));
        Ok(handle.state.confirmed_record_ids(&handle.pipeline.name, &crate::time::sortable(started), &to)?)
    }
}

/// The tenant's sync command `id` in the held `syncs` map: "not found"
/// when the tenant has none, whoever else may.
fn owned_in<'a>(syncs: &'a mut std::collections::HashMap<CommandKey, SyncCommand>, tenant: &str, id: Uuid) -> Result<&'a mut SyncCommand, CommandError> {
    syncs.get_mut(&command_key(tenant, id)).ok_or_else(|| CommandError::NotFound(format!("no sync command {id}")))
}

pub(crate) fn update(engine: &Engine, tenant: &str, id: Uuid, f: impl FnOnce(&mut SyncCommand)) {
    let mut syncs = engine.syncs.lock().expect("syncs lock");
    if let Some(c) = syncs.get_mut(&command_key(tenant, id)) {
        f(c);
        c.persist(engine);
    }
}

pub(crate) fn not_cancellable(id: Uuid, status: SyncStatus) -> CommandError {
    CommandError::Conflict(format!("sync command {id} has already started (status `{status}`); only queued commands can be cancelled"))
}
